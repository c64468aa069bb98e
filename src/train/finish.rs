//! After the last epoch: the best weights back, the test metrics, and the finished run
//! directory (metrics.json, the TensorBoard file, report.html, and last the manifest).

use std::time::Instant;

use super::resume::TrainerState;
use crate::checkpoint::RunWriter;
use crate::config::Pipeline;
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::metrics::{RunMetrics, Timing};
use crate::model::FunnelModel;
use crate::report::Reporter;
use crate::scoring::evaluate_dataset;

/// After the last epoch: the best weights back, the test metrics, metrics.json and the
/// manifest; the checkpoint is then of no further use and is removed.
pub(super) fn finish(
    p: &Pipeline,
    splits: &Splits,
    run: &RunWriter,
    model: &mut FunnelModel,
    state: TrainerState,
    no_report: bool,
    report: &mut dyn Reporter,
) -> Result<RunMetrics> {
    let TrainerState {
        history,
        best_epoch,
        train_s,
        mut evaluate_s,
        data,
        ..
    } = state;
    let epochs_run = history.len();
    model.release_scratch();
    crate::runtime::release_freed_memory();
    if best_epoch != epochs_run {
        run.load_weights(model)?;
    }
    let valid = history
        .iter()
        .find(|h| h.epoch == best_epoch)
        .and_then(|h| h.valid.clone());
    let clock = Instant::now();
    let test = match &splits.test {
        Some(t) => {
            let m = evaluate_dataset(model, p, t)?;
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
        train_samples_per_s: (splits.train.rows() * epochs_run) as f64 / train_s.max(1e-9),
    };
    report.timing(&timing);
    let metrics = RunMetrics {
        valid,
        test,
        best_epoch,
        epochs_run,
        history,
        timing,
        valid_rows: splits.valid_rows.clone(),
        test_rows: splits.test_rows.clone(),
        warnings: splits.warnings.clone(),
    };
    let json =
        serde_json::to_string_pretty(&metrics).map_err(|e| Error::Internal(e.to_string()))?;
    // From here to the manifest a signal only asks: the run's last files are small, and a
    // run stopped between its metrics and its manifest could be neither read nor resumed. The
    // command then ends with 130 or 143, its run whole.
    let _finishing = crate::interrupt::cooperate();
    crate::interrupt::testing_pause("finish");
    // The pages of the run first, so a finished run (its manifest) always has them; drawn from
    // the numbers as metrics.json holds them (its text rounds the last digit of some).
    let written: RunMetrics =
        serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?;
    crate::track::write(&run.dir, &written)?;
    if !no_report {
        crate::html::report::write(&run.dir, &p.name, &written, &p.resolved_yaml()?)?;
    }
    run.finish(p, &json, &data)?;
    Ok(metrics)
}
