//! Wall-clock data preparation, split between reading files and encoding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Wall-clock data preparation split between reading files and encoding. Parquet columns are
/// decoded inside the parallel encoding tasks, so the two overlap: the wall time is apportioned
/// by the share of busy time (summed over threads) that went to reading.
pub(super) struct Clock {
    start: Instant,
    busy_ns: AtomicU64,
}

impl Clock {
    pub(super) fn new() -> Self {
        Clock {
            start: Instant::now(),
            busy_ns: AtomicU64::new(0),
        }
    }

    pub(super) fn busy<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(ns, Ordering::Relaxed);
        r
    }

    /// (read, encode) seconds of wall time, given the seconds spent reading.
    pub(super) fn split(&self, read_busy: f64) -> (f64, f64) {
        let wall = self.start.elapsed().as_secs_f64();
        let busy = self.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        let read = if busy > 0.0 {
            wall * (read_busy / busy).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (read, wall - read)
    }
}
