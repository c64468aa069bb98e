//! Records put in order whatever their number: held in memory up to a limit, beyond it sorted
//! runs spilled to temporary files and merged when read back, so an exact AUC, a median or a
//! quantile needs memory for one run of records, not for all of them.
//!
//! Runs go to `$TMPDIR` (else /tmp) as files deleted as soon as they are created, so nothing is
//! left behind by a crash. Reading back merges every run at once through a heap, with a 64 KiB
//! buffer per run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};

/// A record of fixed size on disk.
pub trait Record: Copy {
    const BYTES: usize;
    /// Write the record into `out` (`BYTES` long).
    fn put(&self, out: &mut [u8]);
    /// The record `put` wrote into `b`.
    fn get(b: &[u8]) -> Self;
}

impl Record for f64 {
    const BYTES: usize = 8;
    fn put(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        f64::from_le_bytes(a)
    }
}

/// A spilled run: a temporary file of records in order.
struct Run {
    file: File,
    len: usize,
}

/// Records gathered in any order and read back in the order `cmp` gives.
pub struct Sorter<R: Record> {
    cmp: fn(&R, &R) -> Ordering,
    /// Records held in memory before they are sorted and spilled as a run.
    limit: usize,
    held: Vec<R>,
    runs: Vec<Run>,
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Usage(format!(
        "{what} the records spilled to the temporary directory (`$TMPDIR`, else /tmp): {e}; free space there or point TMPDIR at a larger disk"
    ))
}

fn read<R: Record>(input: &mut impl Read, buf: &mut [u8]) -> Result<R> {
    input
        .read_exact(buf)
        .map_err(|e| io("cannot read back", e))?;
    Ok(R::get(buf))
}

impl<R: Record> Sorter<R> {
    /// A sorter ordering by `cmp` and holding at most `limit` records (at least one) in memory.
    pub fn new(cmp: fn(&R, &R) -> Ordering, limit: usize) -> Sorter<R> {
        Sorter {
            cmp,
            limit: limit.max(1),
            held: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.held.len() + self.runs.iter().map(|r| r.len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    pub fn push(&mut self, record: R) -> Result<()> {
        if self.held.len() >= self.limit {
            self.spill()?;
        }
        self.held.push(record);
        Ok(())
    }

    /// Take the records of `other` (gathered in the same order).
    pub fn merge(&mut self, other: Sorter<R>) -> Result<()> {
        self.runs.extend(other.runs);
        for r in other.held {
            self.push(r)?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.held.sort_unstable_by(self.cmp);
        let file = tempfile::tempfile().map_err(|e| io("cannot create a file for", e))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut b = vec![0u8; R::BYTES];
        for r in &self.held {
            r.put(&mut b);
            out.write_all(&b).map_err(|e| io("cannot write", e))?;
        }
        let mut file = out
            .into_inner()
            .map_err(|e| io("cannot write", e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("cannot read back", e))?;
        self.runs.push(Run {
            file,
            len: self.held.len(),
        });
        self.held.clear();
        Ok(())
    }

    /// The records, unsorted, when none was spilled (for a caller with a cheaper way than a
    /// sort, such as a selection); otherwise the sorter back.
    pub fn held_only(self) -> std::result::Result<Vec<R>, Sorter<R>> {
        match self.runs.is_empty() {
            true => Ok(self.held),
            false => Err(self),
        }
    }

    /// Every record, in order, to `each`. In memory when nothing was spilled; otherwise the
    /// records still held become one more run and all runs are merged.
    pub fn for_each(mut self, mut each: impl FnMut(R)) -> Result<()> {
        let cmp = self.cmp;
        if self.runs.is_empty() {
            self.held.sort_unstable_by(cmp);
            self.held.into_iter().for_each(each);
            return Ok(());
        }
        if !self.held.is_empty() {
            self.spill()?;
        }
        let mut b = vec![0u8; R::BYTES];
        let mut readers: Vec<(BufReader<File>, usize)> = self
            .runs
            .into_iter()
            .map(|r| (BufReader::with_capacity(1 << 16, r.file), r.len))
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, (reader, left)) in readers.iter_mut().enumerate() {
            if *left > 0 {
                *left -= 1;
                let record = read(reader, &mut b)?;
                heap.push(Next { record, run, cmp });
            }
        }
        while let Some(Next { record, run, .. }) = heap.pop() {
            each(record);
            let (reader, left) = &mut readers[run];
            if *left > 0 {
                *left -= 1;
                let record = read(reader, &mut b)?;
                heap.push(Next { record, run, cmp });
            }
        }
        Ok(())
    }
}

/// The next record of a run, ordered for a min-heap (`BinaryHeap` pops the greatest); ties go
/// to the earlier run.
struct Next<R> {
    record: R,
    run: usize,
    cmp: fn(&R, &R) -> Ordering,
}

impl<R> Ord for Next<R> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.cmp)(&other.record, &self.record).then(other.run.cmp(&self.run))
    }
}

impl<R> PartialOrd for Next<R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<R> PartialEq for Next<R> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<R> Eq for Next<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of a key and a payload: rows of equal keys may come back in any order.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Keyed {
        key: f64,
        payload: u32,
    }

    impl Record for Keyed {
        const BYTES: usize = 12;
        fn put(&self, out: &mut [u8]) {
            out[..8].copy_from_slice(&self.key.to_le_bytes());
            out[8..].copy_from_slice(&self.payload.to_le_bytes());
        }
        fn get(b: &[u8]) -> Self {
            Keyed {
                key: f64::get(&b[..8]),
                payload: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            }
        }
    }

    fn by_key(a: &Keyed, b: &Keyed) -> Ordering {
        a.key.total_cmp(&b.key)
    }

    /// Spilled runs merged read back what an in-memory sort gives, whatever the limit (one
    /// record per run, uneven runs, nothing spilled), and after `merge`.
    #[test]
    fn spilled_runs_read_back_in_order() {
        let mut r = crate::rng::Rng::stream(3, "spill");
        // Few distinct keys (ties), both signs of zero included.
        let all: Vec<Keyed> = (0..1000)
            .map(|i| Keyed {
                key: [-0.0, 0.0, 0.25, -1.5, 3.0, f64::MIN_POSITIVE][r.below(6) as usize],
                payload: i,
            })
            .collect();
        let mut want = all.clone();
        want.sort_by(by_key);
        let keys = |v: &[Keyed]| v.iter().map(|k| k.key.to_bits()).collect::<Vec<_>>();
        let payloads = |v: &[Keyed]| {
            let mut p: Vec<u32> = v.iter().map(|k| k.payload).collect();
            p.sort_unstable();
            p
        };
        for limit in [1, 7, 999, 5000] {
            let (a, b) = all.split_at(377);
            let mut s = Sorter::new(by_key, limit);
            let mut t = Sorter::new(by_key, limit);
            a.iter().for_each(|&k| s.push(k).unwrap());
            b.iter().for_each(|&k| t.push(k).unwrap());
            s.merge(t).unwrap();
            assert_eq!(s.len(), 1000);
            assert_eq!(s.spilled_runs() > 0, limit < 1000, "limit {limit}");
            let mut got = Vec::new();
            s.for_each(|k| got.push(k)).unwrap();
            assert_eq!(keys(&got), keys(&want), "limit {limit}");
            // Every record comes back once, with its payload.
            assert_eq!(
                payloads(&got),
                (0..1000).collect::<Vec<_>>(),
                "limit {limit}"
            );
            for k in &got {
                assert_eq!(k.key.to_bits(), all[k.payload as usize].key.to_bits());
            }
        }
        // Nothing spilled: the records as pushed.
        let mut s = Sorter::new(by_key, 10);
        all[..10].iter().for_each(|&k| s.push(k).unwrap());
        assert_eq!(s.held_only().ok(), Some(all[..10].to_vec()));
    }
}
