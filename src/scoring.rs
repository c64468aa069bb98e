//! The evaluation driver: a model's logits over a dataset's rows, batch by batch in row order,
//! handed to whoever consumes them (metric accumulators, a prediction writer). Validation and
//! test in `train`, `funnel eval` and `funnel predict` all score through it; the model owns no
//! loop over data.

use std::ops::Range;

use crate::config::Pipeline;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::metrics::truth::evaluate_truth;
use crate::metrics::{StageAccumulators, StageMetrics};
use crate::model::FunnelModel;

/// Score the rows of `d` in batches of `batch_size`: `sink` gets each batch's row numbers and
/// its logits (rows x `Funnel::logit_columns`, row-major), in row order.
pub fn score(
    model: &FunnelModel,
    d: &Dataset,
    batch_size: usize,
    mut sink: impl FnMut(Range<usize>, &[f32]) -> Result<()>,
) -> Result<()> {
    for start in (0..d.rows).step_by(batch_size.max(1)) {
        let end = (start + batch_size).min(d.rows);
        let logits = model.logits(&d.batch_range(start, end))?;
        sink(start..end, &logits)?;
    }
    Ok(())
}

/// Metrics of a labelled dataset; with truth columns, also the evaluation against the truth.
pub fn evaluate_dataset(
    model: &FunnelModel,
    p: &Pipeline,
    d: &Dataset,
) -> Result<Vec<StageMetrics>> {
    let groups = (!d.groups.is_empty()).then_some(d.groups.as_slice());
    let mut acc = StageAccumulators::new(p.stages.len());
    // The truth is judged over all rows at once (synthetic data, in memory by nature).
    let mut all_logits = Vec::new();
    score(model, d, p.train.eval_batch_size, |rows, logits| {
        if logits.iter().any(|z| !z.is_finite()) {
            return Err(Error::Usage(format!(
                "the model predicts non-finite values on the {} split: training diverged; lower the learning rates",
                d.split
            )));
        }
        acc.push(&p.funnel, rows, logits, &d.reached, groups);
        if !d.truth.is_empty() {
            all_logits.extend_from_slice(logits);
        }
        Ok(())
    })?;
    let names: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let mut m = acc.finish(&p.funnel, &names);
    if !d.truth.is_empty() {
        for (s, t) in m
            .iter_mut()
            .zip(evaluate_truth(&p.funnel, &all_logits, &d.reached, &d.truth))
        {
            s.truth = Some(t);
        }
    }
    Ok(m)
}
