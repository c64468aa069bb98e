//! `funnel train`: a new run from a pipeline, or an interrupted one resumed, with its report.

use std::path::PathBuf;

use super::terminal::Terminal;
use crate::checkpoint::{Existing, RunWriter, default_run_dir, existing_run};
use crate::config::{Override, Pipeline};
use crate::data;
use crate::error::{Error, Result};
use crate::runtime::with_threads;
use crate::train::{Control, Start, train as train_run};

/// The arguments of `funnel train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Pipeline YAML file.
    #[arg(required_unless_present = "resume")]
    pub pipeline: Option<PathBuf>,
    /// Run directory, new or empty (default: runs/<name>-<UTC time>-seed<seed>-<pid>).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Override `train.seed`.
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// Override a key of the pipeline, e.g. `--set train.epochs=3` or
    /// `--set stages.conversion.tower.hidden=[32]` (repeatable; recorded in the run's
    /// resolved pipeline).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub set: Vec<String>,
    /// Continue the unfinished run in this directory from its last checkpoint, with the
    /// pipeline stored there.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "pipeline")]
    pub resume: Option<PathBuf>,
    /// Do not write `report.html` (the run drawn as one page) into the run directory.
    #[arg(long)]
    pub no_report: bool,
    /// Testing: stop as if interrupted by SIGINT after this step (counted over epochs).
    #[arg(long, hide = true)]
    pub stop_at_step: Option<usize>,
    /// Testing: pause this long before each checkpoint's rename.
    #[arg(long, hide = true, default_value_t = 0)]
    pub checkpoint_pause_ms: u64,
}

pub fn train(a: TrainArgs) -> Result<()> {
    let TrainArgs {
        pipeline,
        out,
        seed,
        set,
        resume,
        no_report,
        stop_at_step,
        checkpoint_pause_ms,
    } = a;
    let set: Vec<Override> = set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<_>>()?;
    let (p, out, start) = match (resume, pipeline) {
        (Some(dir), _) => {
            // What the directory holds decides, before any data is read.
            let start = match existing_run(&dir)? {
                Some(Existing::Unfinished) => Start::Resume,
                Some(Existing::Abandoned) => {
                    eprintln!(
                        "notice: {} was stopped before its first checkpoint: there is nothing to resume, so the run starts over from its pipeline.yaml",
                        dir.display()
                    );
                    Start::Fresh
                }
                Some(Existing::Busy(pid)) => return Err(crate::checkpoint::busy(&dir, pid)),
                // `reopen_check` names what is wrong with a finished run or another folder.
                Some(Existing::Finished | Existing::Other) => Start::Resume,
                None => {
                    return Err(Error::run(&dir, "holds no run (it is missing or empty)")
                        .with_hint("give the run directory `funnel train` printed"));
                }
            };
            if start == Start::Resume {
                RunWriter::reopen_check(&dir)?;
            }
            let p = Pipeline::load(&dir.join(crate::checkpoint::PIPELINE))?;
            (p, dir, start)
        }
        (None, Some(pipeline)) => {
            let mut p = Pipeline::load_with(&pipeline, &set)?;
            if let Some(s) = seed {
                p.set_seed(s);
            }
            let out = out.unwrap_or_else(|| default_run_dir(&p));
            RunWriter::check_new(&out)?;
            if existing_run(&out)? == Some(Existing::Abandoned) {
                eprintln!(
                    "notice: {} held a run stopped before its first checkpoint: it is started over",
                    out.display()
                );
            }
            (p, out, Start::Fresh)
        }
        (None, None) => {
            return Err(Error::Usage(
                "give a pipeline file, or --resume RUN_DIR".into(),
            ));
        }
    };
    // A resumed run reads its data where the run it continues did: its encoded cache, when it
    // had one (a run larger than memory must not load its files whole).
    let cache_root = match start {
        Start::Resume => crate::train::resume::data_cache(&out)?,
        Start::Fresh => None,
    };
    with_threads(p.train.threads, || {
        let (splits, cache) = match &cache_root {
            Some(root) => data::prepare_cached_in(&p, root)?,
            None => data::prepare_cached(&p)?,
        };
        super::print_notes(&splits.warnings, &cache);
        eprintln!(
            "data: train {} rows{}{}; {} stage(s): {}",
            splits.train.rows(),
            splits
                .valid
                .as_ref()
                .map(|d| format!(", valid {}", d.rows()))
                .unwrap_or_default(),
            splits
                .test
                .as_ref()
                .map(|d| format!(", test {}", d.rows()))
                .unwrap_or_default(),
            p.stages.len(),
            p.stage_names().join(" -> ")
        );
        let control = Control {
            signal: crate::interrupt::flag(),
            stop_at_step,
            checkpoint_pause: std::time::Duration::from_millis(checkpoint_pause_ms),
            no_report,
        };
        train_run(&p, &splits, &out, start, &control, &mut Terminal::default())?;
        outln!("run directory: {}", out.display());
        if !no_report {
            outln!(
                "report: {}",
                out.join(crate::html::report::REPORT).display()
            );
        }
        Ok(())
    })
}
