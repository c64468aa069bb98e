//! A table read from one file: CSV parsed once, or Parquet decoded a column at a time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use polars::prelude::*;

use crate::config::FileFormat;
use crate::config::FileSource;
use crate::error::{Error, Result};

use super::cleaning::{Cleaning, row_number};
use super::column::Column;
use super::{elapsed_ns, open, polars_err};

/// Where a frame's columns live: in memory (CSV, parsed once), or in a Parquet file from which
/// each column is decoded when it is asked for, so a whole table is never held at once.
enum Table {
    Loaded(DataFrame),
    Parquet {
        metadata: std::sync::Arc<polars::io::parquet::read::FileMetadata>,
        schema: Schema,
        /// Columns of a type funnel does not read (decimal, dictionary, nested, dates...), with
        /// the type: an error only when the pipeline reads one.
        unreadable: Vec<(String, String)>,
    },
}

/// Whether a Parquet column's type is one funnel reads: booleans, integers, floats and text,
/// and lists of them (multi-valued features). Other types are never converted (polars panics on
/// types whose features are off).
fn readable(dt: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    if let A::List(inner) | A::LargeList(inner) = dt {
        return scalar(&inner.dtype);
    }
    scalar(dt)
}

/// Whether a Parquet type is a scalar funnel reads.
fn scalar(dt: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    matches!(
        dt,
        A::Null
            | A::Boolean
            | A::Int8
            | A::Int16
            | A::Int32
            | A::Int64
            | A::UInt8
            | A::UInt16
            | A::UInt32
            | A::UInt64
            | A::Float32
            | A::Float64
            | A::Utf8
            | A::LargeUtf8
            | A::Utf8View
    )
}

/// A table read from one file, with the cleaning rules of its source (whitespace trimming,
/// null markers) applied as values are read.
pub struct Frame {
    cleaning: Cleaning,
    table: Table,
    rows: usize,
    /// Nanoseconds spent reading and decoding columns, summed over threads.
    read_ns: AtomicU64,
    /// Parquet columns whose page headers passed `parquet_pages::check` (walked once).
    checked: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Frame {
    /// Open a source and check it has `columns` (every column when `None`). Missing columns are
    /// errors naming the column and the columns the file has. CSV files are parsed here; Parquet
    /// columns are decoded one at a time by [`Frame::column`].
    pub fn read(src: &FileSource, columns: Option<&[String]>) -> Result<Frame> {
        crate::interrupt::testing_pause("read");
        let start = Instant::now();
        let file = src.path.as_path();
        if !file.exists() {
            return Err(Error::data(file, "file not found")
                .with_hint("paths in a pipeline are relative to the pipeline file"));
        }
        let (table, rows) = super::guard::guarded(file, || read_table(file, src))?;
        let frame = Frame {
            cleaning: Cleaning {
                file: file.to_path_buf(),
                trim: src.format == FileFormat::Csv && src.csv.trim_whitespace,
                nulls: if src.format == FileFormat::Csv {
                    src.csv.null_values.clone()
                } else {
                    Vec::new()
                },
            },
            table,
            rows,
            read_ns: AtomicU64::new(elapsed_ns(start)),
            checked: Default::default(),
        };
        let have = frame.column_names();
        // Every missing column at once, so one run names them all.
        let mut missing: Vec<&String> = columns
            .into_iter()
            .flatten()
            .filter(|c| !have.contains(c))
            .collect();
        missing.dedup();
        let hint = format!("the file has columns: {}", have.join(", "));
        match missing[..] {
            [] => Ok(frame),
            [c] => Err(Error::data_at(file, c, None, "column not found").with_hint(hint)),
            _ => {
                let names: Vec<String> = missing.iter().map(|c| format!("`{c}`")).collect();
                Err(Error::data(
                    file,
                    format!("{} columns not found: {}", names.len(), names.join(", ")),
                )
                .with_hint(hint))
            }
        }
    }

    pub fn file(&self) -> &Path {
        self.cleaning.file()
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.dtype(name).is_some()
    }

    pub fn column_names(&self) -> Vec<String> {
        match &self.table {
            Table::Loaded(df) => df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            Table::Parquet {
                schema, unreadable, ..
            } => schema
                .iter_names()
                .map(|s| s.to_string())
                .chain(unreadable.iter().map(|(n, _)| n.clone()))
                .collect(),
        }
    }

    /// An error for a column whose Parquet type funnel does not read, if `name` is one.
    fn unreadable(&self, name: &str) -> Option<Error> {
        let Table::Parquet { unreadable, .. } = &self.table else {
            return None;
        };
        let (_, t) = unreadable.iter().find(|(n, _)| n == name)?;
        Some(
            Error::data_at(
                self.file(),
                name,
                None,
                format!("the column's Parquet type ({t}) is not one funnel reads"),
            )
            .with_hint("write it as float64, int64, boolean or string (pandas: `df[col] = df[col].astype(\"float64\")`)"),
        )
    }

    /// Seconds spent reading and decoding this frame's data so far, summed over threads.
    pub fn read_secs(&self) -> f64 {
        self.read_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// The file's 1-based data row of row `i` (header not counted).
    pub fn row_number(&self, i: usize) -> usize {
        row_number(i)
    }

    fn dtype(&self, name: &str) -> Option<DataType> {
        match &self.table {
            Table::Loaded(df) => df.column(name).ok().map(|c| c.dtype().clone()),
            Table::Parquet { schema, .. } => schema.get(name).cloned(),
        }
    }

    fn not_found(&self, name: &str) -> Error {
        Error::data_at(self.file(), name, None, "column not found").with_hint(format!(
            "the file has columns: {}",
            self.column_names().join(", ")
        ))
    }

    /// Whether a column is stored as unsigned integers (Parquet; how id columns are written).
    pub fn is_unsigned(&self, name: &str) -> bool {
        self.dtype(name).is_some_and(|d| d.is_unsigned_integer())
    }

    /// Whether a column holds numbers (or booleans) rather than text; nothing is read.
    pub fn is_numeric(&self, name: &str) -> Result<bool> {
        if let Some(e) = self.unreadable(name) {
            return Err(e);
        }
        let d = self.dtype(name).ok_or_else(|| self.not_found(name))?;
        Ok(d.is_primitive_numeric() || d == DataType::Boolean)
    }

    /// One column, decoded from the file when the frame is a Parquet file (each call decodes it
    /// again: callers ask once per column and drop it when done).
    pub fn column(&self, name: &str) -> Result<Column<'_>> {
        let start = Instant::now();
        let series = match &self.table {
            Table::Loaded(df) => df
                .column(name)
                .map_err(|_| self.not_found(name))?
                .as_materialized_series()
                .clone(),
            Table::Parquet { metadata, .. } => {
                if let Some(e) = self.unreadable(name) {
                    return Err(e);
                }
                if !self.has_column(name) {
                    return Err(self.not_found(name));
                }
                // Headers claiming more than the file holds would make polars' reservation
                // abort the process: they are refused first.
                if !self.checked.lock().is_ok_and(|set| set.contains(name)) {
                    super::guard::guarded(self.file(), || {
                        super::parquet_pages::check(self.file(), metadata, name)
                    })?;
                    if let Ok(mut set) = self.checked.lock() {
                        set.insert(name.to_string());
                    }
                }
                // Decoded on the calling thread: polars' own pool, entered from one of our
                // workers, would let that worker start other columns while it waits.
                let mut reader = ParquetReader::new(open(self.file())?)
                    .with_columns(Some(vec![name.to_string()]))
                    .read_parallel(ParallelStrategy::None);
                reader.set_metadata(metadata.clone());
                let df = super::guard::guarded(self.file(), || {
                    reader.finish().map_err(|e| {
                        Error::data_at(self.file(), name, None, format!("cannot read: {e}"))
                    })
                })?;
                df.column(name)
                    .map_err(|_| self.not_found(name))?
                    .as_materialized_series()
                    .clone()
            }
        };
        self.read_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        // A malformed Parquet file can announce more rows than a column holds (the fuzzer
        // found one): every reader indexes rows by the frame's count, so refuse it here.
        if series.len() != self.rows {
            return Err(Error::data_at(
                self.file(),
                name,
                None,
                format!(
                    "the file is malformed: it announces {} rows, the column holds {}",
                    self.rows,
                    series.len()
                ),
            )
            .with_hint(super::MALFORMED));
        }
        Ok(Column::new(&self.cleaning, name, series))
    }

    /// A column to write out as it was given: Parquet columns with their type, CSV columns as
    /// text after the source's cleaning (trimming, null markers), as every feature reads them.
    pub fn pass_through(&self, name: &str) -> Result<super::TableColumn> {
        let col = self.column(name)?;
        if matches!(self.table, Table::Loaded(_)) {
            let mut text = Vec::with_capacity(self.rows);
            col.visit_str(|_, v| {
                text.push(v.map(str::to_string));
                Ok(())
            })?;
            return Ok(super::TableColumn::Str(text));
        }
        Ok(super::TableColumn::Passed(super::Passed(col.into_series())))
    }

    /// Visit every value of a column as text; see [`Column::visit_str`].
    pub fn visit_str(
        &self,
        name: &str,
        f: impl FnMut(usize, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        self.column(name)?.visit_str(f)
    }

    /// Visit every value of a column as a number; see [`Column::visit_f64`].
    pub fn visit_f64(
        &self,
        name: &str,
        f: impl FnMut(usize, Option<f64>) -> Result<()>,
    ) -> Result<()> {
        self.column(name)?.visit_f64(f)
    }
}

/// The table of a source: a CSV parsed whole, or a Parquet file's metadata and schema.
fn read_table(file: &Path, src: &FileSource) -> Result<(Table, usize)> {
    Ok(match src.format {
        FileFormat::Csv => {
            let df = super::csv_read::read_csv(file, &src.csv)?;
            let rows = df.height();
            (Table::Loaded(df), rows)
        }
        FileFormat::Parquet => {
            let mut reader = ParquetReader::new(open(file)?);
            let metadata = reader
                .get_metadata()
                .map_err(|e| {
                    polars_err(file, e).with_hint(
                        "the file is truncated or is not Parquet (a CSV file needs `format: csv`)",
                    )
                })?
                .clone();
            let arrow = reader.schema().map_err(|e| polars_err(file, e))?;
            let (ok, bad): (Vec<_>, Vec<_>) = arrow.iter_values().partition(|f| readable(&f.dtype));
            let schema = ok
                .into_iter()
                .map(|f| Field::new(f.name.clone(), DataType::from_arrow_field(f)))
                .collect();
            let unreadable = bad
                .into_iter()
                .map(|f| (f.name.to_string(), format!("{:?}", f.dtype)))
                .collect();
            let rows = metadata.num_rows;
            (
                Table::Parquet {
                    metadata,
                    schema,
                    unreadable,
                },
                rows,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CsvOptions;
    use crate::source::Cat;

    /// Parquet's small integer types (pandas writes `astype("int8")` labels and flags) read
    /// like any integer column: as ids, as numbers and as label values.
    #[test]
    fn small_integer_parquet_columns_read() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("small.parquet");
        let mut df = DataFrame::new_infer_height(vec![
            Series::new("i8".into(), &[1i8, 0, -3]).into_column(),
            Series::new("i16".into(), &[300i16, 7, 7]).into_column(),
            Series::new("u8".into(), &[1u8, 0, 1]).into_column(),
            Series::new("u16".into(), &[65535u16, 0, 2]).into_column(),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let src = FileSource {
            path,
            format: FileFormat::Parquet,
            csv: CsvOptions {
                separator: b',',
                header: true,
                null_values: Vec::new(),
                trim_whitespace: false,
            },
        };
        let f = Frame::read(&src, None).unwrap();
        let mut numbers = Vec::new();
        let mut ids = Vec::new();
        for name in ["i8", "i16", "u8", "u16"] {
            let col = f.column(name).unwrap();
            col.visit_f64(|_, v| {
                numbers.push(v.unwrap());
                Ok(())
            })
            .unwrap();
            col.visit_cat(|_, v| {
                ids.push(v == Cat::Null);
                Ok(())
            })
            .unwrap();
            assert!(col.is_integer(), "{name}");
        }
        assert_eq!(
            numbers,
            vec![
                1.0, 0.0, -3.0, 300.0, 7.0, 7.0, 1.0, 0.0, 1.0, 65535.0, 0.0, 2.0
            ]
        );
        assert!(ids.iter().all(|&null| !null));
    }
}
