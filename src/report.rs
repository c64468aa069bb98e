//! What a run tells its user as it goes, as events. The library never prints: it reports here,
//! and a front end (the terminal's in `cli`, a silent one for compare) decides how to show it.
//! The pages of a finished run (report.html, the TensorBoard file) are written from
//! metrics.json by `train::finish`, not through these events.

use crate::metrics::{StageMetrics, Timing};

/// One finished training epoch.
pub struct EpochSummary {
    pub epoch: usize,
    pub epochs: usize,
    pub rows: usize,
    pub secs: f64,
    pub train_loss: f64,
}

/// `Send`: the trainer reports from the body of its batch loop, which runs beside the assembly
/// of the next batch (`data::drive`).
pub trait Reporter: Send {
    /// Something the user should know that does not stop the run.
    fn warning(&mut self, message: &str);
    /// A decision the run took (early stopping).
    fn notice(&mut self, message: &str);
    fn epoch_started(&mut self, epoch: usize, epochs: usize, rows: usize);
    /// A training step finished on `rows` rows with this batch loss.
    fn batch(&mut self, rows: usize, loss: f64);
    fn epoch_finished(&mut self, summary: &EpochSummary);
    /// A metrics table: `title` says which split and epoch.
    fn metrics(&mut self, title: &str, m: &[StageMetrics]);
    fn timing(&mut self, t: &Timing);
}

/// Reports nothing (tests, benchmarks, library use).
pub struct Quiet;

impl Reporter for Quiet {
    fn warning(&mut self, _: &str) {}
    fn notice(&mut self, _: &str) {}
    fn epoch_started(&mut self, _: usize, _: usize, _: usize) {}
    fn batch(&mut self, _: usize, _: f64) {}
    fn epoch_finished(&mut self, _: &EpochSummary) {}
    fn metrics(&mut self, _: &str, _: &[StageMetrics]) {}
    fn timing(&mut self, _: &Timing) {}
}
