//! The trainer: seeded shuffling, the step (`step`), per-epoch validation, early stopping with
//! the best weights kept on disk, final test metrics, and the run directory. It reports through
//! a `Reporter` and never prints.

pub mod gradnorm;
pub mod step;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::checkpoint::RunWriter;
use crate::config::{Measure, Pipeline};
use crate::data::{Dataset, Splits};
use crate::error::{Error, Result};
use crate::funnel::Prediction;
use crate::metrics::truth::evaluate_truth;
use crate::metrics::{EpochRecord, RunMetrics, StageLoss, StageMetrics, Timing, evaluate};
use crate::model::FunnelModel;
use crate::optim::DenseOptimizer;
use crate::report::{EpochSummary, Reporter};
use crate::rng::Rng;
use gradnorm::GradNorm;
use step::Path as StepPath;

/// Metrics of a labelled dataset; with truth columns, also the evaluation against the truth.
pub fn eval_dataset(model: &FunnelModel, p: &Pipeline, d: &Dataset) -> Result<Vec<StageMetrics>> {
    let logits = model.predict_logits(d, p.train.eval_batch_size)?;
    if logits.iter().any(|z| !z.is_finite()) {
        return Err(Error::Usage(format!(
            "the model predicts non-finite values on the {} split: training diverged; lower the learning rates",
            d.split
        )));
    }
    let names: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let mut m = evaluate(&p.funnel, &logits, &d.reached, &names);
    if !d.truth.is_empty() {
        for (s, t) in m
            .iter_mut()
            .zip(evaluate_truth(&p.funnel, &logits, &d.reached, &d.truth))
        {
            s.truth = Some(t);
        }
    }
    Ok(m)
}

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

/// Running means of one epoch's batch losses.
struct EpochLoss {
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

/// Train `p` on prepared splits, writing the run to `out`. Returns the metrics.
pub fn train(
    p: &Pipeline,
    splits: &Splits,
    out: &Path,
    report: &mut dyn Reporter,
) -> Result<RunMetrics> {
    let run = RunWriter::create(out, p, &splits.encoders)?;
    let mut model = FunnelModel::new(p, &splits.encoders)?;
    let mut dense = DenseOptimizer::new(model.params().vars(), &p.train.optimizer)?
        .without_decay(&model.undecayed());
    let path = StepPath::for_model(&model);
    let mut gradnorm = p
        .gradnorm
        .as_ref()
        .map(|spec| GradNorm::new(model.stages(), spec));
    let train = &splits.train;
    let seed = p.train.seed;
    let mut history = Vec::new();
    let (mut best, mut best_epoch, mut since_best) = (f64::NEG_INFINITY, 0usize, 0usize);
    let (mut train_s, mut evaluate_s) = (0.0f64, 0.0f64);
    for epoch in 1..=p.train.epochs {
        let clock = Instant::now();
        let order = Rng::stream(seed, &format!("shuffle/{epoch}")).permutation(train.rows);
        let mut dropout = Rng::stream(seed, &format!("dropout/{epoch}"));
        report.epoch_started(epoch, p.train.epochs, train.rows);
        let mut losses = EpochLoss::new(model.stages());
        // Each batch is assembled (random rows of the columns: cache misses) while the step
        // before it runs, by the pool's other thread when it is free.
        let mut chunks = order.chunks(p.train.batch_size);
        let mut next = chunks.next().map(|idx| train.batch(idx));
        while let Some(batch) = next {
            let (stepped, upcoming) = rayon::join(
                || {
                    step::step(
                        &mut model,
                        &mut dense,
                        &batch,
                        &mut dropout,
                        path,
                        gradnorm.as_mut(),
                    )
                },
                || chunks.next().map(|idx| train.batch(idx)),
            );
            let (loss, stage_losses) = stepped?;
            losses.add(loss, &stage_losses);
            report.batch(batch.rows, loss);
            next = upcoming;
        }
        let train_loss = losses.mean();
        let secs = clock.elapsed().as_secs_f64();
        report.epoch_finished(&EpochSummary {
            epoch,
            epochs: p.train.epochs,
            rows: train.rows,
            secs,
            train_loss,
        });
        if !train_loss.is_finite() {
            return Err(Error::Usage(format!(
                "training diverged in epoch {epoch}: the mean training loss is {train_loss}; lower `train.optimizer.lr` or `train.embedding_optimizer.lr`"
            )));
        }
        train_s += secs;
        let clock = Instant::now();
        let valid = match &splits.valid {
            Some(v) => {
                let m = eval_dataset(&model, p, v)?;
                report.metrics(&format!("valid, epoch {epoch}"), &m);
                Some(m)
            }
            None => None,
        };
        evaluate_s += clock.elapsed().as_secs_f64();
        let score = valid.as_deref().and_then(|m| monitor_score(p, m));
        history.push(EpochRecord {
            epoch,
            train_loss,
            train_stage_loss: losses.stage_means(p, gradnorm.as_ref().map(GradNorm::weights)),
            valid,
        });
        match (&p.train.early_stopping, score) {
            // The first epoch always sets the baseline, so there are always weights to restore.
            (Some(_), Some(s)) if best_epoch == 0 || s > best => {
                (best, best_epoch, since_best) = (s, epoch, 0);
                run.save_weights(&model)?;
            }
            (Some(es), Some(_)) => {
                since_best += 1;
                if since_best >= es.patience {
                    report.notice(&format!(
                        "early stopping: `{}` has not improved for {} epoch(s); best epoch {best_epoch}",
                        es.monitor, es.patience
                    ));
                    break;
                }
            }
            (Some(es), None) => {
                if epoch == 1 {
                    report.warning(&format!(
                        "early stopping is off: `{}` is undefined on the validation split (no positives, no negatives or no rows); the last epoch is kept",
                        es.monitor
                    ));
                }
                best_epoch = epoch;
                run.save_weights(&model)?;
            }
            (None, _) => {
                best_epoch = epoch;
                run.save_weights(&model)?;
            }
        }
    }
    let epochs_run = history.len();
    for s in model.stores.iter_mut() {
        s.release_scratch();
    }
    crate::runtime::release_freed_memory();
    if best_epoch != epochs_run {
        run.load_weights(&mut model)?;
    }
    let valid = history
        .iter()
        .find(|h| h.epoch == best_epoch)
        .and_then(|h| h.valid.clone());
    let clock = Instant::now();
    let test = match &splits.test {
        Some(t) => {
            let m = eval_dataset(&model, p, t)?;
            report.metrics(&format!("test (best epoch {best_epoch})"), &m);
            Some(m)
        }
        None => None,
    };
    evaluate_s += clock.elapsed().as_secs_f64();
    let timing = Timing {
        read_s: splits.read_secs,
        encode_s: splits.encode_secs,
        train_s,
        evaluate_s,
        train_samples_per_s: (train.rows * epochs_run) as f64 / train_s.max(1e-9),
    };
    report.timing(&timing);
    let metrics = RunMetrics {
        valid,
        test,
        best_epoch,
        epochs_run,
        history,
        timing,
    };
    let json =
        serde_json::to_string_pretty(&metrics).map_err(|e| Error::Internal(e.to_string()))?;
    run.finish(p, &json)?;
    Ok(metrics)
}

/// `runs/<pipeline name>-<UTC timestamp>` under the current directory.
pub fn default_run_dir(p: &Pipeline) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    PathBuf::from("runs").join(format!(
        "{}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        p.name,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        // 2026-11-28 is day 20_785 since the epoch (python: date(2026,11,28)-date(1970,1,1)).
        assert_eq!(super::civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
