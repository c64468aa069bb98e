//! The tensor side of `funnel::LogSpace`: the arithmetic the loss differentiates the stages'
//! probabilities in (`Funnel::log_probs` holds the formulas, once, for the loss and the metrics).

use candle_core::Tensor;

use crate::funnel::{Funnel, LogSpace};
use crate::model::backend::log_sigmoid;

/// A (rows x k) tensor times a constant (k x k) 0/1 matrix of the funnel.
fn times(x: &Tensor, matrix: Vec<f32>, k: usize) -> candle_core::Result<Tensor> {
    x.matmul(&Tensor::from_vec(matrix, (k, k), x.device())?)
}

impl LogSpace for Tensor {
    type Error = candle_core::Error;

    fn log_sigmoid(&self) -> candle_core::Result<Tensor> {
        log_sigmoid(self)
    }

    fn neg(&self) -> candle_core::Result<Tensor> {
        Tensor::neg(self)
    }

    fn add(&self, other: &Tensor) -> candle_core::Result<Tensor> {
        self + other
    }

    /// Shifted by the (detached) larger of the two so nothing overflows; the shift cancels, so
    /// the gradient is exact.
    fn log_add(&self, other: &Tensor) -> candle_core::Result<Tensor> {
        let m = self.maximum(other)?.detach();
        let sum = ((self - &m)?.exp()? + (other - &m)?.exp()?)?;
        m + sum.log()?
    }

    /// min(x − parent, 0) = −relu(parent − x).
    fn clipped_ratio(&self, parent: &Tensor) -> candle_core::Result<Tensor> {
        (parent - self)?.relu()?.neg()
    }

    fn column(&self, c: usize) -> candle_core::Result<Tensor> {
        self.narrow(1, c, 1)
    }

    fn side_by_side(columns: &[Tensor]) -> candle_core::Result<Tensor> {
        Tensor::cat(columns, 1)
    }

    /// One product with the funnel's ancestor matrix (for a chain, a cumulative sum).
    fn over_ancestors(&self, funnel: &Funnel) -> candle_core::Result<Tensor> {
        times(self, funnel.ancestor_matrix(), funnel.len())
    }

    /// One product with the funnel's parent matrix.
    fn of_parents(&self, funnel: &Funnel) -> candle_core::Result<Tensor> {
        times(self, funnel.parent_matrix(), funnel.len())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use crate::funnel::{Funnel, Output, Prediction, Rows, Supervision, Term};

    /// The tensors' arithmetic and the f64 blocks' give the same probabilities (to f32's
    /// precision) from the one set of formulas: conditional logits over a chain, cumulative
    /// logits (DIVISION's clipped ratio, with rows where p_k > p_parent), and ESM²'s mixture.
    #[test]
    fn tensors_and_f64_blocks_agree() {
        let chain = || {
            Funnel::chain(3, |_| {
                Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
            })
            .unwrap()
        };
        let funnels = [
            chain(),
            chain().with_output(Output::Cumulative),
            chain().with_optional(1).unwrap(),
        ];
        let mut rng = crate::rng::Rng::stream(3, "probs");
        for f in &funnels {
            let (rows, w) = (64, f.logit_columns());
            let z: Vec<f32> = (0..rows * w).map(|_| (3.0 * rng.normal()) as f32).collect();
            let t = Tensor::from_vec(z.clone(), (rows, w), &Device::Cpu).unwrap();
            let lp = f.log_probs(&t).unwrap();
            let (q, p) = (
                lp.log_q.to_vec2::<f32>().unwrap(),
                lp.log_p.to_vec2::<f32>().unwrap(),
            );
            let exact = f.probabilities(&z);
            for r in 0..rows {
                for s in f.order() {
                    let e = exact.get(r, s);
                    assert!((q[r][s] as f64 - e.log_q).abs() < 1e-5, "{r} {s}");
                    assert!((p[r][s] as f64 - e.log_p).abs() < 1e-5, "{r} {s}");
                }
            }
        }
    }
}
