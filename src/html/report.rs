//! The run report (`report.html`): a run's metrics.json and resolved pipeline drawn as one
//! self-contained page: losses and validation AUC per epoch, reliability diagrams, the funnel,
//! the truth block of generated data, the metrics table, the timing split and the pipeline.

use std::path::{Path, PathBuf};

use super::Page;
use super::svg::{Bar, Series, bar_chart, colour, line_chart, reliability_chart};
use crate::checkpoint::PIPELINE;
use crate::error::Result;
use crate::metrics::{RunMetrics, Scores, StageMetrics};

/// The file `train` writes into a run directory, and `funnel report` by default.
pub use crate::checkpoint::REPORT;

/// Read a finished run's metrics.json and pipeline.yaml (checked against its manifest) and
/// render its report.
pub fn render_run(dir: &Path) -> Result<String> {
    let (metrics, text, _) = crate::checkpoint::read_finished(dir)?;
    let pipeline = crate::config::Pipeline::from_text(&dir.join(PIPELINE), &text)?;
    Ok(render(
        &pipeline.name,
        &dir.display().to_string(),
        &metrics,
        &text,
    ))
}

/// The two predictions of a stage, as the report names them.
fn spaces(s: &StageMetrics) -> [(&'static str, String, &Scores); 2] {
    let parent = s.parent.as_deref();
    [
        (
            "cumulative",
            format!("P({}) on all rows", s.name),
            &s.cumulative,
        ),
        (
            "conditional",
            match parent {
                Some(p) => format!("P({}|{p}) on rows that reached {p}", s.name),
                None => format!("P({}) on all rows", s.name),
            },
            &s.conditional,
        ),
    ]
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// The page of one run.
pub fn render(name: &str, dir: &str, m: &RunMetrics, pipeline: &str) -> String {
    let mut page = Page::new(&format!("funnel run: {name}"));
    page.note(&format!(
        "Run directory {dir}. {} epoch(s) run, best epoch {}. Every stage is measured two ways: the cumulative prediction P(stage) against reaching the stage, on all rows, and the conditional prediction P(stage|parent) on the rows that reached the parent. AUC is exact (rank-based, ties averaged) over the whole split.",
        m.epochs_run, m.best_epoch
    ));
    let (final_split, final_metrics) = match (&m.test, &m.valid) {
        (Some(t), _) => ("test", Some(t)),
        (None, Some(v)) => ("validation", Some(v)),
        _ => ("", None),
    };
    if let Some(f) = final_metrics {
        page.heading(
            &format!("Metrics on the {final_split} split (best epoch)"),
            "metrics",
        );
        metrics_table(&mut page, "metrics-table", f);
    }
    page.heading("Loss per stage per epoch", "loss");
    page.charts(&[loss_chart(m)]);
    page.note("Training: each stage's weighted loss (its loss terms times their weights), mean over the epoch's batches. Validation: the cumulative prediction's log loss on all rows.");
    if m.history.iter().any(|h| h.valid.is_some()) {
        page.heading("Validation AUC per epoch", "auc");
        page.charts(&[auc_chart(m, 0), auc_chart(m, 1)]);
    }
    if let Some(f) = final_metrics {
        page.heading(
            &format!("Reliability on the {final_split} split"),
            "reliability",
        );
        page.note("Each point is a bin of equal size (rows ordered by prediction): its mean prediction against the share of its rows that reached the stage. On the dashed diagonal, predictions are calibrated. ECE = Σ (rows in bin / rows) · |mean prediction − observed rate|.");
        let charts: Vec<String> = f
            .iter()
            .flat_map(|s| {
                // A first stage's two predictions are one: drawn once.
                let shown = if s.parent.is_some() { 2 } else { 1 };
                spaces(s)
                    .into_iter()
                    .take(shown)
                    .filter_map(move |(key, what, b)| {
                        let c = b.calibration.as_ref()?;
                        let bins: Vec<(f64, f64, usize)> = c
                            .bins
                            .iter()
                            .map(|b| (b.mean_pred, b.rate, b.rows))
                            .collect();
                        Some(reliability_chart(
                            &format!("reliability-{}-{key}", s.name),
                            &format!("{what}: ECE {:.4}", c.ece),
                            &bins,
                        ))
                    })
            })
            .collect();
        page.charts(&charts);
        page.heading(&format!("The funnel on the {final_split} split"), "funnel");
        funnel(&mut page, f);
        if f.iter().any(|s| s.truth.is_some()) {
            page.heading("Against the truth (generated data)", "truth");
            truth_table(&mut page, f);
        }
    }
    page.heading("Where the time went", "timing");
    let t = &m.timing;
    page.table(
        "timing",
        &["phase".into(), "seconds".into()],
        &[
            vec!["read".into(), format!("{:.3}", t.read_s)],
            vec!["encode".into(), format!("{:.3}", t.encode_s)],
            vec!["train".into(), format!("{:.3}", t.train_s)],
            vec!["evaluate".into(), format!("{:.3}", t.evaluate_s)],
            vec![
                "training rows per second".into(),
                format!("{:.0}", t.train_samples_per_s),
            ],
        ],
        1,
    );
    page.heading("The resolved pipeline", "pipeline");
    page.folded(
        "every key with its default written out (pipeline.yaml of the run)",
        pipeline,
    );
    page.finish()
}

fn metrics_table(page: &mut Page, id: &str, f: &[StageMetrics]) {
    let header: Vec<String> = [
        "stage",
        "prediction",
        "rows",
        "positives",
        "AUC",
        "GAUC",
        "log loss",
        "ECE",
        "mean prediction",
        "observed rate",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    for s in f {
        for (_, what, b) in spaces(s) {
            let c = b.calibration.as_ref();
            rows.push(vec![
                s.name.clone(),
                what,
                b.rows.to_string(),
                b.positives.to_string(),
                opt(b.auc),
                opt(b.gauc),
                opt(b.logloss),
                opt(c.map(|c| c.ece)),
                opt(c.map(|c| c.mean_pred)),
                opt(c.map(|c| c.rate)),
            ]);
        }
    }
    page.table(id, &header, &rows, 2);
}

fn loss_chart(m: &RunMetrics) -> String {
    let stages: Vec<String> = m
        .history
        .first()
        .map(|h| h.train_stage_loss.iter().map(|l| l.stage.clone()).collect())
        .unwrap_or_default();
    let mut series = Vec::new();
    for (k, stage) in stages.iter().enumerate() {
        series.push(Series {
            name: format!("{stage} training"),
            points: m
                .history
                .iter()
                .filter_map(|h| h.train_stage_loss.get(k).map(|l| (h.epoch as f64, l.loss)))
                .collect(),
            dashed: false,
            colour: colour(k),
        });
        let valid: Vec<(f64, f64)> = m
            .history
            .iter()
            .filter_map(|h| {
                let v = h.valid.as_ref()?.get(k)?.cumulative.logloss?;
                Some((h.epoch as f64, v))
            })
            .collect();
        if !valid.is_empty() {
            series.push(Series {
                name: format!("{stage} validation"),
                points: valid,
                dashed: true,
                colour: colour(k),
            });
        }
    }
    line_chart("loss", "Loss per stage", "epoch", "loss", &series)
}

/// Validation AUC per epoch in one space (0 cumulative, 1 conditional), a series per stage.
fn auc_chart(m: &RunMetrics, space: usize) -> String {
    let last = m.history.iter().rev().find_map(|h| h.valid.as_ref());
    let mut series = Vec::new();
    for (k, s) in last.into_iter().flatten().enumerate() {
        let points = m
            .history
            .iter()
            .filter_map(|h| {
                let st = h.valid.as_ref()?.get(k)?;
                Some((h.epoch as f64, spaces(st)[space].2.auc?))
            })
            .collect();
        series.push(Series {
            name: spaces(s)[space].1.clone(),
            points,
            dashed: space == 1,
            colour: colour(k),
        });
    }
    let (id, title) = if space == 0 {
        ("auc-cumulative", "Cumulative AUC, all rows (validation)")
    } else {
        (
            "auc-conditional",
            "Conditional AUC, rows that reached the parent (validation)",
        )
    };
    line_chart(id, title, "epoch", "AUC", &series)
}

/// Rows reaching each stage against the rows the model predicts, as bars and a table.
fn funnel(page: &mut Page, f: &[StageMetrics]) {
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for s in f {
        let b = &s.cumulative;
        let Some(c) = &b.calibration else { continue };
        let predicted = c.mean_pred * b.rows as f64;
        bars.push(Bar {
            group: s.name.clone(),
            series: 0,
            value: b.positives as f64,
            interval: None,
        });
        bars.push(Bar {
            group: s.name.clone(),
            series: 1,
            value: predicted,
            interval: None,
        });
        let cond = s.conditional.calibration.as_ref();
        rows.push(vec![
            s.name.clone(),
            b.positives.to_string(),
            format!("{predicted:.1}"),
            format!("{:.5}", c.rate),
            format!("{:.5}", c.mean_pred),
            opt(cond.map(|c| c.rate)),
            opt(cond.map(|c| c.mean_pred)),
        ]);
    }
    page.charts(&[bar_chart(
        "funnel",
        "Rows reaching each stage",
        "rows",
        &["actual".into(), "predicted (sum of P(stage))".into()],
        &bars,
        true,
    )]);
    page.table(
        "funnel-table",
        &[
            "stage",
            "rows reaching",
            "predicted rows",
            "rate, all rows",
            "predicted rate",
            "rate given parent",
            "predicted rate given parent",
        ]
        .map(String::from),
        &rows,
        1,
    );
}

fn truth_table(page: &mut Page, f: &[StageMetrics]) {
    let mut rows = Vec::new();
    for s in f {
        let Some(t) = &s.truth else { continue };
        for (what, b) in [
            ("cumulative", &t.cumulative),
            ("conditional", &t.conditional),
        ] {
            rows.push(vec![
                s.name.clone(),
                what.to_string(),
                opt(b.auc_counterfactual),
                opt(b.oracle_auc),
                opt(b.spearman),
                opt(b.all_rows.bias),
                opt(b.all_rows.ece),
                opt(b.reached_previous.ece),
            ]);
        }
    }
    page.table(
        "truth-table",
        &[
            "stage",
            "prediction",
            "AUC vs counterfactual labels, all rows",
            "oracle AUC",
            "Spearman vs truth",
            "bias, all rows",
            "ECE vs truth, all rows",
            "ECE vs truth, reached parent",
        ]
        .map(String::from),
        &rows,
        2,
    );
    page.note("The truth is each row's true probability: the AUC against labels drawn once from it covers rows the real funnel never labels (a conversion of a row that was not clicked), and the oracle AUC is that of the truth itself, the ceiling.");
}

/// Write a run's report (its name, metrics and resolved pipeline) to `dir/report.html`.
pub fn write(dir: &Path, name: &str, metrics: &RunMetrics, pipeline: &str) -> Result<PathBuf> {
    let html = render(name, &dir.display().to_string(), metrics, pipeline);
    let path = dir.join(REPORT);
    crate::fsutil::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
