//! The arrays of an encoded-cache entry: plain little-endian values, one file each, written,
//! read and hashed (SHA-256) a block at a time, so the values are the only copy in memory; or
//! read a range at a time (`read_at`), for a split too large to load.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Bytes an array is written, read and hashed by at a time.
const BLOCK: usize = 1 << 20;

/// A value an array file holds, as little-endian bytes.
pub(super) trait Le: Sized + Copy {
    const SUFFIX: &'static str;
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! le {
    ($t:ty, $suffix:literal) => {
        impl Le for $t {
            const SUFFIX: &'static str = $suffix;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    };
}
le!(u8, "u8");
le!(u32, "u32");
le!(u64, "u64");
le!(f32, "f32");
le!(f64, "f64");

/// Writes one entry's arrays into its folder, recording each.
pub(super) struct Writer<'a> {
    pub(super) dir: &'a Path,
    pub(super) arrays: Vec<(String, usize, String)>,
}

impl Writer<'_> {
    /// Written and hashed a block at a time: no second copy of the array in memory.
    pub(super) fn array<T: Le>(&mut self, name: &str, values: &[T]) -> Result<()> {
        let mut a = Appender::create(self.dir, name)?;
        a.push(values)?;
        self.arrays.push(a.finish()?);
        Ok(())
    }
}

/// One array file written a piece at a time (a split encoded a range of rows at a time),
/// hashed as it is written.
pub(super) struct Appender<T> {
    file: String,
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    hash: Sha256,
    len: usize,
    bytes: Vec<u8>,
    _values: std::marker::PhantomData<T>,
}

impl<T: Le> Appender<T> {
    /// The array `name` of the entry folder `dir`, empty.
    pub(super) fn create(dir: &Path, name: &str) -> Result<Self> {
        let file = format!("{name}.{}", T::SUFFIX);
        let path = dir.join(&file);
        let f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Appender {
            file,
            path,
            out: std::io::BufWriter::with_capacity(BLOCK, f),
            hash: Sha256::new(),
            len: 0,
            bytes: Vec::new(),
            _values: std::marker::PhantomData,
        })
    }

    pub(super) fn push(&mut self, values: &[T]) -> Result<()> {
        for block in values.chunks(BLOCK / T::SIZE) {
            self.bytes.clear();
            for &v in block {
                v.put(&mut self.bytes);
            }
            self.hash.update(&self.bytes);
            self.out
                .write_all(&self.bytes)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.len += values.len();
        Ok(())
    }

    /// The file's name, length in values and SHA-256, once all is written.
    pub(super) fn finish(mut self) -> Result<(String, usize, String)> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok((self.file, self.len, format!("{:x}", self.hash.finalize())))
    }
}

/// Reads one entry's arrays, checking each against the header.
pub(super) struct Reader<'a> {
    pub(super) dir: &'a Path,
    pub(super) arrays: std::collections::HashMap<&'a str, (usize, &'a str)>,
}

impl Reader<'_> {
    /// The arrays `<prefix>.0` to `<prefix>.<n - 1>`.
    pub(super) fn columns<T: Le>(
        &self,
        prefix: &str,
        n: usize,
    ) -> std::result::Result<Vec<Vec<T>>, String> {
        (0..n)
            .map(|i| self.array(&format!("{prefix}.{i}")))
            .collect()
    }

    pub(super) fn array<T: Le>(&self, name: &str) -> std::result::Result<Vec<T>, String> {
        let mut values = Vec::with_capacity(self.len(&format!("{name}.{}", T::SUFFIX))?);
        self.scan(name, |block: &[T]| values.extend_from_slice(block))?;
        Ok(values)
    }

    /// The length in values of the array file `file`, as the header says.
    pub(super) fn len(&self, file: &str) -> std::result::Result<usize, String> {
        self.arrays
            .get(file)
            .map(|&(n, _)| n)
            .ok_or_else(|| format!("the header lists no `{file}`"))
    }

    /// Check array `name` against the header, its length and its SHA-256, reading it a block
    /// at a time and handing each block's values to `visit`. The array's path and length.
    pub(super) fn scan<T: Le>(
        &self,
        name: &str,
        mut visit: impl FnMut(&[T]),
    ) -> std::result::Result<(PathBuf, usize), String> {
        let file = format!("{name}.{}", T::SUFFIX);
        let &(n, sha) = self
            .arrays
            .get(file.as_str())
            .ok_or_else(|| format!("the header lists no `{file}`"))?;
        let io = |e: std::io::Error| format!("`{file}`: {e}");
        let path = self.dir.join(&file);
        let mut f = std::fs::File::open(&path).map_err(io)?;
        if f.metadata().map_err(io)?.len() != (n * T::SIZE) as u64 {
            return Err(format!(
                "`{file}` does not match its hash (its size differs)"
            ));
        }
        let mut hash = Sha256::new();
        let mut bytes = vec![0u8; BLOCK / T::SIZE * T::SIZE];
        let mut values = Vec::with_capacity(BLOCK / T::SIZE);
        let mut left = n * T::SIZE;
        while left > 0 {
            let block = &mut bytes[..left.min(BLOCK / T::SIZE * T::SIZE)];
            f.read_exact(block).map_err(io)?;
            hash.update(&*block);
            values.clear();
            values.extend(block.chunks_exact(T::SIZE).map(T::get));
            visit(&values);
            left -= block.len();
        }
        if format!("{:x}", hash.finalize()) != sha {
            return Err(format!("`{file}` does not match its hash"));
        }
        Ok((path, n))
    }
}

/// Append the `n` values of the array file `f` from value `at` on to `out`: one positioned
/// read, so threads may share the file.
pub(super) fn read_at<T: Le>(
    f: &std::fs::File,
    at: usize,
    n: usize,
    out: &mut Vec<T>,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; n * T::SIZE];
    f.read_exact_at(&mut bytes, (at * T::SIZE) as u64)?;
    out.extend(bytes.chunks_exact(T::SIZE).map(T::get));
    Ok(())
}
