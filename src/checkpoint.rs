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

/// A run directory being written by `train`.
pub struct RunWriter {
    pub dir: PathBuf,
    /// Hashes of the files written by `create`, for the manifest (the encoders' text can be
    /// hundreds of MB, so it is not kept).
    pipeline_sha256: String,
    encoders_sha256: String,
}

impl RunWriter {
    /// Create the directory and store the resolved pipeline and the encoders before training.
    pub fn create(dir: &Path, p: &Pipeline, enc: &Encoders) -> Result<Self> {
        if dir.join(MANIFEST).exists() {
            return Err(Error::Usage(format!(
                "{} already holds a finished run; choose another --out or delete it",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // An unfinished earlier run may have left weights here; they must never be restored.
        let stale = dir.join(WEIGHTS);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
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
        write_atomic(&self.dir.join(MANIFEST), text.as_bytes())
    }
}

/// A finished run, rebuilt from its directory alone.
pub struct Run {
    pub dir: PathBuf,
    pub pipeline: Pipeline,
    pub encoders: Encoders,
    pub model: FunnelModel,
}

impl Run {
    pub fn open(dir: &Path) -> Result<Run> {
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                Error::run(dir, format!("cannot read {name}: {e}")).with_hint(if name == MANIFEST {
                    "a run directory gets its manifest when training finishes; was the run interrupted?"
                } else {
                    "pass the directory `funnel train` printed"
                })
            })
        };
        let manifest: Manifest = serde_json::from_slice(&read(MANIFEST)?)
            .map_err(|e| Error::run(dir, format!("manifest.json is not valid: {e}")))?;
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
        })
    }
}

fn mismatch(dir: &Path, name: &str) -> Error {
    Error::run(dir, format!("{name} does not match the run's manifest")).with_hint(
        "the files of this run were changed or mixed with another run's; retrain or restore them",
    )
}
