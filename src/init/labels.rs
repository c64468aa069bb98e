//! The stages' labels as `init` reads them: which values are positive (named, 0/1, yes/no, or
//! the rarer of two), whether a column counts only once the previous stage is reached, the rows
//! that reached each stage, and the columns that give a stage away (the leak check).

use super::profile::profile;
use super::words::{StageArg, yes_of, yq};
use crate::error::{Error, Result};
use crate::source::Frame;

/// One stage's label as written in the pipeline, its truth column, and its cumulative label
/// per row.
pub(super) struct StageLabel {
    pub(super) yaml: String,
    pub(super) truth: Option<String>,
    pub(super) reached: Vec<u8>,
}

/// Each stage's label, in funnel order, with what was guessed added to `notes`.
pub(super) fn stage_labels(
    data: &std::path::Path,
    frame: &Frame,
    stages: &[StageArg],
    truth: &[Option<String>],
    notes: &mut Vec<String>,
) -> Result<Vec<StageLabel>> {
    let mut out = Vec::with_capacity(stages.len());
    let mut reached_before: Option<Vec<bool>> = None;
    for (s, truth) in stages.iter().zip(truth) {
        let p = profile(frame, &s.column)?;
        // `train` refuses a row without a label (data::labels); say so now, not after init.
        if let Some(i) = p.first_missing {
            return Err(frame
                .error_at(
                    &s.column,
                    i,
                    format!(
                        "stage `{}` has no label here: {} of {} rows have none",
                        s.name, p.missing, p.rows
                    ),
                )
            .with_hint("every row needs a label for every stage: drop or fill those rows, then run `funnel init` again"));
        }
        let positive: Vec<String> =
            if !s.positive.is_empty() {
                s.positive.clone()
            } else if p.numeric && p.integer && p.min >= 0.0 && p.max <= 1.0 {
                Vec::new()
            } else if let Some(yes) = yes_of(&p.top) {
                notes.push(format!(
                    "stage `{}`: column `{}` holds yes/no values; {yes:?} counts as positive",
                    s.name, s.column
                ));
                vec![yes]
            } else if p.distinct == 2 {
                // The rarer value is the event (a click, a conversion).
                let rare = p.top.last().map(|t| t.0.clone()).unwrap_or_default();
                notes.push(format!(
                "stage `{}`: column `{}` holds two values; the rarer, {rare:?}, counts as positive",
                s.name, s.column
            ));
                vec![rare]
            } else {
                return Err(Error::data_at(
                data,
                &s.column,
                None,
                format!(
                    "{} distinct values ({}{}): a stage's label needs 0/1 or named positive values",
                    p.distinct,
                    p.top
                        .iter()
                        .map(|(v, n)| format!("{v:?} in {n} rows"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if p.distinct > p.top.len() { ", ..." } else { "" }
                ),
            )
            .with_hint(format!(
                "name the positive values: `--stages {}={}:{}`",
                s.name,
                s.column,
                p.top.last().map_or("VALUE", |t| t.0.as_str())
            )));
            };
        // Reached flags of this column, to see whether it only counts after the previous stage.
        let mut flags = Vec::with_capacity(frame.len());
        frame.visit_str(&s.column, |_, v| {
            let yes = match (v, positive.is_empty()) {
                (Some(v), true) => crate::data::binary_text(v) == Some(true),
                (Some(v), false) => positive.iter().any(|p| p == v),
                (None, _) => false,
            };
            flags.push(yes);
            Ok(())
        })?;
        let given_previous = reached_before
            .as_ref()
            .is_some_and(|prev| prev.iter().zip(&flags).any(|(&p, &f)| f && !p));
        let meaning = if given_previous {
            notes.push(format!("stage `{}`: some rows are positive without the previous stage: `meaning: given_previous` (the column counts only once the previous stage is reached)", s.name));
            ", meaning: given_previous"
        } else {
            ""
        };
        let label = if positive.is_empty() {
            format!("{{ column: {}{meaning} }}", yq(&s.column))
        } else {
            // `{v:?}` is Rust's escaping (`\u{1}`), not YAML's: `yq` writes YAML.
            let vals: Vec<String> = positive.iter().map(|v| yq(v)).collect();
            format!(
                "{{ column: {}, positive: [{}]{meaning} }}",
                yq(&s.column),
                vals.join(", ")
            )
        };
        if let Some(t) = truth {
            notes.push(format!(
                "stage `{}`: `{t}` holds its true probability (generated data): `truth: {t}`",
                s.name
            ));
        }
        let reached: Vec<bool> = match &reached_before {
            Some(prev) if given_previous => {
                prev.iter().zip(&flags).map(|(&p, &f)| p && f).collect()
            }
            _ => flags,
        };
        out.push(StageLabel {
            yaml: label,
            truth: truth.clone(),
            reached: reached.iter().map(|&r| r as u8).collect(),
        });
        reached_before = Some(reached);
    }
    Ok(out)
}

/// The stages whose label (`reached`, each stage's cumulative label per row) column `col` gives
/// away, with the evidence (`data::leaks`): its numbers ranked when it is numeric, else its
/// values as ids.
pub(super) fn leak(
    frame: &Frame,
    col: &str,
    numeric: bool,
    reached: &[&[u8]],
) -> Result<Vec<(usize, String)>> {
    use crate::data::{LeakValues, leaks};
    if numeric {
        let mut values = Vec::with_capacity(frame.len());
        frame.visit_f64(col, |_, v| {
            values.push(v.map_or(f32::NEG_INFINITY, |x| x as f32));
            Ok(())
        })?;
        // Ranked, and as ids (what `train` checks when the column is declared categorical or
        // bucketed), so that init never keeps a column train would refuse.
        let mut found = leaks(LeakValues::Numbers(&values), reached);
        let ids = id_of_values(&values);
        found.extend(leaks(LeakValues::Ids(&ids), reached));
        return Ok(found);
    }
    let mut ids = Vec::with_capacity(frame.len());
    let mut seen: std::collections::HashMap<String, u32> = Default::default();
    frame.visit_str(col, |_, v| {
        let v = v.unwrap_or_default();
        let next = seen.len() as u32;
        let id = match seen.get(v) {
            Some(&id) => id,
            None => {
                seen.insert(v.to_string(), next);
                next
            }
        };
        ids.push(id);
        Ok(())
    })?;
    Ok(leaks(LeakValues::Ids(&ids), reached))
}

/// Each value's id (its rank among the distinct values).
fn id_of_values(values: &[f32]) -> Vec<u32> {
    let mut distinct: Vec<f32> = values.to_vec();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    values
        .iter()
        .map(|v| distinct.partition_point(|d| d.total_cmp(v).is_lt()) as u32)
        .collect()
}
