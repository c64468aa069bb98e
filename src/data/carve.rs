//! Splits carved from the training file: which rows go to validation and test (by the run's
//! seed, or by time: the latest rows), and, for a finished run, where one of its splits is to be
//! found again.

use super::Split;
use crate::config::{FileSource, Pipeline, SplitSource, TimeCut};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::source::Frame;

/// Rows of the training file (`n` rows) per split, each in file order.
pub struct Carved {
    pub valid: Option<Vec<u32>>,
    pub test: Option<Vec<u32>>,
    pub train: Vec<u32>,
}

/// The carved splits of a training file: by time when they are carved by a time column, else
/// at random with the run's seed.
pub fn carve(p: &Pipeline, frame: &Frame) -> Result<Carved> {
    match super::time_column(p) {
        Some(c) => by_time(p, frame, &c),
        None => Ok(at_random(p, frame.len())),
    }
}

/// Carve by the time in `column`: the test split is the latest rows (its share of them, or the
/// rows from its time on), the validation split the rows before them (likewise), the rest is
/// training. Rows of one time stay in one split, so a share takes at most the rows it asks
/// (fewer when its first time also holds earlier rows: those stay in the earlier split), except
/// when the latest time alone holds more than the share: then the split is that time. A row
/// without a readable time is an error naming it.
fn by_time(p: &Pipeline, frame: &Frame, column: &str) -> Result<Carved> {
    let col = frame.column(column)?;
    let mut times = Vec::with_capacity(frame.len());
    let numeric = frame.is_numeric(column)?;
    let unreadable = |i: usize, what: String| {
        col.error(Some(i), what).with_hint(
            "a time column holds numbers (such as Unix seconds) or dates (`2017-12-03`, `2017-12-03 08:00:00`), one on every row",
        )
    };
    if numeric {
        col.visit_f64(|i, v| match v {
            Some(t) if t.is_finite() => {
                times.push(t);
                Ok(())
            }
            _ => Err(unreadable(i, "the row has no time".into())),
        })?;
    } else {
        col.visit_str(|i, v| match v.and_then(crate::times::parse_time) {
            Some(t) => {
                times.push(t);
                Ok(())
            }
            None => Err(unreadable(i, format!("{v:?} is not a time"))),
        })?;
    }
    let cut = |s: &Option<SplitSource>| s.as_ref().and_then(SplitSource::by_time).map(|(_, c)| c);
    // Rows in time order (file order among equal times), then the cuts as times.
    let mut order: Vec<u32> = (0..times.len() as u32).collect();
    order.sort_by(|&a, &b| times[a as usize].total_cmp(&times[b as usize]));
    let n = times.len();
    let start = |c: TimeCut, end: usize| -> f64 {
        match c {
            TimeCut::From(t) => t,
            // The time of the first row of the latest share of the rows before `end`, moved on
            // to the next time when rows of that time lie before the share too.
            TimeCut::Fraction(f) => {
                let time = |k: usize| times[order[k] as usize];
                let take = ((n as f64) * f).round() as usize;
                let first = end.saturating_sub(take.max(1));
                let t = order
                    .get(first)
                    .map_or(f64::INFINITY, |&r| times[r as usize]);
                if first == 0 || time(first - 1) < t {
                    return t;
                }
                // Nothing later: the split is that whole time (more rows than asked, never none).
                let next = order.partition_point(|&r| times[r as usize] <= t);
                if next < end { time(next) } else { t }
            }
        }
    };
    let test_from = cut(&p.test).map(|c| start(c, n));
    // The validation share is taken from the rows before the test split.
    let before_test = test_from.map_or(n, |t| order.partition_point(|&r| times[r as usize] < t));
    let valid_from = cut(&p.valid).map(|c| start(c, before_test));
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &t) in times.iter().enumerate() {
        let row = i as u32;
        match (test_from, valid_from) {
            (Some(b), _) if t >= b => test.push(row),
            (_, Some(a)) if t >= a => valid.push(row),
            _ => train.push(row),
        }
    }
    Ok(Carved {
        valid: cut(&p.valid).map(|_| valid),
        test: cut(&p.test).map(|_| test),
        train,
    })
}

/// Carve the validation share, then the test share, out of a random permutation drawn from the
/// run's seed; the rest is training.
fn at_random(p: &Pipeline, n: usize) -> Carved {
    let mut perm = Rng::stream(p.train.seed, "split").permutation(n);
    let mut take = |s: &Option<SplitSource>| -> Option<Vec<u32>> {
        let Some(SplitSource::Carved { fraction }) = s else {
            return None;
        };
        let take = ((n as f64) * fraction).round() as usize;
        let mut rows: Vec<u32> = perm.drain(..take.min(perm.len())).collect();
        rows.sort_unstable();
        Some(rows)
    };
    let valid = take(&p.valid);
    let test = take(&p.test);
    perm.sort_unstable();
    Carved {
        valid,
        test,
        train: perm,
    }
}

/// Where a finished run's `split` (validation or test) is: its own file (`false`), or rows of
/// the training file (`true`: carve it again from the file's rows with the run's seed). Either
/// file must be the one the run fingerprinted: `fingerprints` are the manifest's (split, size,
/// SHA-256) of each file the run read.
pub fn run_split(
    p: &Pipeline,
    split: Split,
    fingerprints: &[(&str, u64, &str)],
) -> Result<(FileSource, bool)> {
    let source = match split {
        Split::Valid => &p.valid,
        Split::Test => &p.test,
        _ => {
            return Err(Error::Internal(
                "only valid and test splits are looked up".into(),
            ));
        }
    };
    let (file, carved, recorded) = match source {
        None => {
            return Err(Error::Usage(format!(
                "--split {s}: the run's pipeline has no `data.{s}` (it was trained without a {s} split)\n  hint: give a labelled file with --data FILE{}",
                if p.valid.is_some() || p.test.is_some() {
                    ", or the split it has"
                } else {
                    ""
                },
                s = split.as_str()
            )));
        }
        Some(SplitSource::File(f)) => (f.clone(), false, split.as_str()),
        Some(SplitSource::Carved { .. } | SplitSource::Latest { .. }) => {
            (p.train_source.clone(), true, "train")
        }
    };
    let unchanged = match fingerprints.iter().find(|d| d.0 == recorded) {
        Some(&(_, bytes, sha256)) => {
            let path = &file.path;
            let now = super::DataFingerprint::of(split, path).map_err(|e| {
                Error::data(
                    path,
                    format!(
                        "the run's {recorded} file cannot be read ({e}); --split {} reads it again",
                        split.as_str()
                    ),
                )
                .with_hint(format!(
                    "restore the file at this path (the run's `data.{recorded}.path`), or give the rows to score with --data FILE"
                ))
            })?;
            now.bytes == bytes && now.sha256 == sha256
        }
        None => false,
    };
    if !unchanged {
        let what = if carved {
            format!(
                "the training file is not the one the run was trained on (its SHA-256 differs), so the {} split cannot be carved again",
                split.as_str()
            )
        } else {
            format!(
                "the {} file is not the one the run was evaluated on (its SHA-256 differs)",
                split.as_str()
            )
        };
        return Err(
            Error::data(&file.path, what).with_hint(
                "restore the file the run was trained on (manifest.json records its size and SHA-256), or give the rows to score as a file with --data",
            )
        );
    }
    Ok((file, carved))
}

/// The rows of `split` carved from the training file `frame`.
pub fn carved_rows(p: &Pipeline, split: Split, frame: &Frame) -> Result<Vec<u32>> {
    let c = carve(p, frame)?;
    Ok(match split {
        Split::Valid => c.valid,
        _ => c.test,
    }
    .unwrap_or_default())
}
