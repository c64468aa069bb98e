//! The embedding tables' optimizers (row-wise Adagrad, lazy Adam): their settings and the size
//! of the state each row keeps next to its weights.

use crate::config::{EmbeddingOptimizerKind, EmbeddingOptimizerSpec};

#[derive(Clone, Copy)]
pub enum SparseOptimizer {
    RowwiseAdagrad {
        lr: f32,
        eps: f32,
    },
    LazyAdam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

impl SparseOptimizer {
    pub fn from_config(c: &EmbeddingOptimizerSpec) -> Self {
        match c.kind {
            EmbeddingOptimizerKind::RowwiseAdagrad => SparseOptimizer::RowwiseAdagrad {
                lr: c.lr as f32,
                eps: c.eps as f32,
            },
            EmbeddingOptimizerKind::LazyAdam => SparseOptimizer::LazyAdam {
                lr: c.lr as f32,
                beta1: c.beta1 as f32,
                beta2: c.beta2 as f32,
                eps: c.eps as f32,
            },
        }
    }

    /// The same optimizer with its learning rate times `factor` (a schedule's).
    pub fn scaled(self, factor: f32) -> Self {
        match self {
            SparseOptimizer::RowwiseAdagrad { lr, eps } => SparseOptimizer::RowwiseAdagrad {
                lr: lr * factor,
                eps,
            },
            SparseOptimizer::LazyAdam {
                lr,
                beta1,
                beta2,
                eps,
            } => SparseOptimizer::LazyAdam {
                lr: lr * factor,
                beta1,
                beta2,
                eps,
            },
        }
    }

    /// f32 values of optimizer state each row keeps next to its `dim` weights.
    pub fn state_len(&self, dim: usize) -> usize {
        match self {
            SparseOptimizer::RowwiseAdagrad { .. } => 1,
            SparseOptimizer::LazyAdam { .. } => 2 * dim,
        }
    }
}
