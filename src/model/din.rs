//! DIN's target attention (Zhou et al., KDD 2018, arXiv 1706.06978): each behaviour history is
//! pooled into one vector weighted by how much each of its tokens relates to the row's target,
//! v = Σ_j a(h_j, t) · h_j, with the activation unit a an MLP over [h, t, h − t, h ⊙ t] (the
//! authors' released code; their paper's figure draws an outer product) and, as the paper
//! says, no softmax over the history: the weights keep the history's size in the sum.
//!
//! Histories arrive packed, not padded: the embedding rows of every token of the batch, in bag
//! order, with each token's batch row. An empty history has no tokens and pools to zeros; no
//! padding exists, so none can leak into the sum, the weights or a gradient. The pooled vectors
//! of a row's histories join its stage towers' input (`chain`).

use candle_core::{DType, Result, Tensor};

use super::backend;
use super::export_kit::ExportKit;
use super::kit::{Block, Mode, ParamBuilder};
use super::linear::Linear;
use super::tower::Mlp;
use crate::config::TowerSpec;
use crate::onnx::Value;

/// One history's activation unit and where its target sits in the input rows.
struct Unit {
    mlp: Mlp,
    out: Linear,
    /// The target's slot: first column and width (the history's embedding width).
    offset: usize,
    dim: usize,
}

/// The activation units of every history, one block: shared by the stages, or one per stage.
pub struct Din {
    units: Vec<Unit>,
}

/// A history as the block reads it: its tokens' embedding rows (tokens x d) and each token's
/// batch row (u32, tokens).
pub struct History<'a> {
    pub tokens: &'a Tensor,
    pub rows: &'a Tensor,
}

impl Din {
    /// Units named by their history under the builder's path (`<name>.<layer>.weight|bias`),
    /// one per `(name, target slot offset, width)`.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        histories: &[(&str, usize, usize)],
        spec: &TowerSpec,
    ) -> Result<Self> {
        let units = histories
            .iter()
            .map(|&(name, offset, dim)| {
                let mut pb = pb.pp(name);
                let mlp = Mlp::new(&mut pb, 4 * dim, spec)?;
                let w = mlp.width();
                let out = Linear::new(&mut pb.pp(&spec.hidden.len().to_string()), w, 1, w + 1)?;
                Ok(Unit {
                    mlp,
                    out,
                    offset,
                    dim,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Din { units })
    }

    /// Columns the pooled histories add to a tower's input.
    pub fn width(&self) -> usize {
        self.units.iter().map(|u| u.dim).sum()
    }

    /// The pooled histories of the input rows `x` (rows x Σd, histories side by side).
    pub fn forward(
        &self,
        x: &Tensor,
        histories: &[History<'_>],
        mode: &mut Mode<'_>,
    ) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let pooled = self
            .units
            .iter()
            .zip(histories)
            .map(|(u, h)| {
                if h.tokens.dim(0)? == 0 {
                    return Tensor::zeros((rows, u.dim), DType::F32, x.device());
                }
                let features = backend::din_features(h.tokens, x, h.rows, u.offset)?;
                let a = u.out.forward(&u.mlp.forward(&features, mode)?, mode)?;
                backend::din_pool(&a, h.tokens, h.rows, rows)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&pooled, 1)
    }

    /// `forward` as nodes of an exported graph, each history given padded: its tokens' ids
    /// (rows x width, 0 past a row's tokens) and their embedding rows (rows x width x d). A
    /// padding token's weight is masked to 0 (its row, the padding row, is zero besides).
    pub fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        histories: &[(Value, Value)],
    ) -> crate::error::Result<Value> {
        let pooled = self
            .units
            .iter()
            .zip(histories)
            .map(|(u, (ids, h))| {
                let d = u.dim as i64;
                let t = x
                    .columns(u.offset, u.dim)
                    .reshape(&[-1, 1, d], 0)
                    .expand_like(h);
                let features = Value::concat(&[h.clone(), t.clone(), h.sub(&t), h.mul(&t)], 2)
                    .reshape(&[-1, 4 * d], 4 * u.dim);
                let a = u.out.export(kit, &u.mlp.export(kit, &features)?)?;
                let a = a.reshape_like(ids).mul(&ids.positive());
                Ok(h.mul(&a.reshape(&[0, 0, 1], 0)).sum(1, false, u.dim))
            })
            .collect::<crate::error::Result<Vec<_>>>()?;
        Ok(Value::concat(&pooled, 1))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::config::Activation;
    use crate::model::kit::Params;
    use crate::rng::Rng;

    /// Two histories over a 5-column input (targets at columns 0..2 and 2..4), three rows:
    /// row 0 holds tokens of both, row 1 none of the first and one of the second, row 2 an
    /// empty history in both.
    fn fixture(activation: Activation) -> (Din, Params, Tensor, Vec<Tensor>, Vec<Tensor>) {
        let dev = Device::Cpu;
        let mut params = Params::default();
        let spec = TowerSpec {
            hidden: vec![6, 3],
            activation,
            dropout: 0.0,
            cross_layers: 0,
            fm: false,
        };
        let din = {
            let mut pb = ParamBuilder::new(7, &mut params, &dev);
            Din::new(&mut pb.pp("din"), &[("a", 0, 2), ("b", 2, 2)], &spec).unwrap()
        };
        let mut r = Rng::stream(3, "din-test");
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| r.normal() as f32).collect() };
        let x = Tensor::from_vec(draw(15), (3, 5), &dev).unwrap();
        let tokens = vec![
            Tensor::from_vec(draw(6), (3, 2), &dev).unwrap(),
            Tensor::from_vec(draw(4), (2, 2), &dev).unwrap(),
        ];
        let rows = vec![
            Tensor::new(&[0u32, 0, 0], &dev).unwrap(),
            Tensor::new(&[0u32, 1], &dev).unwrap(),
        ];
        (din, params, x, tokens, rows)
    }

    fn pooled(din: &Din, x: &Tensor, tokens: &[Tensor], rows: &[Tensor]) -> Tensor {
        let h: Vec<History> = tokens
            .iter()
            .zip(rows)
            .map(|(tokens, rows)| History { tokens, rows })
            .collect();
        let mut rng = Rng::stream(0, "unused");
        din.forward(x, &h, &mut Mode::Train(&mut rng)).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The pooled vector by hand: each token's weight from the unit's layers applied one by
    /// one to [h, t, h − t, h ⊙ t], then Σ a·h per row; an empty history is zeros.
    #[test]
    fn pools_each_row_by_its_own_tokens_weights() {
        let (din, params, x, tokens, rows) = fixture(Activation::Sigmoid);
        let got = values(&pooled(&din, &x, &tokens, &rows));
        let p = |k: &str| -> Vec<f32> {
            let (_, v) = params.iter().find(|(key, _)| *key == k).unwrap();
            values(v.as_tensor())
        };
        let xs = values(&x);
        let mut want = vec![0f32; 3 * 4];
        for (s, (name, off)) in [("a", 0), ("b", 2)].iter().enumerate() {
            let e = values(&tokens[s]);
            let r: Vec<u32> = rows[s].to_vec1().unwrap();
            for (j, &row) in r.iter().enumerate() {
                let h = &e[2 * j..2 * j + 2];
                let t = &xs[row as usize * 5 + off..row as usize * 5 + off + 2];
                let mut v: Vec<f32> = h
                    .iter()
                    .chain(t)
                    .copied()
                    .chain(h.iter().zip(t).map(|(a, b)| a - b))
                    .chain(h.iter().zip(t).map(|(a, b)| a * b))
                    .collect();
                for (layer, sigmoid) in [("0", true), ("1", true), ("2", false)] {
                    let w = p(&format!("din.{name}.{layer}.weight"));
                    let b = p(&format!("din.{name}.{layer}.bias"));
                    let out = b.len();
                    v = (0..out)
                        .map(|o| {
                            let z =
                                b[o] + (0..v.len()).map(|i| w[o * v.len() + i] * v[i]).sum::<f32>();
                            if sigmoid { 1.0 / (1.0 + (-z).exp()) } else { z }
                        })
                        .collect();
                }
                for c in 0..2 {
                    want[row as usize * 4 + s * 2 + c] += v[0] * h[c];
                }
            }
        }
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(
            &got[8..12],
            &[0.0; 4],
            "row 2's empty histories pool to zeros"
        );
        assert_eq!(
            &got[4..6],
            &[0.0; 2],
            "row 1's empty first history pools to zeros"
        );
    }

    /// Central finite differences of Σ c ⊙ pooled (fixed random c) against autograd, for the
    /// input rows (the targets' slots, and a column no unit reads: zero), the tokens' rows and
    /// every parameter of both units, in f64 arithmetic by a forward pass in f32 with step
    /// 1e-2 (the function is smooth; the tolerance covers f32 rounding).
    #[test]
    fn gradients_match_finite_differences() {
        for activation in [Activation::Sigmoid, Activation::Tanh] {
            let (din, params, x, tokens, rows) = fixture(activation);
            let dev = Device::Cpu;
            let c = {
                let mut r = Rng::stream(9, "din-c");
                Tensor::from_vec(
                    (0..12).map(|_| r.normal() as f32).collect::<Vec<_>>(),
                    (3, 4),
                    &dev,
                )
                .unwrap()
            };
            let xv = Var::from_tensor(&x).unwrap();
            let tv: Vec<Var> = tokens
                .iter()
                .map(|t| Var::from_tensor(t).unwrap())
                .collect();
            let loss = |x: &Tensor, tokens: &[Tensor]| -> f64 {
                let out = pooled(&din, x, tokens, &rows);
                (out * &c)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64
            };
            let tt: Vec<Tensor> = tv.iter().map(|v| v.as_tensor().clone()).collect();
            let out = pooled(&din, xv.as_tensor(), &tt, &rows);
            let grads = (out * &c).unwrap().sum_all().unwrap().backward().unwrap();
            let eps = 1e-2f32;
            let check = |what: &str, analytic: Vec<f32>, f: &dyn Fn(usize, f32) -> f64| {
                for (i, &a) in analytic.iter().enumerate() {
                    let fd = (f(i, eps) - f(i, -eps)) / (2.0 * eps as f64);
                    assert!(
                        (a as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                        "{what}[{i}] ({activation:?}): autograd {a} vs finite differences {fd}"
                    );
                }
            };
            let bump = |t: &Tensor, i: usize, d: f32| -> Tensor {
                let mut v = values(t);
                v[i] += d;
                Tensor::from_vec(v, t.dims(), &dev).unwrap()
            };
            let gx = values(grads.get(xv.as_tensor()).unwrap());
            assert_eq!(gx[4], 0.0, "no unit reads column 4");
            check("x", gx, &|i, d| loss(&bump(&x, i, d), &tokens));
            for s in 0..2 {
                let g = values(grads.get(tv[s].as_tensor()).unwrap());
                check(&format!("tokens {s}"), g, &|i, d| {
                    let mut t = tokens.clone();
                    t[s] = bump(&tokens[s], i, d);
                    loss(&x, &t)
                });
            }
            for (name, var) in params.iter() {
                let g = values(grads.get(var.as_tensor()).unwrap());
                let before = var.as_tensor().copy().unwrap();
                check(name, g, &|i, d| {
                    var.set(&bump(&before, i, d)).unwrap();
                    let l = loss(&x, &tokens);
                    var.set(&before).unwrap();
                    l
                });
            }
        }
    }
}
