//! Splits carved from the training file: which rows go to validation and test (by the run's
//! seed), and, for a finished run, where one of its splits is to be found again.

use super::Split;
use crate::config::{FileSource, Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Rows of the training file (`n` rows) per split, each in file order.
pub struct Carved {
    pub valid: Option<Vec<u32>>,
    pub test: Option<Vec<u32>>,
    pub train: Vec<u32>,
}

/// Carve the validation share, then the test share, out of a random permutation drawn from the
/// run's seed; the rest is training.
pub fn carve(p: &Pipeline, n: usize) -> Carved {
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
        Some(SplitSource::Carved { .. }) => (p.train_source.clone(), true, "train"),
    };
    let unchanged = match fingerprints.iter().find(|d| d.0 == recorded) {
        Some(&(_, bytes, sha256)) => {
            let path = &file.path;
            let now = std::fs::metadata(path)
                .map_err(|e| {
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
                })?
                .len();
            now == bytes && crate::fsutil::sha256_file(path)? == sha256
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

/// The rows of `split` carved from a training file of `n` rows.
pub fn carved_rows(p: &Pipeline, split: Split, n: usize) -> Vec<u32> {
    let c = carve(p, n);
    match split {
        Split::Valid => c.valid,
        _ => c.test,
    }
    .unwrap_or_default()
}
