//! How one stage is supervised: a list of loss terms, each naming which of the stage's
//! probabilities it reads, on which rows, with what row weighting and what weight. Model presets
//! (`esmm`, `naive`, `independent`, `division`, `aitm`, `escm2_ips`, `escm2_dr`) expand into
//! these during validation.

/// Which prediction of a stage: the cumulative p_k = P(reach k) or the conditional
/// q_k = P(reach k | reached the parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// p_k, judged against the cumulative label.
    Cumulative,
    /// q_k, judged against the stage's label on the rows that reached the parent.
    Conditional,
}

/// The rows a loss term reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row of the batch (the entire space).
    All,
    /// Only the rows that reached the stage's parent (the classic CVR sample); the first stage
    /// has no parent, so there it means every row.
    ReachedParent,
}

/// How the rows of a term are weighted and normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// Every row counts once; the term is the mean over its rows.
    Unit,
    /// Inverse propensity (ESCM², Wang et al., SIGIR 2022): each row's loss is divided by the
    /// parent's predicted probability (detached from the gradient), and the sum is divided by the
    /// batch size (or, self-normalised, by the sum of the weights).
    InversePropensity(Propensity),
    /// Doubly robust (ESCM²-DR): the stage's imputation head predicts each row's loss ê; the
    /// term is (1/|B|) Σ [ê + o (e − ê) w] with ê held fixed (it trains the prediction) plus
    /// `imputation_weight` · (1/|B|) Σ o (e − ê)² w with e held fixed (it trains ê), where e is
    /// the row's loss, o whether it reached the parent and w the inverse propensity.
    DoublyRobust {
        propensity: Propensity,
        imputation_weight: f64,
    },
}

impl Weighting {
    /// The auxiliary head whose output this weighting reads, if any.
    pub fn head(&self) -> Option<HeadKind> {
        match self {
            Weighting::DoublyRobust { .. } => Some(HeadKind::Imputation),
            Weighting::Unit | Weighting::InversePropensity(_) => None,
        }
    }

    /// The propensity settings of the weightings that divide by the parent's probability.
    pub fn propensity(&self) -> Option<Propensity> {
        match *self {
            Weighting::Unit => None,
            Weighting::InversePropensity(p) | Weighting::DoublyRobust { propensity: p, .. } => {
                Some(p)
            }
        }
    }
}

/// An auxiliary output of a stage that only the loss reads (never a prediction): the model
/// builds one head per kind a stage's terms read, and the chain's output holds it by (stage,
/// kind). A new kind is a variant here, the term that reads it, and its arm in the model's
/// `model/heads.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeadKind {
    /// ESCM²-DR's imputation: each row's predicted loss ê ≥ 0.
    Imputation,
}

impl HeadKind {
    /// The head's name in checkpoint keys (`imputation.<stage>...`).
    pub fn key(self) -> &'static str {
        match self {
            HeadKind::Imputation => "imputation",
        }
    }
}

impl Supervision {
    /// The heads this stage's terms read, each once, in kind order.
    pub fn heads(&self) -> Vec<HeadKind> {
        let mut kinds: Vec<HeadKind> = self
            .terms
            .iter()
            .filter_map(|t| t.weighting.head())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// Settings of an inverse-propensity weight w = min(1 / max(p̂_parent, floor), max_weight).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propensity {
    pub floor: f64,
    pub max_weight: f64,
    pub self_normalised: bool,
}

/// Which label a term compares its probability with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// "Reached this stage": the cumulative label (conditional targets read it on the rows that
    /// reached the parent, where it equals the stage's own outcome).
    Reached,
    /// The stage's own column as written, also on rows that did not reach the parent (a
    /// `given_previous` column such as adult's marital status has a value on every row): plain
    /// multi-task learning.
    Own,
}

/// One loss term: weight · (weighted mean over `rows` of BCE(`target` probability, `label`)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    pub target: Prediction,
    pub rows: Rows,
    pub label: Label,
    pub weighting: Weighting,
    /// Multiplies the term; 0 switches it off.
    pub weight: f64,
}

impl Term {
    /// A plain term: every row of `rows` counts once.
    pub fn unit(target: Prediction, rows: Rows, weight: f64) -> Term {
        Term {
            target,
            rows,
            label: Label::Reached,
            weighting: Weighting::Unit,
            weight,
        }
    }
}

/// All loss terms of one stage (none: the stage is not supervised, its tower still feeds its
/// children).
#[derive(Debug, Clone, PartialEq)]
pub struct Supervision {
    pub terms: Vec<Term>,
    /// The stage's `loss_weight`. It is already folded into each term's weight; it also scales
    /// the funnel's calibrator term for this stage, so a stage weighted 0 gets no loss at all.
    pub stage_weight: f64,
}

impl Term {
    /// A plain term on the stage's own column over all rows (the `independent` preset).
    pub fn own(target: Prediction, weight: f64) -> Term {
        Term {
            label: Label::Own,
            ..Term::unit(target, Rows::All, weight)
        }
    }
}

impl Supervision {
    pub fn single(term: Term) -> Supervision {
        Supervision {
            terms: vec![term],
            stage_weight: 1.0,
        }
    }
}

/// What a stage's logit is the logit of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The conditional q_k (ESMM): p_k = p_parent · q_k can never exceed p_parent.
    Conditional,
    /// The cumulative p_k directly (DIVISION, AITM): q_k = min(p_k / p_parent, 1), and p_k may
    /// exceed p_parent (an order violation).
    Cumulative,
}
