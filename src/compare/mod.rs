//! `funnel compare`: every pipeline trained under the same seeds, each run cached, and their
//! test metrics tabulated as in the ESMM paper's Table 2 (`table`), with statistics over seeds
//! (`stats`).
//!
//! A run lives in `OUT/runs/<pipeline>-seed<seed>-<key>`, where the key hashes the resolved
//! pipeline (seed included) and each data file's path and content (SHA-256, each file hashed
//! once per compare). A finished run is read back, not trained again, after its manifest's
//! data is checked against the files; an interrupted one is resumed from its checkpoint (which
//! checks the same). So a compare that stops resumes where it stopped, a repeated one is
//! instant, and an edited file, even one that keeps its size and modification time, is
//! trained anew.

mod page;
pub mod stats;
mod table;
mod text;

pub use table::{Comparison, MetricInfo, PipelineRow};
pub use text::OUTPUTS;

use std::path::{Path, PathBuf};

use crate::checkpoint::{Existing, existing_run};
use crate::config::{Override, Pipeline};
use crate::data::DataFingerprint;
use crate::error::{Error, Result};
use crate::metrics::RunMetrics;
use crate::report::Quiet;
use crate::train::{Control, Start};

/// The most seeds a compare runs per pipeline.
const MAX_SEEDS: u64 = 1000;

/// What a compare tells its user as it goes.
pub trait Progress {
    /// `total` runs are planned.
    fn planned(&mut self, total: usize);
    /// A run starts training (`resumed` when it continues from a checkpoint).
    fn training(&mut self, label: &str, resumed: bool);
    /// A run is done (`cached` when it was read back).
    fn done(&mut self, label: &str, cached: bool);
    fn warning(&mut self, message: &str);
    /// Something the user should know that is not a fault (the encoded cache read or written).
    fn note(&mut self, message: &str);
}

/// One planned run.
struct Planned {
    pipeline: usize,
    seed: u64,
    p: Pipeline,
    dir: PathBuf,
    /// The data files as hashed by this compare.
    data: Vec<DataFingerprint>,
}

/// A pipeline argument: `FILE`, or `FILE@KEY=VALUE@KEY=VALUE` for the file with overrides of
/// its own (`esmm.yaml@model.preset=naive`), so variants of one pipeline need no copies.
struct Variant {
    file: PathBuf,
    own: Vec<Override>,
}

impl Variant {
    /// An override starts at an `@` followed by `KEY=` (a key of letters, digits, `_`, `-`,
    /// `.` and `[i]`); any other `@` belongs to the file name or the value before it.
    fn parse(arg: &str) -> Result<Variant> {
        let starts_override = |part: &str| {
            part.split_once('=').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_-.[]".contains(c))
            })
        };
        let mut pieces: Vec<String> = Vec::new();
        for (i, part) in arg.split('@').enumerate() {
            match pieces.last_mut() {
                Some(last) if i > 0 && !starts_override(part) => {
                    last.push('@');
                    last.push_str(part);
                }
                _ => pieces.push(part.to_string()),
            }
        }
        let file = PathBuf::from(pieces.remove(0));
        if file.as_os_str().is_empty() {
            return Err(Error::Usage(format!(
                "compare argument `{arg}`: no pipeline file before `@`\n  hint: write PIPELINE@KEY=VALUE, e.g. `pipelines/esmm.yaml@model.preset=naive`"
            )));
        }
        let own = pieces
            .iter()
            .map(|p| Override::parse_in(p, arg))
            .collect::<Result<_>>()?;
        Ok(Variant { file, own })
    }
}

/// The pipeline file of a compare argument (`FILE@KEY=VALUE...`), split as compare splits it;
/// none when its overrides do not parse (compare refuses it then).
pub fn pipeline_file(arg: &str) -> Option<PathBuf> {
    Variant::parse(arg).ok().map(|v| v.file)
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
    if !(1..=MAX_SEEDS).contains(&seeds) {
        return Err(Error::Usage(format!(
            "--seeds {seeds}: must be between 1 and {MAX_SEEDS}\n  hint: `--seeds 5` trains every pipeline under seeds 1 to 5 (3 or more give intervals and t-tests)"
        )));
    }
    let variants: Vec<Variant> = args
        .iter()
        .map(|a| Variant::parse(a))
        .collect::<Result<_>>()?;
    for (arg, v) in args.iter().zip(&variants) {
        // An `@` part without `KEY=` stays in the file name: say so when that file is missing.
        if !v.file.exists() && v.file.to_string_lossy().contains('@') {
            return Err(Error::Usage(format!(
                "compare argument `{arg}`: no pipeline file {}\n  hint: an override is written `@KEY=VALUE` (e.g. `@train.epochs=3`); an `@` without `KEY=` after it is read as part of the file name",
                v.file.display()
            )));
        }
    }
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
    let parents = |p: &Pipeline| {
        (0..p.stages.len())
            .map(|k| p.funnel.parent(k))
            .collect::<Vec<_>>()
    };
    for ((arg, v), p) in args.iter().zip(&variants).zip(&pipelines).skip(1) {
        let why = if p.stage_names() != stages {
            format!(
                "its stages {} differ from the first pipeline's ({})",
                p.stage_names().join(" -> "),
                stages.join(" -> ")
            )
        } else if parents(p) != parents(&pipelines[0]) {
            format!(
                "its stages are those of the first pipeline ({}), but an `optional` stage makes their parents differ",
                stages.join(" -> ")
            )
        } else {
            continue;
        };
        return Err(Error::Usage(format!(
            "compare argument `{arg}` ({}): {why}\n  hint: compare pipelines of one funnel: the same stages, in the same order, each `optional` or not in both",
            v.file.display()
        )));
    }
    let seeds: Vec<u64> = (1..=seeds).collect();
    // Each data file hashed once, whichever pipelines read it.
    let mut hashed: std::collections::BTreeMap<(String, PathBuf), DataFingerprint> =
        Default::default();
    let mut data = Vec::new();
    for p in &pipelines {
        let mut files = Vec::new();
        for (split, path) in crate::data::data_files(p) {
            let key = (split.to_string(), path.clone());
            if !hashed.contains_key(&key) {
                let f = DataFingerprint::of(split, &path).map_err(|e| {
                    Error::data(
                        &path,
                        format!("cannot read the {split} file of pipeline {}: {e}", p.file.display()),
                    )
                    .with_hint(format!(
                        "check `data.{split}.path` in {} (paths are relative to the pipeline file) and any override of it",
                        p.file.display()
                    ))
                })?;
                hashed.insert(key.clone(), f);
            }
            files.extend(hashed.get(&key).cloned());
        }
        data.push(files);
    }
    // Made once every pipeline has loaded, so a refused compare leaves nothing behind.
    std::fs::create_dir_all(out).map_err(|e| {
        Error::Usage(format!(
            "--out {}: cannot create the folder: {e}\n  hint: choose a folder you can write",
            out.display()
        ))
    })?;
    let mut plan = Vec::new();
    for (i, p) in pipelines.iter().enumerate() {
        for &seed in &seeds {
            let mut p = p.clone();
            p.set_seed(seed);
            let key = run_key(&p, &data[i])?;
            let dir = out.join("runs").join(format!(
                "{}-seed{seed}-{}",
                file_safe(&labels[i]),
                &key[..12]
            ));
            plan.push(Planned {
                pipeline: i,
                seed,
                p,
                dir,
                data: data[i].clone(),
            });
        }
    }
    progress.planned(plan.len());
    let mut results: Vec<Vec<(u64, PathBuf, RunMetrics)>> = vec![Vec::new(); pipelines.len()];
    for run in plan {
        // A signal during the run before finished it, with its checkpoint: stop here.
        if let Some(signal) = crate::interrupt::requested() {
            return Err(crate::interrupt::stopped(
                signal,
                "the runs finished so far are kept; run the same compare again to go on",
            ));
        }
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
            let (m, _, manifest) = crate::checkpoint::read_finished(&run.dir).map_err(|e| {
                e.with_hint("remove the run directory; compare will train it again")
            })?;
            if let Some(why) = crate::data::changed(&manifest.data, &run.data) {
                return Err(Error::run(
                    &run.dir,
                    format!("this cached run was trained on other data: {why}"),
                )
                .with_hint("remove the run directory; compare will train it again"));
            }
            progress.done(label, true);
            return Ok(m);
        }
        Some(Existing::Unfinished) => Start::Resume,
        Some(Existing::Busy(pid)) => return Err(crate::checkpoint::busy(&run.dir, pid)),
        // Stopped before its first checkpoint: nothing worth keeping.
        Some(Existing::Abandoned) => {
            std::fs::remove_dir_all(&run.dir).map_err(|e| {
                Error::run(
                    &run.dir,
                    format!("cannot remove this run stopped before its first checkpoint: {e}"),
                )
                .with_hint("remove the folder by hand, or give compare another --out")
            })?;
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
    let (metrics, warnings, cache) = crate::runtime::with_threads(p.train.threads, || {
        let (splits, cache) = crate::data::prepare_cached(p)?;
        let m = crate::train::train(p, &splits, &run.dir, start, control, &mut Quiet)?;
        Ok((m, splits.warnings, cache))
    })?;
    for w in warnings {
        progress.warning(&format!("{label}: {w}"));
    }
    for line in cache {
        match line.strip_prefix("warning: ") {
            Some(w) => progress.warning(&format!("{label}: {w}")),
            None => progress.note(&format!("{label}: {line}")),
        }
    }
    progress.done(label, false);
    Ok(metrics)
}

/// A name per pipeline for tables and run directories: its `name` and its own overrides by
/// their last key (`esmm-adult+preset=naive`); where two still share one, the file's stem,
/// then the position.
fn labels(variants: &[Variant], pipelines: &[Pipeline]) -> Vec<String> {
    let base: Vec<String> = variants
        .iter()
        .zip(pipelines)
        .map(|(v, p)| {
            let mut label = p.name.clone();
            for o in &v.own {
                // `model.preset=naive` reads `preset=naive`; `stages[1].tower.dropout=0.3`
                // reads `dropout=0.3`.
                let (key, value) = o.text.split_once('=').unwrap_or((o.text.as_str(), ""));
                let last = key.rsplit('.').next().unwrap_or(key);
                label.push('+');
                label.push_str(&format!("{last}={value}"));
            }
            label
        })
        .collect();
    // Labels still shared get the file's stem, then their position.
    let stemmed: Vec<String> = base
        .iter()
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
        .collect();
    stemmed
        .iter()
        .enumerate()
        .map(|(i, label)| {
            if stemmed.iter().filter(|l| *l == label).count() > 1 {
                format!("{label}-{}", i + 1)
            } else {
                label.clone()
            }
        })
        .collect()
}

/// A label as part of a directory name: ASCII letters, digits and `-_.+=` kept, others `_`.
fn file_safe(label: &str) -> String {
    // At most 100 characters: the run key after it keeps names distinct.
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

/// The cache key of a run: SHA-256 over the resolved pipeline (the seed set) and every data
/// file's path and content hash. Editing the pipeline, the data or the seed gives a new run;
/// anything else finds the old one.
fn run_key(p: &Pipeline, data: &[DataFingerprint]) -> Result<String> {
    let mut text = p.resolved_yaml()?;
    for f in data {
        text.push_str(&format!("\n{}\t{}\t{}", f.split, f.path, f.sha256));
    }
    Ok(crate::fsutil::sha256_bytes(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_arguments_split_at_overrides_only() {
        let v = Variant::parse("pipelines/esmm.yaml").unwrap();
        assert_eq!(
            (v.file, v.own.len()),
            (PathBuf::from("pipelines/esmm.yaml"), 0)
        );
        let v = Variant::parse("a.yaml@model.preset=naive@stages[1].loss_weight=0.5").unwrap();
        assert_eq!(v.file, PathBuf::from("a.yaml"));
        let texts: Vec<&str> = v.own.iter().map(|o| o.text.as_str()).collect();
        assert_eq!(texts, ["model.preset=naive", "stages[1].loss_weight=0.5"]);
        // An `@` not followed by `KEY=` belongs to the file name or to the value before it.
        let v = Variant::parse("runs@home/p.yaml@data.train.path=a@b.csv").unwrap();
        assert_eq!(v.file, PathBuf::from("runs@home/p.yaml"));
        assert_eq!(v.own[0].text, "data.train.path=a@b.csv");
        assert!(Variant::parse("p.yaml@=3").is_ok_and(|v| v.file == Path::new("p.yaml@=3")));
    }
}
