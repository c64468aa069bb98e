//! Outside control of a training run: the stop request (signals, or a testing hook), whether
//! the run starts fresh or resumes, and the message an interrupted run ends with.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

use super::resume::TrainerState;
use crate::collective::Collective;
use crate::error::Error;

/// Outside control of a training run: the stop flag that the CLI's signal handlers set (the
/// number of the signal that asked, 0 while none has), and two testing hooks behind hidden CLI
/// flags: stop as if by SIGINT after a given step, and pause before a checkpoint's rename (so
/// a test can kill the process in the middle of the write).
#[derive(Clone, Default)]
pub struct Control {
    pub signal: Arc<AtomicUsize>,
    pub stop_at_step: Option<usize>,
    pub checkpoint_pause: std::time::Duration,
    /// Leave `report.html` out of the finished run directory.
    pub no_report: bool,
}

impl Control {
    /// The signal to stop for after the run's `step`-th step (counted over every epoch).
    /// Every rank takes the same decision: a stop asked of any rank stops them all at this
    /// step (a rank that was not signalled itself stops as for SIGTERM).
    pub(super) fn stop_for(&self, step: usize, ranks: &dyn Collective) -> Option<i32> {
        let asked = match self.signal.load(Ordering::Relaxed) {
            0 => (self.stop_at_step == Some(step)).then_some(SIGINT),
            s => Some(s as i32),
        };
        ranks
            .any(asked.is_some())
            .then_some(asked.unwrap_or(SIGTERM))
    }
}

/// Whether `train` starts a new run directory or continues the one it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Resume,
}

/// The error a stopped run ends with: the signal, where the checkpoint is, how to resume.
pub(super) fn interrupted(signal: i32, out: &Path, state: &TrainerState) -> Error {
    let (epoch, step) = match state.step {
        0 => (state.epoch.saturating_sub(1), "its end".to_string()),
        s => (state.epoch, format!("step {s}")),
    };
    crate::interrupt::stopped(
        signal,
        &format!(
            "checkpoint written at epoch {epoch}, {step}\n  continue with: funnel train --resume {}",
            out.display()
        ),
    )
}
