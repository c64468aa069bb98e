//! `funnel compare`: every pipeline trained under the same seeds, each run cached, and their
//! test metrics tabulated as in the ESMM paper's Table 2 (`table`), with statistics over seeds
//! (`stats`).
//!
//! A run lives in `OUT/runs/<pipeline>-seed<seed>-<key>`, where the key hashes the resolved
//! pipeline (seed included) and each data file's path, size and modification time. A finished
//! run is read back, not trained again; an interrupted one is resumed from its checkpoint. So
//! a compare that stops resumes where it stopped, and a repeated one is instant.

mod page;
pub mod stats;
mod table;

pub use table::{Comparison, MetricInfo, PipelineRow};

use std::path::{Path, PathBuf};

use crate::checkpoint::{Existing, METRICS, existing_run};
use crate::config::{Override, Pipeline, SplitSource};
use crate::error::{Error, Result};
use crate::metrics::RunMetrics;
use crate::report::Quiet;
use crate::train::{Control, Start};

/// What a compare tells its user as it goes.
pub trait Progress {
    /// `total` runs are planned.
    fn planned(&mut self, total: usize);
    /// A run starts training (`resumed` when it continues from a checkpoint).
    fn training(&mut self, label: &str, resumed: bool);
    /// A run is done (`cached` when it was read back).
    fn done(&mut self, label: &str, cached: bool);
    fn warning(&mut self, message: &str);
}

/// One planned run.
struct Planned {
    pipeline: usize,
    seed: u64,
    p: Pipeline,
    dir: PathBuf,
}

/// A pipeline argument: `FILE`, or `FILE@KEY=VALUE@KEY=VALUE` for the file with overrides of
/// its own (`esmm.yaml@model.preset=naive`), so variants of one pipeline need no copies.
struct Variant {
    file: PathBuf,
    own: Vec<Override>,
}

impl Variant {
    fn parse(arg: &str) -> Result<Variant> {
        let mut parts = arg.split('@');
        let file = PathBuf::from(parts.next().unwrap_or(arg));
        let own = parts.map(Override::parse).collect::<Result<_>>()?;
        Ok(Variant { file, own })
    }
}

/// Train (or read back) every pipeline under seeds 1..=`seeds` into `out`, and compare them.
/// `args` are pipeline files, each optionally with overrides of its own (`FILE@KEY=VALUE`);
/// `overrides` apply to all.
pub fn compare(
    args: &[String],
    overrides: &[Override],
    seeds: u64,
    out: &Path,
    control: &Control,
    progress: &mut dyn Progress,
) -> Result<Comparison> {
    if args.is_empty() {
        return Err(Error::Usage("give at least one pipeline file".into()));
    }
    if seeds == 0 {
        return Err(Error::Usage("--seeds must be at least 1".into()));
    }
    let variants: Vec<Variant> = args
        .iter()
        .map(|a| Variant::parse(a))
        .collect::<Result<_>>()?;
    let pipelines: Vec<Pipeline> = variants
        .iter()
        .map(|v| {
            let all: Vec<Override> = overrides.iter().chain(&v.own).cloned().collect();
            Pipeline::load_with(&v.file, &all)
        })
        .collect::<Result<_>>()?;
    let labels = labels(&variants, &pipelines);
    let files: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
    let stages = pipelines[0].stage_names();
    for (f, p) in files.iter().zip(&pipelines).skip(1) {
        if p.stage_names() != stages {
            return Err(Error::Usage(format!(
                "{}: stages {} differ from the first pipeline's ({}); compare pipelines of one funnel",
                f.display(),
                p.stage_names().join(" -> "),
                stages.join(" -> ")
            )));
        }
    }
    let seeds: Vec<u64> = (1..=seeds).collect();
    let mut plan = Vec::new();
    for (i, p) in pipelines.iter().enumerate() {
        for &seed in &seeds {
            let mut p = p.clone();
            p.set_seed(seed);
            let key = run_key(&p)?;
            let dir = out
                .join("runs")
                .join(format!("{}-seed{seed}-{}", labels[i], &key[..12]));
            plan.push(Planned {
                pipeline: i,
                seed,
                p,
                dir,
            });
        }
    }
    progress.planned(plan.len());
    let mut results: Vec<Vec<(u64, PathBuf, RunMetrics)>> = vec![Vec::new(); pipelines.len()];
    for run in plan {
        let label = format!("{} seed {}", labels[run.pipeline], run.seed);
        let metrics = run_one(&run, &label, control, progress)?;
        results[run.pipeline].push((run.seed, run.dir, metrics));
    }
    Ok(table::tabulate(
        &labels,
        &files,
        &pipelines[0],
        &seeds,
        results,
    ))
}

/// Train one planned run, or read it back when it is finished.
fn run_one(
    run: &Planned,
    label: &str,
    control: &Control,
    progress: &mut dyn Progress,
) -> Result<RunMetrics> {
    let start = match existing_run(&run.dir)? {
        Some(Existing::Finished) => {
            let text = std::fs::read_to_string(run.dir.join(METRICS))
                .map_err(|e| Error::io(run.dir.join(METRICS), e))?;
            let m = serde_json::from_str(&text).map_err(|e| {
                Error::run(&run.dir, format!("{METRICS} cannot be read: {e}"))
                    .with_hint("remove the run directory; compare will train it again")
            })?;
            progress.done(label, true);
            return Ok(m);
        }
        Some(Existing::Unfinished) => Start::Resume,
        // Stopped before its first checkpoint: nothing worth keeping.
        Some(Existing::Abandoned) => {
            std::fs::remove_dir_all(&run.dir).map_err(|e| Error::io(&run.dir, e))?;
            Start::Fresh
        }
        Some(Existing::Other) => {
            return Err(Error::run(
                &run.dir,
                "holds files that are not a run, where compare keeps a run",
            )
            .with_hint("remove the directory or give compare another --out"));
        }
        None => Start::Fresh,
    };
    progress.training(label, start == Start::Resume);
    let p = &run.p;
    let (metrics, warnings) = crate::runtime::with_threads(p.train.threads, || {
        let splits = crate::data::prepare(p)?;
        let m = crate::train::train(p, &splits, &run.dir, start, control, &mut Quiet)?;
        Ok((m, splits.warnings))
    })?;
    for w in warnings {
        progress.warning(&format!("{label}: {w}"));
    }
    crate::html::report::write(&run.dir)?;
    progress.done(label, false);
    Ok(metrics)
}

/// A name per pipeline for tables and run directories: its `name` and the values of its own
/// overrides (`esmm-adult+naive`); where two still share one, the file's stem too.
fn labels(variants: &[Variant], pipelines: &[Pipeline]) -> Vec<String> {
    let base: Vec<String> = variants
        .iter()
        .zip(pipelines)
        .map(|(v, p)| {
            let mut label = p.name.clone();
            for o in &v.own {
                let value = o.text.split_once('=').map_or("", |(_, v)| v);
                let clean: String = value
                    .chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                label.push('+');
                label.push_str(&clean);
            }
            label
        })
        .collect();
    base.iter()
        .zip(variants)
        .map(|(label, v)| {
            let shared = base.iter().filter(|b| *b == label).count() > 1;
            let stem = v
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            if shared {
                format!("{label}-{stem}")
            } else {
                label.clone()
            }
        })
        .collect()
}

/// The cache key of a run: SHA-256 over the resolved pipeline (the seed set) and every data
/// file's absolute path, size and modification time. Editing the pipeline, the data or the
/// seed gives a new run; anything else finds the old one.
fn run_key(p: &Pipeline) -> Result<String> {
    let mut text = p.resolved_yaml()?;
    let mut files = vec![&p.train_source.path];
    for s in [&p.valid, &p.test].into_iter().flatten() {
        if let SplitSource::File(f) = s {
            files.push(&f.path);
        }
    }
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        text.push_str(&format!("\n{}\t{}\t{modified}", f.display(), meta.len()));
    }
    Ok(crate::fsutil::sha256_bytes(text.as_bytes()))
}
