//! Custom candle ops for a numerically safe funnel loss: log-sigmoid, and binary cross-entropy
//! taken from a log-probability (ln(1 - p) through log1mexp). Computed in f64 internally. Also
//! the readers every custom op shares for a tensor's f32 values.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Storage, Tensor};

use crate::numerics::{MAX_LOG_PROB, log_sigmoid, log1mexp};

/// Run `f` on the values of a contiguous f32 tensor: in place on the CPU, from a host copy
/// elsewhere.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            return Ok(f(&cpu.as_slice::<f32>()?[start..end]));
        }
    }
    let host = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(f(&host))
}

/// A contiguous f32 tensor's values (every custom op's input).
pub(super) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: expected f32 input");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// A contiguous f32 matrix's values, rows and columns.
pub(super) fn f32_matrix<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> Result<(&'a [f32], usize, usize)> {
    let v = f32_slice(s, l, op)?;
    let &[rows, cols] = l.dims() else {
        candle_core::bail!("{op}: expected a matrix, got {:?}", l.dims());
    };
    Ok((v, rows, cols))
}

/// Apply `f` element-wise (in f64) to an f32 tensor.
fn map1(
    name: &str,
    s: &CpuStorage,
    l: &Layout,
    f: impl Fn(f64) -> f64,
) -> Result<(CpuStorage, Shape)> {
    let x = f32_slice(s, l, name)?;
    let y = x.iter().map(|&v| f(v as f64) as f32).collect();
    Ok((CpuStorage::F32(y), l.shape().clone()))
}

/// Apply `f(s, y)` element-wise (in f64) to two equally shaped f32 tensors.
fn map2(
    name: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f: impl Fn(f64, f64) -> f64,
) -> Result<(CpuStorage, Shape)> {
    let a = f32_slice(s1, l1, name)?;
    let b = f32_slice(s2, l2, name)?;
    if a.len() != b.len() {
        candle_core::bail!("{name}: shapes differ");
    }
    let out = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f(x as f64, y as f64) as f32)
        .collect();
    Ok((CpuStorage::F32(out), l1.shape().clone()))
}

/// y = ln σ(x) = -softplus(-x); dy/dx = σ(-x) = exp(y - x).
pub struct LogSigmoid;

impl CustomOp1 for LogSigmoid {
    fn name(&self) -> &'static str {
        "log-sigmoid"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        map1(self.name(), s, l, log_sigmoid)
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // ln σ(x) - x = ln σ(-x) <= 0, so the exp never overflows.
        let sig_neg = (res - arg)?.exp()?;
        Ok(Some(grad_res.mul(&sig_neg)?))
    }
}

/// Per-element loss -[y s + (1 - y) ln(1 - e^s)] for a log-probability s and a 0/1 label y.
/// s is capped at ln(1 - 1e-7) so that ln(1 - p) stays finite when p rounds to 1.
pub struct BceFromLogProb;

fn capped(s: f64) -> f64 {
    s.min(MAX_LOG_PROB)
}

impl CustomOp2 for BceFromLogProb {
    fn name(&self) -> &'static str {
        "bce-from-log-prob"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        map2(self.name(), (s1, l1), (s2, l2), |s, y| {
            let s = capped(s);
            -(y * s + (1.0 - y) * log1mexp(s))
        })
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = arg1.apply_op2_no_bwd(arg2, &BceGrad)?;
        Ok((Some(grad_res.mul(&d)?), None))
    }
}

/// d/ds of `BceFromLogProb`: -y + (1 - y) e^s / (1 - e^s) = -y + (1 - y) / expm1(-s).
struct BceGrad;

impl CustomOp2 for BceGrad {
    fn name(&self) -> &'static str {
        "bce-from-log-prob-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        map2(self.name(), (s1, l1), (s2, l2), |s, y| {
            -y + (1.0 - y) / (-capped(s)).exp_m1()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn loss_of(z: &[f32], y: &[f32]) -> (f32, Vec<f32>) {
        let dev = Device::Cpu;
        let n = z.len();
        let zv = Var::from_slice(z, (1, n), &dev).unwrap();
        let yt = Tensor::from_slice(y, (1, n), &dev).unwrap();
        let logp = zv
            .as_tensor()
            .apply_op1(LogSigmoid)
            .unwrap()
            .cumsum(1)
            .unwrap();
        let l = logp
            .apply_op2(&yt, BceFromLogProb)
            .unwrap()
            .sum_all()
            .unwrap();
        let g = l.backward().unwrap();
        let grad = g
            .get(zv.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        (l.to_scalar::<f32>().unwrap(), grad)
    }

    #[test]
    fn finite_and_hand_checked_at_extreme_logits() {
        // One stage, logit 50, label 0: loss = -ln(1 - σ(50)) = softplus(50) = 50 (to f32), but p
        // rounds to 1 so the cap applies: -ln(1e-7) = 16.118095.
        let (l, g) = loss_of(&[50.0], &[0.0]);
        assert!((l - 16.118_095).abs() < 1e-4, "{l}");
        assert!(g[0].is_finite());
        // Logit -50, label 1: loss = -ln σ(-50) = 50; gradient = -(1 - σ(-50)) = -1.
        let (l, g) = loss_of(&[-50.0], &[1.0]);
        assert!((l - 50.0).abs() < 1e-4, "{l}");
        assert!((g[0] + 1.0).abs() < 1e-6);
        // Logit -50, label 0: loss = -ln(1 - σ(-50)) = softplus(-50) = e^-50 ≈ 1.9287e-22.
        let (l, _) = loss_of(&[-50.0], &[0.0]);
        assert!((0.0..1e-20).contains(&l), "{l}");
    }

    #[test]
    fn two_stage_values_computed_by_hand() {
        // python3: import math; s=lambda z: 1/(1+math.exp(-z)); p1=s(0.5); p2=p1*s(-1.0)
        // -(math.log(p1)) - math.log(1-p2)  # labels: stage 1 = 1, stage 2 = 0
        // = 0.47407698418010663 + 0.18320806636160125 = 0.6572850505417078
        let (l, _) = loss_of(&[0.5, -1.0], &[1.0, 0.0]);
        assert!((l - 0.657_285_05).abs() < 1e-5, "{l}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let z = [0.3f32, -1.2, 2.5];
        let y = [1.0f32, 1.0, 0.0];
        let (_, g) = loss_of(&z, &y);
        // Reference loss in f64 from the scalar formulas.
        let f = |z: &[f64]| -> f64 {
            let mut s = 0.0;
            let mut total = 0.0;
            for (k, &zk) in z.iter().enumerate() {
                s += log_sigmoid(zk);
                let yk = y[k] as f64;
                total += -(yk * s + (1.0 - yk) * log1mexp(s));
            }
            total
        };
        let base: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        for j in 0..z.len() {
            let h = 1e-5;
            let mut up = base.clone();
            up[j] += h;
            let mut down = base.clone();
            down[j] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (fd - g[j] as f64).abs() < 1e-4,
                "dz{j}: fd {fd} vs {}",
                g[j]
            );
        }
    }
}
