//! Data: reading sources, splitting, labels, encoding, and the encoded in-memory dataset.

mod dataset;
mod labels;
mod routing;
pub mod source;

pub use dataset::{Batch, Dataset};
pub use labels::{LabelFlags, StageLabels, read_labels};
pub use routing::Routing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::config::{FileSource, Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::features::{CategoricalEncoder, Encoders, NumericEncoder};
use crate::rng::Rng;
use source::{Column, Frame};

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

/// Wall-clock data preparation split between reading files and encoding. Parquet columns are
/// decoded inside the parallel encoding tasks, so the two overlap: the wall time is apportioned
/// by the share of busy time (summed over threads) that went to reading.
struct Clock {
    start: Instant,
    busy_ns: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            busy_ns: AtomicU64::new(0),
        }
    }

    fn busy<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
        r
    }

    /// (read, encode) seconds of wall time, given the seconds spent reading.
    fn split(&self, read_busy: f64) -> (f64, f64) {
        let wall = self.start.elapsed().as_secs_f64();
        let busy = self.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        let read = if busy > 0.0 {
            wall * (read_busy / busy).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (read, wall - read)
    }
}

/// Read, split, label, fit encoders on the training rows, and encode every split.
pub fn prepare(p: &Pipeline) -> Result<Splits> {
    let clock = Clock::new();
    let cols = labelled_columns(p);
    let full = clock.busy(|| Frame::read(&p.train_source, Some(&cols)))?;
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
    let carved = [("valid", carve(&p.valid)), ("test", carve(&p.test))];
    perm.sort_unstable();
    let train_rows = perm;
    let own_files = [("valid", &p.valid), ("test", &p.test)]
        .into_iter()
        .filter_map(|(name, s)| match s {
            Some(SplitSource::File(src)) => Some((name, src)),
            _ => None,
        })
        .map(|(name, src)| Ok((name, clock.busy(|| Frame::read(src, Some(&cols)))?)))
        .collect::<Result<Vec<_>>>()?;

    // Label columns are read once for all splits carved from the training file, and so is
    // every feature column: rows are routed to their split as the column is encoded.
    let (encoders, mut datasets) = clock
        .busy(|| -> Result<_> {
            let flags = LabelFlags::read(&full, &p.stages)?;
            let mut splits = vec![(
                "train",
                flags.select(&full, Some(&train_rows), &p.stages, p.inconsistent_rows)?,
            )];
            if splits[0].1.keep.is_empty() {
                return Err(Error::data(
                    full.file(),
                    "the training split has no usable rows",
                ));
            }
            for (name, rows) in &carved {
                if let Some(rows) = rows {
                    let labels = flags.select(&full, Some(rows), &p.stages, p.inconsistent_rows)?;
                    splits.push((name, labels));
                }
            }
            Ok(splits)
        })
        .and_then(|splits| encode_frame(&full, splits, Encoding::Fit, p, &clock))?;
    let mut encoders =
        encoders.ok_or_else(|| Error::Internal("encoders were not fitted".into()))?;
    for (name, frame) in &own_files {
        let labels = clock.busy(|| read_labels(frame, None, &p.stages, p.inconsistent_rows))?;
        let (_, d) = encode_frame(
            frame,
            vec![(name, labels)],
            Encoding::Use(&encoders),
            p,
            &clock,
        )?;
        datasets.extend(d);
    }
    encoders.forget_indexes();
    crate::runtime::release_freed_memory();
    let read_busy = full.read_secs() + own_files.iter().map(|(_, f)| f.read_secs()).sum::<f64>();
    let (read_secs, encode_secs) = clock.split(read_busy);

    let mut take = |name: &str| {
        datasets
            .iter()
            .position(|d| d.split == name)
            .map(|i| datasets.swap_remove(i))
    };
    let train = take("train").ok_or_else(|| Error::Internal("no training split".into()))?;
    let valid = take("valid");
    let test = take("test");
    let mut warnings = Vec::new();
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
        encode_secs,
    })
}

/// Whether a frame's encoders are fitted on its first split, or were fitted before.
#[derive(Clone, Copy)]
enum Encoding<'a> {
    Fit,
    Use(&'a Encoders),
}

/// One column's work: each runs as a parallel task that reads its column, encodes it for
/// every split, and drops it.
enum Job {
    Cat(usize),
    Num(usize),
    Truth(usize),
    Ids,
}

enum Done {
    Cat(Option<CategoricalEncoder>, Vec<Vec<u32>>),
    Num(Option<NumericEncoder>, Vec<Vec<f32>>),
    Truth(Vec<Vec<f64>>),
    Ids(Vec<Vec<Option<String>>>),
}

/// Encode the splits of one frame (each a list of rows with its labels), reading each column
/// once; with `Encoding::Fit` the encoders are fitted on the first split in the same pass and
/// returned.
fn encode_frame(
    frame: &Frame,
    splits: Vec<(&str, StageLabels)>,
    encoding: Encoding<'_>,
    p: &Pipeline,
    clock: &Clock,
) -> Result<(Option<Encoders>, Vec<Dataset>)> {
    let keeps: Vec<&[u32]> = splits.iter().map(|(_, l)| l.keep.as_slice()).collect();
    let routing = Routing::new(frame.len(), &keeps);
    let labelled = splits.iter().all(|(_, l)| !l.reached.is_empty());
    let truth: Vec<&str> = match labelled {
        true => p.stages.iter().filter_map(|s| s.truth.as_deref()).collect(),
        false => Vec::new(),
    };
    let mut jobs: Vec<Job> = (0..p.categorical.len()).map(Job::Cat).collect();
    jobs.extend((0..p.numeric.len()).map(Job::Num));
    jobs.extend((0..truth.len()).map(Job::Truth));
    jobs.extend(p.id_column.iter().map(|_| Job::Ids));
    let run = |job: &Job| -> Result<Done> {
        Ok(match *job {
            Job::Cat(f) => {
                let spec = &p.categorical[f];
                let col = frame.column(&spec.column)?;
                match encoding {
                    Encoding::Fit => {
                        let (enc, out) = CategoricalEncoder::fit_encode(spec, &col, &routing)?;
                        Done::Cat(Some(enc), out)
                    }
                    Encoding::Use(e) => {
                        Done::Cat(None, e.categorical[f].encode_column(&col, &routing)?)
                    }
                }
            }
            Job::Num(j) => {
                let spec = &p.numeric[j];
                let col = frame.column(&spec.column)?;
                match encoding {
                    Encoding::Fit => {
                        let enc = NumericEncoder::fit(spec, &col, &routing)?;
                        let out = enc.encode_column(&col, &routing)?;
                        Done::Num(Some(enc), out)
                    }
                    Encoding::Use(e) => {
                        Done::Num(None, e.numeric[j].encode_column(&col, &routing)?)
                    }
                }
            }
            Job::Truth(t) => Done::Truth(read_truth(&frame.column(truth[t])?, &routing)?),
            Job::Ids => {
                let name = p.id_column.as_deref().unwrap_or_default();
                Done::Ids(read_ids(&frame.column(name)?, &routing)?)
            }
        })
    };
    let done = jobs
        .par_iter()
        .map(|job| clock.busy(|| run(job)))
        .collect::<Result<Vec<Done>>>()?;

    let parts = splits.len();
    let mut fitted = Encoders {
        categorical: Vec::new(),
        numeric: Vec::new(),
    };
    let mut cat = vec![Vec::new(); parts];
    let mut num = vec![Vec::new(); parts];
    let mut truths = vec![Vec::new(); parts];
    let mut ids: Vec<Option<Vec<Option<String>>>> = vec![None; parts];
    for d in done {
        match d {
            Done::Cat(enc, out) => {
                fitted.categorical.extend(enc);
                for (c, o) in cat.iter_mut().zip(out) {
                    c.push(o);
                }
            }
            Done::Num(enc, out) => {
                fitted.numeric.extend(enc);
                for (c, o) in num.iter_mut().zip(out) {
                    c.push(o);
                }
            }
            Done::Truth(out) => {
                for (c, o) in truths.iter_mut().zip(out) {
                    c.push(o);
                }
            }
            Done::Ids(out) => {
                for (c, o) in ids.iter_mut().zip(out) {
                    *c = Some(o);
                }
            }
        }
    }
    let encoders = match encoding {
        Encoding::Fit => Some(fitted),
        Encoding::Use(_) => None,
    };
    let datasets = splits
        .into_iter()
        .zip(cat.into_iter().zip(num))
        .zip(truths.into_iter().zip(ids))
        .map(|(((name, labels), (cat, num)), (truth, ids))| Dataset {
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
        .collect();
    Ok((encoders, datasets))
}

/// Encode one labelled frame (after its labels were read and checked) with fitted encoders.
pub fn encode_split(
    name: &str,
    frame: &Frame,
    labels: StageLabels,
    encoders: &Encoders,
    p: &Pipeline,
) -> Result<Dataset> {
    let (_, mut d) = encode_frame(
        frame,
        vec![(name, labels)],
        Encoding::Use(encoders),
        p,
        &Clock::new(),
    )?;
    d.pop()
        .ok_or_else(|| Error::Internal("no encoded split".into()))
}

/// Encode every row of a frame without labels (for prediction).
pub fn encode_unlabelled(frame: &Frame, encoders: &Encoders, p: &Pipeline) -> Result<Dataset> {
    let all = StageLabels {
        reached: Vec::new(),
        keep: (0..frame.len() as u32).collect(),
        dropped: Vec::new(),
    };
    encode_split("predict", frame, all, encoders, p)
}

/// A truth column's probabilities for every part; each must lie in [0, 1].
fn read_truth(col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<f64>>> {
    let mut out = routing.outputs();
    col.visit_f64(|i, v| {
        let Some(part) = routing.part(i) else {
            return Ok(());
        };
        match v {
            Some(x) if (0.0..=1.0).contains(&x) => {
                out[part].push(x);
                Ok(())
            }
            _ => Err(col.error(Some(i), format!("truth value {v:?} is not a probability"))),
        }
    })?;
    Ok(out)
}

/// The id column's values for every part.
fn read_ids(col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<Option<String>>>> {
    let mut out = routing.outputs();
    col.visit_str(|i, v| {
        if let Some(part) = routing.part(i) {
            out[part].push(v.map(str::to_string));
        }
        Ok(())
    })?;
    Ok(out)
}
