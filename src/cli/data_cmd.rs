//! `funnel validate` and `funnel encode`: a pipeline's data checked as training would check
//! it, or encoded into the cache, without training.

use std::path::Path;

use crate::config::{Override, Pipeline};
use crate::data;
use crate::error::Result;
use crate::runtime::with_threads;

/// Rows of a split that may be absent.
fn rows(d: &Option<data::SplitData>) -> usize {
    d.as_ref().map_or(0, data::SplitData::rows)
}

pub(super) fn validate(path: &Path, set: &[Override]) -> Result<()> {
    let p = Pipeline::load_with(path, set)?;
    // Everything `train` checks before its first step: the rows' structure, label values,
    // funnel consistency under the policy, non-empty splits, encoders, the memory estimate.
    let (splits, estimate) = with_threads(p.train.threads, || {
        let splits = data::prepare(&p)?;
        let estimate = crate::train::memory::check(&p, &splits)?;
        Ok((splits, estimate))
    })?;
    for w in &splits.warnings {
        eprintln!("warning: {w}");
    }
    outln!(
        "{}: ok — {} stage(s) ({}), {} categorical and {} numeric feature(s)",
        path.display(),
        p.stages.len(),
        p.stage_names().join(" -> "),
        p.categorical.len(),
        p.numeric.len()
    );
    for (split, rows) in &splits.files {
        outln!("  {split}: {rows} rows, all columns present");
    }
    outln!(
        "  data: train {} rows, valid {}, test {} after the consistency policy; labels and encoders checked; training needs about {}",
        splits.train.rows(),
        rows(&splits.valid),
        rows(&splits.test),
        crate::train::memory::human(estimate.total())
    );
    Ok(())
}

pub(super) fn encode(path: &Path, set: &[Override]) -> Result<()> {
    let p = Pipeline::load_with(path, set)?;
    let (splits, lines) = with_threads(p.train.threads, || data::encode_cached(&p))?;
    super::print_notes(&splits.warnings, &lines);
    outln!(
        "{}: encoded train {} rows, valid {}, test {} (read {:.2}s, encode {:.2}s)",
        path.display(),
        splits.train.rows(),
        rows(&splits.valid),
        rows(&splits.test),
        splits.read_secs,
        splits.encode_secs
    );
    Ok(())
}
