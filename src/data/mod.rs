//! Data: reading sources, splitting, labels, encoding, and the encoded in-memory dataset; the
//! opening and labelling the in-memory preparation and the streamed one share.

mod batches;
mod cache;
mod cache_arrays;
mod cache_entry;
mod carve;
mod clock;
mod dataset;
mod encode;
mod fingerprint;
mod labels;
mod leaks;
mod on_disk;
mod split_out;
mod stream;
mod warnings;

pub use batches::{BatchSource, Batches, InMemory, Window, drive, order, windows};
pub use cache::{CACHE_DIR, encode as encode_cached, prepare_cached, prepare_cached_in};
pub use carve::{carved_rows, run_split};
pub use dataset::{Batch, Dataset, Split, append_columns};
pub use encode::{encode_split, encode_unlabelled};
pub use fingerprint::{DataFingerprint, changed, data_files, fingerprints};
pub use labels::{LabelFlags, StageLabels, binary_text, read_labels};
pub use leaks::{Values as LeakValues, leaks};
pub use on_disk::{FromDisk, OnDisk};
pub use warnings::{inconsistent_warnings, oov_warnings, truncation_warnings};

use clock::Clock;
use encode::{Encoding, encode_frame};
use warnings::{cardinality_warnings, constant_named, constant_warnings, split_warnings};

use crate::config::{Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::source::Frame;

/// Rows of a split on disk scored at a time (`SplitData::for_each_chunk`).
pub const EVAL_CHUNK_ROWS: usize = 1 << 18;

/// An encoded split: in memory, or left on disk in its encoded-cache entry (a block-shuffled
/// run whose data is cached: `data::cache`), training rows read a window at a time and
/// evaluation rows a chunk at a time in row order.
pub enum SplitData {
    Memory(Dataset),
    Disk(OnDisk),
}

impl SplitData {
    pub fn rows(&self) -> usize {
        match self {
            SplitData::Memory(d) => d.rows,
            SplitData::Disk(d) => d.rows(),
        }
    }

    /// Rows that reached stage `k`.
    pub fn positives(&self, k: usize) -> usize {
        match self {
            SplitData::Memory(d) => d.positives(k),
            SplitData::Disk(d) => d.positives(k),
        }
    }

    /// Tokens of token list `m` (`Pipeline::token_lists`) over every row.
    pub fn tokens(&self, m: usize) -> usize {
        match self {
            SplitData::Memory(d) => d.bags[m].ids.len(),
            SplitData::Disk(d) => d.tokens(m),
        }
    }

    /// Bytes of the whole split, encoded.
    pub fn bytes(&self) -> u64 {
        match self {
            SplitData::Memory(d) => d.bytes(),
            SplitData::Disk(d) => d.bytes(),
        }
    }

    pub fn in_memory(&self) -> Option<&Dataset> {
        match self {
            SplitData::Memory(d) => Some(d),
            SplitData::Disk(_) => None,
        }
    }

    /// Whether the rows carry a group (for group AUC).
    pub fn has_groups(&self) -> bool {
        match self {
            SplitData::Memory(d) => !d.groups.is_empty(),
            SplitData::Disk(d) => d.has_groups(),
        }
    }

    /// The rows in order, as whole datasets of at most `rows` rows each (a split in memory is
    /// one), each with the number of its first row.
    pub fn for_each_chunk(
        &self,
        rows: usize,
        mut each: impl FnMut(usize, &Dataset) -> Result<()>,
    ) -> Result<()> {
        match self {
            SplitData::Memory(d) => each(0, d),
            SplitData::Disk(d) => {
                for start in (0..d.rows()).step_by(rows.max(1)) {
                    each(start, &d.chunk(start, rows.min(d.rows() - start))?)?;
                }
                Ok(())
            }
        }
    }

    /// The split's batches, in the order `shuffle` says.
    pub fn source(&self, shuffle: crate::config::Shuffle) -> Box<dyn BatchSource + '_> {
        match self {
            SplitData::Memory(data) => Box::new(InMemory { data, shuffle }),
            SplitData::Disk(data) => Box::new(FromDisk { data, shuffle }),
        }
    }
}

/// The encoded splits of a pipeline and the encoders fitted on its training rows.
pub struct Splits {
    pub train: SplitData,
    pub valid: Option<SplitData>,
    pub test: Option<SplitData>,
    pub encoders: Encoders,
    /// Things the user should know but that do not stop training.
    pub warnings: Vec<String>,
    /// Each file read (`train`, and `valid`/`test` when they have their own) with its rows.
    pub files: Vec<(Split, usize)>,
    /// The same files' sizes and SHA-256, hashed while they were read.
    pub fingerprints: Vec<DataFingerprint>,
    /// SHA-256 of the validation and test rows: their file's content, which of its rows, and
    /// their stage labels. Runs scored on the same rows share it (`compare` pairs only those).
    pub valid_rows: Option<String>,
    pub test_rows: Option<String>,
    /// The encoded cache (absolute) the splits were read from or written to, if any.
    pub cache: Option<std::path::PathBuf>,
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
    cols.extend(p.group_column.iter().cloned());
    cols.extend(time_column(p));
    cols
}

/// The column splits are carved by, when they are carved by time.
pub fn time_column(p: &Pipeline) -> Option<String> {
    [&p.valid, &p.test]
        .into_iter()
        .find_map(|s| s.as_ref()?.by_time().map(|(c, _)| c.to_string()))
}

/// Columns prediction needs: features and the id column, never labels.
pub fn feature_columns(p: &Pipeline) -> Vec<String> {
    let mut cols: Vec<String> = p.feature_columns().map(str::to_string).collect();
    cols.extend(p.id_column.iter().cloned());
    cols
}

/// Each file read with its rows (the training file's `rows`, then the splits' own files), and
/// the digests of the validation and test rows among `digests`.
fn provenance(
    rows: usize,
    own_files: &[(Split, Frame)],
    digests: &[(Split, String)],
) -> (Vec<(Split, usize)>, Option<String>, Option<String>) {
    let mut files = vec![(Split::Train, rows)];
    files.extend(own_files.iter().map(|(name, f)| (*name, f.len())));
    let digest = |split: Split| {
        digests
            .iter()
            .find(|(s, _)| *s == split)
            .map(|(_, d)| d.clone())
    };
    (files, digest(Split::Valid), digest(Split::Test))
}

/// SHA-256 of a split's rows: its file's, the rows kept (their numbers in the file) and their
/// stage labels.
fn rows_digest(file: &DataFingerprint, labels: &StageLabels) -> String {
    let mut bytes = file.sha256.as_bytes().to_vec();
    bytes.extend(labels.keep.iter().flat_map(|r| r.to_le_bytes()));
    for stage in &labels.reached {
        bytes.extend_from_slice(stage);
    }
    crate::fsutil::sha256_bytes(&bytes)
}

/// A pipeline's data files opened (CSV parsed; a Parquet file's columns are decoded when
/// asked), and hashed while they were read.
struct Opened {
    full: Frame,
    own_files: Vec<(Split, Frame)>,
    fingerprints: Vec<DataFingerprint>,
}

/// Open every data file of `p` with the columns a labelled split needs.
fn open_files(p: &Pipeline, clock: &Clock) -> Result<Opened> {
    let cols = labelled_columns(p);
    // Every file is opened before any is refused, so one run names the faults of all. The
    // files are hashed on a thread of their own meanwhile, in a read of their own: a file
    // whose size or modification time moves between the start and the end of both is refused,
    // so the hash is of the bytes the rows came from.
    // The change time and the inode too: a tool that puts the old modification time back
    // (`cp -p`, `rsync -t`) cannot set them.
    let stamp = |path: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        // Every file of the source (a directory or a glob has several).
        let files = crate::source::source_files(path).unwrap_or_default();
        files
            .iter()
            .map(|f| {
                std::fs::metadata(f).ok().map(|m| {
                    (
                        m.len(),
                        m.modified().ok(),
                        (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    let before: Vec<_> = data_files(p)
        .into_iter()
        .map(|(_, path)| {
            let s = stamp(&path);
            (path, s)
        })
        .collect();
    let (full, own, hashed) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| fingerprints(p));
        let full = clock.busy(|| Frame::read(&p.train_source, Some(&cols)));
        let own: Vec<(Split, Result<Frame>)> = [(Split::Valid, &p.valid), (Split::Test, &p.test)]
            .into_iter()
            .filter_map(|(name, s)| match s {
                Some(SplitSource::File(src)) => Some((name, src)),
                _ => None,
            })
            .map(|(name, src)| (name, clock.busy(|| Frame::read(src, Some(&cols)))))
            .collect();
        let hashed = hashing
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("hashing the data failed".into())));
        (full, own, hashed)
    });
    let mut faults = Vec::new();
    let full = full.map_err(|e| faults.push(e)).ok();
    let own_files: Vec<(Split, Frame)> = own
        .into_iter()
        .filter_map(|(name, f)| f.map_err(|e| faults.push(e)).ok().map(|f| (name, f)))
        .collect();
    crate::error::gather(faults)?;
    let fingerprints = hashed?;
    for (path, then) in &before {
        if stamp(path) != *then {
            return Err(Error::data(
                path,
                "the file changed while it was read (its size, times or inode moved)",
            )
            .with_hint("run again once nothing is writing to it"));
        }
    }
    let full = full.ok_or_else(|| Error::Internal("the training file was not read".into()))?;
    Ok(Opened {
        full,
        own_files,
        fingerprints,
    })
}

/// The training file's rows of each split (training first) with their stage labels, and the
/// digests of the carved validation and test rows.
type Labelled = (Vec<(Split, StageLabels)>, Vec<(Split, String)>);

/// Carve the training file's splits and read their labels.
fn label_splits(p: &Pipeline, o: &Opened, clock: &Clock) -> Result<Labelled> {
    let full = &o.full;
    let carve::Carved {
        valid,
        test,
        train: train_rows,
    } = clock.busy(|| carve::carve(p, full))?;
    let carved = [(Split::Valid, valid), (Split::Test, test)];
    let mut rows_digests: Vec<(Split, String)> = Vec::new();
    // Label columns are read once for all splits carved from the training file, and so is
    // every feature column: rows are routed to their split as the column is encoded.
    let splits = clock.busy(|| -> Result<_> {
        let flags = LabelFlags::read(full, &p.stages)?;
        let mut splits = vec![(Split::Train, flags.select(full, Some(&train_rows), p)?)];
        if splits[0].1.keep.is_empty() {
            return Err(Error::data(
                full.file(),
                "the training split has no usable rows",
            ));
        }
        for (name, rows) in &carved {
            if let Some(rows) = rows {
                let labels = flags.select(full, Some(rows), p)?;
                rows_digests.push((*name, rows_digest(&o.fingerprints[0], &labels)));
                splits.push((*name, labels));
            }
        }
        Ok(splits)
    })?;
    Ok((splits, rows_digests))
}

/// Read, split, label, fit encoders on the training rows, and encode every split.
pub fn prepare(p: &Pipeline) -> Result<Splits> {
    let clock = Clock::new();
    let opened = open_files(p, &clock)?;
    let (splits, mut rows_digests) = label_splits(p, &opened, &clock)?;
    let Opened {
        full,
        own_files,
        fingerprints,
    } = opened;
    let n = full.len();
    let (encoders, mut datasets) = encode_frame(&full, splits, Encoding::Fit, p, &clock, None)?;
    let mut encoders =
        encoders.ok_or_else(|| Error::Internal("encoders were not fitted".into()))?;
    for (name, frame) in &own_files {
        let labels = clock.busy(|| read_labels(frame, None, p))?;
        if let Some(f) = fingerprints.iter().find(|f| f.split == name.as_str()) {
            rows_digests.push((*name, rows_digest(f, &labels)));
        }
        let (_, d) = encode_frame(
            frame,
            vec![(*name, labels)],
            Encoding::Use(&encoders),
            p,
            &clock,
            None,
        )?;
        datasets.extend(d);
    }
    encoders.forget_indexes();
    crate::runtime::release_freed_memory();

    let mut take = |name: Split| {
        datasets
            .iter()
            .position(|d| d.split == name)
            .map(|i| datasets.swap_remove(i))
    };
    let train = take(Split::Train).ok_or_else(|| Error::Internal("no training split".into()))?;
    let valid = take(Split::Valid);
    let test = take(Split::Test);
    let shapes: Vec<&Dataset> = [Some(&train), valid.as_ref(), test.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let positives: Vec<usize> = (0..p.stages.len()).map(|k| train.positives(k)).collect();
    let mut warnings = split_warnings(p, &shapes, &positives)?;
    leaks::check(p, &train)?;
    warnings.extend(constant_warnings(p, &train));
    warnings.extend(cardinality_warnings(&encoders, train.rows));
    let (files, valid_rows, test_rows) = provenance(n, &own_files, &rows_digests);
    // The checks above are part of encoding: a run pays for them before its first step.
    let read_busy = full.read_secs() + own_files.iter().map(|(_, f)| f.read_secs()).sum::<f64>();
    let (read_secs, encode_secs) = clock.split(read_busy);
    Ok(Splits {
        files,
        fingerprints,
        valid_rows,
        test_rows,
        train: SplitData::Memory(train),
        valid: valid.map(SplitData::Memory),
        test: test.map(SplitData::Memory),
        encoders,
        warnings,
        cache: None,
        read_secs,
        encode_secs,
    })
}
