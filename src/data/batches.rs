//! Batch sources: where an epoch's training batches come from, in which order, from which step.
//! The trainer reads its batches only through `BatchSource` and `drive`. The in-memory dataset is
//! the first source; a file read in chunks (logs larger than memory) implements the same trait.

use super::dataset::{Batch, Dataset};
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

/// An encoded split in memory: each epoch a seeded permutation of its rows
/// (`shuffle/<epoch>`), cut into batches.
pub struct InMemory<'a>(pub &'a Dataset);

impl BatchSource for InMemory<'_> {
    fn rows(&self) -> usize {
        self.0.rows
    }

    fn epoch(&self, seed: u64, epoch: usize, batch_size: usize, from_step: usize) -> Batches<'_> {
        let d = self.0;
        let order = Rng::stream(seed, &format!("shuffle/{epoch}")).permutation(d.rows);
        let size = batch_size.max(1);
        Box::new(
            (from_step..self.batches_per_epoch(size))
                .map(move |i| Ok(d.batch(&order[i * size..((i + 1) * size).min(order.len())]))),
        )
    }
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

    /// A source that streams its rows chunk by chunk, as a file too large for memory would be
    /// read: each epoch visits the chunks in a seeded order and shuffles rows within a chunk,
    /// never holding more than one chunk's order. Its position is (epoch, step) like any source.
    struct Chunked {
        data: Dataset,
        chunk: usize,
    }

    impl BatchSource for Chunked {
        fn rows(&self) -> usize {
            self.data.rows
        }
        fn epoch(
            &self,
            seed: u64,
            epoch: usize,
            batch_size: usize,
            from_step: usize,
        ) -> Batches<'_> {
            let chunks = self.data.rows.div_ceil(self.chunk);
            let visit = Rng::stream(seed, &format!("chunks/{epoch}")).permutation(chunks);
            let rows = visit.into_iter().flat_map(move |c| {
                let start = c as usize * self.chunk;
                let len = self.chunk.min(self.data.rows - start);
                let mut r = Rng::stream(seed, &format!("rows/{epoch}/{c}"));
                r.permutation(len)
                    .into_iter()
                    .map(move |i| start as u32 + i)
            });
            let mut rows = rows.peekable();
            let batches = std::iter::from_fn(move || {
                rows.peek()?;
                let idx: Vec<u32> = rows.by_ref().take(batch_size).collect();
                Some(Ok(self.data.batch(&idx)))
            });
            Box::new(batches.skip(from_step))
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
        let chunked = Chunked {
            data: numbered(103),
            chunk: 16,
        };
        let data = numbered(103);
        let memory = InMemory(&data);
        let sources: [&dyn BatchSource; 2] = [&memory, &chunked];
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

    /// An error from the body ends the drive at that batch.
    #[test]
    fn drive_stops_at_the_first_error() {
        let data = numbered(50);
        let mut seen = 0;
        let r = drive(InMemory(&data).epoch(1, 1, 10, 0), |_| {
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
