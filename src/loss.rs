//! The training loss, from the chain's logits and a batch's labels, in log space: each stage's
//! term is its supervision's weight times the mean, over its rows, of the binary cross-entropy of
//! its target probability. Nothing here takes the log of a product or divides by a probability.

use candle_core::{Device, Tensor};

use crate::error::Result;
use crate::funnel::{Funnel, Prediction, Rows};
use crate::model::backend::{bce_from_log_prob, log_sigmoid};

/// A batch's labels as the loss reads them.
pub struct Targets {
    /// Cumulative "reached" labels, rows x stages.
    labels: Tensor,
    /// Which rows each stage's term averages over (rows x stages, 0/1), when some stage uses
    /// only the rows that reached its parent; `None` means every row for every stage.
    mask: Option<Tensor>,
}

impl Targets {
    /// `labels` is row-major, rows x stages (a `Batch`'s labels).
    pub fn new(funnel: &Funnel, labels: &[f32], rows: usize, dev: &Device) -> Result<Self> {
        let k = funnel.len();
        let masked = funnel
            .order()
            .filter(|&s| funnel.supervision(s).rows == Rows::ReachedParent)
            .filter_map(|s| funnel.parent(s).map(|p| (s, p)))
            .collect::<Vec<_>>();
        let mask = if masked.is_empty() {
            None
        } else {
            let mut m = vec![1f32; rows * k];
            for (m, y) in m.chunks_exact_mut(k).zip(labels.chunks_exact(k)) {
                for &(s, p) in &masked {
                    m[s] = y[p];
                }
            }
            Some(Tensor::from_vec(m, (rows, k), dev)?)
        };
        Ok(Targets {
            labels: Tensor::from_slice(labels, (rows, k), dev)?,
            mask,
        })
    }
}

/// The loss of one batch.
pub struct Loss {
    /// Σ_k w_k · L_k, a scalar.
    pub total: Tensor,
    /// L_k per stage (before its weight), shape (stages).
    pub stages: Tensor,
}

/// The per-stage log-probabilities the loss and every evaluation share: ln q (rows x stages)
/// from the logits, and ln p = ln q · A with A the funnel's ancestor matrix (for a chain, a
/// cumulative sum: ln p_k = Σ_{j ≤ k} ln q_j).
pub fn log_probs(funnel: &Funnel, logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let k = funnel.len();
    let log_q = log_sigmoid(logits)?;
    let a = Tensor::from_vec(funnel.ancestor_matrix(), (k, k), logits.device())?;
    let log_p = log_q.matmul(&a)?;
    Ok((log_q, log_p))
}

/// The loss of a batch from the chain's logits (rows x stages).
pub fn funnel_loss(funnel: &Funnel, logits: &Tensor, t: &Targets) -> Result<Loss> {
    let (log_q, log_p) = log_probs(funnel, logits)?;
    let target = if funnel
        .order()
        .all(|s| funnel.supervision(s).target == Prediction::Cumulative)
    {
        log_p
    } else {
        let columns = funnel
            .order()
            .map(|s| match funnel.supervision(s).target {
                Prediction::Cumulative => log_p.narrow(1, s, 1),
                Prediction::Conditional => log_q.narrow(1, s, 1),
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&columns, 1)?
    };
    let per_row = bce_from_log_prob(&target, &t.labels)?;
    let stages = match &t.mask {
        None => per_row.mean(0)?,
        Some(m) => {
            // Mean over each stage's rows; a stage none of whose rows are in the batch adds 0.
            let counts = m.sum(0)?.maximum(1.0)?;
            (per_row * m)?.sum(0)?.div(&counts)?
        }
    };
    let weights: Vec<f32> = funnel
        .order()
        .map(|s| funnel.supervision(s).weight as f32)
        .collect();
    let w = Tensor::from_vec(weights, funnel.len(), logits.device())?;
    let total = stages.mul(&w)?.sum_all()?;
    Ok(Loss { total, stages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::Supervision;
    use crate::numerics::{log_sigmoid as ls, log1mexp};
    use candle_core::Var;

    fn funnel(target: Prediction, rows: Rows, weights: &[f64]) -> Funnel {
        Funnel::chain(weights.len(), |k| Supervision {
            target: if k == 0 {
                Prediction::Cumulative
            } else {
                target
            },
            rows: if k == 0 { Rows::All } else { rows },
            weight: weights[k],
        })
        .unwrap()
    }

    fn loss_and_grad(f: &Funnel, z: &[f32], y: &[f32], rows: usize) -> (f64, Vec<f64>) {
        let dev = Device::Cpu;
        let zv = Var::from_slice(z, (rows, f.len()), &dev).unwrap();
        let t = Targets::new(f, y, rows, &dev).unwrap();
        let l = funnel_loss(f, zv.as_tensor(), &t).unwrap().total;
        let g = l.backward().unwrap();
        let g = g.get(zv.as_tensor()).unwrap().flatten_all().unwrap();
        (
            l.to_scalar::<f32>().unwrap() as f64,
            g.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect(),
        )
    }

    /// An independent f64 reference of the loss, written from the formulas.
    fn reference(f: &Funnel, z: &[f64], y: &[f32], rows: usize) -> f64 {
        let k = f.len();
        let bce =
            |s: f64, y: f64| -(y * s + (1.0 - y) * log1mexp(s.min(crate::numerics::MAX_LOG_PROB)));
        let mut total = 0.0;
        for s in 0..k {
            let sup = f.supervision(s);
            let (mut sum, mut n) = (0.0, 0.0);
            for r in 0..rows {
                let zr = &z[r * k..(r + 1) * k];
                let yr = &y[r * k..(r + 1) * k];
                if sup.rows == Rows::ReachedParent && f.parent(s).is_some_and(|p| yr[p] == 0.0) {
                    continue;
                }
                let log_q = ls(zr[s]);
                let log_p: f64 = std::iter::once(s)
                    .chain(f.ancestors(s))
                    .map(|j| ls(zr[j]))
                    .sum();
                let target = match sup.target {
                    Prediction::Cumulative => log_p,
                    Prediction::Conditional => log_q,
                };
                sum += bce(target, yr[s] as f64);
                n += 1.0;
            }
            total += sup.weight * if n > 0.0 { sum / n } else { 0.0 };
        }
        total
    }

    fn batch() -> (Vec<f32>, Vec<f32>, usize) {
        // Three stages, four rows; labels are cumulative.
        let z = vec![
            0.3, -1.2, 2.5, //
            -0.7, 0.4, -2.0, //
            1.5, 1.1, 0.2, //
            -2.2, -0.3, 0.9,
        ];
        let y = vec![
            1.0, 1.0, 0.0, //
            1.0, 0.0, 0.0, //
            1.0, 1.0, 1.0, //
            0.0, 0.0, 0.0,
        ];
        (z, y, 4)
    }

    #[test]
    fn esmm_two_stage_value_by_hand() {
        // python3: import math; s=lambda z: 1/(1+math.exp(-z)); p1=s(0.5); p2=p1*s(-1.0)
        // -(math.log(p1)) - math.log(1-p2)  # labels: stage 1 = 1, stage 2 = 0
        // = 0.47407698418010663 + 0.18320806636160125 = 0.6572850505417078
        let f = funnel(Prediction::Cumulative, Rows::All, &[1.0, 1.0]);
        let (l, _) = loss_and_grad(&f, &[0.5, -1.0], &[1.0, 0.0], 1);
        assert!((l - 0.657_285_05).abs() < 1e-6, "{l}");
    }

    /// Every supervision the presets use: value equal to the f64 reference, gradient equal to
    /// its finite differences.
    #[test]
    fn every_supervision_matches_reference_and_finite_differences() {
        let (z, y, rows) = batch();
        for (target, rows_kind) in [
            (Prediction::Cumulative, Rows::All),
            (Prediction::Conditional, Rows::ReachedParent),
            (Prediction::Conditional, Rows::All),
            (Prediction::Cumulative, Rows::ReachedParent),
        ] {
            let f = funnel(target, rows_kind, &[1.0, 0.5, 2.0]);
            let (l, g) = loss_and_grad(&f, &z, &y, rows);
            let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            let want = reference(&f, &z64, &y, rows);
            assert!(
                (l - want).abs() < 1e-5,
                "{target:?}/{rows_kind:?}: {l} vs {want}"
            );
            for j in 0..z.len() {
                let h = 1e-5;
                let (mut up, mut down) = (z64.clone(), z64.clone());
                up[j] += h;
                down[j] -= h;
                let fd =
                    (reference(&f, &up, &y, rows) - reference(&f, &down, &y, rows)) / (2.0 * h);
                assert!(
                    (fd - g[j]).abs() < 1e-4,
                    "{target:?}/{rows_kind:?} dz{j}: {fd} vs {}",
                    g[j]
                );
            }
        }
    }

    /// The conditional term of a stage reads only the rows that reached its parent: changing a
    /// logit of a row that did not reach the parent leaves it unchanged, and no weight is dead.
    #[test]
    fn naive_conditional_term_ignores_unreached_rows() {
        let (z, y, rows) = batch();
        let f = funnel(
            Prediction::Conditional,
            Rows::ReachedParent,
            &[0.0, 1.0, 0.0],
        );
        let (_, g) = loss_and_grad(&f, &z, &y, rows);
        // Stage 1 (index 1) term: rows 0, 1, 2 reached stage 0; row 3 did not.
        assert_eq!(g[3 * 3 + 1], 0.0);
        assert!(g[1] != 0.0 && g[4] != 0.0 && g[7] != 0.0);
        // Only stage 1's logits matter to it.
        for r in 0..rows {
            assert_eq!(g[r * 3], 0.0);
            assert_eq!(g[r * 3 + 2], 0.0);
        }
    }

    /// Each stage's weight reaches the gradient: doubling one weight changes the gradient of the
    /// logits that stage reads (a term multiplied by zero would not).
    #[test]
    fn every_weight_reaches_the_gradient() {
        let (z, y, rows) = batch();
        for preset in [
            (Prediction::Cumulative, Rows::All),
            (Prediction::Conditional, Rows::ReachedParent),
        ] {
            let (_, base) =
                loss_and_grad(&funnel(preset.0, preset.1, &[1.0, 1.0, 1.0]), &z, &y, rows);
            for s in 0..3 {
                let mut w = [1.0, 1.0, 1.0];
                w[s] = 2.0;
                let (_, g) = loss_and_grad(&funnel(preset.0, preset.1, &w), &z, &y, rows);
                let moved = (0..rows).any(|r| (g[r * 3 + s] - base[r * 3 + s]).abs() > 1e-6);
                assert!(
                    moved,
                    "{preset:?}: stage {s}'s weight does not reach the gradient"
                );
            }
        }
    }
}
