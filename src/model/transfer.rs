//! The transfer slot of the chain: a block that lets stage k's representation read its
//! parent's before stage k's head (AITM's information transfer is one).

use candle_core::{Result, Tensor};

use super::export_kit::ExportKit;
use super::kit::Mode;
use crate::onnx::Value;

/// Combines a stage's own representation with its parent's: (rows x own, rows x parent) ->
/// rows x own, so the stage's head reads the result unchanged. Its parameters live under
/// `transfers.<stage>` in the model's parameter list.
pub trait Transfer: Send + Sync {
    fn forward(&self, own: &Tensor, parent: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;

    /// What `forward` computes in inference, as nodes of an exported graph.
    fn export(&self, kit: &ExportKit, own: &Value, parent: &Value) -> crate::error::Result<Value>;
}
