//! `funnel train`: a new run from a pipeline, or an interrupted one resumed, with its report.

use std::path::PathBuf;

use super::signals;
use super::terminal::Terminal;
use crate::checkpoint::{RunWriter, default_run_dir};
use crate::config::{Override, Pipeline};
use crate::data;
use crate::error::{Error, Result};
use crate::runtime::with_threads;
use crate::train::{Control, Start, train as train_run};

/// The arguments of `funnel train`.
pub struct TrainArgs {
    pub pipeline: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    pub set: Vec<Override>,
    pub resume: Option<PathBuf>,
    pub no_report: bool,
    pub stop_at_step: Option<usize>,
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
    let (p, out, start) = match (resume, pipeline) {
        (Some(dir), _) => {
            let p = Pipeline::load(&dir.join(crate::checkpoint::PIPELINE))?;
            (p, dir, Start::Resume)
        }
        (None, Some(pipeline)) => {
            let mut p = Pipeline::load_with(&pipeline, &set)?;
            if let Some(s) = seed {
                p.set_seed(s);
            }
            let out = out.unwrap_or_else(|| default_run_dir(&p));
            RunWriter::check_new(&out)?;
            (p, out, Start::Fresh)
        }
        (None, None) => {
            return Err(Error::Usage(
                "give a pipeline file, or --resume RUN_DIR".into(),
            ));
        }
    };
    with_threads(p.train.threads, || {
        let splits = data::prepare(&p)?;
        for w in &splits.warnings {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "data: train {} rows{}{}; {} stage(s): {}",
            splits.train.rows,
            splits
                .valid
                .as_ref()
                .map(|d| format!(", valid {}", d.rows))
                .unwrap_or_default(),
            splits
                .test
                .as_ref()
                .map(|d| format!(", test {}", d.rows))
                .unwrap_or_default(),
            p.stages.len(),
            p.stage_names().join(" -> ")
        );
        let control = Control {
            signal: crate::interrupt::flag(),
            stop_at_step,
            checkpoint_pause: std::time::Duration::from_millis(checkpoint_pause_ms),
        };
        let _handlers = signals::install()?;
        train_run(&p, &splits, &out, start, &control, &mut Terminal::default())?;
        println!("run directory: {}", out.display());
        if !no_report {
            let report = crate::html::report::write(&out)?;
            println!("report: {}", report.display());
        }
        Ok(())
    })
}
