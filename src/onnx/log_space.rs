//! The funnel's log-space arithmetic over a graph's values: an exported model computes each
//! stage's probabilities by the very formulas `Funnel::log_probs` states.

use super::Value;
use crate::funnel::{Funnel, LogSpace};

/// The funnel's formulas over rows x columns values: each op composed of ONNX nodes that stay
/// finite where the naive form would overflow (ln σ(x) = min(x, 0) − ln(1 + e^−|x|)).
impl LogSpace for Value {
    type Error = std::convert::Infallible;

    fn log_sigmoid(&self) -> Result<Self, Self::Error> {
        let g = self.graph();
        let zero = g.scalar(0.0);
        let one = g.scalar(1.0);
        let tail = self
            .unary("Abs")
            .unary("Neg")
            .unary("Exp")
            .add(&one)
            .unary("Log");
        Ok(self.elementwise("Min", &[&zero]).sub(&tail))
    }

    fn neg(&self) -> Result<Self, Self::Error> {
        Ok(self.unary("Neg"))
    }

    fn add(&self, other: &Self) -> Result<Self, Self::Error> {
        Ok(Value::add(self, other))
    }

    fn log_add(&self, other: &Self) -> Result<Self, Self::Error> {
        let one = self.graph().scalar(1.0);
        let m = self.elementwise("Max", &[other]);
        let gap = self
            .sub(other)
            .unary("Abs")
            .unary("Neg")
            .unary("Exp")
            .add(&one)
            .unary("Log");
        Ok(m.add(&gap))
    }

    fn clipped_ratio(&self, parent: &Self) -> Result<Self, Self::Error> {
        let zero = self.graph().scalar(0.0);
        Ok(self.sub(parent).elementwise("Min", &[&zero]))
    }

    fn column(&self, c: usize) -> Result<Self, Self::Error> {
        Ok(self.columns(c, 1))
    }

    fn side_by_side(columns: &[Self]) -> Result<Self, Self::Error> {
        Ok(Value::concat(columns, 1))
    }

    fn over_ancestors(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        let m = funnel.ancestor_matrix();
        let k = funnel.len();
        let c = self.graph().constant("ancestors", &[k, k], m);
        Ok(self.matmul(&c, k))
    }

    fn of_parents(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        let m = funnel.parent_matrix();
        let k = funnel.len();
        let c = self.graph().constant("parents", &[k, k], m);
        Ok(self.matmul(&c, k))
    }
}
