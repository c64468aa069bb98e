//! The arrays of an encoded-cache entry: plain little-endian values, one file each, written,
//! read and hashed (SHA-256) a block at a time, so the values are the only copy in memory.

use std::io::{Read, Write};
use std::path::Path;

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
        let file = format!("{name}.{}", T::SUFFIX);
        let path = self.dir.join(&file);
        let mut f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut hash = Sha256::new();
        let mut bytes = Vec::with_capacity(BLOCK);
        for block in values.chunks(BLOCK / T::SIZE) {
            bytes.clear();
            for &v in block {
                v.put(&mut bytes);
            }
            hash.update(&bytes);
            f.write_all(&bytes).map_err(|e| Error::io(&path, e))?;
        }
        self.arrays
            .push((file, values.len(), format!("{:x}", hash.finalize())));
        Ok(())
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
        let file = format!("{name}.{}", T::SUFFIX);
        let &(len, sha) = self
            .arrays
            .get(file.as_str())
            .ok_or_else(|| format!("the header lists no `{file}`"))?;
        // Read, hashed and converted a block at a time: the values are the only copy held.
        let io = |e: std::io::Error| format!("`{file}`: {e}");
        let mut f = std::fs::File::open(self.dir.join(&file)).map_err(io)?;
        if f.metadata().map_err(io)?.len() != (len * T::SIZE) as u64 {
            return Err(format!(
                "`{file}` does not match its hash (its size differs)"
            ));
        }
        let mut values = Vec::with_capacity(len);
        let mut hash = Sha256::new();
        let mut bytes = vec![0u8; BLOCK / T::SIZE * T::SIZE];
        let mut left = len * T::SIZE;
        while left > 0 {
            let block = &mut bytes[..left.min(BLOCK / T::SIZE * T::SIZE)];
            f.read_exact(block).map_err(io)?;
            hash.update(&*block);
            values.extend(block.chunks_exact(T::SIZE).map(T::get));
            left -= block.len();
        }
        if format!("{:x}", hash.finalize()) != sha {
            return Err(format!("`{file}` does not match its hash"));
        }
        Ok(values)
    }
}
