//! Bottoms: blocks between the embeddings and the towers, shared by the stages. A shared
//! bottom is one MLP every tower reads; MMoE (Ma et al., KDD 2018) has expert MLPs and, per
//! stage, a softmax gate over them: stage k's tower reads Σ_e g_k,e(x) · expert_e(x), with
//! g_k = softmax(W_k x + b_k).

use candle_core::{Result, Tensor};

use super::kit::{Block, Mode, ParamBuilder};
use super::linear::Linear;
use super::tower::Mlp;
use crate::config::{BottomKind, BottomSpec};

pub enum Bottom {
    Shared(Mlp),
    Mmoe {
        experts: Vec<Mlp>,
        gates: Vec<Linear>,
    },
}

impl Bottom {
    /// Parameters under the builder's path: `<layer>.weight|bias` for a shared bottom;
    /// `experts.<e>.<layer>.*` and `gates.<stage>.*` for MMoE.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        input: usize,
        spec: &BottomSpec,
        stages: &[String],
    ) -> Result<Self> {
        Ok(match spec.kind {
            BottomKind::SharedBottom => Bottom::Shared(Mlp::new(pb, input, &spec.mlp)?),
            BottomKind::Mmoe => {
                let experts = (0..spec.experts)
                    .map(|e| Mlp::new(&mut pb.pp("experts").pp(&e.to_string()), input, &spec.mlp))
                    .collect::<Result<Vec<_>>>()?;
                // Glorot-uniform gates (no activation follows): fan = in + out.
                let gates = stages
                    .iter()
                    .map(|s| {
                        Linear::new(
                            &mut pb.pp("gates").pp(s),
                            input,
                            spec.experts,
                            input + spec.experts,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                Bottom::Mmoe { experts, gates }
            }
        })
    }

    /// Width of what the towers read.
    pub fn width(&self) -> usize {
        match self {
            Bottom::Shared(m) => m.width(),
            Bottom::Mmoe { experts, .. } => experts[0].width(),
        }
    }

    /// Each stage's input (rows x width), from the shared input rows.
    pub fn forward(&self, x: &Tensor, stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
        match self {
            Bottom::Shared(m) => {
                let h = m.forward(x, mode)?;
                Ok(vec![h; stages])
            }
            Bottom::Mmoe { experts, gates } => {
                let outs = experts
                    .iter()
                    .map(|e| e.forward(x, mode))
                    .collect::<Result<Vec<_>>>()?;
                gates
                    .iter()
                    .map(|g| {
                        let w = softmax_rows(&g.forward_relu(x, mode, false)?)?;
                        let mut mixed: Option<Tensor> = None;
                        for (e, out) in outs.iter().enumerate() {
                            let part = out.broadcast_mul(&w.narrow(1, e, 1)?)?;
                            mixed = Some(match mixed {
                                None => part,
                                Some(m) => (m + part)?,
                            });
                        }
                        mixed.ok_or_else(|| {
                            candle_core::Error::Msg("an MMoE without experts".into())
                        })
                    })
                    .collect()
            }
        }
    }
}

/// Softmax over each row, shifted by the (detached) row maximum so exp never overflows.
fn softmax_rows(a: &Tensor) -> Result<Tensor> {
    let m = a.max_keepdim(1)?.detach();
    let e = a.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, TowerSpec};
    use crate::model::kit::Params;
    use candle_core::{Device, Var};

    /// MMoE's outputs equal an f64 reference from the formula, and the gradient of every
    /// parameter (experts and gates) and of the input equals finite differences.
    #[test]
    fn mmoe_forward_and_gradients_match_the_formula() {
        let dev = Device::Cpu;
        let (d, h, e, rows) = (3, 2, 3, 2);
        let spec = BottomSpec {
            kind: BottomKind::Mmoe,
            mlp: TowerSpec {
                hidden: vec![h],
                activation: Activation::Tanh,
                dropout: 0.0,
                cross_layers: 0,
            },
            experts: e,
        };
        let stages = vec!["a".to_string(), "b".to_string()];
        let mut params = Params::default();
        let bottom = {
            let mut pb = ParamBuilder::new(3, &mut params, &dev);
            Bottom::new(&mut pb.pp("bottom"), d, &spec, &stages).unwrap()
        };
        let mut r = crate::rng::Rng::stream(8, "mmoe");
        // Non-zero biases, so they are checked too.
        for (_, v) in params.iter() {
            let vals: Vec<f32> = (0..v.elem_count()).map(|_| r.normal() as f32).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &dev).unwrap())
                .unwrap();
        }
        let xs: Vec<f32> = (0..rows * d).map(|_| r.normal() as f32).collect();
        let x = Var::from_slice(&xs, (rows, d), &dev).unwrap();
        let mut rng = crate::rng::Rng::stream(1, "unused");
        let outs = bottom
            .forward(x.as_tensor(), 2, &mut Mode::Train(&mut rng))
            .unwrap();
        let c: Vec<f64> = (0..2 * rows * h).map(|_| r.normal()).collect();
        let mut loss = Tensor::zeros((), candle_core::DType::F32, &dev).unwrap();
        for (k, o) in outs.iter().enumerate() {
            let ck: Vec<f32> = c[k * rows * h..(k + 1) * rows * h]
                .iter()
                .map(|&v| v as f32)
                .collect();
            let ct = Tensor::from_vec(ck, (rows, h), &dev).unwrap();
            loss = (loss + (o * ct).unwrap().sum_all().unwrap()).unwrap();
        }
        let grads = loss.backward().unwrap();
        let keys: Vec<String> = params.iter().map(|(k, _)| k.to_string()).collect();
        let flat = crate::testing::to_f64;
        let mut p: Vec<Vec<f64>> = params.iter().map(|(_, v)| flat(v.as_tensor())).collect();
        let get = |p: &[Vec<f64>], key: &str| -> Vec<f64> {
            p[keys.iter().position(|k| k == key).unwrap()].clone()
        };
        // The reference: expert_e(x) = tanh(W_e x + b_e), g_k = softmax(G_k x + c_k).
        let reference = |p: &[Vec<f64>], x: &[f64]| -> f64 {
            let mut total = 0.0;
            for i in 0..rows {
                let xi = &x[i * d..(i + 1) * d];
                let lin = |w: &[f64], b: &[f64], out: usize| -> Vec<f64> {
                    (0..out)
                        .map(|o| b[o] + (0..d).map(|j| w[o * d + j] * xi[j]).sum::<f64>())
                        .collect()
                };
                let expert: Vec<Vec<f64>> = (0..e)
                    .map(|ex| {
                        lin(
                            &get(p, &format!("bottom.experts.{ex}.0.weight")),
                            &get(p, &format!("bottom.experts.{ex}.0.bias")),
                            h,
                        )
                        .iter()
                        .map(|v| v.tanh())
                        .collect()
                    })
                    .collect();
                for (k, s) in stages.iter().enumerate() {
                    let a = lin(
                        &get(p, &format!("bottom.gates.{s}.weight")),
                        &get(p, &format!("bottom.gates.{s}.bias")),
                        e,
                    );
                    let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = a.iter().map(|v| (v - m).exp()).sum();
                    for u in 0..h {
                        let mixed: f64 =
                            (0..e).map(|ex| (a[ex] - m).exp() / z * expert[ex][u]).sum();
                        total += c[k * rows * h + i * h + u] * mixed;
                    }
                }
            }
            total
        };
        let mut x64: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
        let value = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((value - reference(&p, &x64)).abs() < 1e-4, "{value}");
        let step = 1e-6;
        let check = |what: &str, fd: f64, g: f64| {
            assert!(
                (fd - g).abs() < 1e-3 * (1.0 + fd.abs()),
                "{what}: fd {fd} vs {g}"
            );
        };
        for (vi, (key, v)) in params.iter().enumerate() {
            let g = flat(grads.get(v.as_tensor()).unwrap());
            for j in 0..p[vi].len() {
                let keep = p[vi][j];
                p[vi][j] = keep + step;
                let up = reference(&p, &x64);
                p[vi][j] = keep - step;
                let down = reference(&p, &x64);
                p[vi][j] = keep;
                check(&format!("{key}[{j}]"), (up - down) / (2.0 * step), g[j]);
            }
        }
        let gx = flat(grads.get(x.as_tensor()).unwrap());
        for j in 0..x64.len() {
            let keep = x64[j];
            x64[j] = keep + step;
            let up = reference(&p, &x64);
            x64[j] = keep - step;
            let down = reference(&p, &x64);
            x64[j] = keep;
            check(&format!("x[{j}]"), (up - down) / (2.0 * step), gx[j]);
        }
    }
}
