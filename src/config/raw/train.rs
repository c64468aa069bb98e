//! The `train` block as written: epochs, batches, seed, both optimizers and early stopping.

use serde::{Deserialize, Serialize};

use crate::config::choices::{DenseOptimizerKind, EmbeddingOptimizerKind, ScheduleKind};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Worker threads; 0 means one per available core.
    #[serde(default)]
    pub threads: usize,
    #[serde(default)]
    pub optimizer: RawOptimizer,
    #[serde(default)]
    pub embedding_optimizer: RawEmbeddingOptimizer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<RawEarlyStopping>,
    /// Also write a checkpoint every this many steps (one is always written after each epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every_steps: Option<usize>,
    /// Gradient-norm clipping of the dense parameters: their gradients are scaled down together
    /// when their global L2 norm exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// A finished run directory whose weights initialise this run where they match (relative
    /// to the pipeline file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<String>,
    /// A learning-rate schedule for the towers and the tables alike (constant when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_schedule: Option<RawSchedule>,
    /// The most memory the run may need (its estimate is checked before training): bytes, or
    /// text such as `8GiB` or `512MiB`. Absent: the memory the system has available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget: Option<RawBytes>,
    /// How an epoch's rows are ordered: absent, a full shuffle; given, blocks of rows shuffled
    /// within a bounded window (what a source larger than memory can afford).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<RawShuffle>,
}

/// Block shuffling: the rows cut into blocks of `block_rows` consecutive rows, the blocks
/// visited in a seeded random order, `buffer_rows` rows' worth of whole blocks held at once and
/// their rows shuffled together.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawShuffle {
    pub block_rows: usize,
    pub buffer_rows: usize,
}

/// A learning-rate schedule: a factor on both learning rates at each step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// `constant`, `cosine` (from 1 down to `min_factor` over the steps after warm-up) or
    /// `step` (times `gamma` every `step_epochs` epochs).
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Steps over which the factor rises linearly from 1/warmup_steps to 1.
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub min_factor: f64,
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    #[serde(default = "default_step_epochs")]
    pub step_epochs: usize,
}

fn default_gamma() -> f64 {
    0.5
}

fn default_step_epochs() -> usize {
    1
}

/// A size: a number of bytes, or a number with a unit (`KiB`, `MiB`, `GiB`, `TiB`, `KB`, `MB`,
/// `GB`, `TB`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RawBytes {
    Count(u64),
    Text(String),
}

impl Default for RawTrain {
    fn default() -> Self {
        RawTrain {
            epochs: default_epochs(),
            batch_size: default_batch(),
            eval_batch_size: default_eval_batch(),
            seed: default_seed(),
            threads: 0,
            optimizer: RawOptimizer::default(),
            embedding_optimizer: RawEmbeddingOptimizer::default(),
            early_stopping: None,
            checkpoint_every_steps: None,
            memory_budget: None,
            shuffle: None,
            clip_grad_norm: None,
            lr_schedule: None,
            warm_start: None,
        }
    }
}

fn default_epochs() -> usize {
    10
}

fn default_batch() -> usize {
    512
}

fn default_eval_batch() -> usize {
    8192
}

fn default_seed() -> u64 {
    42
}

/// Optimizer of the dense (tower) parameters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOptimizer {
    #[serde(default)]
    pub kind: DenseOptimizerKind,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam: L2 penalty added to the gradient. AdamW: decoupled decay, w -= lr * wd * w.
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
}

impl Default for RawOptimizer {
    fn default() -> Self {
        RawOptimizer {
            kind: DenseOptimizerKind::default(),
            lr: default_lr(),
            weight_decay: 0.0,
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
        }
    }
}

fn default_lr() -> f64 {
    1e-3
}

fn default_beta1() -> f64 {
    0.9
}

fn default_beta2() -> f64 {
    0.999
}

fn default_eps() -> f64 {
    1e-8
}

/// Optimizer of the embedding rows; only the rows a batch touched are updated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbeddingOptimizer {
    #[serde(default)]
    pub kind: EmbeddingOptimizerKind,
    #[serde(default = "default_emb_lr")]
    pub lr: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Row-wise Adagrad: starting value of each row's accumulator.
    #[serde(default)]
    pub initial_accumulator: f64,
    /// L2 penalty on the embedding rows a batch touches (`l2_reg_embedding`): each touched
    /// row's gradient gets `l2 · w`. Rows a batch does not touch are not decayed (the lazy
    /// update every sparse trainer makes). A categorical feature's own `l2` overrides it.
    #[serde(default)]
    pub l2: f64,
}

impl Default for RawEmbeddingOptimizer {
    fn default() -> Self {
        RawEmbeddingOptimizer {
            kind: EmbeddingOptimizerKind::default(),
            lr: default_emb_lr(),
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            initial_accumulator: 0.0,
            l2: 0.0,
        }
    }
}

fn default_emb_lr() -> f64 {
    0.05
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEarlyStopping {
    /// `<stage>.<cumulative|conditional>.<auc|logloss>`, measured on the validation split.
    pub monitor: String,
    #[serde(default = "default_patience")]
    pub patience: usize,
}

fn default_patience() -> usize {
    2
}
