//! One column of a frame and its visitors: categorical values, text, numbers.

use std::sync::OnceLock;

use polars::prelude::*;

use crate::error::{Error, Result};

use super::cleaning::{Cleaning, row_number};

/// One categorical value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cat<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

/// One column of a frame, in memory while it is being visited.
pub struct Column<'f> {
    /// The file's rules, applied to each value visited.
    source: &'f Cleaning,
    name: String,
    series: Series,
    /// Whether `visit_cat` yields integers (decided once: for UInt64 it takes a pass).
    integer: bool,
    /// The column formatted as text, made on first use when it does not hold text.
    text: OnceLock<Series>,
    /// The column as numbers, made on first use (cast, or parsed once from text) and kept for
    /// later passes: fitting and encoding a numeric feature both read it.
    numbers: OnceLock<Float64Chunked>,
    /// A list column's values, flattened on first use.
    lists: OnceLock<Lists>,
}

/// A list column's values flattened: row i's values are `values[a..b]` for `spans[i] =
/// Some((a, b))`, `None` for a missing list.
struct Lists {
    spans: Vec<Option<(usize, usize)>>,
    values: ListValues,
}

enum ListValues {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

impl ListValues {
    fn cat(&self, k: usize) -> Cat<'_> {
        match self {
            ListValues::Int(v) => v[k].map_or(Cat::Null, Cat::Int),
            ListValues::Text(v) => v[k].as_deref().map_or(Cat::Null, Cat::Str),
        }
    }
}

/// The value in `cell`, made by `make` the first time; an error is returned, not kept.
fn cached<T>(cell: &OnceLock<T>, make: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = make()?;
    Ok(cell.get_or_init(|| v))
}

impl<'f> Column<'f> {
    pub(super) fn new(source: &'f Cleaning, name: &str, series: Series) -> Self {
        // Unsigned 64-bit ids count as integers only when every value fits an i64; otherwise
        // (64-bit hashed ids, say) they are read as text, as the same values in a CSV would be.
        let integer = match series.dtype() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => true,
            DataType::UInt64 => series
                .u64()
                .map(|ca| ca.max().is_none_or(|m| i64::try_from(m).is_ok()))
                .unwrap_or(false),
            _ => false,
        };
        Column {
            source,
            name: name.to_string(),
            series,
            integer,
            text: OnceLock::new(),
            numbers: OnceLock::new(),
            lists: OnceLock::new(),
        }
    }

    /// The column's values as read.
    pub(super) fn into_series(self) -> Series {
        self.series
    }

    /// The file (or source of several files) the column is read from.
    pub fn file(&self) -> &std::path::Path {
        self.source.file()
    }

    /// An error about this column, at row `row` of the table: named by its file (the part
    /// holding it, in a source of several files) and its row there.
    pub fn error(&self, row: Option<usize>, what: impl Into<String>) -> Error {
        match row {
            Some(i) => {
                let (file, local) = self.source.locate(i);
                Error::data_at(file, &self.name, Some(row_number(local)), what)
            }
            None => Error::data_at(self.source.file(), &self.name, None, what),
        }
    }

    fn cast(&self, to: DataType) -> Result<Series> {
        self.series
            .cast(&to)
            .map_err(|e| self.error(None, format!("cannot read as {to}: {e}")))
    }

    /// Whether the column holds integers, which `visit_cat` then yields as `Cat::Int`.
    pub fn is_integer(&self) -> bool {
        self.integer
    }

    /// Visit every value of a categorical column, in row order: integer columns (Parquet) as
    /// integers without formatting or casting them, everything else as text. `Cat::Int(7)` and
    /// `Cat::Str("7")` denote the same category.
    pub fn visit_cat<'c>(&'c self, mut f: impl FnMut(usize, Cat<'c>) -> Result<()>) -> Result<()> {
        if self.integer {
            return self.visit_int(|i, v| f(i, v.map_or(Cat::Null, Cat::Int)));
        }
        self.visit_str(|i, v| f(i, v.map_or(Cat::Null, Cat::Str)))
    }

    /// Visit an integer column's values as i64, whatever its integer type.
    fn visit_int(&self, mut f: impl FnMut(usize, Option<i64>) -> Result<()>) -> Result<()> {
        fn each<T>(
            col: &Column<'_>,
            ca: &ChunkedArray<T>,
            f: &mut impl FnMut(usize, Option<i64>) -> Result<()>,
        ) -> Result<()>
        where
            T: PolarsIntegerType,
            T::Native: TryInto<i64> + std::fmt::Display,
        {
            for (i, v) in ca.iter().enumerate() {
                let v = match v {
                    None => None,
                    Some(x) => Some(x.try_into().map_err(|_| {
                        col.error(Some(i), format!("{x} does not fit a signed 64-bit id"))
                    })?),
                };
                f(i, v)?;
            }
            Ok(())
        }
        let s = &self.series;
        let wrong = |e: PolarsError| self.error(None, e.to_string());
        match s.dtype() {
            DataType::Int8 => each(self, s.i8().map_err(wrong)?, &mut f),
            DataType::Int16 => each(self, s.i16().map_err(wrong)?, &mut f),
            DataType::Int32 => each(self, s.i32().map_err(wrong)?, &mut f),
            DataType::Int64 => each(self, s.i64().map_err(wrong)?, &mut f),
            DataType::UInt8 => each(self, s.u8().map_err(wrong)?, &mut f),
            DataType::UInt16 => each(self, s.u16().map_err(wrong)?, &mut f),
            DataType::UInt32 => each(self, s.u32().map_err(wrong)?, &mut f),
            DataType::UInt64 => each(self, s.u64().map_err(wrong)?, &mut f),
            other => Err(self.error(None, format!("a {other} column is not read as integers"))),
        }
    }

    /// Visit every value as text (`None` for missing, after the source's cleaning rules), in
    /// row order. Text borrowed from the column lives as long as the column.
    pub fn visit_str<'c>(
        &'c self,
        mut f: impl FnMut(usize, Option<&'c str>) -> Result<()>,
    ) -> Result<()> {
        let ca = self.text()?;
        for (i, v) in ca.iter().enumerate() {
            f(i, self.source.clean(v))?;
        }
        Ok(())
    }

    /// The column as text (cast once when it holds something else); a list column is refused:
    /// only a multi-valued feature reads lists.
    fn text(&self) -> Result<&StringChunked> {
        if self.is_list() {
            return Err(self.lists_refused());
        }
        let series = if self.series.dtype() == &DataType::String {
            &self.series
        } else {
            cached(&self.text, || self.cast(DataType::String))?
        };
        series.str().map_err(|e| self.error(None, e.to_string()))
    }

    /// The error for a list column read as anything but a multi-valued feature.
    fn lists_refused(&self) -> Error {
        self.error(
            None,
            "the column holds lists, which only a multi-valued feature reads",
        )
        .with_hint("declare it under `features.multi_valued`")
    }

    /// Whether the column holds lists (a Parquet list column).
    pub fn is_list(&self) -> bool {
        matches!(self.series.dtype(), DataType::List(_))
    }

    /// Whether the values of a list column are integers (tokens then come as `Cat::Int`).
    pub fn is_integer_list(&self) -> bool {
        matches!(self.series.dtype(), DataType::List(inner) if inner.is_integer())
    }

    /// Visit every row's list of values, in row order (`None` for a missing list): a list
    /// column's lists (a missing value inside one is `Cat::Null`), or a text cell cut at
    /// `separator` (the empty cell is the empty list, see `Cleaning::clean_list`; each piece
    /// trimmed under `trim_whitespace`; empty pieces, from a doubled or trailing separator, are
    /// skipped). Values borrowed from the column live
    /// as long as it does.
    pub fn visit_lists<'c>(
        &'c self,
        separator: &str,
        mut f: impl FnMut(usize, Option<&[Cat<'c>]>) -> Result<()>,
    ) -> Result<()> {
        let mut buf: Vec<Cat<'c>> = Vec::new();
        if self.is_list() {
            let lists = cached(&self.lists, || self.flatten_lists())?;
            for (i, span) in lists.spans.iter().enumerate() {
                match *span {
                    None => f(i, None)?,
                    Some((a, b)) => {
                        buf.clear();
                        buf.extend((a..b).map(|k| lists.values.cat(k)));
                        f(i, Some(&buf))?;
                    }
                }
            }
            return Ok(());
        }
        let ca = self.text()?;
        for (i, v) in ca.iter().enumerate() {
            match self.source.clean_list(v) {
                None => f(i, None)?,
                Some(cell) => {
                    buf.clear();
                    buf.extend(
                        cell.split(separator)
                            .map(|t| self.source.trimmed(t))
                            .filter(|t| !t.is_empty())
                            .map(Cat::Str),
                    );
                    f(i, Some(&buf))?;
                }
            }
        }
        Ok(())
    }

    /// A list column's values, flattened: integers as integers, anything else as text.
    fn flatten_lists(&self) -> Result<Lists> {
        let ca = self
            .series
            .list()
            .map_err(|e| self.error(None, e.to_string()))?;
        let integer = self.is_integer_list();
        let mut spans = Vec::with_capacity(ca.len());
        let (mut ints, mut texts) = (Vec::new(), Vec::new());
        for (i, row) in ca.series_iter().enumerate() {
            let Some(inner) = row else {
                spans.push(None);
                continue;
            };
            let start = if integer { ints.len() } else { texts.len() };
            let wrong = |e: PolarsError| self.error(Some(i), format!("cannot read the list: {e}"));
            if integer {
                let cast = inner.cast(&DataType::Int64).map_err(wrong)?;
                ints.extend(cast.i64().map_err(wrong)?.iter());
            } else {
                let cast = inner.cast(&DataType::String).map_err(wrong)?;
                texts.extend(
                    cast.str()
                        .map_err(wrong)?
                        .iter()
                        .map(|v| self.source.clean(v).map(str::to_string)),
                );
            }
            let end = if integer { ints.len() } else { texts.len() };
            spans.push(Some((start, end)));
        }
        Ok(Lists {
            spans,
            values: if integer {
                ListValues::Int(ints)
            } else {
                ListValues::Text(texts)
            },
        })
    }

    /// The column as numbers: numeric (and boolean) columns cast, text parsed once (text that
    /// is not a number is an error naming the row).
    fn numbers(&self) -> Result<&Float64Chunked> {
        cached(&self.numbers, || {
            if self.is_list() {
                return Err(self.lists_refused());
            }
            let d = self.series.dtype();
            if d.is_primitive_numeric() || d == &DataType::Boolean {
                let cast = self.cast(DataType::Float64)?;
                return Ok(cast
                    .f64()
                    .map_err(|e| self.error(None, e.to_string()))?
                    .clone());
            }
            let mut values = Vec::with_capacity(self.series.len());
            self.visit_str(|i, v| {
                values.push(match v {
                    None => None,
                    Some(t) => Some(t.parse::<f64>().map_err(|_| {
                        self.error(Some(i), format!("{t:?} is not a number"))
                        .with_hint("declare the column as categorical, or add the marker to the source's `csv.null_values`")
                    })?),
                });
                Ok(())
            })?;
            Ok(Float64Chunked::from_iter_options(
                self.name.as_str().into(),
                values.into_iter(),
            ))
        })
    }

    /// Visit every value as a number (`None` for missing), in row order.
    pub fn visit_f64(&self, mut f: impl FnMut(usize, Option<f64>) -> Result<()>) -> Result<()> {
        for (i, v) in self.numbers()?.iter().enumerate() {
            f(i, v)?;
        }
        Ok(())
    }
}
