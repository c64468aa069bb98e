//! AITM's adaptive information transfer (Xi et al., KDD 2021; the authors' `AITM.py`): the
//! parent's representation (what its head read: its attention output when it has a transfer
//! itself) passes through an info layer, then an attention unit over [own, transferred] forms
//! the stage's new representation.
//!
//! For u in {h (own), t = relu(W_info p + b) (transferred)}: a_u = ⟨W₁u, W₂u⟩ / √d,
//! (w_h, w_t) = softmax(a_h, a_t), z = w_h · W₃h + w_t · W₃t. W₁..W₃ are d x d, drawn from
//! N(0, 0.01²) as in the authors' code; the info layer is a dense ReLU layer followed by dropout
//! at the stage's tower rate.

use candle_core::{Result, Tensor, Var};

use super::export_kit::ExportKit;
use super::kit::{Block, Mode, ParamBuilder, dropout};
use super::linear::Linear;
use super::transfer::Transfer;
use crate::onnx::Value;

pub struct AitmTransfer {
    info: Linear,
    /// Dropout after the info layer (the authors' code has one there); the stage's tower rate.
    dropout: f64,
    w1: Var,
    w2: Var,
    w3: Var,
    scale: f64,
}

impl AitmTransfer {
    /// `own` is the stage's representation width d, `parent` its parent's. Parameters `info`,
    /// `w1`, `w2`, `w3` under the builder's path.
    pub fn new(pb: &mut ParamBuilder<'_>, own: usize, parent: usize, dropout: f64) -> Result<Self> {
        Ok(AitmTransfer {
            info: Linear::new(&mut pb.pp("info"), parent, own, parent)?,
            dropout,
            w1: pb.normal("w1", own, own, 0.01)?,
            w2: pb.normal("w2", own, own, 0.01)?,
            w3: pb.normal("w3", own, own, 0.01)?,
            scale: 1.0 / (own as f64).sqrt(),
        })
    }

    fn weight(&self, v: &Var, mode: &Mode<'_>) -> Result<Tensor> {
        let w = v.as_tensor();
        if mode.is_train() {
            w.t()
        } else {
            w.detach().t()
        }
    }
}

impl Transfer for AitmTransfer {
    fn forward(&self, own: &Tensor, parent: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let t = self.info.forward_relu(parent, mode, true)?;
        let t = dropout(&t, self.dropout, mode)?;
        // [W₁ᵀ | W₂ᵀ | W₃ᵀ]: one product per input gives its three maps; the scores, the
        // softmax and the weighted sum are one op (`backend::attend`).
        let w = Tensor::cat(
            &[
                self.weight(&self.w1, mode)?,
                self.weight(&self.w2, mode)?,
                self.weight(&self.w3, mode)?,
            ],
            1,
        )?;
        super::backend::attend(&own.matmul(&w)?, &t.matmul(&w)?, self.scale)
    }

    /// The formula of the module doc: both scores side by side, their softmax, the weighted
    /// sum of the two W₃ maps.
    fn export(&self, kit: &ExportKit, own: &Value, parent: &Value) -> crate::error::Result<Value> {
        let d = own.cols;
        let t = self.info.export(kit, parent)?.unary("Relu");
        let (w1, w2, w3) = (
            kit.weight(&self.w1)?.transposed(d),
            kit.weight(&self.w2)?.transposed(d),
            kit.weight(&self.w3)?.transposed(d),
        );
        let score = |u: &Value| {
            u.matmul(&w1, d)
                .mul(&u.matmul(&w2, d))
                .sum(1, true, 1)
                .scaled(self.scale as f32)
        };
        let weights = Value::concat(&[score(own), score(&t)], 1).softmax(1);
        let mixed = own
            .matmul(&w3, d)
            .mul(&weights.columns(0, 1))
            .add(&t.matmul(&w3, d).mul(&weights.columns(1, 1)));
        Ok(mixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kit::Params;
    use candle_core::Device;

    /// f64 reference of the transfer for one row, from the formula in the module doc.
    fn reference(own: &[f64], parent: &[f64], p: &[Vec<f64>]) -> Vec<f64> {
        let d = own.len();
        // p = [info weight (d x parent), info bias (d), w1, w2, w3 (d x d, row-major)]
        let (wi, bi, w1, w2, w3) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
        let mv = |w: &[f64], x: &[f64], rows: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| (0..x.len()).map(|c| w[r * x.len() + c] * x[c]).sum())
                .collect()
        };
        let t: Vec<f64> = mv(wi, parent, d)
            .iter()
            .zip(bi)
            .map(|(a, b)| (a + b).max(0.0))
            .collect();
        let score = |u: &[f64]| -> f64 {
            let (a, b) = (mv(w1, u, d), mv(w2, u, d));
            a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() / (d as f64).sqrt()
        };
        let (ah, at) = (score(own), score(&t));
        let (eh, et) = (ah.exp(), at.exp());
        let (gh, gt) = (eh / (eh + et), et / (eh + et));
        let (vh, vt) = (mv(w3, own, d), mv(w3, &t, d));
        vh.iter().zip(&vt).map(|(a, b)| gh * a + gt * b).collect()
    }

    /// Forward values equal the f64 reference, and the gradient of every parameter and of both
    /// inputs equals finite differences of the reference.
    #[test]
    fn forward_and_gradients_match_the_formula() {
        let dev = Device::Cpu;
        let (d, dp, rows) = (3, 4, 2);
        let mut params = Params::default();
        let block = {
            let mut pb = ParamBuilder::new(11, &mut params, &dev);
            AitmTransfer::new(&mut pb.pp("t"), d, dp, 0.0).unwrap()
        };
        // Larger attention weights than the init, so the softmax is far from uniform.
        let mut r = crate::rng::Rng::stream(4, "aitm");
        for v in [
            &block.w1,
            &block.w2,
            &block.w3,
            &block.info.weight,
            &block.info.bias,
        ] {
            let n = v.elem_count();
            let vals: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &dev).unwrap())
                .unwrap();
        }
        let own: Vec<f32> = (0..rows * d).map(|_| r.normal() as f32).collect();
        let parent: Vec<f32> = (0..rows * dp).map(|_| r.normal() as f32).collect();
        let ov = Var::from_slice(&own, (rows, d), &dev).unwrap();
        let pv = Var::from_slice(&parent, (rows, dp), &dev).unwrap();
        let z = block
            .forward(ov.as_tensor(), pv.as_tensor(), &mut Mode::Infer)
            .unwrap();
        let mut rng = crate::rng::Rng::stream(1, "unused");
        let zt = block
            .forward(ov.as_tensor(), pv.as_tensor(), &mut Mode::Train(&mut rng))
            .unwrap();
        // Loss = Σ c ⊙ z with fixed random c.
        let c: Vec<f64> = (0..rows * d).map(|_| r.normal()).collect();
        let ct = Tensor::from_vec(
            c.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            (rows, d),
            &dev,
        )
        .unwrap();
        let grads = (zt * &ct).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = crate::testing::to_f64;
        let vars = [
            &block.info.weight,
            &block.info.bias,
            &block.w1,
            &block.w2,
            &block.w3,
        ];
        let mut p: Vec<Vec<f64>> = vars.iter().map(|v| flat(v.as_tensor())).collect();
        let (mut o, mut q) = (flat(ov.as_tensor()), flat(pv.as_tensor()));
        let loss = |p: &[Vec<f64>], o: &[f64], q: &[f64]| -> f64 {
            (0..rows)
                .map(|i| {
                    let zr = reference(&o[i * d..(i + 1) * d], &q[i * dp..(i + 1) * dp], p);
                    zr.iter()
                        .zip(&c[i * d..(i + 1) * d])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                })
                .sum()
        };
        // Values.
        let got = flat(&z);
        for i in 0..rows {
            let want = reference(&o[i * d..(i + 1) * d], &q[i * dp..(i + 1) * dp], &p);
            for j in 0..d {
                assert!(
                    (got[i * d + j] - want[j]).abs() < 1e-5,
                    "{} vs {}",
                    got[i * d + j],
                    want[j]
                );
            }
        }
        let h = 1e-6;
        let check = |name: &str, fd: f64, g: f64| {
            assert!(
                (fd - g).abs() < 1e-3 * (1.0 + fd.abs()),
                "{name}: fd {fd} vs {g}"
            );
        };
        for (vi, v) in vars.iter().enumerate() {
            let g = flat(grads.get(v.as_tensor()).unwrap());
            for j in 0..p[vi].len() {
                let keep = p[vi][j];
                p[vi][j] = keep + h;
                let up = loss(&p, &o, &q);
                p[vi][j] = keep - h;
                let down = loss(&p, &o, &q);
                p[vi][j] = keep;
                check(&format!("param {vi}[{j}]"), (up - down) / (2.0 * h), g[j]);
            }
        }
        let go = flat(grads.get(ov.as_tensor()).unwrap());
        for j in 0..o.len() {
            let keep = o[j];
            o[j] = keep + h;
            let up = loss(&p, &o, &q);
            o[j] = keep - h;
            let down = loss(&p, &o, &q);
            o[j] = keep;
            check(&format!("own[{j}]"), (up - down) / (2.0 * h), go[j]);
        }
        let gq = flat(grads.get(pv.as_tensor()).unwrap());
        for j in 0..q.len() {
            let keep = q[j];
            q[j] = keep + h;
            let up = loss(&p, &o, &q);
            q[j] = keep - h;
            let down = loss(&p, &o, &q);
            q[j] = keep;
            check(&format!("parent[{j}]"), (up - down) / (2.0 * h), gq[j]);
        }
    }
}
