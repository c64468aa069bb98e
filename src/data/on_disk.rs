//! A training split left in its encoded-cache entry and read from it one window of blocks at a
//! time (`batches::windows`), never whole: the training source of data larger than memory.
//!
//! Positioned reads into the window's own columns rather than a memory map: a map's pages,
//! once touched, count as resident until the kernel needs them back, so a shuffled epoch over a
//! mapped file looks like the whole file in memory; a window read into buffers is the memory
//! the run holds, whatever the file's size. The arrays are checked against their SHA-256 when
//! the split is opened (read once, a block at a time); reads after that trust the files, as a
//! loaded split trusts its memory.

use std::fs::File;
use std::path::PathBuf;

use super::batches::{BatchSource, Batches, windows};
use super::cache_arrays::{Le, Reader, read_at};
use super::dataset::{Batch, Dataset, Split};
use crate::config::Shuffle;
use crate::error::{Error, Result};
use crate::features::Bags;

/// One array of the entry, open for positioned reads.
struct Array {
    path: PathBuf,
    file: File,
}

impl Array {
    fn open(path: PathBuf) -> std::result::Result<Array, String> {
        let file = File::open(&path).map_err(|e| format!("`{}`: {e}", path.display()))?;
        Ok(Array { path, file })
    }

    /// Append values `at..at + n` to `out`.
    fn read<T: Le>(&self, at: usize, n: usize, out: &mut Vec<T>) -> Result<()> {
        read_at(&self.file, at, n, out).map_err(|e| {
            Error::io(&self.path, e)
                .with_hint("the encoded cache changed under the run; run `funnel encode` again")
        })
    }
}

struct BagArrays {
    offsets: Array,
    ids: Array,
    /// None when the feature has no weights (an empty array).
    weights: Option<Array>,
}

/// Array `name` of `r`, checked against its hash and opened; its bytes added to `bytes`.
fn checked<T: Le>(
    r: &Reader<'_>,
    name: &str,
    bytes: &mut u64,
) -> std::result::Result<Array, String> {
    let (path, n) = r.scan::<T>(name, |_| {})?;
    *bytes += (n * T::SIZE) as u64;
    Array::open(path)
}

/// A split of an entry, on disk.
pub struct OnDisk {
    split: Split,
    file: PathBuf,
    rows: usize,
    cat: Vec<Array>,
    num: Vec<Array>,
    bags: Vec<BagArrays>,
    reached: Vec<Array>,
    own: Vec<Array>,
    truth: Vec<Array>,
    groups: Option<Array>,
    positives: Vec<usize>,
    tokens: Vec<usize>,
    bytes: u64,
}

/// How many arrays of each kind a split has, as its header says: categorical columns, numeric
/// columns, bags, stages with labels, stages with own labels, stages with truth, and whether
/// there are groups.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Counts {
    pub cat: usize,
    pub num: usize,
    pub bags: usize,
    pub reached: usize,
    pub own: usize,
    pub truth: usize,
    pub groups: bool,
}

impl Counts {
    /// The counts of the split `d`.
    pub(super) fn of(d: &Dataset) -> Counts {
        Counts {
            cat: d.cat.len(),
            num: d.num.len(),
            bags: d.bags.len(),
            reached: d.reached.len(),
            own: d.own.len(),
            truth: d.truth.len(),
            groups: !d.groups.is_empty(),
        }
    }
}

impl OnDisk {
    /// The split `at` of the entry `r` reads, with `rows` rows encoded from `file`: every
    /// array checked against its hash, the stages' positives and the bags' tokens counted.
    pub(super) fn open(
        r: &Reader<'_>,
        split: Split,
        file: PathBuf,
        rows: usize,
        n: Counts,
    ) -> std::result::Result<OnDisk, String> {
        let at = split.as_str();
        let mut bytes = 0u64;
        let cat = (0..n.cat)
            .map(|f| checked::<u32>(r, &format!("{at}.cat.{f}"), &mut bytes))
            .collect::<std::result::Result<Vec<Array>, String>>()?;
        let num = (0..n.num)
            .map(|j| checked::<f32>(r, &format!("{at}.num.{j}"), &mut bytes))
            .collect::<std::result::Result<Vec<Array>, String>>()?;
        let own = (0..n.own)
            .map(|k| checked::<u8>(r, &format!("{at}.own.{k}"), &mut bytes))
            .collect::<std::result::Result<Vec<Array>, String>>()?;
        let truth = (0..n.truth)
            .map(|k| checked::<f64>(r, &format!("{at}.truth.{k}"), &mut bytes))
            .collect::<std::result::Result<Vec<Array>, String>>()?;
        let groups = match n.groups {
            true => Some(checked::<u32>(r, &format!("{at}.groups"), &mut bytes)?),
            false => None,
        };
        let mut bags = Vec::new();
        let mut tokens = Vec::new();
        for m in 0..n.bags {
            let bag = format!("{at}.bag.{m}");
            tokens.push(r.len(&format!("{bag}.ids.u32"))?);
            let weighted = r.len(&format!("{bag}.weights.f32"))? > 0;
            bags.push(BagArrays {
                offsets: checked::<u64>(r, &format!("{bag}.offsets"), &mut bytes)?,
                ids: checked::<u32>(r, &format!("{bag}.ids"), &mut bytes)?,
                weights: match weighted {
                    true => Some(checked::<f32>(r, &format!("{bag}.weights"), &mut bytes)?),
                    false => None,
                },
            });
        }
        let mut reached = Vec::new();
        let mut positives = Vec::new();
        for k in 0..n.reached {
            let mut count = 0;
            let name = format!("{at}.reached.{k}");
            let (path, n) =
                r.scan::<u8>(&name, |b| count += b.iter().filter(|&&v| v != 0).count())?;
            bytes += n as u64;
            reached.push(Array::open(path)?);
            positives.push(count);
        }
        Ok(OnDisk {
            split,
            file,
            rows,
            cat,
            num,
            bags,
            reached,
            own,
            truth,
            groups,
            positives,
            tokens,
            bytes,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rows that reached stage `k`.
    pub fn positives(&self, k: usize) -> usize {
        self.positives[k]
    }

    /// Tokens of token list `m` over every row.
    pub fn tokens(&self, m: usize) -> usize {
        self.tokens[m]
    }

    /// Bytes the whole split would take in memory.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn split(&self) -> Split {
        self.split
    }

    pub fn has_groups(&self) -> bool {
        self.groups.is_some()
    }

    /// Rows `start..start + rows`, in memory.
    pub fn chunk(&self, start: usize, rows: usize) -> Result<Dataset> {
        self.read(&[(start, rows)])
    }

    /// The rows of `blocks` (first row, rows), laid end to end, as a split in memory.
    fn read(&self, blocks: &[(usize, usize)]) -> Result<Dataset> {
        let rows = blocks.iter().map(|&(_, n)| n).sum();
        let mut d = Dataset {
            split: self.split,
            file: self.file.clone(),
            rows,
            cat: vec![Vec::with_capacity(rows); self.cat.len()],
            num: vec![Vec::with_capacity(rows); self.num.len()],
            bags: vec![Bags::default(); self.bags.len()],
            truncated: Vec::new(),
            reached: vec![Vec::with_capacity(rows); self.reached.len()],
            own: vec![Vec::with_capacity(rows); self.own.len()],
            truth: vec![Vec::with_capacity(rows); self.truth.len()],
            groups: Vec::new(),
            dropped: Vec::new(),
        };
        for &(start, n) in blocks {
            for (a, out) in self.cat.iter().zip(&mut d.cat) {
                a.read(start, n, out)?;
            }
            for (a, out) in self.num.iter().zip(&mut d.num) {
                a.read(start, n, out)?;
            }
            for (a, out) in self.reached.iter().zip(&mut d.reached) {
                a.read(start, n, out)?;
            }
            for (a, out) in self.own.iter().zip(&mut d.own) {
                a.read(start, n, out)?;
            }
            for (a, out) in self.truth.iter().zip(&mut d.truth) {
                a.read(start, n, out)?;
            }
            if let Some(a) = &self.groups {
                a.read(start, n, &mut d.groups)?;
            }
            for (a, out) in self.bags.iter().zip(&mut d.bags) {
                let mut offsets: Vec<u64> = Vec::with_capacity(n + 1);
                a.offsets.read(start, n + 1, &mut offsets)?;
                let (first, last) = (offsets[0], offsets[n]);
                let span = usize::try_from(last.saturating_sub(first)).unwrap_or(0);
                let mut block = Bags {
                    offsets: offsets.iter().map(|&o| o.saturating_sub(first)).collect(),
                    ids: Vec::with_capacity(span),
                    weights: Vec::new(),
                };
                a.ids.read(first as usize, span, &mut block.ids)?;
                if let Some(w) = &a.weights {
                    w.read(first as usize, span, &mut block.weights)?;
                }
                out.append(&block);
            }
        }
        Ok(d)
    }
}

/// The split on disk as a batch source: each window read when its first row is due, its rows
/// taken in the window's order; a batch runs across windows as the in-memory source's do, so
/// both give the same batches.
pub struct FromDisk<'a> {
    pub data: &'a OnDisk,
    pub shuffle: Shuffle,
}

impl BatchSource for FromDisk<'_> {
    fn rows(&self) -> usize {
        self.data.rows
    }

    fn epoch(&self, seed: u64, epoch: usize, batch_size: usize, from_step: usize) -> Batches<'_> {
        let size = batch_size.max(1);
        let skip = from_step.saturating_mul(size);
        let mut windows = windows(self.shuffle, seed, epoch, self.data.rows, skip);
        // The window being read: its rows, its order, and how far into the order.
        let mut current: Option<(Dataset, Vec<u32>, usize)> = None;
        Box::new(std::iter::from_fn(move || {
            let mut batch: Option<Batch> = None;
            let mut need = size;
            while need > 0 {
                if current.as_ref().is_none_or(|c| c.2 == c.1.len()) {
                    let Some(w) = windows.next() else { break };
                    match self.data.read(&w.blocks) {
                        Ok(d) => current = Some((d, w.order, 0)),
                        Err(e) => return Some(Err(e)),
                    }
                }
                let Some((d, order, pos)) = &mut current else {
                    break;
                };
                let take = need.min(order.len() - *pos);
                let part = d.batch(&order[*pos..*pos + take]);
                *pos += take;
                need -= take;
                match &mut batch {
                    Some(b) => b.append(part),
                    None => batch = Some(part),
                }
            }
            batch.map(Ok)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::batches::InMemory;
    use super::super::cache_arrays::Writer;
    use super::super::{SplitData, append_columns};
    use super::*;

    /// 103 rows: two id columns, a numeric, two stages' labels and own labels, a weighted bag
    /// of 0-3 tokens and an unweighted one, every value telling its row.
    fn split() -> Dataset {
        let rows = 103;
        let bag = |weighted: bool| {
            let mut b = Bags::default();
            for r in 0..rows as u32 {
                for t in 0..r % 4 {
                    b.ids.push(r * 10 + t);
                    if weighted {
                        b.weights.push(r as f32 + 0.25 * t as f32);
                    }
                }
                b.offsets.push(b.ids.len() as u64);
            }
            b
        };
        Dataset {
            split: Split::Train,
            file: "t.csv".into(),
            rows,
            cat: vec![
                (0..rows as u32).collect(),
                (0..rows as u32).map(|r| r % 7).collect(),
            ],
            num: vec![(0..rows).map(|r| r as f32 * 0.5).collect()],
            bags: vec![bag(true), bag(false)],
            truncated: vec![0, 0],
            reached: vec![
                (0..rows).map(|r| (r % 3 == 0) as u8).collect(),
                (0..rows).map(|r| (r % 6 == 0) as u8).collect(),
            ],
            own: vec![(0..rows).map(|r| (r % 5 == 0) as u8).collect(); 2],
            truth: Vec::new(),
            groups: Vec::new(),
            dropped: vec![0, 0],
        }
    }

    /// The split's arrays, written as an entry writes them: each file with its length and hash.
    fn written(dir: &std::path::Path, d: &Dataset) -> Vec<(String, usize, String)> {
        let mut w = Writer {
            dir,
            arrays: Vec::new(),
        };
        super::super::cache_entry::write_split(&mut w, d).unwrap();
        w.arrays
    }

    /// The split `d` written in `dir` with `arrays`, opened from disk.
    fn open(
        dir: &std::path::Path,
        d: &Dataset,
        arrays: &[(String, usize, String)],
    ) -> std::result::Result<OnDisk, String> {
        let r = Reader {
            dir,
            arrays: arrays
                .iter()
                .map(|(f, n, sha)| (f.as_str(), (*n, sha.as_str())))
                .collect(),
        };
        OnDisk::open(&r, d.split, d.file.clone(), d.rows, Counts::of(d))
    }

    /// Everything a batch holds, comparable.
    type Parts = (usize, Vec<Vec<u32>>, Vec<Vec<u64>>, Vec<Vec<u32>>, Vec<u32>);

    fn parts(b: &Batch) -> Parts {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let mut floats = bits(&b.num);
        floats.extend(bits(&b.labels));
        floats.extend(bits(&b.own));
        for bag in &b.bags {
            floats.extend(bits(&bag.weights));
        }
        (
            b.rows,
            b.ids.clone(),
            b.bags.iter().map(|g| g.offsets.clone()).collect(),
            b.bags.iter().map(|g| g.ids.clone()).collect(),
            floats,
        )
    }

    /// Read from disk a window at a time, the split gives the batches the same split in memory
    /// gives, value for value (bags across block and window edges included), under a full
    /// shuffle and under blocks, from the start and from any step; and it counts the stages'
    /// positives and the bags' tokens as the split in memory does.
    #[test]
    fn batches_from_disk_are_the_batches_in_memory() {
        let d = split();
        let dir = tempfile::tempdir().unwrap();
        let disk = open(dir.path(), &d, &written(dir.path(), &d)).unwrap();
        assert_eq!(disk.rows(), 103);
        for k in 0..2 {
            assert_eq!(disk.positives(k), d.positives(k));
        }
        assert_eq!(disk.tokens(0), d.bags[0].ids.len());
        assert_eq!(disk.bytes(), d.bytes());
        for shuffle in [
            Shuffle::Full,
            Shuffle::Blocks {
                block_rows: 16,
                blocks_per_window: 2,
            },
            Shuffle::Blocks {
                block_rows: 5,
                blocks_per_window: 1,
            },
        ] {
            let memory = InMemory { data: &d, shuffle };
            let from_disk = FromDisk {
                data: &disk,
                shuffle,
            };
            for (epoch, size, from) in [(1, 10, 0), (2, 10, 0), (1, 7, 3), (1, 64, 1), (3, 200, 0)]
            {
                let want: Vec<_> = memory
                    .epoch(5, epoch, size, from)
                    .map(|b| parts(&b.unwrap()))
                    .collect();
                let got: Vec<_> = from_disk
                    .epoch(5, epoch, size, from)
                    .map(|b| parts(&b.unwrap()))
                    .collect();
                assert_eq!(
                    got, want,
                    "{shuffle:?}, epoch {epoch}, batches of {size} from {from}"
                );
                assert_eq!(want.len(), memory.batches_per_epoch(size) - from);
            }
        }
    }

    /// An evaluation split on disk, read a chunk at a time in row order, gives back its rows
    /// in memory: every column, truth and groups included, whatever the chunk's size.
    #[test]
    fn chunks_from_disk_are_the_rows_in_order() {
        let mut d = split();
        d.split = Split::Test;
        d.truth = vec![(0..103).map(|r| r as f64 / 103.0).collect(); 2];
        d.groups = (0..103).map(|r| r / 10).collect();
        let dir = tempfile::tempdir().unwrap();
        let disk = SplitData::Disk(open(dir.path(), &d, &written(dir.path(), &d)).unwrap());
        assert!(disk.has_groups());
        for rows in [1, 10, 103, 500] {
            let mut got = Dataset {
                rows: 0,
                cat: vec![Vec::new(); 2],
                num: vec![Vec::new()],
                bags: vec![Bags::default(); 2],
                reached: vec![Vec::new(); 2],
                own: vec![Vec::new(); 2],
                truth: vec![Vec::new(); 2],
                groups: Vec::new(),
                ..split()
            };
            let mut starts = Vec::new();
            disk.for_each_chunk(rows, |start, c| {
                assert_eq!(c.split, Split::Test);
                starts.push(start);
                got.rows += c.rows;
                append_columns(&mut got.cat, &c.cat);
                append_columns(&mut got.num, &c.num);
                append_columns(&mut got.reached, &c.reached);
                append_columns(&mut got.own, &c.own);
                append_columns(&mut got.truth, &c.truth);
                for (a, b) in got.bags.iter_mut().zip(&c.bags) {
                    a.append(b);
                }
                got.groups.extend_from_slice(&c.groups);
                Ok(())
            })
            .unwrap();
            assert_eq!(starts, (0..103).step_by(rows).collect::<Vec<_>>());
            assert_eq!(got.rows, d.rows);
            assert_eq!(
                (&got.cat, &got.num, &got.reached),
                (&d.cat, &d.num, &d.reached)
            );
            assert_eq!(
                (&got.own, &got.truth, &got.groups),
                (&d.own, &d.truth, &d.groups)
            );
            for (a, b) in got.bags.iter().zip(&d.bags) {
                assert_eq!(
                    (&a.offsets, &a.ids, &a.weights),
                    (&b.offsets, &b.ids, &b.weights)
                );
            }
        }
    }

    /// An array whose bytes changed is refused when the split is opened, naming the file.
    #[test]
    fn a_changed_array_is_refused() {
        let d = split();
        let dir = tempfile::tempdir().unwrap();
        let arrays = written(dir.path(), &d);
        assert!(open(dir.path(), &d, &arrays).is_ok());
        let path = dir.path().join("train.bag.0.weights.f32");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let why = open(dir.path(), &d, &arrays).err().expect("refused");
        assert!(
            why.contains("`train.bag.0.weights.f32` does not match its hash"),
            "{why}"
        );
    }
}
