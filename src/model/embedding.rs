//! The sparse embedding store: one table per categorical feature, kept outside autograd, with each
//! row's optimizer state stored next to its weights. A step touches only the rows its batch used,
//! so its cost does not grow with the vocabulary.

use rayon::prelude::*;

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

/// Ask the CPU to start loading the cache lines of `len` elements at `p`: random table rows are
/// memory-latency bound, and asking a few rows ahead overlaps their misses.
#[inline(always)]
fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = p as *const i8;
        let end = p.wrapping_add(len.saturating_sub(1)) as *const i8;
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it never
        // faults and never makes memory visible to the program, whatever the address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(start);
            _mm_prefetch::<_MM_HINT_T0>(end);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

impl Table {
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
    fn accumulate<'g>(
        &mut self,
        rows: usize,
        id: impl Fn(usize) -> u32,
        grad: impl Fn(usize) -> &'g [f32],
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
        for b in 0..rows {
            if b + PREFETCH_AHEAD < rows {
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
            let dst = &mut s.grad[slot * d..slot * d + d];
            for (a, g) in dst.iter_mut().zip(grad(b)) {
                *a += g;
            }
        }
    }

    /// Apply the optimizer to the rows accumulated by `accumulate`. `step` counts from 1.
    fn update(&mut self, opt: &SparseOptimizer, step: u64) {
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

/// All tables of a model and where each one's columns sit in the model input.
pub struct EmbeddingStore {
    pub tables: Vec<Table>,
    /// Column offset of each table's slice in an input row (tables of one field group share a
    /// slice: their rows are summed into it).
    pub offsets: Vec<usize>,
    /// Whether each table is the first of its slice (its row is copied; later ones are added).
    first: Vec<bool>,
    /// Width of the embedding part of an input row.
    width: usize,
    /// Whether any slice is shared (the gather then sums instead of copying).
    grouped: bool,
    pub opt: SparseOptimizer,
    step: u64,
}

impl EmbeddingStore {
    /// Sparse steps taken (the lazy Adam's bias correction reads it).
    pub fn steps(&self) -> u64 {
        self.step
    }

    pub fn set_steps(&mut self, step: u64) {
        self.step = step;
    }

    /// Free the per-step dedup state (8 bytes per vocabulary row); training rebuilds it when it
    /// next steps.
    pub fn release_scratch(&mut self) {
        for t in &mut self.tables {
            t.scratch = Scratch::default();
        }
    }

    pub fn new(tables: Vec<Table>, opt: SparseOptimizer) -> Self {
        let slots: Vec<usize> = (0..tables.len()).collect();
        Self::grouped(tables, opt, &slots)
    }

    /// A store whose table f writes into input slice `slot[f]`: tables sharing a slot (a field
    /// group, all of one width) are summed; slices are laid out in order of first use.
    pub fn grouped(tables: Vec<Table>, opt: SparseOptimizer, slot: &[usize]) -> Self {
        let mut start: Vec<(usize, usize)> = Vec::new(); // (slot, offset)
        let (mut offsets, mut first) = (Vec::with_capacity(tables.len()), Vec::new());
        let mut at = 0;
        for (t, &s) in tables.iter().zip(slot) {
            match start.iter().find(|(g, _)| *g == s) {
                Some(&(_, off)) => {
                    offsets.push(off);
                    first.push(false);
                }
                None => {
                    start.push((s, at));
                    offsets.push(at);
                    first.push(true);
                    at += t.dim;
                }
            }
        }
        EmbeddingStore {
            grouped: first.iter().any(|f| !f),
            tables,
            offsets,
            first,
            width: at,
            opt,
            step: 0,
        }
    }

    /// Total embedding width of one input row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Write the embeddings of batch row `b` (ids `cat[b * F ..]`) into `out` (one input row).
    pub fn gather_row(&self, ids: &[u32], out: &mut [f32]) {
        if !self.grouped {
            for ((t, &id), &off) in self.tables.iter().zip(ids).zip(&self.offsets) {
                out[off..off + t.dim].copy_from_slice(t.row(id));
            }
            return;
        }
        for (((t, &id), &off), &first) in self
            .tables
            .iter()
            .zip(ids)
            .zip(&self.offsets)
            .zip(&self.first)
        {
            let slice = &mut out[off..off + t.dim];
            if first {
                slice.copy_from_slice(t.row(id));
            } else {
                for (o, v) in slice.iter_mut().zip(t.row(id)) {
                    *o += v;
                }
            }
        }
    }

    /// Start loading the rows `gather_row` will read for these ids.
    pub fn prefetch_row(&self, ids: &[u32]) {
        for (t, &id) in self.tables.iter().zip(ids) {
            prefetch(t.data.as_ptr().wrapping_add(id as usize * t.stride), t.dim);
        }
    }

    /// Update the rows used by a batch from the gradient of its input (`rows` x `row_width`,
    /// embeddings at each table's offset). Tables are updated in parallel.
    pub fn apply_gradient(&mut self, cat: &[u32], grad: &[f32], row_width: usize, lr_scale: f32) {
        self.step += 1;
        let (step, opt, fields) = (self.step, self.opt.scaled(lr_scale), self.tables.len());
        let offsets = &self.offsets;
        self.tables.par_iter_mut().enumerate().for_each(|(f, t)| {
            let off = offsets[f];
            let d = t.dim;
            t.accumulate(
                cat.len() / fields,
                |b| cat[b * fields + f],
                |b| &grad[b * row_width + off..b * row_width + off + d],
            );
            t.update(&opt, step);
        });
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

    #[test]
    fn only_touched_rows_change_and_padding_stays_zero() {
        let opt = SparseOptimizer::LazyAdam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut rng = Rng::stream(2, "test");
        let t = Table::new("f", 10, 2, 0.1, &opt, 0.0, &mut rng);
        let before = t.weights();
        let mut store = EmbeddingStore::new(vec![t], opt);
        // Batch of 3 rows, one field: ids 4, 0 (padding), 4.
        store.apply_gradient(&[4, 0, 4], &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2, 1.0);
        let after = store.tables[0].weights();
        for r in 0..10 {
            let changed = before[r * 2..r * 2 + 2] != after[r * 2..r * 2 + 2];
            assert_eq!(changed, r == 4, "row {r}");
        }
        assert_eq!(&after[0..2], &[0.0, 0.0]);
        // First lazy-Adam step moves each weight by lr (m̂/sqrt(v̂) = 1).
        assert!((before[8] - after[8] - 0.1).abs() < 1e-5);
    }

    /// L2 on touched rows: the row's gradient becomes g + l2·w before the optimizer sees it, at
    /// half the learning rate under a schedule's factor 0.5; untouched rows do not move.
    #[test]
    fn l2_and_schedule_on_touched_rows_by_hand() {
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.5, eps: 0.0 };
        let mut rng = Rng::stream(3, "test");
        let t = Table::new("f", 5, 2, 0.1, &opt, 0.0, &mut rng).with_l2(0.25);
        let before = t.weights();
        let mut store = EmbeddingStore::new(vec![t], opt);
        store.apply_gradient(&[3], &[3.0, 4.0], 2, 0.5);
        let after = store.tables[0].weights();
        let g = [3.0 + 0.25 * before[6], 4.0 + 0.25 * before[7]];
        let k = 0.25 / ((g[0] * g[0] + g[1] * g[1]) / 2.0).sqrt();
        assert!((before[6] - after[6] - k * g[0]).abs() < 1e-6);
        assert!((before[7] - after[7] - k * g[1]).abs() < 1e-6);
        assert_eq!(before[..6], after[..6]);
        assert_eq!(before[8..], after[8..]);
    }

    #[test]
    fn rowwise_adagrad_step_by_hand() {
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.5, eps: 0.0 };
        let mut rng = Rng::stream(3, "test");
        let t = Table::new("f", 5, 2, 0.1, &opt, 0.0, &mut rng);
        let before = t.weights();
        let mut store = EmbeddingStore::new(vec![t], opt);
        // Gradient (3, 4): G = (9 + 16) / 2 = 12.5; step = 0.5 / sqrt(12.5) * g.
        store.apply_gradient(&[3], &[3.0, 4.0], 2, 1.0);
        let after = store.tables[0].weights();
        let k = 0.5 / 12.5f32.sqrt();
        assert!((before[6] - after[6] - 3.0 * k).abs() < 1e-6);
        assert!((before[7] - after[7] - 4.0 * k).abs() < 1e-6);
    }

    /// A field group: tables 0 and 2 share one input slice, whose value is the sum of their
    /// rows; table 1 keeps its own. Each grouped table is updated from the group's slice of the
    /// gradient (the gradient of a sum reaches every term unchanged).
    #[test]
    fn grouped_tables_sum_into_one_slice_and_share_its_gradient() {
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.1, eps: 1e-8 };
        let mut rng = Rng::stream(2, "groups");
        let tables: Vec<Table> = ["a", "b", "c"]
            .iter()
            .map(|n| Table::new(n, 10, 2, 0.5, &opt, 0.0, &mut rng))
            .collect();
        let mut store = EmbeddingStore::grouped(tables, opt, &[7, 1, 7]);
        assert_eq!(store.width(), 4);
        assert_eq!(store.offsets, vec![0, 2, 0]);
        let ids = [3u32, 4, 5];
        let mut row = vec![0f32; 4];
        store.gather_row(&ids, &mut row);
        let (a, b, c) = (
            store.tables[0].row(3).to_vec(),
            store.tables[1].row(4).to_vec(),
            store.tables[2].row(5).to_vec(),
        );
        assert_eq!(row, vec![a[0] + c[0], a[1] + c[1], b[0], b[1]]);
        // A gradient on the group's slice only: both grouped tables move, table b does not.
        store.apply_gradient(&ids, &[1.0, -1.0, 0.0, 0.0], 4, 1.0);
        assert_ne!(store.tables[0].row(3), a.as_slice());
        assert_ne!(store.tables[2].row(5), c.as_slice());
        assert_eq!(store.tables[1].row(4), b.as_slice());
        // The same step for both: row-wise Adagrad from the same gradient moves them equally.
        let da: Vec<f32> = store.tables[0]
            .row(3)
            .iter()
            .zip(&a)
            .map(|(x, y)| x - y)
            .collect();
        let dc: Vec<f32> = store.tables[2]
            .row(5)
            .iter()
            .zip(&c)
            .map(|(x, y)| x - y)
            .collect();
        for (x, y) in da.iter().zip(&dc) {
            assert!((x - y).abs() < 1e-6 && x.abs() > 0.05, "{da:?} vs {dc:?}");
        }
    }
}
