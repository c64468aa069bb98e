//! Calibration of one prediction against its labels: a reliability curve over equal-mass bins,
//! and the expected calibration error (ECE) it gives.
//!
//! Bins hold equal numbers of rows, ordered by prediction, rather than equal widths of [0, 1]:
//! conversions are rare, so equal-width bins would put nearly every row of a deep stage into the
//! first bin and say nothing about the ranking that matters.

use serde::{Deserialize, Serialize};

/// Bins of a reliability curve.
pub const BINS: usize = 10;

/// A reliability curve and its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// Mean predicted probability over the rows.
    pub mean_pred: f64,
    /// Share of the rows whose label is positive.
    pub rate: f64,
    /// Expected calibration error: Σ_b (n_b / n) · |mean prediction_b − rate_b| over the bins.
    pub ece: f64,
    /// The bins, by increasing prediction.
    pub bins: Vec<Bin>,
}

/// Rows whose predictions fall between two quantiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub rows: usize,
    pub mean_pred: f64,
    pub rate: f64,
}

/// The reliability of probabilities `probs` against 0/1 `labels` over `bins` equal-mass bins
/// (fewer when there are fewer rows or distinct predictions); `None` without rows.
pub fn reliability(probs: &[f64], labels: &[u8], bins: usize) -> Option<Reliability> {
    let n = probs.len();
    if n == 0 || bins == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]).then(a.cmp(&b)));
    let bins = bins.min(n);
    let mut out = Vec::with_capacity(bins);
    let mut ece = 0.0;
    // Cuts at every n/bins rows, each moved past rows tied with the one before it: equal
    // predictions share a bin, so the curve does not depend on the rows' order.
    let mut start = 0;
    for b in 0..bins {
        if start >= n {
            break;
        }
        let mut end = ((b + 1) * n / bins).max(start + 1);
        while end < n && probs[order[end]] == probs[order[end - 1]] {
            end += 1;
        }
        let rows = &order[start..end];
        start = end;
        let pred = rows.iter().map(|&i| probs[i]).sum::<f64>() / rows.len() as f64;
        let rate = rows.iter().filter(|&&i| labels[i] != 0).count() as f64 / rows.len() as f64;
        ece += rows.len() as f64 / n as f64 * (pred - rate).abs();
        out.push(Bin {
            rows: rows.len(),
            mean_pred: pred,
            rate,
        });
    }
    Some(Reliability {
        mean_pred: probs.iter().sum::<f64>() / n as f64,
        rate: labels.iter().filter(|&&l| l != 0).count() as f64 / n as f64,
        ece,
        bins: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_ece_by_hand() {
        // Sorted predictions 0.1, 0.2 | 0.6, 0.8 with labels 0, 1 | 1, 1 (given out of order).
        let probs = [0.8, 0.1, 0.6, 0.2];
        let labels = [1, 0, 1, 1];
        let r = reliability(&probs, &labels, 2).unwrap();
        assert_eq!(r.bins.len(), 2);
        assert_eq!(r.bins[0].rows, 2);
        assert!((r.bins[0].mean_pred - 0.15).abs() < 1e-12);
        assert!((r.bins[0].rate - 0.5).abs() < 1e-12);
        assert!((r.bins[1].mean_pred - 0.7).abs() < 1e-12);
        assert!((r.bins[1].rate - 1.0).abs() < 1e-12);
        // ECE = 0.5·|0.15 − 0.5| + 0.5·|0.7 − 1| = 0.175 + 0.15.
        assert!((r.ece - 0.325).abs() < 1e-12);
        assert!((r.mean_pred - 0.425).abs() < 1e-12);
        assert!((r.rate - 0.75).abs() < 1e-12);
        assert_eq!(reliability(&[], &[], 10), None);
    }

    #[test]
    fn ece_against_a_brute_force_sum() {
        // 1000 rows, uneven bins (1000 / 7): every row lands in exactly one bin, and the ECE
        // equals a direct sum over the rows of each bin.
        let probs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        let labels: Vec<u8> = (0..1000).map(|i| u8::from((i * 31) % 10 < 3)).collect();
        let r = reliability(&probs, &labels, 7).unwrap();
        assert_eq!(r.bins.iter().map(|b| b.rows).sum::<usize>(), 1000);
        let mut sorted: Vec<(f64, u8)> =
            probs.iter().copied().zip(labels.iter().copied()).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut want = 0.0;
        let mut at = 0;
        for b in &r.bins {
            let rows = &sorted[at..at + b.rows];
            at += b.rows;
            let p: f64 = rows.iter().map(|r| r.0).sum::<f64>() / b.rows as f64;
            let y: f64 = rows.iter().map(|r| f64::from(r.1)).sum::<f64>() / b.rows as f64;
            want += (p - y).abs() * b.rows as f64 / 1000.0;
        }
        assert!((r.ece - want).abs() < 1e-12);
        // A perfectly calibrated constant: zero error, whatever the bins and the rows' order.
        let labels = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let r = reliability(&[0.3; 10], &labels, 10).unwrap();
        assert_eq!(r.bins.len(), 1);
        assert!(r.ece.abs() < 1e-12);
        // Ties across a cut stay together: 0.2 ×3 and 0.6 ×3 into two bins of three.
        let r = reliability(&[0.2, 0.6, 0.2, 0.6, 0.2, 0.6], &[0, 1, 0, 1, 1, 0], 4).unwrap();
        assert_eq!(r.bins.iter().map(|b| b.rows).collect::<Vec<_>>(), [3, 3]);
    }
}
