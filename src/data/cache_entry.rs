//! One entry of the encoded-data cache on disk (`cache.rs` says when one is used): its
//! `header.json` and one plain little-endian file per array, written into a temporary folder
//! and renamed into place; read back with every array checked against its SHA-256.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache_arrays::{Reader, Writer};
use super::on_disk::{Counts, OnDisk};
use super::{DataFingerprint, Dataset, Split, SplitData, Splits};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::{Bags, Encoders};

/// Changes whenever the layout of an entry does.
pub(super) const FORMAT: u32 = 2;

/// What the encoded data of `p` depends on, hashed: its entry's name and full key; and the
/// hash of its data files' stamps alone (an entry of the same pipeline whose files' stamps
/// differ is stale).
pub struct Key {
    pub(super) full: String,
    pub(super) data: String,
}

impl Key {
    /// The entry folder's name.
    pub(super) fn name(&self) -> &str {
        &self.full[..16]
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    key: String,
    /// The hash of the data files' stamps.
    data: String,
    pipeline: String,
    encoders: Encoders,
    warnings: Vec<String>,
    files: Vec<(String, usize)>,
    fingerprints: Vec<DataFingerprint>,
    valid_rows: Option<String>,
    test_rows: Option<String>,
    splits: Vec<SplitHeader>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SplitHeader {
    split: String,
    file: PathBuf,
    rows: usize,
    truncated: Vec<usize>,
    dropped: Vec<usize>,
    /// How many arrays of each kind.
    counts: Counts,
    /// Every array file with its length in values and its SHA-256.
    arrays: Vec<(String, usize, String)>,
}

/// Write the entry of `p` under `key` in `root`: `fill` writes its arrays into the folder it is
/// given and says what else the entry holds. Entries of the same pipeline over other stamps of
/// its data files are removed (their data changed).
pub(super) fn write(
    root: &Path,
    key: &Key,
    p: &Pipeline,
    fill: impl FnOnce(&Path) -> Result<Contents>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let entry = root.join(key.name());
    let tmp = root.join(format!("{}.tmp-{}", key.name(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = build(&tmp, key, p, fill).and_then(|()| {
        // An older entry of this key (corrupt, or of an older build) gives way to the new one;
        // when another run put its own in place meanwhile, that one stays.
        let _ = std::fs::remove_dir_all(&entry);
        match std::fs::rename(&tmp, &entry) {
            Err(_) if read_header(&entry).is_ok_and(|h| h.key == key.full) => Ok(()),
            renamed => renamed.map_err(|e| Error::io(&entry, e)),
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    built?;
    // Entries of this pipeline over other stamps of its files are stale: the data changed.
    // (Entries of other settings or seeds over the same files stay: `compare` reads them.)
    // Entries whose header cannot be read (damaged, or of another format) go too.
    for other in entries(root) {
        let stale = match read_header(&other) {
            Ok(h) => h.pipeline == pipeline_id(p) && h.data != key.data,
            Err(_) => true,
        };
        if other != entry && stale {
            let _ = std::fs::remove_dir_all(&other);
        }
    }
    Ok(entry)
}

/// Which pipeline an entry is of: its file and name (two pipelines of one name in one folder
/// are two pipelines).
fn pipeline_id(p: &Pipeline) -> String {
    format!("{} ({})", p.name, p.file.display())
}

/// What an entry holds besides its arrays, written into its header.
pub(super) struct Contents {
    pub encoders: Encoders,
    pub warnings: Vec<String>,
    pub files: Vec<(Split, usize)>,
    pub fingerprints: Vec<DataFingerprint>,
    pub valid_rows: Option<String>,
    pub test_rows: Option<String>,
    pub splits: Vec<SplitHeader>,
}

impl SplitHeader {
    /// The header of split `d` (only its name, file, rows, drops, truncations and how many
    /// columns of each kind it has are read) whose arrays are `arrays`.
    pub(super) fn of(d: &Dataset, arrays: Vec<(String, usize, String)>) -> SplitHeader {
        Self::with_counts(d, Counts::of(d), arrays)
    }

    /// As `of`, with the array counts given (a split written a range at a time, whose `d`
    /// holds no values).
    pub(super) fn with_counts(
        d: &Dataset,
        counts: Counts,
        mut arrays: Vec<(String, usize, String)>,
    ) -> SplitHeader {
        arrays.sort();
        SplitHeader {
            split: d.split.as_str().to_string(),
            file: d.file.clone(),
            rows: d.rows,
            truncated: d.truncated.clone(),
            dropped: d.dropped.clone(),
            counts,
            arrays,
        }
    }
}

/// The contents of an entry of splits encoded in memory, their arrays written into `dir`.
pub(super) fn write_splits(dir: &Path, s: &Splits) -> Result<Contents> {
    fn in_memory(d: &SplitData) -> Result<&Dataset> {
        d.in_memory()
            .ok_or_else(|| Error::Internal("a split read from the cache is written again".into()))
    }
    let mut splits = Vec::new();
    for d in [Some(&s.train), s.valid.as_ref(), s.test.as_ref()]
        .into_iter()
        .flatten()
    {
        let d = in_memory(d)?;
        let mut w = Writer {
            dir,
            arrays: Vec::new(),
        };
        write_split(&mut w, d)?;
        splits.push(SplitHeader::of(d, w.arrays));
    }
    Ok(Contents {
        encoders: s.encoders.clone(),
        warnings: s.warnings.clone(),
        files: s.files.clone(),
        fingerprints: s.fingerprints.clone(),
        valid_rows: s.valid_rows.clone(),
        test_rows: s.test_rows.clone(),
        splits,
    })
}

/// Write an entry's arrays and header into the folder `tmp`.
fn build(
    tmp: &Path,
    key: &Key,
    p: &Pipeline,
    fill: impl FnOnce(&Path) -> Result<Contents>,
) -> Result<()> {
    std::fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
    let c = fill(tmp)?;
    let header = Header {
        format: FORMAT,
        key: key.full.clone(),
        data: key.data.clone(),
        pipeline: pipeline_id(p),
        encoders: c.encoders,
        warnings: c.warnings,
        files: c.files.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        fingerprints: c.fingerprints,
        valid_rows: c.valid_rows,
        test_rows: c.test_rows,
        splits: c.splits,
    };
    let text = serde_json::to_string(&header)
        .map_err(|e| Error::Internal(format!("cannot write the cache header: {e}")))?;
    let path = tmp.join("header.json");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// Write the arrays of `d`, named after its split (`train.cat.0.u32`, ...).
pub(super) fn write_split(w: &mut Writer<'_>, d: &Dataset) -> Result<()> {
    let at = d.split.as_str();
    for (f, c) in d.cat.iter().enumerate() {
        w.array(&format!("{at}.cat.{f}"), c)?;
    }
    for (j, c) in d.num.iter().enumerate() {
        w.array(&format!("{at}.num.{j}"), c)?;
    }
    for (m, b) in d.bags.iter().enumerate() {
        w.array(&format!("{at}.bag.{m}.offsets"), &b.offsets)?;
        w.array(&format!("{at}.bag.{m}.ids"), &b.ids)?;
        w.array(&format!("{at}.bag.{m}.weights"), &b.weights)?;
    }
    for (k, c) in d.reached.iter().enumerate() {
        w.array(&format!("{at}.reached.{k}"), c)?;
    }
    for (k, c) in d.own.iter().enumerate() {
        w.array(&format!("{at}.own.{k}"), c)?;
    }
    for (k, c) in d.truth.iter().enumerate() {
        w.array(&format!("{at}.truth.{k}"), c)?;
    }
    w.array(&format!("{at}.groups"), &d.groups)
}

/// The entry folders of `root` (temporary folders of a build in progress or interrupted left
/// out).
fn entries(root: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.contains(".tmp-"))
        })
        .collect()
}

fn read_header(entry: &Path) -> std::result::Result<Header, String> {
    let path = entry.join("header.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("`header.json`: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("`header.json`: {e}"))
}

/// What a lookup found.
pub(super) enum Lookup {
    /// No entry of this key.
    Missing,
    /// The entry's splits.
    Found(Box<Splits>),
    /// An entry of this key that cannot be used, and why.
    Corrupt(String),
}

/// The entry of `key` under `root`, checked; its splits left on disk when asked.
pub(super) fn read(root: &Path, key: &Key, on_disk: bool) -> Lookup {
    let entry = root.join(key.name());
    if !entry.is_dir() {
        return Lookup::Missing;
    }
    match load(&entry, &key.full, on_disk) {
        Ok(s) => Lookup::Found(Box::new(s)),
        Err(why) => Lookup::Corrupt(why),
    }
}

fn load(entry: &Path, key: &str, on_disk: bool) -> std::result::Result<Splits, String> {
    let h = read_header(entry)?;
    if h.format != FORMAT || h.key != key {
        return Err("its header is of another key or format".into());
    }
    let mut datasets = Vec::new();
    let mut left_on_disk = Vec::new();
    for s in &h.splits {
        let r = Reader {
            dir: entry,
            arrays: s
                .arrays
                .iter()
                .map(|(f, n, sha)| (f.as_str(), (*n, sha.as_str())))
                .collect(),
        };
        let at = s.split.as_str();
        let split = match at {
            "train" => Split::Train,
            "valid" => Split::Valid,
            "test" => Split::Test,
            other => return Err(format!("a split named `{other}`")),
        };
        if on_disk {
            left_on_disk.push(OnDisk::open(&r, split, s.file.clone(), s.rows, s.counts)?);
            continue;
        }
        let n = s.counts;
        let bags = (0..n.bags)
            .map(|m| {
                Ok(Bags {
                    offsets: r.array(&format!("{at}.bag.{m}.offsets"))?,
                    ids: r.array(&format!("{at}.bag.{m}.ids"))?,
                    weights: r.array(&format!("{at}.bag.{m}.weights"))?,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let d = Dataset {
            split,
            file: s.file.clone(),
            rows: s.rows,
            cat: r.columns(&format!("{at}.cat"), n.cat)?,
            num: r.columns(&format!("{at}.num"), n.num)?,
            bags,
            truncated: s.truncated.clone(),
            reached: r.columns(&format!("{at}.reached"), n.reached)?,
            own: r.columns(&format!("{at}.own"), n.own)?,
            truth: r.columns(&format!("{at}.truth"), n.truth)?,
            groups: r.array(&format!("{at}.groups"))?,
            dropped: s.dropped.clone(),
        };
        if d.cat.iter().any(|c| c.len() != d.rows) || d.reached.iter().any(|c| c.len() != d.rows) {
            return Err(format!(
                "the {at} split's columns do not have its {} rows",
                d.rows
            ));
        }
        datasets.push(d);
    }
    let mut take = |split: Split| match on_disk {
        true => left_on_disk
            .iter()
            .position(|d| d.split() == split)
            .map(|i| SplitData::Disk(left_on_disk.swap_remove(i))),
        false => datasets
            .iter()
            .position(|d| d.split == split)
            .map(|i| SplitData::Memory(datasets.swap_remove(i))),
    };
    let train = take(Split::Train).ok_or("no training split")?;
    let (valid, test) = (take(Split::Valid), take(Split::Test));
    let files = h
        .files
        .iter()
        .map(|(s, n)| match s.as_str() {
            "train" => Ok((Split::Train, *n)),
            "valid" => Ok((Split::Valid, *n)),
            "test" => Ok((Split::Test, *n)),
            other => Err(format!("a file of a split named `{other}`")),
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(Splits {
        train,
        valid,
        test,
        encoders: h.encoders,
        warnings: h.warnings,
        files,
        fingerprints: h.fingerprints,
        valid_rows: h.valid_rows,
        test_rows: h.test_rows,
        cache: None,
        read_secs: 0.0,
        encode_secs: 0.0,
    })
}
