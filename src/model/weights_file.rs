//! The weights file (safetensors, little-endian f32), written and read one tensor at a time so
//! that saving or loading a model never holds a second copy of its embedding tables.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic_with;
use crate::model::Table;

/// One tensor to write: an embedding table (weights without optimizer state, streamed row by
/// row), or a small dense tensor's values with its shape.
pub enum Source<'a> {
    Table(&'a Table),
    Dense(Vec<f32>, Vec<usize>),
    /// Values borrowed as they are, with their shape (a table with its optimizer state).
    Raw(&'a [f32], Vec<usize>),
}

impl Source<'_> {
    fn shape(&self) -> Vec<usize> {
        match self {
            Source::Table(t) => vec![t.vocab, t.dim],
            Source::Dense(_, shape) | Source::Raw(_, shape) => shape.clone(),
        }
    }

    /// The values in write order, a slice at a time (a table row by row, without its
    /// optimizer state).
    fn rows(&self) -> Box<dyn Iterator<Item = &[f32]> + '_> {
        match self {
            Source::Table(t) => Box::new(t.rows()),
            Source::Dense(v, _) => Box::new(std::iter::once(v.as_slice())),
            Source::Raw(v, _) => Box::new(v.chunks(1 << 16)),
        }
    }
}

/// Write named tensors to `path` atomically: the 8-byte header length, the JSON header (padded
/// with spaces to a multiple of 8 bytes), then each tensor's bytes in header order.
pub fn write(path: &Path, entries: Vec<(String, Source<'_>)>) -> Result<()> {
    write_with_metadata(path, entries, None, std::time::Duration::ZERO)
}

/// `write`, with safetensors' `__metadata__` (a map of strings) in the header, pausing for
/// `pause` once every byte is written, before the rename.
pub fn write_with_metadata(
    path: &Path,
    entries: Vec<(String, Source<'_>)>,
    metadata: Option<&std::collections::BTreeMap<String, String>>,
    pause: std::time::Duration,
) -> Result<()> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), serde_json::json!(m));
    }
    let mut offset = 0u64;
    for (name, src) in &entries {
        let shape = src.shape();
        let end = offset + shape.iter().product::<usize>() as u64 * 4;
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    // A NaN or an infinity written would give a run that predicts one constant everywhere.
    let dir = path.parent().unwrap_or(Path::new("."));
    for (name, src) in &entries {
        let mut at = 0;
        for row in src.rows() {
            if let Some(i) = row.iter().position(|x| !x.is_finite()) {
                return Err(non_finite(dir, path, name, at + i, row[i]).with_hint(
                    "training produced it; lower `train.optimizer.lr` or `train.embedding_optimizer.lr`, or set `train.clip_grad_norm`, and train again",
                ));
            }
            at += row.len();
        }
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&(text.len() as u64).to_le_bytes())?;
        w.write_all(text.as_bytes())?;
        let mut bytes = Vec::new();
        for (_, src) in &entries {
            for row in src.rows() {
                bytes.clear();
                bytes.extend(row.iter().flat_map(|x| x.to_le_bytes()));
                w.write_all(&bytes)?;
            }
        }
        w.flush()?;
        std::thread::sleep(pause);
        Ok(())
    })
}

#[derive(Deserialize)]
struct Info {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// An open weights file: its header parsed, tensors read on request.
pub struct Reader {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
    file: std::fs::File,
    data_start: u64,
    tensors: HashMap<String, Info>,
    /// The header's `__metadata__` strings.
    pub metadata: HashMap<String, String>,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let bad =
            |what: String| Error::run(&dir, format!("cannot read {}: {what}", path.display()));
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|e| bad(format!("no header ({e})")))?;
        let n = u64::from_le_bytes(n);
        if n > 100 << 20 || 8 + n > len {
            return Err(bad(format!("header length {n} does not fit the file")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)
            .map_err(|e| bad(format!("truncated header ({e})")))?;
        let mut raw: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("header is not safetensors JSON ({e})")))?;
        let metadata = match raw.remove("__metadata__") {
            Some(m) => serde_json::from_value(m)
                .map_err(|e| bad(format!("`__metadata__` is not a map of strings ({e})")))?,
            None => HashMap::new(),
        };
        let mut tensors = HashMap::new();
        for (name, v) in raw {
            let info: Info =
                serde_json::from_value(v).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            let [start, end] = info.data_offsets;
            let bytes = info
                .shape
                .iter()
                .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64));
            let fits = (8 + n).checked_add(end).is_some_and(|e| e <= len);
            if info.dtype != "F32" || end < start || Some(end - start) != bytes || !fits {
                return Err(bad(format!(
                    "tensor `{name}` is not {:?} f32 values within the file",
                    info.shape
                )));
            }
            tensors.insert(name, info);
        }
        Ok(Reader {
            dir,
            path: path.to_path_buf(),
            file,
            data_start: 8 + n,
            tensors,
            metadata,
        })
    }

    /// The values of tensor `name`, which must have `shape`; each tensor can be taken once.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let info = self.entry(name, shape)?;
        let [start, end] = info.data_offsets;
        let mut bytes = vec![0u8; (end - start) as usize];
        let io = |e| Error::run(&self.dir, format!("cannot read tensor `{name}`: {e}"));
        self.file
            .seek(SeekFrom::Start(self.data_start + start))
            .map_err(io)?;
        self.file.read_exact(&mut bytes).map_err(io)?;
        let values = decode(&bytes);
        self.finite(name, &values)?;
        Ok(values)
    }

    /// Where tensor `name` (which must have `shape`) lies in the file: its bytes, from the
    /// file's start; like `take`, each tensor can be located once.
    pub fn locate(&mut self, name: &str, shape: &[usize]) -> Result<std::ops::Range<u64>> {
        let [start, end] = self.entry(name, shape)?.data_offsets;
        Ok(self.data_start + start..self.data_start + end)
    }

    /// Nothing when every value is finite; otherwise an error naming tensor `name` and the
    /// first value that is not.
    fn finite(&self, name: &str, values: &[f32]) -> Result<()> {
        match values.iter().position(|x| !x.is_finite()) {
            None => Ok(()),
            Some(i) => Err(non_finite(&self.dir, &self.path, name, i, values[i])
                .with_hint("the file was damaged or edited; restore it, or train the run again")),
        }
    }

    /// Tensor `name`'s entry, taken from the header, which must have `shape`.
    fn entry(&mut self, name: &str, shape: &[usize]) -> Result<Info> {
        let info = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::run(&self.dir, format!("weights have no tensor `{name}`")))?;
        if info.shape != shape {
            return Err(Error::run(
                &self.dir,
                format!(
                    "tensor `{name}` has shape {:?}, the pipeline needs {shape:?}",
                    info.shape
                ),
            ));
        }
        Ok(info)
    }

    /// The open file (what a memory map of its tables maps: the file whose header was read).
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// A tensor the file holds that nobody took, if any (the first by name).
    pub fn left_over(&self) -> Option<&str> {
        self.tensors.keys().map(String::as_str).min()
    }
}

/// Little-endian f32 values (a trailing partial value ignored).
pub fn decode(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Read every tensor of the weights file `path` (one at a time), refusing a NaN or an
/// infinity as `take` does: for readers of a run that do not load its model (compare's cache,
/// report).
pub fn check_finite(path: &Path) -> Result<()> {
    let mut r = Reader::open(path)?;
    let mut names: Vec<(String, Vec<usize>)> = r
        .tensors
        .iter()
        .map(|(n, i)| (n.clone(), i.shape.clone()))
        .collect();
    names.sort();
    for (name, shape) in names {
        r.take(&name, &shape)?;
    }
    Ok(())
}

/// A non-finite value in tensor `name` of the weights file `path`, at flat index `at`.
fn non_finite(dir: &Path, path: &Path, name: &str, at: usize, value: f32) -> Error {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    );
    Error::run(
        dir,
        format!(
            "{file}: tensor `{name}` holds {value} at index {at}; a model with a non-finite weight predicts nothing meaningful"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SparseOptimizer;
    use crate::rng::Rng;

    /// candle's own safetensors loader (an independent reader) sees the tables' weights without
    /// optimizer state and the dense values; our reader checks shapes and reports leftovers.
    #[test]
    fn written_file_is_standard_safetensors() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("w.safetensors");
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.1, eps: 1e-8 };
        let table = Table::new("f", 5, 3, 0.1, &opt, 0.1, &mut Rng::stream(1, "t"));
        let dense = vec![1.0f32, -2.0, 3.5, 0.25, 7.0, 8.0];
        write(
            &path,
            vec![
                ("embeddings.f".into(), Source::Table(&table)),
                ("towers.x".into(), Source::Dense(dense.clone(), vec![2, 3])),
            ],
        )
        .unwrap();
        let loaded = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
        let rows: Vec<f32> = table.rows().flatten().copied().collect();
        let e = &loaded["embeddings.f"];
        assert_eq!(e.dims(), [5, 3]);
        assert_eq!(e.flatten_all().unwrap().to_vec1::<f32>().unwrap(), rows);
        assert!(rows[3..].iter().any(|&w| w != 0.0), "rows 1.. are drawn");
        let x = &loaded["towers.x"];
        assert_eq!(x.dims(), [2, 3]);
        assert_eq!(x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), dense);

        let mut r = Reader::open(&path).unwrap();
        assert!(r.take("towers.x", &[3, 2]).is_err(), "shape is checked");
        let mut r = Reader::open(&path).unwrap();
        assert_eq!(r.take("towers.x", &[2, 3]).unwrap(), dense);
        assert_eq!(r.left_over(), Some("embeddings.f"));
        assert_eq!(r.take("embeddings.f", &[5, 3]).unwrap(), rows);
        assert_eq!(r.left_over(), None);
        assert!(r.take("nothing", &[1]).is_err());
    }

    /// A NaN or an infinity is refused when written (nothing is written) and when read back.
    #[test]
    fn non_finite_values_are_refused_both_ways() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("w.safetensors");
        let bad = Source::Dense(vec![1.0, f32::NAN, 2.0], vec![3]);
        let e = write(&path, vec![("towers.b".into(), bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.safetensors: tensor `towers.b` holds NaN at index 1"),
            "{e}"
        );
        assert!(!path.exists() && std::fs::read_dir(d.path()).unwrap().count() == 0);
        // A file edited after the fact: the infinity is found on reading.
        write(
            &path,
            vec![(
                "towers.b".into(),
                Source::Dense(vec![1.0, 2.0, 3.0], vec![3]),
            )],
        )
        .unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 4;
        bytes[at..].copy_from_slice(&f32::INFINITY.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let e = Reader::open(&path)
            .unwrap()
            .take("towers.b", &[3])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("tensor `towers.b` holds inf at index 2"),
            "{e}"
        );
    }
}
