//! Features: names, widths, hashing and column defaults.

use std::collections::HashSet;

use super::{Checker, check_name};
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;

/// The checked `features` block.
pub(super) struct Features {
    pub embedding_init_std: f64,
    pub categorical: Vec<CategoricalSpec>,
    pub numeric: Vec<NumericSpec>,
}

impl Checker<'_> {
    pub(super) fn features(&self, f: RawFeatures) -> Result<Features> {
        let RawFeatures {
            embedding_dim,
            embedding_init_std,
            categorical,
            numeric,
        } = f;
        if embedding_dim == 0 {
            return Err(self.err(
                "features.embedding_dim",
                "embedding_dim must be at least 1",
                "8 or 16 are common",
            ));
        }
        if !(embedding_init_std > 0.0 && embedding_init_std < 1e30) {
            return Err(self.err(
                "features.embedding_init_std",
                "embedding_init_std must be positive",
                "0.01 is a safe default",
            ));
        }
        if categorical.is_empty() && numeric.is_empty() {
            return Err(self.err(
                "features",
                "no features declared",
                "list columns under `features.categorical` or `features.numeric`",
            ));
        }
        let mut names = HashSet::new();
        let mut cats = Vec::new();
        for (i, c) in categorical.into_iter().enumerate() {
            let RawCategorical {
                name,
                column,
                dim,
                min_count,
                hash_buckets,
            } = c;
            let at = format!("features.categorical[{i}]");
            self.new_feature(&mut names, &at, &name)?;
            let dim = dim.unwrap_or(embedding_dim);
            if dim == 0 {
                return Err(self.err(
                    &format!("{at}.dim"),
                    "dim must be at least 1",
                    "remove `dim` to use `features.embedding_dim`",
                ));
            }
            if hash_buckets.is_some_and(|b| b == 0 || b > MAX_ROWS) {
                return Err(self.err(
                    &format!("{at}.hash_buckets"),
                    format!("hash_buckets must be between 1 and {MAX_ROWS}"),
                    "remove `hash_buckets` to fit a vocabulary instead",
                ));
            }
            cats.push(CategoricalSpec {
                column: column.unwrap_or_else(|| name.clone()),
                name,
                dim,
                min_count: min_count.max(1),
                hash_buckets,
            });
        }
        let mut nums = Vec::new();
        for (i, n) in numeric.into_iter().enumerate() {
            let RawNumeric {
                name,
                column,
                transform,
                missing,
            } = n;
            let at = format!("features.numeric[{i}]");
            self.new_feature(&mut names, &at, &name)?;
            nums.push(NumericSpec {
                column: column.unwrap_or_else(|| name.clone()),
                name,
                transform,
                missing,
            });
        }
        Ok(Features {
            embedding_init_std,
            categorical: cats,
            numeric: nums,
        })
    }

    /// Check a feature's name and that no earlier feature took it.
    fn new_feature(&self, names: &mut HashSet<String>, at: &str, name: &str) -> Result<()> {
        check_name(self, &format!("{at}.name"), name)?;
        if names.insert(name.to_string()) {
            return Ok(());
        }
        Err(self.err(
            &format!("{at}.name"),
            format!("feature `{name}` is declared twice"),
            "give each feature a distinct name (use `column` to read one column twice)",
        ))
    }
}
