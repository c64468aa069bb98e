//! Each bottom against its formula in f64, with every gradient by finite differences.

use super::*;
use crate::config::{Activation, TowerSpec};
use crate::model::kit::Params;
use candle_core::{Device, Var};

const D: usize = 3;
const H: usize = 2;
const ROWS: usize = 2;

/// A bottom of `kind` over a 3-wide input for `stages`, every parameter drawn
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
    groups: Vec<Vec<usize>>,
    stages: &[&str],
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
        groups,
    };
    let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    let mut params = Params::default();
    let bottom = {
        let mut pb = ParamBuilder::new(seed, &mut params, &dev);
        build(&mut pb.pp("bottom"), D, &spec, &stages).unwrap()
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
        .forward(x.as_tensor(), stages.len(), &mut Mode::Train(&mut rng))
        .unwrap();
    let c: Vec<f64> = (0..stages.len() * ROWS * H).map(|_| r.normal()).collect();
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
        crate::testing::check_against_reference(&vars, &self.grads, &self.loss, &self.x, reference);
    }
}

/// MMoE's outputs equal an f64 reference from the formula, and the gradient of every
/// parameter (experts and gates) and of the input equals finite differences.
#[test]
fn mmoe_forward_and_gradients_match_the_formula() {
    let (d, h, e, rows) = (D, H, 3, ROWS);
    let run = run(BottomKind::Mmoe, e, 0, 1, vec![], &["a", "b"], 3);
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
                    let mixed: f64 = (0..e).map(|ex| (a[ex] - m).exp() / z * expert[ex][u]).sum();
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
    let run = run(BottomKind::Ple, 1, 1, 2, vec![], &["a", "b"], 4);
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

/// Stage groups {a} and {b, c}: a reads group 0's MLP, b and c group 1's (the same values),
/// each tanh(W x + b) in f64, and every gradient by finite differences.
#[test]
fn stage_groups_forward_and_gradients_match_the_formula() {
    let (d, h, rows) = (D, H, ROWS);
    let run = run(
        BottomKind::StageGroups,
        1,
        0,
        1,
        vec![vec![0], vec![1, 2]],
        &["a", "b", "c"],
        6,
    );
    let (c, keys) = (&run.c, &run.keys);
    assert_eq!(
        keys,
        &[
            "bottom.0.0.bias",
            "bottom.0.0.weight",
            "bottom.1.0.bias",
            "bottom.1.0.weight"
        ]
    );
    let reference = |p: &[Vec<f64>], x: &[f64]| -> f64 {
        let get = |key: &str| &p[keys.iter().position(|k| k == key).unwrap()];
        let mut total = 0.0;
        for (k, g) in [0, 1, 1].into_iter().enumerate() {
            let (w, b) = (
                get(&format!("bottom.{g}.0.weight")),
                get(&format!("bottom.{g}.0.bias")),
            );
            for i in 0..rows {
                for u in 0..h {
                    let lin = b[u] + (0..d).map(|j| w[u * d + j] * x[i * d + j]).sum::<f64>();
                    total += c[k * rows * h + i * h + u] * lin.tanh();
                }
            }
        }
        total
    };
    run.check(reference);
}
