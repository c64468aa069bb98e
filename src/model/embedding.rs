//! An embedding table: one embedded field's rows, kept outside autograd, with each row's
//! optimizer state stored next to its weights. A step touches only the rows its batch used, so
//! its cost does not grow with the vocabulary.

use super::gather::{TableRows, prefetch};
use crate::features::PAD_ID;
use crate::rng::Rng;

pub use super::sparse_optim::SparseOptimizer;

/// One feature's table. Row r occupies `data[r * stride .. (r + 1) * stride]`: first `dim`
/// weights, then the optimizer state (Adagrad: 1 accumulator; lazy Adam: `dim` m and `dim` v).
pub struct Table {
    pub name: String,
    pub vocab: usize,
    pub dim: usize,
    stride: usize,
    data: Vec<f32>,
    scratch: Scratch,
    /// L2 on the rows a step touches: their gradient gets `l2 · w`.
    l2: f32,
}

/// Per-step dedup state: `mark[id]` = (step stamp << 32) | slot of `id` in `unique`.
#[derive(Default)]
struct Scratch {
    mark: Vec<u64>,
    stamp: u32,
    unique: Vec<u32>,
    grad: Vec<f32>,
}

/// How many rows ahead the latency-bound loops over random table rows ask for the next row.
const PREFETCH_AHEAD: usize = 8;

impl Table {
    /// The table's weights as the forward pass reads them.
    pub fn view(&self) -> TableRows<'_> {
        TableRows::new(&self.data, self.vocab, self.dim, self.stride)
    }

    /// Free the per-step dedup state (8 bytes per vocabulary row); the next step rebuilds it.
    pub(super) fn release_scratch(&mut self) {
        self.scratch = Scratch::default();
    }

    /// A table with rows drawn from N(0, std²) by `rng`; the padding row is zero. With `std` 0
    /// nothing is drawn and every row is zero (for tables about to be loaded from a checkpoint).
    pub fn new(
        name: &str,
        vocab: usize,
        dim: usize,
        std: f64,
        opt: &SparseOptimizer,
        initial_state: f32,
        rng: &mut Rng,
    ) -> Self {
        let stride = dim + opt.state_len(dim);
        let mut data = vec![0f32; vocab * stride];
        for (r, row) in data.chunks_exact_mut(stride).enumerate() {
            if std > 0.0 && r as u32 != PAD_ID {
                for w in &mut row[..dim] {
                    *w = (rng.normal() * std) as f32;
                }
            }
            if let SparseOptimizer::RowwiseAdagrad { .. } = opt {
                row[dim] = initial_state;
            }
        }
        Table {
            name: name.to_string(),
            vocab,
            dim,
            stride,
            data,
            scratch: Scratch::default(),
            l2: 0.0,
        }
    }

    /// The same table with an L2 penalty on the rows each step touches.
    pub fn with_l2(mut self, l2: f32) -> Self {
        self.l2 = l2;
        self
    }

    /// Replace row `id`'s weights (its optimizer state is kept).
    pub fn set_row(&mut self, id: u32, w: &[f32]) {
        let s = id as usize * self.stride;
        self.data[s..s + self.dim].copy_from_slice(&w[..self.dim]);
    }

    /// Weights of row `id`.
    pub fn row(&self, id: u32) -> &[f32] {
        let s = id as usize * self.stride;
        &self.data[s..s + self.dim]
    }

    /// All weights, row-major (vocab x dim), without optimizer state.
    #[cfg(test)]
    pub fn weights(&self) -> Vec<f32> {
        self.rows().flatten().copied().collect()
    }

    /// The ids the last step touched and their summed gradients, as `update` applied them.
    #[cfg(test)]
    pub fn accumulated(&self) -> Vec<(u32, Vec<f32>)> {
        let s = &self.scratch;
        s.unique
            .iter()
            .zip(s.grad.chunks_exact(self.dim))
            .map(|(&id, g)| (id, g.to_vec()))
            .collect()
    }

    /// Each row's weights, in id order, without optimizer state.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.stride).map(|r| &r[..self.dim])
    }

    /// Every row's weights and optimizer state (vocab x `stride`, row-major), for checkpoints.
    pub fn raw(&self) -> (&[f32], usize) {
        (&self.data, self.stride)
    }

    /// Restore what `raw` gave; false when the length does not fit this table.
    pub fn set_raw(&mut self, data: &[f32]) -> bool {
        if data.len() != self.data.len() {
            return false;
        }
        self.data.copy_from_slice(data);
        true
    }

    /// Replace all weights (vocab x dim); optimizer state is reset to `initial_state`.
    pub fn set_weights(&mut self, w: &[f32], opt: &SparseOptimizer, initial_state: f32) {
        for (row, src) in self
            .data
            .chunks_exact_mut(self.stride)
            .zip(w.chunks_exact(self.dim))
        {
            row[..self.dim].copy_from_slice(src);
            row[self.dim..].fill(0.0);
            if let SparseOptimizer::RowwiseAdagrad { .. } = opt {
                row[self.dim] = initial_state;
            }
        }
    }

    /// Sum the gradient rows of duplicate ids over `rows` batch rows: `id(b)` is this field's id
    /// in batch row b and `grad(b)` its gradient slice. Leaves the unique ids in `scratch.unique`
    /// and their summed gradients in `scratch.grad` (same order).
    pub(super) fn accumulate<'g>(
        &mut self,
        rows: usize,
        id: impl Fn(usize) -> u32,
        grad: impl Fn(usize) -> &'g [f32],
    ) {
        self.accumulate_with(rows, id, |b, dst| {
            for (a, g) in dst.iter_mut().zip(grad(b)) {
                *a += g;
            }
        });
    }

    /// The same over `n` entries (a bag field's tokens): `add(e, dst)` adds entry e's gradient
    /// to `dst`, the summed gradient of its id `id(e)`.
    pub(super) fn accumulate_with(
        &mut self,
        n: usize,
        id: impl Fn(usize) -> u32,
        mut add: impl FnMut(usize, &mut [f32]),
    ) {
        let s = &mut self.scratch;
        if s.mark.len() != self.vocab {
            s.mark = vec![0; self.vocab];
            s.stamp = 0;
        }
        s.stamp = s.stamp.wrapping_add(1);
        if s.stamp == 0 {
            s.mark.fill(0);
            s.stamp = 1;
        }
        let stamp = (s.stamp as u64) << 32;
        s.unique.clear();
        s.grad.clear();
        let d = self.dim;
        for b in 0..n {
            if b + PREFETCH_AHEAD < n {
                prefetch(
                    s.mark
                        .as_ptr()
                        .wrapping_add(id(b + PREFETCH_AHEAD) as usize),
                    1,
                );
            }
            let id = id(b);
            let m = s.mark[id as usize];
            let slot = if m & !0xffff_ffff == stamp {
                (m & 0xffff_ffff) as usize
            } else {
                let slot = s.unique.len();
                s.mark[id as usize] = stamp | slot as u64;
                s.unique.push(id);
                s.grad.resize(s.grad.len() + d, 0.0);
                slot
            };
            add(b, &mut s.grad[slot * d..slot * d + d]);
        }
    }

    /// Apply the optimizer to the rows accumulated by `accumulate`. `step` counts from 1.
    pub(super) fn update(&mut self, opt: &SparseOptimizer, step: u64) {
        let (d, stride) = (self.dim, self.stride);
        // The L2 penalty's gradient joins each touched row's, so both optimizers see it.
        if self.l2 > 0.0 {
            let s = &mut self.scratch;
            for (&id, g) in s.unique.iter().zip(s.grad.chunks_exact_mut(d)) {
                let w = &self.data[id as usize * stride..id as usize * stride + d];
                for (g, w) in g.iter_mut().zip(w) {
                    *g += self.l2 * w;
                }
            }
        }
        let s = &self.scratch;
        for (i, (&id, g)) in s.unique.iter().zip(s.grad.chunks_exact(d)).enumerate() {
            if let Some(&ahead) = s.unique.get(i + PREFETCH_AHEAD) {
                prefetch(
                    self.data.as_ptr().wrapping_add(ahead as usize * stride),
                    stride,
                );
            }
            if id == PAD_ID {
                continue;
            }
            let row = &mut self.data[id as usize * stride..(id as usize + 1) * stride];
            let (w, state) = row.split_at_mut(d);
            match *opt {
                SparseOptimizer::RowwiseAdagrad { lr, eps } => {
                    let mean_sq = g.iter().map(|x| x * x).sum::<f32>() / d as f32;
                    state[0] += mean_sq;
                    let k = lr / (state[0].sqrt() + eps);
                    for (w, g) in w.iter_mut().zip(g) {
                        *w -= k * g;
                    }
                }
                SparseOptimizer::LazyAdam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } => {
                    let bc1 = 1.0 - beta1.powi(step as i32);
                    let bc2 = 1.0 - beta2.powi(step as i32);
                    let (m, v) = state.split_at_mut(d);
                    for j in 0..d {
                        m[j] = beta1 * m[j] + (1.0 - beta1) * g[j];
                        v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j];
                        w[j] -= lr * (m[j] / bc1) / ((v[j] / bc2).sqrt() + eps);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, Var};

    /// The summed per-row gradient of the sparse path equals the gradient candle computes for a
    /// dense table (the oracle), on a batch with repeated ids.
    #[test]
    fn sparse_gradient_equals_dense_embedding_gradient() {
        let dev = Device::Cpu;
        let (vocab, dim, rows) = (40usize, 4usize, 64usize);
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.1, eps: 1e-8 };
        let mut rng = Rng::stream(1, "test");
        let mut table = Table::new("f", vocab, dim, 0.5, &opt, 0.0, &mut rng);
        let ids: Vec<u32> = (0..rows).map(|_| 3 + rng.below(10) as u32).collect();
        let w: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let wt = Tensor::from_slice(&w, (dim, 1), &dev).unwrap();
        let loss_of = |x: &Tensor| x.matmul(&wt).unwrap().sqr().unwrap().sum_all().unwrap();

        // Dense oracle: a Var table, index_select, backward.
        let dense = Var::from_slice(&table.weights(), (vocab, dim), &dev).unwrap();
        let idt = Tensor::from_slice(&ids, rows, &dev).unwrap();
        let x = dense.as_tensor().index_select(&idt, 0).unwrap();
        let dense_grad = loss_of(&x).backward().unwrap();
        let dense_grad: Vec<Vec<f32>> = dense_grad
            .get(dense.as_tensor())
            .unwrap()
            .to_vec2()
            .unwrap();

        // Sparse path: gather rows into a fresh Var, backward, accumulate duplicates.
        let gathered: Vec<f32> = ids.iter().flat_map(|&i| table.row(i).to_vec()).collect();
        let xv = Var::from_vec(gathered, (rows, dim), &dev).unwrap();
        let g = loss_of(xv.as_tensor()).backward().unwrap();
        let g: Vec<f32> = g
            .get(xv.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        table.accumulate(ids.len(), |b| ids[b], |b| &g[b * dim..b * dim + dim]);

        let mut touched = 0;
        for (r, dense_row) in dense_grad.iter().enumerate() {
            match table.scratch.unique.iter().position(|&u| u as usize == r) {
                Some(slot) => {
                    touched += 1;
                    let sparse_row = &table.scratch.grad[slot * dim..slot * dim + dim];
                    for (a, b) in sparse_row.iter().zip(dense_row) {
                        assert!(
                            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                            "row {r}: {a} vs {b}"
                        );
                    }
                }
                None => assert!(dense_row.iter().all(|&v| v == 0.0), "row {r} untouched"),
            }
        }
        assert_eq!(touched, table.scratch.unique.len());
        assert!(touched < rows, "the test batch must repeat ids");
    }
}
