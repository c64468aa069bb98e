//! The evaluation driver: a model's logits over a dataset's rows, batch by batch in row order,
//! handed to whoever consumes them (metric accumulators, a prediction writer). Validation and
//! test in `train`, `funnel eval` and `funnel predict` all score through it; the model owns no
//! loop over data.

use std::ops::Range;

use crate::config::Pipeline;
use crate::data::{Dataset, EVAL_CHUNK_ROWS, SplitData, append_columns};
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
    sink: impl FnMut(Range<usize>, &[f32]) -> Result<()>,
) -> Result<()> {
    score_with(d, batch_size, |b| model.logits(b), sink)
}

/// `score`, each batch's logits from `logits` (a model read through other row stores).
pub fn score_with(
    d: &Dataset,
    batch_size: usize,
    logits: impl Fn(&crate::data::Batch) -> Result<Vec<f32>>,
    mut sink: impl FnMut(Range<usize>, &[f32]) -> Result<()>,
) -> Result<()> {
    for start in (0..d.rows).step_by(batch_size.max(1)) {
        let end = (start + batch_size).min(d.rows);
        sink(start..end, &logits(&d.batch_range(start, end))?)?;
    }
    Ok(())
}

/// Metrics of a labelled split, scored in row order a chunk at a time when it is on disk (the
/// accumulators spill their rows past `metrics::ROWS_IN_MEMORY`); with truth columns, also the
/// evaluation against the truth (synthetic data: its logits, labels and truth gathered whole).
pub fn evaluate_dataset(
    model: &FunnelModel,
    p: &Pipeline,
    split: &SplitData,
) -> Result<Vec<StageMetrics>> {
    let mut acc = StageAccumulators::new(p.stages.len(), split.has_groups());
    // The truth is judged over all rows at once: their logits, and for a split on disk its
    // labels and truth gathered chunk by chunk.
    let (mut logits, mut reached, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    split.for_each_chunk(EVAL_CHUNK_ROWS, |_, d| {
        let groups = (!d.groups.is_empty()).then_some(d.groups.as_slice());
        score(model, d, p.train.eval_batch_size, |rows, z| {
            if z.iter().any(|z| !z.is_finite()) {
                return Err(Error::Usage(format!(
                    "the model predicts non-finite values on the {} split: training diverged; lower the learning rates",
                    d.split
                )));
            }
            acc.push(&p.funnel, rows, z, &d.reached, groups)?;
            if !d.truth.is_empty() {
                logits.extend_from_slice(z);
            }
            Ok(())
        })?;
        if !d.truth.is_empty() && matches!(split, SplitData::Disk(_)) {
            append_columns(&mut reached, &d.reached);
            append_columns(&mut truth, &d.truth);
        }
        Ok(())
    })?;
    let names: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let mut m = acc.finish(&p.funnel, &names)?;
    let (reached, truth) = match split {
        SplitData::Memory(d) => (&d.reached, &d.truth),
        SplitData::Disk(_) => (&reached, &truth),
    };
    if !truth.is_empty() {
        for (s, t) in m
            .iter_mut()
            .zip(evaluate_truth(&p.funnel, &logits, reached, truth))
        {
            s.truth = Some(t);
        }
    }
    Ok(m)
}
