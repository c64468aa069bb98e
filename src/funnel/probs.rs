//! The stages' probabilities from the chain's logits, written once: `Funnel::log_probs` states
//! the formulas (the product over ancestors, DIVISION's clipped ratio, ESM²'s mixture) over a
//! `LogSpace`, the arithmetic each reader brings: the loss's tensors (`loss/probs.rs`), the f64
//! blocks of rows the metrics, the truth evaluation and predict read (`RowBlock`, below), and
//! an exported graph's nodes once there is one.

use super::graph::Funnel;
use super::supervision::Output;
use crate::numerics::{MAX_LOG_PROB, log_sigmoid, log1mexp};

/// The arithmetic the probabilities are written in, over a block of rows (rows x columns; a
/// column per stage, or per logit column). Every operation is element-wise unless it says
/// otherwise; each implementation keeps its own way of computing it (a tensor takes the sum
/// over ancestors as one product with the ancestor matrix).
pub trait LogSpace: Sized + Clone {
    type Error;
    /// ln σ(x).
    fn log_sigmoid(&self) -> Result<Self, Self::Error>;
    /// −x.
    fn neg(&self) -> Result<Self, Self::Error>;
    /// x + y.
    fn add(&self, other: &Self) -> Result<Self, Self::Error>;
    /// ln(e^x + e^y), without overflow.
    fn log_add(&self, other: &Self) -> Result<Self, Self::Error>;
    /// min(x − parent, 0): the log of DIVISION's clip(p / p_parent, 0, 1).
    fn clipped_ratio(&self, parent: &Self) -> Result<Self, Self::Error>;
    /// Column `c` alone (rows x 1).
    fn column(&self, c: usize) -> Result<Self, Self::Error>;
    /// Columns side by side.
    fn side_by_side(columns: &[Self]) -> Result<Self, Self::Error>;
    /// Each stage's column summed over the stage and its ancestors.
    fn over_ancestors(&self, funnel: &Funnel) -> Result<Self, Self::Error>;
    /// Each stage's parent's column (0 for a stage without one).
    fn of_parents(&self, funnel: &Funnel) -> Result<Self, Self::Error>;
}

/// ln(1 − e^x), capped so that a probability that rounds to 1 keeps a finite complement: what
/// the metrics' log loss reads; the loss takes it inside its BCE kernel instead.
pub trait Complement: LogSpace {
    fn complement(&self) -> Result<Self, Self::Error>;
}

/// Every stage's log-probabilities over a block of rows (rows x stages each).
pub struct LogProbs<T> {
    /// ln q_k: P(reach k | reached the parent).
    pub log_q: T,
    /// ln p_k: P(reach k).
    pub log_p: T,
}

impl Funnel {
    /// The stages' log-probabilities from the logits (rows x `logit_columns`). Conditional
    /// logits: ln q_k = ln σ(z_k), ln p_k = Σ over k and its ancestors of ln q; a stage after an
    /// optional stage v mixes its two conditionals (ESM²), q = q_v σ(z) + (1 − q_v) σ(z_skip),
    /// in log space. Cumulative logits: ln p_k = ln σ(z_k), ln q_k = min(ln p_k − ln p_parent,
    /// 0) (DIVISION's clip(p_k / p_parent, 0, 1)).
    pub fn log_probs<T: LogSpace>(&self, logits: &T) -> Result<LogProbs<T>, T::Error> {
        let log_s = logits.log_sigmoid()?;
        Ok(match self.output() {
            Output::Conditional if self.logit_columns() == self.len() => LogProbs {
                log_p: log_s.over_ancestors(self)?,
                log_q: log_s,
            },
            Output::Conditional => {
                let mut columns: Vec<T> = Vec::with_capacity(self.len());
                for s in self.order() {
                    columns.push(match (self.via(s), self.skip_column(s)) {
                        (Some(v), Some(c)) => {
                            let with = columns[v].add(&log_s.column(s)?)?;
                            let not_v = logits.column(v)?.neg()?.log_sigmoid()?;
                            with.log_add(&not_v.add(&log_s.column(c)?)?)?
                        }
                        _ => log_s.column(s)?,
                    });
                }
                let log_q = T::side_by_side(&columns)?;
                LogProbs {
                    log_p: log_q.over_ancestors(self)?,
                    log_q,
                }
            }
            Output::Cumulative => LogProbs {
                log_q: log_s.clipped_ratio(&log_s.of_parents(self)?)?,
                log_p: log_s,
            },
        })
    }

    /// ln(1 − q) and ln(1 − p) of every stage (rows x stages each): from the logits where they
    /// give it exactly (ln σ(−z) for a conditional logit, ESM²'s mixture of the complements),
    /// else the capped complement of the log-probability.
    pub fn log_complements<T: Complement>(
        &self,
        logits: &T,
        probs: &LogProbs<T>,
    ) -> Result<(T, T), T::Error> {
        let log_not_q = match self.output() {
            // ln(1 − q) = ln σ(−z), column for column.
            Output::Conditional if self.logit_columns() == self.len() => {
                logits.neg()?.log_sigmoid()?
            }
            Output::Conditional => {
                let not = logits.neg()?.log_sigmoid()?;
                let mut columns: Vec<T> = Vec::with_capacity(self.len());
                for s in self.order() {
                    columns.push(match (self.via(s), self.skip_column(s)) {
                        (Some(v), Some(c)) => {
                            let with = probs.log_q.column(v)?.add(&not.column(s)?)?;
                            with.log_add(&columns[v].add(&not.column(c)?)?)?
                        }
                        _ => not.column(s)?,
                    });
                }
                T::side_by_side(&columns)?
            }
            Output::Cumulative => probs.log_q.complement()?,
        };
        Ok((log_not_q, probs.log_p.complement()?))
    }
}

/// ln(e^a + e^b) without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// A block of rows in f64, row-major (rows x columns): the metrics', the truth evaluation's and
/// predict's side of `LogSpace`, one block per batch of scored rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowBlock {
    columns: usize,
    values: Vec<f64>,
}

impl RowBlock {
    /// `values` row-major, `columns` to a row.
    pub fn new(values: &[f32], columns: usize) -> Self {
        RowBlock {
            columns,
            values: values.iter().map(|&v| v as f64).collect(),
        }
    }

    pub fn rows(&self) -> usize {
        self.values.len() / self.columns.max(1)
    }

    pub fn get(&self, row: usize, column: usize) -> f64 {
        self.values[row * self.columns + column]
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        RowBlock {
            columns: self.columns,
            values: self.values.iter().map(|&v| f(v)).collect(),
        }
    }

    fn zip(&self, other: &Self, f: impl Fn(f64, f64) -> f64) -> Self {
        RowBlock {
            columns: self.columns,
            values: self
                .values
                .iter()
                .zip(&other.values)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }

    /// Each stage's value from the row's earlier stages: `f(row, stage, values so far)`.
    fn by_stage(&self, funnel: &Funnel, f: impl Fn(&[f64], &[f64], usize) -> f64) -> Self {
        let mut out = self.clone();
        for (row, done) in self
            .values
            .chunks(self.columns)
            .zip(out.values.chunks_mut(self.columns))
        {
            for s in funnel.order() {
                done[s] = f(row, done, s);
            }
        }
        out
    }
}

impl LogSpace for RowBlock {
    type Error = std::convert::Infallible;

    fn log_sigmoid(&self) -> Result<Self, Self::Error> {
        Ok(self.map(log_sigmoid))
    }

    fn neg(&self) -> Result<Self, Self::Error> {
        Ok(self.map(|x| -x))
    }

    fn add(&self, other: &Self) -> Result<Self, Self::Error> {
        Ok(self.zip(other, |a, b| a + b))
    }

    fn log_add(&self, other: &Self) -> Result<Self, Self::Error> {
        Ok(self.zip(other, log_add))
    }

    fn clipped_ratio(&self, parent: &Self) -> Result<Self, Self::Error> {
        Ok(self.zip(parent, |x, p| (x - p).min(0.0)))
    }

    fn column(&self, c: usize) -> Result<Self, Self::Error> {
        Ok(RowBlock {
            columns: 1,
            values: self
                .values
                .iter()
                .skip(c)
                .step_by(self.columns)
                .copied()
                .collect(),
        })
    }

    fn side_by_side(columns: &[Self]) -> Result<Self, Self::Error> {
        let rows = columns.first().map_or(0, RowBlock::rows);
        let mut values = Vec::with_capacity(rows * columns.len());
        for r in 0..rows {
            values.extend(columns.iter().map(|c| c.values[r]));
        }
        Ok(RowBlock {
            columns: columns.len(),
            values,
        })
    }

    fn over_ancestors(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        Ok(
            self.by_stage(funnel, |row, done, s| match funnel.parent(s) {
                Some(p) => done[p] + row[s],
                None => row[s],
            }),
        )
    }

    fn of_parents(&self, funnel: &Funnel) -> Result<Self, Self::Error> {
        Ok(self.by_stage(funnel, |row, _, s| funnel.parent(s).map_or(0.0, |p| row[p])))
    }
}

impl Complement for RowBlock {
    fn complement(&self) -> Result<Self, Self::Error> {
        // Capped like the training loss, so a saturated probability gives a finite log loss.
        Ok(self.map(|x| log1mexp(x.min(MAX_LOG_PROB))))
    }
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

/// Every stage's probabilities over a block of rows, in log space and f64.
pub struct BlockProbs {
    log_q: RowBlock,
    log_not_q: RowBlock,
    log_p: RowBlock,
    log_not_p: RowBlock,
}

impl BlockProbs {
    pub fn rows(&self) -> usize {
        self.log_p.rows()
    }

    /// Row `row`'s probabilities for stage `s`.
    pub fn get(&self, row: usize, s: usize) -> StageProbs {
        StageProbs {
            log_q: self.log_q.get(row, s),
            log_not_q: self.log_not_q.get(row, s),
            log_p: self.log_p.get(row, s),
            log_not_p: self.log_not_p.get(row, s),
        }
    }
}

impl Funnel {
    /// Every stage's probabilities of a block of rows from their logits (rows x
    /// `logit_columns`, row-major), exactly in f64.
    pub fn probabilities(&self, logits: &[f32]) -> BlockProbs {
        let z = RowBlock::new(logits, self.logit_columns());
        let Ok(probs) = self.log_probs(&z);
        let Ok((log_not_q, log_not_p)) = self.log_complements(&z, &probs);
        BlockProbs {
            log_q: probs.log_q,
            log_not_q,
            log_p: probs.log_p,
            log_not_p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StageProbs;
    use crate::funnel::{Funnel, Output, Prediction, Rows, Supervision, Term};

    /// The probabilities of one row of logits, stage by stage.
    fn rows(f: &Funnel, logits: &[f32]) -> Vec<StageProbs> {
        let b = f.probabilities(logits);
        assert_eq!(b.rows(), 1);
        f.order().map(|s| b.get(0, s)).collect()
    }

    #[test]
    fn cumulative_product_by_hand() {
        let f = Funnel::chain(3, |_| {
            Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
        })
        .unwrap();
        let out = rows(&f, &[0.0, 0.0, 2.0]);
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
        let out = rows(&f, &[1.0, 2.0, -1.0]);
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
        let out = rows(&f, &[0.25, 0.5, 1.0, -2.0]);
        assert!((out[2].log_q.exp() - 0.500_058_184_826_334_7).abs() < 1e-12);
        assert!((out[2].log_not_q.exp() - (1.0 - 0.500_058_184_826_334_7)).abs() < 1e-12);
        let got = out[2].log_p.exp();
        assert!((got - 0.281_120_960_584_972_5).abs() < 1e-12, "{got}");
        // The optional stage itself is an ordinary child of click.
        let s = |z: f64| 1.0 / (1.0 + (-z).exp());
        assert!((out[1].log_p.exp() - s(0.25) * s(0.5)).abs() < 1e-12);
    }
}
