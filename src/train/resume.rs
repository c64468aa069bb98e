//! The training checkpoint: everything a run needs to continue as if it had never stopped, in
//! one file written atomically (a kill during the write leaves the previous checkpoint).
//!
//! `checkpoint.safetensors` in the run directory holds every embedding table with its optimizer
//! state (`tables.<store>.<feature>`, vocab x (dim + state)), every dense parameter
//! (`params.<key>`) with its Adam moments (`adam.m.<key>`, `adam.v.<key>`), and in its
//! `__metadata__` the trainer's state as JSON: where training is (epoch and step), the
//! epoch's running losses, the history, early stopping's counters, the step counters and
//! GradNorm's weights. The random streams need no saving: shuffling and dropout are named
//! streams of the seed and the epoch, replayed to the saved step.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::EpochLoss;
use super::gradnorm::GradNorm;
use crate::checkpoint::{CHECKPOINT, RunWriter};
use crate::error::{Error, Result};
use crate::metrics::EpochRecord;
use crate::model::FunnelModel;
use crate::model::weights_file::{self, Source};
use crate::optim::DenseOptimizer;

use crate::checkpoint::{FOREIGN, STATE_KEY};

/// Where the trainer is and what it has seen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// The SHA-256 of the resolved pipeline and of the encoders the run was started with.
    pub pipeline_sha256: String,
    pub encoders_sha256: String,
    /// The data files the run is trained on, as hashed when first read (empty in a checkpoint
    /// of a version before fingerprints, which a resume then refuses by name).
    #[serde(default)]
    pub data: Vec<crate::data::DataFingerprint>,
    /// The encoded cache the run's data came from (absolute), so a resume reads it there
    /// rather than loading the files whole; `null` for a run without a cache.
    #[serde(default)]
    pub data_cache: Option<std::path::PathBuf>,
    /// The epoch in progress (1-based), and the batches of it already stepped.
    pub epoch: usize,
    pub step: usize,
    /// The run's first batch loss (divergence is judged against it).
    pub first_loss: Option<f64>,
    /// The epoch's running loss sums.
    pub loss: EpochLoss,
    pub history: Vec<EpochRecord>,
    /// Early stopping: the best monitored score (none before the first), its epoch, and the
    /// epochs since.
    pub best: Option<f64>,
    pub best_epoch: usize,
    pub since_best: usize,
    /// Seconds spent training and evaluating so far.
    pub train_s: f64,
    pub evaluate_s: f64,
    /// Steps of the dense optimizer and of each embedding store.
    pub dense_steps: i32,
    pub store_steps: Vec<u64>,
    pub gradnorm: Option<GradNorm>,
}

/// Write the checkpoint of `model`, `dense` and `state` into `dir`.
/// `pause` waits between the last byte and the rename (a testing hook; zero otherwise).
fn save(
    dir: &Path,
    model: &FunnelModel,
    dense: &DenseOptimizer,
    state: &TrainerState,
    pause: std::time::Duration,
) -> Result<()> {
    let mut entries: Vec<(String, Source<'_>)> = Vec::new();
    for (key, t) in model.tables() {
        let (data, stride) = t.raw();
        entries.push((
            format!("tables.{key}"),
            Source::Raw(data, vec![t.vocab, stride]),
        ));
    }
    let (_, moments) = dense.moments();
    let params = model.params();
    if moments.len() != params.iter().count() {
        return Err(Error::Internal(
            "optimizer slots do not match the parameters".into(),
        ));
    }
    for ((name, var), (m, v)) in params.iter().zip(moments) {
        let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let shape = var.dims().to_vec();
        entries.push((
            format!("params.{name}"),
            Source::Dense(values, shape.clone()),
        ));
        entries.push((format!("adam.m.{name}"), Source::Raw(m, shape.clone())));
        entries.push((format!("adam.v.{name}"), Source::Raw(v, shape)));
    }
    let json = serde_json::to_string(state).map_err(|e| Error::Internal(e.to_string()))?;
    let metadata = BTreeMap::from([(STATE_KEY.to_string(), json)]);
    weights_file::write_with_metadata(&dir.join(CHECKPOINT), entries, Some(&metadata), pause)
}

/// Record the step counters in `state` and write the checkpoint. `running`: training seconds
/// of the epoch in progress, saved with the state's total.
pub fn checkpoint(
    run: &RunWriter,
    model: &FunnelModel,
    dense: &DenseOptimizer,
    state: &mut TrainerState,
    pause: std::time::Duration,
    running: f64,
) -> Result<()> {
    state.dense_steps = dense.moments().0;
    state.store_steps = model.store_steps();
    let done = state.train_s;
    state.train_s += running;
    let saved = save(&run.dir, model, dense, state, pause);
    state.train_s = done;
    saved
}

/// The encoded cache the unfinished run in `dir` read its data from (its checkpoint's header
/// only), when it had one.
pub fn data_cache(dir: &Path) -> Result<Option<std::path::PathBuf>> {
    Ok(state_of(dir, &weights_file::Reader::open(&dir.join(CHECKPOINT))?)?.data_cache)
}

/// The trainer's state in the header of `dir`'s checkpoint, opened as `file`.
fn state_of(dir: &Path, file: &weights_file::Reader) -> Result<TrainerState> {
    file.metadata
        .get(STATE_KEY)
        .ok_or_else(|| {
            Error::run(dir, format!("{CHECKPOINT} holds no trainer state")).with_hint(FOREIGN)
        })
        .and_then(|text| {
            serde_json::from_str(text).map_err(|e| {
                Error::run(
                    dir,
                    format!("{CHECKPOINT}: the trainer state is not valid: {e}"),
                )
                .with_hint(FOREIGN)
            })
        })
}

/// Read the checkpoint in `dir` into `model` and `dense`; returns the trainer's state.
pub fn load(
    dir: &Path,
    model: &mut FunnelModel,
    dense: &mut DenseOptimizer,
) -> Result<TrainerState> {
    let path = dir.join(CHECKPOINT);
    let mut file = weights_file::Reader::open(&path)?;
    let state = state_of(dir, &file)?;
    if !model.set_store_steps(&state.store_steps) {
        return Err(Error::run(
            dir,
            format!(
                "{CHECKPOINT} holds {} embedding store(s), the pipeline declares {}",
                state.store_steps.len(),
                model.store_steps().len()
            ),
        )
        .with_hint(FOREIGN));
    }
    for t in model.tables_mut() {
        let (_, stride) = t.table.raw();
        let data = file.take(&format!("tables.{}", t.key), &[t.table.vocab, stride])?;
        if !t.table.set_raw(&data) {
            return Err(Error::Internal(format!(
                "table `{}` did not take its rows",
                t.table.name
            )));
        }
    }
    let dev = model.device().clone();
    let mut moments = Vec::new();
    for (name, var) in model.params().iter() {
        let w = file.take(&format!("params.{name}"), var.dims())?;
        var.set(&Tensor::from_vec(w, var.dims(), &dev)?)?;
        let m = file.take(&format!("adam.m.{name}"), var.dims())?;
        let v = file.take(&format!("adam.v.{name}"), var.dims())?;
        moments.push((m, v));
    }
    if let Some(extra) = file.left_over() {
        return Err(Error::run(
            dir,
            format!("{CHECKPOINT} holds a tensor `{extra}` the pipeline does not declare"),
        )
        .with_hint(FOREIGN));
    }
    dense.restore(state.dense_steps, moments)?;
    Ok(state)
}
