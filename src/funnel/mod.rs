//! The funnel: stages as ids in causal order, each with its parent and how it is supervised, and
//! the per-stage probabilities that every consumer (loss, metrics, truth, predict) reads from a
//! chain's logits. Stage names never enter here: inside the crate a stage is its id.

mod graph;
mod probs;
mod supervision;

pub use graph::{Funnel, StageId, StageNode};
pub use probs::{BlockProbs, Complement, LogProbs, LogSpace, RowBlock, StageProbs};
pub use supervision::{
    HeadKind, Label, Output, Prediction, Propensity, Rows, Supervision, Term, Weighting,
};
