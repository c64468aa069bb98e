//! The pipeline YAML as written: strict serde structs (unknown keys are errors) with every default spelled out.
//!
//! Nothing here is checked beyond its type; `pipeline.rs` turns these into a validated `Pipeline`.
//! Serialising a `RawPipeline` back out gives the resolved pipeline stored in a run directory.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: String,
    pub data: RawData,
    pub features: RawFeatures,
    pub stages: Vec<RawStage>,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub train: RawTrain,
    #[serde(default)]
    pub inconsistent_rows: InconsistentRows,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub train: RawSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<RawSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<RawSource>,
    /// A column carried through to predictions unchanged (e.g. a request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
}

/// A split: either a file (`path`, optional `format` and `csv`) or a share carved from another split.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<RawCsv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_from: Option<SplitName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitName {
    Train,
    Valid,
    Test,
}

impl SplitName {
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Valid => "valid",
            SplitName::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCsv {
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "yes")]
    pub header: bool,
    /// Cell values (after trimming, when `trim_whitespace` is on) that mean "missing".
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    /// Strip spaces and tabs around every cell (files written as `a, b, c`).
    #[serde(default)]
    pub trim_whitespace: bool,
}

impl Default for RawCsv {
    fn default() -> Self {
        RawCsv {
            separator: default_separator(),
            header: true,
            null_values: default_nulls(),
            trim_whitespace: false,
        }
    }
}

fn default_separator() -> String {
    ",".into()
}
fn default_nulls() -> Vec<String> {
    vec![String::new()]
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatures {
    /// Embedding width for every categorical feature that does not set `dim`.
    #[serde(default = "default_dim")]
    pub embedding_dim: usize,
    /// Standard deviation of the normal initialisation of embedding rows.
    #[serde(default = "default_init_std")]
    pub embedding_init_std: f64,
    #[serde(default)]
    pub categorical: Vec<RawCategorical>,
    #[serde(default)]
    pub numeric: Vec<RawNumeric>,
}

fn default_dim() -> usize {
    8
}
fn default_init_std() -> f64 {
    0.01
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategorical {
    pub name: String,
    /// Data column; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// Values seen fewer times than this in training map to the out-of-vocabulary id.
    #[serde(default = "one")]
    pub min_count: u64,
    /// Hash values into this many buckets instead of fitting a vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<u32>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumeric {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default)]
    pub transform: NumericTransform,
    /// What a missing, NaN or infinite value becomes.
    #[serde(default)]
    pub missing: MissingPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericTransform {
    /// (x - mean) / std, statistics from the training split.
    #[default]
    Standardize,
    /// (x - min) / (max - min), statistics from the training split.
    MinMax,
    /// sign(x) * ln(1 + |x|), then standardised.
    Log1p,
    /// The raw value.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// The training mean (after the transform's log, before scaling).
    #[default]
    Mean,
    Zero,
    /// Reject the data, naming the first bad row.
    Error,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: String,
    pub label: RawLabel,
    #[serde(default)]
    pub tower: RawTower,
    #[serde(default = "unit")]
    pub loss_weight: f64,
    /// Column holding the true conditional probability of this stage (synthetic data): enables
    /// evaluation against the truth over all rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

fn unit() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabel {
    pub column: String,
    /// Values that count as positive. Absent: the column must hold 0/1 (or true/false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<Vec<String>>,
    /// Values that count as negative. Absent (with `positive` given): every other value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<Vec<String>>,
    #[serde(default)]
    pub meaning: LabelMeaning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMeaning {
    /// 1 means the row reached this stage; 1 after a 0 at an earlier stage is inconsistent.
    #[default]
    Reached,
    /// The column records an outcome that only counts once the previous stage is reached:
    /// the row reached this stage when it reached the previous one and this column is positive.
    GivenPrevious,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTower {
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub dropout: f64,
}

impl Default for RawTower {
    fn default() -> Self {
        RawTower {
            hidden: default_hidden(),
            activation: Activation::default(),
            dropout: 0.0,
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![64, 32]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Gelu,
    Silu,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    #[serde(default)]
    pub head: HeadKind,
    #[serde(default)]
    pub representation: RepresentationKind,
}

/// How stage towers turn into probabilities and which probability each loss term supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// ESMM: tower k gives the conditional logit; p_k = q_1 * ... * q_k is supervised on all rows.
    #[default]
    CumulativeProduct,
}

/// What the towers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepresentationKind {
    /// One set of embedding tables, read by every stage's tower.
    #[default]
    SharedEmbeddings,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenseOptimizerKind {
    #[default]
    Adam,
    Adamw,
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingOptimizerKind {
    /// One accumulator per row: G += mean(g^2); w -= lr * g / (sqrt(G) + eps).
    #[default]
    RowwiseAdagrad,
    /// Adam moments per element, updated only for touched rows (bias correction by global step).
    LazyAdam,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InconsistentRows {
    /// Drop rows that reached a stage without the one before; the count is reported.
    #[default]
    Drop,
    /// Refuse the data, naming the first such row.
    Error,
}
