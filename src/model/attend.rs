//! AITM's attention unit as one op. From each row's projections of the own and the transferred
//! representation, P_u = [W₁u | W₂u | W₃u] (rows x 3d) for u in {h, t}: the scores
//! a_u = ⟨W₁u, W₂u⟩ · scale, the two-way softmax (w_h, w_t), and z = w_h · W₃h + w_t · W₃t;
//! forward and backward each one pass over the rows, split over the cores. candle's composition of
//! the same (a dozen small element-wise ops and their backward, each on one core) cost more than
//! the transfer's matrix products.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::ops::{f32_matrix, f32_slice};

/// Rows per parallel task.
const ROWS: usize = 64;

/// A contiguous f32 matrix's values and columns, its columns a multiple of 3.
fn projections<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<(&'a [f32], usize)> {
    let (v, _, cols) = f32_matrix(s, l, op)?;
    if cols % 3 != 0 {
        candle_core::bail!("{op}: {cols} columns are not [W₁u | W₂u | W₃u]");
    }
    Ok((v, cols / 3))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One row's attention weights (w_h, w_t) from its projections `h` and `t` (3d each).
fn weights(h: &[f32], t: &[f32], d: usize, scale: f32) -> (f32, f32) {
    let score = |p: &[f32]| dot(&p[..d], &p[d..2 * d]) * scale;
    let (ah, at) = (score(h), score(t));
    // Shifted by the larger score, so exp never overflows.
    let m = ah.max(at);
    let (eh, et) = ((ah - m).exp(), (at - m).exp());
    (eh / (eh + et), et / (eh + et))
}

/// z (rows x d) from P_h and P_t (rows x 3d each).
pub struct Attend {
    pub scale: f32,
}

impl CustomOp2 for Attend {
    fn name(&self) -> &'static str {
        "aitm-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (ph, d) = projections(s1, l1, self.name())?;
        let (pt, dt) = projections(s2, l2, self.name())?;
        if d != dt || ph.len() != pt.len() {
            candle_core::bail!("{}: the two inputs' shapes differ", self.name());
        }
        let rows = ph.len() / (3 * d).max(1);
        let mut z = vec![0f32; rows * d];
        z.par_chunks_mut(ROWS * d.max(1))
            .enumerate()
            .for_each(|(c, block)| {
                for (j, zr) in block.chunks_mut(d).enumerate() {
                    let r = c * ROWS + j;
                    let (h, t) = (
                        &ph[r * 3 * d..(r + 1) * 3 * d],
                        &pt[r * 3 * d..(r + 1) * 3 * d],
                    );
                    let (wh, wt) = weights(h, t, d, self.scale);
                    for ((z, &vh), &vt) in zr.iter_mut().zip(&h[2 * d..]).zip(&t[2 * d..]) {
                        *z = wh * vh + wt * vt;
                    }
                }
            });
        Ok((CpuStorage::F32(z), Shape::from((rows, d))))
    }

    fn bwd(
        &self,
        ph: &Tensor,
        pt: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let of = |own: bool| {
            ph.apply_op3_no_bwd(
                pt,
                &grad,
                &AttendGrad {
                    scale: self.scale,
                    own,
                },
            )
        };
        Ok((Some(of(true)?), Some(of(false)?)))
    }
}

/// The gradient of `Attend` with respect to P_h (`own`) or P_t (rows x 3d), from P_h, P_t and
/// the output's gradient g (rows x d): with dw_u = ⟨g, W₃u⟩ and the softmax's backward
/// da_u = w_u (dw_u − w_h dw_h − w_t dw_t), the row is [da_u · scale · W₂u | da_u · scale · W₁u |
/// w_u · g].
struct AttendGrad {
    scale: f32,
    own: bool,
}

impl CustomOp3 for AttendGrad {
    fn name(&self) -> &'static str {
        "aitm-attention-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (ph, d) = projections(s1, l1, self.name())?;
        let (pt, _) = projections(s2, l2, self.name())?;
        let g = f32_slice(s3, l3, self.name())?;
        let rows = ph.len() / (3 * d).max(1);
        if g.len() != rows * d || pt.len() != ph.len() {
            candle_core::bail!("{}: shapes differ", self.name());
        }
        let mut out = vec![0f32; rows * 3 * d];
        out.par_chunks_mut(ROWS * 3 * d.max(1))
            .enumerate()
            .for_each(|(c, block)| {
                for (j, o) in block.chunks_mut(3 * d).enumerate() {
                    let r = c * ROWS + j;
                    let (h, t) = (
                        &ph[r * 3 * d..(r + 1) * 3 * d],
                        &pt[r * 3 * d..(r + 1) * 3 * d],
                    );
                    let gr = &g[r * d..(r + 1) * d];
                    let (wh, wt) = weights(h, t, d, self.scale);
                    let (dwh, dwt) = (dot(gr, &h[2 * d..]), dot(gr, &t[2 * d..]));
                    let mean = wh * dwh + wt * dwt;
                    let (u, w, dw) = match self.own {
                        true => (h, wh, dwh),
                        false => (t, wt, dwt),
                    };
                    let da = w * (dw - mean) * self.scale;
                    let (dq, rest) = o.split_at_mut(d);
                    let (dk, dv) = rest.split_at_mut(d);
                    for k in 0..d {
                        dq[k] = da * u[d + k];
                        dk[k] = da * u[k];
                        dv[k] = w * gr[k];
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, 3 * d))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use crate::model::backend::{attend, generic};

    /// The op and the composition of candle ops other devices run give the same output and the
    /// same gradients of both inputs (to f32 rounding), with scores far apart and close.
    #[test]
    fn equals_the_composition() {
        let dev = Device::Cpu;
        let (rows, d) = (130, 5);
        let mut r = crate::rng::Rng::stream(12, "attend");
        let mut draw =
            |n: usize, s: f64| -> Vec<f32> { (0..n).map(|_| (s * r.normal()) as f32).collect() };
        let (hs, ts, cs) = (
            draw(rows * 3 * d, 2.0),
            draw(rows * 3 * d, 0.5),
            draw(rows * d, 1.0),
        );
        let c = Tensor::from_vec(cs, (rows, d), &dev).unwrap();
        let run = |fused: bool| {
            let ph = Var::from_slice(&hs, (rows, 3 * d), &dev).unwrap();
            let pt = Var::from_slice(&ts, (rows, 3 * d), &dev).unwrap();
            let z = match fused {
                true => attend(ph.as_tensor(), pt.as_tensor(), 0.7).unwrap(),
                false => generic::attend(ph.as_tensor(), pt.as_tensor(), 0.7).unwrap(),
            };
            let grads = (&z * &c).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            [
                flat(&z),
                flat(grads.get(ph.as_tensor()).unwrap()),
                flat(grads.get(pt.as_tensor()).unwrap()),
            ]
        };
        for (a, b) in run(true).iter().zip(run(false).iter()) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
    }
}
