//! A source of several files: a directory (every data file under it, at any depth) or a glob
//! (`logs/day=*/part-*.parquet`: `*` and `?` within one path component), read as one table in
//! a stable order (sorted by path). Files whose name starts with `.` or `_` (Spark's `_SUCCESS`,
//! checksum files) are not data.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether `path` is a pattern rather than a file name.
pub fn is_pattern(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?'])
}

/// The files of a source: the file itself, every data file under a directory, or the files a
/// glob matches, sorted. No file at all is an error naming the path.
pub fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if is_pattern(path) {
        expand(path, &mut out)?;
    } else if path.is_dir() {
        walk(path, &mut out)?;
    } else {
        return Ok(vec![path.to_path_buf()]);
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::data(
            path,
            match is_pattern(path) {
                true => "no file matches the pattern",
                false => "the directory holds no data file",
            },
        )
        .with_hint(
            "a source is a file, a directory of parts, or a pattern such as `logs/day=*/part-*.parquet` (relative to the pipeline file)",
        ));
    }
    Ok(out)
}

/// The directory a source's files are named from: the path itself for a directory, the
/// pattern's components before its first wildcard for a glob.
pub fn base(path: &Path) -> PathBuf {
    if !is_pattern(path) {
        return path.to_path_buf();
    }
    path.components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?']))
        .collect()
}

/// Whether a file name is data (not hidden, not a marker such as `_SUCCESS`).
fn is_data(name: &str) -> bool {
    !name.starts_with('.') && !name.starts_with('_')
}

fn read_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_data(&name) {
            entries.push((name, e.path()));
        }
    }
    Ok(entries)
}

/// Every data file under `dir`, at any depth.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for (_, path) in read_dir(dir)? {
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The files matching `pattern`, component by component from its first component holding a
/// wildcard.
fn expand(pattern: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let components: Vec<String> = pattern
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let first = components
        .iter()
        .position(|c| c.contains(['*', '?']))
        .unwrap_or(components.len());
    let base: PathBuf = components[..first].iter().collect();
    // A pattern with no directory before its wildcard (`*.csv`) starts here.
    let mut level = vec![match base.as_os_str().is_empty() {
        true => PathBuf::from("."),
        false => base,
    }];
    for (i, c) in components.iter().enumerate().skip(first) {
        let last = i + 1 == components.len();
        let mut next = Vec::new();
        for dir in &level {
            if !dir.is_dir() {
                continue;
            }
            for (name, path) in read_dir(dir)? {
                if matches(c, &name) && (last || path.is_dir()) {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    out.extend(level.into_iter().filter(|p| p.is_file()));
    Ok(())
}

/// Whether `name` matches `pattern`: `*` any run of characters, `?` one character.
fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_within_a_component() {
        assert!(matches("part-*.parquet", "part-0001.parquet"));
        assert!(matches("day=*", "day=2017-12-01"));
        assert!(matches("p?.csv", "p1.csv"));
        assert!(matches("*", "anything"));
        assert!(!matches("part-*.parquet", "part-0001.csv"));
        assert!(!matches("p?.csv", "p10.csv"));
        assert!(matches("*a*b", "xxaxxb"));
        assert!(!matches("*a*b", "xxbxxa"));
    }

    /// A directory gives every data file under it, sorted; a glob the files it matches; markers
    /// and hidden files are left out; nothing found is an error.
    #[test]
    fn directories_and_globs_list_their_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "logs/day=2/part-1.csv",
            "logs/day=1/part-2.csv",
            "logs/day=1/part-1.csv",
            "logs/day=1/_SUCCESS",
            "logs/day=1/.part-1.csv.crc",
            "logs/other.txt",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
                .collect()
        };
        let all = rel(files(&d.path().join("logs")).unwrap());
        assert_eq!(
            all,
            [
                "logs/day=1/part-1.csv",
                "logs/day=1/part-2.csv",
                "logs/day=2/part-1.csv",
                "logs/other.txt"
            ]
        );
        let glob = rel(files(&d.path().join("logs/day=*/part-*.csv")).unwrap());
        assert_eq!(
            glob,
            [
                "logs/day=1/part-1.csv",
                "logs/day=1/part-2.csv",
                "logs/day=2/part-1.csv"
            ]
        );
        let e = files(&d.path().join("logs/day=*/*.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no file matches the pattern"), "{e}");
    }
}
