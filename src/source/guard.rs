//! A wall around the file readers: a panic inside polars on a malformed file (the Parquet
//! fuzzer found one in its metadata decoder) becomes a located error, and its message never
//! reaches the terminal. Everything else that panics still reports as a panic.

use std::cell::Cell;
use std::path::Path;
use std::sync::Once;

use crate::error::{Error, Result};

thread_local! {
    /// Whether this thread is inside `guarded` (its panics are caught and reported as errors).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Install, once, a panic hook that stays silent for guarded panics and defers to the
/// default hook for every other.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Run `f` (a reader's work on `file`), turning a panic inside it into an error about the
/// file.
pub fn guarded<T>(file: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_hook();
    let was = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    match result {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown fault".into());
            Err(Error::data(
                file,
                format!("cannot read: the file is malformed (the reader failed: {what})"),
            )
            .with_hint(super::MALFORMED))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_other_panics_still_panic() {
        let e = guarded(Path::new("x.parquet"), || -> Result<()> {
            panic!("thrift bool field")
        });
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("x.parquet: cannot read: the file is malformed (the reader failed: thrift bool field)"), "{msg}");
        assert_eq!(guarded(Path::new("x"), || Ok(3)).unwrap(), 3);
        assert!(std::panic::catch_unwind(|| panic!("outside")).is_err());
    }
}
