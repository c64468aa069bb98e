//! One supervision term's value: the weighted mean of the binary cross-entropy of the term's
//! target probability over its rows, with the inverse-propensity and doubly robust forms.

use candle_core::Tensor;

use crate::error::Result;
use crate::funnel::{Funnel, Prediction, Rows, Term, Weighting};
use crate::model::backend::bce_from_log_prob;

/// What a term reads of the chain's output: the log-probabilities (rows x stages) and the
/// output of the head its weighting names (rows x 1), if any.
pub(super) struct Probs<'a> {
    pub(super) log_q: &'a Tensor,
    pub(super) log_p: &'a Tensor,
    pub(super) head: Option<&'a Tensor>,
}

/// One term of stage `s`, before its weight: Σ_i m_i w_i l_i / normaliser, with l_i the BCE of
/// the target probability, m_i the row mask (1, or whether the row reached the parent) and w_i
/// the row weight (1, or the detached inverse propensity); the doubly robust form as
/// `Weighting::DoublyRobust` says.
pub(super) fn term_value(
    funnel: &Funnel,
    s: usize,
    term: &Term,
    probs: &Probs<'_>,
    labels: &Tensor,
    reached: &Tensor,
    rows: usize,
) -> Result<Tensor> {
    let Probs {
        log_q,
        log_p,
        head: imputed,
    } = *probs;
    let target = match term.target {
        Prediction::Cumulative => log_p.narrow(1, s, 1)?,
        Prediction::Conditional => log_q.narrow(1, s, 1)?,
    };
    let l = bce_from_log_prob(
        &target.contiguous()?,
        &labels.narrow(1, s, 1)?.contiguous()?,
    )?;
    let parent = funnel.parent(s);
    let mask = match (term.rows, parent) {
        (Rows::ReachedParent, Some(p)) => Some(reached.narrow(1, p, 1)?),
        _ => None,
    };
    let weights = match (term.weighting.propensity(), parent) {
        (Some(ps), Some(p)) => {
            let propensity = log_p.narrow(1, p, 1)?.exp()?.detach();
            Some(
                propensity
                    .maximum(ps.floor)?
                    .recip()?
                    .minimum(ps.max_weight)?,
            )
        }
        _ => None,
    };
    if let (
        Weighting::DoublyRobust {
            imputation_weight, ..
        },
        Some(o),
        Some(w),
    ) = (term.weighting, &mask, &weights)
    {
        let e_hat = imputed.ok_or_else(|| {
            crate::error::Error::Internal(format!(
                "stage {s} has a doubly robust term but no imputation output"
            ))
        })?;
        // DR = mean(ê + o (e − ê) w) trains the prediction (ê held fixed); the imputation loss
        // mean(o (e − ê)² w) trains ê (e held fixed), as in doubly robust joint learning.
        let ow = (o * w)?;
        let e_fixed = e_hat.detach();
        let dr = (&e_fixed + ((&l - &e_fixed)? * &ow)?)?.mean_all()?;
        let imputation_loss = ((l.detach() - e_hat)?.sqr()? * &ow)?.mean_all()?;
        return Ok((dr + imputation_loss.affine(imputation_weight, 0.0)?)?);
    }
    let (weighted, normaliser) = match (&mask, &weights) {
        (None, None) => return Ok(l.mean_all()?),
        (Some(m), None) => ((&l * m)?, m.sum_all()?.maximum(1.0)?),
        (m, Some(w)) => {
            let mw = match m {
                Some(m) => (m * w)?,
                None => w.clone(),
            };
            let self_normalised = matches!(
                term.weighting,
                Weighting::InversePropensity(ps) if ps.self_normalised
            );
            let normaliser = if self_normalised {
                mw.sum_all()?.maximum(1e-12)?
            } else {
                Tensor::new(rows as f32, l.device())?
            };
            ((&l * mw)?, normaliser)
        }
    };
    Ok(weighted.sum_all()?.div(&normaliser)?)
}
