//! What a run was trained on: each data file's path, size and SHA-256 of its bytes, hashed
//! once, beside the read (a streaming hash at disk speed, BENCHMARKS.md), stored in the
//! checkpoint and the manifest, and compared wherever a run is continued or reused. Content,
//! not size and modification time: an edit that keeps both is still another data set.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Split;
use crate::config::{Pipeline, SplitSource};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataFingerprint {
    pub split: String,
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl DataFingerprint {
    /// A file's size and SHA-256; for a source of several files (a directory, a glob), their
    /// total size and the SHA-256 of their list (each file's name under the source, size and
    /// SHA-256, in reading order), so a part added, removed, renamed or edited is another data
    /// set while the whole may move elsewhere.
    pub fn of(split: Split, path: &Path) -> Result<Self> {
        let files = crate::source::source_files(path)?;
        let single = files.len() == 1 && files[0] == path;
        let (mut bytes, mut listing) = (0u64, String::new());
        let mut sha256 = String::new();
        let base = crate::source::source_base(path);
        for f in &files {
            let size = std::fs::metadata(f).map_err(|e| Error::io(f, e))?.len();
            let hash = crate::fsutil::sha256_file(f)?;
            bytes += size;
            let name = f.strip_prefix(&base).unwrap_or(f).display().to_string();
            listing += &format!("{name}\t{size}\t{hash}\n");
            sha256 = hash;
        }
        if !single {
            sha256 = crate::fsutil::sha256_bytes(listing.as_bytes());
        }
        Ok(DataFingerprint {
            split: split.to_string(),
            path: path.display().to_string(),
            bytes,
            sha256,
        })
    }
}

/// The files a pipeline reads: the training file, then the valid and test files that are not
/// carved from it.
pub fn data_files(p: &Pipeline) -> Vec<(Split, PathBuf)> {
    let mut files = vec![(Split::Train, p.train_source.path.clone())];
    for (split, s) in [(Split::Valid, &p.valid), (Split::Test, &p.test)] {
        if let Some(SplitSource::File(f)) = s {
            files.push((split, f.path.clone()));
        }
    }
    files
}

/// Every data file of `p`, hashed.
pub fn fingerprints(p: &Pipeline) -> Result<Vec<DataFingerprint>> {
    data_files(p)
        .iter()
        .map(|(split, path)| DataFingerprint::of(*split, path))
        .collect()
}

/// How the data now differs from the data a run was trained on, naming the first file that
/// changed; none when every file is the same.
pub fn changed(then: &[DataFingerprint], now: &[DataFingerprint]) -> Option<String> {
    let short = |h: &str| h.chars().take(12).collect::<String>();
    for t in then {
        let Some(n) = now.iter().find(|n| n.split == t.split) else {
            return Some(format!(
                "the {} split was read from {}, and now has no file of its own",
                t.split, t.path
            ));
        };
        if n.path != t.path {
            return Some(format!(
                "the {} split was read from {}, now from {}",
                t.split, t.path, n.path
            ));
        }
        if n.sha256 != t.sha256 {
            return Some(format!(
                "{} ({} split) changed: it was {} bytes with SHA-256 {}…, it is {} bytes with SHA-256 {}…",
                t.path,
                t.split,
                t.bytes,
                short(&t.sha256),
                n.bytes,
                short(&n.sha256)
            ));
        }
    }
    now.iter()
        .find(|n| !then.iter().any(|t| t.split == n.split))
        .map(|n| {
            format!(
                "the {} split now has a file of its own ({}), and had none",
                n.split, n.path
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An edit that keeps the size and the modification time is still seen.
    #[test]
    fn an_edit_in_place_is_a_change() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.csv");
        std::fs::write(&f, "x,click\n1,0\n").unwrap();
        let modified = std::fs::metadata(&f).unwrap().modified().unwrap();
        let before = vec![DataFingerprint::of(Split::Train, &f).unwrap()];
        // sha256 of "x,click\n1,0\n" (python: hashlib.sha256(b"x,click\n1,0\n").hexdigest()).
        assert_eq!(
            before[0].sha256,
            crate::fsutil::sha256_bytes(b"x,click\n1,0\n")
        );
        std::fs::write(&f, "x,click\n1,1\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let after = vec![DataFingerprint::of(Split::Train, &f).unwrap()];
        assert_eq!((after[0].bytes, before[0].bytes), (12, 12));
        let why = changed(&before, &after).unwrap();
        assert!(
            why.contains("a.csv (train split) changed: it was 12 bytes"),
            "{why}"
        );
        assert_eq!(changed(&before, &before), None);
        assert!(
            changed(&before, &[])
                .unwrap()
                .contains("no file of its own")
        );
    }
}
