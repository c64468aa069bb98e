//! A multi-valued field's token rows pooled into its slot of an input row, and the share of
//! the slot's gradient each token's row receives: `sum` Σ wₜ eₜ (each row gets wₜ·g), `mean`
//! Σ wₜ eₜ / Σ wₜ (wₜ/Σw·g), `max` the largest value of each column (the column's gradient goes
//! to the first token that holds it). An empty bag reads its table's last row, the empty list's.

use super::gather::TableRows;
use crate::features::Bags;
use crate::layout::Pooling;

/// The id of the empty list's row in a bag field's table: its last.
#[inline]
pub(super) fn empty_row(t: &TableRows<'_>) -> u32 {
    t.vocab() as u32 - 1
}

/// Pool row `r` of `bags` into `out` (the field's slot, `t.dim()` wide): written when the field
/// opens its slot, added when it joins a field group's sum.
pub(super) fn pool(
    t: &TableRows<'_>,
    bags: &Bags,
    r: usize,
    pooling: Pooling,
    out: &mut [f32],
    opens: bool,
) {
    let span = bags.span(r);
    if span.is_empty() {
        add_row(out, t.row(empty_row(t)), 1.0, opens);
        return;
    }
    match pooling {
        Pooling::Sum | Pooling::Mean => {
            let scale = match pooling {
                Pooling::Mean => 1.0 / span.clone().map(|k| bags.weight(k)).sum::<f32>(),
                _ => 1.0,
            };
            if opens {
                out.fill(0.0);
            }
            for k in span {
                add_row(out, t.row(bags.ids[k]), bags.weight(k) * scale, false);
            }
        }
        Pooling::Max => {
            // Into the slot itself when the field opens it (no allocation on the gather's hot
            // path); a field group's member needs its own maximum before adding it.
            let mut own = Vec::new();
            let max: &mut [f32] = if opens {
                out
            } else {
                own.resize(out.len(), 0.0);
                &mut own
            };
            let mut ids = bags.ids[span].iter();
            max.copy_from_slice(t.row(ids.next().copied().unwrap_or(0)));
            for &id in ids {
                for (m, &v) in max.iter_mut().zip(t.row(id)) {
                    if v > *m {
                        *m = v;
                    }
                }
            }
            if !opens {
                add_row(out, &own, 1.0, false);
            }
        }
    }
}

/// out = c·row (`opens`) or out += c·row.
#[inline]
fn add_row(out: &mut [f32], row: &[f32], c: f32, opens: bool) {
    if opens {
        for (o, &v) in out.iter_mut().zip(row) {
            *o = c * v;
        }
    } else {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += c * v;
        }
    }
}

/// One token of a batch's bags as the backward pass sees it: its row id, its batch row, and
/// the factor on the slot's gradient (`sum`, `mean`).
#[derive(Clone, Copy)]
pub(super) struct Token {
    pub id: u32,
    pub row: u32,
    pub coef: f32,
}

/// The tokens of every row of `bags` (an empty row as its empty-list row), and under `max`
/// pooling, for each row and column, the token (an index into the tokens) whose value was
/// kept: `winners[r * dim + j]`.
pub(super) fn tokens(t: &TableRows<'_>, bags: &Bags, pooling: Pooling) -> (Vec<Token>, Vec<u32>) {
    let d = t.dim();
    let mut out = Vec::with_capacity(bags.ids.len() + 1);
    let mut winners = Vec::new();
    if pooling == Pooling::Max {
        winners.reserve(bags.rows() * d);
    }
    for r in 0..bags.rows() {
        let span = bags.span(r);
        let first = out.len() as u32;
        if span.is_empty() {
            out.push(Token {
                id: empty_row(t),
                row: r as u32,
                coef: 1.0,
            });
        } else {
            let scale = match pooling {
                Pooling::Mean => 1.0 / span.clone().map(|k| bags.weight(k)).sum::<f32>(),
                _ => 1.0,
            };
            out.extend(span.map(|k| Token {
                id: bags.ids[k],
                row: r as u32,
                coef: bags.weight(k) * scale,
            }));
        }
        if pooling == Pooling::Max {
            let mine = &out[first as usize..];
            for j in 0..d {
                let mut best = first;
                let mut value = t.row(mine[0].id)[j];
                for (k, tok) in mine.iter().enumerate().skip(1) {
                    let v = t.row(tok.id)[j];
                    if v > value {
                        (best, value) = (first + k as u32, v);
                    }
                }
                winners.push(best);
            }
        }
    }
    (out, winners)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::data::Batch;
    use crate::layout::FieldLayout;
    use crate::model::SparseOptimizer;
    use crate::model::Table;
    use crate::model::local_store::LocalStore;
    use crate::model::row_store::{RowSource, RowStore};
    use crate::rng::Rng;

    const VOCAB: usize = 12;
    const DIM: usize = 3;

    /// Bags of 6 rows over ids 3..11: repeated ids (sum and mean), an empty row, and under
    /// `distinct` no id twice in a row (max pooling's dense reference gives a tie to both).
    fn bags(weighted: bool, distinct: bool) -> Bags {
        let rows: [&[u32]; 6] = if distinct {
            [&[3, 4], &[5], &[], &[6, 3, 7, 8], &[9, 10], &[4, 3]]
        } else {
            [&[3, 4, 3], &[5], &[], &[6, 3, 7, 7], &[9], &[4, 4]]
        };
        let mut b = Bags::default();
        let mut rng = Rng::stream(5, "weights");
        for r in rows {
            b.ids.extend_from_slice(r);
            if weighted {
                b.weights
                    .extend(r.iter().map(|_| 0.25 + rng.uniform() as f32 * 2.0));
            }
            b.offsets.push(b.ids.len() as u64);
        }
        b
    }

    /// Each pooling's forward and summed row gradients against candle's autograd over a dense
    /// table (the oracle): sum and mean as a (rows x vocab) coefficient matrix times the table,
    /// max as the column maximum of each row's gathered rows; the loss Σ (x·c)² with random c.
    #[test]
    fn pooling_and_its_row_gradients_equal_a_dense_reference() {
        let dev = Device::Cpu;
        let cases = [
            (Pooling::Sum, false),
            (Pooling::Sum, true),
            (Pooling::Mean, false),
            (Pooling::Mean, true),
            (Pooling::Max, false),
        ];
        for (pooling, weighted) in cases {
            let opt = SparseOptimizer::RowwiseAdagrad { lr: 0.1, eps: 1e-8 };
            let mut rng = Rng::stream(7, "table");
            let table = Table::new("tags", VOCAB, DIM, 0.5, &opt, 0.0, &mut rng);
            let dense = Var::from_slice(&table.weights(), (VOCAB, DIM), &dev).unwrap();
            let layout = FieldLayout::new(&[("tags", DIM)], &[])
                .unwrap()
                .with_bags(&[pooling])
                .unwrap();
            let mut store = LocalStore::new(vec![table], layout, opt);
            let bags = bags(weighted, pooling == Pooling::Max);
            let rows = bags.rows();
            let batch = Batch {
                rows,
                ids: Vec::new(),
                bags: vec![bags.clone()],
                num: Vec::new(),
                labels: Vec::new(),
                own: Vec::new(),
            };
            let mut x = vec![0f32; rows * DIM];
            store.gather(&batch, 0..rows, &mut x, DIM);

            // The dense reference.
            let x_ref = match pooling {
                Pooling::Sum | Pooling::Mean => {
                    let mut a = vec![0f32; rows * VOCAB];
                    for r in 0..rows {
                        let span = bags.span(r);
                        if span.is_empty() {
                            a[r * VOCAB + VOCAB - 1] = 1.0;
                        }
                        let total: f32 = span.clone().map(|k| bags.weight(k)).sum();
                        for k in span {
                            let c = match pooling {
                                Pooling::Mean => bags.weight(k) / total,
                                _ => bags.weight(k),
                            };
                            a[r * VOCAB + bags.ids[k] as usize] += c;
                        }
                    }
                    let a = Tensor::from_vec(a, (rows, VOCAB), &dev).unwrap();
                    a.matmul(dense.as_tensor()).unwrap()
                }
                Pooling::Max => {
                    let pooled: Vec<Tensor> = (0..rows)
                        .map(|r| {
                            let mut ids = bags.ids_of(r).to_vec();
                            if ids.is_empty() {
                                ids.push(VOCAB as u32 - 1);
                            }
                            let n = ids.len();
                            let idx = Tensor::from_vec(ids, n, &dev).unwrap();
                            let rows = dense.as_tensor().index_select(&idx, 0).unwrap();
                            rows.max_keepdim(0).unwrap()
                        })
                        .collect();
                    Tensor::cat(&pooled, 0).unwrap()
                }
            };
            let want: Vec<f32> = x_ref.flatten_all().unwrap().to_vec1().unwrap();
            for (a, b) in x.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-6,
                    "{pooling:?} forward: {x:?} vs {want:?}"
                );
            }

            let c: Vec<f32> = (0..DIM).map(|_| rng.normal() as f32).collect();
            let ct = Tensor::from_slice(&c, (DIM, 1), &dev).unwrap();
            let loss = |x: &Tensor| x.matmul(&ct).unwrap().sqr().unwrap().sum_all().unwrap();
            let grads = loss(&x_ref).backward().unwrap();
            let dense_grad: Vec<Vec<f32>> =
                grads.get(dense.as_tensor()).unwrap().to_vec2().unwrap();
            let xv = Var::from_vec(x.clone(), (rows, DIM), &dev).unwrap();
            let gx = loss(xv.as_tensor()).backward().unwrap();
            let gx: Vec<f32> = gx
                .get(xv.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            store.apply(
                &batch,
                &crate::model::row_store::InputGradient::rows_only(&gx, DIM),
                1.0,
            );
            let got = store.tables()[0].accumulated();
            for (id, row) in dense_grad.iter().enumerate() {
                match got.iter().find(|(i, _)| *i as usize == id) {
                    Some((_, g)) => {
                        for (a, b) in g.iter().zip(row) {
                            assert!(
                                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                                "{pooling:?} weighted {weighted}, row {id}: {g:?} vs {row:?}"
                            );
                        }
                    }
                    None => assert!(row.iter().all(|&v| v == 0.0), "row {id} untouched"),
                }
            }
            // Every id the batch holds is updated once, the empty list's row among them.
            let mut touched: Vec<u32> = got.iter().map(|(i, _)| *i).collect();
            touched.sort_unstable();
            let mut held: Vec<u32> = bags.ids.clone();
            held.push(VOCAB as u32 - 1);
            held.sort_unstable();
            held.dedup();
            assert_eq!(touched, held, "{pooling:?}");
        }
    }
}
