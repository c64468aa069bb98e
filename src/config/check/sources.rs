//! Data sources and splits: files, carved shares, and that no split reads another's rows.

use super::Checker;
use crate::config::choices::{FileFormat, SplitName};
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;

impl Checker<'_> {
    pub(super) fn source(&self, at: &str, s: &RawSource) -> Result<SplitSource> {
        let RawSource {
            path,
            format,
            csv,
            split_from,
            fraction,
            time_column,
            from,
        } = s;
        if let Some(column) = time_column {
            return self.time_source(at, s, column, from.as_deref());
        }
        if from.is_some() {
            return Err(self.err(
                &format!("{at}.from"),
                "`from` without `time_column`",
                "name the column that holds each row's time: `time_column: ts`",
            ));
        }
        match (path, *split_from, *fraction) {
            (Some(path), None, None) => {
                let resolved = self.base.join(path);
                let format = match *format {
                    Some(f) => f,
                    None => format_from_extension(&resolved).ok_or_else(|| {
                        self.err(
                            &format!("{at}.path"),
                            format!("cannot tell the format of `{path}` from its extension"),
                            "add `format: csv` or `format: parquet`",
                        )
                    })?,
                };
                let RawCsv {
                    separator,
                    header,
                    null_values,
                    trim_whitespace,
                } = csv.clone().unwrap_or_default();
                if format == FileFormat::Parquet && csv.is_some() {
                    return Err(self.err(
                        &format!("{at}.csv"),
                        "`csv` options given for a Parquet source",
                        "remove the `csv` block or set `format: csv`",
                    ));
                }
                let sep = separator.as_bytes();
                if sep.len() != 1 {
                    return Err(self.err(
                        &format!("{at}.csv.separator"),
                        format!(
                            "separator must be a single ASCII character, got {:?}",
                            separator
                        ),
                        "for `a, b` files use `separator: \",\"` with `trim_whitespace: true`",
                    ));
                }
                let canonical = std::fs::canonicalize(&resolved).unwrap_or(resolved);
                Ok(SplitSource::File(FileSource {
                    path: canonical,
                    format,
                    csv: CsvOptions {
                        separator: sep[0],
                        header,
                        null_values,
                        trim_whitespace,
                    },
                }))
            }
            (None, Some(SplitName::Train), Some(fraction)) => {
                if format.is_some() || csv.is_some() {
                    return Err(self.err(
                        at,
                        "a carved split reads no file, so `format`/`csv` do not apply",
                        "remove `format` and `csv`, or replace `split_from` by `path`",
                    ));
                }
                if !(fraction > 0.0 && fraction < 1.0) {
                    return Err(self.err(
                        &format!("{at}.fraction"),
                        format!("fraction must be in (0, 1), got {fraction}"),
                        "e.g. `fraction: 0.1` carves 10% of the training rows",
                    ));
                }
                Ok(SplitSource::Carved { fraction })
            }
            (None, Some(SplitName::Train), None) => Err(self.err(
                at,
                "`split_from` without `fraction`",
                "add e.g. `fraction: 0.1`",
            )),
            (None, Some(other), _) => Err(self.err(
                &format!("{at}.split_from"),
                format!("splits can only be carved from `train`, not `{}`", other.as_str()),
                "use `split_from: train`",
            )),
            (None, None, Some(_)) => Err(self.err(
                at,
                "`fraction` without `split_from`",
                "add `split_from: train`",
            )),
            (Some(_), _, _) => Err(self.err(
                at,
                "a split has either `path` or `split_from` + `fraction`, not both",
                "keep one of them",
            )),
            (None, None, None) => Err(self.err(
                at,
                "a split needs `path` (a CSV or Parquet file) or `split_from: train` with `fraction`",
                "e.g. `path: data/train.csv`",
            )),
        }
    }

    /// A split carved from the training file by time: its latest `fraction` of the rows, or
    /// its rows `from` a time on.
    fn time_source(
        &self,
        at: &str,
        s: &RawSource,
        column: &str,
        from: Option<&str>,
    ) -> Result<SplitSource> {
        if s.path.is_some() || s.format.is_some() || s.csv.is_some() {
            return Err(self.err(
                &format!("{at}.time_column"),
                "a split carved by time reads the training file, so `path`, `format` and `csv` do not apply",
                "remove them, or remove `time_column` to read a file of its own",
            ));
        }
        if s.split_from != Some(SplitName::Train) {
            return Err(self.err(
                at,
                "`time_column` carves the split from the training file",
                "add `split_from: train`",
            ));
        }
        let cut = match (s.fraction, from) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &format!("{at}.from"),
                    "both `fraction` and `from` say where the split starts",
                    "keep `fraction` (the latest share of the rows) or `from` (a time)",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    at,
                    "`time_column` without `fraction` or `from`",
                    "add `fraction: 0.1` (the latest 10% of the rows) or `from: \"2017-12-03\"`",
                ));
            }
            (Some(f), None) if !(f > 0.0 && f < 1.0) => {
                return Err(self.err(
                    &format!("{at}.fraction"),
                    format!("fraction must be in (0, 1), got {f}"),
                    "e.g. `fraction: 0.1` carves the latest 10% of the training rows",
                ));
            }
            (Some(f), None) => TimeCut::Fraction(f),
            (None, Some(t)) => TimeCut::From(crate::times::parse_time(t).ok_or_else(|| {
                self.err(
                    &format!("{at}.from"),
                    format!("{t:?} is not a time"),
                    "give a number in the column's unit, or a date: `2017-12-03` or `2017-12-03 08:00:00` (UTC)",
                )
            })?),
        };
        Ok(SplitSource::Latest {
            column: column.to_string(),
            cut,
        })
    }

    pub(super) fn check_splits(
        &self,
        train: &FileSource,
        valid: &Option<SplitSource>,
        test: &Option<SplitSource>,
    ) -> Result<()> {
        let mut carved = 0.0;
        for (at, s) in [("data.valid", valid), ("data.test", test)] {
            match s {
                Some(SplitSource::File(f)) if f.path == train.path => {
                    return Err(self.err(
                        &format!("{at}.path"),
                        format!("{at} reads the training file"),
                        "evaluate on rows the model never trained on: use another file or `split_from: train`",
                    ));
                }
                Some(SplitSource::Carved { fraction })
                | Some(SplitSource::Latest {
                    cut: TimeCut::Fraction(fraction),
                    ..
                }) => carved += fraction,
                _ => {}
            }
        }
        self.check_time_splits(valid, test)?;
        if carved >= 1.0 {
            return Err(self.err(
                "data",
                "the carved splits take all of the training rows",
                "make the fractions sum to less than 1",
            ));
        }
        // Carved splits are disjoint by construction; two files are the same rows when they
        // are the same path, whatever their CSV options.
        if let (Some(SplitSource::File(v)), Some(SplitSource::File(t))) = (valid, test)
            && v.path == t.path
        {
            return Err(self.err(
                "data.test",
                "the validation split equals the test split",
                "early stopping on the test rows makes the test metrics optimistic: give `valid` its own rows (e.g. `split_from: train`)",
            ));
        }
        Ok(())
    }

    /// Splits carved by time: both by one column and one kind of cut (a share, or a time), the
    /// test split after the validation split; a split carved at random next to one carved by
    /// time would mix the future into the past.
    fn check_time_splits(
        &self,
        valid: &Option<SplitSource>,
        test: &Option<SplitSource>,
    ) -> Result<()> {
        let latest = |s: &Option<SplitSource>| {
            s.as_ref()
                .and_then(SplitSource::by_time)
                .map(|(c, cut)| (c.to_string(), cut))
        };
        match (latest(valid), latest(test)) {
            (Some((vc, v)), Some((tc, t))) => {
                if vc != tc {
                    return Err(self.err(
                        "data.test.time_column",
                        format!("the validation split is carved by `{vc}` and the test split by `{tc}`"),
                        "carve both by one time column",
                    ));
                }
                match (v, t) {
                    (TimeCut::From(a), TimeCut::From(b)) if a >= b => Err(self.err(
                        "data.test.from",
                        "the test split starts before the validation split",
                        "the test split lies after the validation split: give it a later `from`",
                    )),
                    (TimeCut::From(_), TimeCut::Fraction(_))
                    | (TimeCut::Fraction(_), TimeCut::From(_)) => Err(self.err(
                        "data.test",
                        "one split is cut by `fraction` and the other by `from`",
                        "cut both by a share of the rows or both by a time",
                    )),
                    _ => Ok(()),
                }
            }
            (Some(_), None) if test.is_some() => Err(self.err(
                "data.test",
                "the validation split is carved by time and the test split is not",
                "carve the test split by the same `time_column`, so it lies after the validation split",
            )),
            (None, Some(_)) if valid.is_some() => Err(self.err(
                "data.valid",
                "the test split is carved by time and the validation split is not",
                "carve the validation split by the same `time_column` (`split_from: train`, `time_column`, `fraction` or `from`)",
            )),
            _ => Ok(()),
        }
    }
}
