//! The run directory: resolved pipeline, encoders, weights, metrics and a manifest tying them
//! together. Every file is written atomically; loading refuses files that do not belong together.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::collective::Root;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::fsutil::{sha256_bytes, sha256_file, write_atomic, write_atomic_hashed};
use crate::model::FunnelModel;

mod finished;
mod name;
mod state;

pub use finished::{Run, read_finished, read_run};
pub use name::default_run_dir;
pub use state::{Existing, busy, existing_run};
use state::{Lock, clear_started, remove_temporaries};

pub const PIPELINE: &str = "pipeline.yaml";
pub const ENCODERS: &str = "encoders.json";
pub const WEIGHTS: &str = "weights.safetensors";
pub const METRICS: &str = "metrics.json";
pub const MANIFEST: &str = "manifest.json";
/// The resume checkpoint of an unfinished run (`train::resume`).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The checkpoint header's metadata key of the trainer's state (`train::resume`).
pub const STATE_KEY: &str = "trainer";
/// The hint of a checkpoint that does not fit the run's pipeline.yaml.
pub const FOREIGN: &str = "the checkpoint does not belong to this run's pipeline.yaml (edited, or copied from another run): restore the run's files, or train its pipeline.yaml as a new run with `funnel train DIR/pipeline.yaml --out NEW_DIR`";
/// The run drawn as one page (`html::report`).
pub const REPORT: &str = "report.html";

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

pub use crate::data::DataFingerprint;

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
    /// Only the rank holding `Root` writes a run directory.
    pub fn create(dir: &Path, p: &Pipeline, enc: &Encoders, _: &Root) -> Result<Self> {
        Self::check_new(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!(
                "cannot create the run directory {}: {e}\n  hint: check that its parent folder exists and can be written, or choose another --out",
                dir.display()
            ))
        })?;
        let lock = Lock::take(dir)?;
        // A run stopped before its first checkpoint (killed) is started over: its files go.
        remove_temporaries(dir)?;
        if existing_run(dir)? == Some(Existing::Abandoned) {
            clear_started(dir)?;
        }
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

    /// Refuse a `--out` that holds anything but a run stopped before its first checkpoint,
    /// which is started over (checked before the data is read, and again when the directory
    /// is created).
    pub fn check_new(dir: &Path) -> Result<()> {
        if let Some(what) = existing_run(dir)?.filter(|e| *e != Existing::Abandoned) {
            let hint = match what {
                Existing::Unfinished => format!(
                    "continue it with `funnel train --resume {}`, or delete it",
                    dir.display()
                ),
                Existing::Busy(_) => "wait for it to finish, or choose another --out".to_string(),
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
    pub fn reopen(dir: &Path, enc: &Encoders, _: &Root) -> Result<Self> {
        Self::reopen_check(dir)?;
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

    /// Whether `dir` holds a run that `reopen` can continue; an error saying what it holds
    /// otherwise.
    pub fn reopen_check(dir: &Path) -> Result<()> {
        match existing_run(dir)? {
            Some(Existing::Unfinished) => {
                // An edited pipeline.yaml is named as such here, before the data is read; later
                // it shows up as "the training data changed" (other encoders) or as a tensor
                // of the wrong shape.
                let path = dir.join(PIPELINE);
                if sha256_file(&path)? != started_with(dir)? {
                    return Err(Error::run(
                        dir,
                        "pipeline.yaml was edited after the run started: its SHA-256 is not the one its checkpoint recorded",
                    )
                    .with_hint(format!(
                        "a run continues only with the pipeline it started with: restore {p}, or train the edited pipeline as a new run: `funnel train {p} --out NEW_DIR`",
                        p = path.display()
                    )));
                }
            }
            Some(Existing::Finished) => {
                return Err(Error::run(
                    dir,
                    "the run is finished; there is nothing to resume",
                )
                .with_hint(format!(
                    "evaluate it with `funnel eval --run {} --split test`, or train a new run",
                    dir.display()
                )));
            }
            Some(Existing::Busy(pid)) => return Err(busy(dir, pid)),
            _ => {
                return Err(Error::run(dir, "holds no run to resume").with_hint(
                    "give the directory `funnel train` printed; a run stopped before its first checkpoint is started over by `funnel train --resume` itself",
                ));
            }
        }
        Ok(())
    }

    pub fn save_weights(&self, model: &FunnelModel) -> Result<()> {
        model.save(&self.dir.join(WEIGHTS))
    }

    pub fn load_weights(&self, model: &mut FunnelModel) -> Result<()> {
        model.load(&self.dir.join(WEIGHTS))
    }

    /// Write the metrics and, last, the manifest that marks the run complete. `data`: the
    /// files the run was trained on, as hashed when they were read.
    pub fn finish(&self, p: &Pipeline, metrics_json: &str, data: &[DataFingerprint]) -> Result<()> {
        write_atomic(&self.dir.join(METRICS), metrics_json.as_bytes())?;
        let data = data.to_vec();
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

/// The SHA-256 of pipeline.yaml that the checkpoint in `dir` was written with, read from its
/// header alone (no tensor is read).
fn started_with(dir: &Path) -> Result<String> {
    let file = crate::model::weights_file::Reader::open(&dir.join(CHECKPOINT))?;
    let text = file.metadata.get(STATE_KEY).ok_or_else(|| {
        Error::run(dir, format!("{CHECKPOINT} holds no trainer state")).with_hint(FOREIGN)
    })?;
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("pipeline_sha256")?.as_str().map(str::to_string))
        .ok_or_else(|| {
            Error::run(
                dir,
                format!("{CHECKPOINT}: the trainer state names no pipeline"),
            )
            .with_hint(FOREIGN)
        })
}
