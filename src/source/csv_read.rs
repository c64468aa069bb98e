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
            .enumerate()
            .map(|(i, s)| cleaned(s, shape.spaced.header.contains(&i)).into_owned())
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
        // have for `a,"Pri""vate"`, in the cells the scan found written so: a value that reads
        // the same but was quoted properly is left as it is.
        for &c in shape.spaced.cells.keys() {
            let Some(name) = names.get(c) else { continue };
            let column = df.column(name).map_err(|e| polars_err(file, e))?;
            let ca = column.str().map_err(|e| polars_err(file, e))?;
            let cleaned: StringChunked = ca
                .iter()
                .enumerate()
                .map(|(row, v)| v.map(|v| cleaned(v, shape.spaced.has(c, row)).into_owned()))
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

/// A field trimmed; when `spaced` (the scan found it written as a quote after the separator's
/// space) and it ends with a quote, unquoted as a CSV parser reads a quoted field: the outer
/// quotes off, each doubled quote made one.
fn cleaned(v: &str, spaced: bool) -> std::borrow::Cow<'_, str> {
    let t = v.trim_matches([' ', '\t']);
    if spaced && t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        std::borrow::Cow::Owned(t[1..t.len() - 1].replace("\"\"", "\""))
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_fields_after_a_space_are_unquoted() {
        use super::cleaned;
        assert_eq!(cleaned(" \"Pri\"\"vate\"", true), "Pri\"vate");
        assert_eq!(cleaned("\t\"\" ", true), "");
        assert_eq!(cleaned(" Private ", false), "Private");
        assert_eq!(cleaned(" \"half", true), "\"half");
        assert_eq!(cleaned(" \"", true), "\"");
        // What the scan did not find written so is only trimmed, whatever it looks like: a
        // properly quoted `"  ""yes"""` is the value `  "yes"`, read as `"yes"`.
        assert_eq!(cleaned("  \"yes\"", false), "\"yes\"");
    }

    /// The scan marks the cells, and only those, and read_csv unquotes them.
    #[test]
    fn only_cells_written_with_a_spaced_quote_are_unquoted() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.csv");
        std::fs::write(&f, "a, \"b\"\nx, \"P\"\"v\"\n\"  \"\"yes\"\"\", y\n").unwrap();
        let o = crate::config::CsvOptions {
            separator: b',',
            header: true,
            null_values: vec![String::new()],
            trim_whitespace: true,
        };
        let df = super::read_csv(&f, &o).unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let col = |n: &str| -> Vec<String> {
            df.column(n)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap().trim().to_string())
                .collect()
        };
        assert_eq!(col("b"), ["P\"v", "y"]);
        assert_eq!(col("a"), ["x", "\"yes\""]);
    }
}
