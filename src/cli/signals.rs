//! SIGINT, SIGTERM and SIGHUP, for every command from its first instant: one watcher thread
//! hands each signal to `interrupt::on_signal` (the trainer stops after its step and writes a
//! checkpoint; anything else, or a second signal, ends the process at once with its temporary
//! files removed). Handlers replace an inherited "ignore", so a command started in the
//! background of a script still stops when asked.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::{Error, Result};

/// Start the watcher for the rest of the process's life.
pub fn install() -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                crate::interrupt::on_signal(signal);
            }
        })
        .map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
    Ok(())
}
