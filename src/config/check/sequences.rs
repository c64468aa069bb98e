//! Behaviour histories (`features.sequences`) and DIN's settings (`model.din`): each history
//! names a categorical target whose vocabulary and table it reads; DIN exists exactly when a
//! history does.

use std::collections::HashSet;

use super::Checker;
use crate::config::choices::{EmptyList, KeepTokens};
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;
use crate::layout::Pooling;

impl Checker<'_> {
    /// Check `features.sequences[i]` against the checked categorical features and groups.
    pub(super) fn sequence(
        &self,
        i: usize,
        s: RawSequence,
        names: &mut HashSet<String>,
        cats: &[CategoricalSpec],
        groups: &[FieldGroup],
    ) -> Result<SequenceSpec> {
        let RawSequence {
            name,
            column,
            target,
            separator,
            max_len,
            keep,
        } = s;
        let at = format!("features.sequences[{i}]");
        self.new_feature(names, &at, &name)?;
        let Some(t) = cats.iter().position(|c| c.name == target) else {
            let known: Vec<&str> = cats.iter().map(|c| c.name.as_str()).collect();
            return Err(self.err(
                &format!("{at}.target"),
                match target.is_empty() {
                    true => format!("sequence `{name}` names no `target`"),
                    false => format!("no categorical feature is named `{target}`"),
                },
                format!(
                    "the target is the categorical feature whose values the history holds (the candidate item or category); declared: {}",
                    known.join(", ")
                ),
            ));
        };
        if let Some(g) = groups.iter().find(|g| g.members.contains(&t)) {
            return Err(self.err(
                &format!("{at}.target"),
                format!("target `{target}` is in field group `{}`", g.name),
                "DIN compares the history with the target's own embedding, which a group sums away; take the target out of the group",
            ));
        }
        let separator = self.token_list(&at, separator, max_len)?;
        let column = column.unwrap_or_else(|| name.clone());
        Ok(SequenceSpec {
            tokens: MultiValuedSpec {
                vocabulary: CategoricalSpec {
                    name,
                    column,
                    ..cats[t].clone()
                },
                separator,
                weights: TokenWeights::None,
                // Unused: DIN pools a history.
                pooling: Pooling::Sum,
                max_len,
                keep: keep.unwrap_or(KeepTokens::First),
                empty: EmptyList::Own,
            },
            target: t,
        })
    }

    /// Check `model.din` (written out with its defaults when there are sequences).
    pub(super) fn din(
        &self,
        raw: &mut Option<RawDin>,
        sequences: usize,
    ) -> Result<Option<DinSpec>> {
        if sequences == 0 {
            return match raw {
                Some(_) => Err(self.err(
                    "model.din",
                    "`model.din` attends over behaviour histories, but `features.sequences` declares none",
                    "declare the history under `features.sequences` with its `target`, or remove `model.din`",
                )),
                None => Ok(None),
            };
        }
        let RawDin {
            hidden,
            activation,
            per_stage,
        } = raw.get_or_insert_with(RawDin::default);
        if hidden.iter().any(|&h| h == 0 || h > MAX_WIDTH) {
            return Err(self.err(
                "model.din.hidden",
                format!("each layer of the activation unit must be 1 to {MAX_WIDTH} wide"),
                "the authors' unit is `hidden: [80, 40]`",
            ));
        }
        Ok(Some(DinSpec {
            unit: TowerSpec {
                hidden: hidden.clone(),
                activation: *activation,
                dropout: 0.0,
                cross_layers: 0,
                fm: false,
            },
            per_stage: *per_stage,
        }))
    }
}
