//! The run directory: resolved pipeline, encoders, weights, metrics and a manifest tying them
//! together. Every file is written atomically; loading refuses files that do not belong together.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::fsutil::{sha256_bytes, sha256_file, write_atomic, write_atomic_hashed};
use crate::model::FunnelModel;

pub const PIPELINE: &str = "pipeline.yaml";
pub const ENCODERS: &str = "encoders.json";
pub const WEIGHTS: &str = "weights.safetensors";
pub const METRICS: &str = "metrics.json";
pub const MANIFEST: &str = "manifest.json";
/// The resume checkpoint of an unfinished run (`train::resume`).
pub const CHECKPOINT: &str = "checkpoint.safetensors";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub funnel_version: String,
    pub seed: u64,
    pub pipeline_sha256: String,
    pub encoders_sha256: String,
    pub weights_sha256: String,
    pub metrics_sha256: String,
    pub data: Vec<DataFingerprint>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataFingerprint {
    pub split: String,
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A run directory being written by `train`. It holds the directory's lock (`.lock`, with the
/// writer's process id) until dropped, so two trainings never write one directory.
pub struct RunWriter {
    pub dir: PathBuf,
    /// Hashes of the files written by `create`, for the manifest and the checkpoint (the
    /// encoders' text can be hundreds of MB, so it is not kept).
    pub(crate) pipeline_sha256: String,
    pub(crate) encoders_sha256: String,
    _lock: Lock,
}

impl RunWriter {
    /// Create the directory (which must not exist or be empty) and store the resolved pipeline
    /// and the encoders before training.
    pub fn create(dir: &Path, p: &Pipeline, enc: &Encoders) -> Result<Self> {
        Self::check_new(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!(
                "cannot create the run directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = Lock::take(dir)?;
        let pipeline_text = p.resolved_yaml()?;
        write_atomic(&dir.join(PIPELINE), pipeline_text.as_bytes())?;
        // Streamed: a million-token vocabulary is tens of MB of text.
        let encoders_sha256 = write_atomic_hashed(&dir.join(ENCODERS), |w| {
            serde_json::to_writer_pretty(w, enc).map_err(std::io::Error::other)
        })?;
        Ok(RunWriter {
            dir: dir.to_path_buf(),
            pipeline_sha256: sha256_bytes(pipeline_text.as_bytes()),
            encoders_sha256,
            _lock: lock,
        })
    }

    /// Refuse a `--out` that holds anything (checked before the data is read, and again when
    /// the directory is created).
    pub fn check_new(dir: &Path) -> Result<()> {
        if let Some(what) = existing_run(dir)? {
            let hint = match what {
                Existing::Unfinished => format!(
                    "continue it with `funnel train --resume {}`, or delete it",
                    dir.display()
                ),
                _ => "choose another --out, or delete it".to_string(),
            };
            return Err(Error::Usage(format!(
                "{} already holds {}\n  hint: {hint}",
                dir.display(),
                what.describe()
            )));
        }
        Ok(())
    }

    /// Reopen an unfinished run to continue it: its encoders must be those fitted again now
    /// (else the data changed).
    pub fn reopen(dir: &Path, enc: &Encoders) -> Result<Self> {
        match existing_run(dir)? {
            Some(Existing::Unfinished) => {}
            Some(Existing::Finished) => {
                return Err(Error::run(
                    dir,
                    "the run is finished; there is nothing to resume",
                ));
            }
            _ => {
                return Err(Error::run(dir, "holds no checkpoint to resume from").with_hint(
                    "a checkpoint is written after each epoch (and every `train.checkpoint_every_steps` steps); a run stopped before its first has to be trained again",
                ));
            }
        }
        let lock = Lock::take(dir)?;
        remove_temporaries(dir)?;
        let mut fitted = Vec::new();
        serde_json::to_writer_pretty(&mut fitted, enc)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let encoders_sha256 = sha256_file(&dir.join(ENCODERS))?;
        if sha256_bytes(&fitted) != encoders_sha256 {
            return Err(Error::run(
                dir,
                "the encoders fitted on the data now differ from the run's encoders.json: the training data changed since the run started",
            )
            .with_hint("restore the data the run was started on, or train a new run"));
        }
        Ok(RunWriter {
            dir: dir.to_path_buf(),
            pipeline_sha256: sha256_file(&dir.join(PIPELINE))?,
            encoders_sha256,
            _lock: lock,
        })
    }

    pub fn save_weights(&self, model: &FunnelModel) -> Result<()> {
        model.save(&self.dir.join(WEIGHTS))
    }

    pub fn load_weights(&self, model: &mut FunnelModel) -> Result<()> {
        model.load(&self.dir.join(WEIGHTS))
    }

    /// Write the metrics and, last, the manifest that marks the run complete.
    pub fn finish(&self, p: &Pipeline, metrics_json: &str) -> Result<()> {
        write_atomic(&self.dir.join(METRICS), metrics_json.as_bytes())?;
        let mut data = Vec::new();
        let mut add = |split: &str, path: &Path| -> Result<()> {
            let bytes = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            data.push(DataFingerprint {
                split: split.into(),
                path: path.display().to_string(),
                bytes,
                sha256: sha256_file(path)?,
            });
            Ok(())
        };
        add("train", &p.train_source.path)?;
        for (name, s) in [("valid", &p.valid), ("test", &p.test)] {
            if let Some(SplitSource::File(f)) = s {
                add(name, &f.path)?;
            }
        }
        let manifest = Manifest {
            funnel_version: env!("CARGO_PKG_VERSION").into(),
            seed: p.train.seed,
            pipeline_sha256: self.pipeline_sha256.clone(),
            encoders_sha256: self.encoders_sha256.clone(),
            weights_sha256: sha256_file(&self.dir.join(WEIGHTS))?,
            metrics_sha256: sha256_bytes(metrics_json.as_bytes()),
            data,
        };
        let text =
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&self.dir.join(MANIFEST), text.as_bytes())?;
        // A finished run needs no checkpoint (it is three copies of the tables' size).
        let checkpoint = self.dir.join(CHECKPOINT);
        if checkpoint.exists() {
            std::fs::remove_file(&checkpoint).map_err(|e| Error::io(&checkpoint, e))?;
        }
        Ok(())
    }
}

/// What a directory given as a run directory already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
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
    fn describe(self) -> &'static str {
        match self {
            Existing::Finished => "a finished run",
            Existing::Unfinished => "an unfinished run",
            Existing::Abandoned => "a run stopped before its first checkpoint",
            Existing::Other => "other files (a run directory must be new or empty)",
        }
    }
}

/// What `dir` holds; none when it does not exist or is empty. A file that is not a directory is
/// an error.
pub fn existing_run(dir: &Path) -> Result<Option<Existing>> {
    if !dir.exists() {
        return Ok(None);
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_none() {
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
fn remove_temporaries(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        if name.is_some_and(|n| n.starts_with('.') && n.contains(".tmp-")) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The lock of a run directory: `.lock` created exclusively, holding the process id; removed
/// when dropped. A lock left by a process that no longer runs (killed) is taken over.
struct Lock(PathBuf);

const LOCK: &str = ".lock";

impl Lock {
    fn take(dir: &Path) -> Result<Lock> {
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

/// A finished run, rebuilt from its directory alone.
pub struct Run {
    pub dir: PathBuf,
    pub pipeline: Pipeline,
    pub encoders: Encoders,
    pub model: FunnelModel,
    pub manifest: Manifest,
}

impl Run {
    pub fn open(dir: &Path) -> Result<Run> {
        if existing_run(dir)? == Some(Existing::Unfinished) {
            return Err(
                Error::run(dir, "the run is unfinished (a checkpoint, no manifest yet)").with_hint(
                    format!("continue it with `funnel train --resume {}`", dir.display()),
                ),
            );
        }
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                Error::run(dir, format!("cannot read {name}: {e}")).with_hint(if name == MANIFEST {
                    "a run directory gets its manifest when training finishes; was the run interrupted before its first checkpoint?"
                } else {
                    "pass the directory `funnel train` printed"
                })
            })
        };
        let manifest = parse_manifest(dir, &read(MANIFEST)?)?;
        let pipeline_bytes = read(PIPELINE)?;
        let encoders_bytes = read(ENCODERS)?;
        for (name, bytes, want) in [
            (PIPELINE, &pipeline_bytes, &manifest.pipeline_sha256),
            (ENCODERS, &encoders_bytes, &manifest.encoders_sha256),
        ] {
            if &sha256_bytes(bytes) != want {
                return Err(mismatch(dir, name));
            }
        }
        for (name, want) in [
            (WEIGHTS, &manifest.weights_sha256),
            (METRICS, &manifest.metrics_sha256),
        ] {
            let path = dir.join(name);
            if !path.exists() {
                return Err(Error::run(dir, format!("{name} is missing")));
            }
            if &sha256_file(&path)? != want {
                return Err(mismatch(dir, name));
            }
        }
        let text = String::from_utf8(pipeline_bytes)
            .map_err(|_| Error::run(dir, "pipeline.yaml is not UTF-8"))?;
        let pipeline = Pipeline::from_text(&dir.join(PIPELINE), &text)?;
        let encoders_text = String::from_utf8(encoders_bytes)
            .map_err(|_| Error::run(dir, "encoders.json is not UTF-8"))?;
        let encoders = Encoders::from_json(&encoders_text)
            .map_err(|e| Error::run(dir, format!("encoders.json is not valid: {e}")))?;
        let names_match = encoders.categorical.len() == pipeline.categorical.len()
            && encoders.numeric.len() == pipeline.numeric.len()
            && encoders
                .categorical
                .iter()
                .zip(&pipeline.categorical)
                .all(|(e, s)| e.name == s.name && e.column == s.column)
            && encoders
                .numeric
                .iter()
                .zip(&pipeline.numeric)
                .all(|(e, s)| {
                    e.name == s.name
                        && e.column == s.column
                        && e.boundaries.is_some() == s.buckets.is_some()
                });
        if !names_match {
            return Err(Error::run(
                dir,
                "encoders.json does not describe the pipeline's features",
            ));
        }
        let model = FunnelModel::open(&pipeline, &encoders, &dir.join(WEIGHTS))?;
        Ok(Run {
            dir: dir.to_path_buf(),
            pipeline,
            encoders,
            model,
            manifest,
        })
    }
}

fn parse_manifest(dir: &Path, bytes: &[u8]) -> Result<Manifest> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::run(dir, format!("manifest.json is not valid: {e}")))
}

/// A finished run's metrics and resolved pipeline text, each checked against the manifest,
/// without loading its model (what `report` and `compare` read).
pub fn read_finished(dir: &Path) -> Result<(crate::metrics::RunMetrics, String)> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            Error::run(dir, format!("cannot read {name}: {e}"))
                .with_hint("give a run directory that `funnel train` finished")
        })
    };
    let (metrics, pipeline) = (read(METRICS)?, read(PIPELINE)?);
    let manifest = parse_manifest(dir, read(MANIFEST)?.as_bytes())?;
    for (name, text, want) in [
        (METRICS, &metrics, &manifest.metrics_sha256),
        (PIPELINE, &pipeline, &manifest.pipeline_sha256),
    ] {
        if &sha256_bytes(text.as_bytes()) != want {
            return Err(mismatch(dir, name));
        }
    }
    let metrics = serde_json::from_str(&metrics)
        .map_err(|e| Error::run(dir, format!("{METRICS} is not a run's metrics: {e}")))?;
    Ok((metrics, pipeline))
}

fn mismatch(dir: &Path, name: &str) -> Error {
    Error::run(dir, format!("{name} does not match the run's manifest")).with_hint(
        "the files of this run were changed or mixed with another run's; retrain or restore them",
    )
}

/// `runs/<pipeline name>-<UTC timestamp>-seed<seed>-<process id>` under the current directory:
/// unique to the second, the seed and the process, so parallel seed sweeps never collide.
pub fn default_run_dir(p: &Pipeline) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    PathBuf::from("runs").join(format!(
        "{}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-seed{}-{}",
        p.name,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        p.train.seed,
        std::process::id()
    ))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        // 2026-11-28 is day 20_785 since the epoch (python: date(2026,11,28)-date(1970,1,1)).
        assert_eq!(super::civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
