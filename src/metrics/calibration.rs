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
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let mut binner = Binner::new(probs.len(), bins);
    for i in order {
        binner.push(probs[i], labels[i] != 0);
    }
    binner.finish()
}

/// A reliability curve over `rows` rows fed in ascending order of prediction, in one pass:
/// cuts at every rows/bins rows, each moved past rows tied with the one before it, so equal
/// predictions share a bin and the curve does not depend on the rows' order.
pub struct Binner {
    rows: usize,
    bins: usize,
    /// Rows pushed, and the bin being filled with the row at which it may close.
    seen: usize,
    bin: usize,
    cut: usize,
    /// The open bin: rows, summed predictions, positives; the last prediction pushed.
    open: (usize, f64, usize),
    last: f64,
    total: (f64, usize),
    ece: f64,
    out: Vec<Bin>,
}

impl Binner {
    pub fn new(rows: usize, bins: usize) -> Binner {
        let bins = bins.min(rows);
        Binner {
            rows,
            bins,
            seen: 0,
            bin: 0,
            cut: rows.checked_div(bins).map_or(rows, |c| c.max(1)),
            open: (0, 0.0, 0),
            last: f64::NAN,
            total: (0.0, 0),
            ece: 0.0,
            out: Vec::with_capacity(bins),
        }
    }

    /// The next row: its prediction (not below the last) and label.
    pub fn push(&mut self, prob: f64, positive: bool) {
        if self.open.0 > 0 && self.seen >= self.cut && prob != self.last {
            self.close();
            self.bin += 1;
            self.cut = ((self.bin + 1) * self.rows / self.bins).max(self.seen + 1);
        }
        self.open.0 += 1;
        self.open.1 += prob;
        self.open.2 += positive as usize;
        self.total.0 += prob;
        self.total.1 += positive as usize;
        self.last = prob;
        self.seen += 1;
    }

    fn close(&mut self) {
        let (rows, sum, pos) = std::mem::take(&mut self.open);
        let pred = sum / rows as f64;
        let rate = pos as f64 / rows as f64;
        self.ece += rows as f64 / self.rows as f64 * (pred - rate).abs();
        self.out.push(Bin {
            rows,
            mean_pred: pred,
            rate,
        });
    }

    /// The curve; `None` without rows.
    pub fn finish(mut self) -> Option<Reliability> {
        debug_assert_eq!(
            self.seen, self.rows,
            "a Binner fed other rows than it was told"
        );
        if self.seen == 0 || self.bins == 0 {
            return None;
        }
        self.close();
        let n = self.seen as f64;
        Some(Reliability {
            mean_pred: self.total.0 / n,
            rate: self.total.1 as f64 / n,
            ece: self.ece,
            bins: self.out,
        })
    }
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
