//! The serving store: a finished run's embedding tables read in place from its weights file,
//! memory-mapped (no copy, no optimizer state; the operating system pages in the rows a
//! request touches), and gathered through the same path as training's store.

use std::path::Path;
use std::sync::Arc;

use super::chain::FunnelModel;
use super::gather::{Gather, TableRows};
use super::row_store::RowSource;
use super::weights_file;
use crate::config::Pipeline;
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::layout::FieldLayout;

/// A weights file's bytes as little-endian f32 values.
enum Values {
    /// The file mapped; its values start at byte `start` (a multiple of 4: funnel pads the
    /// header to 8 bytes, so on a little-endian machine they are read in place).
    Mapped { map: memmap2::Mmap, start: usize },
    /// A file whose values cannot be read in place (a big-endian machine, or a header of
    /// another writer not padded to 4 bytes): its values decoded once.
    Decoded(Vec<f32>),
}

/// One weights file, shared by the stores that read it; `values()` indexes from the file's
/// first value, at `base` bytes.
struct WeightsMap {
    values: Values,
    base: u64,
}

impl WeightsMap {
    /// The values of `file` (at `path`, for messages) from byte `base` on.
    fn open(file: &std::fs::File, path: &Path, base: u64) -> Result<Self> {
        // SAFETY: the map is read-only and never outlives this value. A finished run's weights
        // are never rewritten in place: funnel writes a new file and renames it over the old,
        // which leaves this mapping on the old file's contents. Another program truncating the
        // file while it is served is the one way to break it, as for any memory-mapped reader.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
        let start = usize::try_from(base).unwrap_or(usize::MAX).min(map.len());
        // SAFETY: every bit pattern is a valid f32; `align_to` only puts a value where it is
        // aligned, and the check below keeps the view only when it starts at byte `start`.
        let (head, _, _) = unsafe { map[start..].align_to::<f32>() };
        let values = if cfg!(target_endian = "little") && head.is_empty() {
            Values::Mapped { map, start }
        } else {
            Values::Decoded(weights_file::decode(&map[start..]))
        };
        Ok(WeightsMap { values, base })
    }

    /// Every value of the file from `base` on.
    fn values(&self) -> &[f32] {
        match &self.values {
            // SAFETY: as in `open`: every bit pattern is an f32, and `open` checked the view
            // begins at `start` (no unaligned head).
            Values::Mapped { map, start } => unsafe { map[*start..].align_to::<f32>().1 },
            Values::Decoded(v) => v,
        }
    }

    /// The values of a tensor at `bytes` of the file.
    fn tensor(&self, bytes: &std::ops::Range<u64>) -> Option<&[f32]> {
        let from = bytes.start.checked_sub(self.base)?;
        if !from.is_multiple_of(4) || !(bytes.end - bytes.start).is_multiple_of(4) {
            return None;
        }
        let (start, len) = (
            (from / 4) as usize,
            ((bytes.end - bytes.start) / 4) as usize,
        );
        self.values().get(start..start.checked_add(len)?)
    }
}

/// One store of a served model: each field's table, a slice of the mapped weights.
pub struct MappedStore {
    map: Arc<WeightsMap>,
    /// Per field, in field order: where its rows start among the map's values, its rows and
    /// their width.
    tables: Vec<(usize, usize, usize)>,
    gather: Gather,
}

impl MappedStore {
    fn views(&self) -> Vec<TableRows<'_>> {
        let values = self.map.values();
        self.tables
            .iter()
            .map(|&(start, vocab, dim)| {
                TableRows::new(&values[start..start + vocab * dim], vocab, dim, dim)
            })
            .collect()
    }
}

impl RowSource for MappedStore {
    fn layout(&self) -> &FieldLayout {
        self.gather.layout()
    }

    fn gather(&self, b: &Batch, rows: std::ops::Range<usize>, x: &mut [f32], w: usize) {
        self.gather.rows(&self.views(), b, rows, x, w);
    }

    fn gather_tokens(&self, b: &Batch, s: usize) -> Vec<f32> {
        self.gather.tokens(&self.views(), b, s)
    }
}

impl FunnelModel {
    /// A finished run's model for inference from its weights file: the dense blocks loaded,
    /// the embedding tables left in the file, memory-mapped, one store per store of the model.
    /// The model's own stores have no rows: it is read only through `logits_from` with these
    /// stores. Every table is checked for the shape the encoders give it; its values are the
    /// ones the manifest's hash covers (checked by `read_run`), which the writer refused to
    /// write unless finite, so they are not scanned again (that would page in every table).
    pub(crate) fn open_mapped(
        p: &Pipeline,
        enc: &Encoders,
        weights: &Path,
    ) -> Result<(FunnelModel, Vec<MappedStore>)> {
        let mut model = FunnelModel::dense_only(p)?;
        let mut file = weights_file::Reader::open(weights)?;
        let fields = p.embedded_fields();
        let rows = enc.table_rows();
        let mut located = Vec::with_capacity(model.store_keys.len());
        for prefix in &model.store_keys {
            let mut tables = Vec::with_capacity(fields.len());
            for (&(name, dim), &vocab) in fields.iter().zip(&rows) {
                let key = format!("{prefix}.{name}");
                tables.push((file.locate(&key, &[vocab, dim])?, key, vocab, dim));
            }
            located.push(tables);
        }
        model.load_dense(&mut file, weights)?;
        let first = located
            .iter()
            .flatten()
            .map(|(bytes, ..)| bytes.start)
            .min()
            .unwrap_or(0);
        let map = Arc::new(WeightsMap::open(file.file(), weights, first)?);
        let dir = weights.parent().unwrap_or(Path::new("."));
        let mut stores = Vec::with_capacity(located.len());
        for tables in located {
            let mut placed = Vec::with_capacity(tables.len());
            for (bytes, key, vocab, dim) in tables {
                if map.tensor(&bytes).is_none() {
                    return Err(Error::run(
                        dir,
                        format!("tensor `{key}` does not lie on 4-byte values of the weights file"),
                    ));
                }
                let start = (bytes.start - first) as usize / 4;
                placed.push((start, vocab, dim));
            }
            stores.push(MappedStore {
                map: map.clone(),
                tables: placed,
                gather: Gather::new(p.field_layout()?),
            });
        }
        Ok((model, stores))
    }

    /// `logits` of a batch, the embeddings read from `sources` (one per store, as
    /// `open_mapped` gives them).
    pub fn logits_from(&self, sources: &[&dyn RowSource], b: &Batch) -> Result<Vec<f32>> {
        self.inference_logits(&self.input_tensors_from(sources, b)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of a file read in place (its values start on a 4-byte boundary) and decoded
    /// (they do not) are the same numbers; a tensor off the 4-byte grid, or past the file's
    /// end, is refused.
    #[test]
    fn mapped_and_decoded_values_agree() {
        let values = [1.5f32, -2.25, 3.0e-7, 4.0, f32::MIN_POSITIVE];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dir = tempfile::tempdir().unwrap();
        let aligned = dir.path().join("aligned");
        std::fs::write(&aligned, [&[0u8; 8][..], &bytes].concat()).unwrap();
        let odd = dir.path().join("odd");
        std::fs::write(&odd, [&[0u8; 3][..], &bytes].concat()).unwrap();
        let open = |path: &Path, base| {
            let file = std::fs::File::open(path).unwrap();
            WeightsMap::open(&file, path, base).unwrap()
        };
        let (mapped, decoded) = (open(&aligned, 8), open(&odd, 3));
        assert_eq!(
            matches!(mapped.values, Values::Mapped { .. }),
            cfg!(target_endian = "little")
        );
        assert!(matches!(decoded.values, Values::Decoded(_)));
        assert_eq!(mapped.values(), values);
        assert_eq!(decoded.values(), values);
        assert_eq!(mapped.tensor(&(12..20)), Some(&values[1..3]));
        assert_eq!(decoded.tensor(&(7..15)), Some(&values[1..3]));
        assert_eq!(mapped.tensor(&(10..18)), None);
        assert_eq!(mapped.tensor(&(12..40)), None);
        assert_eq!(mapped.tensor(&(4..8)), None);
    }
}
