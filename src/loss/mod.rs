//! The training loss, from the chain's logits and a batch's labels, in log space. Each stage's
//! loss is the sum of its supervision's terms (weight · weighted mean, over the term's rows, of
//! the binary cross-entropy of the term's target probability), plus AITM's calibrator when the
//! funnel has one. Nothing here takes the log of a product; the only division by a probability
//! is the inverse-propensity weight, which is floored, capped and detached.

mod probs;
mod terms;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::funnel::{Funnel, Label, LogProbs};
use crate::model::ChainOutput;
use crate::model::backend::bce_from_log_prob;

/// A batch's labels as the loss reads them.
pub struct Targets {
    /// Cumulative "reached" labels, rows x stages.
    labels: Tensor,
    /// Each stage's own column as written (rows x stages), when a term reads it and it differs
    /// from the reached labels (`given_previous` columns); otherwise the reached labels serve.
    own: Option<Tensor>,
}

impl Targets {
    /// `labels` and `own` are row-major, rows x stages (a `Batch`'s); `own` may be empty.
    pub fn new(
        funnel: &Funnel,
        labels: &[f32],
        own: &[f32],
        rows: usize,
        dev: &Device,
    ) -> Result<Self> {
        let shape = (rows, funnel.len());
        Ok(Targets {
            labels: Tensor::from_slice(labels, shape, dev)?,
            own: match own.is_empty() {
                true => None,
                false => Some(Tensor::from_slice(own, shape, dev)?),
            },
        })
    }

    /// The labels (rows x stages) a term with `label` compares its probability with.
    fn of(&self, label: Label) -> &Tensor {
        match (label, &self.own) {
            (Label::Own, Some(own)) => own,
            (Label::Own, None) | (Label::Reached, _) => &self.labels,
        }
    }
}

/// The loss of one batch.
pub struct Loss {
    /// L_k per stage, weighted: the sum of its terms times their weights (`loss_weight`
    /// included) and its calibrator term, shape (stages). `objective` turns them into the
    /// scalar the step minimises.
    pub stages: Tensor,
}

/// The objective the step minimises from the stages' losses: their sum, or with uncertainty
/// weighting Σ_k exp(−s_k) L_k + s_k for the learned log-variances s (after Kendall et al.,
/// CVPR 2018, in the simplified form most libraries use; the paper's classification form has
/// s_k / 2).
pub fn objective(stages: &Tensor, log_variance: Option<&Tensor>) -> Result<Tensor> {
    Ok(match log_variance {
        None => stages.sum_all()?,
        Some(s) => ((s.neg()?.exp()? * stages)? + s)?.sum_all()?,
    })
}

#[cfg(test)]
impl Loss {
    /// The plain sum of the stages' losses (what the step minimises without learned weights).
    fn total(&self) -> Tensor {
        objective(&self.stages, None).expect("a sum")
    }
}

/// The loss of a batch from the chain's whole output: every stage's terms read the logits'
/// probabilities, and a term whose weighting reads an auxiliary head (ESCM²-DR's imputation)
/// finds it in `out.heads` by (stage, kind).
pub fn funnel_loss(funnel: &Funnel, out: &ChainOutput, t: &Targets) -> Result<Loss> {
    let logits = &out.logits;
    let LogProbs { log_q, log_p } = funnel.log_probs(logits)?;
    if funnel.is_plain_entire_space() {
        // ESMM: one batched BCE over every stage's cumulative probability.
        let per_row = bce_from_log_prob(&log_p, &t.labels)?;
        let weights: Vec<f32> = funnel
            .order()
            .map(|s| funnel.supervision(s).terms[0].weight as f32)
            .collect();
        let w = Tensor::from_vec(weights, funnel.len(), logits.device())?;
        let stages = per_row.mean(0)?.mul(&w)?;
        return Ok(Loss { stages });
    }
    let rows = logits.dim(0)?;
    let p = match funnel.calibrator() {
        Some(_) => Some(log_p.exp()?),
        None => None,
    };
    let mut stages = Vec::with_capacity(funnel.len());
    for s in funnel.order() {
        let mut value = Tensor::zeros((), logits.dtype(), logits.device())?;
        for term in &funnel.supervision(s).terms {
            if term.weight != 0.0 {
                let head = match term.weighting.head() {
                    Some(kind) => Some(out.heads.get(s, kind).ok_or_else(|| {
                        Error::Internal(format!(
                            "stage {s}'s loss reads its {} head, which the chain did not output",
                            kind.key()
                        ))
                    })?),
                    None => None,
                };
                let v = terms::term_value(
                    funnel,
                    s,
                    term,
                    &terms::Probs {
                        log_q: &log_q,
                        log_p: &log_p,
                        head,
                    },
                    t.of(term.label),
                    &t.labels,
                    rows,
                )?;
                value = (value + v.affine(term.weight, 0.0)?)?;
            }
        }
        if let (Some(lambda), Some(p), Some(parent)) = (funnel.calibrator(), &p, funnel.parent(s)) {
            // AITM: λ · mean over rows of max(p_k − p_parent, 0), times the stage's weight.
            let excess = (p.narrow(1, s, 1)? - p.narrow(1, parent, 1)?)?.relu()?;
            let w = lambda * funnel.supervision(s).stage_weight;
            value = (value + excess.mean_all()?.affine(w, 0.0)?)?;
        }
        stages.push(value);
    }
    let stages = Tensor::stack(&stages, 0)?;
    Ok(Loss { stages })
}

#[cfg(test)]
mod tests;
