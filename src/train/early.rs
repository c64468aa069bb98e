//! Early stopping as one decision per epoch: from the monitored validation score and the
//! counters a checkpoint keeps, whether this epoch's weights are the ones to keep and whether
//! training stops. Taken from values alone, so it can be tested on its own (and, later, taken
//! from scores a collective has reduced).

use crate::config::EarlyStopping;

/// The counters early stopping keeps between epochs (in the trainer's checkpointed state).
pub(super) struct Counters<'a> {
    /// The best monitored score so far (larger is better), none before the first.
    pub best: &'a mut Option<f64>,
    pub best_epoch: &'a mut usize,
    pub since_best: &'a mut usize,
}

/// What an epoch's end decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Verdict {
    /// Keep this epoch's weights: a new best, or no early stopping.
    Keep,
    /// Early stopping is on but the score is undefined on the validation split: the epoch's
    /// weights are kept, as without early stopping.
    Undefined,
    /// Not better than the best; `stop` when the patience has run out.
    Worse { stop: bool },
}

/// Judge `epoch`, whose monitored score (oriented so that larger is better) is `score`.
pub(super) fn judge(
    es: Option<&EarlyStopping>,
    score: Option<f64>,
    epoch: usize,
    c: Counters<'_>,
) -> Verdict {
    match (es, score) {
        // The first epoch always sets the baseline, so there are always weights to restore.
        (Some(_), Some(s)) if c.best.is_none_or(|b| s > b) => {
            (*c.best, *c.best_epoch, *c.since_best) = (Some(s), epoch, 0);
            Verdict::Keep
        }
        (Some(es), Some(_)) => {
            *c.since_best += 1;
            Verdict::Worse {
                stop: *c.since_best >= es.patience,
            }
        }
        (Some(_), None) => {
            *c.best_epoch = epoch;
            Verdict::Undefined
        }
        (None, _) => {
            *c.best_epoch = epoch;
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Measure;
    use crate::funnel::Prediction;

    fn spec(patience: usize) -> EarlyStopping {
        EarlyStopping {
            stage: 1,
            prediction: Prediction::Cumulative,
            measure: Measure::Auc,
            patience,
            monitor: "conversion.cumulative.auc".into(),
        }
    }

    /// Scores 0.70, 0.72, 0.71, 0.72, 0.69 with patience 2, by hand: epochs 1 and 2 are new
    /// bests; 3 and 4 are not (a tie is no improvement), and the second of them stops with
    /// epoch 2 kept as the best.
    #[test]
    fn patience_counts_epochs_without_improvement() {
        let es = spec(2);
        let (mut best, mut best_epoch, mut since) = (None, 0, 0);
        let mut verdicts = Vec::new();
        for (epoch, s) in [0.70, 0.72, 0.71, 0.72, 0.69].into_iter().enumerate() {
            let c = Counters {
                best: &mut best,
                best_epoch: &mut best_epoch,
                since_best: &mut since,
            };
            verdicts.push(judge(Some(&es), Some(s), epoch + 1, c));
        }
        use Verdict::*;
        assert_eq!(
            verdicts,
            [
                Keep,
                Keep,
                Worse { stop: false },
                Worse { stop: true },
                Worse { stop: true }
            ]
        );
        assert_eq!((best, best_epoch), (Some(0.72), 2));
    }

    /// Without early stopping every epoch is kept; with an undefined score too, and the last
    /// epoch is the best.
    #[test]
    fn no_monitor_or_no_score_keeps_every_epoch() {
        let (mut best, mut best_epoch, mut since) = (None, 0, 0);
        for epoch in 1..=3 {
            let c = Counters {
                best: &mut best,
                best_epoch: &mut best_epoch,
                since_best: &mut since,
            };
            assert_eq!(judge(None, Some(0.5), epoch, c), Verdict::Keep);
        }
        let c = Counters {
            best: &mut best,
            best_epoch: &mut best_epoch,
            since_best: &mut since,
        };
        assert_eq!(judge(Some(&spec(1)), None, 4, c), Verdict::Undefined);
        assert_eq!((best, best_epoch, since), (None, 4, 0));
    }
}
