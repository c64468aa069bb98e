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
        } = s;
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
                Some(SplitSource::Carved { fraction }) => carved += fraction,
                _ => {}
            }
        }
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
}
