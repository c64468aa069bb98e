//! The `stages` and `model` blocks as written: each stage's label and tower, and the model preset.

use serde::{Deserialize, Serialize};

use crate::config::choices::{
    Activation, BottomKind, LabelMeaning, LossWeighting, ModelPreset, RepresentationKind,
};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: String,
    /// The label block, or the name of a 0/1 column alone (`label: click`).
    #[serde(deserialize_with = "super::shorthand::one")]
    pub label: RawLabel,
    #[serde(default)]
    pub tower: RawTower,
    #[serde(default = "unit")]
    pub loss_weight: f64,
    /// Column holding the true conditional probability of this stage (synthetic data): enables
    /// evaluation against the truth over all rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    /// The next stage does not require this one (ESM²: cart, between click and buy): the next
    /// stage's parent is this stage's parent, and its conditional mixes "via this stage" and
    /// "without it".
    #[serde(default)]
    pub optional: bool,
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

impl super::Shorthand for RawLabel {
    const EXPECTING: &'static str =
        "a 0/1 column's name, or a block of keys (`column`, `positive`, `negative`, `meaning`)";
    fn from_shorthand(column: &str) -> Self {
        RawLabel {
            column: column.to_string(),
            positive: None,
            negative: None,
            meaning: LabelMeaning::default(),
        }
    }
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
    /// DCN-v2 cross layers before the MLP (Wang et al., WWW 2021); 0 is a plain MLP tower.
    #[serde(default)]
    pub cross_layers: usize,
    /// DeepFM: add the factorisation-machine interaction of the embedded fields (categorical
    /// features and bucketed numerics) to the tower's logit; they must share one width.
    #[serde(default)]
    pub fm: bool,
}

impl Default for RawTower {
    fn default() -> Self {
        RawTower {
            hidden: default_hidden(),
            activation: Activation::default(),
            dropout: 0.0,
            cross_layers: 0,
            fm: false,
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![64, 32]
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The model: `esmm` (default), `naive`, `independent`, `division`, `aitm`, `escm2_ips`
    /// or `escm2_dr`; see docs/models.md.
    #[serde(default)]
    pub preset: ModelPreset,
    #[serde(default)]
    pub representation: RepresentationKind,
    /// `fixed` (each stage's `loss_weight`), `uncertainty` (learned log-variances on top) or
    /// `gradnorm` (weights moved every step to balance the stages' gradient norms).
    #[serde(default)]
    pub loss_weighting: LossWeighting,
    /// A block between the embeddings and the towers (none by default: ESMM's towers read the
    /// embeddings directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom: Option<RawBottom>,
    /// The spelling of `preset: esmm` before presets existed (`head: cumulative_product`), so
    /// that older pipelines and run directories still load; never written out.
    #[serde(default, skip_serializing)]
    pub head: Option<LegacyHead>,
    /// Settings of `aitm` (only with that preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aitm: Option<RawAitm>,
    /// Settings of `loss_weighting: gradnorm` (only with it; written out with its defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradnorm: Option<RawGradNorm>,
    /// Settings of `escm2_ips` and `escm2_dr` (only with those presets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escm2: Option<RawEscm2>,
    /// DIN's attention over `features.sequences` (written out with its defaults when the
    /// pipeline has sequences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub din: Option<RawDin>,
}

/// DIN's activation unit (Zhou et al., KDD 2018): an MLP scoring each history token against
/// the target from [h, t, h − t, h ⊙ t].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDin {
    /// Hidden layers of the activation unit (the authors' code: 80, 40).
    #[serde(default = "default_din_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default = "default_din_activation")]
    pub activation: Activation,
    /// One activation unit per stage (each stage's pooled history its own) instead of one
    /// shared by the stages.
    #[serde(default)]
    pub per_stage: bool,
}

impl Default for RawDin {
    fn default() -> Self {
        RawDin {
            hidden: default_din_hidden(),
            activation: default_din_activation(),
            per_stage: false,
        }
    }
}

fn default_din_hidden() -> Vec<usize> {
    vec![80, 40]
}

/// ReLU, not the authors' sigmoid: on the generated history funnel the sigmoid unit gained
/// nothing over a summed history where the ReLU unit did (`benches/din.sh`, docs/models.md).
fn default_din_activation() -> Activation {
    Activation::Relu
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyHead {
    /// ESMM: what `preset: esmm` means now.
    CumulativeProduct,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBottom {
    pub kind: BottomKind,
    /// Hidden layers of the shared MLP, or of each expert.
    #[serde(default = "default_bottom_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub dropout: f64,
    /// `mmoe`: the number of experts (written out as 4 when left out); `ple`: each stage's own
    /// experts per level (written out as 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<usize>,
    /// `ple`: shared experts per level (written out as 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_experts: Option<usize>,
    /// `ple`: extraction levels (written out as 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<usize>,
    /// `stage_groups`: the stages of each group, by name; every stage in exactly one group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Vec<String>>>,
}

fn default_bottom_hidden() -> Vec<usize> {
    vec![64]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGradNorm {
    /// α, the strength of the pull towards equal training rates (the paper uses 0.12 to 3).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Learning rate of the weights' own Adam.
    #[serde(default = "default_gradnorm_lr")]
    pub lr: f64,
}

impl Default for RawGradNorm {
    fn default() -> Self {
        RawGradNorm {
            alpha: default_alpha(),
            lr: default_gradnorm_lr(),
        }
    }
}

fn default_alpha() -> f64 {
    1.5
}

fn default_gradnorm_lr() -> f64 {
    0.025
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAitm {
    /// λ of the calibrator λ · mean(max(p_k − p_parent, 0)); 0 switches it off.
    #[serde(default = "default_calibrator")]
    pub calibrator: f64,
}

impl Default for RawAitm {
    fn default() -> Self {
        RawAitm {
            calibrator: default_calibrator(),
        }
    }
}

fn default_calibrator() -> f64 {
    0.6
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscm2 {
    /// Weight of the counterfactual (inverse-propensity) term of each conditional.
    #[serde(default = "half")]
    pub counterfactual_weight: f64,
    /// Weight of the global (entire-space cumulative) term of each stage after the first.
    #[serde(default = "half")]
    pub global_weight: f64,
    /// Propensities below this count as this (before the inverse is taken).
    #[serde(default = "default_floor")]
    pub propensity_floor: f64,
    /// Largest inverse-propensity weight.
    #[serde(default = "default_max_weight")]
    pub max_weight: f64,
    /// Divide the counterfactual term by the sum of its weights instead of the batch size
    /// (`escm2_ips` only; written out as `false` for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_normalised: Option<bool>,
    /// Weight of the imputation loss relative to the doubly robust term (`escm2_dr` only;
    /// written out as 1.0 for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imputation_weight: Option<f64>,
}

impl Default for RawEscm2 {
    fn default() -> Self {
        RawEscm2 {
            counterfactual_weight: half(),
            global_weight: half(),
            propensity_floor: default_floor(),
            max_weight: default_max_weight(),
            self_normalised: None,
            imputation_weight: None,
        }
    }
}

fn half() -> f64 {
    0.5
}
fn default_floor() -> f64 {
    1e-6
}
fn default_max_weight() -> f64 {
    15.0
}
