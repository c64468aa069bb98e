//! The input rows a batch gives the chain: each store's embeddings gathered for the batch's ids,
//! then the numeric features.

use candle_core::Var;
use rayon::prelude::*;

use super::chain::FunnelModel;
use crate::data::Batch;
use crate::error::Result;

impl FunnelModel {
    pub fn input_width(&self) -> usize {
        self.stores[0].width() + self.numerics
    }

    /// The input rows of a batch as one store sees them: its embeddings, then the numeric
    /// features (rows x `input_width`).
    pub fn input(&self, store: usize, b: &Batch) -> Vec<f32> {
        let s = &self.stores[store];
        let (w, e, f) = (self.input_width(), s.width(), s.tables.len());
        let mut x = vec![0f32; b.rows * w];
        // The gather is memory-latency bound (random rows of large tables): split it over the
        // pool's threads in blocks of rows.
        const BLOCK: usize = 256;
        x.par_chunks_mut(BLOCK * w)
            .enumerate()
            .for_each(|(blk, rows)| {
                for (j, row) in rows.chunks_exact_mut(w).enumerate() {
                    let r = blk * BLOCK + j;
                    if let Some(ahead) = b.cat.get((r + 4) * f..(r + 5) * f) {
                        s.prefetch_row(ahead);
                    }
                    s.gather_row(&b.cat[r * f..(r + 1) * f], &mut row[..e]);
                    row[e..].copy_from_slice(&b.num[r * self.numerics..(r + 1) * self.numerics]);
                }
            });
        x
    }

    /// A trainable input per store for a batch (gradients flow back to it, then to the
    /// embedding rows).
    pub fn input_vars(&self, b: &Batch) -> Result<Vec<Var>> {
        (0..self.stores.len())
            .map(|i| {
                Ok(Var::from_vec(
                    self.input(i, b),
                    (b.rows, self.input_width()),
                    &self.dev,
                )?)
            })
            .collect()
    }
}
