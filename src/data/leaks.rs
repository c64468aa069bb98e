//! Features that cannot lie: before training, every feature is held against every stage's label
//! on the training rows. A column written after the outcome (a `spend` that is positive exactly
//! when a conversion happened) separates the label on its own; such a feature is refused, naming
//! the feature, the stage and the evidence, unless the pipeline marks it `allow_leak: true`.
//!
//! The evidence, per stage (the cumulative label, "reached the stage", on every training row),
//! when the stage has at least `MIN_SUPPORT` rows of each class:
//! - the feature's single-feature AUC is at least `LEAK_AUC`: a numeric value ranked as it is
//!   (or reversed), an id (category or bucket) scored by its positive rate out of sample (the
//!   rates of the even rows rank the odd rows), where an id seen on fewer than `MIN_SUPPORT`
//!   even rows is pooled with the other rare ones. Rates scored on the rows they were counted
//!   on would rank a rare stage's positives on top by themselves: a random id of 30 rows per
//!   value reaches AUC 0.99 when one row in 2,500 is positive;
//! - or one value implies the label for a good part of the stage: at least `LEAK_SHARE` of its
//!   rows (at least `MIN_SUPPORT` of them) reached the stage, and they are at least `LEAK_COVER`
//!   of the stage's positives, while the stage's positive rate is below one half. A strong but
//!   narrow signal is not a leak: on adult, a capital gain of 15024 means an income over 50K on
//!   every one of its 90 training rows, but those are 2% of the positives.
//!
//! Multi-valued features are not checked: a token bag has no single value to rank.

use rayon::prelude::*;

use super::Dataset;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::metrics::SortedAuc;

/// A single-feature AUC at least this high is a leak.
pub const LEAK_AUC: f64 = 0.99;
/// A value whose rows reached the stage at least this often implies the label.
pub const LEAK_SHARE: f64 = 0.99;
/// Fewer rows than this make no evidence.
pub const MIN_SUPPORT: u64 = 30;
/// The share of a stage's positives one value must hold to imply its label.
pub const LEAK_COVER: f64 = 0.2;

/// Features checked side by side.
const CHECKED_AT_ONCE: usize = 4;

/// Rows of one value (or of the pooled rare values): its score, and its labels.
#[derive(Debug, Clone, Copy)]
struct Group {
    score: f64,
    pos: u64,
    neg: u64,
}

/// The exact AUC of scores grouped by value (ties within a group count one half), groups in
/// any order (sorted in place); `None` without both classes.
fn grouped_auc(groups: &mut [Group]) -> Option<f64> {
    groups.sort_unstable_by(|a, b| a.score.total_cmp(&b.score));
    let mut tally = SortedAuc::default();
    for g in groups.iter() {
        tally.push(g.score, g.pos, g.neg);
    }
    tally.finish()
}

/// What one feature says about one stage's label, when it is a leak: `ranked` groups (scored
/// out of sample for ids) for the AUC, `values` (each value's own rows; the ranked groups
/// themselves when `None`) for a value that implies the label.
fn evidence(
    mut ranked: Vec<Group>,
    values: Option<&[Group]>,
    either_way: bool,
    positives: u64,
    rows: u64,
) -> Option<String> {
    if positives < MIN_SUPPORT || rows - positives < MIN_SUPPORT {
        return None;
    }
    let auc = grouped_auc(&mut ranked)?;
    // A numeric value ranks the label either way round; an id's score is its own rate.
    let auc = if either_way { auc.max(1.0 - auc) } else { auc };
    if auc >= LEAK_AUC {
        return Some(format!(
            "on its own it ranks the rows that reached the stage above the others with AUC {auc:.4} (1 is perfect)"
        ));
    }
    if positives * 2 >= rows {
        return None;
    }
    values
        .unwrap_or(&ranked)
        .iter()
        .filter(|g| g.pos + g.neg >= MIN_SUPPORT && g.pos as f64 >= LEAK_COVER * positives as f64)
        .find(|g| g.pos as f64 >= LEAK_SHARE * (g.pos + g.neg) as f64)
        .map(|g| {
            format!(
                "one of its values is on {} rows and {} of them ({:.1}%) reached the stage, against {:.1}% of all rows",
                g.pos + g.neg,
                g.pos,
                100.0 * g.pos as f64 / (g.pos + g.neg) as f64,
                100.0 * positives as f64 / rows as f64
            )
        })
}

/// Each id's labels, counted once: [positives, negatives] on the even rows, then on the odd;
/// indexed by id (encoded ids are dense), ids without rows all zero.
type Tallies = Vec<[u64; 4]>;

fn id_tallies(ids: &[u32], label: &[u8]) -> Tallies {
    let slot = |i: usize, y: u8| 2 * (i % 2) + (y == 0) as usize;
    let span = ids.iter().max().map_or(0, |&m| m as usize + 1);
    // Ids an encoder numbered are dense: a table indexed by id. Hashed ids spread over up to
    // 2^30 buckets: a map, so memory follows the ids seen, not the range.
    if span > 2 * ids.len() + 1024 {
        let mut t = std::collections::BTreeMap::<u32, [u64; 4]>::new();
        for (i, (&id, &y)) in ids.iter().zip(label).enumerate() {
            t.entry(id).or_default()[slot(i, y)] += 1;
        }
        return t.into_values().collect();
    }
    let mut t: Tallies = vec![[0; 4]; span];
    for (i, (&id, &y)) in ids.iter().zip(label).enumerate() {
        t[id as usize][slot(i, y)] += 1;
    }
    t.retain(|c| c.iter().any(|&n| n > 0));
    t
}

/// Each id's own rows as a group scored by its rate (for a value that implies the label).
fn id_values(t: &Tallies) -> Vec<Group> {
    t.iter()
        .map(|c| {
            let (pos, neg) = (c[0] + c[2], c[1] + c[3]);
            Group {
                score: pos as f64 / (pos + neg).max(1) as f64,
                pos,
                neg,
            }
        })
        .collect()
}

/// Groups of an id column against one label, scored out of sample: each id's rate on the even
/// rows (ids on fewer than `MIN_SUPPORT` of them pooled into one rate) scores its odd rows.
fn id_groups(t: &Tallies) -> Vec<Group> {
    let rate = |p: u64, n: u64| p as f64 / (p + n).max(1) as f64;
    let (common, rare): (Vec<&[u64; 4]>, Vec<&[u64; 4]>) =
        t.iter().partition(|c| c[0] + c[1] >= MIN_SUPPORT);
    let sum = |cs: &[&[u64; 4]], k: usize| cs.iter().map(|c| c[k]).sum::<u64>();
    // The rare ids share one score, so their odd rows are one group (one tie): with a long
    // tail of ids that keeps the groups to sort few.
    let pooled = Group {
        score: rate(sum(&rare, 0), sum(&rare, 1)),
        pos: sum(&rare, 2),
        neg: sum(&rare, 3),
    };
    common
        .iter()
        .map(|c| Group {
            score: rate(c[0], c[1]),
            pos: c[2],
            neg: c[3],
        })
        .chain(std::iter::once(pooled))
        .filter(|g| g.pos + g.neg > 0)
        .collect()
}

/// Groups of a numeric column against one label: one per distinct value, scored by the value.
fn value_groups(order: &[u32], values: &[f32], label: &[u8]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for &i in order {
        let (v, y) = (values[i as usize], label[i as usize] != 0);
        match groups.last_mut() {
            Some(g) if g.score == v as f64 => {
                g.pos += y as u64;
                g.neg += !y as u64;
            }
            _ => groups.push(Group {
                score: v as f64,
                pos: y as u64,
                neg: !y as u64,
            }),
        }
    }
    groups
}

/// One column's values as the leak check reads them.
#[derive(Clone, Copy)]
pub enum Values<'a> {
    /// Ids (categories, buckets): each scored by its own rate of the label.
    Ids(&'a [u32]),
    /// Numbers, ranked as they are or reversed.
    Numbers(&'a [f32]),
}

/// The stages (indices into `labels`, each a stage's cumulative label per row) whose label the
/// column gives away, with the evidence.
pub fn leaks(values: Values<'_>, labels: &[&[u8]]) -> Vec<(usize, String)> {
    let rows = match values {
        Values::Ids(v) => v.len(),
        Values::Numbers(v) => v.len(),
    } as u64;
    let order: Vec<u32> = match values {
        Values::Numbers(v) => {
            let mut order: Vec<u32> = (0..v.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize]));
            order
        }
        Values::Ids(_) => Vec::new(),
    };
    labels
        .iter()
        .enumerate()
        .filter_map(|(k, label)| {
            let positives = label.iter().filter(|&&y| y != 0).count() as u64;
            let found = match values {
                Values::Ids(ids) => {
                    let t = id_tallies(ids, label);
                    evidence(id_groups(&t), Some(&id_values(&t)), false, positives, rows)
                }
                // A number is its own value: the ranked groups are the values.
                Values::Numbers(v) => {
                    let g = value_groups(&order, v, label);
                    evidence(g, None, true, positives, rows)
                }
            };
            found.map(|e| (k, e))
        })
        .collect()
}

/// Refuse the training rows when a feature not marked `allow_leak` separates a stage's label,
/// naming every such feature and stage at once.
pub fn check(p: &Pipeline, train: &Dataset) -> Result<()> {
    let labels: Vec<&[u8]> = train.reached.iter().map(Vec::as_slice).collect();
    // Id columns: categorical features, then bucketed numerics (`Pipeline::embedded_fields`).
    let id_features = p
        .categorical
        .iter()
        .map(|c| (c.name.as_str(), c.column.as_str(), c.allow_leak))
        .chain(
            p.numeric
                .iter()
                .filter(|n| n.buckets.is_some())
                .map(|n| (n.name.as_str(), n.column.as_str(), n.allow_leak)),
        );
    let ids = id_features
        .zip(&train.cat)
        .map(|((name, column, allowed), ids)| (name, column, allowed, Values::Ids(ids)));
    let numbers = p
        .numeric
        .iter()
        .filter(|n| n.feeds_value())
        .zip(&train.num)
        .filter(|(n, _)| n.buckets.is_none())
        .map(|(n, v)| {
            (
                n.name.as_str(),
                n.column.as_str(),
                n.allow_leak,
                Values::Numbers(v),
            )
        });
    let checked: Vec<_> = ids.chain(numbers).filter(|c| !c.2).collect();
    // One feature per task (each a pass over the training rows per stage), at most
    // `CHECKED_AT_ONCE` at a time: each holds tallies and groups of up to tens of bytes a row.
    let mut found: Vec<String> = Vec::new();
    for wave in checked.chunks(CHECKED_AT_ONCE) {
        let wave: Vec<String> = wave
            .par_iter()
            .flat_map_iter(|&(name, column, _, values)| {
                leaks(values, &labels).into_iter().map(move |(k, e)| {
                    format!(
                        "feature `{name}` (column `{column}`) leaks the label of stage `{}`: {e}",
                        p.stage_name(k)
                    )
                })
            })
            .collect();
        found.extend(wave);
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::data(
        &train.file,
        format!(
            "{} on the training rows; a feature that gives the outcome away is usually written after it, and a model trained on it learns nothing it can use when predicting",
            found.join("; ")
        ),
    )
    .with_hint(
        "remove the feature, or mark it `allow_leak: true` if its value is truly known before the outcome",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grouped AUC equals the brute-force pair count (ties one half) on small groups.
    #[test]
    fn grouped_auc_is_the_pair_count() {
        let groups = vec![
            Group {
                score: 0.3,
                pos: 2,
                neg: 3,
            },
            Group {
                score: 0.1,
                pos: 1,
                neg: 4,
            },
            Group {
                score: 0.3,
                pos: 1,
                neg: 1,
            },
            Group {
                score: 0.9,
                pos: 5,
                neg: 0,
            },
        ];
        // Rows (score, label), expanded, and every positive-negative pair counted.
        let rows: Vec<(f64, bool)> = groups
            .iter()
            .flat_map(|g| {
                std::iter::repeat_n((g.score, true), g.pos as usize)
                    .chain(std::iter::repeat_n((g.score, false), g.neg as usize))
            })
            .collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for &(a, _) in rows.iter().filter(|r| r.1) {
            for &(b, _) in rows.iter().filter(|r| !r.1) {
                pairs += 1.0;
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let got = grouped_auc(&mut groups.clone()).unwrap();
        assert!(
            (got - wins / pairs).abs() < 1e-12,
            "{got} vs {}",
            wins / pairs
        );
        assert_eq!(
            grouped_auc(&mut [Group {
                score: 1.0,
                pos: 3,
                neg: 0
            }]),
            None
        );
    }

    /// Hashed ids spread far apart are tallied in a map, not a table as wide as their range:
    /// the same tallies, in id order, as the same ids numbered densely.
    #[test]
    fn sparse_ids_tally_as_dense_ones() {
        let label: Vec<u8> = (0..500).map(|i| (i % 3 == 0) as u8).collect();
        let dense: Vec<u32> = (0..500).map(|i| (i * 7 % 40) as u32).collect();
        let sparse: Vec<u32> = dense.iter().map(|&d| (1 << 29) + d * 1_000_003).collect();
        assert_eq!(id_tallies(&sparse, &label), id_tallies(&dense, &label));
        assert_eq!(id_tallies(&dense, &label).len(), 40);
    }

    /// A column of unique ids ranks nothing (its ids are pooled), while an id column that is the
    /// label's own copy ranks perfectly; a value that implies a rare label is evidence too.
    #[test]
    fn unique_ids_are_pooled_and_a_copied_label_is_found() {
        // Positives on even and odd rows alike (the ids are scored out of sample).
        let label: Vec<u8> = (0..1000).map(|i| (i % 7 == 0) as u8).collect();
        let unique: Vec<u32> = (0..1000).collect();
        let check = |ids: &[u32], label: &[u8], positives| {
            evidence(
                id_groups(&id_tallies(ids, label)),
                Some(&id_values(&id_tallies(ids, label))),
                false,
                positives,
                1000,
            )
        };
        assert_eq!(check(&unique, &label, 143), None);
        let copied: Vec<u32> = label.iter().map(|&y| 3 + y as u32).collect();
        let e = check(&copied, &label, 143).unwrap();
        assert!(e.contains("AUC 1.0000"), "{e}");
        // One value (id 7) on 60 rows, all positive (60% of the positives), among ids spread
        // at random otherwise.
        let mut ids: Vec<u32> = (0..1000u32).map(|i| 3 + i % 4).collect();
        let mut label = vec![0u8; 1000];
        for i in 0..60 {
            ids[i * 16] = 7;
            label[i * 16] = 1;
        }
        for i in 0..40 {
            label[i * 16 + 5] = 1;
        }
        let e = check(&ids, &label, 100).unwrap();
        assert!(e.contains("on 60 rows and 60 of them (100.0%)"), "{e}");
        // The same value on 10% of the positives is a strong signal, not a leak.
        for i in 6..60 {
            ids[i * 16] = 3;
        }
        assert_eq!(check(&ids, &label, 100), None);
        // Too few positives make no evidence.
        assert_eq!(check(&copied, &label, 20), None);
    }

    /// A rare stage (40 positives in 100,000 rows) against a random id of about 33 rows a
    /// value: scored on its own rows it would reach AUC 0.994 and be refused; out of sample it
    /// ranks nothing.
    #[test]
    fn a_random_id_is_no_leak_of_a_rare_stage() {
        let mut state = 11u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        let n = 100_000;
        let ids: Vec<u32> = (0..n).map(|_| 3 + (next() % 3000) as u32).collect();
        let mut label = vec![0u8; n];
        for _ in 0..40 {
            label[(next() as usize) % n] = 1;
        }
        let positives = label.iter().filter(|&&y| y == 1).count() as u64;
        let t = id_tallies(&ids, &label);
        let v = id_values(&t);
        assert_eq!(
            evidence(id_groups(&t), Some(&v), false, positives, n as u64),
            None
        );
        // In sample, the same column would have looked like a leak.
        let mut in_sample: Vec<Group> = v
            .iter()
            .filter(|g| g.pos + g.neg >= MIN_SUPPORT)
            .copied()
            .collect();
        assert!(grouped_auc(&mut in_sample).unwrap() > 0.98);
    }
}
