//! The gated mixture of experts' outputs, y = Σ_e g_e ⊙ out_e (MMoE's and PLE's gates), as one op
//! with its own backward and its rows split over the cores. candle's composition (a narrow, a
//! broadcast multiply and an add per expert, and a broadcast reduction in each multiply's
//! backward) ran on one core and took a quarter of an MMoE step. Every product and sum here is
//! taken in the composition's order, with candle's own row sum, so the values are the same to
//! the bit.

use candle_core::cpu::kernels::VecOps;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::ops::f32_matrix as matrix;

/// Rows per parallel task.
const ROWS: usize = 64;

/// The experts' count and width from the gates (rows x E) and the outputs side by side (rows x
/// E·H), checked.
fn shape(op: &str, (gr, e): (usize, usize), (or, eh): (usize, usize)) -> Result<usize> {
    if gr != or || e == 0 || eh % e != 0 {
        candle_core::bail!("{op}: gates {gr}x{e} do not fit outputs {or}x{eh}");
    }
    Ok(eh / e)
}

/// y (rows x H) = Σ_e g[:, e] ⊙ o[:, e·H..(e+1)·H], for gates g (rows x E) and the experts'
/// outputs side by side o (rows x E·H).
pub struct Mix;

impl CustomOp2 for Mix {
    fn name(&self) -> &'static str {
        "gated-mixture"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, rows, e) = matrix(s1, l1, self.name())?;
        let (o, _, eh) = matrix(s2, l2, self.name())?;
        let h = shape(self.name(), (rows, e), (l2.dims()[0], eh))?;
        let mut y = vec![0f32; rows * h];
        y.par_chunks_mut(ROWS * h)
            .enumerate()
            .for_each(|(c, block)| {
                for (j, yr) in block.chunks_mut(h).enumerate() {
                    let r = c * ROWS + j;
                    let (gr, or) = (&g[r * e..(r + 1) * e], &o[r * eh..(r + 1) * eh]);
                    for (y, &v) in yr.iter_mut().zip(&or[..h]) {
                        *y = v * gr[0];
                    }
                    for (x, &gx) in gr.iter().enumerate().skip(1) {
                        for (y, &v) in yr.iter_mut().zip(&or[x * h..(x + 1) * h]) {
                            *y += v * gx;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(y), Shape::from((rows, h))))
    }

    fn bwd(
        &self,
        g: &Tensor,
        o: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dg = o.apply_op2_no_bwd(&grad, &GateGrad)?;
        let d_o = g.apply_op2_no_bwd(&grad, &OutputGrad)?;
        Ok((Some(dg), Some(d_o)))
    }
}

/// dg[r, e] = Σ_k grad[r, k] · o[r, e·H + k] (rows x E), from o (rows x E·H) and grad (rows x H).
struct GateGrad;

impl CustomOp2 for GateGrad {
    fn name(&self) -> &'static str {
        "gated-mixture-gate-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (o, rows, eh) = matrix(s1, l1, self.name())?;
        let (grad, _, h) = matrix(s2, l2, self.name())?;
        if h == 0 || eh % h != 0 {
            candle_core::bail!("{}: outputs {rows}x{eh}, gradient width {h}", self.name());
        }
        let e = eh / h;
        let mut dg = vec![0f32; rows * e];
        dg.par_chunks_mut(ROWS * e)
            .enumerate()
            .for_each(|(c, block)| {
                let mut prod = vec![0f32; h];
                for (j, dr) in block.chunks_mut(e).enumerate() {
                    let r = c * ROWS + j;
                    let gr = &grad[r * h..(r + 1) * h];
                    for (x, d) in dr.iter_mut().enumerate() {
                        let ox = &o[r * eh + x * h..r * eh + (x + 1) * h];
                        for ((p, &a), &b) in prod.iter_mut().zip(gr).zip(ox) {
                            *p = a * b;
                        }
                        // candle's own row sum, as its broadcast backward takes it.
                        // SAFETY: `prod` holds `h` values and `d` is one f32.
                        unsafe { f32::vec_reduce_sum(prod.as_ptr(), d, h) };
                    }
                }
            });
        Ok((CpuStorage::F32(dg), Shape::from((rows, e))))
    }
}

/// d_o[r, e·H + k] = grad[r, k] · g[r, e] (rows x E·H), from g (rows x E) and grad (rows x H).
struct OutputGrad;

impl CustomOp2 for OutputGrad {
    fn name(&self) -> &'static str {
        "gated-mixture-output-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, rows, e) = matrix(s1, l1, self.name())?;
        let (grad, _, h) = matrix(s2, l2, self.name())?;
        let eh = e * h;
        let mut d_o = vec![0f32; rows * eh];
        d_o.par_chunks_mut(ROWS * eh)
            .enumerate()
            .for_each(|(c, block)| {
                for (j, dr) in block.chunks_mut(eh).enumerate() {
                    let r = c * ROWS + j;
                    let gr = &grad[r * h..(r + 1) * h];
                    for (x, dx) in dr.chunks_mut(h).enumerate() {
                        let gx = g[r * e + x];
                        for (d, &v) in dx.iter_mut().zip(gr) {
                            *d = v * gx;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(d_o), Shape::from((rows, eh))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The op against candle's composition that other devices run (`backend::generic::mix`:
    /// narrow, broadcast multiply, add): the same output and the same gradients of gates and
    /// outputs, to the bit.
    #[test]
    fn equals_the_composition_to_the_bit() {
        let dev = Device::Cpu;
        let (rows, e, h) = (150, 3, 7);
        let mut r = crate::rng::Rng::stream(9, "mix");
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| r.normal() as f32).collect() };
        let (gs, os, cs) = (draw(rows * e), draw(rows * e * h), draw(rows * h));
        let c = Tensor::from_vec(cs, (rows, h), &dev).unwrap();
        let run = |fused: bool| {
            let g = Var::from_slice(&gs, (rows, e), &dev).unwrap();
            let outs: Vec<Var> = (0..e)
                .map(|x| {
                    let part: Vec<f32> = (0..rows)
                        .flat_map(|i| os[(i * e + x) * h..(i * e + x + 1) * h].to_vec())
                        .collect();
                    Var::from_vec(part, (rows, h), &dev).unwrap()
                })
                .collect();
            let stacked =
                Tensor::cat(&outs.iter().map(|v| v.as_tensor()).collect::<Vec<_>>(), 1).unwrap();
            let y = match fused {
                true => g.as_tensor().apply_op2(&stacked, Mix).unwrap(),
                false => crate::model::backend::generic::mix(g.as_tensor(), &stacked).unwrap(),
            };
            let grads = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut got = vec![flat(&y), flat(grads.get(g.as_tensor()).unwrap())];
            got.extend(outs.iter().map(|o| flat(grads.get(o.as_tensor()).unwrap())));
            got
        };
        let (fused, composed) = (run(true), run(false));
        for (a, b) in fused.iter().zip(&composed) {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b));
        }
    }
}
