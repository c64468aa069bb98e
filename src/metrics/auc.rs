//! Exact rank-based AUC (Mann-Whitney U, ties averaged) and tie-averaged ranks.

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
