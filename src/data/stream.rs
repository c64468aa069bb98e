//! Streamed encoding into the cache: a pipeline whose training file is one Parquet file is
//! encoded a range of whole row groups at a time (about `RANGE_ROWS` rows), in two passes over
//! the file: the first fits the encoders (vocabulary counts, numeric statistics), the second
//! encodes each range and appends it to the entry's array files. The entry is the one the
//! in-memory path writes for the same data, array for array (tested).
//!
//! What is held at once: one range's decoded columns and encoded rows; each vocabulary's counts
//! (an entry per distinct training value: exact, and smaller than the embedding table the
//! vocabulary becomes); and per row of the file its split and its stage labels (a few bytes a
//! row, read before the passes). A bucketed numeric or a median fill keeps its training values
//! (8 bytes a row) for exact quantiles. Multi-valued features, sequences and a group column are
//! not fitted a range at a time yet: such pipelines are encoded in memory, as without a cache.
//! The leak check reads the first range's training rows (all of them in a file of one range).

use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use super::cache_entry::Contents;
use super::clock::Clock;
use super::encode::{Encoding, GroupIds, encode_frame};
use super::split_out::SplitOut;
use super::{Dataset, Split, StageLabels};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::{
    BagCounts, CategoricalEncoder, Encoders, NumericEncoder, NumericFit, Routing, TokenCounts,
    Tokens,
};
use crate::source::Frame;

/// Rows a range holds at least (but the last): whole row groups are added until it does.
pub(super) const RANGE_ROWS: usize = 1 << 20;

/// Whether `p` is encoded a range at a time: its training source is Parquet, one file or parts
/// (a sequence needs no fit of its own: its tokens take its target's vocabulary).
pub(super) fn streamable(p: &Pipeline) -> bool {
    p.train_source.format == crate::config::FileFormat::Parquet
}

/// Training values of a numeric feature its median fill holds in memory (32 MiB) before
/// spilling sorted runs to temporary files (`crate::spill`).
const MEDIAN_VALUES_HELD: usize = 1 << 22;

/// Where `l`'s rows that lie in `start..start + len` are in `l.keep`.
fn span(l: &StageLabels, start: usize, len: usize) -> std::ops::Range<usize> {
    let a = l.keep.partition_point(|&r| (r as usize) < start);
    a..l.keep.partition_point(|&r| (r as usize) < start + len)
}

/// The rows of `l` that lie in `start..start + len`, numbered from `start`.
fn rows_in_range(l: &StageLabels, start: usize, len: usize) -> Vec<u32> {
    l.keep[span(l, start, len)]
        .iter()
        .map(|&r| r - start as u32)
        .collect()
}

/// The labels of `l`'s rows that lie in `start..start + len`, numbered from `start`.
fn in_range(l: &StageLabels, start: usize, len: usize) -> StageLabels {
    let std::ops::Range { start: a, end: b } = span(l, start, len);
    StageLabels {
        reached: l.reached.iter().map(|c| c[a..b].to_vec()).collect(),
        own: l.own.iter().map(|c| c[a..b].to_vec()).collect(),
        keep: rows_in_range(l, start, len),
        dropped: vec![0; l.dropped.len()],
    }
}

/// One feature's fit, gathered a range at a time.
enum Fit<'p> {
    /// A hashed feature: nothing to fit.
    Hashed,
    Counts(TokenCounts),
    Numeric(Box<NumericFit<'p>>),
    /// A multi-valued feature's token counts (`None` when hashed).
    Bag(Option<BagCounts>),
}

/// Fit the encoders of `p` on the training rows (part 0 of each range's routing) of `frame`.
fn fit(
    p: &Pipeline,
    frame: &Frame,
    ranges: &[(usize, usize)],
    splits: &[(Split, StageLabels)],
    clock: &Clock,
) -> Result<Encoders> {
    let mut fits: Vec<Fit<'_>> = p
        .categorical
        .iter()
        .map(|c| match c.hash_buckets {
            Some(_) => Fit::Hashed,
            None => Fit::Counts(TokenCounts::default()),
        })
        .chain(p.numeric.iter().map(|n| {
            Fit::Numeric(Box::new(NumericFit::new(
                n,
                frame.file(),
                MEDIAN_VALUES_HELD,
            )))
        }))
        .chain(p.multi_valued.iter().map(|m| {
            Fit::Bag(match m.vocabulary.hash_buckets {
                Some(_) => None,
                None => Some(BagCounts::default()),
            })
        }))
        .collect();
    let (cats, nums) = (p.categorical.len(), p.numeric.len());
    for &(start, len) in ranges {
        let part = frame
            .rows(start, len)
            .ok_or_else(|| Error::Internal("a Parquet range could not be read".into()))?;
        // Only which rows of the range go where: the labels are not read while fitting.
        let rows: Vec<Vec<u32>> = splits
            .iter()
            .map(|(_, l)| rows_in_range(l, start, len))
            .collect();
        let keeps: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let routing = Routing::new(len, &keeps);
        fits.par_iter_mut().enumerate().try_for_each(|(j, f)| {
            clock.busy(|| match f {
                Fit::Hashed => Ok(()),
                Fit::Counts(c) => c.add(&part.column(&p.categorical[j].column)?, &routing),
                Fit::Numeric(n) => n.add(&part.column(&p.numeric[j - cats].column)?, &routing),
                Fit::Bag(None) => Ok(()),
                Fit::Bag(Some(c)) => {
                    let spec = &p.multi_valued[j - cats - nums];
                    let weights = spec.weight_column().map(|w| part.column(w)).transpose()?;
                    c.add(
                        spec,
                        &part.column(&spec.vocabulary.column)?,
                        weights.as_ref(),
                        &routing,
                    )
                }
            })
        })?;
    }
    let mut encoders = Encoders {
        categorical: Vec::new(),
        numeric: Vec::new(),
        multi_valued: Vec::new(),
    };
    // Each feature's fit finished on its own task: a median read off spilled runs, a vocabulary
    // ranked, side by side.
    enum Fitted {
        Categorical(CategoricalEncoder),
        Numeric(NumericEncoder),
        Bag(CategoricalEncoder),
    }
    let fitted = fits
        .into_par_iter()
        .enumerate()
        .map(|(j, f)| {
            Ok(match f {
                Fit::Hashed => Fitted::Categorical(CategoricalEncoder::with_tokens(
                    &p.categorical[j],
                    Tokens::default(),
                )),
                Fit::Counts(c) => {
                    let spec = &p.categorical[j];
                    Fitted::Categorical(CategoricalEncoder::with_tokens(
                        spec,
                        c.finish(spec.min_count),
                    ))
                }
                Fit::Numeric(n) => Fitted::Numeric(n.finish()?),
                Fit::Bag(c) => {
                    let spec = &p.multi_valued[j - cats - nums].vocabulary;
                    let tokens = c.map_or_else(Tokens::default, |c| c.finish(spec.min_count));
                    Fitted::Bag(CategoricalEncoder::with_tokens(spec, tokens))
                }
            })
        })
        .collect::<Vec<Result<Fitted>>>();
    // The first failing feature in the pipeline's order, whichever task failed first.
    for f in fitted {
        let f = f?;
        match f {
            Fitted::Categorical(c) => encoders.categorical.push(c),
            Fitted::Numeric(n) => encoders.numeric.push(n),
            Fitted::Bag(b) => encoders.multi_valued.push(b),
        }
    }
    Ok(encoders)
}

#[allow(clippy::too_many_arguments)] // each is one thing the range loop needs
/// Encode the split `name` of `frame` (its rows `labels.keep`, every split of the training
/// file in `splits`) a range at a time with `encoders`, appending each range to `outs`. The
/// training rows of the first range, when asked.
fn encode_ranges(
    dir: &Path,
    p: &Pipeline,
    frame: &Frame,
    splits: &[(Split, StageLabels)],
    encoders: &Encoders,
    range_rows: usize,
    outs: &mut Vec<SplitOut>,
    clock: &Clock,
) -> Result<Option<Dataset>> {
    let ranges = frame
        .row_ranges(range_rows)
        .unwrap_or_else(|| vec![(0, frame.len())]);
    let mut first_train = None;
    // Each split's groups numbered over the whole file, not range by range.
    let groups = Mutex::new(vec![GroupIds::default(); splits.len()]);
    for (start, len) in ranges {
        // The whole frame when it is one range (a CSV file of its own split), else the range.
        let sliced = match (start, len) == (0, frame.len()) {
            true => None,
            false => Some(frame.rows(start, len).ok_or_else(|| {
                Error::Internal(format!("rows {start}..{} could not be read", start + len))
            })?),
        };
        let part = sliced.as_ref().unwrap_or(frame);
        let labels = splits
            .iter()
            .map(|(name, l)| (*name, in_range(l, start, len)))
            .collect();
        let encoding = Encoding::Use(encoders);
        let (_, datasets) = encode_frame(part, labels, encoding, p, clock, Some(&groups))?;
        for d in datasets {
            let at = match outs.iter().position(|o| o.split() == d.split) {
                Some(i) => i,
                None => {
                    outs.push(SplitOut::create(dir, &d, frame.file())?);
                    outs.len() - 1
                }
            };
            outs[at].append(&d)?;
            if d.split == Split::Train && first_train.is_none() {
                first_train = Some(d);
            }
        }
    }
    Ok(first_train)
}

/// Encode `p` into the entry folder `dir`: what `cache_entry::write` asks of its `fill`.
pub(super) fn encode_into(dir: &Path, p: &Pipeline, range_rows: usize) -> Result<Contents> {
    let clock = Clock::new();
    let opened = super::open_files(p, &clock)?;
    let (splits, mut rows_digests) = super::label_splits(p, &opened, &clock)?;
    let full = &opened.full;
    let ranges = full
        .row_ranges(range_rows)
        .ok_or_else(|| Error::Internal("a streamed training file that is not Parquet".into()))?;
    let encoders = fit(p, full, &ranges, &splits, &clock)?;
    let mut outs = Vec::new();
    let first_train = encode_ranges(
        dir, p, full, &splits, &encoders, range_rows, &mut outs, &clock,
    )?
    .ok_or_else(|| Error::Internal("no training rows were encoded".into()))?;
    super::leaks::check(p, &first_train)?;
    drop(first_train);
    let mut dropped: Vec<(Split, Vec<usize>)> = splits
        .iter()
        .map(|(name, l)| (*name, l.dropped.clone()))
        .collect();
    for (name, frame) in &opened.own_files {
        let labels = clock.busy(|| super::read_labels(frame, None, p))?;
        if let Some(f) = opened
            .fingerprints
            .iter()
            .find(|f| f.split == name.as_str())
        {
            rows_digests.push((*name, super::rows_digest(f, &labels)));
        }
        dropped.push((*name, labels.dropped.clone()));
        encode_ranges(
            dir,
            p,
            frame,
            &[(*name, labels)],
            &encoders,
            range_rows,
            &mut outs,
            &clock,
        )?;
    }
    let positives: Vec<usize> = splits[0]
        .1
        .reached
        .iter()
        .map(|c| c.iter().filter(|&&v| v != 0).count())
        .collect();
    drop(splits);
    // Training first, then validation and test, as the in-memory path writes them.
    outs.sort_by_key(|o| o.split() != Split::Train);
    let mut finished = Vec::new();
    for o in outs {
        let split = o.split();
        let d = dropped
            .iter()
            .find(|(s, _)| *s == split)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        finished.push(o.finish(d)?);
    }
    let train = finished
        .first()
        .filter(|f| f.shape.split == Split::Train)
        .ok_or_else(|| Error::Internal("no training split".into()))?;
    let shapes: Vec<&Dataset> = finished.iter().map(|f| &f.shape).collect();
    let mut warnings = super::split_warnings(p, &shapes, &positives)?;
    warnings.extend(super::constant_named(
        p,
        &train.constant_ids,
        &train.constant_values,
    ));
    warnings.extend(super::cardinality_warnings(&encoders, train.shape.rows));
    let (files, valid_rows, test_rows) =
        super::provenance(full.len(), &opened.own_files, &rows_digests);
    Ok(Contents {
        encoders,
        warnings,
        files,
        fingerprints: opened.fingerprints.clone(),
        valid_rows,
        test_rows,
        splits: finished.into_iter().map(|f| f.header).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::cache_entry::write_splits;
    use super::*;

    const SPEC: &str = "name: s\nseed: 3\nstages:\n  - { name: click, rate: 0.2 }\n  - { name: buy, rate: 0.3 }\ncategorical:\n  - { name: user, vocab: 300, zipf: 0.8, effects: { click: 0.8, buy: 0.5 } }\n  - { name: item, vocab: 500, zipf: 0.5, effects: { click: 0.5 } }\nnumeric:\n  - { name: price, normal: { mean: 3, std: 1 }, effects: { buy: 0.5 } }\n  - { name: hour, uniform: { low: 0, high: 24 }, effects: { click: 0.3 } }\n";

    /// Every kind of column the streamed path encodes: a vocabulary with a `min_count`, a
    /// hashed feature, a standardised numeric with the median fill, a bucketed one feeding its
    /// value too, labels and truth; validation and test carved at random.
    const PIPELINE: &str = "name: streamed\ndata:\n  train: t.parquet\n  valid: { split_from: train, fraction: 0.15 }\n  test: { split_from: train, fraction: 0.2 }\nfeatures:\n  categorical:\n    - { name: user, min_count: 2 }\n    - { name: item, hash_buckets: 64 }\n  numeric:\n    - { name: price, missing: median }\n    - { name: hour, transform: quantile_buckets, buckets: 6, also_raw: true }\nstages:\n  - { name: click, label: click, truth: true_click }\n  - { name: buy, label: buy, truth: true_buy }\n";

    /// Multi-valued features: a history list truncated to its last 5 tokens with a
    /// `min_count`, and the same list hashed and truncated to its first 3 (with a group column
    /// in the pipeline).
    const BAGS: &str = "  multi_valued:\n    - { name: seen, max_len: 5, keep: last, min_count: 2 }\n    - { name: seen_hashed, column: seen, hash_buckets: 32, max_len: 3, pooling: sum }\n";

    /// Encoded a range of row groups at a time (ranges of 3 row groups of 400 rows, over 10
    /// row groups), the entry holds the arrays, encoders, warnings and digests the in-memory
    /// path writes for the same file, hash for hash; with multi-valued features too.
    #[test]
    fn streamed_entries_are_the_in_memory_entries() {
        let history = "histories:\n  - { name: seen, of: item, length: [0, 8], related: 0.2, groups: 500, per_match: { click: 0.5 } }\n";
        let with_bags = PIPELINE
            .replace("stages:\n", &format!("{BAGS}stages:\n"))
            .replace("features:\n", "  group_column: user\nfeatures:\n");
        let with_sequence = PIPELINE
            .replace(
                "{ name: item, hash_buckets: 64 }",
                "{ name: item, min_count: 2 }",
            )
            .replace(
                "stages:\n",
                "  sequences:\n    - { name: seen, target: item, max_len: 4 }\nstages:\n",
            );
        same_entries(SPEC, PIPELINE);
        same_entries(&format!("{SPEC}{history}"), &with_bags);
        same_entries(&format!("{SPEC}{history}"), &with_sequence);
        same_parts_entries();
    }

    /// A directory of Parquet parts streams part by part, a range of row groups at a time, to
    /// the in-memory path's entry.
    fn same_parts_entries() {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::generate::Spec::from_text(Path::new("s.yaml"), SPEC).unwrap();
        std::fs::create_dir(dir.path().join("parts")).unwrap();
        for (name, rows) in [("a", 1700), ("b", 900), ("c", 1300)] {
            let file = dir.path().join(format!("parts/{name}.parquet"));
            crate::generate::generate(&spec, rows, &file, 400).unwrap();
        }
        let file = dir.path().join("p.yaml");
        std::fs::write(
            &file,
            PIPELINE.replace(
                "train: t.parquet",
                "train: { path: parts, format: parquet }",
            ),
        )
        .unwrap();
        let p = Pipeline::load(&file).unwrap();
        let frame = Frame::read(&p.train_source, None).unwrap();
        let ranges = frame.row_ranges(1000).unwrap();
        // a: 1200 + 500 rows; b: 900; c: 1200 + 100, each range within its part.
        assert_eq!(
            ranges,
            [
                (0, 1200),
                (1200, 500),
                (1700, 900),
                (2600, 1200),
                (3800, 100)
            ]
        );
        both_entries(dir.path(), &p);
    }

    /// The entry of `p` written in memory and streamed (ranges of 1000 rows or more) in
    /// folders under `dir`: equal in everything, and the in-memory one returned.
    fn both_entries(dir: &Path, p: &Pipeline) -> Contents {
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let memory = write_splits(&a, &super::super::prepare(p).unwrap()).unwrap();
        let streamed = encode_into(&b, p, 1000).unwrap();
        assert_eq!(streamed.encoders, memory.encoders);
        assert_eq!(streamed.warnings, memory.warnings);
        assert_eq!(streamed.files, memory.files);
        assert_eq!(streamed.fingerprints, memory.fingerprints);
        assert_eq!(streamed.valid_rows, memory.valid_rows);
        assert_eq!(streamed.test_rows, memory.test_rows);
        let json = |c: &Contents| serde_json::to_value(&c.splits).unwrap();
        assert_eq!(json(&streamed), json(&memory));
        memory
    }

    fn same_entries(spec: &str, pipeline: &str) {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::generate::Spec::from_text(Path::new("s.yaml"), spec).unwrap();
        crate::generate::generate(&spec, 3900, &dir.path().join("t.parquet"), 400).unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, pipeline).unwrap();
        let p = Pipeline::load(&file).unwrap();
        let frame = Frame::read(&p.train_source, None).unwrap();
        assert_eq!(frame.row_ranges(1000).unwrap().len(), 4, "several ranges");
        let memory = both_entries(dir.path(), &p);
        assert!(!memory.encoders.categorical[0].tokens.is_empty());
        assert_eq!(memory.splits.len(), 3);
        let json = |c: &Contents| serde_json::to_value(&c.splits).unwrap();
        // The bags are there, encoded and truncated.
        let text = json(&memory).to_string();
        assert_eq!(
            text.contains("\"train.bag.0.ids.u32\""),
            p.token_lists().count() > 0,
            "{text}"
        );
        assert_eq!(
            text.contains("\"test.groups.u32\",780"),
            p.group_column.is_some(),
            "{text}"
        );
        if !p.multi_valued.is_empty() {
            assert!(!memory.encoders.multi_valued[0].tokens.is_empty());
            assert!(
                memory.warnings.iter().any(|w| w.contains("`max_len`")),
                "{:?}",
                memory.warnings
            );
        }
    }
}
