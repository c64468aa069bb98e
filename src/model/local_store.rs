//! The row store of one process: every table in memory, gathered by the batch's id columns
//! (and its bags, pooled) into the layout's slots (a field group's rows summed into its slot),
//! and updated row by row from the input gradient, tables in parallel.

use std::ops::Range;

use rayon::prelude::*;

use super::embedding::{SparseOptimizer, Table};
use super::gather::{Gather, TableRows};
use super::pooling::{self, Token};
use super::row_store::{InputGradient, RowSource, RowStore};
use crate::data::Batch;
use crate::layout::{FieldLayout, Pooling};

pub struct LocalStore {
    /// One table per embedded field, in field order.
    tables: Vec<Table>,
    gather: Gather,
    opt: SparseOptimizer,
    step: u64,
}

impl LocalStore {
    /// A store of `tables` (one per field of `layout`, in order).
    pub fn new(tables: Vec<Table>, layout: FieldLayout, opt: SparseOptimizer) -> Self {
        debug_assert_eq!(tables.len(), layout.fields());
        LocalStore {
            tables,
            gather: Gather::new(layout),
            opt,
            step: 0,
        }
    }

    fn views(&self) -> Vec<TableRows<'_>> {
        self.tables.iter().map(Table::view).collect()
    }
}

impl RowSource for LocalStore {
    fn layout(&self) -> &FieldLayout {
        self.gather.layout()
    }

    fn gather(&self, b: &Batch, rows: Range<usize>, x: &mut [f32], w: usize) {
        self.gather.rows(&self.views(), b, rows, x, w);
    }

    fn gather_tokens(&self, b: &Batch, s: usize) -> Vec<f32> {
        self.gather.tokens(&self.views(), b, s)
    }
}

impl RowStore for LocalStore {
    fn apply(&mut self, b: &Batch, grad: &InputGradient<'_>, lr_scale: f32) {
        self.step += 1;
        let (step, opt) = (self.step, self.opt.scaled(lr_scale));
        let g = &self.gather;
        let (offsets, singles, pooling) = (&g.offsets, g.singles, &g.pooling);
        let (rows, w) = (grad.rows, grad.width);
        let sequences = g.layout().sequences();
        self.tables.par_iter_mut().enumerate().for_each(|(f, t)| {
            let (off, d) = (offsets[f], t.dim);
            if f < singles {
                let col = &b.ids[f];
                // The histories read through this field's table: their tokens' gradients join
                // the column's in one pass, so a row is updated once.
                let histories: Vec<(&[u32], &[f32])> = sequences
                    .iter()
                    .zip(&grad.tokens)
                    .filter(|(s, _)| s.field == f)
                    .map(|(s, &g)| (b.bags[s.bag].ids.as_slice(), g))
                    .collect();
                // Entries 0..n are the column's rows, then each history's tokens in turn.
                let n = col.len();
                let entry = |mut e: usize| -> (u32, &[f32]) {
                    if e < n {
                        return (col[e], &rows[e * w + off..e * w + off + d]);
                    }
                    e -= n;
                    for (ids, g) in &histories {
                        if e < ids.len() {
                            return (ids[e], &g[e * d..e * d + d]);
                        }
                        e -= ids.len();
                    }
                    unreachable!("an entry past the histories' tokens")
                };
                let total = n + histories.iter().map(|(ids, _)| ids.len()).sum::<usize>();
                t.accumulate(total, |e| entry(e).0, |e| entry(e).1);
            } else {
                let pooling = pooling[f - singles];
                let (tokens, winners) = pooling::tokens(&t.view(), &b.bags[f - singles], pooling);
                let g = |tok: &Token| {
                    let r = tok.row as usize;
                    &rows[r * w + off..r * w + off + d]
                };
                match pooling {
                    Pooling::Max => t.accumulate_with(
                        tokens.len(),
                        |e| tokens[e].id,
                        |e, dst| {
                            let tok = &tokens[e];
                            let won = &winners[tok.row as usize * d..][..d];
                            for ((a, &g), &k) in dst.iter_mut().zip(g(tok)).zip(won) {
                                if k as usize == e {
                                    *a += g;
                                }
                            }
                        },
                    ),
                    Pooling::Sum | Pooling::Mean => t.accumulate_with(
                        tokens.len(),
                        |e| tokens[e].id,
                        |e, dst| {
                            let tok = &tokens[e];
                            for (a, &g) in dst.iter_mut().zip(g(tok)) {
                                *a += tok.coef * g;
                            }
                        },
                    ),
                }
            }
            t.update(&opt, step);
        });
    }

    fn tables(&self) -> Vec<&Table> {
        self.tables.iter().collect()
    }

    fn tables_mut(&mut self) -> Vec<&mut Table> {
        self.tables.iter_mut().collect()
    }

    fn optimizer(&self) -> SparseOptimizer {
        self.opt
    }

    fn steps(&self) -> u64 {
        self.step
    }

    fn set_steps(&mut self, steps: u64) {
        self.step = steps;
    }

    fn release_scratch(&mut self) {
        for t in &mut self.tables {
            t.release_scratch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A batch of these id columns alone.
    fn ids_batch(ids: &[Vec<u32>]) -> Batch {
        Batch {
            rows: ids[0].len(),
            ids: ids.to_vec(),
            bags: Vec::new(),
            num: Vec::new(),
            labels: Vec::new(),
            own: Vec::new(),
        }
    }

    /// A store of one-field tables, each its own slot.
    fn store(tables: Vec<Table>, opt: SparseOptimizer) -> LocalStore {
        let fields: Vec<(&str, usize)> = tables.iter().map(|t| (t.name.as_str(), t.dim)).collect();
        let layout = FieldLayout::new(&fields, &[]).unwrap();
        LocalStore::new(tables, layout, opt)
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
        let mut store = store(vec![t], opt);
        // Batch of 3 rows, one field: ids 4, 0 (padding), 4.
        store.apply(
            &ids_batch(&[vec![4, 0, 4]]),
            &InputGradient::rows_only(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2),
            1.0,
        );
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
        let mut store = store(vec![t], opt);
        store.apply(
            &ids_batch(&[vec![3]]),
            &InputGradient::rows_only(&[3.0, 4.0], 2),
            0.5,
        );
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
        let mut store = store(vec![t], opt);
        // Gradient (3, 4): G = (9 + 16) / 2 = 12.5; step = 0.5 / sqrt(12.5) * g.
        store.apply(
            &ids_batch(&[vec![3]]),
            &InputGradient::rows_only(&[3.0, 4.0], 2),
            1.0,
        );
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
        let layout = FieldLayout::new(&[("a", 2), ("b", 2), ("c", 2)], &[("ac", &[0, 2])]).unwrap();
        let mut store = LocalStore::new(tables, layout, opt);
        assert_eq!(store.layout().width(), 4);
        let ids = [vec![3u32], vec![4], vec![5]];
        let mut row = vec![0f32; 4];
        store.gather(&ids_batch(&ids), 0..1, &mut row, 4);
        let (a, b, c) = (
            store.tables[0].row(3).to_vec(),
            store.tables[1].row(4).to_vec(),
            store.tables[2].row(5).to_vec(),
        );
        assert_eq!(row, vec![a[0] + c[0], a[1] + c[1], b[0], b[1]]);
        // A gradient on the group's slice only: both grouped tables move, table b does not.
        store.apply(
            &ids_batch(&ids),
            &InputGradient::rows_only(&[1.0, -1.0, 0.0, 0.0], 4),
            1.0,
        );
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

    /// A history over field 1's table: its tokens are gathered from that table in bag order,
    /// and each row is updated once with the sum of its gradients as a target (the input
    /// rows' slot) and as history tokens; field 0 sees none of the tokens' gradients.
    #[test]
    fn history_tokens_share_their_targets_rows_and_one_update() {
        let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.1, eps: 1e-8 };
        let mut rng = Rng::stream(5, "history");
        let tables: Vec<Table> = ["user", "item"]
            .iter()
            .map(|n| Table::new(n, 10, 2, 0.5, &opt, 0.0, &mut rng))
            .collect();
        let layout = FieldLayout::new(&[("user", 2), ("item", 2)], &[])
            .and_then(|l| l.with_sequences(&[("seen", 1)]))
            .unwrap();
        let mut store = LocalStore::new(tables, layout, opt);
        // Two rows: targets 4 and 5; histories [4, 6] and [] (users 3, 3).
        let b = Batch {
            rows: 2,
            ids: vec![vec![3, 3], vec![4, 5]],
            bags: vec![crate::features::Bags {
                offsets: vec![0, 2, 2],
                ids: vec![4, 6],
                weights: Vec::new(),
            }],
            num: Vec::new(),
            labels: Vec::new(),
            own: Vec::new(),
        };
        let item = |id: u32| store.tables[1].row(id).to_vec();
        let tokens = store.gather_tokens(&b, 0);
        assert_eq!(tokens, [item(4), item(6)].concat());
        let rows = [0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 10.0, 20.0];
        let token_grad = [100.0, 200.0, 1000.0, 2000.0];
        store.apply(
            &b,
            &InputGradient {
                rows: &rows,
                width: 4,
                tokens: vec![&token_grad],
            },
            1.0,
        );
        let mut got = store.tables[1].accumulated();
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got,
            vec![
                (4, vec![101.0, 202.0]),
                (5, vec![10.0, 20.0]),
                (6, vec![1000.0, 2000.0])
            ]
        );
        assert_eq!(store.tables[0].accumulated(), vec![(3, vec![0.0, 0.0])]);
    }
}
