//! The `stages` and `model` blocks as written: each stage's label and tower, and the model preset.

use serde::{Deserialize, Serialize};

use crate::config::choices::{Activation, LabelMeaning, ModelPreset, RepresentationKind};

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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The model: `esmm` (default) or `naive`; see docs/pipeline.md.
    #[serde(default)]
    pub preset: ModelPreset,
    #[serde(default)]
    pub representation: RepresentationKind,
}
