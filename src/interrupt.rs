//! The process's stop request and what an interrupted process leaves behind.
//!
//! A signal (SIGINT, SIGTERM, SIGHUP) is handled by one watcher thread (`cli::signals`), which
//! calls [`on_signal`]. Where the running code has promised to poll the stop request (the
//! trainer, inside [`cooperate`]), the first signal only sets it: the trainer finishes its
//! step, writes a checkpoint and ends with `Error::Interrupted`. Everywhere else (reading,
//! encoding, evaluating, writing an output) and on a second signal, the process ends at once:
//! every temporary file of an atomic write still open ([`Temp`]) is removed first, so what was
//! being written is either whole (renamed before the signal) or absent. The exit code is the
//! shell's 128 + the signal.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::error::Error;

static FLAG: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));
/// Signals received so far.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Scopes alive that poll the stop request themselves.
static COOPERATIVE: AtomicUsize = AtomicUsize::new(0);
/// Temporary files of atomic writes in progress.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The process-wide flag (for the signal handlers and the trainer's `Control`).
pub fn flag() -> Arc<AtomicUsize> {
    FLAG.clone()
}

/// The signal that asked to stop, if one has.
pub fn requested() -> Option<i32> {
    match FLAG.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// The signal's name as users know it.
pub fn name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

/// The error a cooperative loop ends with when stopped: `what` says what was (not) written.
pub fn stopped(signal: i32, what: &str) -> Error {
    Error::Interrupted {
        signal,
        message: format!("interrupted by {}: {what}", name(signal)),
    }
}

/// While the returned guard lives, a first signal only sets the stop request: the caller
/// promises to poll it (`requested`) often and to stop cleanly.
#[must_use = "the scope is cooperative only while the guard lives"]
pub struct Cooperative(());

pub fn cooperate() -> Cooperative {
    COOPERATIVE.fetch_add(1, Ordering::SeqCst);
    Cooperative(())
}

impl Drop for Cooperative {
    fn drop(&mut self) {
        COOPERATIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the watcher does with each signal: record it, and end the process at once unless a
/// cooperative scope will stop it (the first signal only).
pub fn on_signal(signal: i32) {
    let before = COUNT.fetch_add(1, Ordering::SeqCst);
    let _ = FLAG.compare_exchange(0, signal as usize, Ordering::SeqCst, Ordering::SeqCst);
    if before == 0 && COOPERATIVE.load(Ordering::SeqCst) > 0 {
        return;
    }
    let how = if before == 0 {
        "stopped at once; nothing half-written was left"
    } else {
        "a second signal: stopped at once; the last checkpoint, if any, is kept"
    };
    exit_now(signal, how)
}

/// Remove every temporary file still open and end the process with 128 + `signal`. The list
/// stays locked until the process is gone, so no write can be renamed into place meanwhile.
pub fn exit_now(signal: i32, how: &str) -> ! {
    let temps = temps();
    for t in temps.iter() {
        let _ = std::fs::remove_file(t);
    }
    eprintln!("\ninterrupted by {}: {how}", name(signal));
    std::process::exit(128 + signal)
}

fn temps() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file of an atomic write: removed when dropped unfinished, or when the process is
/// interrupted; `commit` renames it into place.
pub struct Temp {
    path: PathBuf,
    done: bool,
}

impl Temp {
    /// Create the file at `path` and register it, both under the list's lock: an interrupt
    /// sees it either not yet created or registered, never left behind.
    pub fn create(path: PathBuf) -> std::io::Result<(Temp, std::fs::File)> {
        let mut list = temps();
        let file = std::fs::File::create(&path)?;
        list.push(path.clone());
        Ok((Temp { path, done: false }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the file to `dest`. Under the list's lock: an interrupt sees the write either
    /// done or not begun.
    pub fn commit(mut self, dest: &Path) -> std::io::Result<()> {
        let mut list = temps();
        std::fs::rename(&self.path, dest)?;
        list.retain(|p| p != &self.path);
        self.done = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.done {
            let mut list = temps();
            let _ = std::fs::remove_file(&self.path);
            list.retain(|p| p != &self.path);
        }
    }
}

/// Testing: when the environment variable `FUNNEL_TESTING_PAUSE` names `phase` (`read`: a
/// data file is about to be read; `write`: an output's temporary file is open; `finish`: a
/// run's last files are about to be written), say so on
/// stderr and sleep there for ten seconds, so that a test can interrupt a command in that
/// phase.
pub fn testing_pause(phase: &str) {
    if std::env::var("FUNNEL_TESTING_PAUSE").is_ok_and(|v| v.split(',').any(|p| p == phase)) {
        eprintln!("testing: paused in {phase}");
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_is_removed_unless_committed() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join(".a.tmp"), d.path().join(".b.tmp"));
        {
            let (t, mut f) = Temp::create(a.clone()).unwrap();
            std::io::Write::write_all(&mut f, b"x").unwrap();
            assert!(temps().contains(&a) && t.path().exists());
        }
        assert!(!a.exists() && !temps().contains(&a));
        let (t, mut f) = Temp::create(b.clone()).unwrap();
        std::io::Write::write_all(&mut f, b"y").unwrap();
        drop(f);
        t.commit(&d.path().join("b")).unwrap();
        assert!(!temps().contains(&b));
        assert_eq!(std::fs::read_to_string(d.path().join("b")).unwrap(), "y");
    }
}
