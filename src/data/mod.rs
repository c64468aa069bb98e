//! Data: reading sources, splitting, labels, encoding, and the encoded in-memory dataset.

mod dataset;
mod labels;
pub mod source;

pub use dataset::{Batch, Dataset};
pub use labels::{LabelFlags, StageLabels, read_labels};

use crate::config::{FileSource, Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::rng::Rng;
use source::{Frame, RowSubset};

/// The encoded splits of a pipeline and the encoders fitted on its training rows.
pub struct Splits {
    pub train: Dataset,
    pub valid: Option<Dataset>,
    pub test: Option<Dataset>,
    pub encoders: Encoders,
    /// Things the user should know but that do not stop training.
    pub warnings: Vec<String>,
    /// Seconds spent reading files, and labelling + fitting encoders + encoding.
    pub read_secs: f64,
    pub encode_secs: f64,
}

/// Columns a labelled split must have.
fn labelled_columns(p: &Pipeline) -> Vec<String> {
    let mut cols: Vec<String> = p.feature_columns().map(str::to_string).collect();
    cols.extend(p.stages.iter().map(|s| s.label.column.clone()));
    cols.extend(p.stages.iter().filter_map(|s| s.truth.clone()));
    cols.extend(p.id_column.iter().cloned());
    cols
}

/// Columns prediction needs: features and the id column, never labels.
pub fn feature_columns(p: &Pipeline) -> Vec<String> {
    let mut cols: Vec<String> = p.feature_columns().map(str::to_string).collect();
    cols.extend(p.id_column.iter().cloned());
    cols
}

/// Check that every file source exists and has the columns the pipeline reads.
pub fn check_headers(p: &Pipeline) -> Result<Vec<(String, usize)>> {
    let cols = labelled_columns(p);
    let mut seen = Vec::new();
    let mut check = |name: &str, src: &FileSource| -> Result<()> {
        let f = Frame::read(src, Some(&cols))?;
        seen.push((name.to_string(), f.len()));
        Ok(())
    };
    check("train", &p.train_source)?;
    for (name, s) in [("valid", &p.valid), ("test", &p.test)] {
        if let Some(SplitSource::File(src)) = s {
            check(name, src)?;
        }
    }
    Ok(seen)
}

/// Read, split, label, fit encoders on the training rows, and encode every split.
pub fn prepare(p: &Pipeline) -> Result<Splits> {
    let start = std::time::Instant::now();
    let cols = labelled_columns(p);
    let full = Frame::read(&p.train_source, Some(&cols))?;
    let n = full.len();
    // Carve valid/test shares out of the training file with the run seed; rows keep file order.
    let mut perm = Rng::stream(p.train.seed, "split").permutation(n);
    let mut carve = |s: &Option<SplitSource>| -> Option<Vec<u32>> {
        let Some(SplitSource::Carved { fraction }) = s else {
            return None;
        };
        let take = ((n as f64) * fraction).round() as usize;
        let mut rows: Vec<u32> = perm.drain(..take.min(perm.len())).collect();
        rows.sort_unstable();
        Some(rows)
    };
    let valid_rows = carve(&p.valid);
    let test_rows = carve(&p.test);
    perm.sort_unstable();
    let train_rows = perm;
    // Splits read from their own files; carved splits stay row lists into `full` (no copies).
    let own_file = |s: &Option<SplitSource>| -> Result<Option<Frame>> {
        match s {
            Some(SplitSource::File(src)) => Ok(Some(Frame::read(src, Some(&cols))?)),
            _ => Ok(None),
        }
    };
    let valid_frame = own_file(&p.valid)?;
    let test_frame = own_file(&p.test)?;
    let read_secs = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();

    // Label columns are read once for all splits carved from the training file.
    let flags = LabelFlags::read(&full, &p.stages)?;
    let train_labels = flags.select(&full, Some(&train_rows), &p.stages, p.inconsistent_rows)?;
    if train_labels.keep.is_empty() {
        return Err(Error::data(
            full.file(),
            "the training split has no usable rows",
        ));
    }
    let encoders = Encoders::fit(&p.categorical, &p.numeric, &full, &train_labels.keep)?;
    let mut warnings = Vec::new();
    let train = encode_split("train", &full, train_labels, &encoders, p)?;
    let encode_opt =
        |name: &str, own: Option<Frame>, carved: Option<Vec<u32>>| -> Result<Option<Dataset>> {
            let (frame, rows) = match (&own, &carved) {
                (Some(f), _) => (f, None),
                (None, Some(r)) => (&full, Some(r.as_slice())),
                (None, None) => return Ok(None),
            };
            let labels = match rows {
                Some(rows) => flags.select(frame, Some(rows), &p.stages, p.inconsistent_rows)?,
                None => read_labels(frame, None, &p.stages, p.inconsistent_rows)?,
            };
            encode_split(name, frame, labels, &encoders, p).map(Some)
        };
    let valid = encode_opt("valid", valid_frame, valid_rows)?;
    let test = encode_opt("test", test_frame, test_rows)?;
    for d in [Some(&train), valid.as_ref(), test.as_ref()]
        .into_iter()
        .flatten()
    {
        if d.rows == 0 {
            return Err(Error::data(
                &d.file,
                format!("the {} split has no usable rows", d.split),
            ));
        }
        for (k, &count) in d.dropped.iter().enumerate() {
            if count > 0 {
                warnings.push(format!(
                    "{}: dropped {count} inconsistent row(s) that reached `{}` without `{}`",
                    d.split,
                    p.stages[k].name,
                    p.stages[k - 1].name
                ));
            }
        }
    }
    for (k, s) in p.stages.iter().enumerate() {
        if train.positives(k) == 0 {
            warnings.push(format!(
                "train: stage `{}` has no positive rows; its probabilities cannot be learned",
                s.name
            ));
        }
    }
    Ok(Splits {
        train,
        valid,
        test,
        encoders,
        warnings,
        read_secs,
        encode_secs: start.elapsed().as_secs_f64(),
    })
}

/// Encode one labelled frame (after its labels were read and checked).
pub fn encode_split(
    name: &str,
    frame: &Frame,
    labels: StageLabels,
    encoders: &Encoders,
    p: &Pipeline,
) -> Result<Dataset> {
    let (cat, num) = encoders.encode(frame, &labels.keep)?;
    let ids = read_ids(frame, p, &labels.keep)?;
    let truth = p
        .stages
        .iter()
        .filter_map(|s| s.truth.as_deref())
        .map(|col| read_truth(frame, col, &labels.keep))
        .collect::<Result<Vec<_>>>()?;
    Ok(Dataset {
        split: name.to_string(),
        file: frame.file().to_path_buf(),
        rows: labels.keep.len(),
        cat,
        num,
        reached: labels.reached,
        truth,
        ids,
        dropped: labels.dropped,
    })
}

/// Encode every row of a frame without labels (for prediction).
pub fn encode_unlabelled(frame: &Frame, encoders: &Encoders, p: &Pipeline) -> Result<Dataset> {
    let all: Vec<u32> = (0..frame.len() as u32).collect();
    let (cat, num) = encoders.encode(frame, &all)?;
    Ok(Dataset {
        split: "predict".into(),
        file: frame.file().to_path_buf(),
        rows: frame.len(),
        cat,
        num,
        reached: Vec::new(),
        truth: Vec::new(),
        ids: read_ids(frame, p, &all)?,
        dropped: Vec::new(),
    })
}

/// A truth column's probabilities for the kept rows; each must lie in [0, 1].
fn read_truth(frame: &Frame, col: &str, keep: &[u32]) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(keep.len());
    let mut subset = RowSubset::new(keep);
    frame.visit_f64(col, |i, v| {
        if !subset.take(i) {
            return Ok(());
        }
        match v {
            Some(x) if (0.0..=1.0).contains(&x) => {
                out.push(x);
                Ok(())
            }
            _ => Err(Error::data_at(
                frame.file(),
                col,
                Some(frame.row_number(i)),
                format!("truth value {v:?} is not a probability"),
            )),
        }
    })?;
    Ok(out)
}

fn read_ids(frame: &Frame, p: &Pipeline, keep: &[u32]) -> Result<Option<Vec<Option<String>>>> {
    let Some(col) = &p.id_column else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(keep.len());
    let mut subset = RowSubset::new(keep);
    frame.visit_str(col, |i, v| {
        if subset.take(i) {
            ids.push(v.map(str::to_string));
        }
        Ok(())
    })?;
    Ok(Some(ids))
}
