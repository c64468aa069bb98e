//! Exact rank-based AUC (Mann-Whitney U, ties averaged), in memory or over rows streamed in
//! score order, and tie-averaged ranks.

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
/// counting one half (Mann-Whitney U). `None` when there are no positives or no negatives.
pub fn auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
    let mut tally = SortedAuc::default();
    for i in order {
        let positive = labels[i as usize] != 0;
        tally.push(scores[i as usize], positive as u64, !positive as u64);
    }
    tally.finish()
}

/// Exact AUC over rows fed in ascending order of score, in one pass and constant memory: each
/// run of equal scores is one tie, whose positives win against every negative below it and
/// half of the negatives beside it. The sums are integers (doubled), so the result does not
/// depend on how the rows were split or merged.
#[derive(Debug, Default, Clone)]
pub struct SortedAuc {
    /// The open tie: its score, positives and negatives.
    tie: Option<(f64, u64, u64)>,
    /// Negatives below the open tie.
    below: u64,
    positives: u64,
    /// Twice the wins of the closed ties.
    wins2: u128,
}

impl SortedAuc {
    /// `pos` positives and `neg` negatives scoring `score`, not below any score pushed before.
    pub fn push(&mut self, score: f64, pos: u64, neg: u64) {
        match &mut self.tie {
            Some((s, p, n)) if s.total_cmp(&score).is_eq() => {
                *p += pos;
                *n += neg;
            }
            _ => {
                self.close();
                self.tie = Some((score, pos, neg));
            }
        }
    }

    fn close(&mut self) {
        if let Some((_, p, n)) = self.tie.take() {
            self.wins2 += p as u128 * (2 * self.below as u128 + n as u128);
            self.below += n;
            self.positives += p;
        }
    }

    /// The AUC of the rows pushed; `None` without both classes.
    pub fn finish(mut self) -> Option<f64> {
        self.close();
        let (p, n) = (self.positives, self.below);
        (p > 0 && n > 0).then(|| self.wins2 as f64 / (2.0 * p as f64 * n as f64))
    }
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Scores from a few distinct values (ties are frequent) and labels, 2 to 60 rows.
        fn sample() -> impl Strategy<Value = (Vec<f64>, Vec<u8>)> {
            (2usize..60).prop_flat_map(|n| {
                (
                    proptest::collection::vec((0u8..8).prop_map(|v| v as f64 / 7.0), n),
                    proptest::collection::vec(0u8..2, n),
                )
            })
        }

        proptest! {
            /// Equal to the brute-force pair count.
            #[test]
            fn equals_the_pair_count((scores, labels) in sample()) {
                if let Some(a) = auc(&scores, &labels) {
                    prop_assert!((a - pair_auc(&scores, &labels)).abs() < 1e-12);
                }
            }

            /// Unchanged by a strictly increasing transform of the scores.
            #[test]
            fn invariant_under_monotone_transforms((scores, labels) in sample(), shift in -5.0f64..5.0, scale in 0.01f64..100.0) {
                let moved: Vec<f64> = scores.iter().map(|s| (scale * s + shift).exp()).collect();
                prop_assert_eq!(auc(&scores, &labels), auc(&moved, &labels));
            }

            /// Reversing the scores gives 1 − AUC (ties stay ties).
            #[test]
            fn reversed_scores_give_one_minus((scores, labels) in sample()) {
                let flipped: Vec<f64> = scores.iter().map(|s| 1.0 - s).collect();
                match (auc(&scores, &labels), auc(&flipped, &labels)) {
                    (Some(a), Some(b)) => prop_assert!((a + b - 1.0).abs() < 1e-12),
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
        }
    }
}
