//! The dense layer as one op: y = x Wᵀ + b (then a ReLU or a sigmoid), forward and backward calling the
//! GEMM directly. candle's composition (a transposed view, a matmul into a zero-filled buffer,
//! the bias node) costs a zero fill per product and, in backprop, a zero-filled gradient and an
//! add per node between them; here the bias is the GEMM's starting value, the gradients are
//! written once, and the backward's two products (dx and dW) run side by side. The products
//! are the composition's, by the same kernels; the bias joins the sum in the kernel instead of
//! after it, so values agree to rounding (the test below: 1e-5; the five-stage benchmarks gave
//! the same test AUCs to the last printed digit).

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use gemm::Parallelism;

use super::ops::{f32_matrix, f32_slice, with_f32};

/// y = act(x Wᵀ + b): x (rows x in), W (out x in), b (out).
pub struct Dense {
    pub act: Fused,
}

/// The activation a dense layer applies in its own op (its derivative read from the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fused {
    Identity,
    /// max(y, 0); derivative [y > 0].
    Relu,
    /// 1 / (1 + e^-y); derivative y (1 - y).
    Sigmoid,
}

/// Element-wise work over a layer's output in blocks on the pool's threads (one block below
/// this many values).
const ELEMENTWISE_BLOCK: usize = 1 << 15;

impl Fused {
    fn forward(self, y: &mut [f32]) {
        use rayon::prelude::*;
        match self {
            Fused::Identity => {}
            Fused::Relu => y.par_chunks_mut(ELEMENTWISE_BLOCK).for_each(|c| {
                for v in c {
                    *v = v.max(0.0);
                }
            }),
            Fused::Sigmoid => y.par_chunks_mut(ELEMENTWISE_BLOCK).for_each(|c| {
                for v in c {
                    *v = 1.0 / (1.0 + (-*v).exp());
                }
            }),
        }
    }

    /// The upstream gradient `g` through the activation, from the output `y`.
    fn backward(self, g: &[f32], y: &[f32]) -> Vec<f32> {
        use rayon::prelude::*;
        let mut dz = vec![0f32; g.len()];
        let blocks = dz
            .par_chunks_mut(ELEMENTWISE_BLOCK)
            .zip(g.par_chunks(ELEMENTWISE_BLOCK))
            .zip(y.par_chunks(ELEMENTWISE_BLOCK));
        match self {
            Fused::Identity => blocks.for_each(|((d, g), _)| d.copy_from_slice(g)),
            Fused::Relu => blocks.for_each(|((d, g), y)| {
                for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                    *d = if y > 0.0 { g } else { 0.0 };
                }
            }),
            Fused::Sigmoid => blocks.for_each(|((d, g), y)| {
                for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                    *d = g * y * (1.0 - y);
                }
            }),
        }
        dz
    }
}

/// A product lhs · rhs, m x k times k x n, of matrices given as (values, row stride, column
/// stride), so a transposed matrix is read in place.
struct Product<'a> {
    m: usize,
    n: usize,
    k: usize,
    lhs: (&'a [f32], isize, isize),
    rhs: (&'a [f32], isize, isize),
}

impl Product<'_> {
    /// The product added to `dst` (m x n, row-major), which holds m x n values.
    fn add_to(&self, dst: &mut [f32], parallelism: Parallelism) {
        assert!(dst.len() >= self.m * self.n, "dense: destination too small");
        // SAFETY: `dst` is exclusively borrowed and holds m x n initialised values.
        unsafe { self.gemm(dst.as_mut_ptr(), true, parallelism) }
    }

    /// The product as a new m x n row-major matrix, written once (no zero fill first).
    fn new_matrix(&self, parallelism: Parallelism) -> Vec<f32> {
        let len = self.m * self.n;
        if self.k == 0 {
            return vec![0.0; len];
        }
        let mut dst: Vec<f32> = Vec::with_capacity(len);
        // SAFETY: with `read_dst` false and k > 0 the kernel writes every one of the m x n
        // elements and reads none, so all `len` values are initialised before `set_len`.
        unsafe {
            self.gemm(dst.as_mut_ptr(), false, parallelism);
            dst.set_len(len);
        }
        dst
    }

    /// dst = lhs · rhs, plus dst's values when `read_dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of m x n values (and reads, when `read_dst`), and not
    /// aliased.
    unsafe fn gemm(&self, dst: *mut f32, read_dst: bool, parallelism: Parallelism) {
        let (m, n, k) = (self.m, self.n, self.k);
        let ((lhs, lhs_rs, lhs_cs), (rhs, rhs_rs, rhs_cs)) = (self.lhs, self.rhs);
        // The kernel reads lhs and rhs only at these strided indices, all non-negative.
        let last = |rows: usize, cols: usize, rs: isize, cs: isize| {
            (rows.max(1) - 1) as isize * rs + (cols.max(1) - 1) as isize * cs
        };
        assert!(m * k == 0 || last(m, k, lhs_rs, lhs_cs) < lhs.len() as isize);
        assert!(k * n == 0 || last(k, n, rhs_rs, rhs_cs) < rhs.len() as isize);
        // SAFETY: reads checked above; writes as the caller promises.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst,
                1,
                n as isize,
                read_dst,
                lhs.as_ptr(),
                lhs_cs,
                lhs_rs,
                rhs.as_ptr(),
                rhs_cs,
                rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    }
}

/// The forward product's threads: the current pool's, which is what candle's matmul gets
/// inside funnel's pool (it asks `RAYON_NUM_THREADS`, the machine's cores by `runtime::init`,
/// and rayon runs the split on the pool it is called from). The backward's two products run
/// one per core, side by side, instead.
fn pool_parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// The checked shapes (rows, in, out) of x, W and b.
fn shapes(
    op: &str,
    x: (usize, usize),
    w: (usize, usize),
    b: usize,
) -> Result<(usize, usize, usize)> {
    let ((rows, inp), (out, w_in)) = (x, w);
    if w_in != inp || b != out {
        candle_core::bail!("{op}: x {rows}x{inp}, W {out}x{w_in} and b {b} do not fit");
    }
    Ok((rows, inp, out))
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "dense"
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
        let (x, rows, inp) = f32_matrix(s1, l1, self.name())?;
        let (w, out, w_in) = f32_matrix(s2, l2, self.name())?;
        let b = f32_slice(s3, l3, self.name())?;
        let (rows, inp, out) = shapes(self.name(), (rows, inp), (out, w_in), b.len())?;
        // Every row starts as the bias; the product is added to it.
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        Product {
            m: rows,
            n: out,
            k: inp,
            lhs: (x, inp as isize, 1),
            // Wᵀ (in x out) read in place from W (out x in).
            rhs: (w, 1, inp as isize),
        }
        .add_to(&mut y, pool_parallelism());
        self.act.forward(&mut y);
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    /// dz = grad ⊙ act'(y); dx = dz W, dW = dzᵀ x, db = the column sums of dz.
    /// dx is skipped when nothing upstream of x wants it.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let ((rows, inp), (out, _)) = (x.dims2()?, w.dims2()?);
        let (grad, x, w) = (grad.contiguous()?, x.contiguous()?, w.contiguous()?);
        // Through the activation; without one, the upstream gradient is read in place.
        let masked: Option<Vec<f32>> = match self.act {
            Fused::Identity => None,
            act => Some(with_f32(&grad, |g| with_f32(res, |y| act.backward(g, y)))??),
        };
        let want_dx = x.track_op();
        let (dx, dw, db) = with_f32(&grad, |g| {
            let dz = masked.as_deref().unwrap_or(g);
            with_f32(&x, |xv| {
                with_f32(&w, |wv| gradients(dz, xv, wv, (rows, inp, out), want_dx))
            })
        })???;
        let dev = Device::Cpu;
        let dx = dx
            .map(|v| Tensor::from_vec(v, (rows, inp), &dev))
            .transpose()?;
        Ok((
            dx,
            Some(Tensor::from_vec(dw, (out, inp), &dev)?),
            Some(Tensor::from_vec(db, out, &dev)?),
        ))
    }
}

/// The layer's gradients from dz (rows x out), x (rows x in) and W (out x in): dx = dz W
/// (when `want_dx`) on one core, dW = dzᵀ x and db = the column sums of dz on the other.
fn gradients(
    dz: &[f32],
    x: &[f32],
    w: &[f32],
    (rows, inp, out): (usize, usize, usize),
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (dx, (dw, db)) = rayon::join(
        || {
            want_dx.then(|| {
                Product {
                    m: rows,
                    n: inp,
                    k: out,
                    lhs: (dz, out as isize, 1),
                    rhs: (w, inp as isize, 1),
                }
                .new_matrix(Parallelism::None)
            })
        },
        || {
            let dw = Product {
                m: out,
                n: inp,
                k: rows,
                // dzᵀ (out x rows) read in place from dz (rows x out).
                lhs: (dz, 1, out as isize),
                rhs: (x, inp as isize, 1),
            }
            .new_matrix(Parallelism::None);
            let mut db = vec![0f32; out];
            for row in dz.chunks_exact(out.max(1)) {
                for (s, v) in db.iter_mut().zip(row) {
                    *s += v;
                }
            }
            (dw, db)
        },
    );
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Values and gradients equal candle's composition (matmul with the transposed weights, a
    /// broadcast bias, a ReLU), at shapes the GEMM splits into several blocks.
    #[test]
    fn dense_matches_candle_composition() {
        let dev = Device::Cpu;
        let mut r = crate::rng::Rng::stream(9, "dense");
        let (rows, inp, out) = (37, 19, 23);
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| r.normal() as f32).collect() };
        let (xs, ws, bs, up) = (
            draw(rows * inp),
            draw(out * inp),
            draw(out),
            draw(rows * out),
        );
        for act in [Fused::Identity, Fused::Relu, Fused::Sigmoid] {
            let run = |fused: bool| {
                let x = Var::from_slice(&xs, (rows, inp), &dev).unwrap();
                let w = Var::from_slice(&ws, (out, inp), &dev).unwrap();
                let b = Var::from_slice(&bs, out, &dev).unwrap();
                let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), b.as_tensor());
                let y = if fused {
                    xt.apply_op3(wt, bt, Dense { act }).unwrap()
                } else {
                    let z = xt
                        .matmul(&wt.t().unwrap())
                        .unwrap()
                        .broadcast_add(bt)
                        .unwrap();
                    match act {
                        Fused::Identity => z,
                        Fused::Relu => z.relu().unwrap(),
                        // σ(z) = (tanh(z/2) + 1) / 2, by candle's own ops.
                        Fused::Sigmoid => z
                            .affine(0.5, 0.0)
                            .unwrap()
                            .tanh()
                            .unwrap()
                            .affine(0.5, 0.5)
                            .unwrap(),
                    }
                };
                // A loss whose gradient at y is `up`, different per element.
                let upstream = Tensor::from_slice(&up, (rows, out), &dev).unwrap();
                let g = (&y * &upstream)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                [
                    flat(&y),
                    flat(g.get(xt).unwrap()),
                    flat(g.get(wt).unwrap()),
                    flat(g.get(bt).unwrap()),
                ]
            };
            let (fused, reference) = (run(true), run(false));
            if act == Fused::Relu {
                assert!(reference[0].contains(&0.0), "the ReLU cuts some units");
            }
            for (what, (a, b)) in ["y", "dx", "dW", "db"]
                .iter()
                .zip(fused.iter().zip(&reference))
            {
                assert_eq!(a.len(), b.len());
                for (u, v) in a.iter().zip(b) {
                    assert!(
                        (u - v).abs() <= 1e-5 * (1.0 + v.abs()),
                        "{act:?} {what}: {u} vs {v}"
                    );
                }
            }
        }
    }

    /// dx is not computed for an input nothing tracks; W and b still get theirs.
    #[test]
    fn untracked_input_gets_no_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::ones((4, 3), candle_core::DType::F32, &dev).unwrap();
        let w = Var::ones((2, 3), candle_core::DType::F32, &dev).unwrap();
        let b = Var::zeros(2, candle_core::DType::F32, &dev).unwrap();
        let y = x
            .apply_op3(w.as_tensor(), b.as_tensor(), Dense { act: Fused::Relu })
            .unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), vec![vec![3.0, 3.0]; 4]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert!(g.get(&x).is_none());
        // dW[o, i] = Σ_rows x = 4; db[o] = 4 rows.
        assert_eq!(
            g.get(w.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![4.0; 3]; 2]
        );
        assert_eq!(
            g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            vec![4.0; 2]
        );
    }
}
