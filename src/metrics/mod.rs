//! Evaluation: exact rank-based AUC (ties averaged) and log loss, for every stage both ways:
//! the cumulative prediction on all rows and the conditional prediction on the rows that reached
//! the stage's parent; against the truth on synthetic data; and the run's `metrics.json`.

mod auc;
pub mod calibration;
mod format;
mod run;
mod table;
pub mod truth;

pub use auc::{auc, ranks};
pub use run::{EpochRecord, RunMetrics, StageLoss, Timing};
pub use table::{format_metrics, format_table, render};

use serde::{Deserialize, Serialize};

use crate::funnel::Funnel;

/// Metrics of one prediction of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// `null` when undefined (no positives or no negatives among the rows).
    pub auc: Option<f64>,
    /// `null` when there are no rows.
    pub logloss: Option<f64>,
    pub rows: usize,
    pub positives: usize,
    /// Group AUC: each group's AUC weighted by its rows, over the groups whose AUC is defined
    /// (with `data.group_column`; `null` when no group has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauc: Option<f64>,
    /// The reliability curve over equal-mass bins and its ECE (`null` when there are no rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<calibration::Reliability>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMetrics {
    pub name: String,
    /// The stage a row must reach first (`null` for the first stage): the conditional block's
    /// rows are the rows that reached it.
    #[serde(default)]
    pub parent: Option<String>,
    /// p_k against the cumulative label, on all rows.
    pub cumulative: Scores,
    /// q_k against the stage label, on the rows that reached the parent (all rows for the first
    /// stage).
    pub conditional: Scores,
    /// Against the true probabilities, over all rows (synthetic data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<truth::StageTruth>,
    /// Share of all rows whose cumulative prediction exceeds the parent's (p_k > p_parent),
    /// for models whose logits are cumulative (DIVISION, AITM); `null` where the order cannot
    /// be violated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_violations: Option<f64>,
}

/// Accumulates (score, label, log-likelihood, group) for one block.
#[derive(Default)]
struct Acc {
    scores: Vec<f64>,
    labels: Vec<u8>,
    groups: Vec<u32>,
    nll: f64,
}

impl Acc {
    fn push(&mut self, score: f64, label: u8, log_yes: f64, log_no: f64, group: Option<u32>) {
        self.scores.push(score);
        self.labels.push(label);
        self.groups.extend(group);
        self.nll -= if label != 0 { log_yes } else { log_no };
    }

    fn merge(&mut self, other: Acc) {
        self.scores.extend(other.scores);
        self.labels.extend(other.labels);
        self.groups.extend(other.groups);
        self.nll += other.nll;
    }

    fn finish(self) -> Scores {
        let rows = self.scores.len();
        Scores {
            auc: auc(&self.scores, &self.labels),
            logloss: (rows > 0).then(|| self.nll / rows as f64),
            rows,
            positives: self.labels.iter().filter(|&&l| l != 0).count(),
            gauc: (self.groups.len() == rows && rows > 0)
                .then(|| gauc(&self.scores, &self.labels, &self.groups))
                .flatten(),
            calibration: calibration::reliability(
                &self.scores.iter().map(|s| s.exp()).collect::<Vec<_>>(),
                &self.labels,
                calibration::BINS,
            ),
        }
    }
}

/// Group AUC: Σ_g n_g AUC_g / Σ_g n_g over the groups whose AUC is defined (both classes
/// present), n_g the group's rows; `None` when no group's is.
pub fn gauc(scores: &[f64], labels: &[u8], groups: &[u32]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by_key(|&i| groups[i]);
    let (mut num, mut den) = (0.0, 0.0);
    for run in order.chunk_by(|&a, &b| groups[a] == groups[b]) {
        let s: Vec<f64> = run.iter().map(|&i| scores[i]).collect();
        let l: Vec<u8> = run.iter().map(|&i| labels[i]).collect();
        if let Some(a) = auc(&s, &l) {
            num += run.len() as f64 * a;
            den += run.len() as f64;
        }
    }
    (den > 0.0).then(|| num / den)
}

/// Every stage's metrics over a stream of scored rows, accumulated batch by batch: `push` a
/// batch's logits and labels, `merge` the accumulator of other rows (another chunk, another
/// rank), `finish` once. Exact AUC sorts all the merged scores at the end, so the result is the
/// whole data's, never an average over batches.
pub struct StageAccumulators {
    cum: Vec<Acc>,
    cond: Vec<Acc>,
    violations: Vec<usize>,
    rows: usize,
}

impl StageAccumulators {
    pub fn new(stages: usize) -> Self {
        StageAccumulators {
            cum: (0..stages).map(|_| Acc::default()).collect(),
            cond: (0..stages).map(|_| Acc::default()).collect(),
            violations: vec![0; stages],
            rows: 0,
        }
    }

    /// Rows `rows` of the data: their logits (rows x `Funnel::logit_columns`, row-major),
    /// and, indexed by the same row numbers, every stage's "reached" flags and, with group
    /// AUC, each row's group.
    pub fn push(
        &mut self,
        funnel: &Funnel,
        rows: std::ops::Range<usize>,
        logits: &[f32],
        reached: &[Vec<u8>],
        groups: Option<&[u32]>,
    ) {
        let probs = funnel.probabilities(logits);
        for (j, i) in rows.enumerate() {
            for s in funnel.order() {
                let pr = probs.get(j, s);
                let y = reached[s][i];
                let g = groups.map(|g| g[i]);
                self.cum[s].push(pr.log_p, y, pr.log_p, pr.log_not_p, g);
                if let Some(p) = funnel.parent(s)
                    && pr.log_p > probs.get(j, p).log_p
                {
                    self.violations[s] += 1;
                }
                if funnel.parent(s).is_none_or(|p| reached[p][i] != 0) {
                    self.cond[s].push(pr.log_q, y, pr.log_q, pr.log_not_q, g);
                }
            }
            self.rows += 1;
        }
    }

    /// Add the rows another accumulator saw (disjoint from these).
    pub fn merge(&mut self, other: StageAccumulators) {
        for (a, b) in self.cum.iter_mut().zip(other.cum) {
            a.merge(b);
        }
        for (a, b) in self.cond.iter_mut().zip(other.cond) {
            a.merge(b);
        }
        for (a, b) in self.violations.iter_mut().zip(other.violations) {
            *a += b;
        }
        self.rows += other.rows;
    }

    /// The metrics; `names` are the stages' names, in funnel order.
    pub fn finish(self, funnel: &Funnel, names: &[String]) -> Vec<StageMetrics> {
        let rows = self.rows;
        self.cum
            .into_iter()
            .zip(self.cond)
            .zip(self.violations)
            .zip(names)
            .enumerate()
            .map(|(s, (((c, q), violations), name))| StageMetrics {
                name: name.clone(),
                parent: funnel.parent(s).map(|p| names[p].clone()),
                cumulative: c.finish(),
                conditional: q.finish(),
                truth: None,
                order_violations: (funnel.can_violate_order(s) && rows > 0)
                    .then(|| violations as f64 / rows as f64),
            })
            .collect()
    }
}

/// Evaluate logits (rows x stages, row-major) against the "reached" flags of every stage;
/// `names` are the stages' names, in funnel order; with `groups` (each row's group), group AUC
/// too.
pub fn evaluate(
    funnel: &Funnel,
    logits: &[f32],
    reached: &[Vec<u8>],
    names: &[String],
    groups: Option<&[u32]>,
) -> Vec<StageMetrics> {
    let rows = reached.first().map_or(0, Vec::len);
    let mut acc = StageAccumulators::new(reached.len());
    acc.push(funnel, 0..rows, logits, reached, groups);
    acc.finish(funnel, names)
}

#[cfg(test)]
mod tests {
    use super::table::format_table;
    use super::*;

    #[test]
    fn conditional_block_uses_rows_that_reached_previous_stage() {
        // Logits 0 everywhere: q = 0.5, p2 = 0.25.
        let logits = vec![0f32; 8];
        let reached = vec![vec![1, 1, 0, 0], vec![1, 0, 0, 0]];
        let funnel = crate::funnel::Funnel::esmm(2);
        let m = evaluate(
            &funnel,
            &logits,
            &reached,
            &["click".into(), "buy".into()],
            None,
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
        assert_eq!(m[1].order_violations, None);
        assert!(!table.contains("order violations"));
    }

    /// Accumulators over disjoint chunks of the rows, merged, give the one pass's metrics: the
    /// exact AUC of all the rows (not a mean of the chunks' AUCs), the same counts and order
    /// violations, the log loss up to the order of a sum.
    #[test]
    fn merged_chunks_equal_one_pass() {
        let mut r = crate::rng::Rng::stream(4, "merge");
        let rows = 200;
        let logits: Vec<f32> = (0..rows * 2).map(|_| r.normal() as f32).collect();
        let click: Vec<u8> = (0..rows).map(|_| (r.uniform() < 0.5) as u8).collect();
        let buy: Vec<u8> = click
            .iter()
            .map(|&c| c * (r.uniform() < 0.4) as u8)
            .collect();
        let reached = vec![click, buy];
        let funnel = crate::funnel::Funnel::esmm(2).with_output(crate::funnel::Output::Cumulative);
        let names = ["click".to_string(), "buy".to_string()];
        let whole = evaluate(&funnel, &logits, &reached, &names, None);
        // Chunks of 37 rows pushed into separate accumulators, merged in a scrambled order.
        let mut parts: Vec<StageAccumulators> = (0..rows)
            .step_by(37)
            .map(|a| {
                let b = (a + 37).min(rows);
                let mut acc = StageAccumulators::new(2);
                acc.push(&funnel, a..b, &logits[a * 2..b * 2], &reached, None);
                acc
            })
            .collect();
        parts.reverse();
        let mut merged = parts.pop().unwrap();
        for p in parts {
            merged.merge(p);
        }
        let merged = merged.finish(&funnel, &names);
        for (a, b) in whole.iter().zip(&merged) {
            for (x, y) in [
                (&a.cumulative, &b.cumulative),
                (&a.conditional, &b.conditional),
            ] {
                assert_eq!(x.auc, y.auc);
                assert_eq!((x.rows, x.positives), (y.rows, y.positives));
                assert!((x.logloss.unwrap() - y.logloss.unwrap()).abs() < 1e-12);
            }
            assert_eq!(a.order_violations, b.order_violations);
        }
    }

    /// Cumulative logits can put a stage above its parent: the share of such rows is reported
    /// and printed.
    #[test]
    fn order_violations_of_cumulative_heads() {
        // Rows: (z1, z2) = (0, 1) violates, (1, 0) does not, (0, 0) ties (not a violation),
        // (-1, 2) violates: 2 of 4.
        let logits = vec![0.0f32, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 2.0];
        let reached = vec![vec![1, 1, 0, 0], vec![1, 0, 0, 0]];
        let funnel = crate::funnel::Funnel::esmm(2).with_output(crate::funnel::Output::Cumulative);
        let m = evaluate(
            &funnel,
            &logits,
            &reached,
            &["click".into(), "buy".into()],
            None,
        );
        assert_eq!(m[0].order_violations, None);
        assert_eq!(m[1].order_violations, Some(0.5));
        let table = format_table("t", &m);
        assert!(
            table.contains("order violations (share of rows with p_k > p_parent): buy 50.00%"),
            "{table}"
        );
    }

    /// GAUC by brute force on two groups: group 0 ranks perfectly (AUC 1, 3 rows), group 1
    /// inversely (AUC 0, 2 rows), group 2 has one class only (left out): (3 · 1 + 2 · 0) / 5.
    #[test]
    fn group_auc_weights_each_group_by_its_rows() {
        let scores = [0.9, 0.1, 0.2, 0.3, 0.8, 0.5, 0.6];
        let labels = [1, 0, 0, 1, 0, 1, 1];
        let groups = [0, 0, 0, 1, 1, 2, 2];
        assert_eq!(gauc(&scores, &labels, &groups), Some(0.6));
        assert_eq!(gauc(&scores[5..], &labels[5..], &groups[5..]), None);
        // Through `evaluate`: the conditional block of stage 2 uses reached rows only.
        let logits = vec![0f32; 8];
        let reached = vec![vec![1, 1, 1, 0], vec![1, 0, 0, 0]];
        let m = evaluate(
            &crate::funnel::Funnel::esmm(2),
            &logits,
            &reached,
            &["a".into(), "b".into()],
            Some(&[0, 0, 1, 1]),
        );
        // Constant scores: every defined group's AUC is 0.5.
        assert_eq!(m[0].cumulative.gauc, Some(0.5));
        assert_eq!(m[1].conditional.gauc, Some(0.5));
        assert!(format_table("t", &m).contains("GAUC"));
    }
}
