//! The trainer: seeded shuffling, the step (`step`), per-epoch validation, early stopping with
//! the best weights kept on disk, final test metrics, and the run directory. It reports through
//! a `Reporter` and never prints.

mod control;
mod divergence;
mod early;
mod finish;
mod gradients;
pub mod gradnorm;
pub mod memory;
mod parallel;
pub mod resume;
mod start;
pub mod step;
pub mod warm;

use std::path::Path;
use std::time::Instant;

use crate::checkpoint::RunWriter;
use crate::collective::{Collective, Single};
use crate::config::{Measure, Pipeline};
use crate::data::{Splits, drive};
use crate::error::{Error, Result};
use crate::funnel::Prediction;
use crate::metrics::{EpochRecord, RunMetrics, StageLoss, StageMetrics};
use crate::model::FunnelModel;
use crate::optim::DenseOptimizer;
use crate::report::{EpochSummary, Reporter};
use crate::rng::Rng;
use crate::scoring::evaluate_dataset;
use control::interrupted;
pub use control::{Control, Start};
use divergence::{base_rate_loss, diverged};
use gradnorm::GradNorm;
use step::Path as StepPath;

/// Value of the early-stopping monitor, oriented so that larger is better.
fn monitor_score(p: &Pipeline, m: &[StageMetrics]) -> Option<f64> {
    let es = p.train.early_stopping.as_ref()?;
    let s = &m[es.stage];
    let block = match es.prediction {
        Prediction::Cumulative => &s.cumulative,
        Prediction::Conditional => &s.conditional,
    };
    match es.measure {
        Measure::Auc => block.auc,
        Measure::Logloss => block.logloss.map(|l| -l),
    }
}

/// Running sums of one epoch's batch losses (saved in a checkpoint, so that a resumed epoch's
/// mean is the uninterrupted one's).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLoss {
    total: f64,
    stages: Vec<f64>,
    batches: usize,
}

impl EpochLoss {
    fn new(stages: usize) -> Self {
        EpochLoss {
            total: 0.0,
            stages: vec![0.0; stages],
            batches: 0,
        }
    }

    fn add(&mut self, total: f64, stages: &[f64]) {
        self.total += total;
        for (s, v) in self.stages.iter_mut().zip(stages) {
            *s += v;
        }
        self.batches += 1;
    }

    fn mean(&self) -> f64 {
        self.total / self.batches.max(1) as f64
    }

    /// Each stage's mean loss, with its learned weight at the epoch's end when there is one.
    fn stage_means(&self, p: &Pipeline, weights: Option<&[f64]>) -> Vec<StageLoss> {
        p.stages
            .iter()
            .zip(&self.stages)
            .enumerate()
            .map(|(k, (s, v))| StageLoss {
                stage: s.name.clone(),
                loss: v / self.batches.max(1) as f64,
                weight: weights.map(|w| w[k]),
            })
            .collect()
    }
}

/// Train `p` on prepared splits, writing the run to `out` (with `Start::Resume`, continuing
/// the run there from its checkpoint). A checkpoint is written after every epoch, every
/// `train.checkpoint_every_steps` steps, and when `control` asks to stop: after the step in
/// progress, or, at an epoch's last step, after the epoch's validation and checkpoint; training
/// then ends with `Error::Interrupted`. Returns the metrics.
pub fn train(
    p: &Pipeline,
    splits: &Splits,
    out: &Path,
    start: Start,
    control: &Control,
    report: &mut dyn Reporter,
) -> Result<RunMetrics> {
    memory::check(p, splits)?;
    // One process: it holds the right to write the run directory.
    let collective: &dyn Collective = &Single;
    let root = collective
        .root()
        .ok_or_else(|| Error::Internal("a single process is rank 0".into()))?;
    let run = match start {
        Start::Fresh => RunWriter::create(out, p, &splits.encoders, &root)?,
        Start::Resume => RunWriter::reopen(out, &splits.encoders, &root)?,
    };
    let mut model = FunnelModel::new(p, &splits.encoders)?;
    let mut dense = DenseOptimizer::new(model.params().vars(), &p.train.optimizer)?
        .without_decay(&model.undecayed())
        .with_clipping(p.train.clip_grad_norm);
    let mut state = start::initial_state(p, splits, start, &run, &mut model, &mut dense, report)?;
    let path = StepPath::for_model(&model);
    let source = splits.train.source(p.train.shuffle);
    let seed = p.train.seed;
    let per_epoch = source.batches_per_epoch(p.train.batch_size);
    let base_loss = base_rate_loss(&splits.train, p.stages.len());
    let mut stopped_early = false;
    while state.epoch <= p.train.epochs && !stopped_early {
        let epoch = state.epoch;
        let clock = Instant::now();
        // Seconds of this epoch spent writing checkpoints: not training time.
        let mut writing = 0.0f64;
        let mut dropout = Rng::stream(seed, &format!("dropout/{epoch}"));
        step::skip_steps(&mut dropout, state.step);
        report.epoch_started(epoch, p.train.epochs, source.rows());
        // Within the steps a first signal only asks: the loop stops after its step, with a
        // checkpoint. Everywhere else (writing the run's files, validation, the finish) a
        // signal ends the process at once, the last checkpoint kept.
        let cooperative = crate::interrupt::cooperate();
        let batches = source.epoch(seed, epoch, p.train.batch_size, state.step);
        drive(batches, |batch| {
            if let Some(schedule) = &p.train.lr_schedule {
                let at = (epoch - 1) * per_epoch + state.step;
                dense.set_lr_scale(schedule.factor(at, p.train.epochs * per_epoch, epoch));
            }
            let (loss, stage_losses) = step::step(
                &mut model,
                &mut dense,
                &batch,
                &mut dropout,
                path,
                state.gradnorm.as_mut(),
                collective,
            )?;
            state.loss.add(loss, &stage_losses);
            state.step += 1;
            let first = *state.first_loss.get_or_insert(loss);
            if let Some(against) = diverged(loss, first, base_loss) {
                return Err(Error::Diverged {
                    dir: out.to_path_buf(),
                    epoch,
                    step: state.step,
                    loss,
                    against,
                });
            }
            report.batch(batch.rows, loss);
            // At the epoch's last step, a stop waits for the epoch's own checkpoint.
            let every = p.train.checkpoint_every_steps;
            let signal = match state.step < per_epoch {
                true => control.stop_for((epoch - 1) * per_epoch + state.step, collective),
                false => None,
            };
            if signal.is_some() || every.is_some_and(|n| state.step.is_multiple_of(n)) {
                let write = Instant::now();
                let running = clock.elapsed().as_secs_f64() - writing;
                resume::checkpoint(
                    &run,
                    &model,
                    &dense,
                    &mut state,
                    control.checkpoint_pause,
                    running,
                )?;
                writing += write.elapsed().as_secs_f64();
            }
            match signal {
                Some(signal) => Err(interrupted(signal, out, &state)),
                None => Ok(()),
            }
        })?;
        drop(cooperative);
        let train_loss = state.loss.mean();
        let secs = clock.elapsed().as_secs_f64() - writing;
        report.epoch_finished(&EpochSummary {
            epoch,
            epochs: p.train.epochs,
            rows: source.rows(),
            secs,
            train_loss,
        });
        state.train_s += secs;
        let clock = Instant::now();
        let valid = match &splits.valid {
            Some(v) => {
                let m = evaluate_dataset(&model, p, v)?;
                report.metrics(&format!("valid, epoch {epoch}"), &m);
                Some(m)
            }
            None => None,
        };
        state.evaluate_s += clock.elapsed().as_secs_f64();
        let score = valid.as_deref().and_then(|m| monitor_score(p, m));
        let weights = state.gradnorm.as_ref().map(GradNorm::weights);
        state.history.push(EpochRecord {
            epoch,
            train_loss,
            train_stage_loss: state.loss.stage_means(p, weights),
            valid,
        });
        let counters = early::Counters {
            best: &mut state.best,
            best_epoch: &mut state.best_epoch,
            since_best: &mut state.since_best,
        };
        let es = p.train.early_stopping.as_ref();
        match early::judge(es, score, epoch, counters) {
            early::Verdict::Keep => run.save_weights(&model)?,
            early::Verdict::Undefined => {
                if let (1, Some(es)) = (epoch, es) {
                    report.warning(&format!(
                        "early stopping is off: `{}` is undefined on the validation split (no positives, no negatives or no rows); the last epoch is kept",
                        es.monitor
                    ));
                }
                run.save_weights(&model)?;
            }
            early::Verdict::Worse { stop: false } => {}
            early::Verdict::Worse { stop: true } => {
                if let Some(es) = es {
                    report.notice(&format!(
                        "early stopping: `{}` has not improved for {} epoch(s); best epoch {}",
                        es.monitor, es.patience, state.best_epoch
                    ));
                }
                stopped_early = true;
            }
        }
        (state.epoch, state.step) = (epoch + 1, 0);
        state.loss = EpochLoss::new(model.stages());
        if !stopped_early && state.epoch <= p.train.epochs {
            resume::checkpoint(
                &run,
                &model,
                &dense,
                &mut state,
                control.checkpoint_pause,
                0.0,
            )?;
            if let Some(signal) = control.stop_for(epoch * per_epoch, collective) {
                return Err(interrupted(signal, out, &state));
            }
        }
    }
    finish::finish(
        p,
        splits,
        &run,
        &mut model,
        state,
        control.no_report,
        report,
    )
}
