//! The process's stop request: the number of the signal (SIGINT, SIGTERM) that asked, 0 while
//! none has. The CLI's signal handlers set it; long loops read it at points where stopping
//! loses nothing (the trainer after a step, writers before each chunk) and end with
//! `Error::Interrupted`, so temporary files are removed and checkpoints written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use crate::error::Error;

static FLAG: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// The process-wide flag (for the signal handlers and the trainer's `Control`).
pub fn flag() -> Arc<AtomicUsize> {
    FLAG.clone()
}

/// The signal that asked to stop, if one has.
pub fn requested() -> Option<i32> {
    match FLAG.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s as i32),
    }
}

/// The signal's name as users know it.
pub fn name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

/// The error a writer ends with when stopped: `what` says what was not written.
pub fn stopped(signal: i32, what: &str) -> Error {
    Error::Interrupted {
        signal,
        message: format!("interrupted by {}: {what}", name(signal)),
    }
}
