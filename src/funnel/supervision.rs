//! How one stage is supervised: which of its probabilities the loss reads, on which rows, and
//! with what weight. Model presets (`esmm`, `naive`) expand into these during validation.

/// Which prediction of a stage: the cumulative p_k = P(reach k) or the conditional
/// q_k = P(reach k | reached the parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// p_k, judged against the cumulative label.
    Cumulative,
    /// q_k, judged against the stage's label on the rows that reached the parent.
    Conditional,
}

impl Prediction {
    /// The name used in metric names, `metrics.json` keys and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::Cumulative => "cumulative",
            Prediction::Conditional => "conditional",
        }
    }
}

/// The rows a stage's loss term averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row of the batch (the entire space).
    All,
    /// Only the rows that reached the stage's parent (the classic CVR sample); the first stage
    /// has no parent, so there it means every row.
    ReachedParent,
}

/// One stage's loss term: weight · mean over `rows` of BCE(`target` probability, label).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Supervision {
    pub target: Prediction,
    pub rows: Rows,
    /// Multiplies the term; 0 leaves the stage unsupervised (its tower still feeds later stages).
    pub weight: f64,
}
