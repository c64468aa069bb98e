//! Reading data files (CSV, gzip CSV, Parquet) into a `Frame`: the only code that touches polars.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::raw::FileFormat;
use crate::config::{CsvOptions, FileSource};
use crate::error::{Error, Result};

/// A split's rows within a frame (ascending indices). Visitors ask `take(i)` for each row and
/// skip the rows it refuses: the one way every reader of a split skips the others.
pub struct RowSubset<'r> {
    next: std::iter::Peekable<std::slice::Iter<'r, u32>>,
}

impl<'r> RowSubset<'r> {
    pub fn new(rows: &'r [u32]) -> Self {
        RowSubset {
            next: rows.iter().peekable(),
        }
    }

    /// Whether row `i` belongs to the subset; rows must be asked in ascending order.
    pub fn take(&mut self, i: usize) -> bool {
        self.next.next_if_eq(&&(i as u32)).is_some()
    }
}

/// One categorical value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cat<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

/// A table read from one file, with the cleaning rules of its source (whitespace trimming,
/// null markers) applied as values are read.
pub struct Frame {
    file: PathBuf,
    df: DataFrame,
    trim: bool,
    nulls: Vec<String>,
}

fn polars_err(file: &Path, e: PolarsError) -> Error {
    Error::data(file, format!("cannot read: {e}"))
}

impl Frame {
    /// Read `columns` of a source (all columns when `columns` is `None`). Missing columns are errors
    /// naming the column and the columns the file has.
    pub fn read(src: &FileSource, columns: Option<&[String]>) -> Result<Frame> {
        let file = src.path.as_path();
        if !file.exists() {
            return Err(Error::data(file, "file not found")
                .with_hint("paths in a pipeline are relative to the pipeline file"));
        }
        let mut df = match src.format {
            FileFormat::Csv => read_csv(file, &src.csv)?,
            FileFormat::Parquet => {
                let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
                ParquetReader::new(f)
                    .finish()
                    .map_err(|e| polars_err(file, e))?
            }
        };
        if let Some(cols) = columns {
            let have: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            for c in cols {
                if !have.contains(c) {
                    return Err(Error::data_at(file, c, None, "column not found")
                        .with_hint(format!("the file has columns: {}", have.join(", "))));
                }
            }
            let mut unique: Vec<&String> = Vec::new();
            for c in cols {
                if !unique.contains(&c) {
                    unique.push(c);
                }
            }
            df = df.select(unique).map_err(|e| polars_err(file, e))?;
        }
        Ok(Frame {
            file: file.to_path_buf(),
            df,
            trim: src.format == FileFormat::Csv && src.csv.trim_whitespace,
            nulls: if src.format == FileFormat::Csv {
                src.csv.null_values.clone()
            } else {
                Vec::new()
            },
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn len(&self) -> usize {
        self.df.height()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.df.get_column_index(name).is_some()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The file's 1-based data row of row `i` (header not counted).
    pub fn row_number(&self, i: usize) -> usize {
        i + 1
    }

    fn series(&self, name: &str) -> Result<&Series> {
        self.df
            .column(name)
            .map(|c| c.as_materialized_series())
            .map_err(|_| {
                Error::data_at(&self.file, name, None, "column not found").with_hint(format!(
                    "the file has columns: {}",
                    self.column_names().join(", ")
                ))
            })
    }

    /// Whether a column holds numbers (or booleans) rather than text.
    pub fn is_numeric(&self, name: &str) -> Result<bool> {
        let d = self.series(name)?.dtype().clone();
        Ok(d.is_primitive_numeric() || d == DataType::Boolean)
    }

    fn cast(&self, name: &str, s: &Series, to: DataType) -> Result<Series> {
        s.cast(&to).map_err(|e| {
            Error::data_at(&self.file, name, None, format!("cannot read as {to}: {e}"))
        })
    }

    /// Visit every value of a categorical column, in row order: integer columns (Parquet) as
    /// integers without formatting them, everything else as text. `Cat::Int(7)` and
    /// `Cat::Str("7")` denote the same category.
    pub fn visit_cat(
        &self,
        name: &str,
        mut f: impl FnMut(usize, Cat<'_>) -> Result<()>,
    ) -> Result<()> {
        let s = self.series(name)?;
        if s.dtype().is_integer() {
            let cast = self.cast(name, s, DataType::Int64)?;
            let ca = cast
                .i64()
                .map_err(|e| Error::data_at(&self.file, name, None, e.to_string()))?;
            for (i, v) in ca.iter().enumerate() {
                f(i, v.map_or(Cat::Null, Cat::Int))?;
            }
            return Ok(());
        }
        self.visit_str(name, |i, v| f(i, v.map_or(Cat::Null, Cat::Str)))
    }

    /// Visit every value of a column as text (`None` for missing), in row order.
    pub fn visit_str(
        &self,
        name: &str,
        mut f: impl FnMut(usize, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        let s = self.series(name)?;
        let text;
        let s = if s.dtype() == &DataType::String {
            s
        } else {
            text = self.cast(name, s, DataType::String)?;
            &text
        };
        let ca = s
            .str()
            .map_err(|e| Error::data_at(&self.file, name, None, e.to_string()))?;
        for (i, v) in ca.iter().enumerate() {
            f(i, self.clean(v))?;
        }
        Ok(())
    }

    /// Visit every value of a column as a number (`None` for missing). Text that is not a number
    /// is an error naming the row.
    pub fn visit_f64(
        &self,
        name: &str,
        mut f: impl FnMut(usize, Option<f64>) -> Result<()>,
    ) -> Result<()> {
        let s = self.series(name)?;
        if s.dtype().is_primitive_numeric() || s.dtype() == &DataType::Boolean {
            let cast = self.cast(name, s, DataType::Float64)?;
            let ca = cast
                .f64()
                .map_err(|e| Error::data_at(&self.file, name, None, e.to_string()))?;
            for (i, v) in ca.iter().enumerate() {
                f(i, v)?;
            }
            return Ok(());
        }
        self.visit_str(name, |i, v| {
            let parsed = match v {
                None => None,
                Some(t) => Some(t.parse::<f64>().map_err(|_| {
                    Error::data_at(
                        &self.file,
                        name,
                        Some(self.row_number(i)),
                        format!("{t:?} is not a number"),
                    )
                    .with_hint("declare the column as categorical, or add the marker to the source's `csv.null_values`")
                })?),
            };
            f(i, parsed)
        })
    }

    fn clean<'a>(&self, v: Option<&'a str>) -> Option<&'a str> {
        let v = v?;
        let v = if self.trim {
            v.trim_matches([' ', '\t'])
        } else {
            v
        };
        if self.nulls.iter().any(|n| n == v) {
            None
        } else {
            Some(v)
        }
    }
}

fn read_csv(file: &Path, o: &CsvOptions) -> Result<DataFrame> {
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
    if o.trim_whitespace {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.trim_matches([' ', '\t']).to_string())
            .collect();
        df.set_column_names(&names)
            .map_err(|e| polars_err(file, e))?;
    }
    Ok(df)
}

fn to_polars_columns(columns: Vec<(String, TableColumn)>) -> Result<DataFrame> {
    let height = columns.first().map(|(_, c)| c.len()).unwrap_or(0);
    let cols: Vec<Column> = columns
        .into_iter()
        .map(|(name, c)| match c {
            TableColumn::F64(v) => Column::new(name.into(), v),
            TableColumn::U32(v) => Column::new(name.into(), v),
            TableColumn::I32(v) => Column::new(name.into(), v),
            TableColumn::Str(v) => Column::new(name.into(), v),
        })
        .collect();
    DataFrame::new(height, cols).map_err(|e| Error::Internal(e.to_string()))
}

fn io_err(e: PolarsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Write a table of named columns to CSV or Parquet (by extension), atomically.
pub fn write_table(path: &Path, columns: Vec<(String, TableColumn)>) -> Result<()> {
    let mut w = TableWriter::create(path)?;
    w.write(columns)?;
    w.finish()
}

enum Sink {
    Csv(polars::io::csv::write::BatchedWriter<std::fs::File>),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<std::fs::File>>),
}

/// Writes a table chunk by chunk (bounded memory) into a temporary file next to `path`, renamed
/// into place by `finish`. Dropped unfinished, it removes the temporary file.
pub struct TableWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    sink: Option<Sink>,
    finished: bool,
}

impl TableWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = crate::fsutil::temp_sibling(path)?;
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
            sink: None,
            finished: false,
        })
    }

    pub fn write(&mut self, columns: Vec<(String, TableColumn)>) -> Result<()> {
        let df = to_polars_columns(columns)?;
        let fail = |e: PolarsError| Error::io(&self.path, io_err(e));
        if self.sink.is_none() {
            let file = self
                .file
                .take()
                .ok_or_else(|| Error::Internal("writer reused".into()))?;
            let schema = df.schema().clone();
            let parquet =
                crate::config::format_from_extension(&self.path) == Some(FileFormat::Parquet);
            self.sink = Some(if parquet {
                Sink::Parquet(Box::new(
                    ParquetWriter::new(file)
                        .with_compression(ParquetCompression::Snappy)
                        .batched(&schema)
                        .map_err(fail)?,
                ))
            } else {
                Sink::Csv(CsvWriter::new(file).batched(&schema).map_err(fail)?)
            });
        }
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.write_batch(&df).map_err(fail),
            Some(Sink::Parquet(w)) => w.write_batch(&df).map_err(fail),
            None => Err(Error::Internal("no sink".into())),
        }
    }

    pub fn finish(mut self) -> Result<()> {
        let fail = |e: PolarsError| Error::io(&self.path, io_err(e));
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.finish().map_err(fail)?,
            Some(Sink::Parquet(w)) => {
                w.finish().map_err(fail)?;
            }
            None => return Err(Error::Internal("nothing was written".into())),
        }
        self.sink = None;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.sink = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

pub enum TableColumn {
    F64(Vec<f64>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    Str(Vec<Option<String>>),
}

impl TableColumn {
    fn len(&self) -> usize {
        match self {
            TableColumn::F64(v) => v.len(),
            TableColumn::U32(v) => v.len(),
            TableColumn::I32(v) => v.len(),
            TableColumn::Str(v) => v.len(),
        }
    }
}
