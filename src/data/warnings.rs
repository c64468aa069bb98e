//! What a run is told about its encoded data without being stopped: features unseen or truncated
//! in the data scored, constant features, vocabularies as large as the rows, inconsistent rows
//! dropped, splits without positives; and the error of a split without rows.

use super::Dataset;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::{Encoders, OOV_ID};

/// Share of a file's rows above which `oov_warnings` speaks about a feature.
const OOV_WARN_SHARE: f64 = 0.05;

/// One warning per categorical feature whose values were unseen in training on more than 5% of
/// the rows (for a multi-valued feature, of the tokens) of data being evaluated or predicted: a
/// sign of a column read differently (another type, another spelling) or of drift. Hashed
/// features have no out-of-vocabulary id.
pub fn oov_warnings(p: &Pipeline, d: &Dataset) -> Vec<String> {
    let singles = p
        .categorical
        .iter()
        .zip(&d.cat)
        .map(|(spec, ids)| (spec, "rows", &ids[..]));
    // A multi-valued feature's tokens: the share of its tokens unseen in training.
    let bags = p
        .token_lists()
        .zip(&d.bags)
        .map(|(m, b)| (&m.vocabulary, "tokens", &b.ids[..]));
    singles
        .chain(bags)
        .filter(|(spec, _, _)| spec.hash_buckets.is_none())
        .filter_map(|(spec, what, ids)| {
            let unseen = ids.iter().filter(|&&id| id == OOV_ID).count();
            let share = unseen as f64 / ids.len().max(1) as f64;
            (share > OOV_WARN_SHARE).then(|| {
                format!(
                    "feature `{}` (column `{}`): {unseen} of {} {what} ({:.1}%) have values unseen in training; they share the out-of-vocabulary embedding",
                    spec.name,
                    spec.column,
                    ids.len(),
                    100.0 * share
                )
            })
        })
        .collect()
}

/// One warning per multi-valued feature whose rows were cut to its `max_len` in `d`.
pub fn truncation_warnings(p: &Pipeline, d: &Dataset) -> Vec<String> {
    p.token_lists()
        .zip(&d.truncated)
        .filter(|&(_, &n)| n > 0)
        .filter_map(|(m, &n)| {
            let max = m.max_len?;
            let kept = match m.keep {
                crate::config::KeepTokens::First => "first",
                crate::config::KeepTokens::Last => "last",
            };
            Some(format!(
                "feature `{}`: {n} of {} rows ({:.1}%) had more than {max} tokens; their {kept} {max} were kept (`max_len`)",
                m.vocabulary.name,
                d.rows,
                100.0 * n as f64 / d.rows.max(1) as f64
            ))
        })
        .collect()
}

/// One warning per feature that is constant once fitted: every training row has the same id
/// (one token, one bucket, or every value missing) or the same encoded value. The model cannot
/// learn from it, and a user who declared it should know.
pub(super) fn constant_warnings(p: &Pipeline, d: &Dataset) -> Vec<String> {
    // Values compared by their bits, as a streamed encode compares them (`split_out`).
    let ids: Vec<bool> = d
        .cat
        .iter()
        .map(|c| c.windows(2).all(|w| w[0] == w[1]))
        .collect();
    let values: Vec<bool> = d
        .num
        .iter()
        .map(|c| c.windows(2).all(|w| w[0].to_bits() == w[1].to_bits()))
        .collect();
    constant_named(p, &ids, &values)
}

/// The warnings of `constant_warnings`, given which id columns (`Pipeline::embedded_fields`
/// order) and which value columns (numerics feeding their value) are constant.
pub(super) fn constant_named(p: &Pipeline, ids: &[bool], values: &[bool]) -> Vec<String> {
    let fields = p.embedded_fields();
    let ids = fields
        .iter()
        .zip(ids)
        .filter(|&(_, &c)| c)
        .map(|((name, _), _)| *name);
    let numbers = p
        .numeric
        .iter()
        .filter(|n| n.feeds_value())
        .zip(values)
        .filter(|&(_, &c)| c)
        .map(|(n, _)| n.name.as_str());
    let mut names: Vec<&str> = ids.chain(numbers).collect();
    // A bucketed feature that feeds its value too is named once.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    names
        .into_iter()
        .map(|name| {
            format!(
                "train: feature `{name}` is constant once fitted (every training row has the same id or value): the model cannot use it"
            ) + "\n  hint: check its column and settings (`min_count` above every count, one value, every value missing), or remove it"
        })
        .collect()
}

/// One warning per vocabulary with more distinct values than half the training rows (with at
/// least 1000 rows): most ids are then seen once or twice and their embeddings barely train,
/// while the table's memory grows with every one of them.
pub(super) fn cardinality_warnings(encoders: &Encoders, rows: usize) -> Vec<String> {
    encoders
        .categorical
        .iter()
        .filter(|e| e.hash_buckets.is_none() && rows >= 1000 && e.tokens.len() * 2 > rows)
        .map(|e| {
            format!(
                "train: feature `{}` has {} distinct values in {rows} rows; most are seen once and will barely train",
                e.name,
                e.tokens.len()
            ) + "\n  hint: give it `hash_buckets` (e.g. a tenth of the distinct values) or a `min_count`, or drop it if it is an id"
        })
        .collect()
}

/// One warning per stage that lost rows to the consistency policy (`inconsistent_rows: drop`).
pub fn inconsistent_warnings(p: &Pipeline, d: &Dataset) -> Vec<String> {
    d.dropped
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .filter_map(|(k, &n)| {
            let parent = p.funnel.parent(k)?;
            Some(format!(
                "dropped {n} inconsistent row(s) that reached `{}` without `{}`",
                p.stage_name(k),
                p.stage_name(parent)
            ))
        })
        .collect()
}

/// The warnings about encoded splits (`splits`, training first; only their rows, drops and
/// truncations are read) whose training split has `positives` rows reaching each stage; an
/// error for a split without rows.
pub(super) fn split_warnings(
    p: &Pipeline,
    splits: &[&Dataset],
    positives: &[usize],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for d in splits {
        if d.rows == 0 {
            return Err(Error::data(
                &d.file,
                format!("the {} split has no usable rows", d.split),
            ));
        }
        warnings.extend(
            inconsistent_warnings(p, d)
                .into_iter()
                .chain(truncation_warnings(p, d))
                .map(|w| format!("{}: {w}", d.split)),
        );
    }
    for (s, &n) in p.stages.iter().zip(positives) {
        if n == 0 {
            warnings.push(format!(
                "train: stage `{}` has no positive rows; its probabilities cannot be learned",
                s.name
            ));
        }
    }
    Ok(warnings)
}
