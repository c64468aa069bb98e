//! Records put in order whatever their number: held in memory up to a limit, beyond it sorted
//! runs spilled to temporary files and merged when read back, so an exact AUC, a median or a
//! quantile needs memory for one run of records, not for all of them.
//!
//! A sorter's runs go one after another into one temporary file in `$TMPDIR` (else /tmp),
//! deleted as soon as it is created, so nothing is left behind by a crash and a sorter holds one
//! file open however many runs it spills. Reading back merges every run at once through a heap,
//! each run read 64 KiB at a time by positioned reads.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

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

/// A spilled run: `len` records in order at byte `offset` of a sorter's temporary file.
struct Run {
    file: Arc<File>,
    offset: u64,
    len: usize,
}

/// Records gathered in any order and read back in the order `cmp` gives.
pub struct Sorter<R: Record> {
    cmp: fn(&R, &R) -> Ordering,
    /// Records held in memory before they are sorted and spilled as a run.
    limit: usize,
    held: Vec<R>,
    /// The sorter's one temporary file (created at the first spill) and where it ends: every
    /// run of a sorter goes into it, so a sorter holds one file open however many runs it
    /// spills.
    file: Option<(Arc<File>, u64)>,
    runs: Vec<Run>,
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Usage(format!(
        "{what} the records spilled to the temporary directory (`$TMPDIR`, else /tmp): {e}; free space there or point TMPDIR at a larger disk (a tmpfs /tmp spills into memory)"
    ))
}

/// Bytes of a run read back at a time.
const READ_BYTES: usize = 1 << 16;

/// A run being read back, a buffer at a time by positioned reads.
struct Reading<'a> {
    run: &'a Run,
    /// Records of the run not yet read from the file.
    unread: usize,
    buf: Vec<u8>,
    /// The buffer's next record's first byte.
    at: usize,
}

impl Reading<'_> {
    fn next<R: Record>(&mut self) -> Result<Option<R>> {
        if self.at == self.buf.len() {
            if self.unread == 0 {
                return Ok(None);
            }
            let first = self.run.len - self.unread;
            let n = self.unread.min((READ_BYTES / R::BYTES).max(1));
            self.buf.resize(n * R::BYTES, 0);
            self.run
                .file
                .read_exact_at(&mut self.buf, self.run.offset + (first * R::BYTES) as u64)
                .map_err(|e| io("cannot read back", e))?;
            self.unread -= n;
            self.at = 0;
        }
        let r = R::get(&self.buf[self.at..self.at + R::BYTES]);
        self.at += R::BYTES;
        Ok(Some(r))
    }
}

impl<R: Record> Sorter<R> {
    /// A sorter ordering by `cmp` and holding at most `limit` records (at least one) in memory.
    pub fn new(cmp: fn(&R, &R) -> Ordering, limit: usize) -> Sorter<R> {
        Sorter {
            cmp,
            limit: limit.max(1),
            held: Vec::new(),
            file: None,
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
        // Grown by doubling up to the limit, never past it: the memory held is what the limit
        // says.
        if self.held.len() == self.held.capacity() {
            let want = self
                .held
                .capacity()
                .saturating_mul(2)
                .max(1024)
                .min(self.limit);
            self.held
                .reserve_exact(want.saturating_sub(self.held.len()).max(1));
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
        let (file, end) = match self.file.take() {
            Some(f) => f,
            None => (
                Arc::new(tempfile::tempfile().map_err(|e| io("cannot create a file for", e))?),
                0,
            ),
        };
        let mut out = BufWriter::with_capacity(READ_BYTES, &*file);
        let mut b = vec![0u8; R::BYTES];
        for r in &self.held {
            r.put(&mut b);
            out.write_all(&b).map_err(|e| io("cannot write", e))?;
        }
        out.flush().map_err(|e| io("cannot write", e))?;
        drop(out);
        self.runs.push(Run {
            file: Arc::clone(&file),
            offset: end,
            len: self.held.len(),
        });
        self.file = Some((file, end + (self.held.len() * R::BYTES) as u64));
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
        let mut readers: Vec<Reading<'_>> = self
            .runs
            .iter()
            .map(|run| Reading {
                run,
                unread: run.len,
                buf: Vec::new(),
                at: 0,
            })
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, reader) in readers.iter_mut().enumerate() {
            if let Some(record) = reader.next()? {
                heap.push(Next { record, run, cmp });
            }
        }
        while let Some(Next { record, run, .. }) = heap.pop() {
            each(record);
            if let Some(record) = readers[run].next()? {
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
            // One file per sorter, whatever the runs.
            for sorter in [&s, &t] {
                let files = sorter.runs.iter().map(|r| Arc::as_ptr(&r.file));
                assert!(files.collect::<std::collections::HashSet<_>>().len() <= 1);
            }
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
