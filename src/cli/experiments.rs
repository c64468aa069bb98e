//! The experiment commands: `report` (a run drawn as one HTML page) and `compare` (pipelines
//! over seeds, tabulated), with compare's progress on the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::output::check_output;
use crate::compare::{Progress, compare};
use crate::config::Override;
use crate::error::Result;
use crate::html::report::{REPORT, render_run};
use crate::train::Control;

/// `funnel report RUN_DIR [--out FILE]`: into the run directory by default.
pub fn report(run: &Path, out: Option<PathBuf>, force: bool) -> Result<()> {
    let html = render_run(run)?;
    let path = match out {
        Some(out) => {
            check_output(&out, &[], force)?;
            out
        }
        None => run.join(REPORT),
    };
    crate::fsutil::write_atomic(&path, html.as_bytes())?;
    outln!("report: {}", path.display());
    Ok(())
}

/// `funnel compare PIPELINE... --seeds N --out DIR`.
pub fn compare_cmd(
    pipelines: &[String],
    set: &[Override],
    seeds: u64,
    out: &Path,
    force: bool,
) -> Result<()> {
    check_compare_out(pipelines, out, force)?;
    let control = Control {
        signal: crate::interrupt::flag(),
        stop_at_step: None,
        checkpoint_pause: std::time::Duration::ZERO,
        no_report: false,
    };
    let mut progress = Bar::default();
    let c = compare(pipelines, set, seeds, out, &control, &mut progress)?;
    progress.finish();
    // The folder may have changed in the hours the runs took.
    check_compare_out(pipelines, out, force)?;
    out!("{}", c.markdown());
    for f in c.write(out)? {
        outln!("wrote {}", f.display());
    }
    Ok(())
}

/// Before any run is trained, and again just before the tables are written: `--out` is a
/// folder (or not there yet), and each table it will hold may be written under the rules of
/// every output (`check_output`). A table that an earlier compare wrote (its text is one:
/// `compare_table_text`) is replaced without `--force`; any other file needs it.
fn check_compare_out(pipelines: &[String], out: &Path, force: bool) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(out)
        && !meta.is_dir()
    {
        return Err(crate::error::Error::Usage(format!(
            "--out {}: exists and is not a folder\n  hint: compare writes its runs and tables into a folder; choose a new name",
            out.display()
        )));
    }
    // A pipeline file is never written over.
    let inputs: Vec<PathBuf> = pipelines
        .iter()
        .filter_map(|a| crate::compare::pipeline_file(a))
        .collect();
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    for name in crate::compare::OUTPUTS {
        let path = out.join(name);
        let earlier = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
            && std::fs::read_to_string(&path).is_ok_and(|t| compare_table_text(name, &t));
        check_output(&path, &inputs, force || earlier)?;
    }
    Ok(())
}

/// Whether `text` is a table compare writes under `name`: what it starts with, or (the JSON) a
/// comparison that reads back.
fn compare_table_text(name: &str, text: &str) -> bool {
    match name {
        "compare.md" => text.starts_with("AUC on the "),
        "compare.csv" => text.starts_with("pipeline,metric,n,mean,sd,"),
        "compare.json" => serde_json::from_str::<crate::compare::Comparison>(text).is_ok(),
        "compare.html" => {
            text.starts_with("<!DOCTYPE html>") && text.contains("<title>funnel compare</title>")
        }
        _ => false,
    }
}

/// Compare's progress: a bar of runs (with the current run and the time left) on a terminal,
/// a line per run otherwise.
#[derive(Default)]
struct Bar {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    trained: usize,
    started: Option<Instant>,
}

impl Bar {
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// The time left, from the runs trained so far (runs read back take no time).
    fn left(&self) -> String {
        match (self.started, self.trained) {
            (Some(s), n) if n > 0 => {
                let secs = s.elapsed().as_secs_f64() / n as f64 * (self.total - self.done) as f64;
                if secs < 1.0 {
                    "less than a second left".into()
                } else {
                    format!("about {} left", human(secs))
                }
            }
            _ => "time left not known yet".into(),
        }
    }
}

fn human(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

impl Progress for Bar {
    fn planned(&mut self, total: usize) {
        self.total = total;
        self.started = Some(Instant::now());
        self.bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} runs  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b
        });
    }

    fn training(&mut self, label: &str, resumed: bool) {
        let verb = if resumed { "resuming" } else { "training" };
        let text = format!("{verb} {label}; {}", self.left());
        match &self.bar {
            Some(b) => b.set_message(text),
            None => eprintln!("[{}/{}] {text}", self.done + 1, self.total),
        }
    }

    fn done(&mut self, label: &str, cached: bool) {
        self.done += 1;
        if cached {
            self.line(&format!(
                "[{}/{}] {label}: finished before, read back",
                self.done, self.total
            ));
        } else {
            self.trained += 1;
        }
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn warning(&mut self, message: &str) {
        self.line(&format!("warning: {message}"));
    }

    fn note(&mut self, message: &str) {
        self.line(message);
    }
}
