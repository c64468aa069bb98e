//! Leakage: a label or truth column read as a feature, a truth column that is a label or the id
//! column, an id column that is a label or takes a prediction column's name.

use super::Checker;
use crate::config::pipeline::*;
use crate::error::Result;

impl Checker<'_> {
    pub(super) fn check_leakage(
        &self,
        f: &super::features::Features,
        stages: &[StageSpec],
        id_column: &Option<String>,
    ) -> Result<()> {
        let feature_at = f
            .categorical
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("features.categorical[{i}]"), &c.column))
            .chain(
                f.numeric
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("features.numeric[{i}]"), &n.column)),
            )
            .chain(f.multi_valued.iter().enumerate().flat_map(|(i, m)| {
                let weights = match &m.weights {
                    TokenWeights::Column(c) => {
                        Some((format!("features.multi_valued[{i}].weight_column"), c))
                    }
                    _ => None,
                };
                std::iter::once((format!("features.multi_valued[{i}]"), &m.vocabulary.column))
                    .chain(weights)
            }))
            .chain(f.sequences.iter().enumerate().map(|(i, s)| {
                (
                    format!("features.sequences[{i}]"),
                    &s.tokens.vocabulary.column,
                )
            }));
        for (at, column) in feature_at {
            if let Some(s) = stages.iter().find(|s| s.truth.as_ref() == Some(column)) {
                return Err(self.err(
                    &at,
                    format!(
                        "column `{column}` holds the true probability of stage `{}` and is also a feature",
                        s.name
                    ),
                    "remove the feature: truth columns are for evaluation only",
                ));
            }
            if let Some(s) = stages.iter().find(|s| &s.label.column == column) {
                return Err(self.err(
                    &at,
                    format!(
                        "column `{column}` is the label of stage `{}` and also a feature: the model would read the answer",
                        s.name
                    ),
                    "remove the feature",
                ));
            }
        }
        for (k, s) in stages.iter().enumerate() {
            let Some(truth) = &s.truth else { continue };
            let clash = stages
                .iter()
                .find(|o| &o.label.column == truth)
                .map(|o| format!("the label of stage `{}`", o.name))
                .or_else(|| (id_column.as_ref() == Some(truth)).then(|| "the id column".into()));
            if let Some(what) = clash {
                return Err(self.err(
                    &format!("stages[{k}].truth"),
                    format!("truth column `{truth}` is also {what}"),
                    "name the column that holds the true conditional probability",
                ));
            }
        }
        if let Some(id) = id_column
            && let Some(s) = stages.iter().find(|s| {
                id == &format!("{}_conditional", s.name) || id == &format!("{}_cumulative", s.name)
            })
        {
            return Err(self.err(
                "data.id_column",
                format!("id column `{id}` has the name of a prediction column of stage `{}`", s.name),
                "predictions are written as `<stage>_conditional` and `<stage>_cumulative`: rename the id column",
            ));
        }
        if let Some(id) = id_column
            && let Some(s) = stages.iter().find(|s| &s.label.column == id)
        {
            return Err(self.err(
                "data.id_column",
                format!("id column `{id}` is the label of stage `{}`", s.name),
                "name a column that identifies rows",
            ));
        }
        Ok(())
    }
}
