//! The comparison table: which metrics are compared, their values per seed, the statistics over
//! seeds, and whether each pipeline was scored on the same rows as the first.

use std::path::PathBuf;

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
    /// Per metric, against the first pipeline (none for the first, and none when the rows
    /// differ).
    pub against_first: Vec<Option<Paired>>,
    /// Whether every seed's run was scored on the same rows as the first pipeline's run of
    /// that seed (same file content, same rows kept, same labels). Differences between other
    /// rows would mix the models' gap with the rows' own, so they are not computed.
    pub same_rows: bool,
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
    let rows_of = |m: &RunMetrics| {
        if all_test {
            m.test_rows.clone()
        } else {
            m.valid_rows.clone()
        }
    };
    let reference: Vec<Option<String>> = results
        .first()
        .map(|runs| runs.iter().map(|(_, _, m)| rows_of(m)).collect())
        .unwrap_or_default();
    let mut rows: Vec<PipelineRow> = Vec::new();
    for ((name, file), runs) in labels.iter().zip(files).zip(results) {
        let same_rows = runs.len() == reference.len()
            && runs
                .iter()
                .zip(&reference)
                .all(|((_, _, m), r)| r.is_some() && &rows_of(m) == r);
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
                if !same_rows {
                    return None;
                }
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
            same_rows,
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
