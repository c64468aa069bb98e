//! `funnel predict`: each stage's conditional and cumulative probability for every row of a
//! file (or of one of the run's splits), after the copied columns; and what `eval` and
//! `predict` read.

use std::path::{Path, PathBuf};

use super::source_like_train;
use crate::checkpoint::Run;
use crate::config::{FileFormat, format_from_extension};
use crate::data::{self, Split, encode_split, encode_unlabelled, read_labels};
use crate::error::{Error, Result};
use crate::serve::Predictions;
use crate::source::{Frame, TableColumn, TableWriter};

/// Rows of predictions written at a time.
const PREDICT_CHUNK: usize = 1 << 16;

/// What `eval` and `predict` read: a file given with `--data`, or one of the run's own splits.
pub(super) enum Input {
    File(PathBuf),
    Split(Split),
}

impl Input {
    pub(super) fn new(data: Option<PathBuf>, split: Option<SplitArg>) -> Result<Input> {
        match (data, split) {
            (Some(d), None) => Ok(Input::File(d)),
            (None, Some(s)) => Ok(Input::Split(s.into())),
            _ => Err(Error::Usage(
                "give --data FILE or --split valid|test".into(),
            )),
        }
    }

    /// The frame to read, and for a split carved from the training file, the rows it holds.
    pub(super) fn read(
        &self,
        r: &Run,
        columns: Option<&[String]>,
    ) -> Result<(Frame, Option<Vec<u32>>)> {
        let p = &r.pipeline;
        match self {
            Input::File(data) => {
                // Frame::read's hint speaks of pipeline paths; --data is the user's own.
                super::output::input_exists("--data", data)?;
                Ok((Frame::read(&source_like_train(p, data), columns)?, None))
            }
            Input::Split(split) => {
                let fingerprints: Vec<(&str, u64, &str)> = r
                    .manifest
                    .data
                    .iter()
                    .map(|d| (d.split.as_str(), d.bytes, d.sha256.as_str()))
                    .collect();
                let (source, carved) = data::run_split(p, *split, &fingerprints)?;
                let frame = Frame::read(&source, columns)?;
                let rows = match carved {
                    true => Some(data::carved_rows(p, *split, &frame)?),
                    false => None,
                };
                Ok((frame, rows))
            }
        }
    }
}

/// The split of `--split`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum SplitArg {
    Valid,
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Valid => Split::Valid,
            SplitArg::Test => Split::Test,
        }
    }
}

pub(super) fn predict(r: &Run, input: &Input, out: &Path, keep: &[String]) -> Result<()> {
    let p = &r.pipeline;
    // Copied columns: the id column, then `--keep` in its order, each once.
    let mut copied: Vec<String> = p.id_column.iter().cloned().collect();
    for k in keep {
        if !copied.contains(k) {
            copied.push(k.clone());
        }
    }
    let mut pending = Predictions::new(p);
    let outputs = pending.column_names();
    if matches!(input, Input::Split(_)) && copied.iter().any(|c| c == "row") {
        return Err(Error::Usage(
            "--split writes a `row` column (the row's number in the file), and a copied column has that name\n  hint: rename the input column, or leave it out of --keep".into(),
        ));
    }
    if let Some(c) = copied.iter().find(|c| outputs.contains(c)) {
        return Err(Error::Usage(format!(
            "--keep {c}: the output has a prediction column of that name\n  hint: rename the input column"
        )));
    }
    let mut needed = data::feature_columns(p);
    needed.extend(copied.iter().cloned());
    let (frame, carved) = input.read(r, Some(&needed))?;
    // A run's split: the rows `eval --split` scores (the consistency policy applied), each
    // with its row number in the file.
    let (d, rows) = match input {
        Input::File(_) => (encode_unlabelled(&frame, &r.encoders, p)?, None),
        Input::Split(_) => {
            let labels = read_labels(&frame, carved.as_deref(), p)?;
            let rows = labels.keep.clone();
            let d = encode_split(Split::Predict, &frame, labels, &r.encoders, p)?;
            (d, Some(rows))
        }
    };
    for w in data::oov_warnings(p, &d)
        .into_iter()
        .chain(data::truncation_warnings(p, &d))
    {
        eprintln!("warning: {w}");
    }
    // Written in chunks as the driver scores them: memory for the predictions stays bounded.
    // Each copied column is read once; a chunk takes its rows from it.
    let passed: Vec<(&String, TableColumn)> = copied
        .iter()
        .map(|name| Ok((name, frame.pass_through(name)?)))
        .collect::<Result<_>>()?;
    let mut writer = TableWriter::create(out)?;
    // Rows before `from` are written.
    let mut from = 0usize;
    let mut flush = |from: usize, to: usize, pending: &mut Predictions| -> Result<()> {
        let idx: Vec<u32> = match &rows {
            Some(rows) => rows[from..to].to_vec(),
            None => (from as u32..to as u32).collect(),
        };
        let mut chunk = Vec::new();
        if rows.is_some() {
            let numbers = idx
                .iter()
                .map(|&i| frame.row_number(i as usize) as u64)
                .collect();
            chunk.push(("row".to_string(), TableColumn::U64(numbers)));
        }
        for (name, column) in &passed {
            chunk.push(((*name).clone(), column.take(&idx)?));
        }
        for (name, values) in pending.drain() {
            chunk.push((name, TableColumn::F64(values)));
        }
        writer.write(chunk)
    };
    crate::scoring::score(&r.model, &d, p.train.eval_batch_size, |batch, logits| {
        pending.push(&p.funnel, logits);
        if batch.end - from >= PREDICT_CHUNK {
            flush(from, batch.end, &mut pending)?;
            from = batch.end;
        }
        Ok(())
    })?;
    // The rest; with no rows at all, an empty chunk still writes the header.
    if d.rows > from || d.rows == 0 {
        flush(from, d.rows, &mut pending)?;
    }
    writer.finish()?;
    let kind = if format_from_extension(out) == Some(FileFormat::Parquet) {
        "parquet"
    } else {
        "csv"
    };
    eprintln!("wrote {} rows to {} ({kind})", d.rows, out.display());
    Ok(())
}
