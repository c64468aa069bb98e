//! When training has diverged: a batch loss that is not finite, 100 times the run's first, or
//! 100 times the loss of predicting each stage's base rate (the last holds when the first
//! step's loss is already absurd, as with an unscaled input near 1e30).

use crate::data::SplitData;

/// A batch loss this many times the run's first, or this many times the loss of predicting
/// each stage's base rate, is divergence (BCE losses start near 0.69 per stage and fall; a
/// model whose weights blew up gives losses in the thousands). The second holds when the
/// first step's loss is already absurd (an unscaled input near 1e30 gives 5e28).
const DIVERGENCE_FACTOR: f64 = 100.0;

/// Why a batch loss means divergence, judged against the run's first loss and against the
/// base-rate loss; none when it does not.
pub(super) fn diverged(loss: f64, first: f64, base: f64) -> Option<String> {
    if !loss.is_finite() || loss > DIVERGENCE_FACTOR * first.abs().max(1e-3) {
        Some(format!("the first step's was {first:.4}"))
    } else if loss > DIVERGENCE_FACTOR * base.max(1e-2) {
        Some(format!(
            "more than {DIVERGENCE_FACTOR} times {base:.4}, the loss of predicting each stage's base rate"
        ))
    } else {
        None
    }
}

/// The loss of predicting every stage's base rate on the training rows: the sum over stages
/// of the binary entropy of the share of rows that reached the stage.
pub(super) fn base_rate_loss(train: &SplitData, stages: usize) -> f64 {
    (0..stages)
        .map(|k| {
            let r = train.positives(k) as f64 / train.rows().max(1) as f64;
            let h = |x: f64| if x > 0.0 { -x * x.ln() } else { 0.0 };
            h(r) + h(1.0 - r)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    /// The base-rate loss by hand: rates 1/4 and 1/8 give H(1/4) + H(1/8) =
    /// 0.5623351446188083 + 0.37677016125643675 nats (python: -(p*log(p)+(1-p)*log(1-p))).
    #[test]
    fn base_rate_loss_by_hand() {
        let d = Dataset {
            split: crate::data::Split::Train,
            file: "t.csv".into(),
            rows: 8,
            cat: Vec::new(),
            num: Vec::new(),
            bags: Vec::new(),
            truncated: Vec::new(),
            reached: vec![vec![1, 1, 0, 0, 0, 0, 0, 0], vec![1, 0, 0, 0, 0, 0, 0, 0]],
            own: Vec::new(),
            truth: Vec::new(),
            groups: Vec::new(),
            dropped: vec![0, 0],
        };
        let want = 0.562_335_144_618_808_3 + 0.376_770_161_256_436_75;
        assert!((base_rate_loss(&SplitData::Memory(d), 2) - want).abs() < 1e-12);
    }

    /// A loss of 5e28 from the first step on is divergence against the base rate; a normal
    /// loss is not; a loss 100 times the first is, and so is a NaN.
    #[test]
    fn divergence_is_judged_against_the_base_rate_too() {
        let why = diverged(5e28, 5e28, 0.94).expect("diverged");
        assert!(
            why.contains("the loss of predicting each stage's base rate"),
            "{why}"
        );
        assert_eq!(diverged(0.5, 1.3, 0.94), None);
        assert!(diverged(140.0, 1.3, 0.94).is_some());
        assert!(diverged(f64::NAN, 1.3, 0.94).is_some());
        // A base rate of zero (no positives) does not make every loss divergent.
        assert_eq!(diverged(0.3, 0.7, 0.0), None);
    }
}
