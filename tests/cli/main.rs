//! Integration tests: drive the real `funnel` binary on small slices of the shipped adult data.

mod bags;
mod blocks;
mod cache;
mod catalogue;
mod din;
mod docs;
mod errors;
mod experiments;
mod export;
mod generate;
mod hostile;
mod init;
mod interrupts;
mod leaks;
mod numbers;
mod overrides;
mod resume;
mod runs;
mod serve;
mod splits;
mod trust;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch folder holding data slices and pipelines for one test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Rewrite a scratch file with `from` replaced by `to`; returns its path.
    pub fn edit(&self, name: &str, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.path(name)).expect("read");
        assert!(text.contains(from), "{name} lacks {from:?}");
        self.write(name, &text.replace(from, to))
    }

    /// Rewrite line `n` (1-based, a header is line 1) of a scratch text file with `f`.
    pub fn edit_line(&self, file: &str, n: usize, f: impl Fn(&str) -> String) {
        let text = std::fs::read_to_string(self.path(file)).expect("read");
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == n { f(l) } else { l.to_string() })
            .collect();
        self.write(file, &(lines.join("\n") + "\n"));
    }

    /// The adult pipeline without its validation split: every row of train.csv trains.
    pub fn without_valid_split(&self) {
        self.edit(
            "pipeline.yaml",
            "  valid: { split_from: train, fraction: 0.2 }\n",
            "",
        );
    }

    /// `pipeline.yaml` trained into `run` and stopped after its third step: an unfinished run.
    pub fn stopped(&self, run: &str) {
        let o = self.run(&[
            "train",
            "pipeline.yaml",
            "--out",
            run,
            "--stop-at-step",
            "3",
        ]);
        assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    }

    /// The header and the first `rows` data rows of a shipped adult file.
    pub fn adult_slice(&self, file: &str, rows: usize, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(repo().join("data/adult").join(file)).expect("adult");
        let slice: Vec<&str> = text.lines().take(rows + 1).collect();
        self.write(name, &(slice.join("\n") + "\n"))
    }

    /// One column of a scratch CSV with a header (no quoted fields), cells trimmed.
    pub fn csv_column(&self, file: &str, name: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(file)).expect("csv");
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        let at = header
            .split(',')
            .position(|h| h.trim() == name)
            .expect(name);
        lines
            .map(|l| l.split(',').nth(at).expect("field").trim().to_string())
            .collect()
    }

    /// The JSON header of a run's weights file: the names and shapes of its tensors.
    pub fn weights_header(&self, run: &str) -> String {
        let weights = std::fs::read(self.path(run).join("weights.safetensors")).expect("weights");
        let len = u64::from_le_bytes(weights[..8].try_into().expect("8 bytes")) as usize;
        String::from_utf8_lossy(&weights[8..8 + len]).into_owned()
    }

    /// Run a command that must be refused as a usage or input error (exit code 2, no panic);
    /// its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }

    /// One tensor of a run's weights file, by key.
    pub fn weights_tensor(&self, run: &str, key: &str) -> Vec<f32> {
        let weights = std::fs::read(self.path(run).join("weights.safetensors")).expect("weights");
        let len = u64::from_le_bytes(weights[..8].try_into().expect("8 bytes")) as usize;
        let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + len]).expect("json");
        let offsets = &header[key]["data_offsets"];
        let (a, b) = (
            offsets[0].as_u64().expect("start") as usize,
            offsets[1].as_u64().expect("end") as usize,
        );
        weights[8 + len + a..8 + len + b]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    }

    /// The two-stage adult pipeline (click, conversion) with a `model` block given inline, e.g.
    /// `"model: { preset: aitm }"`.
    pub fn adult_model(&self, model: &str) -> PathBuf {
        self.adult_pipeline(&format!("{CLICK}{CONVERSION}"), "");
        let text = std::fs::read_to_string(self.path("pipeline.yaml")).expect("pipeline");
        let text = text.replace("train:\n  epochs", &format!("{model}\ntrain:\n  epochs"));
        self.write("pipeline.yaml", &text)
    }

    /// Train/test slices of adult plus a pipeline over them with the given stages block.
    pub fn adult_pipeline(&self, stages: &str, extra_train: &str) -> PathBuf {
        self.adult_slice("adult.data", 3000, "train.csv");
        self.adult_slice("adult.test", 1500, "test.csv");
        self.write("pipeline.yaml", &adult_yaml(stages, extra_train))
    }

    pub fn run(&self, args: &[&str]) -> Output {
        funnel(self.dir.path(), args)
    }
}

impl Scratch {
    /// `funnel generate SPEC --rows ROWS [--seed SEED] --out OUT` in the scratch folder; it
    /// must succeed.
    pub fn generate(&self, spec: &str, rows: usize, seed: Option<u64>, out: &str) {
        let rows = rows.to_string();
        let seed = seed.map(|s| s.to_string());
        let mut args = vec!["generate", spec, "--rows", &rows, "--out", out];
        if let Some(s) = &seed {
            args.extend(["--seed", s]);
        }
        ok(&self.run(&args));
    }

    /// The run directory `run`'s metrics.json.
    pub fn metrics(&self, run: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(run).join("metrics.json")).expect("metrics");
        serde_json::from_str(&text).expect("json")
    }

    /// A test AUC of the run `run`: stage `stage`'s `cumulative` or `conditional` prediction.
    pub fn test_auc(&self, run: &str, stage: usize, space: &str) -> f64 {
        self.metrics(run)["test"][stage][space]["auc"]
            .as_f64()
            .expect("auc")
    }

    /// The run directory `run`'s weights file, as bytes.
    pub fn weights(&self, run: &str) -> Vec<u8> {
        std::fs::read(self.path(run).join("weights.safetensors")).expect("weights")
    }
}

pub fn funnel(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run funnel")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Assert success, showing the output otherwise.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "funnel failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

pub const CLICK: &str = r#"  - name: click
    label: { column: Y, positive: [">50K", ">50K."], negative: ["<=50K", "<=50K."] }
    tower: { hidden: [16] }
"#;
pub const CONVERSION: &str = r#"  - name: conversion
    label: { column: marital-status, positive: [Never-married], meaning: given_previous }
    tower: { hidden: [16] }
"#;

pub fn adult_yaml(stages: &str, extra_train: &str) -> String {
    format!(
        r#"name: slice
data:
  train:
    path: train.csv
    csv: {{ trim_whitespace: true, null_values: ["?"] }}
  valid: {{ split_from: train, fraction: 0.2 }}
  test:
    path: test.csv
    csv: {{ trim_whitespace: true, null_values: ["?"] }}
features:
  embedding_dim: 4
  categorical:
    - name: workclass
    - name: education
    - name: occupation
    - name: relationship
    - name: sex
  numeric:
    - name: age
    - name: capital-gain
      transform: log1p
    - name: hours-per-week
stages:
{stages}train:
  epochs: 6
  batch_size: 128
  threads: 2
{extra_train}"#
    )
}

/// Wait (at most 60 s) until `ready` holds.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn signal(child: &Child, name: &str) {
    // The shell's own `kill` (always there, unlike /usr/bin/kill).
    let o = Command::new("sh")
        .args(["-c", &format!("kill -{name} {}", child.id())])
        .output()
        .expect("kill");
    assert!(o.status.success(), "kill -{name}");
}

/// `train pipeline.yaml --out RUN` as a child process (stderr piped), slowed by a pause of
/// `pause_ms` in each checkpoint write before its rename.
pub fn slow_child(s: &Scratch, run: &str, pause_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args([
            "train",
            "pipeline.yaml",
            "--out",
            run,
            "--checkpoint-pause-ms",
            &pause_ms.to_string(),
        ])
        .current_dir(s.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn funnel")
}

/// The temporary file of a checkpoint being written, if any.
pub fn checkpoint_in_progress(s: &Scratch, run: &str) -> bool {
    std::fs::read_dir(s.path(run)).is_ok_and(|d| {
        d.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".checkpoint.safetensors.tmp-")
        })
    })
}
