//! Heads: how the towers' logits become per-stage probabilities, and which of them the loss supervises.

use candle_core::{Result, Tensor};

use super::ops::{BceFromLogProb, LogSigmoid};
use crate::config::raw::HeadKind;
use crate::numerics::{MAX_LOG_PROB, log_sigmoid, log1mexp};

/// One row's probabilities for one stage, all in log space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageProbs {
    /// ln q_k: P(reach k | reached k-1).
    pub log_q: f64,
    /// ln(1 - q_k).
    pub log_not_q: f64,
    /// ln p_k: P(reach k).
    pub log_p: f64,
    /// ln(1 - p_k).
    pub log_not_p: f64,
}

pub struct Head {
    pub kind: HeadKind,
    /// Loss weight of each stage, shape (K).
    weights: Tensor,
}

impl Head {
    pub fn new(kind: HeadKind, weights: &[f64], dev: &candle_core::Device) -> Result<Self> {
        let w: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
        Ok(Head {
            kind,
            weights: Tensor::from_vec(w, weights.len(), dev)?,
        })
    }

    /// Training loss of a batch: sum over stages of w_k * mean over rows of the stage's loss.
    /// `logits` and `labels` are (rows x stages); labels are the cumulative "reached" flags.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        match self.kind {
            HeadKind::CumulativeProduct => {
                // ln p_k = sum_{j<=k} ln σ(z_j), supervised with the cumulative label on all rows.
                let log_p = logits.apply_op1(LogSigmoid)?.cumsum(1)?;
                let per = log_p.apply_op2(labels, BceFromLogProb)?;
                per.mean(0)?.mul(&self.weights)?.sum_all()
            }
        }
    }

    /// Per-stage probabilities of one row from its logits, exactly in f64.
    pub fn probabilities(kind: HeadKind, logits: &[f32], out: &mut Vec<StageProbs>) {
        out.clear();
        match kind {
            HeadKind::CumulativeProduct => {
                let mut log_p = 0.0;
                for &z in logits {
                    let z = z as f64;
                    let log_q = log_sigmoid(z);
                    log_p += log_q;
                    out.push(StageProbs {
                        log_q,
                        log_not_q: log_sigmoid(-z),
                        log_p,
                        // Capped like the training loss, so a saturated p gives a finite loss.
                        log_not_p: log1mexp(log_p.min(MAX_LOG_PROB)),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_product_by_hand() {
        let mut out = Vec::new();
        Head::probabilities(HeadKind::CumulativeProduct, &[0.0, 0.0, 2.0], &mut out);
        let sig2 = 1.0 / (1.0 + (-2.0f64).exp());
        let p: Vec<f64> = out.iter().map(|s| s.log_p.exp()).collect();
        assert!((p[0] - 0.5).abs() < 1e-12);
        assert!((p[1] - 0.25).abs() < 1e-12);
        assert!((p[2] - 0.25 * sig2).abs() < 1e-12);
        assert!((out[2].log_q.exp() - sig2).abs() < 1e-12);
        assert!((out[2].log_not_p.exp() - (1.0 - 0.25 * sig2)).abs() < 1e-12);
        assert!((out[1].log_not_q.exp() - 0.5).abs() < 1e-12);
    }
}
