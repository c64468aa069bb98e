//! The `features` block as written: categorical, multi-valued and numeric features.

use serde::{Deserialize, Serialize};

use crate::config::choices::{MissingPolicy, NumericTransform};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatures {
    /// Embedding width for every categorical feature that does not set `dim`.
    #[serde(default = "default_dim")]
    pub embedding_dim: usize,
    /// Standard deviation of the normal initialisation of embedding rows.
    #[serde(default = "default_init_std")]
    pub embedding_init_std: f64,
    /// Blocks, or names alone for features read from the column of that name with defaults.
    #[serde(default, deserialize_with = "super::shorthand::list")]
    pub categorical: Vec<RawCategorical>,
    #[serde(default, deserialize_with = "super::shorthand::list")]
    pub numeric: Vec<RawNumeric>,
    /// Features holding several tokens per row (tags, a user's recent categories), each pooled
    /// into one vector.
    #[serde(
        default,
        deserialize_with = "super::shorthand::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub multi_valued: Vec<RawMultiValued>,
    /// Behaviour histories (a user's earlier items), each read through a categorical feature's
    /// embedding table and pooled by DIN's attention against that feature's value.
    #[serde(
        default,
        deserialize_with = "super::shorthand::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sequences: Vec<RawSequence>,
    /// Field groups (the ESMM paper's field-wise sum): each group's categorical embeddings are
    /// summed into one slice of the input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RawGroup>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    /// Categorical feature names; at least two, each in one group at most, all of one `dim`.
    pub features: Vec<String>,
}

fn default_dim() -> usize {
    8
}

fn default_init_std() -> f64 {
    0.01
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategorical {
    pub name: String,
    /// Data column; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// Values seen fewer times than this in training map to the out-of-vocabulary id.
    #[serde(default = "one")]
    pub min_count: u64,
    /// Hash values into this many buckets instead of fitting a vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<u32>,
    /// L2 on this feature's touched rows (default: `train.embedding_optimizer.l2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    /// Train even though the feature alone separates a stage's label (the leak check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_leak: bool,
}

/// A multi-valued feature: a vocabulary over its tokens, as a categorical feature has, and how
/// a cell becomes tokens and the tokens one vector.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMultiValued {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    #[serde(default = "one")]
    pub min_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    /// Between the tokens of a text cell (default `|`); Parquet list columns need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Tokens written `token<weight_separator>weight` (`tag:0.5`): each token's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_separator: Option<String>,
    /// A column holding each row's weights, in token order (a list, or text cut by `separator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<crate::layout::Pooling>,
    /// Most tokens kept per row; longer rows are truncated, and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Which tokens a truncated row keeps: its `first` (default) or its `last` `max_len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<crate::config::choices::KeepTokens>,
    /// What an empty list means: a state of its own with its own row (`own`, the default), or
    /// the same as a missing value (`missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<crate::config::choices::EmptyList>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_leak: bool,
}

impl super::Shorthand for RawMultiValued {
    const EXPECTING: &'static str = "a feature name, or a block of keys (`name`, `column`, `separator`, `pooling`, `max_len`, ...)";
    fn from_shorthand(name: &str) -> Self {
        RawMultiValued {
            name: name.to_string(),
            column: None,
            dim: None,
            min_count: one(),
            hash_buckets: None,
            l2: None,
            separator: None,
            weight_separator: None,
            weight_column: None,
            pooling: None,
            max_len: None,
            keep: None,
            empty: None,
            allow_leak: false,
        }
    }
}

/// A behaviour history: an ordered token list whose tokens are values of `target` (a
/// categorical feature), embedded with the target's table and vocabulary.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSequence {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The categorical feature whose values the tokens are (the candidate item or category).
    pub target: String,
    /// Between the tokens of a text cell (default `|`); Parquet list columns need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Most tokens kept per row; longer rows are truncated, and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Which tokens a truncated row keeps: its `first` (default: the most recent events, when
    /// the history is written most recent first, as `funnel prepare taobao` writes it) or its
    /// `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<crate::config::choices::KeepTokens>,
}

impl super::Shorthand for RawSequence {
    const EXPECTING: &'static str =
        "a block of keys (`name`, `target`, `column`, `separator`, `max_len`, `keep`)";
    fn from_shorthand(name: &str) -> Self {
        // A bare name has no target; validation says which key is missing.
        RawSequence {
            name: name.to_string(),
            column: None,
            target: String::new(),
            separator: None,
            max_len: None,
            keep: None,
        }
    }
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumeric {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default)]
    pub transform: NumericTransform,
    /// What a missing, NaN or infinite value becomes.
    #[serde(default)]
    pub missing: MissingPolicy,
    /// `quantile_buckets`: how many intervals the training quantiles cut (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<usize>,
    /// `quantile_buckets`: the bucket table's width (default `features.embedding_dim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// `quantile_buckets`: also feed the standardised value, next to the bucket's embedding (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also_raw: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_leak: bool,
}

impl super::Shorthand for RawCategorical {
    const EXPECTING: &'static str =
        "a feature name, or a block of keys (`name`, `column`, `dim`, `min_count`, `hash_buckets`)";
    fn from_shorthand(name: &str) -> Self {
        RawCategorical {
            name: name.to_string(),
            column: None,
            dim: None,
            min_count: one(),
            hash_buckets: None,
            l2: None,
            allow_leak: false,
        }
    }
}

impl super::Shorthand for RawNumeric {
    const EXPECTING: &'static str =
        "a feature name, or a block of keys (`name`, `column`, `transform`, `missing`, ...)";
    fn from_shorthand(name: &str) -> Self {
        RawNumeric {
            name: name.to_string(),
            column: None,
            transform: NumericTransform::default(),
            missing: MissingPolicy::default(),
            buckets: None,
            dim: None,
            also_raw: None,
            allow_leak: false,
        }
    }
}
