//! Features: names, widths, hashing, field groups and column defaults.

use std::collections::HashSet;

use super::{Checker, check_name};
use crate::config::choices::NumericTransform;
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;

/// The checked `features` block.
pub(super) struct Features {
    pub embedding_init_std: f64,
    pub categorical: Vec<CategoricalSpec>,
    pub numeric: Vec<NumericSpec>,
    pub multi_valued: Vec<MultiValuedSpec>,
    pub sequences: Vec<SequenceSpec>,
    pub groups: Vec<FieldGroup>,
}

/// The most tokens `max_len` may keep per row.
pub const MAX_TOKENS: usize = 1 << 20;

impl Checker<'_> {
    pub(super) fn features(&self, f: RawFeatures) -> Result<Features> {
        let RawFeatures {
            embedding_dim,
            embedding_init_std,
            categorical,
            numeric,
            multi_valued,
            sequences,
            groups,
        } = f;
        if !(1..=MAX_DIM).contains(&embedding_dim) {
            return Err(self.err(
                "features.embedding_dim",
                format!("embedding_dim must be between 1 and {MAX_DIM}, got {embedding_dim}"),
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
        if categorical.is_empty() && numeric.is_empty() && multi_valued.is_empty() {
            return Err(self.err(
                "features",
                "no features declared",
                "list columns under `features.categorical`, `features.numeric` or `features.multi_valued`",
            ));
        }
        // Every feature is checked, so one load reports each faulty one.
        let mut names = HashSet::new();
        let cats: Vec<_> = categorical
            .into_iter()
            .enumerate()
            .map(|(i, c)| self.keep(self.categorical(i, c, &mut names, embedding_dim)))
            .collect();
        let nums: Vec<_> = numeric
            .into_iter()
            .enumerate()
            .map(|(i, n)| self.keep(self.numeric(i, n, &mut names, embedding_dim)))
            .collect();
        let multi: Vec<_> = multi_valued
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.keep(self.multi_valued(i, m, &mut names, embedding_dim)))
            .collect();
        let (Some(cats), Some(nums), Some(multi)) = (
            cats.into_iter().collect::<Option<Vec<_>>>(),
            nums.into_iter().collect::<Option<Vec<_>>>(),
            multi.into_iter().collect::<Option<Vec<_>>>(),
        ) else {
            return Err(self.recorded());
        };
        let groups = self.groups(&groups, &cats, &nums, &multi)?;
        let sequences = sequences
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.keep(self.sequence(i, s, &mut names, &cats, &groups)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.recorded())?;
        Ok(Features {
            embedding_init_std,
            categorical: cats,
            numeric: nums,
            multi_valued: multi,
            sequences,
            groups,
        })
    }

    fn categorical(
        &self,
        i: usize,
        c: RawCategorical,
        names: &mut HashSet<String>,
        embedding_dim: usize,
    ) -> Result<CategoricalSpec> {
        let RawCategorical {
            name,
            column,
            dim,
            min_count,
            hash_buckets,
            l2,
            allow_leak,
        } = c;
        let at = format!("features.categorical[{i}]");
        self.vocabulary(
            &at,
            names,
            CategoricalSpec {
                column: column.unwrap_or_else(|| name.clone()),
                name,
                dim: dim.unwrap_or(0),
                min_count,
                hash_buckets,
                l2,
                allow_leak,
            },
            dim,
            embedding_dim,
        )
    }

    /// A vocabulary's settings (a categorical or multi-valued feature's): a new name, a width
    /// (its own `dim`, else `embedding_dim`), hash buckets and L2 within bounds.
    pub(super) fn vocabulary(
        &self,
        at: &str,
        names: &mut HashSet<String>,
        spec: CategoricalSpec,
        dim: Option<usize>,
        embedding_dim: usize,
    ) -> Result<CategoricalSpec> {
        self.new_feature(names, at, &spec.name)?;
        let dim = self.dim(at, dim, embedding_dim)?;
        if spec.hash_buckets.is_some_and(|b| b == 0 || b > MAX_ROWS) {
            return Err(self.err(
                &format!("{at}.hash_buckets"),
                format!("hash_buckets must be between 1 and {MAX_ROWS}"),
                "remove `hash_buckets` to fit a vocabulary instead",
            ));
        }
        Ok(CategoricalSpec {
            dim,
            min_count: spec.min_count.max(1),
            l2: self.l2(&format!("{at}.l2"), spec.l2)?,
            ..spec
        })
    }

    fn numeric(
        &self,
        i: usize,
        n: RawNumeric,
        names: &mut HashSet<String>,
        embedding_dim: usize,
    ) -> Result<NumericSpec> {
        let RawNumeric {
            name,
            column,
            transform,
            missing,
            buckets,
            dim,
            also_raw,
            allow_leak,
        } = n;
        let at = format!("features.numeric[{i}]");
        self.new_feature(names, &at, &name)?;
        let buckets = self.buckets(&at, transform, buckets, dim, also_raw, embedding_dim)?;
        Ok(NumericSpec {
            column: column.unwrap_or_else(|| name.clone()),
            name,
            transform,
            missing,
            buckets,
            allow_leak,
        })
    }

    /// A table's width: its own `dim`, or the features' `embedding_dim`, within bounds.
    fn dim(&self, at: &str, dim: Option<usize>, embedding_dim: usize) -> Result<usize> {
        let dim = dim.unwrap_or(embedding_dim);
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(self.err(
                &format!("{at}.dim"),
                format!("dim must be between 1 and {MAX_DIM}, got {dim}"),
                "remove `dim` to use `features.embedding_dim`",
            ));
        }
        Ok(dim)
    }

    /// An L2 strength: finite and at least 0.
    pub(super) fn l2(&self, at: &str, l2: Option<f64>) -> Result<Option<f64>> {
        match l2 {
            Some(v) if !(0.0..1e6).contains(&v) => Err(self.err(
                at,
                format!("l2 must be a number in [0, 1e6), got {v}"),
                "1e-6 to 1e-4 are common for embedding rows",
            )),
            _ => Ok(l2),
        }
    }

    /// A numeric feature's bucket settings: only with `quantile_buckets`, which gets defaults.
    fn buckets(
        &self,
        at: &str,
        transform: NumericTransform,
        buckets: Option<usize>,
        dim: Option<usize>,
        also_raw: Option<bool>,
        embedding_dim: usize,
    ) -> Result<Option<BucketSpec>> {
        if transform != NumericTransform::QuantileBuckets {
            for (key, given) in [
                ("buckets", buckets.is_some()),
                ("dim", dim.is_some()),
                ("also_raw", also_raw.is_some()),
            ] {
                if given {
                    return Err(self.err(
                        &format!("{at}.{key}"),
                        format!("`{key}` applies to `transform: quantile_buckets` only"),
                        format!("remove `{key}`, or set `transform: quantile_buckets`"),
                    ));
                }
            }
            return Ok(None);
        }
        let count = buckets.unwrap_or(DEFAULT_BUCKETS);
        if !(2..=MAX_BUCKETS).contains(&count) {
            return Err(self.err(
                &format!("{at}.buckets"),
                format!("buckets must be between 2 and {MAX_BUCKETS}, got {count}"),
                format!("remove `buckets` for the default of {DEFAULT_BUCKETS}"),
            ));
        }
        let dim = self.dim(at, dim, embedding_dim)?;
        Ok(Some(BucketSpec {
            count,
            dim,
            also_raw: also_raw.unwrap_or(false),
        }))
    }

    /// Field groups: names, members that are categorical or multi-valued features, each in one
    /// group, of one width within a group. Members are embedded fields (categorical features
    /// first, multi-valued ones after the bucketed numerics).
    fn groups(
        &self,
        groups: &[RawGroup],
        cats: &[CategoricalSpec],
        nums: &[NumericSpec],
        multi: &[MultiValuedSpec],
    ) -> Result<Vec<FieldGroup>> {
        let first_bag = cats.len() + nums.iter().filter(|n| n.buckets.is_some()).count();
        // The embedded fields a group can take, by field index.
        let fields: Vec<(usize, &CategoricalSpec)> = cats
            .iter()
            .enumerate()
            .chain(
                multi
                    .iter()
                    .enumerate()
                    .map(|(j, m)| (first_bag + j, &m.vocabulary)),
            )
            .collect();
        let cats: Vec<&CategoricalSpec> = fields.iter().map(|&(_, c)| c).collect();
        let mut names = HashSet::new();
        let mut taken: Vec<Option<&str>> = vec![None; cats.len()];
        let mut out = Vec::with_capacity(groups.len());
        for (g, RawGroup { name, features }) in groups.iter().enumerate() {
            let at = format!("features.groups[{g}]");
            check_name(self, &format!("{at}.name"), name)?;
            if !names.insert(name.as_str()) {
                return Err(self.err(
                    &format!("{at}.name"),
                    format!("group `{name}` is declared twice"),
                    "give each group a distinct name",
                ));
            }
            if features.len() < 2 {
                return Err(self.err(
                    &format!("{at}.features"),
                    "a group sums at least two features",
                    "list two or more categorical features, or remove the group",
                ));
            }
            let mut members = Vec::with_capacity(features.len());
            for (j, f) in features.iter().enumerate() {
                let at = format!("{at}.features[{j}]");
                let Some(i) = cats.iter().position(|c| &c.name == f) else {
                    return Err(self.err(
                        &at,
                        format!("no categorical or multi-valued feature is named `{f}`"),
                        "groups sum categorical and multi-valued features' embeddings; list their names",
                    ));
                };
                if let Some(other) = taken[i] {
                    return Err(self.err(
                        &at,
                        format!("feature `{f}` is already in group `{other}`"),
                        "put each feature in one group at most",
                    ));
                }
                if cats[i].dim != cats[members.first().copied().unwrap_or(i)].dim {
                    return Err(self.err(
                        &at,
                        format!(
                            "`{f}` has dim {}, but `{}` in the same group has {}",
                            cats[i].dim, features[0], cats[members[0]].dim
                        ),
                        "embeddings are summed within a group, so they need one width",
                    ));
                }
                taken[i] = Some(name);
                members.push(i);
            }
            out.push(FieldGroup {
                name: name.clone(),
                members: members.iter().map(|&i| fields[i].0).collect(),
            });
        }
        Ok(out)
    }

    /// Check a feature's name and that no earlier feature took it.
    pub(super) fn new_feature(
        &self,
        names: &mut HashSet<String>,
        at: &str,
        name: &str,
    ) -> Result<()> {
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
