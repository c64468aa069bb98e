//! One row of named values (what a request to a server holds) as the one-row table a served
//! model scores.

use polars::prelude::{Column, DataFrame, DataType, NamedFrom, Series};

use crate::error::{Error, Result};

/// A raw value of one column, as the training file held it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A missing value (each feature's missing-value rule applies).
    Missing,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// The tokens of a multi-valued feature or a behaviour history (a text file's cell
    /// `"a|b"` can also be given as `Text` with the pipeline's separator).
    List(Vec<String>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Missing, Into::into)
    }
}

/// A one-row table of `row`'s values, each name once.
pub(super) fn one_row(row: &[(&str, Value)]) -> Result<DataFrame> {
    let mut columns = Vec::with_capacity(row.len());
    for (k, (name, value)) in row.iter().enumerate() {
        if row[..k].iter().any(|(n, _)| n == name) {
            return Err(Error::Usage(format!(
                "the row names `{name}` twice\n  hint: give each column one value"
            )));
        }
        let name = (*name).into();
        let series = match value {
            Value::Missing => Series::full_null(name, 1, &DataType::Null),
            Value::Bool(v) => Series::new(name, [*v]),
            Value::Int(v) => Series::new(name, [*v]),
            Value::Float(v) => Series::new(name, [*v]),
            Value::Text(v) => Series::new(name, [v.as_str()]),
            Value::List(tokens) => {
                let inner = Series::new("".into(), tokens.as_slice());
                Series::new(name, [inner])
            }
        };
        columns.push(Column::from(series));
    }
    DataFrame::new(1, columns).map_err(|e| Error::Internal(format!("one-row table: {e}")))
}
