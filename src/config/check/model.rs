//! The `model` block: the preset and its settings. A settings block for another preset is an
//! error; the preset's own block is written out with its defaults in the resolved pipeline.

use super::Checker;
use crate::config::choices::{BottomKind, ModelPreset, RepresentationKind};
use crate::config::pipeline::{BottomSpec, MAX_WIDTH, TowerSpec};
use crate::config::raw::*;
use crate::error::Result;
use crate::funnel::Propensity;

/// The checked model settings the preset expansion reads.
pub(super) struct ModelSettings {
    pub bottom: Option<BottomSpec>,
    pub preset: ModelPreset,
    /// AITM's calibrator λ (0: off).
    pub calibrator: f64,
    pub escm2: Escm2,
}

pub(super) struct Escm2 {
    pub imputation_weight: f64,
    pub counterfactual_weight: f64,
    pub global_weight: f64,
    pub propensity: Propensity,
}

impl Checker<'_> {
    /// Check `model.bottom`, writing the expert count out for `mmoe`, over the stages named
    /// `stages`.
    fn bottom(
        &self,
        b: &mut RawBottom,
        representation: RepresentationKind,
        stages: &[&str],
    ) -> Result<BottomSpec> {
        let RawBottom {
            kind,
            hidden,
            activation,
            dropout,
            experts,
            shared_experts,
            levels,
            groups,
        } = b;
        if *kind != BottomKind::Ple {
            for (key, given) in [
                ("shared_experts", shared_experts.is_some()),
                ("levels", levels.is_some()),
            ] {
                if given {
                    return Err(self.err(
                        &format!("model.bottom.{key}"),
                        format!("`{key}` applies to `ple` only"),
                        format!("remove `{key}`, or set `kind: ple`"),
                    ));
                }
            }
        }
        if representation == RepresentationKind::PerStageEmbeddings {
            return Err(self.err(
                "model.bottom",
                "a bottom shares one block between the stages, but `per_stage_embeddings` gives each stage its own input",
                "remove `model.bottom`, or use `representation: shared_embeddings`",
            ));
        }
        if hidden.is_empty() || hidden.iter().any(|&h| h == 0 || h > MAX_WIDTH) {
            return Err(self.err(
                "model.bottom.hidden",
                format!("a bottom needs at least one layer, each of width 1 to {MAX_WIDTH}"),
                "e.g. `hidden: [128, 64]`",
            ));
        }
        if !(0.0..1.0).contains(dropout) {
            return Err(self.err(
                "model.bottom.dropout",
                format!("dropout must be in [0, 1), got {dropout}"),
                "0.1 drops one activation in ten while training",
            ));
        }
        let experts = match (*kind, *experts) {
            (BottomKind::SharedBottom | BottomKind::StageGroups, Some(_)) => {
                return Err(self.err(
                    "model.bottom.experts",
                    "`experts` applies to `mmoe` only",
                    "remove `experts`, or set `kind: mmoe`",
                ));
            }
            (BottomKind::SharedBottom | BottomKind::StageGroups, None) => 1,
            (BottomKind::Mmoe, Some(e)) if !(2..=64).contains(&e) => {
                return Err(self.err(
                    "model.bottom.experts",
                    format!("an MMoE needs between 2 and 64 experts, got {e}"),
                    "4 to 8 experts are common; one expert is `kind: shared_bottom`",
                ));
            }
            (BottomKind::Mmoe, Some(e)) => e,
            (BottomKind::Mmoe, None) => *experts.insert(4),
            (BottomKind::Ple, e) => *experts.get_or_insert(e.unwrap_or(1)),
        };
        let (shared, depth) = match kind {
            BottomKind::Ple => (*shared_experts.get_or_insert(1), *levels.get_or_insert(2)),
            _ => (0, 1),
        };
        for (key, v, max) in [
            ("experts", experts, 16),
            ("shared_experts", shared, 16),
            ("levels", depth, 4),
        ] {
            if *kind == BottomKind::Ple && !(1..=max).contains(&v) {
                return Err(self.err(
                    &format!("model.bottom.{key}"),
                    format!("`{key}` must be between 1 and {max} for `ple`, got {v}"),
                    "PLE's paper uses one or two of each kind of expert and two levels",
                ));
            }
        }
        let groups = self.stage_groups(*kind, groups.as_deref(), stages)?;
        Ok(BottomSpec {
            kind: *kind,
            mlp: TowerSpec {
                hidden: hidden.clone(),
                activation: *activation,
                dropout: *dropout,
                cross_layers: 0,
                fm: false,
            },
            experts,
            shared_experts: shared,
            levels: depth,
            groups,
        })
    }

    /// `model.bottom.groups` as stage ids: given with `stage_groups` only, each group a
    /// non-empty list of stage names, every stage in exactly one group.
    fn stage_groups(
        &self,
        kind: BottomKind,
        groups: Option<&[Vec<String>]>,
        stages: &[&str],
    ) -> Result<Vec<Vec<usize>>> {
        const AT: &str = "model.bottom.groups";
        let example =
            "e.g. `groups: [[click], [cart, buy]]`: the stages of each group read one MLP";
        let groups = match (kind, groups) {
            (BottomKind::StageGroups, Some(g)) => g,
            (BottomKind::StageGroups, None) => {
                return Err(self.err(
                    "model.bottom",
                    "`kind: stage_groups` needs `groups`, the stages of each group",
                    example,
                ));
            }
            (_, Some(_)) => {
                return Err(self.err(
                    AT,
                    "`groups` applies to `stage_groups` only",
                    "remove `groups`, or set `kind: stage_groups`",
                ));
            }
            (_, None) => return Ok(Vec::new()),
        };
        let mut seen = vec![false; stages.len()];
        let mut ids = Vec::with_capacity(groups.len());
        for (g, members) in groups.iter().enumerate() {
            if members.is_empty() {
                return Err(self.err(&format!("{AT}[{g}]"), "a group needs a stage", example));
            }
            let mut group = Vec::with_capacity(members.len());
            for (i, name) in members.iter().enumerate() {
                let at = format!("{AT}[{g}][{i}]");
                let Some(s) = stages.iter().position(|s| s == name) else {
                    return Err(self.err(
                        &at,
                        format!("`{name}` is not a stage"),
                        format!("the stages are {}", stages.join(", ")),
                    ));
                };
                if std::mem::replace(&mut seen[s], true) {
                    return Err(self.err(
                        &at,
                        format!("stage `{name}` is in two groups"),
                        "put every stage in exactly one group",
                    ));
                }
                group.push(s);
            }
            ids.push(group);
        }
        if let Some(s) = seen.iter().position(|&v| !v) {
            return Err(self.err(
                AT,
                format!("stage `{}` is in no group", stages[s]),
                "put every stage in exactly one group",
            ));
        }
        Ok(ids)
    }

    /// Check `model`, filling in the preset's own settings block in `raw` (the resolved
    /// pipeline) when the file left it out.
    pub(super) fn model(&self, raw: &mut RawModel, stages: &[&str]) -> Result<ModelSettings> {
        let RawModel {
            preset,
            representation,
            bottom,
            loss_weighting: _,
            head,
            aitm,
            escm2,
            gradnorm: _,
            din: _,
        } = raw;
        if head.is_some() && *preset != ModelPreset::Esmm {
            return Err(self.err(
                "model.head",
                format!(
                    "`head: cumulative_product` is the older spelling of `preset: esmm`, but the preset is `{}`",
                    preset.as_str()
                ),
                "remove `head`",
            ));
        }
        let bottom = match bottom {
            Some(b) => Some(self.bottom(b, *representation, stages)?),
            None => None,
        };
        let preset = *preset;
        let escm2_preset = matches!(preset, ModelPreset::Escm2Ips | ModelPreset::Escm2Dr);
        for (key, given, owns, owners) in [
            (
                "aitm",
                aitm.is_some(),
                preset == ModelPreset::Aitm,
                "`aitm`",
            ),
            (
                "escm2",
                escm2.is_some(),
                escm2_preset,
                "`escm2_ips` or `escm2_dr`",
            ),
        ] {
            if given && !owns {
                return Err(self.err(
                    &format!("model.{key}"),
                    format!(
                        "`model.{key}` holds settings of {owners}, but the preset is `{}`",
                        preset.as_str()
                    ),
                    format!("remove `model.{key}`, or set the preset to {owners}"),
                ));
            }
        }
        if preset == ModelPreset::Aitm && aitm.is_none() {
            *aitm = Some(RawAitm::default());
        }
        if escm2_preset {
            let block = escm2.get_or_insert_with(RawEscm2::default);
            // Each preset's own key, written out with its default in the resolved pipeline; the
            // other preset's key is an error.
            let (own, other, value) = match preset {
                ModelPreset::Escm2Dr => (
                    "imputation_weight",
                    "self_normalised",
                    block.self_normalised.is_some(),
                ),
                _ => (
                    "self_normalised",
                    "imputation_weight",
                    block.imputation_weight.is_some(),
                ),
            };
            if value {
                return Err(self.err(
                    &format!("model.escm2.{other}"),
                    format!("`{other}` does not apply to `{}`", preset.as_str()),
                    format!("remove the key; `{own}` is this preset's"),
                ));
            }
            if preset == ModelPreset::Escm2Dr {
                block.imputation_weight.get_or_insert(1.0);
            } else {
                block.self_normalised.get_or_insert(false);
            }
        }
        let RawAitm { calibrator } = aitm.clone().unwrap_or_default();
        if !(0.0..1e6).contains(&calibrator) {
            return Err(self.err(
                "model.aitm.calibrator",
                format!("calibrator must be a number in [0, 1e6), got {calibrator}"),
                "the AITM paper uses 0.6; 0 switches the calibrator off",
            ));
        }
        let RawEscm2 {
            counterfactual_weight,
            global_weight,
            propensity_floor,
            max_weight,
            self_normalised,
            imputation_weight,
        } = escm2.clone().unwrap_or_default();
        let (self_normalised, imputation_weight) = (
            self_normalised.unwrap_or(false),
            imputation_weight.unwrap_or(1.0),
        );
        for (key, v) in [
            ("counterfactual_weight", counterfactual_weight),
            ("global_weight", global_weight),
            ("imputation_weight", imputation_weight),
        ] {
            if !(0.0..1e6).contains(&v) {
                return Err(self.err(
                    &format!("model.escm2.{key}"),
                    format!("`{key}` must be a number in [0, 1e6), got {v}"),
                    "0.5 is the reference implementation's default",
                ));
            }
        }
        if !(propensity_floor > 0.0 && propensity_floor <= 1.0) {
            return Err(self.err(
                "model.escm2.propensity_floor",
                format!("propensity_floor must be in (0, 1], got {propensity_floor}"),
                "e.g. `propensity_floor: 0.000001`; `max_weight` caps the weights too",
            ));
        }
        if !(1.0..1e30).contains(&max_weight) {
            return Err(self.err(
                "model.escm2.max_weight",
                format!("max_weight must be a number >= 1, got {max_weight}"),
                "the reference implementation caps the inverse propensity at 15",
            ));
        }
        if preset == ModelPreset::Escm2Dr && counterfactual_weight == 0.0 {
            return Err(self.err(
                "model.escm2.counterfactual_weight",
                "`escm2_dr` with counterfactual_weight 0 trains no counterfactual term, and its imputation heads never learn",
                "use `preset: esmm` for the entire-space terms alone, or give the counterfactual term a weight",
            ));
        }
        Ok(ModelSettings {
            bottom,
            preset,
            calibrator,
            escm2: Escm2 {
                imputation_weight,
                counterfactual_weight,
                global_weight,
                propensity: Propensity {
                    floor: propensity_floor,
                    max_weight,
                    self_normalised,
                },
            },
        })
    }
}
