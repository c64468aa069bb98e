//! `funnel predict`: each stage's conditional and cumulative probability for every row of a
//! file, after the copied columns.

use std::path::Path;

use super::source_like_train;
use crate::checkpoint::Run;
use crate::config::{FileFormat, format_from_extension};
use crate::data::{self, encode_unlabelled};
use crate::error::{Error, Result};
use crate::source::{Frame, TableColumn, write_table};

pub(super) fn predict(r: &Run, data: &Path, out: &Path, keep: &[String]) -> Result<()> {
    let p = &r.pipeline;
    // Copied columns: the id column, then `--keep` in its order, each once.
    let mut copied: Vec<String> = p.id_column.iter().cloned().collect();
    for k in keep {
        if !copied.contains(k) {
            copied.push(k.clone());
        }
    }
    let outputs: Vec<String> = p
        .stages
        .iter()
        .flat_map(|s| {
            [
                format!("{}_conditional", s.name),
                format!("{}_cumulative", s.name),
            ]
        })
        .collect();
    if let Some(c) = copied.iter().find(|c| outputs.contains(c)) {
        return Err(Error::Usage(format!(
            "--keep {c}: the output has a prediction column of that name\n  hint: rename the input column"
        )));
    }
    let mut needed = data::feature_columns(p);
    needed.extend(copied.iter().cloned());
    let frame = Frame::read(&source_like_train(p, data), Some(&needed))?;
    let d = encode_unlabelled(&frame, &r.encoders, p)?;
    for w in data::oov_warnings(p, &d) {
        eprintln!("warning: {w}");
    }
    let logits = r.model.predict_logits(&d, p.train.eval_batch_size)?;
    let k = p.stages.len();
    let mut cond = vec![Vec::with_capacity(d.rows); k];
    let mut cum = vec![Vec::with_capacity(d.rows); k];
    let mut probs = Vec::with_capacity(k);
    for row in logits.chunks_exact(p.funnel.logit_columns()) {
        p.funnel.probabilities(row, &mut probs);
        for (s, pr) in probs.iter().enumerate() {
            cond[s].push(pr.log_q.exp());
            cum[s].push(pr.log_p.exp());
        }
    }
    let mut columns = Vec::new();
    for name in &copied {
        columns.push((name.clone(), frame.pass_through(name)?));
    }
    for ((s, c), q) in p.stages.iter().zip(cum).zip(cond) {
        columns.push((format!("{}_conditional", s.name), TableColumn::F64(q)));
        columns.push((format!("{}_cumulative", s.name), TableColumn::F64(c)));
    }
    write_table(out, columns)?;
    let kind = if format_from_extension(out) == Some(FileFormat::Parquet) {
        "parquet"
    } else {
        "csv"
    };
    eprintln!("wrote {} rows to {} ({kind})", d.rows, out.display());
    Ok(())
}
