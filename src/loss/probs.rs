//! The stages' log-probabilities (ln q, ln p) from the chain's logits, in log space: the
//! tensor form the loss differentiates (`funnel::StageProbs` is the same arithmetic in f64 for
//! the metrics).

use candle_core::Tensor;

use crate::error::Result;
use crate::funnel::{Funnel, Output};
use crate::model::backend::log_sigmoid;

/// The per-stage log-probabilities (ln q, ln p), each rows x stages, from the logits. Conditional
/// logits: ln q = ln σ(z), ln p = ln q · A with A the funnel's ancestor matrix (for a chain, a
/// cumulative sum). Cumulative logits: ln p = ln σ(z), ln q = min(ln p − ln p_parent, 0) with the
/// parents' columns taken by the parent matrix.
pub fn log_probs(funnel: &Funnel, logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let k = funnel.len();
    let dev = logits.device();
    let log_s = log_sigmoid(logits)?;
    Ok(match funnel.output() {
        Output::Conditional if funnel.logit_columns() == k => {
            let a = Tensor::from_vec(funnel.ancestor_matrix(), (k, k), dev)?;
            let log_p = log_s.matmul(&a)?;
            (log_s, log_p)
        }
        Output::Conditional => {
            // ESM²: a stage with an optional stage v before it mixes its two conditionals,
            // ln q = ln(e^(ln q_v + ln σ(z)) + e^(ln(1 − q_v) + ln σ(z_skip))).
            let columns = funnel
                .order()
                .map(|s| match (funnel.via(s), funnel.skip_column(s)) {
                    (Some(v), Some(c)) => {
                        let with = (log_s.narrow(1, v, 1)? + log_s.narrow(1, s, 1)?)?;
                        let not_v = log_sigmoid(&logits.narrow(1, v, 1)?.neg()?)?;
                        let without = (not_v + log_s.narrow(1, c, 1)?)?;
                        log_add(&with, &without)
                    }
                    _ => log_s.narrow(1, s, 1),
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let log_q = Tensor::cat(&columns, 1)?;
            let a = Tensor::from_vec(funnel.ancestor_matrix(), (k, k), dev)?;
            let log_p = log_q.matmul(&a)?;
            (log_q, log_p)
        }
        Output::Cumulative => {
            let parent = Tensor::from_vec(funnel.parent_matrix(), (k, k), dev)?;
            let log_parent = log_s.matmul(&parent)?;
            // min(ln p − ln p_parent, 0) = −relu(ln p_parent − ln p).
            let log_q = (log_parent - &log_s)?.relu()?.neg()?;
            (log_q, log_s)
        }
    })
}

/// ln(e^a + e^b) element-wise, shifted by the (detached) larger of the two so nothing
/// overflows; the shift cancels, so the gradient is exact.
fn log_add(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let m = a.maximum(b)?.detach();
    let sum = ((a - &m)?.exp()? + (b - &m)?.exp()?)?;
    m + sum.log()?
}
