//! Evaluation: exact rank-based AUC (ties averaged) and log loss, for every stage both ways:
//! the cumulative prediction on all rows and the conditional prediction on the rows that reached
//! the previous stage.

use serde::{Deserialize, Serialize};

use crate::config::raw::HeadKind;
use crate::model::{Head, StageProbs};

/// 1-based ranks of `x` in ascending order, tied values getting the mean of their ranks.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]));
    let mut r = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let v = x[order[i] as usize];
        let mut j = i;
        while j < n && x[order[j] as usize].total_cmp(&v).is_eq() {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        for &o in &order[i..j] {
            r[o as usize] = avg;
        }
        i = j;
    }
    r
}

/// Exact AUC: the probability that a random positive scores above a random negative, ties
/// counting one half (Mann-Whitney U from tie-averaged ranks). `None` when there are no
/// positives or no negatives.
pub fn auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l != 0).count();
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let rank_sum: f64 = ranks(scores)
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l != 0)
        .map(|(r, _)| r)
        .sum();
    let (p, q) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

/// Metrics of one prediction of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// `null` when undefined (no positives or no negatives among the rows).
    pub auc: Option<f64>,
    /// `null` when there are no rows.
    pub logloss: Option<f64>,
    pub rows: usize,
    pub positives: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    pub name: String,
    /// p_k against the cumulative label, on all rows.
    pub cumulative: Block,
    /// q_k against the stage label, on the rows that reached stage k-1 (all rows for stage 1).
    pub conditional: Block,
    /// Against the true probabilities, over all rows (synthetic data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<crate::truth::StageTruth>,
}

/// Accumulates (score, label, log-likelihood) for one block.
#[derive(Default)]
struct Acc {
    scores: Vec<f64>,
    labels: Vec<u8>,
    nll: f64,
}

impl Acc {
    fn push(&mut self, score: f64, label: u8, log_yes: f64, log_no: f64) {
        self.scores.push(score);
        self.labels.push(label);
        self.nll -= if label != 0 { log_yes } else { log_no };
    }

    fn finish(self) -> Block {
        let rows = self.scores.len();
        Block {
            auc: auc(&self.scores, &self.labels),
            logloss: (rows > 0).then(|| self.nll / rows as f64),
            rows,
            positives: self.labels.iter().filter(|&&l| l != 0).count(),
        }
    }
}

/// Evaluate logits (rows x stages, row-major) against the "reached" flags of every stage.
pub fn evaluate(
    kind: HeadKind,
    logits: &[f32],
    reached: &[Vec<u8>],
    names: &[String],
) -> Vec<StageMetrics> {
    let k = reached.len();
    let rows = reached.first().map_or(0, Vec::len);
    let mut cum: Vec<Acc> = (0..k).map(|_| Acc::default()).collect();
    let mut cond: Vec<Acc> = (0..k).map(|_| Acc::default()).collect();
    let mut probs: Vec<StageProbs> = Vec::with_capacity(k);
    for i in 0..rows {
        Head::probabilities(kind, &logits[i * k..(i + 1) * k], &mut probs);
        for (s, pr) in probs.iter().enumerate() {
            let y = reached[s][i];
            cum[s].push(pr.log_p, y, pr.log_p, pr.log_not_p);
            if s == 0 || reached[s - 1][i] != 0 {
                cond[s].push(pr.log_q, y, pr.log_q, pr.log_not_q);
            }
        }
    }
    cum.into_iter()
        .zip(cond)
        .zip(names)
        .map(|((c, q), name)| StageMetrics {
            name: name.clone(),
            cumulative: c.finish(),
            conditional: q.finish(),
            truth: None,
        })
        .collect()
}

fn fmt_opt(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x:.4}"),
        None => "undefined".into(),
    }
}

/// A human-readable table: two lines per stage, each saying which prediction on which rows.
pub fn format_table(title: &str, m: &[StageMetrics]) -> String {
    let mut rows = Vec::new();
    for (k, x) in m.iter().enumerate() {
        for (cumulative, b) in [(true, &x.cumulative), (false, &x.conditional)] {
            let (pred, on) = if cumulative {
                (format!("cumulative  P({})", x.name), "all rows".to_string())
            } else if k == 0 {
                (format!("conditional P({})", x.name), "all rows".to_string())
            } else {
                let prev = &m[k - 1].name;
                (
                    format!("conditional P({}|{prev})", x.name),
                    format!("reached {prev}"),
                )
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
        }
    }
    let head = [
        "stage",
        "prediction",
        "rows used",
        "rows",
        "positives",
        "AUC",
        "logloss",
    ];
    render(title, &head, &rows, 3)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all positive/negative pairs.
    fn pair_auc(scores: &[f64], labels: &[u8]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..scores.len() {
            for j in 0..scores.len() {
                if labels[i] == 1 && labels[j] == 0 {
                    den += 1.0;
                    if scores[i] > scores[j] {
                        num += 1.0;
                    } else if scores[i] == scores[j] {
                        num += 0.5;
                    }
                }
            }
        }
        num / den
    }

    #[test]
    fn auc_equals_pair_count_with_ties() {
        let mut r = crate::rng::Rng::stream(9, "auc");
        for trial in 0..20 {
            let n = 50 + trial * 7;
            // Few distinct scores, so ties are frequent.
            let scores: Vec<f64> = (0..n).map(|_| r.below(6) as f64 / 5.0).collect();
            let labels: Vec<u8> = (0..n).map(|_| (r.uniform() < 0.3) as u8).collect();
            if let Some(a) = auc(&scores, &labels) {
                assert!((a - pair_auc(&scores, &labels)).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn auc_hand_values_and_undefined() {
        assert_eq!(auc(&[0.1, 0.9], &[0, 1]), Some(1.0));
        assert_eq!(auc(&[0.1, 0.9], &[1, 0]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[1, 0]), Some(0.5));
        // Pairs: (0.8 vs 0.2) win, (0.8 vs 0.8) tie, (0.4 vs 0.2) win, (0.4 vs 0.8) loss: 2.5/4.
        assert_eq!(auc(&[0.8, 0.4, 0.2, 0.8], &[1, 1, 0, 0]), Some(0.625));
        assert_eq!(auc(&[0.1, 0.2], &[1, 1]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn conditional_block_uses_rows_that_reached_previous_stage() {
        // Logits 0 everywhere: q = 0.5, p2 = 0.25.
        let logits = vec![0f32; 8];
        let reached = vec![vec![1, 1, 0, 0], vec![1, 0, 0, 0]];
        let m = evaluate(
            HeadKind::CumulativeProduct,
            &logits,
            &reached,
            &["click".into(), "buy".into()],
        );
        assert_eq!(m[1].conditional.rows, 2);
        assert_eq!(m[1].conditional.positives, 1);
        assert_eq!(m[1].cumulative.rows, 4);
        assert!((m[1].conditional.logloss.unwrap() - std::f64::consts::LN_2).abs() < 1e-12);
        // Cumulative: one row with -ln 0.25, three with -ln 0.75.
        let want = (-(0.25f64).ln() - 3.0 * (0.75f64).ln()) / 4.0;
        assert!((m[1].cumulative.logloss.unwrap() - want).abs() < 1e-12);
        assert_eq!(m[1].conditional.auc, Some(0.5));
        let table = format_table("t", &m);
        assert!(
            table.contains("conditional P(buy|click)  reached click"),
            "{table}"
        );
    }
}
