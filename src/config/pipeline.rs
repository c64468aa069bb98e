//! The validated pipeline: the only configuration the rest of the crate sees. `Pipeline::load`
//! parses strictly, then `check` validates meaning and expands the model preset into the funnel.

use std::path::{Path, PathBuf};

use super::choices::*;
pub use super::feature_specs::*;
use super::raw::RawPipeline;
use crate::error::{Error, Result};
use crate::funnel::{Funnel, HeadKind, Prediction};
use crate::layout::{FieldLayout, Pooling};

/// Most rows an embedding table may have (vocabulary or hash buckets).
pub const MAX_ROWS: u32 = 1 << 30;
/// The widest hidden layer (tower or bottom) a pipeline may declare.
pub const MAX_WIDTH: usize = 65_536;
/// The widest embedding a feature may have.
pub const MAX_DIM: usize = 4_096;
/// The largest training or inference batch.
pub const MAX_BATCH: usize = 1 << 22;
/// The most worker threads a pipeline may ask for (more than 4 per core are capped at run time).
pub const MAX_THREADS: usize = 1_024;
/// Quantile buckets of a numeric feature when `buckets` is not given.
pub const DEFAULT_BUCKETS: usize = 32;
/// The most quantile buckets a numeric feature may ask for.
pub const MAX_BUCKETS: usize = 65_536;

/// Where one split's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitSource {
    File(FileSource),
    /// A share of the training file's rows, drawn with the run seed.
    Carved {
        fraction: f64,
    },
    /// The training file's latest rows by a time column: the validation split lies after the
    /// training rows and the test split after both, as a production evaluation does.
    Latest {
        column: String,
        cut: TimeCut,
    },
}

impl SplitSource {
    /// The time column and cut of a split carved by time.
    pub fn by_time(&self) -> Option<(&str, TimeCut)> {
        match self {
            SplitSource::Latest { column, cut } => Some((column, *cut)),
            _ => None,
        }
    }
}

/// Where a split carved by time starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeCut {
    /// The latest share of the rows (rows of one time stay in one split: the later one).
    Fraction(f64),
    /// Rows at or after this time (in the column's unit; a date as Unix seconds).
    From(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: FileFormat,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    pub separator: u8,
    pub header: bool,
    pub null_values: Vec<String>,
    pub trim_whitespace: bool,
}

/// GradNorm's settings (Chen et al., ICML 2018).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradNormSpec {
    /// The asymmetry α: how hard slower stages are pulled up.
    pub alpha: f64,
    /// The weights' Adam learning rate.
    pub lr: f64,
}

#[derive(Debug, Clone)]
pub struct LabelSpec {
    pub column: String,
    pub positive: Option<Vec<String>>,
    pub negative: Option<Vec<String>>,
    pub meaning: LabelMeaning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TowerSpec {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f64,
    /// DCN-v2 cross layers before the MLP (towers only; 0 for bottoms).
    pub cross_layers: usize,
    /// DeepFM's interaction of the categorical embeddings added to the logit (towers only).
    pub fm: bool,
}

/// The checked bottom block between the embeddings and the towers.
#[derive(Debug, Clone, PartialEq)]
pub struct BottomSpec {
    pub kind: BottomKind,
    /// The shared MLP's layers, or each expert's.
    pub mlp: TowerSpec,
    /// `mmoe`: the number of experts; `ple`: each stage's own experts per level (1 for
    /// `shared_bottom`).
    pub experts: usize,
    /// `ple`: shared experts per level (0 otherwise).
    pub shared_experts: usize,
    /// `ple`: extraction levels (1 otherwise).
    pub levels: usize,
    /// `stage_groups`: the stages of each group, as ids (empty otherwise).
    pub groups: Vec<Vec<usize>>,
}

/// A block through which a stage reads its parent's representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferSpec {
    /// AITM's information transfer: an info layer on the parent's representation, then
    /// attention over [own, transferred].
    Aitm,
}

/// One funnel stage. Its position in `Pipeline::stages` is its id.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub label: LabelSpec,
    pub tower: TowerSpec,
    /// Set by the model preset (`aitm`) for every stage that has a parent.
    pub transfer: Option<TransferSpec>,
    /// Set by the model preset: the auxiliary heads the stage's loss terms read (ESCM²-DR's
    /// imputation), each a tower like the stage's own.
    pub heads: Vec<HeadKind>,
    /// Column of the true conditional probability, when the data is synthetic.
    pub truth: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Auc,
    Logloss,
}

#[derive(Debug, Clone)]
pub struct EarlyStopping {
    pub stage: usize,
    pub prediction: Prediction,
    pub measure: Measure,
    pub patience: usize,
    pub monitor: String,
}

#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub seed: u64,
    pub threads: usize,
    pub optimizer: OptimizerSpec,
    pub embedding_optimizer: EmbeddingOptimizerSpec,
    pub early_stopping: Option<EarlyStopping>,
    /// Steps between mid-epoch checkpoints (none: after each epoch only).
    pub checkpoint_every_steps: Option<usize>,
    /// Bytes the run's memory estimate may reach (none: the memory available).
    pub memory_budget: Option<u64>,
    pub clip_grad_norm: Option<f64>,
    pub lr_schedule: Option<ScheduleSpec>,
    /// A finished run to initialise from (absolute).
    pub warm_start: Option<PathBuf>,
    /// How an epoch's rows are ordered.
    pub shuffle: Shuffle,
}

/// The order of an epoch's training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// A seeded permutation of all rows.
    Full,
    /// Blocks of `block_rows` consecutive rows in a seeded order; each window of
    /// `blocks_per_window` blocks (the most whole blocks `buffer_rows` holds) has its rows
    /// shuffled together.
    Blocks {
        block_rows: usize,
        blocks_per_window: usize,
    },
}

/// A checked learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleSpec {
    pub kind: ScheduleKind,
    pub warmup_steps: usize,
    pub min_factor: f64,
    pub gamma: f64,
    pub step_epochs: usize,
}

impl ScheduleSpec {
    /// The factor on both learning rates at 0-based `step` of `total` steps, in `epoch`
    /// (1-based).
    pub fn factor(&self, step: usize, total: usize, epoch: usize) -> f64 {
        if step < self.warmup_steps {
            return (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.min_factor
                    + (1.0 - self.min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            ScheduleKind::Step => self.gamma.powi(((epoch - 1) / self.step_epochs) as i32),
        }
    }
}

/// The dense (tower) optimizer: Adam or AdamW.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerSpec {
    pub kind: DenseOptimizerKind,
    pub lr: f64,
    /// Adam: L2 penalty added to the gradient. AdamW: decoupled decay, w -= lr * wd * w.
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// The embedding-row optimizer; only the rows a batch touched are updated.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingOptimizerSpec {
    pub kind: EmbeddingOptimizerKind,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Row-wise Adagrad: starting value of each row's accumulator.
    pub initial_accumulator: f64,
    /// L2 on touched rows, for features without their own.
    pub l2: f64,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    pub train_source: FileSource,
    pub valid: Option<SplitSource>,
    pub test: Option<SplitSource>,
    pub id_column: Option<String>,
    /// Rows' groups for group AUC (GAUC).
    pub group_column: Option<String>,
    pub embedding_init_std: f64,
    pub categorical: Vec<CategoricalSpec>,
    pub numeric: Vec<NumericSpec>,
    pub multi_valued: Vec<MultiValuedSpec>,
    /// Behaviour histories, read through their targets' tables and pooled by `din`.
    pub sequences: Vec<SequenceSpec>,
    /// Field groups summed into one input slice each (ungrouped features keep their own).
    pub groups: Vec<FieldGroup>,
    /// The stages' edge facts (names, label columns, towers), in funnel order.
    pub stages: Vec<StageSpec>,
    /// The stages as ids: parents and supervision, expanded from the model preset.
    pub funnel: Funnel,
    pub representation: RepresentationKind,
    /// A block shared by the stages between the embeddings and the towers.
    pub bottom: Option<BottomSpec>,
    /// DIN's attention over the sequences (exactly when there are sequences).
    pub din: Option<DinSpec>,
    pub loss_weighting: LossWeighting,
    /// GradNorm's settings, with `loss_weighting: gradnorm`.
    pub gradnorm: Option<GradNormSpec>,
    pub train: TrainSpec,
    pub inconsistent_rows: InconsistentRows,
    /// The pipeline with defaults filled in and paths made absolute: what a run directory stores.
    pub resolved: RawPipeline,
}

impl Pipeline {
    /// The resolved pipeline as YAML: every default written out, paths absolute. What a run
    /// directory stores, and what `Pipeline::from_text` reads back to the same pipeline.
    pub fn resolved_yaml(&self) -> Result<String> {
        serde_yaml::to_string(&self.resolved)
            .map_err(|e| Error::Internal(format!("cannot serialise the pipeline: {e}")))
    }

    /// Override the seed (`train --seed`), in the resolved pipeline the run stores too.
    pub fn set_seed(&mut self, seed: u64) {
        self.train.seed = seed;
        self.resolved.train.seed = seed;
    }

    /// A stage's name, for messages, metric names and checkpoint keys.
    pub fn stage_name(&self, k: usize) -> &str {
        &self.stages[k].name
    }

    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// The embedded fields, in the order of a batch's id columns and then its bag columns: the
    /// categorical features, the bucketed numeric features, the multi-valued features. Each is
    /// (name, embedding width).
    pub fn embedded_fields(&self) -> Vec<(&str, usize)> {
        embedded_fields(&self.categorical, &self.numeric, &self.multi_valued)
    }

    /// Every token-list feature in the order of a batch's bag columns: the multi-valued
    /// features, then the sequences.
    pub fn token_lists(&self) -> impl Iterator<Item = &MultiValuedSpec> {
        self.multi_valued
            .iter()
            .chain(self.sequences.iter().map(|s| &s.tokens))
    }

    /// The slots of a model's input row: each embedded field's, a field group's shared one.
    pub fn field_layout(&self) -> Result<FieldLayout> {
        let groups: Vec<(&str, &[usize])> = self
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.members.as_slice()))
            .collect();
        let bags: Vec<Pooling> = self.multi_valued.iter().map(|m| m.pooling).collect();
        let sequences: Vec<(&str, usize)> = self
            .sequences
            .iter()
            .map(|s| (s.tokens.vocabulary.name.as_str(), s.target))
            .collect();
        FieldLayout::new(&self.embedded_fields(), &groups)
            .and_then(|l| l.with_bags(&bags))
            .and_then(|l| l.with_sequences(&sequences))
            .map_err(|e| crate::error::Error::Internal(format!("the field layout: {}", e.0)))
    }

    /// How many numeric values a batch row carries (numeric features that feed their value).
    pub fn dense_values(&self) -> usize {
        self.numeric.iter().filter(|n| n.feeds_value()).count()
    }

    /// Every data column the model reads, with the role it plays (for header checks).
    pub fn feature_columns(&self) -> impl Iterator<Item = &str> {
        self.categorical
            .iter()
            .map(|c| c.column.as_str())
            .chain(self.numeric.iter().map(|n| n.column.as_str()))
            .chain(self.token_lists().flat_map(|m| {
                std::iter::once(m.vocabulary.column.as_str()).chain(m.weight_column())
            }))
    }
}

pub fn format_from_extension(path: &Path) -> Option<FileFormat> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        Some(FileFormat::Parquet)
    } else if name.ends_with(".csv") || name.ends_with(".txt") {
        Some(FileFormat::Csv)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Factors by hand: warm-up 1/4, 2/4, ...; cosine from 1 to 0.1 over the 10 steps after
    /// warm-up (half-way: 0.1 + 0.9 · 0.5 = 0.55); step halves per 2 epochs.
    #[test]
    fn schedule_factors() {
        let cosine = ScheduleSpec {
            kind: ScheduleKind::Cosine,
            warmup_steps: 4,
            min_factor: 0.1,
            gamma: 0.5,
            step_epochs: 2,
        };
        assert_eq!(cosine.factor(0, 14, 1), 0.25);
        assert_eq!(cosine.factor(3, 14, 1), 1.0);
        assert!((cosine.factor(4, 14, 1) - 1.0).abs() < 1e-12);
        assert!((cosine.factor(9, 14, 2) - 0.55).abs() < 1e-12);
        assert!((cosine.factor(14, 14, 3) - 0.1).abs() < 1e-12);
        let step = ScheduleSpec {
            kind: ScheduleKind::Step,
            warmup_steps: 0,
            ..cosine
        };
        assert_eq!(step.factor(0, 100, 1), 1.0);
        assert_eq!(step.factor(50, 100, 2), 1.0);
        assert_eq!(step.factor(60, 100, 3), 0.5);
        assert_eq!(step.factor(99, 100, 5), 0.25);
    }
}
