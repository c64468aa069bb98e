//! DIN's two steps around its activation unit as ops of their own, forward and backward in one
//! pass each: the unit's input [h, t, h − t, h ⊙ t] per history token (t read from its row's
//! target slot), and the weighted pooling Σ a·h by batch row. Through candle's own ops these
//! were an index-select, a contiguous copy, a sub, a mul and a cat (and an index-add, a
//! broadcast mul and a zero fill for the pooling), each a pass and a buffer, and as many in
//! the backward (`backend::generic` keeps that composition, which the tests hold these to).

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::ops::{f32_matrix, with_f32};

/// Tokens per block of the parallel loops.
const TOKENS: usize = 1024;

/// A contiguous u32 vector's values (the tokens' batch rows).
fn u32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [u32]> {
    let CpuStorage::U32(v) = s else {
        candle_core::bail!("{op}: expected u32 rows");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: rows must be contiguous"),
    }
}

/// [h, t, h − t, h ⊙ t] (tokens x 4d) from the tokens' rows h (tokens x d), the input rows x
/// (batch x w, the target at columns `offset..offset + dim`) and each token's batch row.
pub struct Features {
    pub offset: usize,
}

impl CustomOp3 for Features {
    fn name(&self) -> &'static str {
        "din-features"
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
        let (h, n, d) = f32_matrix(s1, l1, self.name())?;
        let (x, b, w) = f32_matrix(s2, l2, self.name())?;
        let rows = u32_slice(s3, l3, self.name())?;
        if self.offset + d > w || rows.len() != n {
            candle_core::bail!(
                "din-features: tokens {n}x{d}, rows {w} wide, {} row ids",
                rows.len()
            );
        }
        if rows.iter().any(|&r| r as usize >= b) {
            candle_core::bail!("din-features: a token's row is past the batch's {b}");
        }
        let mut out = vec![0f32; n * 4 * d];
        out.par_chunks_mut(TOKENS * 4 * d)
            .enumerate()
            .for_each(|(c, block)| {
                for (i, f) in block.chunks_exact_mut(4 * d).enumerate() {
                    let j = c * TOKENS + i;
                    let hj = &h[j * d..(j + 1) * d];
                    let r = rows[j] as usize;
                    let t = &x[r * w + self.offset..r * w + self.offset + d];
                    let (fh, rest) = f.split_at_mut(d);
                    let (ft, rest) = rest.split_at_mut(d);
                    let (fd, fp) = rest.split_at_mut(d);
                    fh.copy_from_slice(hj);
                    ft.copy_from_slice(t);
                    for k in 0..d {
                        fd[k] = hj[k] - t[k];
                        fp[k] = hj[k] * t[k];
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, 4 * d))))
    }

    /// With g = [g₁ g₂ g₃ g₄]: dh = g₁ + g₃ + g₄ ⊙ t, and each token adds g₂ − g₃ + g₄ ⊙ h to
    /// its row's target slot of dx (zero elsewhere).
    fn bwd(
        &self,
        h: &Tensor,
        x: &Tensor,
        rows: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let ((n, d), (b, w)) = (h.dims2()?, x.dims2()?);
        let (grad, h, x) = (grad.contiguous()?, h.contiguous()?, x.contiguous()?);
        let rows = rows.to_vec1::<u32>()?;
        let off = self.offset;
        let (dh, dx) = with_f32(&grad, |g| {
            with_f32(&h, |hv| {
                with_f32(&x, |xv| {
                    let mut dh = vec![0f32; n * d];
                    dh.par_chunks_mut(TOKENS * d)
                        .enumerate()
                        .for_each(|(c, block)| {
                            for (i, out) in block.chunks_exact_mut(d).enumerate() {
                                let j = c * TOKENS + i;
                                let gj = &g[j * 4 * d..(j + 1) * 4 * d];
                                let r = rows[j] as usize;
                                let t = &xv[r * w + off..r * w + off + d];
                                for k in 0..d {
                                    out[k] = gj[k] + gj[2 * d + k] + gj[3 * d + k] * t[k];
                                }
                            }
                        });
                    let mut dx = vec![0f32; b * w];
                    for (j, &r) in rows.iter().enumerate() {
                        let gj = &g[j * 4 * d..(j + 1) * 4 * d];
                        let hj = &hv[j * d..(j + 1) * d];
                        let slot = &mut dx[r as usize * w + off..r as usize * w + off + d];
                        for k in 0..d {
                            slot[k] += gj[d + k] - gj[2 * d + k] + gj[3 * d + k] * hj[k];
                        }
                    }
                    (dh, dx)
                })
            })
        })???;
        let dev = Device::Cpu;
        Ok((
            Some(Tensor::from_vec(dh, (n, d), &dev)?),
            Some(Tensor::from_vec(dx, (b, w), &dev)?),
            None,
        ))
    }
}

/// Σ_j a_j h_j into each token's batch row (`rows` x d) from the weights a (tokens x 1), the
/// tokens' rows h (tokens x d) and each token's batch row.
pub struct Pool {
    pub rows: usize,
}

impl CustomOp3 for Pool {
    fn name(&self) -> &'static str {
        "din-pool"
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
        let (a, n, one) = f32_matrix(s1, l1, self.name())?;
        let (h, hn, d) = f32_matrix(s2, l2, self.name())?;
        let rows = u32_slice(s3, l3, self.name())?;
        if one != 1 || hn != n || rows.len() != n || rows.iter().any(|&r| r as usize >= self.rows) {
            candle_core::bail!(
                "din-pool: weights {n}x{one}, tokens {hn}x{d}, {} row ids",
                rows.len()
            );
        }
        let mut out = vec![0f32; self.rows * d];
        for (j, &r) in rows.iter().enumerate() {
            let slot = &mut out[r as usize * d..(r as usize + 1) * d];
            for (o, &v) in slot.iter_mut().zip(&h[j * d..(j + 1) * d]) {
                *o += a[j] * v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.rows, d))))
    }

    /// da_j = ⟨g[r_j], h_j⟩, dh_j = a_j g[r_j].
    fn bwd(
        &self,
        a: &Tensor,
        h: &Tensor,
        rows: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = h.dims2()?;
        let (grad, a, h) = (grad.contiguous()?, a.contiguous()?, h.contiguous()?);
        let rows = rows.to_vec1::<u32>()?;
        let (da, dh) = with_f32(&grad, |g| {
            with_f32(&a, |av| {
                with_f32(&h, |hv| {
                    let mut da = vec![0f32; n];
                    let mut dh = vec![0f32; n * d];
                    da.par_chunks_mut(TOKENS)
                        .zip(dh.par_chunks_mut(TOKENS * d))
                        .enumerate()
                        .for_each(|(c, (da, dh))| {
                            for (i, (da, dh)) in
                                da.iter_mut().zip(dh.chunks_exact_mut(d)).enumerate()
                            {
                                let j = c * TOKENS + i;
                                let r = rows[j] as usize;
                                let gr = &g[r * d..(r + 1) * d];
                                let hj = &hv[j * d..(j + 1) * d];
                                *da = gr.iter().zip(hj).map(|(g, h)| g * h).sum();
                                for (o, &gv) in dh.iter_mut().zip(gr) {
                                    *o = av[j] * gv;
                                }
                            }
                        });
                    (da, dh)
                })
            })
        })???;
        let dev = Device::Cpu;
        Ok((
            Some(Tensor::from_vec(da, (n, 1), &dev)?),
            Some(Tensor::from_vec(dh, (n, d), &dev)?),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::super::backend::{din_features, din_pool, generic};
    use super::*;
    use crate::rng::Rng;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Both ops against candle's composition (`backend::generic`): values and the gradients of
    /// every input, with rows hit by several tokens, by one, and by none.
    #[test]
    fn ops_match_candles_composition() {
        let dev = Device::Cpu;
        let mut r = Rng::stream(4, "din-ops");
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| r.normal() as f32).collect() };
        let (n, d, b, w, off) = (7, 3, 4, 8, 2);
        let (hv, xv, av) = (draw(n * d), draw(b * w), draw(n));
        let (cf, cp) = (draw(n * 4 * d), draw(b * d));
        let rows = Tensor::new(&[0u32, 0, 2, 0, 3, 2, 0], &dev).unwrap();
        let run = |fused: bool| {
            let h = Var::from_slice(&hv, (n, d), &dev).unwrap();
            let x = Var::from_slice(&xv, (b, w), &dev).unwrap();
            let a = Var::from_slice(&av, (n, 1), &dev).unwrap();
            let (ht, xt, at) = (h.as_tensor(), x.as_tensor(), a.as_tensor());
            let (f, p) = if fused {
                (
                    din_features(ht, xt, &rows, off).unwrap(),
                    din_pool(at, ht, &rows, b).unwrap(),
                )
            } else {
                (
                    generic::din_features(ht, xt, &rows, off).unwrap(),
                    generic::din_pool(at, ht, &rows, b).unwrap(),
                )
            };
            let cf = Tensor::from_slice(&cf, (n, 4 * d), &dev).unwrap();
            let cp = Tensor::from_slice(&cp, (b, d), &dev).unwrap();
            let loss = ((&f * &cf).unwrap().sum_all().unwrap()
                + (&p * &cp).unwrap().sum_all().unwrap())
            .unwrap();
            let g = loss.backward().unwrap();
            [
                values(&f),
                values(&p),
                values(g.get(ht).unwrap()),
                values(g.get(xt).unwrap()),
                values(g.get(at).unwrap()),
            ]
        };
        let (fused, reference) = (run(true), run(false));
        for (what, (u, v)) in ["features", "pooled", "dh", "dx", "da"]
            .iter()
            .zip(fused.iter().zip(&reference))
        {
            assert_eq!(u.len(), v.len(), "{what}");
            for (a, b) in u.iter().zip(v) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{what}: {u:?} vs {v:?}"
                );
            }
        }
        // Row 1 has no token: zeros pooled, and no gradient in its target slot.
        assert_eq!(&fused[1][d..2 * d], &[0.0; 3]);
        assert!(fused[3][w + off..w + off + d].iter().all(|&g| g == 0.0));
    }
}
