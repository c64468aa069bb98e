//! The funnel graph: one node per stage in causal order, each naming its parent. Every question
//! of the form "which stage comes before k" is answered here, never re-derived as `k - 1`.

use super::supervision::{Label, Output, Prediction, Rows, Supervision, Term, Weighting};

/// A stage's position in the funnel (its index in the pipeline's stage list).
pub type StageId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct StageNode {
    /// The stage a row must have reached before it can reach this one; `None` for the first.
    pub parent: Option<StageId>,
    /// An optional stage between the parent and this one (ESM²: cart between click and buy,
    /// which buy does not require). This stage then has two conditionals, given the optional
    /// stage and given not, and P(this | parent) mixes them by P(optional | parent).
    pub via: Option<StageId>,
    pub supervision: Supervision,
}

/// The stages in causal order. A parent always comes before its child.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    nodes: Vec<StageNode>,
    output: Output,
    /// AITM's behavioural expectation calibrator: λ · mean over rows of max(p_k − p_parent, 0),
    /// added to every stage that has a parent.
    calibrator: Option<f64>,
}

impl Funnel {
    /// A funnel from its nodes. Returns `None` when a parent does not come before its child
    /// (config validation reports that with a location before it gets here).
    pub fn new(nodes: Vec<StageNode>) -> Option<Funnel> {
        let ordered = nodes.iter().enumerate().all(|(k, n)| {
            n.parent.is_none_or(|p| p < k)
                && n.via.is_none_or(|v| {
                    v < k
                        && n.parent.is_some()
                        && nodes[v].parent == n.parent
                        && nodes[v].via.is_none()
                })
        });
        (ordered && !nodes.is_empty()).then_some(Funnel {
            nodes,
            output: Output::Conditional,
            calibrator: None,
        })
    }

    /// ESMM on a chain of `stages`, every stage weighing 1 (for tests across the crate).
    #[cfg(test)]
    pub fn esmm(stages: usize) -> Funnel {
        Funnel::chain(stages, |_| {
            Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
        })
        .expect("a chain")
    }

    /// The same funnel whose logits mean `output`.
    pub fn with_output(mut self, output: Output) -> Funnel {
        self.output = output;
        self
    }

    /// The same funnel with AITM's calibrator of weight λ (0 or `None`: off).
    pub fn with_calibrator(mut self, lambda: Option<f64>) -> Funnel {
        self.calibrator = lambda.filter(|&l| l > 0.0);
        self
    }

    pub fn output(&self) -> Output {
        self.output
    }

    pub fn calibrator(&self) -> Option<f64> {
        self.calibrator
    }

    /// True when stage k's cumulative prediction can exceed its parent's, so order violations
    /// are worth reporting.
    pub fn can_violate_order(&self, k: StageId) -> bool {
        self.output == Output::Cumulative && self.parent(k).is_some()
    }

    /// A chain: stage k's parent is stage k - 1, every stage supervised as `supervision(k)` says.
    pub fn chain(stages: usize, supervision: impl Fn(StageId) -> Supervision) -> Option<Funnel> {
        Funnel::new(
            (0..stages)
                .map(|k| StageNode {
                    parent: k.checked_sub(1),
                    via: None,
                    supervision: supervision(k),
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Stage ids in causal order (every parent before its children).
    pub fn order(&self) -> std::ops::Range<StageId> {
        0..self.nodes.len()
    }

    pub fn parent(&self, k: StageId) -> Option<StageId> {
        self.nodes[k].parent
    }

    /// The parent, its parent, and so on up to the first stage.
    pub fn ancestors(&self, k: StageId) -> impl Iterator<Item = StageId> + '_ {
        std::iter::successors(self.parent(k), |&a| self.parent(a))
    }

    /// The optional stage whose outcome this stage's conditional mixes over (ESM²).
    pub fn via(&self, k: StageId) -> Option<StageId> {
        self.nodes[k].via
    }

    /// Columns of a row of logits: one per stage, then one more per stage with a `via` (its
    /// conditional given not the optional stage), in stage order.
    pub fn logit_columns(&self) -> usize {
        self.len() + self.nodes.iter().filter(|n| n.via.is_some()).count()
    }

    /// The column of stage k's second logit (given not its `via` stage), if it has one.
    pub fn skip_column(&self, k: StageId) -> Option<usize> {
        self.nodes[k].via?;
        Some(self.len() + self.nodes[..k].iter().filter(|n| n.via.is_some()).count())
    }

    /// A funnel where stage `optional` may be skipped on the way to the stage after it: that
    /// stage's parent becomes `optional`'s parent, and its conditional mixes over `optional`.
    pub fn with_optional(mut self, optional: StageId) -> Option<Funnel> {
        let child = optional + 1;
        let parent = self.nodes.get(optional)?.parent?;
        let node = self.nodes.get_mut(child)?;
        node.parent = Some(parent);
        node.via = Some(optional);
        Funnel::new(std::mem::take(&mut self.nodes)).map(|f| Funnel {
            output: self.output,
            calibrator: self.calibrator,
            ..f
        })
    }

    pub fn supervision(&self, k: StageId) -> &Supervision {
        &self.nodes[k].supervision
    }

    pub fn nodes(&self) -> &[StageNode] {
        &self.nodes
    }

    /// True for ESMM as the paper writes it: conditional logits, and every stage one plain
    /// term on its cumulative probability over all rows, no calibrator. The loss then takes one
    /// batched path.
    pub fn is_plain_entire_space(&self) -> bool {
        self.output == Output::Conditional
            && self.calibrator.is_none()
            && self.nodes.iter().all(|n| {
                matches!(
                    n.supervision.terms[..],
                    [Term {
                        target: Prediction::Cumulative,
                        rows: Rows::All,
                        label: Label::Reached,
                        weighting: Weighting::Unit,
                        ..
                    }]
                )
            })
    }

    /// True when some term reads a stage's own column rather than its "reached" label.
    pub fn uses_own_labels(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.supervision.terms.iter().any(|t| t.label == Label::Own))
    }

    /// The (stages x stages) 0/1 matrix P, row-major, with P[j][k] = 1 when j is k's parent:
    /// a (rows x stages) matrix times P holds each stage's parent's column (zeros for the first).
    pub fn parent_matrix(&self) -> Vec<f32> {
        let k = self.len();
        let mut a = vec![0f32; k * k];
        for s in self.order() {
            if let Some(p) = self.parent(s) {
                a[p * k + s] = 1.0;
            }
        }
        a
    }

    /// The (stages x stages) 0/1 matrix A, row-major, with A[j][k] = 1 when j is k or one of
    /// its ancestors: the cumulative log-probabilities are the conditional ones times A
    /// (ln p_k = Σ over k and its ancestors of ln q_j). For a chain, A is upper triangular and the
    /// product is a cumulative sum.
    pub fn ancestor_matrix(&self) -> Vec<f32> {
        let k = self.len();
        let mut a = vec![0f32; k * k];
        for s in self.order() {
            a[s * k + s] = 1.0;
            for j in self.ancestors(s) {
                a[j * k + s] = 1.0;
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(_: StageId) -> Supervision {
        Supervision::single(Term::unit(Prediction::Cumulative, Rows::All, 1.0))
    }

    #[test]
    fn chain_parents_and_ancestors() {
        let f = Funnel::chain(4, unit).unwrap();
        assert_eq!(f.parent(0), None);
        assert_eq!(f.parent(3), Some(2));
        assert_eq!(f.ancestors(3).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(f.ancestors(0).count(), 0);
        assert!(f.is_plain_entire_space());
        assert!(!f.clone().with_calibrator(Some(0.6)).is_plain_entire_space());
        assert!(!f.can_violate_order(1));
        let f = f.with_output(Output::Cumulative);
        assert!(!f.can_violate_order(0) && f.can_violate_order(3));
        assert_eq!(f.parent_matrix()[2 * 4 + 3], 1.0);
        assert_eq!(f.parent_matrix().iter().sum::<f32>(), 3.0);
        // Upper triangular ones for a chain of three.
        let f = Funnel::chain(3, unit).unwrap();
        assert_eq!(
            f.ancestor_matrix(),
            vec![1., 1., 1., 0., 1., 1., 0., 0., 1.]
        );
    }

    #[test]
    fn branching_funnel_and_bad_order() {
        // 0 -> 1, 0 -> 2: stage 2 skips stage 1.
        let node = |parent| StageNode {
            parent,
            via: None,
            supervision: unit(0),
        };
        let f = Funnel::new(vec![node(None), node(Some(0)), node(Some(0))]).unwrap();
        assert_eq!(f.ancestors(2).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            f.ancestor_matrix(),
            vec![1., 1., 1., 0., 1., 0., 0., 0., 1.]
        );
        assert!(Funnel::new(vec![node(Some(1)), node(None)]).is_none());
        assert!(Funnel::new(vec![]).is_none());
    }
}
