//! Atomic file writes (temporary file in the same folder, then rename) and file fingerprints.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Write `bytes` to `path` so that readers see either the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// A temporary path next to `path` (same folder, so a rename is atomic). The folder must exist.
pub fn temp_sibling(path: &Path) -> Result<std::path::PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: the folder {} does not exist\n  hint: create it first (`mkdir -p {}`), or write elsewhere",
            path.display(),
            dir.display(),
            dir.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    Ok(dir.join(format!(".{name}.tmp-{}", std::process::id())))
}

/// Like `write_atomic`, with the content produced by `fill` into the temporary file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    // Removed if anything fails, and if the process is interrupted before the rename.
    let (tmp, mut f) =
        crate::interrupt::Temp::create(temp_sibling(path)?).map_err(|e| Error::io(path, e))?;
    let result = (|| {
        fill(&mut f)?;
        f.sync_all()?;
        crate::interrupt::testing_pause("write");
        tmp.commit(path)
    })();
    result.map_err(|e| Error::io(path, e))
}

/// Like `write_atomic_with`, streaming through a buffer, and returning the hex SHA-256 of what
/// was written (so large content need not be held in memory to be both written and hashed).
pub fn write_atomic_hashed(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<String> {
    struct Hashing<W> {
        inner: W,
        hash: Sha256,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hash.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let mut digest = None;
    write_atomic_with(path, |f| {
        let mut w = Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 20, f),
            hash: Sha256::new(),
        };
        fill(&mut w)?;
        w.flush()?;
        digest = Some(hex(&w.hash.finalize()));
        Ok(())
    })?;
    digest.ok_or_else(|| Error::Internal("nothing was hashed".into()))
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hashed_write_hashes_what_it_wrote() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        let h = write_atomic_hashed(&p, |w| w.write_all(b"abc")).unwrap();
        // sha256("abc"), the FIPS 180-2 example.
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_file(&p).unwrap(), h);
    }

    #[test]
    fn missing_folder_is_an_error_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("no/such/a.txt");
        assert!(write_atomic(&p, b"x").is_err());
    }
}
