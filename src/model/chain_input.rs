//! What the chain reads of a batch: per store its input rows and each history's token rows,
//! and each history token's batch row (`input.rs` builds it through the row stores).

use candle_core::{Tensor, Var};

/// What the chain reads of a batch. `xs` holds, per store in order, its input rows (rows x
/// `input_width`) and then each sequence's token rows (tokens x the target's width, in the
/// bag's order): `FunnelModel::inputs_per_store` tensors each. `T` is `Var` where gradients
/// are taken with respect to them (training), `Tensor` otherwise.
pub struct ChainInput<T> {
    pub xs: Vec<T>,
    /// token_rows[s]: the batch row of each token of sequence s (u32), the same for every store.
    pub token_rows: Vec<Tensor>,
}

impl ChainInput<Var> {
    /// The same input as plain tensors (the forward pass reads these; the graph still reaches
    /// the variables).
    pub fn tensors(&self) -> ChainInput<Tensor> {
        ChainInput {
            xs: self.xs.iter().map(|x| x.as_tensor().clone()).collect(),
            token_rows: self.token_rows.clone(),
        }
    }
}
