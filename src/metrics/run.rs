//! `metrics.json`: what a run measured, written by `train` and read back by later tools.

use serde::{Deserialize, Serialize};

use super::StageMetrics;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean over the epoch's batches of the weighted total loss.
    pub train_loss: f64,
    /// Mean over the epoch's batches of each stage's weighted loss (its terms times their
    /// weights, `loss_weight` included, plus its calibrator term), by stage; with fixed
    /// weighting they sum to `train_loss` (learned weights weigh them first).
    pub train_stage_loss: Vec<StageLoss>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Vec<StageMetrics>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLoss {
    pub stage: String,
    pub loss: f64,
    /// GradNorm's weight of the stage at the epoch's end (the objective is Σ weight · loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// Where a run's time went. The only part of `metrics.json` that differs between runs with the
/// same seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub read_s: f64,
    pub encode_s: f64,
    pub train_s: f64,
    pub evaluate_s: f64,
    /// Training rows processed per second of `train_s`.
    pub train_samples_per_s: f64,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<Vec<StageMetrics>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<StageMetrics>>,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub history: Vec<EpochRecord>,
    pub timing: Timing,
    /// SHA-256 of the validation and test rows (their file, which rows, their labels): two
    /// runs with the same value were scored on the same rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_rows: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_rows: Option<String>,
    /// What the run warned about while reading and encoding its data (constant features,
    /// truncated token lists, dropped rows, ...), as printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
