//! The memory a training run will need, estimated before the model and its tables are
//! allocated (after the data is read and encoded), so that a run too big for the machine stops
//! with the estimate and what to change instead of being killed half-way through an epoch.
//!
//! The estimate counts what dominates: the encoded splits (already in memory when it is made;
//! a multi-valued feature by its tokens; of a split on disk, the window or chunk read at a
//! time) and the scored rows evaluation sorts,
//! the embedding tables with their optimizer state and the training step's per-row dedup marks,
//! each dense parameter five times (the value, its gradient, Adam's two moments and the
//! optimizer's copy), and one training batch's activations (a few tensors of each layer's
//! width, forward and backward) next to one inference batch's. The dense parameters and the
//! layers' widths are read from the model's own blocks, built over tables without rows, so a
//! new block is counted without a line here. It is an estimate: allocator
//! slack and the libraries' own buffers come on top, which is why it is compared against the
//! memory available with a margin.

use crate::config::{Pipeline, Shuffle};
use crate::data::{EVAL_CHUNK_ROWS, SplitData, Splits};
use crate::error::{Error, Result};
use crate::metrics::scored_rows_held;
use crate::model::{FunnelModel, SparseOptimizer};

/// Bytes of each part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub data: u64,
    /// Scored rows evaluation sorts (one split at a time).
    pub scores: u64,
    pub tables: u64,
    pub dense: u64,
    pub batch: u64,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.data + self.scores + self.tables + self.dense + self.batch
    }
}

/// The estimate for `p` over prepared splits (with their fitted encoders).
pub fn estimate(p: &Pipeline, splits: &Splits) -> Result<Estimate> {
    let encoders = &splits.encoders;
    // A training split on disk holds a window at a time, and for a moment, while the next is
    // read, two.
    let train = match (&splits.train, p.train.shuffle) {
        (
            SplitData::Disk(d),
            Shuffle::Blocks {
                block_rows,
                blocks_per_window,
            },
        ) => {
            let window = (block_rows * blocks_per_window).min(d.rows()) as u64;
            2 * window * d.bytes() / d.rows().max(1) as u64
        }
        (t, _) => t.bytes(),
    };
    // Validation and test rows in memory whole, or on disk a chunk at a time; the metrics'
    // scored rows, one split at a time.
    let eval = [splits.valid.as_ref(), splits.test.as_ref()]
        .into_iter()
        .flatten();
    let scores = eval
        .clone()
        .map(|d| scored_rows_held(p.stages.len(), d.has_groups(), d.rows()) as u64 * 16)
        .max()
        .unwrap_or(0);
    let data = train
        + eval
            .map(|d| match d {
                SplitData::Memory(d) => d.bytes(),
                SplitData::Disk(d) => {
                    EVAL_CHUNK_ROWS.min(d.rows()) as u64 * d.bytes() / d.rows().max(1) as u64
                }
            })
            .sum::<u64>();
    let opt = SparseOptimizer::from_config(&p.train.embedding_optimizer);
    let state_per_row = |dim: u64| opt.state_len(dim as usize) as u64;
    let rows: Vec<u64> = encoders
        .table_rows()
        .into_iter()
        .map(|r| r as u64)
        .collect();
    let fields = p.embedded_fields();
    let stores = match p.representation {
        crate::config::RepresentationKind::SharedEmbeddings => 1,
        crate::config::RepresentationKind::PerStageEmbeddings => p.stages.len() as u64,
    };
    // Per row: the weights and optimizer state (f32), and the step's dedup mark (u64).
    let tables = stores
        * rows
            .iter()
            .zip(&fields)
            .map(|(&r, &(_, dim))| {
                let dim = dim as u64;
                r.saturating_mul(4 * (dim + state_per_row(dim)) + 8)
            })
            .fold(0u64, u64::saturating_add);
    let width: u64 = fields.iter().map(|&(_, d)| d as u64).sum::<u64>() + p.dense_values() as u64;
    // The dense blocks as the model builds them (over tables without rows): every parameter,
    // and as activations each layer's output, as wide as its bias.
    let model = FunnelModel::dense_only(p)?;
    let (mut params, mut act) = (0u64, width);
    // DIN's units run on every history token: their layers' outputs (and the unit's input,
    // 4 target widths) count once per token, at the training split's tokens per row.
    let rows = splits.train.rows().max(1) as u64;
    let per_token: Vec<(String, u64, u64)> = p
        .sequences
        .iter()
        .enumerate()
        .map(|(s, q)| {
            let tokens = splits.train.tokens(p.multi_valued.len() + s) as u64;
            let name = format!(".{}.", q.tokens.vocabulary.name);
            (
                name,
                tokens.div_ceil(rows),
                4 * q.tokens.vocabulary.dim as u64,
            )
        })
        .collect();
    for (key, var) in model.params().iter() {
        let n = var.elem_count() as u64;
        params = params.saturating_add(n);
        if !key.ends_with(".bias") {
            continue;
        }
        let unit = per_token
            .iter()
            .find(|(name, _, _)| key.starts_with("din.") && key.contains(name.as_str()));
        let per_row = match unit {
            Some(&(_, tokens, _)) => n.saturating_mul(tokens),
            None => n,
        };
        act = act.saturating_add(per_row);
    }
    for (_, tokens, input) in &per_token {
        act = act.saturating_add(tokens.saturating_mul(*input));
    }
    let dense = params.saturating_mul(20);
    // Forward values, gradients and masks: a handful of tensors per layer, f32.
    let batch = (p.train.batch_size as u64)
        .saturating_mul(act)
        .saturating_mul(4 * 6)
        .saturating_add(
            (p.train.eval_batch_size as u64)
                .saturating_mul(act)
                .saturating_mul(4 * 2),
        );
    Ok(Estimate {
        data,
        scores,
        tables,
        dense,
        batch,
    })
}

/// Bytes of memory the system can still give (Linux's MemAvailable), if known.
fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A size in the largest binary unit that keeps it at 1 or more.
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{bytes} bytes"),
        _ => format!("{v:.1} {}", units[u]),
    }
}

/// Refuse a run whose estimate exceeds `train.memory_budget`, or, without one, the memory the
/// system has available (the encoded data, already loaded, is not counted against that).
pub fn check(p: &Pipeline, splits: &Splits) -> Result<Estimate> {
    let e = estimate(p, splits)?;
    let (need, limit, what) = match p.train.memory_budget {
        Some(budget) => (e.total(), budget, "`train.memory_budget`".to_string()),
        None => match available() {
            Some(free) => (e.total() - e.data, free, "the memory available".to_string()),
            None => return Ok(e),
        },
    };
    if need > limit {
        return Err(Error::Usage(format!(
            "training would need about {} (embedding tables {}, dense parameters {}, batch activations {}, encoded data {}, evaluation scores {}), more than {what} ({})\n  hint: lower `features.embedding_dim`, give large vocabularies `hash_buckets` or a higher `min_count`, narrow the towers or lower `train.batch_size`; `train.memory_budget` sets the limit",
            human(need),
            human(e.tables),
            human(e.dense),
            human(e.batch),
            human(e.data),
            human(e.scores),
            human(limit)
        )));
    }
    Ok(e)
}
