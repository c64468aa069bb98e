//! Metrics as text tables: two lines per stage, each saying which prediction on which rows.

use super::StageMetrics;
use super::format::fmt_opt;
use super::truth::{StageTruth, format_truth_table};

/// A human-readable table: two lines per stage, each saying which prediction on which rows.
pub fn format_table(title: &str, m: &[StageMetrics]) -> String {
    // Group AUC gets a column when the data has groups.
    let grouped = m
        .iter()
        .any(|x| x.cumulative.gauc.is_some() || x.conditional.gauc.is_some());
    let mut rows = Vec::new();
    for x in m {
        for (cumulative, b) in [(true, &x.cumulative), (false, &x.conditional)] {
            let (pred, on) = if cumulative {
                (format!("cumulative  P({})", x.name), "all rows".to_string())
            } else {
                match &x.parent {
                    None => (format!("conditional P({})", x.name), "all rows".to_string()),
                    Some(prev) => (
                        format!("conditional P({}|{prev})", x.name),
                        format!("reached {prev}"),
                    ),
                }
            };
            rows.push(vec![
                if cumulative {
                    x.name.clone()
                } else {
                    String::new()
                },
                pred,
                on,
                b.rows.to_string(),
                b.positives.to_string(),
                fmt_opt(b.auc),
                fmt_opt(b.logloss),
            ]);
            if grouped && let Some(r) = rows.last_mut() {
                r.insert(6, fmt_opt(b.gauc));
            }
        }
    }
    let mut head = vec![
        "stage",
        "prediction",
        "rows used",
        "rows",
        "positives",
        "AUC",
        "logloss",
    ];
    if grouped {
        head.insert(6, "GAUC");
    }
    let mut s = render(title, &head, &rows, 3);
    let violations: Vec<String> = m
        .iter()
        .filter_map(|x| {
            x.order_violations
                .map(|v| format!("{} {:.2}%", x.name, 100.0 * v))
        })
        .collect();
    if !violations.is_empty() {
        s.push_str(&format!(
            "order violations (share of rows with p_k > p_parent): {}\n",
            violations.join(", ")
        ));
    }
    s
}

/// Render a titled table: columns padded to their widest cell, those from `right_from` on
/// right-aligned.
pub fn render(title: &str, head: &[&str], rows: &[Vec<String>], right_from: usize) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out: Vec<String> = Vec::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            out.push(if i >= right_from {
                format!("{c:>w$}")
            } else {
                format!("{c:<w$}")
            });
        }
        out.join("  ").trim_end().to_string() + "\n"
    };
    let mut s = format!("{title}\n");
    s.push_str(&line(&mut head.iter().copied()));
    for r in rows {
        s.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    s
}

/// The metrics table, followed by the truth table when there is one.
pub fn format_metrics(title: &str, m: &[StageMetrics]) -> String {
    let mut s = format_table(title, m);
    let truth: Option<Vec<StageTruth>> = m.iter().map(|x| x.truth.clone()).collect();
    if let Some(t) = truth {
        let rows = m.first().map_or(0, |x| x.cumulative.rows);
        s.push_str(&format_truth_table(
            &format!("{title}: entire space against the true probabilities ({rows} rows; oracle = the truth as prediction)"),
            m,
            &t,
        ));
    }
    s
}
