//! What a directory given as a run directory holds (finished, unfinished, stopped before its
//! first checkpoint, being trained by a live process, or something else), and the lock that
//! keeps two processes from writing one run.

use std::path::{Path, PathBuf};

use super::{CHECKPOINT, ENCODERS, MANIFEST, PIPELINE, REPORT, WEIGHTS};
use crate::error::{Error, Result};

/// What a directory given as a run directory already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A run another live process is writing (its lock names the process id).
    Busy(u32),
    /// A manifest: a finished run.
    Finished,
    /// A checkpoint and no manifest: a run that can be resumed.
    Unfinished,
    /// Run files without a checkpoint or a manifest: a run stopped before its first
    /// checkpoint.
    Abandoned,
    /// Files that are not a run.
    Other,
}

impl Existing {
    pub(super) fn describe(self) -> String {
        match self {
            Existing::Busy(pid) => {
                return format!("a run being trained by another funnel process (pid {pid})");
            }
            Existing::Finished => "a finished run",
            Existing::Unfinished => "an unfinished run",
            Existing::Abandoned => "a run stopped before its first checkpoint",
            Existing::Other => "other files (a run directory must be new or empty)",
        }
        .to_string()
    }
}

/// The error for a run that another process is writing.
pub fn busy(dir: &Path, pid: u32) -> Error {
    let who = match pid {
        0 => "its id not yet written".to_string(),
        p => format!("pid {p}"),
    };
    Error::run(
        dir,
        format!("is being trained by another funnel process ({who}); its lock is {LOCK}"),
    )
    .with_hint("wait for that process to finish (or stop it), then use the run")
}

/// The process holding `dir`'s lock (its id as the lock file says; 0 when unknown), if a
/// process other than this one holds it. The lock is a `flock` on `.lock`: the kernel drops it
/// when its holder exits however it exits, so a killed writer never leaves a lock that holds.
fn lock_holder(dir: &Path) -> Option<u32> {
    let path = dir.join(LOCK);
    let file = std::fs::File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) | Err(std::fs::TryLockError::Error(_)) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .unwrap_or(0);
            (pid != std::process::id()).then_some(pid)
        }
    }
}

/// A temporary file of an atomic write (`.<name>.tmp-<pid>`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// What `dir` holds; none when it does not exist or is empty. A file that is not a directory is
/// an error.
pub fn existing_run(dir: &Path) -> Result<Option<Existing>> {
    if !dir.exists() {
        return Ok(None);
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} exists and is not a directory\n  hint: give a run directory (the folder `funnel train` printed as `run directory: ...`), not a file",
            dir.display()
        )));
    }
    if let Some(pid) = lock_holder(dir) {
        return Ok(Some(Existing::Busy(pid)));
    }
    // A lock file and temporary files are what a killed writer leaves: nothing of a run.
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let name = e.map_err(|e| Error::io(dir, e))?.file_name();
        let name = name.to_string_lossy().to_string();
        if name != LOCK && !is_temporary(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    // Stopped before its first checkpoint: only what `train` writes before one (the pipeline,
    // the encoders, the first epoch's weights; the pages of a one-epoch run being finished),
    // and no metrics: a run that got as far as its metrics, or a folder holding anything of
    // the user's, is never started over.
    Ok(Some(if dir.join(MANIFEST).exists() {
        Existing::Finished
    } else if dir.join(CHECKPOINT).exists() {
        Existing::Unfinished
    } else if dir.join(PIPELINE).exists() && names.iter().all(|n| STARTED.contains(&n.as_str())) {
        Existing::Abandoned
    } else {
        Existing::Other
    }))
}

/// What `train` writes into a run directory before its first checkpoint (the pipeline, the
/// encoders, the first epoch's weights; the pages of a one-epoch run being finished), the
/// pipeline last: a folder of these alone is a run stopped before its first checkpoint.
const STARTED: [&str; 5] = [ENCODERS, WEIGHTS, REPORT, crate::track::FOLDER, PIPELINE];

/// Remove a run stopped before its first checkpoint, pipeline.yaml last (stopped half-way, the
/// folder is still one to start over); only the lock's holder calls this.
pub(super) fn clear_started(dir: &Path) -> Result<()> {
    for name in STARTED {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Remove the temporary files of atomic writes (`.<name>.tmp-<pid>`) that a killed writer
/// left in `dir`; only the lock's holder calls this.
pub(super) fn remove_temporaries(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        if name.is_some_and(|n| is_temporary(&n)) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The lock of a run directory: an exclusive `flock` on `.lock`, which holds the process id
/// for messages. The kernel releases it when the process ends, however it ends (a second
/// Ctrl-C, SIGKILL), so a lock is never stale; and a reused process id cannot make one look
/// held. Removed when dropped.
pub(super) struct Lock {
    path: PathBuf,
    _file: std::fs::File,
}

const LOCK: &str = ".lock";

impl Lock {
    pub(super) fn take(dir: &Path) -> Result<Lock> {
        use std::io::Write;
        use std::os::unix::fs::MetadataExt;
        let path = dir.join(LOCK);
        let io = |e| Error::io(&path, e);
        // A holder that drops its lock removes the file: a lock taken on that removed file is
        // no lock, so the file locked must still be the one at the path.
        for _ in 0..5 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            // Another process's probe (`lock_holder`) holds a shared lock for an instant: a
            // lock still held after 100 ms is a writer's.
            let mut waited = 0;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) if waited < 100 => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        waited += 5;
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(busy(dir, lock_holder(dir).unwrap_or(0)));
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
                }
            }
            let same = std::fs::metadata(&path)
                .is_ok_and(|m| file.metadata().is_ok_and(|f| f.ino() == m.ino()));
            if !same {
                continue;
            }
            file.set_len(0).map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(Lock { path, _file: file });
        }
        Err(
            Error::run(dir, "could not take the run directory's lock").with_hint(format!(
                "another process keeps taking and dropping {LOCK}; try again when it is done"
            )),
        )
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held; the lock goes with the file handle right after.
        let _ = std::fs::remove_file(&self.path);
    }
}
