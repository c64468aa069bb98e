//! One split of a streamed encode being written: its arrays appended to a range at a time, and
//! what its header and warnings need once the last range is in.

use std::path::Path;

use super::cache_arrays::{Appender, Le};
use super::cache_entry::SplitHeader;
use super::{Dataset, Split};
use crate::error::Result;

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
    first_ids: Vec<Option<u32>>,
    first_values: Vec<Option<u32>>,
    ids_vary: Vec<bool>,
    values_vary: Vec<bool>,
}

/// The arrays `<at>.<what>.0` to `<at>.<what>.<n - 1>`, empty.
fn appenders<T: Le>(dir: &Path, at: &str, what: &str, n: usize) -> Result<Vec<Appender<T>>> {
    (0..n)
        .map(|i| Appender::create(dir, &format!("{at}.{what}.{i}")))
        .collect()
}

impl SplitOut {
    /// The arrays of the split encoded as `d` (a first range of it), in `dir`.
    /// The split being written.
    pub(super) fn split(&self) -> Split {
        self.shape.split
    }

    pub(super) fn create(dir: &Path, d: &Dataset) -> Result<SplitOut> {
        let at = d.split.as_str();
        Ok(SplitOut {
            shape: Dataset {
                split: d.split,
                file: d.file.clone(),
                rows: 0,
                cat: vec![Vec::new(); d.cat.len()],
                num: vec![Vec::new(); d.num.len()],
                bags: Vec::new(),
                truncated: Vec::new(),
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
        let bits: Vec<Vec<u32>> = d
            .num
            .iter()
            .map(|c| c.iter().map(|v| v.to_bits()).collect())
            .collect();
        let columns = [
            (&d.cat, &mut self.first_ids, &mut self.ids_vary),
            (&bits, &mut self.first_values, &mut self.values_vary),
        ];
        for (cols, firsts, vary) in columns {
            for ((c, first), v) in cols.iter().zip(firsts.iter_mut()).zip(vary.iter_mut()) {
                let head = *first.get_or_insert_with(|| c.first().copied().unwrap_or(0));
                if !c.is_empty() {
                    *v |= c.iter().any(|&x| x != head);
                }
            }
        }
        Ok(())
    }

    /// The split as a header (its drops per stage being `dropped`), with its shape (rows,
    /// drops, column counts; no values) and which of its id and value columns held one value.
    pub(super) fn finish(self, dropped: Vec<usize>) -> Result<Finished> {
        let mut arrays = Vec::new();
        for a in self.cat {
            arrays.push(a.finish()?);
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
            header: SplitHeader::of(&shape, arrays),
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
