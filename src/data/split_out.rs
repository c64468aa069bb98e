//! One split of a streamed encode being written: its arrays appended to a range at a time, and
//! what its header and warnings need once the last range is in.

use std::path::Path;

use super::cache_arrays::{Appender, Le};
use super::cache_entry::SplitHeader;
use super::on_disk::Counts;
use super::{Dataset, Split};
use crate::error::Result;
use crate::features::Bags;

/// One split's arrays, appended to a range at a time; and whether each of its id and value
/// columns has held one value so far (for the constant-feature warning).
pub(super) struct SplitOut {
    shape: Dataset,
    cat: Vec<Appender<u32>>,
    num: Vec<Appender<f32>>,
    reached: Vec<Appender<u8>>,
    own: Vec<Appender<u8>>,
    truth: Vec<Appender<f64>>,
    groups: Appender<u32>,
    /// Some range held groups (the pipeline has a group column and the split rows).
    has_groups: bool,
    bags: Vec<BagOut>,
    first_ids: Vec<Option<u32>>,
    first_values: Vec<Option<u32>>,
    ids_vary: Vec<bool>,
    values_vary: Vec<bool>,
}

/// A multi-valued feature's arrays: each row's end in the ids (after a leading 0, shifted by
/// the ids of the ranges before), the ids, and their weights (empty without weights), as
/// `cache_entry::write_split` writes a split in memory.
struct BagOut {
    offsets: Appender<u64>,
    ids: Appender<u32>,
    weights: Appender<f32>,
    tokens: u64,
}

impl BagOut {
    fn create(dir: &Path, bag: &str) -> Result<BagOut> {
        let mut offsets = Appender::create(dir, &format!("{bag}.offsets"))?;
        offsets.push(&[0])?;
        Ok(BagOut {
            offsets,
            ids: Appender::create(dir, &format!("{bag}.ids"))?,
            weights: Appender::create(dir, &format!("{bag}.weights"))?,
            tokens: 0,
        })
    }

    fn append(&mut self, b: &Bags) -> Result<()> {
        let base = self.tokens;
        let ends: Vec<u64> = b.offsets.iter().skip(1).map(|&o| base + o).collect();
        self.offsets.push(&ends)?;
        self.ids.push(&b.ids)?;
        self.weights.push(&b.weights)?;
        self.tokens += b.ids.len() as u64;
        Ok(())
    }
}

/// The arrays `<at>.<what>.0` to `<at>.<what>.<n - 1>`, empty.
fn appenders<T: Le>(dir: &Path, at: &str, what: &str, n: usize) -> Result<Vec<Appender<T>>> {
    (0..n)
        .map(|i| Appender::create(dir, &format!("{at}.{what}.{i}")))
        .collect()
}

impl SplitOut {
    /// The split being written.
    pub(super) fn split(&self) -> Split {
        self.shape.split
    }

    /// The arrays of the split encoded as `d` (a first range of it) from `file` (the source
    /// as a whole: a directory of parts, not the part of the first range), in `dir`.
    pub(super) fn create(dir: &Path, d: &Dataset, file: &Path) -> Result<SplitOut> {
        let at = d.split.as_str();
        Ok(SplitOut {
            shape: Dataset {
                split: d.split,
                file: file.to_path_buf(),
                rows: 0,
                cat: vec![Vec::new(); d.cat.len()],
                num: vec![Vec::new(); d.num.len()],
                bags: vec![Bags::default(); d.bags.len()],
                truncated: vec![0; d.truncated.len()],
                reached: vec![Vec::new(); d.reached.len()],
                own: vec![Vec::new(); d.own.len()],
                truth: vec![Vec::new(); d.truth.len()],
                groups: Vec::new(),
                dropped: Vec::new(),
            },
            cat: appenders(dir, at, "cat", d.cat.len())?,
            num: appenders(dir, at, "num", d.num.len())?,
            reached: appenders(dir, at, "reached", d.reached.len())?,
            own: appenders(dir, at, "own", d.own.len())?,
            truth: appenders(dir, at, "truth", d.truth.len())?,
            groups: Appender::create(dir, &format!("{at}.groups"))?,
            has_groups: false,
            bags: (0..d.bags.len())
                .map(|m| BagOut::create(dir, &format!("{at}.bag.{m}")))
                .collect::<Result<_>>()?,
            first_ids: vec![None; d.cat.len()],
            first_values: vec![None; d.num.len()],
            ids_vary: vec![false; d.cat.len()],
            values_vary: vec![false; d.num.len()],
        })
    }

    pub(super) fn append(&mut self, d: &Dataset) -> Result<()> {
        self.shape.rows += d.rows;
        for (a, c) in self.cat.iter_mut().zip(&d.cat) {
            a.push(c)?;
        }
        for (a, c) in self.num.iter_mut().zip(&d.num) {
            a.push(c)?;
        }
        for (a, c) in self.reached.iter_mut().zip(&d.reached) {
            a.push(c)?;
        }
        for (a, c) in self.own.iter_mut().zip(&d.own) {
            a.push(c)?;
        }
        for (a, c) in self.truth.iter_mut().zip(&d.truth) {
            a.push(c)?;
        }
        self.groups.push(&d.groups)?;
        self.has_groups |= !d.groups.is_empty();
        for (a, b) in self.bags.iter_mut().zip(&d.bags) {
            a.append(b)?;
        }
        for (sum, n) in self.shape.truncated.iter_mut().zip(&d.truncated) {
            *sum += n;
        }
        note_variation(&d.cat, &mut self.first_ids, &mut self.ids_vary, |x| x);
        note_variation(
            &d.num,
            &mut self.first_values,
            &mut self.values_vary,
            f32::to_bits,
        );
        Ok(())
    }

    /// The split as a header (its drops per stage being `dropped`), with its shape (rows,
    /// drops, column counts; no values) and which of its id and value columns held one value.
    pub(super) fn finish(self, dropped: Vec<usize>) -> Result<Finished> {
        let mut arrays = Vec::new();
        for a in self.cat {
            arrays.push(a.finish()?);
        }
        for b in self.bags {
            arrays.push(b.offsets.finish()?);
            arrays.push(b.ids.finish()?);
            arrays.push(b.weights.finish()?);
        }
        for a in self.num {
            arrays.push(a.finish()?);
        }
        for a in self.reached.into_iter().chain(self.own) {
            arrays.push(a.finish()?);
        }
        for a in self.truth {
            arrays.push(a.finish()?);
        }
        arrays.push(self.groups.finish()?);
        let mut shape = self.shape;
        shape.dropped = dropped;
        Ok(Finished {
            header: SplitHeader::with_counts(
                &shape,
                Counts {
                    groups: self.has_groups,
                    ..Counts::of(&shape)
                },
                arrays,
            ),
            shape,
            constant_ids: self.ids_vary.iter().map(|v| !v).collect(),
            constant_values: self.values_vary.iter().map(|v| !v).collect(),
        })
    }
}

pub(super) struct Finished {
    pub(super) header: SplitHeader,
    pub(super) shape: Dataset,
    pub(super) constant_ids: Vec<bool>,
    pub(super) constant_values: Vec<bool>,
}

/// Whether each column holds a value other than its first, carried over ranges: `firsts` is
/// each column's first value so far (by `key`, the comparison `warnings::constant_warnings`
/// makes), `vary` what is known; a column known to vary, or an empty range, is not read again.
fn note_variation<T: Copy>(
    columns: &[Vec<T>],
    firsts: &mut [Option<u32>],
    vary: &mut [bool],
    key: impl Fn(T) -> u32,
) {
    for ((c, first), v) in columns.iter().zip(firsts).zip(vary) {
        let Some(&head) = c.first() else { continue };
        if *v {
            continue;
        }
        let head = *first.get_or_insert(key(head));
        *v = c.iter().any(|&x| key(x) != head);
    }
}
