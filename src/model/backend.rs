//! The one seam between the model and the device. Every op the chain and the loss need that has
//! a hand-written CPU kernel (`ops`) goes through here: on the CPU the kernel runs; on any other
//! device the same function is built from standard candle ops, so a CUDA build needs no change
//! outside this file. Nothing else in the crate calls a custom op, and nothing but `ops`'
//! readers (`with_f32`) matches on `Storage::Cpu`.

use candle_core::{Device, Result, Tensor};

use super::attend::Attend;
use super::dense::Dense;
pub use super::dense::Fused;
use super::din_ops::{Features, Pool};
use super::mix::Mix;
pub use super::ops::with_f32;
use super::ops::{BceFromLogProb, LogSigmoid};
use crate::numerics::MAX_LOG_PROB;

/// The device the chain runs on. The CPU today; a CUDA build chooses its device here, and every
/// function below already has a path for it.
pub fn device() -> Device {
    Device::Cpu
}

/// ln σ(x), element-wise.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.apply_op1(LogSigmoid)
    } else {
        generic::log_sigmoid(x)
    }
}

/// Per-element -[y s + (1 - y) ln(1 - e^s)] for log-probabilities `s` (capped at ln(1 - 1e-7))
/// and 0/1 labels `y` of the same shape; the gradient flows to `s` only.
pub fn bce_from_log_prob(s: &Tensor, y: &Tensor) -> Result<Tensor> {
    if s.device().is_cpu() {
        s.apply_op2(y, BceFromLogProb)
    } else {
        generic::bce_from_log_prob(s, y)
    }
}

/// act(x Wᵀ + b). With `track` false the weights are detached (inference).
/// On the CPU the whole layer is one node (`dense::Dense`) calling the GEMM itself: no zero
/// fills, and one gradient per layer instead of one per matmul, bias and ReLU.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, act: Fused, track: bool) -> Result<Tensor> {
    let (w, b) = if track {
        (w.clone(), b.clone())
    } else {
        (w.detach(), b.detach())
    };
    if !x.device().is_cpu() {
        return generic::add_bias(&x.matmul(&w.t()?)?, &b, act);
    }
    let x = x.contiguous()?;
    let op = Dense { act };
    if track {
        x.apply_op3(&w, &b, op)
    } else {
        x.apply_op3_no_bwd(&w, &b, &op)
    }
}

/// Σ_e g[:, e] ⊙ o_e for gates `g` (rows x E) and the experts' outputs side by side `stacked`
/// (rows x E·H): MMoE's and PLE's mixture, rows x H.
pub fn mix(g: &Tensor, stacked: &Tensor) -> Result<Tensor> {
    if g.device().is_cpu() {
        g.contiguous()?.apply_op2(&stacked.contiguous()?, Mix)
    } else {
        generic::mix(g, stacked)
    }
}

/// AITM's attention unit from the projections P_h and P_t (rows x 3d each, [W₁u | W₂u | W₃u]):
/// z = w_h · W₃h + w_t · W₃t with (w_h, w_t) the softmax of ⟨W₁u, W₂u⟩ · `scale`, rows x d.
pub fn attend(ph: &Tensor, pt: &Tensor, scale: f64) -> Result<Tensor> {
    if ph.device().is_cpu() {
        let scale = scale as f32;
        ph.contiguous()?
            .apply_op2(&pt.contiguous()?, Attend { scale })
    } else {
        generic::attend(ph, pt, scale)
    }
}

/// DIN's unit input [h, t, h − t, h ⊙ t] (tokens x 4d) from the tokens' rows `h` (tokens x
/// d), the input rows `x` (the target at columns `offset..offset + d`) and each token's batch
/// row `rows` (u32).
pub fn din_features(h: &Tensor, x: &Tensor, rows: &Tensor, offset: usize) -> Result<Tensor> {
    if h.device().is_cpu() {
        h.contiguous()?
            .apply_op3(&x.contiguous()?, &rows.contiguous()?, Features { offset })
    } else {
        generic::din_features(h, x, rows, offset)
    }
}

/// DIN's pooling: Σ a_j h_j into each token's batch row (`batch` x d), from the weights `a`
/// (tokens x 1), the tokens' rows `h` and their batch rows `rows`.
pub fn din_pool(a: &Tensor, h: &Tensor, rows: &Tensor, batch: usize) -> Result<Tensor> {
    if a.device().is_cpu() {
        a.contiguous()?
            .apply_op3(&h.contiguous()?, &rows.contiguous()?, Pool { rows: batch })
    } else {
        generic::din_pool(a, h, rows, batch)
    }
}

/// The same ops from standard candle ops: what runs on devices without our kernels.
pub(crate) mod generic {
    use super::*;

    pub fn din_features(h: &Tensor, x: &Tensor, rows: &Tensor, offset: usize) -> Result<Tensor> {
        let t = x
            .narrow(1, offset, h.dim(1)?)?
            .contiguous()?
            .index_select(rows, 0)?;
        Tensor::cat(&[h, &t, &(h - &t)?, &(h * &t)?], 1)
    }

    pub fn din_pool(a: &Tensor, h: &Tensor, rows: &Tensor, batch: usize) -> Result<Tensor> {
        let zeros = Tensor::zeros((batch, h.dim(1)?), h.dtype(), h.device())?;
        zeros.index_add(rows, &h.broadcast_mul(a)?, 0)
    }

    pub fn attend(ph: &Tensor, pt: &Tensor, scale: f64) -> Result<Tensor> {
        let d = ph.dim(1)? / 3;
        let score = |p: &Tensor| -> Result<Tensor> {
            (p.narrow(1, 0, d)? * p.narrow(1, d, d)?)?
                .sum_keepdim(1)?
                .affine(scale, 0.0)
        };
        let (ah, at) = (score(ph)?, score(pt)?);
        let m = ah.maximum(&at)?.detach();
        let (eh, et) = ((ah - &m)?.exp()?, (at - &m)?.exp()?);
        let sum = (&eh + &et)?;
        let (wh, wt) = ((eh / &sum)?, (et / &sum)?);
        ph.narrow(1, 2 * d, d)?.broadcast_mul(&wh)? + pt.narrow(1, 2 * d, d)?.broadcast_mul(&wt)?
    }

    pub fn mix(g: &Tensor, stacked: &Tensor) -> Result<Tensor> {
        let e = g.dim(1)?;
        let h = stacked.dim(1)? / e.max(1);
        let mut mixed: Option<Tensor> = None;
        for x in 0..e {
            let part = stacked
                .narrow(1, x * h, h)?
                .broadcast_mul(&g.narrow(1, x, 1)?)?;
            mixed = Some(match mixed {
                None => part,
                Some(m) => (m + part)?,
            });
        }
        mixed.ok_or_else(|| candle_core::Error::Msg("a gate over no experts".into()))
    }

    /// ln σ(x) = -softplus(-x) = -(max(-x, 0) + ln(1 + e^-|x|)).
    pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
        let soft = (x.neg()?.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        soft.neg()
    }

    pub fn bce_from_log_prob(s: &Tensor, y: &Tensor) -> Result<Tensor> {
        let s = s.minimum(MAX_LOG_PROB)?;
        // ln(1 - e^s): exact enough once s is capped below 0.
        let log_not = (s.exp()?.neg()? + 1.0)?.log()?;
        let yes = (y * &s)?;
        let no = ((y.neg()? + 1.0)? * log_not)?;
        (yes + no)?.neg()
    }

    pub fn add_bias(xw: &Tensor, b: &Tensor, act: Fused) -> Result<Tensor> {
        let z = xw.broadcast_add(b)?;
        match act {
            Fused::Identity => Ok(z),
            Fused::Relu => z.relu(),
            // σ(z) = (tanh(z/2) + 1) / 2: candle-core has no sigmoid op.
            Fused::Sigmoid => z.affine(0.5, 0.0)?.tanh()?.affine(0.5, 0.5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The CPU kernels and the generic ops give the same values and gradients, including at
    /// logits where a naive formula would overflow.
    #[test]
    fn kernels_match_generic_ops() {
        let dev = Device::Cpu;
        let zs = [-30.0f32, -3.0, -0.5, 0.0, 0.7, 4.0, 25.0, 1.5];
        let ys = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let run = |generic: bool| {
            let z = Var::from_slice(&zs, (2, 4), &dev).unwrap();
            let y = Tensor::from_slice(&ys, (2, 4), &dev).unwrap();
            let s = if generic {
                generic::log_sigmoid(z.as_tensor()).unwrap()
            } else {
                log_sigmoid(z.as_tensor()).unwrap()
            };
            let s = s.cumsum(1).unwrap();
            let l = if generic {
                generic::bce_from_log_prob(&s, &y).unwrap()
            } else {
                bce_from_log_prob(&s, &y).unwrap()
            };
            let total = l.sum_all().unwrap();
            let g = total.backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (flat(&l), flat(g.get(z.as_tensor()).unwrap()))
        };
        let (lk, gk) = run(false);
        let (lg, gg) = run(true);
        for (a, b) in lk.iter().zip(&lg).chain(gk.iter().zip(&gg)) {
            assert!((a - b).abs() <= 2e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn linear_matches_generic_ops() {
        let dev = Device::Cpu;
        let mut r = crate::rng::Rng::stream(2, "backend");
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| r.normal() as f32).collect() };
        let (xs, ws, bs) = (draw(12), draw(15), draw(5));
        for act in [Fused::Identity, Fused::Relu, Fused::Sigmoid] {
            let run = |generic: bool| {
                let x = Var::from_slice(&xs, (4, 3), &dev).unwrap();
                let w = Var::from_slice(&ws, (5, 3), &dev).unwrap();
                let b = Var::from_slice(&bs, 5, &dev).unwrap();
                let out = if generic {
                    let xw = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
                    generic::add_bias(&xw, b.as_tensor(), act).unwrap()
                } else {
                    linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), act, true).unwrap()
                };
                let g = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                [x.as_tensor(), w.as_tensor(), b.as_tensor()].map(|t| {
                    g.get(t)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
            };
            for (a, b) in run(false).iter().zip(run(true).iter()) {
                for (u, v) in a.iter().zip(b) {
                    assert!((u - v).abs() < 1e-4, "{act:?}: {u} vs {v}");
                }
            }
        }
    }
}
