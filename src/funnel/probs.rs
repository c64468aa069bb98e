//! Per-stage probabilities of one row, in log space and f64, from the chain's logits: computed
//! here once and read by the metrics, the truth evaluation and predict.

use super::graph::Funnel;
use super::supervision::Output;
use crate::numerics::{MAX_LOG_PROB, log_sigmoid, log1mexp};

/// ln(e^a + e^b) without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// One row's probabilities for one stage, all in log space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageProbs {
    /// ln q_k: P(reach k | reached the parent).
    pub log_q: f64,
    /// ln(1 - q_k).
    pub log_not_q: f64,
    /// ln p_k: P(reach k).
    pub log_p: f64,
    /// ln(1 - p_k).
    pub log_not_p: f64,
}

impl Funnel {
    /// The probabilities of every stage of one row from its logits (one per stage), exactly in
    /// f64. Conditional logits: ln q_k = ln σ(z_k), ln p_k = ln p_parent + ln q_k. Cumulative
    /// logits: ln p_k = ln σ(z_k), ln q_k = min(ln p_k − ln p_parent, 0) (DIVISION's
    /// clip(p_k / p_parent, 0, 1)).
    pub fn probabilities(&self, logits: &[f32], out: &mut Vec<StageProbs>) {
        out.clear();
        for (k, &z) in self.order().zip(logits) {
            let z = z as f64;
            let log_parent = self.parent(k).map_or(0.0, |p| out[p].log_p);
            let skip = self.skip_column(k).zip(self.via(k));
            let probs = match (self.output(), skip) {
                (Output::Conditional, Some((column, via))) => {
                    // ESM²: q = q_via · σ(z) + (1 − q_via) · σ(z_skip), and
                    // 1 − q = q_via · σ(−z) + (1 − q_via) · σ(−z_skip), both in log space.
                    let (v, zs) = (out[via], logits[column] as f64);
                    let log_q = log_add(v.log_q + log_sigmoid(z), v.log_not_q + log_sigmoid(zs));
                    let log_p = log_parent + log_q;
                    StageProbs {
                        log_q,
                        log_not_q: log_add(
                            v.log_q + log_sigmoid(-z),
                            v.log_not_q + log_sigmoid(-zs),
                        ),
                        log_p,
                        log_not_p: log1mexp(log_p.min(MAX_LOG_PROB)),
                    }
                }
                (Output::Conditional, None) => {
                    let log_q = log_sigmoid(z);
                    let log_p = log_parent + log_q;
                    StageProbs {
                        log_q,
                        log_not_q: log_sigmoid(-z),
                        log_p,
                        // Capped like the training loss, so a saturated p gives a finite loss.
                        log_not_p: log1mexp(log_p.min(MAX_LOG_PROB)),
                    }
                }
                (Output::Cumulative, _) => {
                    let log_p = log_sigmoid(z);
                    let log_q = (log_p - log_parent).min(0.0);
                    StageProbs {
                        log_q,
                        log_not_q: log1mexp(log_q.min(MAX_LOG_PROB)),
                        log_p,
                        // Capped as for conditional logits, so log losses compare across models.
                        log_not_p: log1mexp(log_p.min(MAX_LOG_PROB)),
                    }
                }
            };
            out.push(probs);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::funnel::{Funnel, Output, Prediction, Rows, Supervision, Term};

    #[test]
    fn cumulative_product_by_hand() {
        let f = Funnel::chain(3, |_| {
            Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
        })
        .unwrap();
        let mut out = Vec::new();
        f.probabilities(&[0.0, 0.0, 2.0], &mut out);
        let sig2 = 1.0 / (1.0 + (-2.0f64).exp());
        let p: Vec<f64> = out.iter().map(|s| s.log_p.exp()).collect();
        assert!((p[0] - 0.5).abs() < 1e-12);
        assert!((p[1] - 0.25).abs() < 1e-12);
        assert!((p[2] - 0.25 * sig2).abs() < 1e-12);
        assert!((out[2].log_q.exp() - sig2).abs() < 1e-12);
        assert!((out[2].log_not_p.exp() - (1.0 - 0.25 * sig2)).abs() < 1e-12);
        assert!((out[1].log_not_q.exp() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn cumulative_logits_by_hand() {
        // p = σ(z): p1 = σ(1), p2 = σ(2) > p1 (an order violation: q2 clipped to 1), p3 = σ(-1).
        let f = Funnel::chain(3, |_| {
            Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
        })
        .unwrap()
        .with_output(Output::Cumulative);
        let s = |z: f64| 1.0 / (1.0 + (-z).exp());
        let mut out = Vec::new();
        f.probabilities(&[1.0, 2.0, -1.0], &mut out);
        assert!((out[0].log_p.exp() - s(1.0)).abs() < 1e-12);
        assert!((out[0].log_q.exp() - s(1.0)).abs() < 1e-12);
        assert_eq!(out[1].log_q, 0.0);
        assert!((out[2].log_q.exp() - s(-1.0) / s(2.0)).abs() < 1e-12);
        assert!((out[2].log_not_q.exp() - (1.0 - s(-1.0) / s(2.0))).abs() < 1e-12);
        assert!((out[2].log_not_p.exp() - s(1.0)).abs() < 1e-12);
    }

    #[test]
    fn optional_stage_mixture_by_hand() {
        // click -> cart (optional) -> buy: buy's parent is click, its conditional mixes
        // P(buy | cart) = σ(z_buy) and P(buy | no cart) = σ(z_skip) by P(cart | click).
        // python3: s=lambda z: 1/(1+math.exp(-z)); c=s(0.5); q=c*s(1)+(1-c)*s(-2)
        //   q = 0.5000581848263347, p = s(0.25)*q = 0.2811209605849725
        let f = Funnel::chain(3, |_| {
            Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
        })
        .unwrap()
        .with_optional(1)
        .unwrap();
        assert_eq!(f.parent(2), Some(0));
        assert_eq!(f.via(2), Some(1));
        assert_eq!(f.logit_columns(), 4);
        assert_eq!(f.skip_column(2), Some(3));
        let mut out = Vec::new();
        f.probabilities(&[0.25, 0.5, 1.0, -2.0], &mut out);
        assert!((out[2].log_q.exp() - 0.500_058_184_826_334_7).abs() < 1e-12);
        assert!((out[2].log_not_q.exp() - (1.0 - 0.500_058_184_826_334_7)).abs() < 1e-12);
        let got = out[2].log_p.exp();
        assert!((got - 0.281_120_960_584_972_5).abs() < 1e-12, "{got}");
        // The optional stage itself is an ordinary child of click.
        let s = |z: f64| 1.0 / (1.0 + (-z).exp());
        assert!((out[1].log_p.exp() - s(0.25) * s(0.5)).abs() < 1e-12);
    }
}
