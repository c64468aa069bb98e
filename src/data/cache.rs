//! The encoded-data cache: a pipeline's encoded splits and fitted encoders on disk, so a run
//! whose data and encoding settings have not changed skips reading and encoding (`funnel
//! encode` builds it; `train` and `compare` read it; `validate` reads the files, which it is
//! there to check). It exists only where asked:
//! under `.funnel-cache/` beside the pipeline file, once `funnel encode` has created that
//! folder; a run finding the folder writes the entry it missed.
//!
//! An entry is a folder named by its key: `header.json` (the key, each data file's stamp, the
//! encoders, the warnings, each split's row count and arrays with their SHA-256) and one file
//! per array, plain little-endian values (`train.cat.0.u32`, `test.bag.1.offsets.u64`, ...):
//! what a memory map can read as it is. Little-endian arrays rather than Arrow IPC: the
//! arrays are flat vectors of one type each, a JSON header says what they are, and nothing
//! else needs reading them.
//!
//! The key hashes what the encoded data depends on: the pipeline's `data`, `features`, stage
//! labels (`label`, `truth`, `optional`), preset, `inconsistent_rows`, the seed when a split is
//! carved at random, and each data file's stamp: path, size, modification and change times,
//! inode, and SHA-256 of its first and last MiB. An edit keeps none of the change time, so an
//! entry of other data is never found; the header keeps the files' full SHA-256 (hashed when
//! the entry was built) for resume and `compare`. An entry whose arrays do not match their
//! hashes is corrupt: reported, encoded again, never used. Entries are written to a temporary
//! folder and renamed into place, so an interrupted build leaves no entry.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Splits;
use super::cache_entry::{self, FORMAT, Key, Lookup};
use crate::config::{Pipeline, SplitSource};
use crate::error::{Error, Result};
/// The cache's folder, beside the pipeline file.
pub const CACHE_DIR: &str = ".funnel-cache";
/// Bytes hashed at each end of a data file for its stamp.
const STAMP_BLOCK: u64 = 1 << 20;

/// Where the cache of `p` lives, whether or not it exists.
pub fn root(p: &Pipeline) -> PathBuf {
    p.file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(CACHE_DIR)
}

/// The key of `p`'s encoded data as its files are now.
pub fn key(p: &Pipeline) -> Result<Key> {
    #[derive(Serialize)]
    struct Parts<'a> {
        format: u32,
        data: &'a crate::config::raw::RawData,
        features: &'a crate::config::raw::RawFeatures,
        labels: Vec<(
            &'a str,
            &'a crate::config::raw::RawLabel,
            &'a Option<String>,
            bool,
        )>,
        preset: crate::config::ModelPreset,
        inconsistent_rows: crate::config::InconsistentRows,
        seed: Option<u64>,
        files: Vec<String>,
    }
    let r = &p.resolved;
    let carved = [&p.valid, &p.test]
        .into_iter()
        .any(|s| matches!(s, Some(SplitSource::Carved { .. })));
    let files = super::data_files(p)
        .iter()
        .map(|(_, path)| stamp(path))
        .collect::<Result<Vec<_>>>()?;
    let parts = Parts {
        format: FORMAT,
        data: &r.data,
        features: &r.features,
        labels: r
            .stages
            .iter()
            .map(|s| (s.name.as_str(), &s.label, &s.truth, s.optional))
            .collect(),
        preset: r.model.preset,
        inconsistent_rows: r.inconsistent_rows,
        seed: carved.then_some(p.train.seed),
        files,
    };
    let text = serde_json::to_string(&parts)
        .map_err(|e| Error::Internal(format!("cannot hash the pipeline: {e}")))?;
    Ok(Key {
        full: crate::fsutil::sha256_bytes(text.as_bytes()),
        data: crate::fsutil::sha256_bytes(parts.files.concat().as_bytes()),
    })
}

/// A data source's stamp: every file of it with its size, times, inode and the hash of its
/// first and last `STAMP_BLOCK` bytes.
fn stamp(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = String::new();
    for f in crate::source::source_files(path)? {
        let m = std::fs::metadata(&f).map_err(|e| Error::io(&f, e))?;
        let mut h = Sha256::new();
        let mut file = std::fs::File::open(&f).map_err(|e| Error::io(&f, e))?;
        let mut block = vec![0u8; STAMP_BLOCK.min(m.len()) as usize];
        file.read_exact(&mut block).map_err(|e| Error::io(&f, e))?;
        h.update(&block);
        if m.len() > STAMP_BLOCK {
            use std::io::{Seek, SeekFrom};
            let tail = STAMP_BLOCK.min(m.len() - STAMP_BLOCK);
            file.seek(SeekFrom::End(-(tail as i64)))
                .map_err(|e| Error::io(&f, e))?;
            let mut block = vec![0u8; tail as usize];
            file.read_exact(&mut block).map_err(|e| Error::io(&f, e))?;
            h.update(&block);
        }
        out += &format!(
            "{}\t{}\t{}.{}\t{}.{}\t{}:{}\t{:x}\n",
            f.display(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.dev(),
            m.ino(),
            h.finalize()
        );
    }
    Ok(out)
}

/// `prepare`, through the cache when the pipeline has one (`root` exists): the entry of the
/// same key is read instead of the files; a missing or unusable one is encoded again and
/// written. The lines say which, for the user.
pub fn prepare_cached(p: &Pipeline) -> Result<(Splits, Vec<String>)> {
    prepare_cached_in(p, &root(p))
}

/// As `prepare_cached`, with the cache in `root` (a resumed run's, recorded by the run it
/// continues: its pipeline file now lies in the run directory).
pub fn prepare_cached_in(p: &Pipeline, root: &Path) -> Result<(Splits, Vec<String>)> {
    if !root.is_dir() {
        return Ok((super::prepare(p)?, Vec::new()));
    }
    through(p, root)
}

/// `funnel encode`: the cache's entry for `p`, read or built (the cache created if need be).
pub fn encode(p: &Pipeline) -> Result<(Splits, Vec<String>)> {
    let root = root(p);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    through(p, &root)
}

/// The splits of `p` through the cache in `root`, which they remember (absolute, so a resume
/// from another folder finds it).
fn through(p: &Pipeline, root: &Path) -> Result<(Splits, Vec<String>)> {
    let (mut s, lines) = look_up_or_encode(p, root)?;
    s.cache = Some(std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()));
    Ok((s, lines))
}

fn look_up_or_encode(p: &Pipeline, root: &Path) -> Result<(Splits, Vec<String>)> {
    let key = key(p)?;
    let started = Instant::now();
    let mut lines = Vec::new();
    // A block-shuffled run trains from the entry's files a window at a time and scores its
    // validation and test rows a chunk at a time (`on_disk.rs`).
    let on_disk = matches!(p.train.shuffle, crate::config::Shuffle::Blocks { .. });
    match cache_entry::read(root, &key, on_disk) {
        Lookup::Found(s) => {
            let mut s = *s;
            s.read_secs = started.elapsed().as_secs_f64();
            lines.push(format!(
                "data: read from the encoded cache {} in {:.2}s (the files and encoding settings are those it was built from)",
                root.join(key.name()).display(),
                s.read_secs
            ));
            if let crate::config::Shuffle::Blocks {
                block_rows,
                blocks_per_window,
            } = p.train.shuffle
            {
                lines.push(format!(
                    "data: training rows read from the cache {} at a time (`train.shuffle`: windows of {blocks_per_window} blocks of {block_rows} rows), validation and test rows {} at a time, never all at once",
                    block_rows * blocks_per_window,
                    super::EVAL_CHUNK_ROWS
                ));
            }
            return Ok((s, lines));
        }
        Lookup::Missing => {}
        Lookup::Corrupt(why) => lines.push(format!(
            "warning: the encoded cache {} cannot be used ({why}); encoding again",
            root.join(key.name()).display()
        )),
    }
    if super::stream::streamable(p) {
        return streamed(p, root, &key, on_disk, lines);
    }
    let s = super::prepare(p)?;
    // The files must be the ones the key was taken from; otherwise the entry is not written.
    if key.full != self::key(p)?.full {
        lines.push("warning: the data files changed while they were read; the encoded cache is not written".into());
        return Ok((s, lines));
    }
    // The cache only saves time: a run whose data is encoded goes on when the entry cannot be
    // written (a full disk, a read-only folder, another run writing the same key).
    match cache_entry::write(root, &key, p, |dir| cache_entry::write_splits(dir, &s)) {
        Ok(entry) => lines.push(format!("data: encoded and cached in {}", entry.display())),
        Err(e) => lines.push(format!(
            "warning: the encoded cache was not written ({e}); the run goes on from the files"
        )),
    }
    Ok((s, lines))
}

/// Encode `p` into its entry a range of row groups at a time (`stream.rs`), then read the entry
/// as a run that found it would.
fn streamed(
    p: &Pipeline,
    root: &Path,
    key: &Key,
    on_disk: bool,
    mut lines: Vec<String>,
) -> Result<(Splits, Vec<String>)> {
    let started = Instant::now();
    let entry = cache_entry::write(root, key, p, |dir| {
        let contents = super::stream::encode_into(dir, p, super::stream::RANGE_ROWS)?;
        // The files must be the ones the key was taken from: otherwise no entry, and no run.
        if key.full != self::key(p)?.full {
            return Err(Error::data(
                &p.train_source.path,
                "the data files changed while they were read",
            )
            .with_hint("run again once nothing is writing to them"));
        }
        Ok(contents)
    })?;
    let secs = started.elapsed().as_secs_f64();
    lines.push(format!(
        "data: encoded a range of row groups at a time ({} rows or more) and cached in {} in {secs:.2}s",
        super::stream::RANGE_ROWS,
        entry.display()
    ));
    match cache_entry::read(root, key, on_disk) {
        Lookup::Found(s) => {
            let mut s = *s;
            s.encode_secs = secs;
            Ok((s, lines))
        }
        Lookup::Missing => Err(Error::Internal("the entry just written is missing".into())),
        Lookup::Corrupt(why) => Err(Error::Internal(format!(
            "the entry just written cannot be read: {why}"
        ))),
    }
}
