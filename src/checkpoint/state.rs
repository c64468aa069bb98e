//! What a directory given as a run directory holds (finished, unfinished, stopped before its
//! first checkpoint, being trained by a live process, or something else), and the lock that
//! keeps two processes from writing one run.

use std::path::{Path, PathBuf};

use super::{CHECKPOINT, ENCODERS, MANIFEST, PIPELINE};
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
    Error::run(
        dir,
        format!("is being trained by another funnel process (pid {pid}); its lock is {LOCK}"),
    )
    .with_hint("wait for that process to finish (or stop it), then use the run")
}

/// The process holding `dir`'s lock, if it is alive.
fn lock_holder(dir: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(dir.join(LOCK))
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()?;
    (pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
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
    // A stale lock and temporary files are what a killed writer leaves: nothing of a run.
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let meaningful = entries.any(|e| {
        e.is_ok_and(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name != LOCK && !is_temporary(&name)
        })
    });
    if !meaningful {
        return Ok(None);
    }
    Ok(Some(if dir.join(MANIFEST).exists() {
        Existing::Finished
    } else if dir.join(CHECKPOINT).exists() {
        Existing::Unfinished
    } else if dir.join(PIPELINE).exists() && dir.join(ENCODERS).exists() {
        Existing::Abandoned
    } else {
        Existing::Other
    }))
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

/// The lock of a run directory: `.lock` created exclusively, holding the process id; removed
/// when dropped. A lock left by a process that no longer runs (killed) is taken over.
pub(super) struct Lock(PathBuf);

const LOCK: &str = ".lock";

impl Lock {
    pub(super) fn take(dir: &Path) -> Result<Lock> {
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(Lock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = holder.trim().parse::<u32>().ok();
                    let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                    if alive || pid.is_none() && holder.is_empty() {
                        // Alive, or being written this instant by another process.
                        return Err(Error::Usage(format!(
                            "{} is being written by another funnel process{}\n  hint: wait for it to finish, or use another --out",
                            dir.display(),
                            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                        )));
                    }
                    // Its writer is gone: the lock is stale.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Usage(format!(
            "{}: could not take the run directory's lock",
            dir.display()
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
