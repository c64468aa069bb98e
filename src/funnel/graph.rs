//! The funnel graph: one node per stage in causal order, each naming its parent. Every question
//! of the form "which stage comes before k" is answered here, never re-derived as `k - 1`.

use super::supervision::{Prediction, Rows, Supervision};

/// A stage's position in the funnel (its index in the pipeline's stage list).
pub type StageId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct StageNode {
    /// The stage a row must have reached before it can reach this one; `None` for the first.
    pub parent: Option<StageId>,
    pub supervision: Supervision,
}

/// The stages in causal order. A parent always comes before its child.
#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    nodes: Vec<StageNode>,
}

impl Funnel {
    /// A funnel from its nodes. Returns `None` when a parent does not come before its child
    /// (config validation reports that with a location before it gets here).
    pub fn new(nodes: Vec<StageNode>) -> Option<Funnel> {
        let ordered = nodes
            .iter()
            .enumerate()
            .all(|(k, n)| n.parent.is_none_or(|p| p < k));
        (ordered && !nodes.is_empty()).then_some(Funnel { nodes })
    }

    /// A chain: stage k's parent is stage k - 1, every stage supervised as `supervision(k)` says.
    pub fn chain(stages: usize, supervision: impl Fn(StageId) -> Supervision) -> Option<Funnel> {
        Funnel::new(
            (0..stages)
                .map(|k| StageNode {
                    parent: k.checked_sub(1),
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

    pub fn supervision(&self, k: StageId) -> &Supervision {
        &self.nodes[k].supervision
    }

    pub fn nodes(&self) -> &[StageNode] {
        &self.nodes
    }

    /// True when every loss term reads the cumulative probability on all rows (ESMM): the loss
    /// then needs no row masks.
    pub fn entire_space_only(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.supervision.target == Prediction::Cumulative && n.supervision.rows == Rows::All
        })
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
        Supervision {
            target: Prediction::Cumulative,
            rows: Rows::All,
            weight: 1.0,
        }
    }

    #[test]
    fn chain_parents_and_ancestors() {
        let f = Funnel::chain(4, unit).unwrap();
        assert_eq!(f.parent(0), None);
        assert_eq!(f.parent(3), Some(2));
        assert_eq!(f.ancestors(3).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(f.ancestors(0).count(), 0);
        assert!(f.entire_space_only());
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
