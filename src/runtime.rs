//! Process-wide runtime settings that must be made before any thread starts.

/// candle's element-wise thread pool fights the GEMM threads on small machines: one thread there
/// is faster and steadier. Sets `CANDLE_NUM_THREADS=1` unless the user chose a value.
///
/// Call first thing in `main` (or a bench's setup), before any other thread exists.
pub fn init() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called before any other thread starts (see above), so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}
