//! Process-wide runtime settings: thread layout and the settings made before any thread starts.

use crate::error::{Error, Result};

/// candle's element-wise thread pool fights the GEMM threads on small machines: one thread there
/// is faster and steadier. Sets `CANDLE_NUM_THREADS=1` unless the user chose a value.
///
/// Call first thing in `main` (or a bench's setup), before any other thread exists.
///
/// Also sets `RAYON_NUM_THREADS` (to the available cores) unless set: without it candle asks
/// `num_cpus` for the physical core count on every matrix product, which reads `/proc/cpuinfo`
/// each time (measured: a fifth of a small training step).
pub fn init() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (key, value) in [
        ("CANDLE_NUM_THREADS", "1".to_string()),
        ("RAYON_NUM_THREADS", cores.to_string()),
    ] {
        if std::env::var_os(key).is_none() {
            // SAFETY: called before any other thread starts (see above), so nothing reads the
            // environment concurrently.
            unsafe { std::env::set_var(key, value) };
        }
    }
}

/// A pool of `threads` workers (0: one per available core; more than 4 per core are capped
/// there: beyond that threads only contend).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = if threads == 0 {
        cores
    } else {
        threads.min(4 * cores)
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {n} threads: {e}")))
}

/// Run `f` on a pool of `threads` workers. Everything parallel inside (GEMM, the sparse update)
/// then runs on that pool, with `f` itself on one of its workers.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    pool(threads)?.install(f)
}

/// Hand memory freed by a finished phase (data preparation, training) back to the system, on
/// every thread of the current pool: the allocator otherwise keeps freed pages for a second for
/// reuse, and they count in the peak of the next phase.
pub fn release_freed_memory() {
    rayon::broadcast(|_| {
        // SAFETY: `mi_collect` has no preconditions; it only returns free pages of this
        // thread's heap (and abandoned ones) to the OS, and does nothing if mimalloc is unused.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
}
