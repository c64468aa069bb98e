//! Behaviour histories of a synthetic funnel: per row, a list of earlier values of a categorical
//! field (the items a user saw before), some of them related to the row's own value (the
//! candidate item) through hidden groups, and each related token raising the stages' logits.
//! The truth then depends on history-target matches, which only a model that compares each
//! token with the target (DIN) can read; a pooled sum of the history sees the tokens, not
//! which of them match.
//!
//! A value's hidden group is `value mod groups`. Each token is, with probability `related`,
//! drawn from the field's distribution and moved into the target's group; otherwise drawn from
//! the field's distribution as is (and may match by chance). Every token of the target's group
//! adds `per_match[stage]` to that stage's logit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::draws::unit;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenHistory {
    pub name: String,
    /// The categorical field whose values the history holds (its target).
    pub of: String,
    /// Tokens per row, drawn uniformly from `[min, max]`.
    pub length: [u32; 2],
    /// Share of the tokens drawn from the target's group.
    pub related: f64,
    /// Hidden groups of the field's values (`value mod groups`).
    pub groups: u32,
    /// Stage name -> logit added per token in the target's group.
    #[serde(default)]
    pub per_match: BTreeMap<String, f64>,
}

/// A checked history: `of` is the categorical field's index, `per_match[k]` stage k's effect.
#[derive(Debug, Clone)]
pub struct GenHistory {
    pub name: String,
    pub of: usize,
    pub min_len: u32,
    pub max_len: u32,
    pub related: f64,
    pub groups: u32,
    pub per_match: Vec<f64>,
}

/// The longest history a spec may ask for.
pub const MAX_HISTORY: u32 = 1_000;

impl GenHistory {
    /// Check `histories[i]` against the spec's categorical fields (name, vocabulary) and stage
    /// names; `err(path, message, hint)` makes a located error.
    pub fn check(
        i: usize,
        h: &RawGenHistory,
        fields: &[(&str, u32)],
        stages: &[String],
        err: &dyn Fn(&str, String, &str) -> Error,
    ) -> Result<GenHistory> {
        let at = format!("histories[{i}]");
        let Some(of) = fields.iter().position(|(n, _)| *n == h.of) else {
            let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            return Err(err(
                &format!("{at}.of"),
                format!("no categorical field is named `{}`", h.of),
                &format!(
                    "a history holds values of a categorical field: {}",
                    names.join(", ")
                ),
            ));
        };
        let [min_len, max_len] = h.length;
        if min_len > max_len || max_len == 0 || max_len > MAX_HISTORY {
            return Err(err(
                &format!("{at}.length"),
                format!(
                    "length [{min_len}, {max_len}] is not a range of 0 to {MAX_HISTORY} tokens with max > 0"
                ),
                "e.g. `length: [0, 20]`: from no tokens to 20, uniformly",
            ));
        }
        if !(0.0..=1.0).contains(&h.related) {
            return Err(err(
                &format!("{at}.related"),
                format!("related must be in [0, 1], got {}", h.related),
                "0.3 draws three tokens in ten from the target's group",
            ));
        }
        if h.groups == 0 || h.groups > fields[of].1 {
            return Err(err(
                &format!("{at}.groups"),
                format!(
                    "groups must be between 1 and the field's vocabulary ({}), got {}",
                    fields[of].1, h.groups
                ),
                "a value's group is `value mod groups`; 50 groups of a 20,000-id field hold 400 ids each",
            ));
        }
        let mut per_match = vec![0.0; stages.len()];
        for (stage, &v) in &h.per_match {
            let Some(k) = stages.iter().position(|s| s == stage) else {
                return Err(err(
                    &format!("{at}.per_match.{stage}"),
                    format!("no stage is named `{stage}`"),
                    &format!("effects are keyed by stage name: {}", stages.join(", ")),
                ));
            };
            if !v.is_finite() {
                return Err(err(
                    &format!("{at}.per_match.{stage}"),
                    format!("an effect must be a finite number, got {v}"),
                    "the logit a matching token adds, e.g. 0.5",
                ));
            }
            per_match[k] = v;
        }
        Ok(GenHistory {
            name: h.name.clone(),
            of,
            min_len,
            max_len,
            related: h.related,
            groups: h.groups,
            per_match,
        })
    }

    /// 64-bit draws a row's history takes: its length, then two per possible token.
    pub fn draws(&self) -> u64 {
        1 + 2 * self.max_len as u64
    }

    /// Draw a row's history for `target` into `tokens` from `next` (exactly `draws()` calls),
    /// with `sample` drawing a value of the field from one 64-bit word; returns the number of
    /// tokens in the target's group.
    pub fn draw(
        &self,
        target: u32,
        vocab: u32,
        tokens: &mut Vec<u32>,
        mut next: impl FnMut() -> u64,
        sample: impl Fn(u64) -> u32,
    ) -> u32 {
        tokens.clear();
        let span = (self.max_len - self.min_len + 1) as u64;
        let len = self.min_len + (next() % span) as u32;
        let group = target % self.groups;
        let mut matches = 0;
        for j in 0..self.max_len {
            let (a, b) = (next(), next());
            if j >= len {
                continue;
            }
            let v = sample(b);
            let token = if unit(a) < self.related {
                // The same rank within the target's group (the target itself when that runs
                // past the vocabulary).
                let moved = v - v % self.groups + group;
                if moved < vocab { moved } else { target }
            } else {
                v
            };
            matches += u32::from(token % self.groups == group);
            tokens.push(token);
        }
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(related: f64) -> GenHistory {
        GenHistory {
            name: "seen".into(),
            of: 0,
            min_len: 2,
            max_len: 5,
            related,
            groups: 10,
            per_match: vec![1.0],
        }
    }

    /// Lengths stay in range, every related token lands in the target's group, the draw count
    /// is fixed whatever the length, and the match count is the tokens in the target's group.
    #[test]
    fn tokens_lengths_and_matches() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sample = |bits: u64| (bits % 1000) as u32;
        let mut tokens = Vec::new();
        let (mut related_total, mut all_total, mut rows) = (0, 0, 0);
        for target in 0..2000u32 {
            let mut calls = 0;
            let m = history(1.0).draw(
                target % 1000,
                1000,
                &mut tokens,
                || {
                    calls += 1;
                    next()
                },
                sample,
            );
            assert_eq!(calls, history(1.0).draws());
            assert!((2..=5).contains(&tokens.len()));
            assert!(tokens.iter().all(|t| t % 10 == target % 10));
            assert_eq!(m as usize, tokens.len());
            related_total += m;
            let m = history(0.0).draw(target % 1000, 1000, &mut tokens, &mut next, sample);
            assert_eq!(
                m as usize,
                tokens.iter().filter(|t| *t % 10 == target % 10).count()
            );
            all_total += m;
            rows += tokens.len();
        }
        assert!(related_total > 0);
        // Unrelated tokens match by chance about one time in ten.
        let share = all_total as f64 / rows as f64;
        assert!((share - 0.1).abs() < 0.02, "{share}");
    }
}
