//! The keyed walk over a model's tables: each under its checkpoint key (`embeddings.<field>`, or
//! `embeddings.<stage>.<field>` with one store per stage), beside the dense parameters in key
//! order (`FunnelModel::params`). Save, load, resume, warm start and the run's end walk these;
//! nothing outside the model builds a table key or reaches into a store.

use super::chain::FunnelModel;
use super::embedding::{SparseOptimizer, Table};
use super::row_store::InputGradient;
use crate::data::Batch;

/// A table as the walk gives it for writing: its key, the table, and the optimizer whose state
/// its rows carry.
pub struct TableMut<'a> {
    pub key: String,
    pub table: &'a mut Table,
    pub opt: SparseOptimizer,
}

impl FunnelModel {
    /// Every table with its key, stores in order, fields in order.
    pub fn tables(&self) -> Vec<(String, &Table)> {
        self.stores
            .iter()
            .zip(&self.store_keys)
            .flat_map(|(s, prefix)| {
                s.tables()
                    .into_iter()
                    .map(move |t| (format!("{prefix}.{}", t.name), t))
            })
            .collect()
    }

    /// Every table for writing, in the order of `tables`.
    pub fn tables_mut(&mut self) -> Vec<TableMut<'_>> {
        self.stores
            .iter_mut()
            .zip(&self.store_keys)
            .flat_map(|(s, prefix)| {
                let opt = s.optimizer();
                s.tables_mut().into_iter().map(move |table| TableMut {
                    key: format!("{prefix}.{}", table.name),
                    table,
                    opt,
                })
            })
            .collect()
    }

    /// Each store's sparse step count (a checkpoint keeps them).
    pub fn store_steps(&self) -> Vec<u64> {
        self.stores.iter().map(|s| s.steps()).collect()
    }

    /// Set each store's sparse step count; false when `steps` does not have one per store.
    pub fn set_store_steps(&mut self, steps: &[u64]) -> bool {
        if steps.len() != self.stores.len() {
            return false;
        }
        for (s, &n) in self.stores.iter_mut().zip(steps) {
            s.set_steps(n);
        }
        true
    }

    /// Free what only training needs (the stores' per-step scratch).
    pub fn release_scratch(&mut self) {
        for s in &mut self.stores {
            s.release_scratch();
        }
    }

    /// The sparse step: each store's rows the batch used, updated from the gradient of that
    /// store's inputs (`input`, one per tensor of `ChainInput::xs`: per store its input rows,
    /// then its sequences' token rows).
    pub fn apply_input_gradient(&mut self, b: &Batch, input: &[Vec<f32>], lr_scale: f32) {
        let (width, per_store) = (self.input_width(), self.inputs_per_store());
        for (store, g) in self.stores.iter_mut().zip(input.chunks(per_store)) {
            let grad = InputGradient {
                rows: &g[0],
                width,
                tokens: g[1..].iter().map(Vec::as_slice).collect(),
            };
            store.apply(b, &grad, lr_scale);
        }
    }
}
