//! Loss weighting: learned weights need a loss on every stage, GradNorm needs a shared input,
//! and GradNorm's own block is checked and written out with its defaults.

use super::Checker;
use crate::config::choices::{LossWeighting, RepresentationKind};
use crate::config::pipeline::GradNormSpec;
use crate::config::raw::*;
use crate::error::Result;
use crate::funnel::Funnel;

impl Checker<'_> {
    /// Check `model.loss_weighting` against the funnel, filling `model.gradnorm` in `raw` (the
    /// resolved pipeline) when GradNorm is on and the file left it out.
    pub(super) fn loss_weighting(
        &self,
        raw: &mut RawModel,
        funnel: &Funnel,
    ) -> Result<Option<GradNormSpec>> {
        let weighting = raw.loss_weighting;
        let name = match weighting {
            LossWeighting::Fixed => "",
            LossWeighting::Uncertainty => "uncertainty weighting",
            LossWeighting::GradNorm => "GradNorm",
        };
        if weighting != LossWeighting::Fixed
            && let Some(k) = funnel
                .order()
                .find(|&k| funnel.supervision(k).stage_weight == 0.0)
        {
            let why = match weighting {
                LossWeighting::GradNorm => "its gradient norm is 0 and its training rate 0 / 0",
                _ => "its log-variance would fall without bound",
            };
            return Err(self.err(
                &format!("stages[{k}].loss_weight"),
                format!(
                    "{name} learns a weight for each stage's loss, but this stage has none (loss_weight 0): {why}"
                ),
                "give the stage a positive loss_weight, or use `loss_weighting: fixed`",
            ));
        }
        if weighting != LossWeighting::GradNorm {
            if raw.gradnorm.is_some() {
                return Err(self.err(
                    "model.gradnorm",
                    "`model.gradnorm` holds settings of `loss_weighting: gradnorm`",
                    "remove `model.gradnorm`, or set `loss_weighting: gradnorm`",
                ));
            }
            return Ok(None);
        }
        if raw.representation == RepresentationKind::PerStageEmbeddings {
            return Err(self.err(
                "model.loss_weighting",
                "GradNorm balances the stages' gradients at the input they share, but `per_stage_embeddings` gives each stage its own",
                "use `representation: shared_embeddings`, or another `loss_weighting`",
            ));
        }
        if funnel.len() < 2 {
            return Err(self.err(
                "model.loss_weighting",
                "GradNorm balances two or more stages' losses; this funnel has one stage",
                "use `loss_weighting: fixed`",
            ));
        }
        let RawGradNorm { alpha, lr } = raw.gradnorm.get_or_insert_with(RawGradNorm::default);
        if !(0.0..=100.0).contains(alpha) {
            return Err(self.err(
                "model.gradnorm.alpha",
                format!("alpha must be a number in [0, 100], got {alpha}"),
                "the GradNorm paper uses 0.12 to 3; 1.5 is the default",
            ));
        }
        if !(*lr > 0.0 && *lr <= 10.0) {
            return Err(self.err(
                "model.gradnorm.lr",
                format!("lr must be a number in (0, 10], got {lr}"),
                "0.025 is the default",
            ));
        }
        Ok(Some(GradNormSpec {
            alpha: *alpha,
            lr: *lr,
        }))
    }
}
