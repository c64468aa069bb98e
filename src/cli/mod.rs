//! The command line: argument parsing and one function per command. `main` only calls `run`.

/// `print!` for a standard output that may be closed: `funnel compare | head` reads the first
/// lines and closes the pipe, and the command goes on to write its files (which `print!` would
/// have stopped with a panic). What the reader did not take is lost to it, not to the run.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` for a standard output that may be closed (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod data_cmd;
mod eval;
mod experiments;
mod export_cmd;
mod output;
mod predict;
mod prepare;
mod signals;
mod terminal;
mod train_cmd;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::checkpoint::Run;
use crate::config::{FileSource, Override, Pipeline, format_from_extension};
use crate::error::Result;
use crate::generate::{CHUNK_ROWS, Spec, generate};
use crate::runtime::with_threads;
use output::check_output;

#[derive(Parser)]
#[command(
    name = "funnel",
    version,
    about = "Train multi-stage conversion funnels (ESMM) from a YAML pipeline"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter pipeline for a data file: every column profiled and declared.
    Init {
        /// CSV or Parquet file.
        data: PathBuf,
        /// The stages in causal order: `name` (a 0/1 column of that name), `name=column`, or
        /// `name=column:positive|positive`.
        #[arg(long, value_delimiter = ',', required = true)]
        stages: Vec<String>,
        /// Where to write the pipeline.
        #[arg(long, default_value = "pipeline.yaml")]
        out: PathBuf,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check a pipeline: the YAML, and that its data files exist and have the columns it reads.
    Validate {
        /// Pipeline YAML file.
        pipeline: PathBuf,
        /// Override a key of the pipeline, e.g. `--set train.epochs=3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Encode a pipeline's data once into its cache (`.funnel-cache/` beside the pipeline), which
    /// `train` and `compare` then read instead of the files while they and the encoding settings
    /// stay the same.
    Encode {
        /// Pipeline YAML file.
        pipeline: PathBuf,
        /// Override a key of the pipeline, e.g. `--set train.seed=3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Train a pipeline and write a run directory; or continue an interrupted run.
    Train(train_cmd::TrainArgs),
    /// Draw a run as one self-contained HTML page: losses and AUC per epoch, reliability
    /// diagrams, the funnel, the metrics table and the resolved pipeline.
    Report {
        /// Run directory written by `funnel train`.
        run: PathBuf,
        /// Output file (default: RUN_DIR/report.html).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
    /// Train pipelines under the same seeds and tabulate their AUCs: mean ± sd, 95% intervals,
    /// paired t-tests against the first pipeline (Markdown, CSV, JSON and HTML).
    Compare {
        /// Pipeline YAML files, each optionally with overrides of its own
        /// (`esmm.yaml@model.preset=naive`); the first is the reference of the differences.
        #[arg(required = true, value_name = "PIPELINE[@KEY=VALUE]")]
        pipelines: Vec<String>,
        /// Train every pipeline under seeds 1 to N.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Where the runs and the tables go; finished runs found there are read back.
        #[arg(long, default_value = "compare")]
        out: PathBuf,
        /// Override a key of every pipeline, e.g. `--set train.epochs=3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Replace compare.md, .csv, .json and .html in `--out` when they are not an earlier
        /// compare's (those are replaced without it).
        #[arg(long)]
        force: bool,
    },
    /// Generate a synthetic funnel with known true probabilities for every row and stage.
    Generate {
        /// Generator spec YAML file (see docs/generate.md).
        spec: PathBuf,
        /// Number of rows to write.
        #[arg(long)]
        rows: u64,
        /// Output file: `.parquet` or `.pq` writes Parquet, `.csv.gz` gzip-compressed CSV,
        /// anything else CSV.
        #[arg(long)]
        out: PathBuf,
        /// Draw the rows with this seed, from the spec's world (the same hidden effects and
        /// rates as without it: fresh rows of the same funnel).
        #[arg(long)]
        seed: Option<u64>,
        /// Override the spec's `seed`: another hidden world.
        #[arg(long)]
        world_seed: Option<u64>,
        /// Worker threads; 0 = one per available core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
    /// Turn a public log format into a funnel table.
    Prepare {
        #[command(subcommand)]
        format: prepare::PrepareFormat,
    },
    /// Print the metrics table of a trained run on labelled data.
    Eval {
        /// Run directory written by `funnel train`.
        #[arg(long)]
        run: PathBuf,
        /// Labelled CSV or Parquet file.
        #[arg(long, required_unless_present = "split", conflicts_with = "split")]
        data: Option<PathBuf>,
        /// One of the run's own splits instead of a file: a split carved from the training
        /// file is carved again with the run's seed (the file must be unchanged).
        #[arg(long, value_enum)]
        split: Option<predict::SplitArg>,
        /// Print the metrics as JSON (the blocks of metrics.json's `test`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write each stage's conditional and cumulative probability for every row of a file.
    Predict {
        /// Run directory written by `funnel train`.
        #[arg(long)]
        run: PathBuf,
        /// CSV or Parquet file with the pipeline's feature columns.
        #[arg(long, required_unless_present = "split", conflicts_with = "split")]
        data: Option<PathBuf>,
        /// One of the run's own splits instead of a file (its rows as `eval --split` scores
        /// them, with a `row` column: the row's number in the file).
        #[arg(long, value_enum)]
        split: Option<predict::SplitArg>,
        /// Output file: `.parquet` or `.pq` writes Parquet, `.csv.gz` gzip-compressed CSV,
        /// anything else CSV.
        #[arg(long)]
        out: PathBuf,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
        /// Input columns to copy into the output unchanged, before the predictions
        /// (comma-separated; the pipeline's `id_column` is always copied).
        #[arg(long, value_delimiter = ',', value_name = "COLS")]
        keep: Vec<String>,
    },
    /// Export a finished run for serving elsewhere: an ONNX model (opset 17) taking the encoded
    /// inputs and returning each stage's conditional and cumulative probability, and beside it
    /// `<out>.json`, how to encode raw values (docs/export.md).
    Export {
        /// Run directory written by `funnel train`.
        run: PathBuf,
        #[arg(long, value_enum, default_value = "onnx")]
        format: export_cmd::Format,
        /// The model file to write (`model.onnx`); its sidecar goes to `<out>.json`.
        #[arg(long)]
        out: PathBuf,
        /// Replace `--out` and its sidecar when they exist.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    signals::install()?;
    match cli.command {
        Command::Validate { pipeline, set } => data_cmd::validate(&pipeline, &overrides(&set)?),
        Command::Encode { pipeline, set } => data_cmd::encode(&pipeline, &overrides(&set)?),
        Command::Init {
            data,
            stages,
            out,
            force,
        } => {
            output::input_exists("init", &data)?;
            check_output(&out, &[&data], force)?;
            let stages = stages
                .iter()
                .map(|s| crate::init::StageArg::parse(s))
                .collect::<Result<Vec<_>>>()?;
            // The pipeline's path to the data, relative to where the pipeline is written.
            let base = out.parent().filter(|p| !p.as_os_str().is_empty());
            let data_ref = match base {
                None => data.display().to_string(),
                Some(_) => std::fs::canonicalize(&data)
                    .map_err(|e| crate::error::Error::io(&data, e))?
                    .display()
                    .to_string(),
            };
            let (yaml, notes) = crate::init::starter(&data, &data_ref, &stages)?;
            crate::fsutil::write_atomic(&out, yaml.as_bytes())?;
            for n in notes {
                eprintln!("guessed: {n}");
            }
            outln!(
                "wrote {}; check it with `funnel validate {}`",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::Train(args) => train_cmd::train(args),
        Command::Report { run, out, force } => experiments::report(&run, out, force),
        Command::Compare {
            pipelines,
            seeds,
            out,
            set,
            force,
        } => experiments::compare_cmd(&pipelines, &overrides(&set)?, seeds, &out, force),
        Command::Eval {
            run,
            data,
            split,
            json,
        } => eval::eval(&run, predict::Input::new(data, split)?, json),
        Command::Prepare { format } => prepare::run(format),
        Command::Generate {
            spec,
            rows,
            out,
            seed,
            world_seed,
            threads,
            force,
        } => {
            check_output(&out, &[&spec], force)?;
            let mut spec = Spec::load(&spec)?;
            if let Some(w) = world_seed {
                spec.seed = w;
            }
            spec.sample_seed = seed;
            with_threads(threads, || {
                let start = std::time::Instant::now();
                let summary = generate(&spec, rows, &out, CHUNK_ROWS)?;
                let secs = start.elapsed().as_secs_f64();
                eprintln!(
                    "wrote {rows} rows to {} in {secs:.2}s ({:.0} rows/s)",
                    out.display(),
                    rows as f64 / secs.max(1e-9)
                );
                for (k, (&reached, &target)) in summary.reached.iter().zip(&spec.rates).enumerate()
                {
                    let (of, base) = match spec.parent(k) {
                        None => ("rows".to_string(), rows),
                        Some(p) => (format!("`{}`", spec.stage_names[p]), summary.reached[p]),
                    };
                    // After an optional stage the target is a mixture of two rates: say both.
                    let target = match spec.rates_without[k] {
                        Some(without) => format!(
                            "targets {:.4}% after `{}`, {:.4}% without",
                            100.0 * target,
                            spec.stage_names[k - 1],
                            100.0 * without
                        ),
                        None => format!("target {:.4}%", 100.0 * target),
                    };
                    eprintln!(
                        "  {}: {reached} rows, {:.4}% of {of} ({target})",
                        spec.stage_names[k],
                        100.0 * reached as f64 / base.max(1) as f64,
                    );
                }
                Ok(())
            })
        }
        Command::Export {
            run,
            format,
            out,
            force,
        } => export_cmd::export(&run, format, &out, force),
        Command::Predict {
            run,
            data,
            split,
            out,
            force,
            keep,
        } => {
            let input = predict::Input::new(data, split)?;
            let r = Run::open(&run)?;
            // Never over a data file of the run, nor over `--data`.
            let mut inputs = vec![r.pipeline.train_source.path.clone()];
            for s in [&r.pipeline.valid, &r.pipeline.test].into_iter().flatten() {
                if let crate::config::SplitSource::File(f) = s {
                    inputs.push(f.path.clone());
                }
            }
            if let predict::Input::File(d) = &input {
                inputs.push(d.clone());
            }
            let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
            check_output(&out, &inputs, force)?;
            with_threads(r.pipeline.train.threads, || {
                predict::predict(&r, &input, &out, &keep)
            })
        }
    }
}

fn overrides(set: &[String]) -> Result<Vec<Override>> {
    set.iter().map(|s| Override::parse(s)).collect()
}

/// The data's warnings, then what the cache did, on standard error.
fn print_notes(warnings: &[String], lines: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    for line in lines {
        eprintln!("{line}");
    }
}

/// A data file read with the training source's CSV settings (format from its extension).
fn source_like_train(p: &Pipeline, path: &Path) -> FileSource {
    let format = format_from_extension(path).unwrap_or(p.train_source.format);
    FileSource {
        path: path.to_path_buf(),
        format,
        csv: p.train_source.csv.clone(),
    }
}
