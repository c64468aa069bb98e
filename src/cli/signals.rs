//! SIGINT and SIGTERM: the first sets the process's stop request (training finishes its step,
//! writes a checkpoint and exits 130 or 143; writers stop before their next chunk and remove
//! their temporary file); a second one ends the process at once.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::{SigId, flag, low_level};

use crate::error::{Error, Result};

/// The handlers, registered for as long as this lives.
pub struct Installed {
    ids: Vec<SigId>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            low_level::unregister(id);
        }
    }
}

/// Route SIGINT and SIGTERM to the process's stop request (`interrupt`). The conditional
/// shutdown is registered first, so a second signal (the flag already set) exits at once,
/// before the flag is set again.
pub fn install() -> Result<Installed> {
    let stop = crate::interrupt::flag();
    let mut ids = Vec::new();
    let fail = |e: std::io::Error| Error::Internal(format!("cannot handle signals: {e}"));
    let set = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (signal, exit) in [(SIGINT, 130), (SIGTERM, 143)] {
        ids.push(flag::register_conditional_shutdown(signal, exit, set.clone()).map_err(fail)?);
        ids.push(flag::register(signal, set.clone()).map_err(fail)?);
        ids.push(flag::register_usize(signal, stop.clone(), signal as usize).map_err(fail)?);
    }
    Ok(Installed { ids })
}
