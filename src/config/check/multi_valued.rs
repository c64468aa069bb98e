//! Multi-valued features: a vocabulary's settings, and how a cell becomes tokens (separators,
//! weights), how many are kept, and how they are pooled.

use std::collections::HashSet;

use super::Checker;
use super::features::MAX_TOKENS;
use crate::config::choices::{EmptyList, KeepTokens};
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;
use crate::layout::Pooling;

impl Checker<'_> {
    pub(super) fn multi_valued(
        &self,
        i: usize,
        m: RawMultiValued,
        names: &mut HashSet<String>,
        embedding_dim: usize,
    ) -> Result<MultiValuedSpec> {
        let RawMultiValued {
            name,
            column,
            dim,
            min_count,
            hash_buckets,
            l2,
            separator,
            weight_separator,
            weight_column,
            pooling,
            max_len,
            keep,
            empty,
            allow_leak,
        } = m;
        let at = format!("features.multi_valued[{i}]");
        let vocabulary = self.vocabulary(
            &at,
            names,
            CategoricalSpec {
                column: column.unwrap_or_else(|| name.clone()),
                name,
                dim: 0,
                min_count,
                hash_buckets,
                l2,
                allow_leak,
            },
            dim,
            embedding_dim,
        )?;
        let separator = self.token_list(&at, separator, max_len)?;
        let weights = match (weight_separator, weight_column) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &format!("{at}.weight_column"),
                    "`weight_separator` and `weight_column` both give the tokens' weights",
                    "keep the one that says where the weights are written",
                ));
            }
            (Some(w), None) if w.is_empty() || w == separator => {
                return Err(self.err(
                    &format!("{at}.weight_separator"),
                    format!("the weight separator {w:?} is empty or the token separator"),
                    "tokens are written `token:weight` with `weight_separator: \":\"`",
                ));
            }
            (Some(w), None) => TokenWeights::Inline(w),
            (None, Some(c)) => TokenWeights::Column(c),
            (None, None) => TokenWeights::None,
        };
        let pooling = pooling.unwrap_or_default();
        if pooling == Pooling::Max && weights != TokenWeights::None {
            return Err(self.err(
                &format!("{at}.pooling"),
                "`max` pooling takes no weights (the largest value of each column is kept)",
                "use `pooling: sum` or `mean` with weights, or remove the weights",
            ));
        }
        Ok(MultiValuedSpec {
            vocabulary,
            separator,
            weights,
            pooling,
            max_len,
            keep: keep.unwrap_or(KeepTokens::First),
            empty: empty.unwrap_or(EmptyList::Own),
        })
    }

    /// How a token list's cell is cut (`separator`, default `|`) and how many tokens it keeps
    /// (`max_len`), checked at `at`; the separator.
    pub(super) fn token_list(
        &self,
        at: &str,
        separator: Option<String>,
        max_len: Option<usize>,
    ) -> Result<String> {
        let separator = separator.unwrap_or_else(|| "|".into());
        if separator.is_empty() {
            return Err(self.err(
                &format!("{at}.separator"),
                "the separator is empty",
                "give the text between tokens, such as `|` or `,`",
            ));
        }
        if max_len.is_some_and(|n| !(1..=MAX_TOKENS).contains(&n)) {
            return Err(self.err(
                &format!("{at}.max_len"),
                format!("max_len must be between 1 and {MAX_TOKENS}"),
                "remove `max_len` to keep every token",
            ));
        }
        Ok(separator)
    }
}
