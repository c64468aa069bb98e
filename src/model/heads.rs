//! A stage's auxiliary heads: towers whose outputs only the loss reads (ESCM²-DR's imputation),
//! run in training mode only, and the chain output's map from (stage, kind) to each output.

use candle_core::Tensor;

use super::kit::Mode;
use super::tower::Tower;
use crate::funnel::{HeadKind, StageId};

/// One auxiliary head of a stage: a tower like the stage's own, on the same input.
pub(super) struct Head {
    pub(super) kind: HeadKind,
    pub(super) tower: Tower,
}

impl Head {
    /// The head's output for the input rows `x` (rows x 1).
    pub(super) fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> candle_core::Result<Tensor> {
        let h = self.tower.encode(x, mode)?;
        let raw = self.tower.head(&h, mode)?;
        match self.kind {
            // ê predicts a loss, so it is kept non-negative: softplus(raw) = −ln σ(−raw).
            HeadKind::Imputation => super::backend::log_sigmoid(&raw.neg()?)?.neg(),
        }
    }
}

/// The heads' outputs of one forward pass, by stage and kind.
#[derive(Default)]
pub struct HeadOutputs(Vec<(StageId, HeadKind, Tensor)>);

impl HeadOutputs {
    /// The output of `stage`'s head of `kind` (rows x 1), if the pass computed one.
    pub fn get(&self, stage: StageId, kind: HeadKind) -> Option<&Tensor> {
        self.0
            .iter()
            .find(|(s, k, _)| *s == stage && *k == kind)
            .map(|(_, _, t)| t)
    }

    pub fn insert(&mut self, stage: StageId, kind: HeadKind, t: Tensor) {
        self.0.retain(|(s, k, _)| !(*s == stage && *k == kind));
        self.0.push((stage, kind, t));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every output with its stage and kind, in the order they were inserted.
    pub fn iter(&self) -> impl Iterator<Item = (StageId, HeadKind, &Tensor)> {
        self.0.iter().map(|(s, k, t)| (*s, *k, t))
    }
}
