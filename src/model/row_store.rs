//! The row store seam: where a model's embedding rows live and how a batch reaches them. The
//! model gathers a batch's input rows and hands back their gradient through this trait alone;
//! the trainer, resume, warm start and persistence walk the tables by key through the model
//! (`FunnelModel::tables`), never a store's internals. `LocalStore` keeps every table in this
//! process; a store sharded over ranks (rows routed to their owners through a collective)
//! implements the same trait.

use super::embedding::{SparseOptimizer, Table};
use crate::data::Batch;
use crate::layout::FieldLayout;

/// The gradient a step hands a store: of its input rows (`rows`, batch rows x `width`,
/// row-major), and of each sequence's token rows (`tokens[s]`, as `RowStore::gather_tokens`
/// gave them).
pub struct InputGradient<'a> {
    pub rows: &'a [f32],
    pub width: usize,
    pub tokens: Vec<&'a [f32]>,
}

#[cfg(test)]
impl<'a> InputGradient<'a> {
    /// The gradient of input rows alone, for a batch without sequences.
    pub fn rows_only(rows: &'a [f32], width: usize) -> Self {
        InputGradient {
            rows,
            width,
            tokens: Vec::new(),
        }
    }
}

/// What the forward pass reads from a store: its rows gathered for a batch. A store that only
/// serves (rows memory-mapped from a finished run) is a source and nothing more.
pub trait RowSource: Send + Sync {
    /// The slots the store writes into an input row.
    fn layout(&self) -> &FieldLayout;

    /// Write the embedded part of batch rows `rows` into `x` (those rows, `w` columns each,
    /// row-major; the columns from `layout().width()` on are left alone): each field's row
    /// (`b.ids[f][r]`), each bag field's rows pooled (`b.bags`).
    fn gather(&self, b: &Batch, rows: std::ops::Range<usize>, x: &mut [f32], w: usize);

    /// The embedding rows of every token of sequence `s` (`layout().sequences()[s]`), in the
    /// order of its bag column: tokens x the target's width, row-major.
    fn gather_tokens(&self, b: &Batch, s: usize) -> Vec<f32>;
}

/// A store training writes to: a source whose rows take sparse steps, saved and loaded by table.
pub trait RowStore: RowSource {
    /// One sparse step: update the rows the batch used from the gradient of its input rows and
    /// of its sequences' token rows, with the learning rate scaled by `lr_scale`. Every row is
    /// updated once, with the sum of its gradients over the batch (a target's row and the same
    /// item in a history are one row).
    fn apply(&mut self, b: &Batch, grad: &InputGradient<'_>, lr_scale: f32);

    /// The tables, in field order (what a checkpoint saves and loads).
    fn tables(&self) -> Vec<&Table>;

    fn tables_mut(&mut self) -> Vec<&mut Table>;

    /// The optimizer whose state the tables carry beside their rows.
    fn optimizer(&self) -> SparseOptimizer;

    /// Sparse steps taken (lazy Adam's bias correction reads it; a checkpoint saves it).
    fn steps(&self) -> u64;

    fn set_steps(&mut self, steps: u64);

    /// Free memory only training needs (per-step scratch); the next step rebuilds it.
    fn release_scratch(&mut self);
}
