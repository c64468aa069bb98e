//! The transfer slot of the chain: a block that lets stage k's representation read its
//! parent's before stage k's head (AITM's information transfer is one).

use candle_core::{Result, Tensor};

use super::kit::Mode;

/// Combines a stage's own representation with its parent's: (rows x own, rows x parent) ->
/// rows x own, so the stage's head reads the result unchanged. Its parameters live under
/// `transfers.<stage>` in the model's parameter list.
pub trait Transfer: Send + Sync {
    fn forward(&self, own: &Tensor, parent: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;
}
