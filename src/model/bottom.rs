//! Bottoms: blocks between the embeddings and the towers, shared by the stages. A shared
//! bottom is one MLP every tower reads; MMoE (Ma et al., KDD 2018) has expert MLPs and, per
//! stage, a softmax gate over them: stage k's tower reads Σ_e g_k,e(x) · expert_e(x), with
//! g_k = softmax(W_k x + b_k). PLE (Tang et al., RecSys 2020) stacks levels of shared and
//! per-stage experts: stage k's gate mixes its own and the shared experts from its own input,
//! and a shared gate mixes every expert for the next level's shared input.

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
    Ple(Vec<PleLevel>),
}

/// One extraction level of PLE.
pub struct PleLevel {
    shared: Vec<Mlp>,
    /// Each stage's own experts.
    own: Vec<Vec<Mlp>>,
    /// Per stage, over its own experts then the shared ones.
    gates: Vec<Linear>,
    /// Over every expert (each stage's own in stage order, then the shared), for the next
    /// level's shared input; none at the last level.
    shared_gate: Option<Linear>,
}

/// A Glorot-uniform gate from `input` to one weight per expert (no activation follows).
fn gate(pb: &mut ParamBuilder<'_>, input: usize, experts: usize) -> Result<Linear> {
    Linear::new(pb, input, experts, input + experts)
}

/// `n` expert MLPs under `<path>.<e>`.
fn experts(
    pb: &mut ParamBuilder<'_>,
    n: usize,
    input: usize,
    spec: &BottomSpec,
) -> Result<Vec<Mlp>> {
    (0..n)
        .map(|e| Mlp::new(&mut pb.pp(&e.to_string()), input, &spec.mlp))
        .collect()
}

/// A softmax gate over `outs` from `x`: Σ_e softmax(W x + b)_e · outs[e].
fn mix(gate: &Linear, x: &Tensor, outs: &[&Tensor], mode: &Mode<'_>) -> Result<Tensor> {
    let w = softmax_rows(&gate.forward_relu(x, mode, false)?)?;
    let mut mixed: Option<Tensor> = None;
    for (e, out) in outs.iter().enumerate() {
        let part = out.broadcast_mul(&w.narrow(1, e, 1)?)?;
        mixed = Some(match mixed {
            None => part,
            Some(m) => (m + part)?,
        });
    }
    mixed.ok_or_else(|| candle_core::Error::Msg("a gate over no experts".into()))
}

impl Bottom {
    /// Parameters under the builder's path: `<layer>.weight|bias` for a shared bottom;
    /// `experts.<e>.<layer>.*` and `gates.<stage>.*` for MMoE; for PLE, per level l,
    /// `<l>.shared.<e>.*`, `<l>.experts.<stage>.<e>.*`, `<l>.gates.<stage>.*` and
    /// `<l>.shared_gate.*`.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        input: usize,
        spec: &BottomSpec,
        stages: &[String],
    ) -> Result<Self> {
        Ok(match spec.kind {
            BottomKind::SharedBottom => Bottom::Shared(Mlp::new(pb, input, &spec.mlp)?),
            BottomKind::Mmoe => Bottom::Mmoe {
                experts: experts(&mut pb.pp("experts"), spec.experts, input, spec)?,
                gates: stages
                    .iter()
                    .map(|s| gate(&mut pb.pp("gates").pp(s), input, spec.experts))
                    .collect::<Result<Vec<_>>>()?,
            },
            BottomKind::Ple => {
                let width = spec.mlp.hidden.last().copied().unwrap_or(input);
                let (own, shared) = (spec.experts, spec.shared_experts);
                let levels = (0..spec.levels)
                    .map(|l| {
                        let mut pb = pb.pp(&l.to_string());
                        let inp = if l == 0 { input } else { width };
                        Ok(PleLevel {
                            shared: experts(&mut pb.pp("shared"), shared, inp, spec)?,
                            own: stages
                                .iter()
                                .map(|s| experts(&mut pb.pp("experts").pp(s), own, inp, spec))
                                .collect::<Result<Vec<_>>>()?,
                            gates: stages
                                .iter()
                                .map(|s| gate(&mut pb.pp("gates").pp(s), inp, own + shared))
                                .collect::<Result<Vec<_>>>()?,
                            shared_gate: match l + 1 < spec.levels {
                                true => Some(gate(
                                    &mut pb.pp("shared_gate"),
                                    inp,
                                    own * stages.len() + shared,
                                )?),
                                false => None,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Bottom::Ple(levels)
            }
        })
    }

    /// Width of what the towers read.
    pub fn width(&self) -> usize {
        match self {
            Bottom::Shared(m) => m.width(),
            Bottom::Mmoe { experts, .. } => experts[0].width(),
            Bottom::Ple(levels) => levels[0]
                .shared
                .first()
                .or_else(|| levels[0].own.first().and_then(|o| o.first()))
                .map_or(0, Mlp::width),
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
                let outs: Vec<&Tensor> = outs.iter().collect();
                gates.iter().map(|g| mix(g, x, &outs, mode)).collect()
            }
            Bottom::Ple(levels) => {
                let mut stage_in: Vec<Tensor> = vec![x.clone(); stages];
                let mut shared_in = x.clone();
                for level in levels {
                    let shared = level
                        .shared
                        .iter()
                        .map(|e| e.forward(&shared_in, mode))
                        .collect::<Result<Vec<_>>>()?;
                    let mut own: Vec<Vec<Tensor>> = Vec::with_capacity(stages);
                    for (experts, input) in level.own.iter().zip(&stage_in) {
                        own.push(
                            experts
                                .iter()
                                .map(|e| e.forward(input, mode))
                                .collect::<Result<Vec<_>>>()?,
                        );
                    }
                    let next = level
                        .gates
                        .iter()
                        .zip(&own)
                        .zip(&stage_in)
                        .map(|((g, mine), input)| {
                            let outs: Vec<&Tensor> = mine.iter().chain(&shared).collect();
                            mix(g, input, &outs, mode)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if let Some(g) = &level.shared_gate {
                        let outs: Vec<&Tensor> = own.iter().flatten().chain(&shared).collect();
                        shared_in = mix(g, &shared_in, &outs, mode)?;
                    }
                    stage_in = next;
                }
                Ok(stage_in)
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

    const D: usize = 3;
    const H: usize = 2;
    const ROWS: usize = 2;

    /// A bottom of `kind` over a 3-wide input for stages `a` and `b`, every parameter drawn
    /// from N(0, 1) (non-zero biases, so they are checked too), one training forward pass, and
    /// the loss Σ_k Σ c_k ⊙ out_k with fixed random c. Returns what the checks need.
    struct Run {
        params: Params,
        x: Var,
        loss: Tensor,
        grads: candle_core::backprop::GradStore,
        c: Vec<f64>,
        keys: Vec<String>,
    }

    fn run(
        kind: BottomKind,
        experts: usize,
        shared_experts: usize,
        levels: usize,
        seed: u64,
    ) -> Run {
        let dev = Device::Cpu;
        let spec = BottomSpec {
            kind,
            mlp: TowerSpec {
                hidden: vec![H],
                activation: Activation::Tanh,
                dropout: 0.0,
                cross_layers: 0,
                fm: false,
            },
            experts,
            shared_experts,
            levels,
        };
        let stages = vec!["a".to_string(), "b".to_string()];
        let mut params = Params::default();
        let bottom = {
            let mut pb = ParamBuilder::new(seed, &mut params, &dev);
            Bottom::new(&mut pb.pp("bottom"), D, &spec, &stages).unwrap()
        };
        let mut r = crate::rng::Rng::stream(seed, "bottom-test");
        for (_, v) in params.iter() {
            let vals: Vec<f32> = (0..v.elem_count()).map(|_| r.normal() as f32).collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &dev).unwrap())
                .unwrap();
        }
        let xs: Vec<f32> = (0..ROWS * D).map(|_| r.normal() as f32).collect();
        let x = Var::from_slice(&xs, (ROWS, D), &dev).unwrap();
        let mut rng = crate::rng::Rng::stream(1, "unused");
        let outs = bottom
            .forward(x.as_tensor(), 2, &mut Mode::Train(&mut rng))
            .unwrap();
        let c: Vec<f64> = (0..2 * ROWS * H).map(|_| r.normal()).collect();
        let mut loss = Tensor::zeros((), candle_core::DType::F32, &dev).unwrap();
        for (k, o) in outs.iter().enumerate() {
            let ck: Vec<f32> = c[k * ROWS * H..(k + 1) * ROWS * H]
                .iter()
                .map(|&v| v as f32)
                .collect();
            let ct = Tensor::from_vec(ck, (ROWS, H), &dev).unwrap();
            loss = (loss + (o * ct).unwrap().sum_all().unwrap()).unwrap();
        }
        let grads = loss.backward().unwrap();
        let keys = params.iter().map(|(k, _)| k.to_string()).collect();
        Run {
            params,
            x,
            loss,
            grads,
            c,
            keys,
        }
    }

    impl Run {
        fn check(&self, reference: impl Fn(&[Vec<f64>], &[f64]) -> f64) {
            let vars: Vec<(String, Var)> = self
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            crate::testing::check_against_reference(
                &vars,
                &self.grads,
                &self.loss,
                &self.x,
                reference,
            );
        }
    }

    /// MMoE's outputs equal an f64 reference from the formula, and the gradient of every
    /// parameter (experts and gates) and of the input equals finite differences.
    #[test]
    fn mmoe_forward_and_gradients_match_the_formula() {
        let (d, h, e, rows) = (D, H, 3, ROWS);
        let run = run(BottomKind::Mmoe, e, 0, 1, 3);
        let (c, keys) = (&run.c, &run.keys);
        let stages = ["a", "b"];
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
        run.check(reference);
    }

    /// PLE with two levels, one own expert per stage and one shared: values from the formula
    /// in f64, and every parameter's and the input's gradient by finite differences.
    #[test]
    fn ple_forward_and_gradients_match_the_formula() {
        let (d, h, rows) = (D, H, ROWS);
        let run = run(BottomKind::Ple, 1, 1, 2, 4);
        let (c, keys) = (&run.c, &run.keys);
        let stages = ["a", "b"];
        let reference = |p: &[Vec<f64>], x: &[f64]| -> f64 {
            let get = |key: &str| &p[keys.iter().position(|k| k == key).unwrap()];
            let dense = |prefix: &str, u: &[f64], out: usize| -> Vec<f64> {
                let (w, b) = (
                    get(&format!("{prefix}.weight")),
                    get(&format!("{prefix}.bias")),
                );
                (0..out)
                    .map(|o| b[o] + (0..u.len()).map(|j| w[o * u.len() + j] * u[j]).sum::<f64>())
                    .collect()
            };
            let expert = |prefix: &str, u: &[f64]| -> Vec<f64> {
                dense(&format!("{prefix}.0"), u, h)
                    .iter()
                    .map(|v| v.tanh())
                    .collect()
            };
            let mix = |prefix: &str, u: &[f64], outs: &[Vec<f64>]| -> Vec<f64> {
                let a = dense(prefix, u, outs.len());
                let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = a.iter().map(|v| (v - m).exp()).sum();
                (0..h)
                    .map(|j| {
                        (0..outs.len())
                            .map(|e| (a[e] - m).exp() / z * outs[e][j])
                            .sum()
                    })
                    .collect()
            };
            let mut total = 0.0;
            for i in 0..rows {
                let xi = x[i * d..(i + 1) * d].to_vec();
                let (mut stage_in, mut shared_in) = (vec![xi.clone(), xi.clone()], xi);
                for l in 0..2 {
                    let shared = expert(&format!("bottom.{l}.shared.0"), &shared_in);
                    let own: Vec<Vec<f64>> = stages
                        .iter()
                        .zip(&stage_in)
                        .map(|(s, u)| expert(&format!("bottom.{l}.experts.{s}.0"), u))
                        .collect();
                    let next: Vec<Vec<f64>> = stages
                        .iter()
                        .enumerate()
                        .map(|(k, s)| {
                            let outs = vec![own[k].clone(), shared.clone()];
                            mix(&format!("bottom.{l}.gates.{s}"), &stage_in[k], &outs)
                        })
                        .collect();
                    if l == 0 {
                        let outs = vec![own[0].clone(), own[1].clone(), shared.clone()];
                        shared_in = mix("bottom.0.shared_gate", &shared_in, &outs);
                    }
                    stage_in = next;
                }
                for (k, u) in stage_in.iter().enumerate() {
                    for (j, v) in u.iter().enumerate() {
                        total += c[k * rows * h + i * h + j] * v;
                    }
                }
            }
            total
        };
        // One shared gate, between the two levels only.
        assert!(keys.iter().any(|k| k == "bottom.0.shared_gate.weight"));
        assert!(!keys.iter().any(|k| k == "bottom.1.shared_gate.weight"));
        run.check(reference);
    }
}
