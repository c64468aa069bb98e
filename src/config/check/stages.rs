//! Stages and the model: labels, towers, loss weights, optional stages, and the preset expanded
//! into the funnel.

use std::collections::HashSet;

use super::model::ModelSettings;
use super::{Checker, check_name};
use crate::config::choices::{LabelMeaning, ModelPreset};
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::{Error, Result};
use crate::funnel::{Funnel, Label, Output, Prediction, Rows, Supervision, Term, Weighting};

/// What the model preset means for stage `k`: its loss terms and whether it reads its parent
/// through a transfer. The one place a model name becomes supervision.
fn expand(m: &ModelSettings, k: usize, weight: f64) -> (Supervision, Option<TransferSpec>) {
    use Prediction::{Conditional, Cumulative};
    use Rows::{All, ReachedParent};
    let first = k == 0;
    let terms = match m.preset {
        ModelPreset::Esmm | ModelPreset::Division | ModelPreset::Aitm => {
            vec![Term::unit(Cumulative, All, weight)]
        }
        ModelPreset::Independent => vec![Term::own(Conditional, weight)],
        ModelPreset::Naive if first => vec![Term::unit(Cumulative, All, weight)],
        ModelPreset::Naive => vec![Term::unit(Conditional, ReachedParent, weight)],
        ModelPreset::Escm2Ips | ModelPreset::Escm2Dr if first => {
            vec![Term::unit(Cumulative, All, weight)]
        }
        ModelPreset::Escm2Ips | ModelPreset::Escm2Dr => vec![
            Term {
                target: Conditional,
                label: Label::Reached,
                rows: ReachedParent,
                weighting: if m.preset == ModelPreset::Escm2Dr {
                    Weighting::DoublyRobust {
                        propensity: m.escm2.propensity,
                        imputation_weight: m.escm2.imputation_weight,
                    }
                } else {
                    Weighting::InversePropensity(m.escm2.propensity)
                },
                weight: weight * m.escm2.counterfactual_weight,
            },
            Term::unit(Cumulative, All, weight * m.escm2.global_weight),
        ],
    };
    let transfer = (m.preset == ModelPreset::Aitm && !first).then_some(TransferSpec::Aitm);
    (
        Supervision {
            terms,
            stage_weight: weight,
        },
        transfer,
    )
}

/// What the logits mean and whether the calibrator is on, by preset.
fn funnel_kind(m: &ModelSettings) -> (Output, Option<f64>) {
    match m.preset {
        ModelPreset::Esmm
        | ModelPreset::Naive
        | ModelPreset::Independent
        | ModelPreset::Escm2Ips
        | ModelPreset::Escm2Dr => (Output::Conditional, None),
        ModelPreset::Division => (Output::Cumulative, None),
        ModelPreset::Aitm => (Output::Cumulative, Some(m.calibrator)),
    }
}

impl Checker<'_> {
    /// One stage, on its own: its name, label, tower and loss weight.
    fn stage(
        &self,
        k: usize,
        stages: &[RawStage],
        model: &ModelSettings,
        names: &mut HashSet<String>,
    ) -> Result<StageSpec> {
        let RawStage {
            name,
            label,
            tower,
            loss_weight,
            truth,
            optional,
        } = &stages[k];
        let at = format!("stages[{k}]");
        if *optional {
            self.optional_stage(&at, k, stages, model)?;
        }
        check_name(self, &format!("{at}.name"), name)?;
        if !names.insert(name.clone()) {
            return Err(self.err(
                &format!("{at}.name"),
                format!("stage `{name}` is declared twice"),
                "stage names must be distinct",
            ));
        }
        let label = self.label(&at, k, label)?;
        let tower = self.tower(&at, tower)?;
        if !(*loss_weight >= 0.0 && *loss_weight < 1e30) {
            return Err(self.err(
                &format!("{at}.loss_weight"),
                format!("loss_weight must be a finite number >= 0, got {loss_weight}"),
                "1.0 weighs every stage equally",
            ));
        }
        Ok(StageSpec {
            name: name.clone(),
            label,
            tower,
            transfer: None,
            heads: Vec::new(),
            truth: truth.clone(),
        })
    }

    /// The stages' edge facts, and the funnel: parents in list order, each stage supervised as
    /// the model preset says.
    pub(super) fn stages(
        &self,
        stages: &[RawStage],
        model: &ModelSettings,
    ) -> Result<(Vec<StageSpec>, Funnel)> {
        if stages.is_empty() {
            return Err(self.err(
                "stages",
                "a funnel needs at least one stage",
                "list the stages in causal order, e.g. click then conversion",
            ));
        }
        // Every stage is checked, so one load reports each faulty one.
        let mut names = HashSet::new();
        let checked: Vec<_> = (0..stages.len())
            .map(|k| self.keep(self.stage(k, stages, model, &mut names)))
            .collect();
        let Some(mut out) = checked.into_iter().collect::<Option<Vec<_>>>() else {
            return Err(self.recorded());
        };
        let weights: Vec<f64> = stages.iter().map(|s| s.loss_weight).collect();
        if out.iter().any(|s| s.truth.is_some())
            && let Some(k) = out.iter().position(|s| s.truth.is_none())
        {
            return Err(self.err(
                &format!("stages[{k}]"),
                format!(
                    "stage `{}` has no `truth` column while other stages have one",
                    out[k].name
                ),
                "give every stage its truth column (e.g. `truth: true_<stage>`), or none",
            ));
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(self.err(
                "stages",
                "every stage has loss_weight 0, so nothing would be trained",
                "give at least one stage a positive loss_weight",
            ));
        }
        if model.preset == ModelPreset::Independent
            && let Some(k) =
                (1..out.len()).find(|&k| out[k].label.meaning != LabelMeaning::GivenPrevious)
        {
            return Err(self.err(
                &format!("stages[{k}].label.meaning"),
                format!(
                    "`independent` reads each stage's own column on every row, but stage `{}` records \"reached\", which is 0 wherever its parent was not reached",
                    out[k].name
                ),
                "for a funnel of \"reached\" columns use `preset: division` (each stage's cumulative probability on all rows); `independent` is for columns with a value on every row (`meaning: given_previous`)",
            ));
        }
        let mut supervision = Vec::with_capacity(out.len());
        for (k, stage) in out.iter_mut().enumerate() {
            let (s, transfer) = expand(model, k, weights[k]);
            stage.transfer = transfer;
            stage.heads = s.heads();
            supervision.push(s);
        }
        let (output, calibrator) = funnel_kind(model);
        let mut funnel = Funnel::chain(out.len(), |k| supervision[k].clone())
            .ok_or_else(|| Error::Internal("a chain's parents come first".into()))?
            .with_output(output)
            .with_calibrator(calibrator);
        for (k, _) in stages.iter().enumerate().filter(|(_, s)| s.optional) {
            funnel = funnel
                .with_optional(k)
                .ok_or_else(|| Error::Internal(format!("stage {k} was checked to be optional")))?;
        }
        Ok((out, funnel))
    }

    /// Where `optional: true` may stand: between a parent and a stage that does not require it.
    fn optional_stage(
        &self,
        at: &str,
        k: usize,
        stages: &[RawStage],
        model: &ModelSettings,
    ) -> Result<()> {
        let at = format!("{at}.optional");
        let problem = if k == 0 {
            Some((
                "the first stage cannot be optional: no stage comes before it".to_string(),
                "mark the stage between two others that the later one does not require (cart between click and buy)",
            ))
        } else if k + 1 == stages.len() {
            Some((
                "an optional stage needs a stage after it, the one that does not require it".into(),
                "remove `optional`, or add the later stage (buy after cart)",
            ))
        } else if stages[k - 1].optional {
            Some((
                "two optional stages in a row are not a funnel this model describes".into(),
                "mark only one of them optional",
            ))
        } else if model.preset == ModelPreset::Independent {
            Some((
                "`independent` trains each stage on its own column as an unrelated task, which cannot mix over an optional stage".into(),
                "use `esmm` (ESM²'s loss), `naive`, `escm2_ips` or `escm2_dr`, or remove `optional`",
            ))
        } else if funnel_kind(model).0 == Output::Cumulative {
            Some((
                format!(
                    "`{}` predicts cumulative probabilities, which cannot mix over an optional stage",
                    model.preset.as_str()
                ),
                "use `esmm` (ESM²'s loss), `naive`, `escm2_ips` or `escm2_dr`, or remove `optional`",
            ))
        } else {
            None
        };
        match problem {
            Some((message, hint)) => Err(self.err(&at, message, hint)),
            None => Ok(()),
        }
    }

    fn label(&self, at: &str, k: usize, l: &RawLabel) -> Result<LabelSpec> {
        let RawLabel {
            column,
            positive,
            negative,
            meaning,
        } = l;
        if k == 0 && *meaning == LabelMeaning::GivenPrevious {
            return Err(self.err(
                &format!("{at}.label.meaning"),
                "the first stage has no previous stage",
                "use `meaning: reached` (the default) for the first stage",
            ));
        }
        if positive.as_ref().is_some_and(|p| p.is_empty()) {
            return Err(self.err(
                &format!("{at}.label.positive"),
                "`positive` lists no values",
                "list the values that count as positive, or remove `positive` for a 0/1 column",
            ));
        }
        if negative.is_some() && positive.is_none() {
            return Err(self.err(
                &format!("{at}.label.negative"),
                "`negative` without `positive`",
                "declare `positive` too, or remove `negative` for a 0/1 column",
            ));
        }
        if let (Some(p), Some(n)) = (positive, negative)
            && let Some(both) = p.iter().find(|v| n.contains(v))
        {
            return Err(self.err(
                &format!("{at}.label.negative"),
                format!("value {both:?} is both positive and negative"),
                "remove it from one list",
            ));
        }
        Ok(LabelSpec {
            column: column.clone(),
            positive: positive.clone(),
            negative: negative.clone(),
            meaning: *meaning,
        })
    }

    fn tower(&self, at: &str, t: &RawTower) -> Result<TowerSpec> {
        let RawTower {
            hidden,
            activation,
            dropout,
            cross_layers,
            fm,
        } = t;
        if *cross_layers > 8 {
            return Err(self.err(
                &format!("{at}.tower.cross_layers"),
                format!("at most 8 cross layers, got {cross_layers}"),
                "DCN-v2 uses 2 or 3; each is a full input-width square matrix",
            ));
        }
        if hidden.iter().any(|&h| h == 0 || h > MAX_WIDTH) {
            return Err(self.err(
                &format!("{at}.tower.hidden"),
                format!("hidden layer sizes must be between 1 and {MAX_WIDTH}, got {hidden:?}"),
                "e.g. `hidden: [64, 32]`, or `[]` for a linear tower",
            ));
        }
        if !(0.0..1.0).contains(dropout) {
            return Err(self.err(
                &format!("{at}.tower.dropout"),
                format!("dropout must be in [0, 1), got {dropout}"),
                "0.1 drops one activation in ten while training",
            ));
        }
        Ok(TowerSpec {
            hidden: hidden.clone(),
            activation: *activation,
            dropout: *dropout,
            cross_layers: *cross_layers,
            fm: *fm,
        })
    }

    /// An FM tower needs two or more embedded fields (categorical or bucketed), all of one width.
    pub(super) fn check_fm(&self, stages: &[StageSpec], fields: &[(&str, usize)]) -> Result<()> {
        let Some(k) = stages.iter().position(|s| s.tower.fm) else {
            return Ok(());
        };
        let at = format!("stages[{k}].tower.fm");
        let Some(&(first, width)) = fields.first().filter(|_| fields.len() >= 2) else {
            return Err(self.err(
                &at,
                "an FM interaction needs at least two embedded features (categorical or `quantile_buckets`)",
                "declare more categorical features, or remove `fm`",
            ));
        };
        if let Some((name, dim)) = fields.iter().find(|f| f.1 != width) {
            return Err(self.err(
                &at,
                format!(
                    "an FM interaction needs every embedded feature at one width, but `{first}` has dim {width} and `{name}` has {dim}"
                ),
                "set one `features.embedding_dim` and remove the features' own `dim`",
            ));
        }
        Ok(())
    }
}
