//! The closed sets of values a pipeline key can take. Shared by the YAML structs (`raw`) and the
//! validated pipeline, so code outside `config` never needs the raw structs.

use serde::{Deserialize, Serialize};

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
    /// The training split's quantiles cut the values into `buckets` intervals; each interval
    /// (and a missing value) is a row of the feature's own embedding table.
    QuantileBuckets,
}

/// Which tokens a multi-valued row longer than `max_len` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepTokens {
    #[default]
    First,
    Last,
}

/// What a multi-valued feature's empty list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyList {
    /// A state of its own, with its own embedding row.
    #[default]
    Own,
    /// The same as a missing value (the missing-value row).
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// The training median (after the transform's log, before scaling): one extreme value
    /// cannot move it far, as it moves a mean.
    #[default]
    Median,
    /// The training mean (after the transform's log, before scaling).
    Mean,
    Zero,
    /// Reject the data, naming the first bad row.
    Error,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Gelu,
    Silu,
    Sigmoid,
}

/// A named model. Validation expands it into each stage's supervision; nothing after validation
/// sees the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPreset {
    /// ESMM (Ma et al., SIGIR 2018): tower k gives the logit of the conditional q_k; the
    /// cumulative p_k = q_1 * ... * q_k is supervised with the cumulative label on all rows.
    #[default]
    Esmm,
    /// The classic conversion model: stage 1 on all rows, every later stage's conditional q_k on
    /// the rows that reached its parent only (the sample selection bias ESMM removes).
    Naive,
    /// Plain multi-task learning: each stage's tower trained on its own label column over all
    /// rows, as if the stages were unrelated tasks (census-income style); p_k is still read as
    /// the product along the funnel.
    Independent,
    /// The ESMM paper's DIVISION baseline: towers give the cumulative p_k directly, each
    /// supervised on all rows; the conditional is p_k / p_parent clipped to [0, 1].
    Division,
    /// AITM (Xi et al., KDD 2021): cumulative p_k directly, an attention-based transfer from
    /// each stage's parent's representation, and the behavioural expectation calibrator.
    Aitm,
    /// ESCM² with inverse propensity weighting (Wang et al., SIGIR 2022): ESMM's entire-space
    /// terms plus a counterfactual term on each conditional, weighted by the inverse of the
    /// parent's predicted probability.
    Escm2Ips,
    /// ESCM² doubly robust: as `escm2_ips`, with an imputation head per stage that predicts each
    /// row's conditional loss, so rows that did not reach the parent contribute too.
    Escm2Dr,
}

impl ModelPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelPreset::Esmm => "esmm",
            ModelPreset::Naive => "naive",
            ModelPreset::Independent => "independent",
            ModelPreset::Division => "division",
            ModelPreset::Aitm => "aitm",
            ModelPreset::Escm2Ips => "escm2_ips",
            ModelPreset::Escm2Dr => "escm2_dr",
        }
    }
}

/// What the towers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepresentationKind {
    /// One set of embedding tables, read by every stage's tower.
    #[default]
    SharedEmbeddings,
    /// One set of tables per stage (the ESMM paper's ESMM-NS ablation): each stage's tower
    /// reads only its own, so a stage with few positives gets no help from the others.
    PerStageEmbeddings,
}

/// The shape of a learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Cosine,
    Step,
}

/// How the stages' losses are weighed against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossWeighting {
    /// Each stage's `loss_weight`, fixed.
    #[default]
    Fixed,
    /// Uncertainty weighting (after Kendall et al., CVPR 2018), in the simplified form most
    /// libraries use: Σ_k exp(−s_k) L_k + s_k with a learned log-variance s_k per stage,
    /// starting at 0 (Kendall's classification form has s_k / 2; the weights are the same).
    Uncertainty,
    /// GradNorm (Chen et al., ICML 2018): Σ_k w_k L_k with weights moved every step so that
    /// each stage's gradient norm at the shared input tracks its relative training rate.
    #[serde(rename = "gradnorm")]
    GradNorm,
}

/// A block between the embeddings and the towers, shared by the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BottomKind {
    /// One MLP; every stage's tower reads its output.
    SharedBottom,
    /// Multi-gate mixture of experts (Ma et al., KDD 2018): expert MLPs, and per stage a
    /// softmax gate over them; stage k's tower reads Σ_e g_k,e · expert_e(x).
    Mmoe,
    /// Progressive layered extraction (Tang et al., RecSys 2020): per level, shared experts and
    /// each stage's own experts; stage k's gate mixes its own and the shared experts, and a
    /// shared gate mixes all of them for the next level.
    Ple,
    /// One MLP per group of stages (`groups`): the stages of a group read its MLP, and the
    /// groups share only the embeddings.
    StageGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenseOptimizerKind {
    #[default]
    Adam,
    Adamw,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InconsistentRows {
    /// Drop rows that reached a stage without the one before; the count is reported.
    #[default]
    Drop,
    /// Refuse the data, naming the first such row.
    Error,
}
