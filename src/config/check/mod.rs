//! Validation: turns the raw YAML structs into a `Pipeline`, checking meaning (names, ranges,
//! leakage, split layout) and reporting each problem at its file:line:column with the YAML path
//! and a hint. Every raw struct is destructured without `..`, so a new key cannot skip a check.

mod features;
mod leakage;
mod model;
mod sources;
mod stages;
mod train;
mod weighting;

use std::path::Path;

use super::locate::Locator;
use super::pipeline::*;
use super::raw::*;
use crate::error::{Error, Result};

pub(super) struct Checker<'a> {
    pub(super) loc: &'a Locator,
    pub(super) base: &'a Path,
}

impl Checker<'_> {
    pub(super) fn err(
        &self,
        path: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Config {
            spot: self.loc.spot(path),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub(super) fn pipeline(&self, mut raw: RawPipeline, file: &Path) -> Result<Pipeline> {
        let RawPipeline {
            name,
            data,
            features,
            stages,
            model,
            train,
            inconsistent_rows,
        } = raw.clone();
        check_name(self, "name", &name)?;
        let RawData {
            train: train_src,
            valid,
            test,
            id_column,
            group_column,
        } = data;
        let train_source = match self.source("data.train", &train_src)? {
            SplitSource::File(f) => f,
            SplitSource::Carved { .. } => {
                return Err(self.err(
                    "data.train.split_from",
                    "the training split cannot be carved from another split",
                    "give `data.train.path`",
                ));
            }
        };
        let valid = valid
            .as_ref()
            .map(|v| self.source("data.valid", v))
            .transpose()?;
        let test = test
            .as_ref()
            .map(|t| self.source("data.test", t))
            .transpose()?;
        self.check_splits(&train_source, &valid, &test)?;
        let (representation, loss_weighting) = (model.representation, model.loss_weighting);
        let settings = self.model(&mut raw.model)?;
        let preset = settings.preset;
        let features = self.features(features)?;
        let (categorical, numeric, groups) =
            (features.categorical, features.numeric, features.groups);
        // The resolved pipeline writes every feature's defaults out.
        for (r, c) in raw.features.categorical.iter_mut().zip(&categorical) {
            r.column = Some(c.column.clone());
            r.dim = Some(c.dim);
        }
        for (r, n) in raw.features.numeric.iter_mut().zip(&numeric) {
            r.column = Some(n.column.clone());
            if let Some(b) = n.buckets {
                (r.buckets, r.dim, r.also_raw) = (Some(b.count), Some(b.dim), Some(b.also_raw));
            }
        }
        let (stages, funnel) = self.stages(&stages, &settings)?;
        self.check_fm(
            &stages,
            &super::pipeline::embedded_fields(&categorical, &numeric),
        )?;
        let gradnorm = self.loss_weighting(&mut raw.model, &funnel)?;
        self.check_leakage(&categorical, &numeric, &stages, &id_column)?;
        if let Some(g) = &group_column
            && let Some(s) = stages.iter().find(|s| &s.label.column == g)
        {
            return Err(self.err(
                "data.group_column",
                format!("group column `{g}` is the label of stage `{}`", s.name),
                "name the column that groups rows, such as the user",
            ));
        }
        let train = self.train(train, &stages)?;
        if train.early_stopping.is_some() && valid.is_none() {
            return Err(self.err(
                "train.early_stopping",
                "early stopping needs a validation split",
                "add `data.valid` (e.g. `split_from: train` with `fraction: 0.1`) or remove `early_stopping`",
            ));
        }
        // Make every path absolute so the stored pipeline means the same thing from any directory.
        for (src, parsed) in [
            (
                Some(&mut raw.data.train),
                Some(SplitSource::File(train_source.clone())),
            ),
            (raw.data.valid.as_mut(), valid.clone()),
            (raw.data.test.as_mut(), test.clone()),
        ] {
            if let (Some(src), Some(SplitSource::File(f))) = (src, parsed) {
                src.path = Some(f.path.display().to_string());
                src.format = Some(f.format);
            }
        }
        Ok(Pipeline {
            name,
            file: file.to_path_buf(),
            train_source,
            valid,
            test,
            id_column,
            group_column,
            embedding_init_std: features.embedding_init_std,
            categorical,
            numeric,
            groups,
            stages,
            funnel,
            preset,
            representation,
            bottom: settings.bottom,
            loss_weighting,
            gradnorm,
            train,
            inconsistent_rows,
            resolved: raw,
        })
    }
}

pub(super) fn check_name(c: &Checker<'_>, at: &str, name: &str) -> Result<()> {
    // Letters and digits of any script: names become metric names, prediction columns and
    // checkpoint keys, where a `.`, a space or a separator would be ambiguous.
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-');
    if ok {
        Ok(())
    } else {
        Err(c.err(
            at,
            format!("name {name:?} is not usable"),
            "names may hold letters and digits (any script), `_` and `-`, not spaces, `.` or other signs (they become metric names and checkpoint keys); read another column with `column:`",
        ))
    }
}
