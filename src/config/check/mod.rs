//! Validation: turns the raw YAML structs into a `Pipeline`, checking meaning (names, ranges,
//! leakage, split layout) and reporting each problem at its file:line:column with the YAML path
//! and a hint. Every raw struct is destructured without `..`, so a new key cannot skip a check.

mod features;
mod leakage;
mod model;
mod multi_valued;
mod sequences;
mod sources;
mod stages;
mod train;
mod weighting;

use std::cell::RefCell;
use std::path::Path;

use super::locate::Locator;
use super::pipeline::*;
use super::raw::*;
use crate::error::{Error, Result};

pub(super) struct Checker<'a> {
    pub(super) loc: &'a Locator,
    pub(super) base: &'a Path,
    /// Problems found so far: a check that fails is recorded and the checks that do not
    /// depend on it go on, so one load reports every problem.
    found: RefCell<Vec<Error>>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(loc: &'a Locator, base: &'a Path) -> Self {
        Checker {
            loc,
            base,
            found: RefCell::new(Vec::new()),
        }
    }

    /// Record a failed check's error and go on without its value.
    pub(super) fn keep<T>(&self, r: Result<T>) -> Option<T> {
        r.map_err(|e| match e {
            Error::Several(all) => self.found.borrow_mut().extend(all),
            e => self.found.borrow_mut().push(e),
        })
        .ok()
    }

    /// The error of a check whose parts recorded their own problems: everything found so far
    /// (at least one problem, by the caller's word).
    pub(super) fn recorded(&self) -> Error {
        match crate::error::gather(self.found.take()) {
            Err(e) => e,
            Ok(()) => Error::Internal("a check failed without recording why".into()),
        }
    }

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

    /// Check a whole pipeline. Sections that do not depend on each other are all checked (and
    /// within features and stages, every item), so every problem is reported at once.
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
        self.keep(check_name(self, "name", &name));
        let RawData {
            train: train_src,
            valid,
            test,
            id_column,
            group_column,
        } = data;
        let train_source = self.keep(self.source("data.train", &train_src).and_then(|s| match s {
            SplitSource::File(f) => Ok(f),
            SplitSource::Carved { .. } | SplitSource::Latest { .. } => Err(self.err(
                "data.train.split_from",
                "the training split cannot be carved from another split",
                "give `data.train.path`",
            )),
        }));
        let valid = valid
            .as_ref()
            .map(|v| self.keep(self.source("data.valid", v)));
        let test = test
            .as_ref()
            .map(|t| self.keep(self.source("data.test", t)));
        // The split layout is checked only when every given source holds.
        let faulty = matches!(valid, Some(None)) || matches!(test, Some(None));
        let (valid, test) = (valid.flatten(), test.flatten());
        if let Some(t) = &train_source
            && !faulty
        {
            self.keep(self.check_splits(t, &valid, &test));
        }
        let (representation, loss_weighting) = (model.representation, model.loss_weighting);
        let stage_names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        let settings = self.keep(self.model(&mut raw.model, &stage_names));
        let features = self.keep(self.features(features));
        if let Some(f) = &features {
            // The resolved pipeline writes every feature's defaults out.
            for (r, c) in raw.features.categorical.iter_mut().zip(&f.categorical) {
                r.column = Some(c.column.clone());
                r.dim = Some(c.dim);
            }
            for (r, n) in raw.features.numeric.iter_mut().zip(&f.numeric) {
                r.column = Some(n.column.clone());
                if let Some(b) = n.buckets {
                    (r.buckets, r.dim, r.also_raw) = (Some(b.count), Some(b.dim), Some(b.also_raw));
                }
            }
            for (r, m) in raw.features.multi_valued.iter_mut().zip(&f.multi_valued) {
                r.column = Some(m.vocabulary.column.clone());
                r.dim = Some(m.vocabulary.dim);
                r.separator = Some(m.separator.clone());
                r.pooling = Some(m.pooling);
                r.keep = Some(m.keep);
                r.empty = Some(m.empty);
            }
            for (r, q) in raw.features.sequences.iter_mut().zip(&f.sequences) {
                r.column = Some(q.tokens.vocabulary.column.clone());
                r.separator = Some(q.tokens.separator.clone());
                r.keep = Some(q.tokens.keep);
            }
        }
        let din = features
            .as_ref()
            .and_then(|f| self.keep(self.din(&mut raw.model.din, f.sequences.len())));
        let checked = settings
            .as_ref()
            .and_then(|m| self.keep(self.stages(&stages, m)));
        let gradnorm = checked
            .as_ref()
            .and_then(|(_, funnel)| self.keep(self.loss_weighting(&mut raw.model, funnel)));
        if let (Some(f), Some((stages, _))) = (&features, &checked) {
            self.keep(self.check_fm(
                stages,
                &super::pipeline::embedded_fields(&f.categorical, &f.numeric, &f.multi_valued),
            ));
            self.keep(self.check_leakage(f, stages, &id_column));
        }
        if let (Some(g), Some((stages, _))) = (&group_column, &checked)
            && let Some(s) = stages.iter().find(|s| &s.label.column == g)
        {
            self.keep(Err::<(), _>(self.err(
                "data.group_column",
                format!("group column `{g}` is the label of stage `{}`", s.name),
                "name the column that groups rows, such as the user",
            )));
        }
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        let train = self.keep(self.train(train, &names));
        if train.as_ref().is_some_and(|t| t.early_stopping.is_some()) && raw.data.valid.is_none() {
            self.keep(Err::<(), _>(self.err(
                "train.early_stopping",
                "early stopping needs a validation split",
                "add `data.valid` (e.g. `split_from: train` with `fraction: 0.1`) or remove `early_stopping`",
            )));
        }
        let (
            Some(train_source),
            Some(settings),
            Some(features),
            Some((stages, funnel)),
            Some(gradnorm),
            Some(train),
            Some(din),
        ) = (
            train_source,
            settings,
            features,
            checked,
            gradnorm,
            train,
            din,
        )
        else {
            return Err(self.recorded());
        };
        crate::error::gather(self.found.take())?;
        let (categorical, numeric, multi_valued, sequences, groups) = (
            features.categorical,
            features.numeric,
            features.multi_valued,
            features.sequences,
            features.groups,
        );
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
            multi_valued,
            sequences,
            groups,
            stages,
            funnel,
            representation,
            bottom: settings.bottom,
            din,
            loss_weighting,
            gradnorm,
            train,
            inconsistent_rows,
            resolved: raw,
        })
    }
}

/// Whether `name` can name a stage, a feature or a pipeline: letters and digits of any script,
/// `_` and `-`. Names become metric names, prediction columns and checkpoint keys, where a
/// `.`, a space or a separator would be ambiguous.
pub fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-')
}

pub(super) fn check_name(c: &Checker<'_>, at: &str, name: &str) -> Result<()> {
    if usable_name(name) {
        Ok(())
    } else {
        Err(c.err(
            at,
            format!("name {name:?} is not usable"),
            "names may hold letters and digits (any script), `_` and `-`, not spaces, `.` or other signs (they become metric names and checkpoint keys); read another column with `column:`",
        ))
    }
}
