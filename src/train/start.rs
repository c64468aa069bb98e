//! The trainer's state at the first step: fresh (warm-started from another run's weights when
//! the pipeline asks), or read from the run's checkpoint after checking that the pipeline, the
//! encoders and the data are the ones the run started with.

use std::path::Path;

use super::gradnorm::GradNorm;
use super::resume::{self, TrainerState};
use super::{EpochLoss, Start, warm};
use crate::checkpoint::RunWriter;
use crate::config::Pipeline;
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::model::FunnelModel;
use crate::optim::DenseOptimizer;
use crate::report::Reporter;

pub(super) fn initial_state(
    p: &Pipeline,
    splits: &Splits,
    start: Start,
    run: &RunWriter,
    model: &mut FunnelModel,
    dense: &mut DenseOptimizer,
    report: &mut dyn Reporter,
) -> Result<TrainerState> {
    let out: &Path = &run.dir;
    Ok(match start {
        Start::Fresh => {
            if let Some(dir) = &p.train.warm_start {
                let r = warm::load(model, &splits.encoders, dir)?;
                report.notice(&r.summary(dir));
            }
            TrainerState {
                pipeline_sha256: run.pipeline_sha256.clone(),
                encoders_sha256: run.encoders_sha256.clone(),
                data: splits.fingerprints.clone(),
                data_cache: splits.cache.clone(),
                epoch: 1,
                step: 0,
                first_loss: None,
                loss: EpochLoss::new(model.stages()),
                history: Vec::new(),
                best: None,
                best_epoch: 0,
                since_best: 0,
                train_s: 0.0,
                evaluate_s: 0.0,
                dense_steps: 0,
                store_steps: Vec::new(),
                gradnorm: p
                    .gradnorm
                    .as_ref()
                    .map(|spec| GradNorm::new(model.stages(), spec)),
            }
        }
        Start::Resume => {
            let state = resume::load(out, model, dense)?;
            if (&state.pipeline_sha256, &state.encoders_sha256)
                != (&run.pipeline_sha256, &run.encoders_sha256)
            {
                // pipeline.yaml was checked before the data was read (`reopen_check`).
                return Err(Error::run(
                out,
                "encoders.json was changed after the checkpoint was written: its SHA-256 is not the one the checkpoint recorded",
            )
            .with_hint(format!(
                "restore the run's files, or train its pipeline as a new run: `funnel train {} --out NEW_DIR`",
                out.join(crate::checkpoint::PIPELINE).display()
            )));
            }
            // Same encoders are not enough: edited labels, or new ids of a hashed feature,
            // leave them unchanged and would mix two data sets in one run.
            if state.data.is_empty() {
                return Err(Error::run(
                out,
                "cannot resume: the checkpoint was written by an earlier funnel version, which did not record the data's fingerprints, so the data cannot be checked to be the run's",
            )
            .with_hint("finish the run with the version that started it, or train it again"));
            }
            if let Some(why) = crate::data::changed(&state.data, &splits.fingerprints) {
                return Err(Error::run(
                    out,
                    format!("cannot resume: the data changed since the run started: {why}"),
                )
                .with_hint("restore the data the run was started on, or train a new run"));
            }
            report.notice(&format!(
                "resuming {}: epoch {}, after step {}",
                out.display(),
                state.epoch,
                state.step
            ));
            state
        }
    })
}
