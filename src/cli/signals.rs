//! SIGINT, SIGTERM and SIGHUP, for every command from its first instant: one watcher thread
//! hands each signal to `interrupt::on_signal` (the trainer stops after its step and writes a
//! checkpoint; anything else, or a second signal, ends the process at once with its temporary
//! files removed). SIGINT and SIGTERM handlers replace an inherited "ignore", so a command
//! started in the background of a script still stops when asked; an ignored SIGHUP (`nohup`)
//! stays ignored.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::{Error, Result};

/// Whether the process started with `signal` ignored (as `nohup` starts its command with
/// SIGHUP), from the kernel's own record (`SigIgn` in /proc/self/status, bit `signal` - 1).
fn inherited_ignore(signal: i32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask >> (signal - 1) & 1 == 1)
}

/// Start the watcher for the rest of the process's life. SIGINT and SIGTERM are always
/// handled; SIGHUP only when it was not ignored at start: under `nohup`, closing the terminal
/// must not stop a long training.
pub fn install() -> Result<()> {
    let mut wanted = vec![SIGINT, SIGTERM];
    if !inherited_ignore(SIGHUP) {
        wanted.push(SIGHUP);
    }
    let mut signals =
        Signals::new(wanted).map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
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
