//! Batch sources: where an epoch's training batches come from, in which order, from which step.
//! The trainer reads its batches only through `BatchSource` and `drive`. The in-memory dataset is
//! the first source; a file read in chunks (logs larger than memory) implements the same trait,
//! in the same order (`order`).

use super::dataset::{Batch, Dataset};
use crate::config::Shuffle;
use crate::error::Result;
use crate::rng::Rng;

/// One epoch's batches, in order.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<Batch>> + Send + 'a>;

pub trait BatchSource: Sync {
    /// Rows of one epoch.
    fn rows(&self) -> usize;

    /// The batches of epoch `epoch` (counted from 1) under `seed`, `batch_size` rows each (the
    /// last may be shorter), from batch `from_step` on. The same seed and epoch give the same
    /// batches, so (epoch, step) is the source's whole position: a run resumed there continues
    /// the interrupted epoch exactly.
    fn epoch(&self, seed: u64, epoch: usize, batch_size: usize, from_step: usize) -> Batches<'_>;

    /// Batches in one epoch.
    fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.rows().div_ceil(batch_size.max(1))
    }
}

/// An encoded split in memory, its rows in the order `shuffle` says (`order`).
pub struct InMemory<'a> {
    pub data: &'a Dataset,
    pub shuffle: Shuffle,
}

impl BatchSource for InMemory<'_> {
    fn rows(&self) -> usize {
        self.data.rows
    }

    fn epoch(&self, seed: u64, epoch: usize, batch_size: usize, from_step: usize) -> Batches<'_> {
        let d = self.data;
        let order = order(self.shuffle, seed, epoch, d.rows, batch_size, from_step);
        Box::new(order.map(move |idx| Ok(d.batch(&idx))))
    }
}

/// One window of an epoch: the blocks of rows it holds (first row, rows), and the order in
/// which its rows are taken, as indices into those blocks' rows laid end to end.
pub struct Window {
    pub blocks: Vec<(usize, usize)>,
    pub order: Vec<u32>,
}

impl Window {
    /// The rows of `order` as rows of the split.
    fn rows(&self) -> Vec<u32> {
        match self.blocks[..] {
            [(start, _)] => self.order.iter().map(|&i| start as u32 + i).collect(),
            _ => {
                let laid: Vec<u32> = self
                    .blocks
                    .iter()
                    .flat_map(|&(start, n)| start as u32..(start + n) as u32)
                    .collect();
                self.order.iter().map(|&i| laid[i as usize]).collect()
            }
        }
    }
}

/// The windows of epoch `epoch` (counted from 1) of `rows` rows under `seed`, from row `skip`
/// of the epoch on:
/// - `Full`: one window of every row, in a seeded permutation (`shuffle/<epoch>`).
/// - `Blocks`: rows `b·block_rows ..` form block b; the blocks are visited in a seeded order
///   (`blocks/<epoch>`), `blocks_per_window` at a time, and each such window's rows are
///   permuted together (`window/<epoch>/<w>`). A reader of a file too large for memory holds
///   one window, whatever the file's size. A position mid-epoch permutes only the windows
///   from there on.
pub fn windows(
    shuffle: Shuffle,
    seed: u64,
    epoch: usize,
    rows: usize,
    skip: usize,
) -> Box<dyn Iterator<Item = Window> + Send> {
    let skip = skip.min(rows);
    match shuffle {
        Shuffle::Full => {
            let mut order = Rng::stream(seed, &format!("shuffle/{epoch}")).permutation(rows);
            order.drain(..skip);
            let window = Window {
                blocks: vec![(0, rows)],
                order,
            };
            Box::new((skip < rows).then_some(window).into_iter())
        }
        Shuffle::Blocks {
            block_rows,
            blocks_per_window,
        } => {
            let block_rows = block_rows.max(1);
            let visit = Rng::stream(seed, &format!("blocks/{epoch}"))
                .permutation(rows.div_ceil(block_rows));
            let windows: Vec<Vec<(usize, usize)>> = visit
                .chunks(blocks_per_window.max(1))
                .map(|w| {
                    w.iter()
                        .map(|&b| {
                            let start = b as usize * block_rows;
                            (start, block_rows.min(rows - start))
                        })
                        .collect()
                })
                .collect();
            // The windows wholly before `skip` are passed over unpermuted.
            let mut before = 0;
            let mut first = windows.len();
            for (w, blocks) in windows.iter().enumerate() {
                let n: usize = blocks.iter().map(|&(_, n)| n).sum();
                if before + n > skip {
                    first = w;
                    break;
                }
                before += n;
            }
            let into = skip - before;
            Box::new(
                windows
                    .into_iter()
                    .enumerate()
                    .skip(first)
                    .map(move |(w, blocks)| {
                        let n = blocks.iter().map(|&(_, n)| n).sum();
                        let order =
                            Rng::stream(seed, &format!("window/{epoch}/{w}")).permutation(n);
                        let from = if w == first { into } else { 0 };
                        Window {
                            blocks,
                            order: order[from..].to_vec(),
                        }
                    }),
            )
        }
    }
}

/// The rows of each batch of an epoch from batch `from_step` on: `windows`' rows, cut into
/// batches of `batch_size` (the last may be shorter; batches run across windows).
pub fn order(
    shuffle: Shuffle,
    seed: u64,
    epoch: usize,
    rows: usize,
    batch_size: usize,
    from_step: usize,
) -> Box<dyn Iterator<Item = Vec<u32>> + Send> {
    let size = batch_size.max(1);
    let skip = from_step.saturating_mul(size);
    let mut stream = windows(shuffle, seed, epoch, rows, skip)
        .flat_map(|w| w.rows())
        .peekable();
    Box::new(std::iter::from_fn(move || {
        stream.peek()?;
        Some(stream.by_ref().take(size).collect())
    }))
}

/// Run `body` on each batch in turn. While it runs, the next batch is assembled (random rows of
/// the columns: cache misses) by the pool's other thread when that one is free, so a step
/// rarely waits for its batch. The first error, from a batch or from `body`, ends the drive.
pub fn drive(
    mut batches: Batches<'_>,
    mut body: impl FnMut(Batch) -> Result<()> + Send,
) -> Result<()> {
    let mut next = batches.next().transpose()?;
    while let Some(batch) = next {
        let (done, upcoming) = rayon::join(|| body(batch), || batches.next().transpose());
        done?;
        next = upcoming?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dataset of `rows` rows whose one id column numbers them.
    fn numbered(rows: usize) -> Dataset {
        Dataset {
            split: super::super::Split::Train,
            file: "t".into(),
            rows,
            cat: vec![(0..rows as u32).collect()],
            num: Vec::new(),
            bags: Vec::new(),
            truncated: Vec::new(),
            reached: vec![vec![0; rows]],
            own: Vec::new(),
            truth: Vec::new(),
            groups: Vec::new(),
            dropped: Vec::new(),
        }
    }

    fn ids(batches: Batches<'_>) -> Vec<Vec<u32>> {
        batches.map(|b| b.unwrap().ids[0].clone()).collect()
    }

    /// Both sources: every row once per epoch, in batches of the size asked (the last short);
    /// another epoch, another order; the batches from step k are the whole epoch's from k on
    /// (what resume relies on); and `drive` hands the body every batch in order.
    #[test]
    fn sources_visit_every_row_once_and_resume_at_any_step() {
        let data = numbered(103);
        let full = InMemory {
            data: &data,
            shuffle: Shuffle::Full,
        };
        // Blocks of 16 rows (the last of 7), two at a time: windows of 32, 32, 32 or fewer.
        let blocks = InMemory {
            data: &data,
            shuffle: Shuffle::Blocks {
                block_rows: 16,
                blocks_per_window: 2,
            },
        };
        let sources: [&dyn BatchSource; 2] = [&full, &blocks];
        for source in sources {
            let whole = ids(source.epoch(9, 1, 10, 0));
            assert_eq!(whole.len(), source.batches_per_epoch(10));
            assert!(whole[..10].iter().all(|b| b.len() == 10) && whole[10].len() == 3);
            let mut seen: Vec<u32> = whole.concat();
            assert_ne!(seen, (0..103).collect::<Vec<u32>>(), "shuffled");
            seen.sort_unstable();
            assert_eq!(seen, (0..103).collect::<Vec<u32>>());
            assert_ne!(ids(source.epoch(9, 2, 10, 0)), whole);
            assert_eq!(ids(source.epoch(9, 1, 10, 0)), whole);
            for k in [1, 4, 10, 11] {
                assert_eq!(
                    ids(source.epoch(9, 1, 10, k)),
                    whole[k..].to_vec(),
                    "from {k}"
                );
            }
            let mut driven = Vec::new();
            drive(source.epoch(9, 1, 10, 0), |b| {
                driven.push(b.ids[0].clone());
                Ok(())
            })
            .unwrap();
            assert_eq!(driven, whole);
        }
    }

    /// Block shuffling holds one window at a time: each stretch of the epoch the size of a
    /// window (96 rows: six blocks of 16, two per window) is the rows of two whole blocks, no
    /// more; the rows within a window are shuffled; another epoch visits the blocks in another
    /// order.
    #[test]
    fn block_shuffle_reads_whole_blocks_one_window_at_a_time() {
        let shuffle = Shuffle::Blocks {
            block_rows: 16,
            blocks_per_window: 2,
        };
        let stream = |epoch| {
            order(shuffle, 9, epoch, 96, 7, 0)
                .flatten()
                .collect::<Vec<u32>>()
        };
        let blocks_of = |window: &[u32]| {
            let mut blocks: Vec<u32> = window.iter().map(|r| r / 16).collect();
            blocks.sort_unstable();
            blocks.dedup();
            blocks
        };
        let one = stream(1);
        assert_eq!(one.len(), 96);
        for window in one.chunks(32) {
            assert_eq!(blocks_of(window).len(), 2, "{window:?}");
            let mut sorted = window.to_vec();
            sorted.sort_unstable();
            assert_ne!(sorted, window, "rows shuffled within the window");
        }
        let two = stream(2);
        let visits = |s: &[u32]| s.chunks(32).map(blocks_of).collect::<Vec<_>>();
        assert_ne!(visits(&one), visits(&two));
    }

    /// An error from the body ends the drive at that batch.
    #[test]
    fn drive_stops_at_the_first_error() {
        let data = numbered(50);
        let mut seen = 0;
        let source = InMemory {
            data: &data,
            shuffle: Shuffle::Full,
        };
        let r = drive(source.epoch(1, 1, 10, 0), |_| {
            seen += 1;
            match seen {
                3 => Err(crate::error::Error::Internal("stop".into())),
                _ => Ok(()),
            }
        });
        assert!(r.is_err());
        assert_eq!(seen, 3);
    }
}
