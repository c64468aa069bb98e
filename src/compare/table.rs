//! The comparison table: which metrics are compared, their values per seed, the statistics over
//! seeds, and the same table as Markdown, CSV and JSON.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::stats::{Paired, Summary, paired_t, summary};
use crate::config::Pipeline;
use crate::metrics::{RunMetrics, StageMetrics};

/// The test every difference is given, as the outputs name it.
pub const TEST: &str = "paired t-test over seeds (two-sided), each pipeline against the first";

/// One compared metric (a column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    /// Stable id: `<stage>.<cumulative|conditional>.<auc|truth_auc>`.
    pub id: String,
    /// What it measures, on which rows.
    pub label: String,
}

/// One pipeline (a row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRow {
    pub name: String,
    pub file: PathBuf,
    /// The run directory of each seed.
    pub runs: Vec<PathBuf>,
    /// Per metric, the value of each seed (in `Comparison::seeds` order; `null` when undefined).
    pub values: Vec<Vec<Option<f64>>>,
    /// Per metric, over the seeds where it is defined.
    pub summary: Vec<Option<Summary>>,
    /// Per metric, against the first pipeline (none for the first).
    pub against_first: Vec<Option<Paired>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub seeds: Vec<u64>,
    /// The split the metrics are measured on (`test`, or `valid` without a test split).
    pub split: String,
    pub test: String,
    pub metrics: Vec<MetricInfo>,
    pub pipelines: Vec<PipelineRow>,
}

/// The metrics compared for a funnel: each stage's cumulative AUC on all rows; for stages with
/// a parent, the conditional AUC on rows that reached it; with generated data, the conditional
/// AUC against counterfactual labels on all rows (the entire space ESMM is about).
fn metric_infos(p: &Pipeline, truth: bool) -> Vec<MetricInfo> {
    let mut out = Vec::new();
    for (k, s) in p.stages.iter().enumerate() {
        let name = &s.name;
        out.push(MetricInfo {
            id: format!("{name}.cumulative.auc"),
            label: format!("P({name}) AUC, all rows"),
        });
        if let Some(parent) = p.funnel.parent(k).map(|j| &p.stages[j].name) {
            out.push(MetricInfo {
                id: format!("{name}.conditional.auc"),
                label: format!("P({name}|{parent}) AUC, rows that reached {parent}"),
            });
            if truth {
                out.push(MetricInfo {
                    id: format!("{name}.conditional.truth_auc"),
                    label: format!("P({name}|{parent}) AUC vs counterfactual labels, all rows"),
                });
            }
        }
    }
    out
}

fn value(m: &[StageMetrics], id: &str) -> Option<f64> {
    let mut parts = id.split('.');
    let (stage, space, what) = (parts.next()?, parts.next()?, parts.next()?);
    let s = m.iter().find(|s| s.name == stage)?;
    let (block, truth) = match space {
        "cumulative" => (&s.cumulative, s.truth.as_ref().map(|t| &t.cumulative)),
        _ => (&s.conditional, s.truth.as_ref().map(|t| &t.conditional)),
    };
    match what {
        "auc" => block.auc,
        _ => truth?.auc_counterfactual,
    }
}

/// Build the comparison from each pipeline's runs, (seed, run directory, metrics) in seed order.
pub(super) fn tabulate(
    labels: &[String],
    files: &[PathBuf],
    first: &Pipeline,
    seeds: &[u64],
    results: Vec<Vec<(u64, PathBuf, RunMetrics)>>,
) -> Comparison {
    // One split for every run: test when every run has one, else validation, so no column
    // mixes the two.
    let all_test = results.iter().flatten().all(|(_, _, m)| m.test.is_some());
    fn split(m: &RunMetrics, test: bool) -> Option<&[StageMetrics]> {
        if test {
            m.test.as_deref()
        } else {
            m.valid.as_deref()
        }
    }
    let truth = results
        .iter()
        .flatten()
        .all(|(_, _, m)| split(m, all_test).is_some_and(|s| s.iter().all(|s| s.truth.is_some())));
    let metrics = metric_infos(first, truth);
    let mut rows: Vec<PipelineRow> = Vec::new();
    for ((name, file), runs) in labels.iter().zip(files).zip(results) {
        let values: Vec<Vec<Option<f64>>> = metrics
            .iter()
            .map(|mi| {
                runs.iter()
                    .map(|(_, _, m)| split(m, all_test).and_then(|s| value(s, &mi.id)))
                    .collect()
            })
            .collect();
        let summary = values
            .iter()
            .map(|v| summary(&v.iter().flatten().copied().collect::<Vec<_>>()))
            .collect();
        let against_first = values
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let base = &rows.first()?.values[j];
                // Pairs where both seeds have a value.
                let (x, b): (Vec<f64>, Vec<f64>) = v
                    .iter()
                    .zip(base)
                    .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
                    .unzip();
                paired_t(&x, &b)
            })
            .collect();
        rows.push(PipelineRow {
            name: name.clone(),
            file: file.clone(),
            runs: runs.into_iter().map(|(_, d, _)| d).collect(),
            values,
            summary,
            against_first,
        });
    }
    Comparison {
        seeds: seeds.to_vec(),
        split: if all_test { "test" } else { "valid" }.into(),
        test: TEST.into(),
        metrics,
        pipelines: rows,
    }
}

impl Comparison {
    /// The rows with the highest mean of metric `j` (every compared metric is an AUC): all
    /// that tie at the top; none with fewer than two rows to compare.
    pub fn best(&self, j: usize) -> Vec<usize> {
        let means: Vec<(usize, f64)> = self
            .pipelines
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.summary[j].as_ref()?.mean)))
            .collect();
        if means.len() < 2 {
            return Vec::new();
        }
        let top = means.iter().map(|m| m.1).fold(f64::NEG_INFINITY, f64::max);
        means
            .into_iter()
            .filter(|m| m.1 >= top - 1e-12)
            .map(|m| m.0)
            .collect()
    }

    /// Cells of the three tables: mean ± sd, the 95% interval, the difference from the first
    /// pipeline with its p-value. A best cell starts with `*`.
    pub fn cells(&self) -> [Vec<Vec<String>>; 3] {
        let mut tables: [Vec<Vec<String>>; 3] = Default::default();
        let best: Vec<Vec<usize>> = (0..self.metrics.len()).map(|j| self.best(j)).collect();
        for (i, r) in self.pipelines.iter().enumerate() {
            let mut rows = [
                vec![r.name.clone()],
                vec![r.name.clone()],
                vec![r.name.clone()],
            ];
            for j in 0..self.metrics.len() {
                let best = if best[j].contains(&i) { "*" } else { "" };
                let (mean, ci) = match &r.summary[j] {
                    Some(s) => (
                        format!("{best}{:.4} ± {:.4}", s.mean, s.sd),
                        s.ci95
                            .map_or("–".into(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]")),
                    ),
                    None => ("–".into(), "–".into()),
                };
                let diff = match &r.against_first[j] {
                    Some(p) => match p.p {
                        Some(pv) => format!("{} (p {})", signed(p.diff), p_value(pv)),
                        None => format!("{} (the same in every seed: no test)", signed(p.diff)),
                    },
                    None if i == 0 => "reference".into(),
                    None => "–".into(),
                };
                rows[0].push(mean);
                rows[1].push(ci);
                rows[2].push(diff);
            }
            for (t, row) in tables.iter_mut().zip(rows) {
                t.push(row);
            }
        }
        tables
    }

    pub fn header(&self) -> Vec<String> {
        std::iter::once("pipeline".to_string())
            .chain(self.metrics.iter().map(|m| m.label.clone()))
            .collect()
    }

    /// The tables as Markdown, with what they are.
    pub fn markdown(&self) -> String {
        let [means, cis, diffs] = self.cells();
        let mut s = format!(
            "AUC on the {} split over seeds {} ({} runs per pipeline). Mean ± sample standard deviation; the best mean per column in bold.\n\n",
            self.split,
            seed_list(&self.seeds),
            self.seeds.len()
        );
        // A `|` inside a cell (`P(conversion|click)`) would end it.
        let cell = |c: &str| c.replace('|', "\\|");
        let table = |s: &mut String, rows: &[Vec<String>]| {
            let header: Vec<String> = self.header().iter().map(|h| cell(h)).collect();
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|{}", " --- |".repeat(header.len()));
            for r in rows {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| match c.strip_prefix('*') {
                        Some(b) => format!("**{}**", cell(b)),
                        None => cell(c),
                    })
                    .collect();
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
        };
        table(&mut s, &means);
        s.push_str("\n95% interval of the mean (Student's t over seeds):\n\n");
        table(&mut s, &cis);
        let _ = write!(
            s,
            "\nDifference of the mean from `{}`, with the p-value of a {}:\n\n",
            self.pipelines.first().map_or("", |r| r.name.as_str()),
            self.test
        );
        table(&mut s, &diffs);
        s
    }

    /// One line per pipeline and metric: the statistics and every seed's value.
    pub fn csv(&self) -> String {
        let mut s = String::from("pipeline,metric,n,mean,sd,ci95_low,ci95_high,diff_vs_first,t,p");
        for seed in &self.seeds {
            let _ = write!(s, ",seed_{seed}");
        }
        s.push('\n');
        let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for r in &self.pipelines {
            for (j, m) in self.metrics.iter().enumerate() {
                let sm = r.summary[j].as_ref();
                let pt = r.against_first[j].as_ref();
                let _ = write!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&r.name),
                    csv_field(&m.id),
                    sm.map_or(0, |s| s.n),
                    num(sm.map(|s| s.mean)),
                    num(sm.map(|s| s.sd)),
                    num(sm.and_then(|s| s.ci95).map(|c| c.0)),
                    num(sm.and_then(|s| s.ci95).map(|c| c.1)),
                    num(pt.map(|p| p.diff)),
                    num(pt.and_then(|p| p.t)),
                    num(pt.and_then(|p| p.p)),
                );
                for v in &r.values[j] {
                    let _ = write!(s, ",{}", num(*v));
                }
                s.push('\n');
            }
        }
        s
    }

    /// Write compare.md, compare.csv, compare.json and compare.html into `dir`.
    pub fn write(&self, dir: &Path) -> crate::error::Result<Vec<PathBuf>> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        let files = [
            ("compare.md", self.markdown()),
            ("compare.csv", self.csv()),
            ("compare.json", json),
            ("compare.html", super::page::render(self)),
        ];
        let mut written = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            crate::fsutil::write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A p-value as printed after `p`: `= 0.0314`, or `< 0.0001`.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("= {p:.4}")
    }
}

/// A difference with its sign, four decimals; one that rounds to zero has none.
fn signed(d: f64) -> String {
    let s = format!("{d:+.4}");
    if s == "+0.0000" || s == "-0.0000" {
        "0.0000".into()
    } else {
        s
    }
}

fn seed_list(seeds: &[u64]) -> String {
    match seeds {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if (*last - *first) as usize + 1 == seeds.len() => {
            format!("{first}–{last}")
        }
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
