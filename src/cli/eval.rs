//! `funnel eval`: a run's metrics table on labelled data, a file or one of the run's splits.

use std::path::Path;

use super::predict::Input;
use crate::checkpoint::Run;
use crate::data::{self, encode_split, read_labels};
use crate::error::{Error, Result};
use crate::metrics::format_metrics;
use crate::runtime::with_threads;
use crate::scoring::evaluate_dataset;

pub(super) fn eval(run: &Path, input: Input, json: bool) -> Result<()> {
    let what = match &input {
        Input::File(d) => d.display().to_string(),
        Input::Split(s) => format!("the run's {} split", s.as_str()),
    };
    let r = Run::open(run)?;
    with_threads(r.pipeline.train.threads, || {
        let p = &r.pipeline;
        let (frame, rows) = input.read(&r, None)?;
        let labels = read_labels(&frame, rows.as_deref(), p)?;
        let d = encode_split(data::Split::Eval, &frame, labels, &r.encoders, p)?;
        for w in data::inconsistent_warnings(p, &d)
            .into_iter()
            .chain(data::oov_warnings(p, &d))
            .chain(data::truncation_warnings(p, &d))
        {
            eprintln!("warning: {w}");
        }
        let d = data::SplitData::Memory(d);
        let m = evaluate_dataset(&r.model, p, &d)?;
        if json {
            let text =
                serde_json::to_string_pretty(&m).map_err(|e| Error::Internal(e.to_string()))?;
            outln!("{text}");
        } else {
            out!(
                "{}",
                format_metrics(&format!("{what} ({} rows)", d.rows()), &m)
            );
        }
        Ok(())
    })
}
