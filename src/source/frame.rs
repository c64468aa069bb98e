//! A table read from one file: CSV parsed once, or Parquet decoded a column at a time; or from
//! the parts of a directory or glob, read as one.
//! Long because: the three kinds of table share every lookup (columns, types, rows, errors by
//! part), and splitting them would split each lookup's match in two.

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
    /// A source of several files (a directory, a glob): each read as a frame of its own, the
    /// columns appended in file order.
    Parts(Vec<Frame>),
    Parquet {
        metadata: std::sync::Arc<polars::io::parquet::read::FileMetadata>,
        /// Only rows `start..start + len` of the file (`Frame::rows`).
        slice: Option<(usize, usize)>,
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
    /// Parquet columns whose page headers passed `parquet_pages::check` (walked once for the
    /// file, and shared by the frames of its rows: `Frame::rows`).
    checked: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Frame {
    /// Open a source and check it has `columns` (every column when `None`). Missing columns are
    /// errors naming the column and the columns the file has. CSV files are parsed here; Parquet
    /// columns are decoded one at a time by [`Frame::column`].
    pub fn read(src: &FileSource, columns: Option<&[String]>) -> Result<Frame> {
        crate::interrupt::testing_pause("read");
        if super::parts::is_pattern(&src.path) || src.path.is_dir() {
            return Self::read_parts(src, columns);
        }
        let start = Instant::now();
        let file = src.path.as_path();
        if !file.exists() {
            return Err(Error::data(file, "file not found")
                .with_hint("paths in a pipeline are relative to the pipeline file"));
        }
        let (table, rows) = super::guard::guarded(file, || read_table(file, src))?;
        let frame = Frame {
            cleaning: Cleaning::of(src),
            table,
            rows,
            read_ns: AtomicU64::new(elapsed_ns(start)),
            checked: Default::default(),
        };
        frame.require(columns)
    }

    /// A table given in memory (rows a server scores), its text read by the rules of `like`
    /// (a CSV source's trimming and null markers; none for Parquet), with `like`'s path
    /// standing for the file in messages; it must have `columns`.
    pub fn from_dataframe(df: DataFrame, like: &FileSource, columns: &[String]) -> Result<Frame> {
        Frame {
            cleaning: Cleaning::of(like),
            rows: df.height(),
            table: Table::Loaded(df),
            read_ns: AtomicU64::new(0),
            checked: Default::default(),
        }
        .require(Some(columns))
    }

    /// The frame, when it has `columns` (every missing one named at once, so one run names
    /// them all).
    fn require(self, columns: Option<&[String]>) -> Result<Frame> {
        let (frame, file) = (&self, self.file());
        let have = frame.column_names();
        let mut missing: Vec<&String> = columns
            .into_iter()
            .flatten()
            .filter(|c| !have.contains(c))
            .collect();
        missing.dedup();
        let hint = format!("the file has columns: {}", have.join(", "));
        match missing[..] {
            [] => Ok(self),
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

    /// A source of several files, each read with the source's settings: every part must have
    /// the columns read (all of the first part's when `columns` is `None`) with one type, an
    /// error naming the first part and the one that differs otherwise.
    fn read_parts(src: &FileSource, columns: Option<&[String]>) -> Result<Frame> {
        let files = super::parts::files(&src.path)?;
        let frames = files
            .iter()
            .map(|f| {
                let part = FileSource {
                    path: f.clone(),
                    ..src.clone()
                };
                Frame::read(&part, columns)
            })
            .collect::<Result<Vec<Frame>>>()?;
        let first = &frames[0];
        let names: Vec<String> = match columns {
            Some(c) => c.to_vec(),
            None => first.column_names(),
        };
        for f in &frames[1..] {
            for name in &names {
                let (a, b) = (first.dtype(name), f.dtype(name));
                if a != b {
                    let show =
                        |d: Option<DataType>| d.map_or("absent".to_string(), |d| d.to_string());
                    return Err(Error::data_at(
                        f.file(),
                        name,
                        None,
                        format!(
                            "the parts of `{}` differ: the column is {} here and {} in {}",
                            src.path.display(),
                            show(b),
                            show(a),
                            first.file().display()
                        ),
                    )
                    .with_hint("write every part with the same columns and types"));
                }
            }
        }
        let mut parts = Vec::with_capacity(frames.len());
        let mut rows = 0;
        for f in &frames {
            parts.push((f.file().to_path_buf(), rows));
            rows += f.len();
        }
        Ok(Frame {
            cleaning: Cleaning {
                file: src.path.clone(),
                trim: first.cleaning.trim,
                nulls: first.cleaning.nulls.clone(),
                parts,
                offset: 0,
            },
            table: Table::Parts(frames),
            rows,
            read_ns: AtomicU64::new(0),
            checked: Default::default(),
        })
    }

    /// The row ranges (first row, rows) of a Parquet file in pieces of whole row groups, each
    /// of at least `rows` rows but the last; of Parquet parts, each part's ranges (none spans
    /// two parts); `None` for other tables (CSV, CSV parts).
    pub fn row_ranges(&self, rows: usize) -> Option<Vec<(usize, usize)>> {
        if let Table::Parts(frames) = &self.table {
            let mut ranges = Vec::new();
            let mut first = 0;
            for f in frames {
                ranges.extend(
                    f.row_ranges(rows)?
                        .into_iter()
                        .map(|(start, n)| (first + start, n)),
                );
                first += f.len();
            }
            return Some(ranges);
        }
        let Table::Parquet {
            metadata,
            slice: None,
            ..
        } = &self.table
        else {
            return None;
        };
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for g in &metadata.row_groups {
            match ranges.last_mut() {
                Some(last) if last.1 < rows => last.1 += g.num_rows(),
                _ => ranges.push((start, g.num_rows())),
            }
            start += g.num_rows();
        }
        Some(ranges)
    }

    /// Rows `start..start + len` of a Parquet file as a frame of their own, whose columns
    /// decode only those rows; its errors name the rows by their numbers in the file (of Parquet
    /// parts, rows of one part, named in that part). `None` for other tables, or rows across
    /// two parts.
    pub fn rows(&self, start: usize, len: usize) -> Option<Frame> {
        if let Table::Parts(frames) = &self.table {
            let mut first = 0;
            for f in frames {
                if start < first + f.len() || (len == 0 && start == first) {
                    return f.rows(start - first, len);
                }
                first += f.len();
            }
            return None;
        }
        let Table::Parquet {
            metadata,
            slice: None,
            schema,
            unreadable,
        } = &self.table
        else {
            return None;
        };
        (start + len <= self.rows).then(|| Frame {
            cleaning: Cleaning {
                file: self.cleaning.file.clone(),
                trim: self.cleaning.trim,
                nulls: self.cleaning.nulls.clone(),
                parts: Vec::new(),
                offset: start,
            },
            table: Table::Parquet {
                metadata: metadata.clone(),
                slice: Some((start, len)),
                schema: schema.clone(),
                unreadable: unreadable.clone(),
            },
            rows: len,
            read_ns: AtomicU64::new(0),
            checked: self.checked.clone(),
        })
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
            Table::Parts(frames) => frames[0].column_names(),
        }
    }

    /// An error for a column whose Parquet type funnel does not read, if `name` is one.
    fn unreadable(&self, name: &str) -> Option<Error> {
        if let Table::Parts(frames) = &self.table {
            return frames.iter().find_map(|f| f.unreadable(name));
        }
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
        let parts = match &self.table {
            Table::Parts(frames) => frames.iter().map(Frame::read_secs).sum(),
            _ => 0.0,
        };
        self.read_ns.load(Ordering::Relaxed) as f64 * 1e-9 + parts
    }

    /// An error about `column` at row `i` of the table, named by the file holding the row (its
    /// part, in a source of several files) and the row's number there.
    pub fn error_at(&self, column: &str, i: usize, what: impl Into<String>) -> Error {
        let (file, local) = self.cleaning.locate(i);
        Error::data_at(file, column, Some(row_number(local)), what)
    }

    /// The file's 1-based data row of row `i` (header not counted).
    pub fn row_number(&self, i: usize) -> usize {
        row_number(self.cleaning.offset + i)
    }

    fn dtype(&self, name: &str) -> Option<DataType> {
        match &self.table {
            Table::Loaded(df) => df.column(name).ok().map(|c| c.dtype().clone()),
            Table::Parquet { schema, .. } => schema.get(name).cloned(),
            Table::Parts(frames) => frames[0].dtype(name),
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
            Table::Parts(frames) => {
                let mut whole = frames[0].column(name)?.into_series();
                for f in &frames[1..] {
                    whole
                        .append(&f.column(name)?.into_series())
                        .map_err(|e| Error::data_at(f.file(), name, None, e.to_string()))?;
                }
                whole
            }
            Table::Loaded(df) => df
                .column(name)
                .map_err(|_| self.not_found(name))?
                .as_materialized_series()
                .clone(),
            Table::Parquet {
                metadata, slice, ..
            } => {
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
                    .with_slice(*slice)
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
        let text_table = match &self.table {
            Table::Parts(frames) => matches!(frames[0].table, Table::Loaded(_)),
            t => matches!(t, Table::Loaded(_)),
        };
        if text_table {
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
                    slice: None,
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
