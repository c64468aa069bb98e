//! Scored rows put in order whatever their number: held in memory up to a limit, beyond it
//! sorted runs spilled to temporary files and merged when read back, so exact AUC, group AUC
//! and calibration need memory for one run of rows, not for every row of the split.
//!
//! A row is 13 bytes on disk (its score, label and group, little-endian): a billion scored rows
//! take 13 GB of temporary space per block (`$TMPDIR`, files deleted as soon as they are
//! created, so nothing is left behind by a crash). Reading back merges every run at once
//! through a heap, with a 64 KiB buffer per run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};

/// One scored row: its score, its 0/1 label and its group (0 without groups).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub label: u8,
    pub group: u32,
}

const BYTES: usize = 13;

impl Scored {
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut b = [0u8; BYTES];
        b[..8].copy_from_slice(&self.score.to_le_bytes());
        b[8] = self.label;
        b[9..].copy_from_slice(&self.group.to_le_bytes());
        out.write_all(&b)
    }

    fn read(input: &mut impl Read) -> std::io::Result<Scored> {
        let mut b = [0u8; BYTES];
        input.read_exact(&mut b)?;
        let mut score = [0u8; 8];
        score.copy_from_slice(&b[..8]);
        let mut group = [0u8; 4];
        group.copy_from_slice(&b[9..]);
        Ok(Scored {
            score: f64::from_le_bytes(score),
            label: b[8],
            group: u32::from_le_bytes(group),
        })
    }
}

/// The order rows are read back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending score (`f64::total_cmp`).
    Score,
    /// Ascending group, then ascending score within a group.
    GroupThenScore,
}

impl Order {
    fn cmp(self, a: &Scored, b: &Scored) -> Ordering {
        match self {
            Order::Score => a.score.total_cmp(&b.score),
            Order::GroupThenScore => a.group.cmp(&b.group).then(a.score.total_cmp(&b.score)),
        }
    }
}

/// A spilled run: a temporary file of rows in order.
struct Run {
    file: File,
    rows: usize,
}

/// Rows gathered in any order and read back in `Order`.
pub struct Sorter {
    order: Order,
    /// Rows held in memory before they are sorted and spilled as a run.
    limit: usize,
    held: Vec<Scored>,
    runs: Vec<Run>,
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Usage(format!(
        "{what} the scores spilled to the temporary directory (`$TMPDIR`, else /tmp): {e}; free space there or point TMPDIR at a larger disk"
    ))
}

impl Sorter {
    /// A sorter holding at most `limit` rows (at least one) in memory.
    pub fn new(order: Order, limit: usize) -> Sorter {
        Sorter {
            order,
            limit: limit.max(1),
            held: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.held.len() + self.runs.iter().map(|r| r.rows).sum::<usize>()
    }

    /// Runs spilled to disk so far.
    #[cfg(test)]
    fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, row: Scored) -> Result<()> {
        if self.held.len() >= self.limit {
            self.spill()?;
        }
        self.held.push(row);
        Ok(())
    }

    /// Take the rows of `other` (gathered with the same order).
    pub fn merge(&mut self, other: Sorter) -> Result<()> {
        self.runs.extend(other.runs);
        for row in other.held {
            self.push(row)?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        let order = self.order;
        self.held.sort_unstable_by(|a, b| order.cmp(a, b));
        let file = tempfile::tempfile().map_err(|e| io("cannot create a file for", e))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        for row in &self.held {
            row.write(&mut out).map_err(|e| io("cannot write", e))?;
        }
        let mut file = out
            .into_inner()
            .map_err(|e| io("cannot write", e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("cannot read back", e))?;
        self.runs.push(Run {
            file,
            rows: self.held.len(),
        });
        self.held.clear();
        Ok(())
    }

    /// Every row, in order, to `each`. In memory when nothing was spilled; otherwise the rows
    /// still held become one more run and all runs are merged.
    pub fn for_each(mut self, mut each: impl FnMut(Scored)) -> Result<()> {
        let order = self.order;
        if self.runs.is_empty() {
            self.held.sort_unstable_by(|a, b| order.cmp(a, b));
            self.held.into_iter().for_each(each);
            return Ok(());
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        let mut readers: Vec<(BufReader<File>, usize)> = self
            .runs
            .into_iter()
            .map(|r| (BufReader::with_capacity(1 << 16, r.file), r.rows))
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, (reader, left)) in readers.iter_mut().enumerate() {
            if *left > 0 {
                *left -= 1;
                let row = Scored::read(reader).map_err(|e| io("cannot read back", e))?;
                heap.push(Next { row, run, order });
            }
        }
        while let Some(Next { row, run, .. }) = heap.pop() {
            each(row);
            let (reader, left) = &mut readers[run];
            if *left > 0 {
                *left -= 1;
                let row = Scored::read(reader).map_err(|e| io("cannot read back", e))?;
                heap.push(Next { row, run, order });
            }
        }
        Ok(())
    }
}

/// The next row of a run, ordered for a min-heap (`BinaryHeap` pops the greatest); ties go to
/// the earlier run, so the merge is stable across runs.
struct Next {
    row: Scored,
    run: usize,
    order: Order,
}

impl Ord for Next {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order
            .cmp(&other.row, &self.row)
            .then(other.run.cmp(&self.run))
    }
}

impl PartialOrd for Next {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Next {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Next {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, seed: u64) -> Vec<Scored> {
        let mut r = crate::rng::Rng::stream(seed, "spill");
        (0..n)
            .map(|_| Scored {
                // Few distinct scores (ties), both signs of zero included.
                score: [-0.0, 0.0, 0.25, -1.5, 3.0, f64::MIN_POSITIVE][r.below(6) as usize],
                label: (r.uniform() < 0.3) as u8,
                group: r.below(5) as u32,
            })
            .collect()
    }

    /// Spilled runs merged read back what an in-memory sort gives, in both orders, whatever the
    /// limit (one row per run, uneven runs, nothing spilled), and after `merge`.
    #[test]
    fn spilled_runs_read_back_in_order() {
        let all = rows(1000, 3);
        // The key each order sorts by (rows of equal keys may come in any order), and a row's
        // every field.
        let bits = |r: &Scored| (r.score.to_bits(), r.label, r.group);
        for order in [Order::Score, Order::GroupThenScore] {
            let key = |r: &Scored| match order {
                Order::Score => (0, r.score.to_bits()),
                Order::GroupThenScore => (r.group, r.score.to_bits()),
            };
            let mut want = all.clone();
            want.sort_by(|a, b| order.cmp(a, b));
            let mut want_rows: Vec<_> = all.iter().map(bits).collect();
            want_rows.sort_unstable();
            for limit in [1, 7, 999, 5000] {
                let (a, b) = all.split_at(377);
                let mut s = Sorter::new(order, limit);
                let mut t = Sorter::new(order, limit);
                a.iter().for_each(|&r| s.push(r).unwrap());
                b.iter().for_each(|&r| t.push(r).unwrap());
                s.merge(t).unwrap();
                assert_eq!(s.len(), 1000);
                assert_eq!(s.spilled_runs() > 0, limit < 1000, "limit {limit}");
                let mut got = Vec::new();
                s.for_each(|r| got.push(r)).unwrap();
                let keys = |v: &[Scored]| v.iter().map(key).collect::<Vec<_>>();
                assert_eq!(keys(&got), keys(&want), "{order:?}, limit {limit}");
                let mut got_rows: Vec<_> = got.iter().map(bits).collect();
                got_rows.sort_unstable();
                assert_eq!(got_rows, want_rows, "{order:?}, limit {limit}");
            }
        }
    }
}
