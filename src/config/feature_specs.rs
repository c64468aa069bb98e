//! The checked features: categorical, multi-valued and numeric features, field groups, and the
//! embedded fields they make.

use super::choices::*;
use crate::layout::Pooling;

#[derive(Debug, Clone)]
pub struct CategoricalSpec {
    pub name: String,
    pub column: String,
    pub dim: usize,
    pub min_count: u64,
    pub hash_buckets: Option<u32>,
    /// L2 on the feature's touched rows, when it sets its own (else the embedding
    /// optimizer's `l2`).
    pub l2: Option<f64>,
    /// Whether the leak check lets the feature through.
    pub allow_leak: bool,
}

/// How the tokens of a multi-valued feature's text cell are written.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenWeights {
    /// Every token weighs 1.
    None,
    /// `token<separator>weight` in the cell.
    Inline(String),
    /// A parallel column of weights (a list, or text cut by the feature's separator).
    Column(String),
}

/// A feature with a bag of tokens per row, pooled into one vector.
#[derive(Debug, Clone)]
pub struct MultiValuedSpec {
    /// The tokens' vocabulary: name, column, width, `min_count`, hashing and L2, as a
    /// categorical feature's.
    pub vocabulary: CategoricalSpec,
    /// Between the tokens of a text cell.
    pub separator: String,
    pub weights: TokenWeights,
    pub pooling: Pooling,
    pub max_len: Option<usize>,
    pub keep: KeepTokens,
    pub empty: EmptyList,
}

impl MultiValuedSpec {
    /// The parallel column of weights, when the feature reads one.
    pub fn weight_column(&self) -> Option<&str> {
        match &self.weights {
            TokenWeights::Column(c) => Some(c),
            _ => None,
        }
    }
}

/// A behaviour history: its tokens read as a multi-valued feature's are (column, separator,
/// `max_len`, `keep`; no weights, an empty list is no tokens), encoded with the target's
/// vocabulary and embedded with the target's table; DIN pools them (`DinSpec`).
#[derive(Debug, Clone)]
pub struct SequenceSpec {
    /// How a cell becomes tokens. Its vocabulary is the target's, under the sequence's own
    /// name and column.
    pub tokens: MultiValuedSpec,
    /// The categorical feature (its index, which is its embedded field's) whose values the
    /// tokens are.
    pub target: usize,
}

/// DIN's activation unit: its MLP (no dropout), shared by the stages or one per stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DinSpec {
    pub unit: crate::config::TowerSpec,
    pub per_stage: bool,
}

/// Features whose embeddings are summed into one slice of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldGroup {
    pub name: String,
    /// Embedded fields (`Pipeline::embedded_fields` order): categorical features and
    /// multi-valued ones.
    pub members: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct NumericSpec {
    pub name: String,
    pub column: String,
    pub transform: NumericTransform,
    pub missing: MissingPolicy,
    /// With `transform: quantile_buckets`: the feature's bucket table.
    pub buckets: Option<BucketSpec>,
    /// Whether the leak check lets the feature through.
    pub allow_leak: bool,
}

/// A numeric feature read as an embedding: its values cut at training quantiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    /// Intervals asked for (fewer remain when quantiles coincide).
    pub count: usize,
    pub dim: usize,
    /// Whether the standardised value is fed too.
    pub also_raw: bool,
}

impl NumericSpec {
    /// Whether the model reads the value itself (not only its bucket).
    pub fn feeds_value(&self) -> bool {
        self.buckets.is_none_or(|b| b.also_raw)
    }
}

/// The embedded fields of these features: (name, width) of each categorical feature, then of
/// each bucketed numeric feature, then of each multi-valued feature.
pub fn embedded_fields<'a>(
    categorical: &'a [CategoricalSpec],
    numeric: &'a [NumericSpec],
    multi_valued: &'a [MultiValuedSpec],
) -> Vec<(&'a str, usize)> {
    categorical
        .iter()
        .map(|c| (c.name.as_str(), c.dim))
        .chain(
            numeric
                .iter()
                .filter_map(|n| n.buckets.map(|b| (n.name.as_str(), b.dim))),
        )
        .chain(
            multi_valued
                .iter()
                .map(|m| (m.vocabulary.name.as_str(), m.vocabulary.dim)),
        )
        .collect()
}
