//! A finished run read back: its files checked against its manifest, the model rebuilt
//! (`Run`, for eval and predict), or only its metrics and pipeline (`read_finished`, for
//! report and compare). Each state that is not a finished run is named with what to do.

use std::path::{Path, PathBuf};

use super::state::{Existing, busy, existing_run};
use super::{ENCODERS, MANIFEST, METRICS, Manifest, PIPELINE, WEIGHTS};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::fsutil::{sha256_bytes, sha256_file};
use crate::model::FunnelModel;

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
        let (pipeline, encoders, manifest) = read_run(dir)?;
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

/// A finished run's pipeline, encoders and manifest, every file of the run checked against the
/// manifest (its weights too) and the encoders against the pipeline, without loading the model:
/// what `Run::open` and a served model (`serve::Model`) start from.
pub fn read_run(dir: &Path) -> Result<(Pipeline, Encoders, Manifest)> {
    require_finished(dir, "weights", "continue")?;
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        // The manifest is there (`require_finished`): a file that cannot be read is damaged.
        std::fs::read(&path)
            .map_err(|e| Error::run(dir, format!("cannot read {name}: {e}")).with_hint(DAMAGED))
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
            return Err(Error::run(dir, format!("{name} is missing")).with_hint(DAMAGED));
        }
        if &sha256_file(&path)? != want {
            return Err(mismatch(dir, name));
        }
    }
    let text = String::from_utf8(pipeline_bytes)
        .map_err(|_| Error::run(dir, "pipeline.yaml is not UTF-8").with_hint(DAMAGED))?;
    let pipeline = Pipeline::from_text(&dir.join(PIPELINE), &text)?;
    let encoders_text = String::from_utf8(encoders_bytes)
        .map_err(|_| Error::run(dir, "encoders.json is not UTF-8").with_hint(DAMAGED))?;
    let encoders = Encoders::from_json(&encoders_text).map_err(|e| {
        Error::run(dir, format!("encoders.json is not valid: {e}")).with_hint(DAMAGED)
    })?;
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
            "encoders.json does not describe the features of pipeline.yaml (their names, columns or bucketing differ)",
        )
        .with_hint(DAMAGED));
    }
    Ok((pipeline, encoders, manifest))
}

/// Nothing unless `dir` holds a finished run; otherwise an error naming what it holds and
/// what to do. `lacks`: what the caller needed that a run stopped before its first checkpoint
/// does not have; `verb`: how the hint for an unfinished run begins (`continue`, `finish`).
fn require_finished(dir: &Path, lacks: &str, verb: &str) -> Result<()> {
    let resume = format!("funnel train --resume {}", dir.display());
    let not_run = |what: &str| {
        Error::run(dir, what.to_string())
            .with_hint("give the run directory `funnel train` printed (`run directory: ...`)")
    };
    Err(match existing_run(dir)? {
        Some(Existing::Finished) => return Ok(()),
        Some(Existing::Busy(pid)) => busy(dir, pid),
        Some(Existing::Unfinished) => {
            Error::run(dir, "the run is unfinished (a checkpoint, no manifest yet)")
                .with_hint(format!("{verb} it with `{resume}`"))
        }
        Some(Existing::Abandoned) => Error::run(
            dir,
            format!("the run was stopped before its first checkpoint: it has no {lacks}"),
        )
        .with_hint(format!(
            "train it again with `{resume}` (it starts over from its pipeline.yaml)"
        )),
        None => not_run("does not exist or is empty"),
        Some(Existing::Other) => not_run(
            "holds no run that can be read or resumed: no manifest.json, no checkpoint, and files beside the run's own",
        ),
    })
}

/// The hint of a finished run whose files are missing or do not read.
const DAMAGED: &str = "the run's files were edited, removed or damaged: restore the directory from a copy, or train the run again from its pipeline.yaml";

fn parse_manifest(dir: &Path, bytes: &[u8]) -> Result<Manifest> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::run(dir, format!("manifest.json is not valid: {e}")).with_hint(DAMAGED))
}

/// A finished run's metrics and resolved pipeline text, each checked against the manifest,
/// without loading its model (what `report` and `compare` read).
pub fn read_finished(dir: &Path) -> Result<(crate::metrics::RunMetrics, String, Manifest)> {
    require_finished(dir, "metrics", "finish")?;
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| Error::run(dir, format!("cannot read {name}: {e}")).with_hint(DAMAGED))
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
    // The model is not loaded here, but numbers from a run whose weights hold a NaN would be
    // tabulated as if they came from a working model.
    crate::model::weights_file::check_finite(&dir.join(WEIGHTS))?;
    let metrics = serde_json::from_str(&metrics).map_err(|e| {
        Error::run(dir, format!("{METRICS} is not a run's metrics: {e}")).with_hint(DAMAGED)
    })?;
    Ok((metrics, pipeline, manifest))
}

fn mismatch(dir: &Path, name: &str) -> Error {
    Error::run(dir, format!("{name} does not match the run's manifest")).with_hint(
        "the files of this run were changed or mixed with another run's; retrain or restore them",
    )
}
