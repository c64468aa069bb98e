//! Evaluation: exact rank-based AUC (ties averaged) and log loss, for every stage both ways:
//! the cumulative prediction on all rows and the conditional prediction on the rows that reached
//! the stage's parent; against the truth on synthetic data; and the run's `metrics.json`.

mod auc;
pub mod calibration;
mod format;
mod run;
mod scored;
mod table;
pub mod truth;

pub use auc::{SortedAuc, auc, ranks};
pub use run::{EpochRecord, RunMetrics, StageLoss, Timing};
pub use table::{format_metrics, format_table, render};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::funnel::Funnel;
use crate::spill::Sorter;
use scored::{Scored, by_group_then_score, by_score};

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

/// Accumulates (score, label, log-likelihood, group) for one block; its rows kept in a sorter
/// that spills to disk past its share of `StageAccumulators`'s rows in memory.
struct Acc {
    by_score: Sorter<Scored>,
    /// With groups: the rows again, in group order, for group AUC.
    by_group: Option<Sorter<Scored>>,
    positives: usize,
    nll: f64,
}

impl Acc {
    fn new(limit: usize, groups: bool) -> Acc {
        Acc {
            by_score: Sorter::new(by_score, limit),
            by_group: groups.then(|| Sorter::new(by_group_then_score, limit)),
            positives: 0,
            nll: 0.0,
        }
    }

    fn push(&mut self, score: f64, label: u8, log_yes: f64, log_no: f64, group: u32) -> Result<()> {
        let row = Scored {
            score,
            label,
            group,
        };
        self.by_score.push(row)?;
        if let Some(g) = &mut self.by_group {
            g.push(row)?;
        }
        self.positives += (label != 0) as usize;
        self.nll -= if label != 0 { log_yes } else { log_no };
        Ok(())
    }

    fn merge(&mut self, other: Acc) -> Result<()> {
        self.by_score.merge(other.by_score)?;
        match (&mut self.by_group, other.by_group) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, None) => {}
            _ => {
                return Err(Error::Internal(
                    "merged accumulators with and without groups".into(),
                ));
            }
        }
        self.positives += other.positives;
        self.nll += other.nll;
        Ok(())
    }

    /// The metrics, reading the rows back in score order (and in group order for group AUC).
    fn finish(self) -> Result<Scores> {
        let rows = self.by_score.len();
        let mut tally = SortedAuc::default();
        let mut binner = calibration::Binner::new(rows, calibration::BINS);
        self.by_score.for_each(|r| {
            let positive = r.label != 0;
            tally.push(r.score, positive as u64, !positive as u64);
            binner.push(r.score.exp(), positive);
        })?;
        let gauc = match self.by_group {
            Some(g) => grouped_auc(g)?,
            None => None,
        };
        Ok(Scores {
            auc: tally.finish(),
            logloss: (rows > 0).then(|| self.nll / rows as f64),
            rows,
            positives: self.positives,
            gauc,
            calibration: binner.finish(),
        })
    }
}

/// Group AUC over rows read back in group order: each group's AUC in one pass.
fn grouped_auc(rows: Sorter<Scored>) -> Result<Option<f64>> {
    let (mut num, mut den) = (0.0, 0.0);
    let mut open: Option<(u32, usize, SortedAuc)> = None;
    let mut close = |g: Option<(u32, usize, SortedAuc)>| {
        if let Some((_, n, tally)) = g
            && let Some(a) = tally.finish()
        {
            num += n as f64 * a;
            den += n as f64;
        }
    };
    rows.for_each(|r| {
        if open.as_ref().is_none_or(|(g, _, _)| *g != r.group) {
            close(open.replace((r.group, 0, SortedAuc::default())));
        }
        if let Some((_, n, tally)) = &mut open {
            *n += 1;
            let positive = r.label != 0;
            tally.push(r.score, positive as u64, !positive as u64);
        }
    })?;
    close(open);
    Ok((den > 0.0).then(|| num / den))
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

/// Scored rows all of a split's accumulators hold in memory (16 bytes each: 256 MiB) before
/// they spill sorted runs to disk; below it evaluation never touches the disk.
pub const ROWS_IN_MEMORY: usize = 1 << 24;

/// Blocks of scored rows an evaluation sorts: every stage's two, twice with group AUC.
fn blocks(stages: usize, groups: bool) -> usize {
    2 * stages * (1 + groups as usize)
}

/// Scored rows the accumulators of `stages` stages hold in memory at most while evaluating
/// `rows` rows (16 bytes each).
pub fn scored_rows_held(stages: usize, groups: bool, rows: usize) -> usize {
    blocks(stages, groups)
        .saturating_mul(rows)
        .min(ROWS_IN_MEMORY)
}

impl StageAccumulators {
    /// Accumulators for `stages` stages, with group AUC when `groups`, holding at most
    /// `ROWS_IN_MEMORY` scored rows in memory.
    pub fn new(stages: usize, groups: bool) -> Self {
        Self::with_rows_in_memory(stages, groups, ROWS_IN_MEMORY)
    }

    /// As `new`, holding at most `rows` scored rows in memory (shared by every block).
    pub fn with_rows_in_memory(stages: usize, groups: bool, rows: usize) -> Self {
        let limit = rows / blocks(stages, groups).max(1);
        StageAccumulators {
            cum: (0..stages).map(|_| Acc::new(limit, groups)).collect(),
            cond: (0..stages).map(|_| Acc::new(limit, groups)).collect(),
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
    ) -> Result<()> {
        let probs = funnel.probabilities(logits);
        for (j, i) in rows.enumerate() {
            let g = groups.map_or(0, |g| g[i]);
            for s in funnel.order() {
                let pr = probs.get(j, s);
                let y = reached[s][i];
                self.cum[s].push(pr.log_p, y, pr.log_p, pr.log_not_p, g)?;
                if let Some(p) = funnel.parent(s)
                    && pr.log_p > probs.get(j, p).log_p
                {
                    self.violations[s] += 1;
                }
                if funnel.parent(s).is_none_or(|p| reached[p][i] != 0) {
                    self.cond[s].push(pr.log_q, y, pr.log_q, pr.log_not_q, g)?;
                }
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// Add the rows another accumulator saw (disjoint from these).
    pub fn merge(&mut self, other: StageAccumulators) -> Result<()> {
        for (a, b) in self.cum.iter_mut().zip(other.cum) {
            a.merge(b)?;
        }
        for (a, b) in self.cond.iter_mut().zip(other.cond) {
            a.merge(b)?;
        }
        for (a, b) in self.violations.iter_mut().zip(other.violations) {
            *a += b;
        }
        self.rows += other.rows;
        Ok(())
    }

    /// The metrics; `names` are the stages' names, in funnel order.
    pub fn finish(self, funnel: &Funnel, names: &[String]) -> Result<Vec<StageMetrics>> {
        let rows = self.rows;
        self.cum
            .into_iter()
            .zip(self.cond)
            .zip(self.violations)
            .zip(names)
            .enumerate()
            .map(|(s, (((c, q), violations), name))| {
                Ok(StageMetrics {
                    name: name.clone(),
                    parent: funnel.parent(s).map(|p| names[p].clone()),
                    cumulative: c.finish()?,
                    conditional: q.finish()?,
                    truth: None,
                    order_violations: (funnel.can_violate_order(s) && rows > 0)
                        .then(|| violations as f64 / rows as f64),
                })
            })
            .collect()
    }
}

/// Evaluate logits (rows x stages, row-major) against the "reached" flags of every stage;
/// `names` are the stages' names, in funnel order; with `groups` (each row's group), group AUC
/// too. In memory (tests).
#[cfg(test)]
pub fn evaluate(
    funnel: &Funnel,
    logits: &[f32],
    reached: &[Vec<u8>],
    names: &[String],
    groups: Option<&[u32]>,
) -> Vec<StageMetrics> {
    let rows = reached.first().map_or(0, Vec::len);
    let mut acc = StageAccumulators::new(reached.len(), groups.is_some());
    acc.push(funnel, 0..rows, logits, reached, groups).unwrap();
    acc.finish(funnel, names).unwrap()
}

#[cfg(test)]
mod tests {
    use super::table::format_table;
    use super::*;

    /// Group AUC of rows in memory, through a sorter that spills every two rows.
    fn gauc(scores: &[f64], labels: &[u8], groups: &[u32]) -> Option<f64> {
        let mut rows = Sorter::new(by_group_then_score, 2);
        for ((&score, &label), &group) in scores.iter().zip(labels).zip(groups) {
            rows.push(Scored {
                score,
                label,
                group,
            })
            .unwrap();
        }
        grouped_auc(rows).unwrap()
    }

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
                let mut acc = StageAccumulators::new(2, false);
                acc.push(&funnel, a..b, &logits[a * 2..b * 2], &reached, None)
                    .unwrap();
                acc
            })
            .collect();
        parts.reverse();
        let mut merged = parts.pop().unwrap();
        for p in parts {
            merged.merge(p).unwrap();
        }
        let merged = merged.finish(&funnel, &names).unwrap();
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

    /// Accumulators that spill their rows to disk a few at a time give the in-memory
    /// metrics exactly: AUC, group AUC, counts, calibration curve, log loss.
    #[test]
    fn spilled_accumulators_equal_in_memory_ones() {
        let mut r = crate::rng::Rng::stream(6, "spill-metrics");
        let rows = 500;
        // Logits on a coarse grid, so scores tie.
        let logits: Vec<f32> = (0..rows * 2)
            .map(|_| r.below(9) as f32 / 4.0 - 1.0)
            .collect();
        let click: Vec<u8> = (0..rows).map(|_| (r.uniform() < 0.5) as u8).collect();
        let buy: Vec<u8> = click
            .iter()
            .map(|&c| c * (r.uniform() < 0.4) as u8)
            .collect();
        let groups: Vec<u32> = (0..rows).map(|_| r.below(7) as u32).collect();
        let reached = vec![click, buy];
        let funnel = crate::funnel::Funnel::esmm(2);
        let names = ["click".to_string(), "buy".to_string()];
        let metrics = |in_memory: usize| {
            let mut acc = StageAccumulators::with_rows_in_memory(2, true, in_memory);
            for a in (0..rows).step_by(64) {
                let b = (a + 64).min(rows);
                acc.push(
                    &funnel,
                    a..b,
                    &logits[a * 2..b * 2],
                    &reached,
                    Some(&groups),
                )
                .unwrap();
            }
            acc.finish(&funnel, &names).unwrap()
        };
        let (memory, spilled) = (metrics(usize::MAX), metrics(8 * 13));
        for (a, b) in memory.iter().zip(&spilled) {
            for (x, y) in [
                (&a.cumulative, &b.cumulative),
                (&a.conditional, &b.conditional),
            ] {
                assert!(x.auc.is_some() && x.gauc.is_some());
                assert_eq!((x.auc, x.gauc), (y.auc, y.gauc));
                assert_eq!((x.rows, x.positives), (y.rows, y.positives));
                assert_eq!(x.logloss, y.logloss);
                let (cx, cy) = (
                    x.calibration.as_ref().unwrap(),
                    y.calibration.as_ref().unwrap(),
                );
                assert_eq!(cx.bins.len(), cy.bins.len());
                for (bx, by) in cx.bins.iter().zip(&cy.bins) {
                    assert_eq!(bx.rows, by.rows);
                    assert_eq!(bx.rate, by.rate);
                    assert!((bx.mean_pred - by.mean_pred).abs() < 1e-12);
                }
                assert!((cx.ece - cy.ece).abs() < 1e-12);
                assert!((cx.mean_pred - cy.mean_pred).abs() < 1e-12);
                assert_eq!(cx.rate, cy.rate);
            }
        }
        // The in-memory AUC is the brute-force pair count.
        let scores: Vec<f64> = (0..rows)
            .map(|i| {
                funnel
                    .probabilities(&logits[i * 2..i * 2 + 2])
                    .get(0, 1)
                    .log_p
            })
            .collect();
        let mut pairs = (0.0, 0.0);
        for i in 0..rows {
            for j in 0..rows {
                if reached[1][i] == 1 && reached[1][j] == 0 {
                    pairs.1 += 1.0;
                    pairs.0 += match scores[i].total_cmp(&scores[j]) {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
        }
        assert!((memory[1].cumulative.auc.unwrap() - pairs.0 / pairs.1).abs() < 1e-12);
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
