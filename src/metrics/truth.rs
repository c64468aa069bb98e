//! Evaluation against known ground truth (synthetic data): every row's true conditional
//! probability is known, so predictions can be judged over the entire exposure space, including
//! rows that never reached the earlier stage.

use serde::{Deserialize, Serialize};

use super::StageMetrics;
use super::auc::{auc, ranks};
use super::format::fmt_opt;
use crate::funnel::Funnel;
use crate::rng::Rng;

/// Bins of the expected calibration error (equal width over [0, 1]).
const ECE_BINS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub rows: usize,
    pub mean_pred: Option<f64>,
    pub mean_true: Option<f64>,
    /// mean_pred - mean_true.
    pub bias: Option<f64>,
    /// Σ_bins (rows in bin / rows) · |mean pred - mean true| over equal-width bins of the prediction.
    pub ece: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthBlock {
    /// AUC of the prediction against counterfactual labels drawn once from the truth, all rows.
    pub auc_counterfactual: Option<f64>,
    /// The same AUC with the truth itself as the prediction: the achievable ceiling.
    pub oracle_auc: Option<f64>,
    /// Spearman rank correlation between prediction and truth, all rows.
    pub spearman: Option<f64>,
    pub all_rows: Calibration,
    /// Rows that reached the parent stage (all rows for the first stage).
    pub reached_previous: Calibration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTruth {
    pub conditional: TruthBlock,
    pub cumulative: TruthBlock,
}

fn calibration(pred: &[f64], truth: &[f64], rows: impl Iterator<Item = usize>) -> Calibration {
    let mut n = 0usize;
    let (mut sp, mut st) = (0.0, 0.0);
    let mut bins = [(0usize, 0.0f64, 0.0f64); ECE_BINS];
    for i in rows {
        n += 1;
        sp += pred[i];
        st += truth[i];
        let b = ((pred[i] * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[b].0 += 1;
        bins[b].1 += pred[i];
        bins[b].2 += truth[i];
    }
    if n == 0 {
        return Calibration {
            rows: 0,
            mean_pred: None,
            mean_true: None,
            bias: None,
            ece: None,
        };
    }
    let ece = bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|&(_, p, t)| (p - t).abs() / n as f64)
        .sum();
    let (mp, mt) = (sp / n as f64, st / n as f64);
    Calibration {
        rows: n,
        mean_pred: Some(mp),
        mean_true: Some(mt),
        bias: Some(mp - mt),
        ece: Some(ece),
    }
}

/// Pearson correlation of the tie-averaged ranks.
fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    if a.len() < 2 {
        return None;
    }
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

fn block(pred: &[f64], truth: &[f64], draws: &[f64], reached_prev: Option<&[u8]>) -> TruthBlock {
    let labels: Vec<u8> = truth
        .iter()
        .zip(draws)
        .map(|(t, u)| (u < t) as u8)
        .collect();
    let n = pred.len();
    TruthBlock {
        auc_counterfactual: auc(pred, &labels),
        oracle_auc: auc(truth, &labels),
        spearman: spearman(pred, truth),
        all_rows: calibration(pred, truth, 0..n),
        reached_previous: match reached_prev {
            None => calibration(pred, truth, 0..n),
            Some(r) => calibration(pred, truth, (0..n).filter(|&i| r[i] != 0)),
        },
    }
}

/// Judge logits (rows x stages) against the true conditional probabilities `truth[k][i]`.
/// Counterfactual labels come from a fixed stream, so every model is judged on the same draws.
pub fn evaluate_truth(
    funnel: &Funnel,
    logits: &[f32],
    reached: &[Vec<u8>],
    truth: &[Vec<f64>],
) -> Vec<StageTruth> {
    let k = truth.len();
    let rows = truth.first().map_or(0, Vec::len);
    let mut q = vec![Vec::with_capacity(rows); k];
    let mut p = vec![Vec::with_capacity(rows); k];
    // In blocks of rows, so the f64 intermediates stay small whatever the data's size.
    for block in logits.chunks(funnel.logit_columns() * 65_536) {
        let probs = funnel.probabilities(block);
        for j in 0..probs.rows() {
            for s in 0..k {
                let pr = probs.get(j, s);
                q[s].push(pr.log_q.exp());
                p[s].push(pr.log_p.exp());
            }
        }
    }
    // The true cumulative probability: the parent's times the stage's true conditional.
    let mut true_p: Vec<Vec<f64>> = Vec::with_capacity(k);
    (0..k)
        .map(|s| {
            let tp: Vec<f64> = match funnel.parent(s) {
                None => truth[s].clone(),
                Some(p) => true_p[p]
                    .iter()
                    .zip(&truth[s])
                    .map(|(a, b)| a * b)
                    .collect(),
            };
            let draws = |name: &str| -> Vec<f64> {
                let mut r = Rng::stream(0, &format!("counterfactual/{name}/{s}"));
                (0..rows).map(|_| r.uniform()).collect()
            };
            let prev = funnel.parent(s).map(|p| reached[p].as_slice());
            // A first stage's two predictions (and truths) are one: judged once, on one draw.
            let conditional = block(&q[s], &truth[s], &draws("conditional"), prev);
            let cumulative = match funnel.parent(s) {
                None => conditional.clone(),
                Some(_) => block(&p[s], &tp, &draws("cumulative"), prev),
            };
            let t = StageTruth {
                conditional,
                cumulative,
            };
            true_p.push(tp);
            t
        })
        .collect()
}

fn signed(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |x| format!("{x:+.4}"))
}

/// The truth table: per stage and prediction, the model's row and the oracle's row.
pub fn format_truth_table(title: &str, m: &[StageMetrics], t: &[StageTruth]) -> String {
    let head = [
        "stage",
        "prediction",
        "who",
        "AUC vs counterfactual",
        "Spearman",
        "bias (all)",
        "ECE (all)",
        "bias (reached prev)",
        "ECE (reached prev)",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (x, st) in m.iter().zip(t) {
        let name = &x.name;
        for (cumulative, b) in [(true, &st.cumulative), (false, &st.conditional)] {
            let pred = match (&x.parent, cumulative) {
                (_, true) => format!("cumulative  P({name})"),
                (None, false) => format!("conditional P({name})"),
                (Some(prev), false) => format!("conditional P({name}|{prev})"),
            };
            rows.push(vec![
                if cumulative {
                    name.clone()
                } else {
                    String::new()
                },
                pred,
                "model".into(),
                fmt_opt(b.auc_counterfactual),
                fmt_opt(b.spearman),
                signed(b.all_rows.bias),
                fmt_opt(b.all_rows.ece),
                signed(b.reached_previous.bias),
                fmt_opt(b.reached_previous.ece),
            ]);
            // The oracle predicts the truth: its AUC against the counterfactual labels is the
            // ceiling; rank correlation and calibration against itself are trivially perfect.
            rows.push(vec![
                String::new(),
                String::new(),
                "oracle".into(),
                fmt_opt(b.oracle_auc),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    super::render(title, &head, &rows, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_and_ece_by_hand() {
        // Bins: 0.05 and 0.15 fall in bins 0 and 1; 0.55 in bin 5.
        let pred = [0.05, 0.15, 0.55, 0.55];
        let truth = [0.10, 0.15, 0.45, 0.65];
        let c = calibration(&pred, &truth, 0..4);
        assert!((c.mean_pred.unwrap() - 0.325).abs() < 1e-12);
        assert!((c.mean_true.unwrap() - 0.3375).abs() < 1e-12);
        assert!((c.bias.unwrap() + 0.0125).abs() < 1e-12);
        // ECE = 1/4·|0.05-0.10| + 1/4·0 + 2/4·|0.55-0.55| = 0.0125.
        assert!((c.ece.unwrap() - 0.0125).abs() < 1e-12);
    }

    #[test]
    fn spearman_by_hand() {
        // Ranks a: 1 2 3 4, b: 1 3 2 4 -> rho = 1 - 6·2/(4·15) = 0.8.
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 30.0, 20.0, 40.0]).unwrap() - 0.8).abs()
                < 1e-12
        );
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn oracle_is_the_truth() {
        // Logits whose probabilities are the truth: the model is the oracle.
        let mut r = Rng::stream(8, "oracle");
        let n = 2000;
        let logits: Vec<f32> = (0..2 * n).map(|_| (2.0 * r.normal()) as f32).collect();
        let s = |z: f32| 1.0 / (1.0 + (-(z as f64)).exp());
        let truth = vec![
            (0..n).map(|i| s(logits[2 * i])).collect::<Vec<_>>(),
            (0..n).map(|i| s(logits[2 * i + 1])).collect::<Vec<_>>(),
        ];
        let first: Vec<u8> = truth[0].iter().map(|&t| (r.uniform() < t) as u8).collect();
        let second: Vec<u8> = first
            .iter()
            .map(|&c| c & (r.uniform() < 0.5) as u8)
            .collect();
        let funnel = Funnel::esmm(2);
        let t = evaluate_truth(&funnel, &logits, &[first.clone(), second], &truth);
        for st in &t {
            for b in [&st.conditional, &st.cumulative] {
                let auc = b.auc_counterfactual.expect("defined on 2000 rows");
                assert!((auc - b.oracle_auc.unwrap()).abs() < 1e-12);
                assert!((b.spearman.unwrap() - 1.0).abs() < 1e-12);
                assert!(b.all_rows.bias.unwrap().abs() < 1e-6);
                assert!(b.all_rows.ece.unwrap() < 1e-6);
            }
        }
        let clicked = first.iter().filter(|&&c| c == 1).count();
        assert_eq!(t[1].conditional.reached_previous.rows, clicked);
        // The first stage's two predictions are one, judged on one draw: the same block. A
        // later stage's two are judged on draws of their own.
        assert_eq!(t[0].conditional, t[0].cumulative);
        assert_ne!(
            t[1].conditional.auc_counterfactual,
            t[1].cumulative.auc_counterfactual
        );
    }
}
