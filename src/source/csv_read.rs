//! A CSV file read whole by polars, every column as text, after the structure scan
//! (`csv_scan`); under `trim_whitespace`, cells and header names trimmed and a quoted field
//! after the separator's space unquoted.

use std::path::Path;

use polars::prelude::*;

use super::polars_err;
use crate::config::CsvOptions;
use crate::error::Result;

pub(super) fn read_csv(file: &Path, o: &CsvOptions) -> Result<DataFrame> {
    // Faults polars would pad, cut or report without a place are found first, by line.
    let shape = super::csv_scan::scan(file, o.separator, o.header)?;
    // Every column is read as text: columns get their meaning from the pipeline, not from
    // inference, and trimming and null markers are applied uniformly when values are read.
    let parse = CsvParseOptions::default()
        .with_separator(o.separator)
        .with_missing_is_null(false);
    let mut df = CsvReadOptions::default()
        .with_has_header(o.header)
        .with_infer_schema_length(Some(0))
        .with_parse_options(parse)
        .try_into_reader_with_file_path(Some(file.to_path_buf()))
        .map_err(|e| polars_err(file, e))?
        .finish()
        .map_err(|e| polars_err(file, e))?;
    // polars renames a repeated header name to `NAME_duplicated_0`: a pipeline would then read
    // a column the file does not name. Refused instead.
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let repeated = names.iter().find_map(|n| {
        let (base, _) = n.rsplit_once("_duplicated_")?;
        names.iter().any(|m| m == base).then(|| base.to_string())
    });
    if let Some(name) = repeated {
        return Err(repeated_name(file, &name));
    }
    // Blank lines at the end are allowed, and are not rows.
    if df.height() > shape.rows {
        df = df.slice(0, shape.rows);
    }
    if o.trim_whitespace {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| cleaned(s).into_owned())
            .collect();
        // `a, a` are two names to polars and one once trimmed.
        if let Some(n) = names
            .iter()
            .enumerate()
            .find_map(|(i, n)| names[..i].contains(n).then_some(n))
        {
            return Err(repeated_name(file, n));
        }
        df.set_column_names(&names)
            .map_err(|e| polars_err(file, e))?;
        // A quoted field after the separator's space (`a, "Pri""vate"`) is not a quoted field
        // to a CSV parser: its quotes come through. They are taken off here, as a parser would
        // have for `a,"Pri""vate"`.
        let quoted = |c: &polars::prelude::Column| {
            c.str()
                .is_ok_and(|ca| ca.iter().flatten().any(|v| spaced_quote(v).is_some()))
        };
        for name in names {
            let column = df.column(&name).map_err(|e| polars_err(file, e))?;
            if !quoted(column) {
                continue;
            }
            let ca = column.str().map_err(|e| polars_err(file, e))?;
            let cleaned: StringChunked = ca
                .iter()
                .map(|v| v.map(|v| cleaned(v).into_owned()))
                .collect();
            df.with_column(cleaned.with_name(name.as_str().into()).into_column())
                .map_err(|e| polars_err(file, e))?;
        }
    }
    Ok(df)
}

/// The error for a header that names a column more than once.
fn repeated_name(file: &Path, name: &str) -> crate::error::Error {
    crate::error::Error::data_at(
        file,
        name,
        None,
        "the header names this column more than once",
    )
    .with_hint("rename the repeated columns: funnel finds columns by name")
}

/// A field as polars gave it that is a quoted field after the separator's space (` "a""b"`):
/// the field trimmed, when it starts with spaces or tabs and then a quote and ends with one.
/// A field that began with its quote was parsed as quoted by polars already (`"""yes"""` is
/// the value `"yes"`) and is not one of these.
fn spaced_quote(v: &str) -> Option<&str> {
    let t = v.trim_matches([' ', '\t']);
    let spaced = v.starts_with([' ', '\t']);
    (spaced && t.len() >= 2 && t.starts_with('"') && t.ends_with('"')).then_some(t)
}

/// A field trimmed, and unquoted as a CSV parser reads a quoted field when it is a quoted
/// field after the separator's space: the outer quotes off, each doubled quote made one.
fn cleaned(v: &str) -> std::borrow::Cow<'_, str> {
    match spaced_quote(v) {
        Some(q) => std::borrow::Cow::Owned(q[1..q.len() - 1].replace("\"\"", "\"")),
        None => std::borrow::Cow::Borrowed(v.trim_matches([' ', '\t'])),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_fields_after_a_space_are_unquoted() {
        use super::cleaned;
        assert_eq!(cleaned(" \"Pri\"\"vate\""), "Pri\"vate");
        assert_eq!(cleaned("\t\"\" "), "");
        assert_eq!(cleaned(" Private "), "Private");
        assert_eq!(cleaned(" \"half"), "\"half");
        assert_eq!(cleaned(" \""), "\"");
        // What polars already read as a quoted field (it began with its quote) stays as read:
        // `"""yes"""` is the value `"yes"`, `"a"" and ""b"` is `a" and "b`.
        assert_eq!(cleaned("\"yes\""), "\"yes\"");
        assert_eq!(cleaned("a\" and \"b"), "a\" and \"b");
    }
}
