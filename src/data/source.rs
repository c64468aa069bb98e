//! Reading data files (CSV, gzip CSV, Parquet) into a `Frame`: the only code that touches polars.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use polars::prelude::Column as PlColumn;
use polars::prelude::*;

use crate::config::raw::FileFormat;
use crate::config::{CsvOptions, FileSource};
use crate::error::{Error, Result};

/// One categorical value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cat<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

/// Where a frame's columns live: in memory (CSV, parsed once), or in a Parquet file from which
/// each column is decoded when it is asked for, so a whole table is never held at once.
enum Table {
    Loaded(DataFrame),
    Parquet {
        metadata: std::sync::Arc<polars::io::parquet::read::FileMetadata>,
        schema: Schema,
    },
}

/// A table read from one file, with the cleaning rules of its source (whitespace trimming,
/// null markers) applied as values are read.
pub struct Frame {
    file: PathBuf,
    table: Table,
    rows: usize,
    trim: bool,
    nulls: Vec<String>,
    /// Nanoseconds spent reading and decoding columns, summed over threads.
    read_ns: AtomicU64,
}

fn polars_err(file: &Path, e: PolarsError) -> Error {
    Error::data(file, format!("cannot read: {e}"))
}

impl Frame {
    /// Open a source and check it has `columns` (every column when `None`). Missing columns are
    /// errors naming the column and the columns the file has. CSV files are parsed here; Parquet
    /// columns are decoded one at a time by [`Frame::column`].
    pub fn read(src: &FileSource, columns: Option<&[String]>) -> Result<Frame> {
        let start = Instant::now();
        let file = src.path.as_path();
        if !file.exists() {
            return Err(Error::data(file, "file not found")
                .with_hint("paths in a pipeline are relative to the pipeline file"));
        }
        let (table, rows) = match src.format {
            FileFormat::Csv => {
                let df = read_csv(file, &src.csv)?;
                let rows = df.height();
                (Table::Loaded(df), rows)
            }
            FileFormat::Parquet => {
                let mut reader = ParquetReader::new(open(file)?);
                let metadata = reader
                    .get_metadata()
                    .map_err(|e| polars_err(file, e))?
                    .clone();
                let arrow = reader.schema().map_err(|e| polars_err(file, e))?;
                let schema = arrow
                    .iter_values()
                    .map(|f| Field::new(f.name.clone(), DataType::from_arrow_field(f)))
                    .collect();
                let rows = metadata.num_rows;
                (Table::Parquet { metadata, schema }, rows)
            }
        };
        let frame = Frame {
            file: file.to_path_buf(),
            table,
            rows,
            trim: src.format == FileFormat::Csv && src.csv.trim_whitespace,
            nulls: if src.format == FileFormat::Csv {
                src.csv.null_values.clone()
            } else {
                Vec::new()
            },
            read_ns: AtomicU64::new(elapsed_ns(start)),
        };
        let have = frame.column_names();
        for c in columns.into_iter().flatten() {
            if !have.contains(c) {
                return Err(Error::data_at(file, c, None, "column not found")
                    .with_hint(format!("the file has columns: {}", have.join(", "))));
            }
        }
        Ok(frame)
    }

    pub fn file(&self) -> &Path {
        &self.file
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
            Table::Parquet { schema, .. } => schema.iter_names().map(|s| s.to_string()).collect(),
        }
    }

    /// Seconds spent reading and decoding this frame's data so far, summed over threads.
    pub fn read_secs(&self) -> f64 {
        self.read_ns.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// The file's 1-based data row of row `i` (header not counted).
    pub fn row_number(&self, i: usize) -> usize {
        i + 1
    }

    fn dtype(&self, name: &str) -> Option<DataType> {
        match &self.table {
            Table::Loaded(df) => df.column(name).ok().map(|c| c.dtype().clone()),
            Table::Parquet { schema, .. } => schema.get(name).cloned(),
        }
    }

    fn not_found(&self, name: &str) -> Error {
        Error::data_at(&self.file, name, None, "column not found").with_hint(format!(
            "the file has columns: {}",
            self.column_names().join(", ")
        ))
    }

    /// Whether a column holds numbers (or booleans) rather than text; nothing is read.
    pub fn is_numeric(&self, name: &str) -> Result<bool> {
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
                if !self.has_column(name) {
                    return Err(self.not_found(name));
                }
                // Decoded on the calling thread: polars' own pool, entered from one of our
                // workers, would let that worker start other columns while it waits.
                let mut reader = ParquetReader::new(open(&self.file)?)
                    .with_columns(Some(vec![name.to_string()]))
                    .read_parallel(ParallelStrategy::None);
                reader.set_metadata(metadata.clone());
                let df = reader.finish().map_err(|e| {
                    Error::data_at(&self.file, name, None, format!("cannot read: {e}"))
                })?;
                df.column(name)
                    .map_err(|_| self.not_found(name))?
                    .as_materialized_series()
                    .clone()
            }
        };
        self.read_ns.fetch_add(elapsed_ns(start), Ordering::Relaxed);
        Ok(Column::new(self, name, series))
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

fn open(file: &Path) -> Result<std::fs::File> {
    std::fs::File::open(file).map_err(|e| Error::io(file, e))
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One column of a frame, in memory while it is being visited.
pub struct Column<'f> {
    frame: &'f Frame,
    name: String,
    series: Series,
    /// Whether `visit_cat` yields integers (decided once: for UInt64 it takes a pass).
    integer: bool,
    /// The column formatted as text, made on first use when it does not hold text.
    text: OnceLock<Series>,
    /// The column as numbers, made on first use (cast, or parsed once from text) and kept for
    /// later passes: fitting and encoding a numeric feature both read it.
    numbers: OnceLock<Float64Chunked>,
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
    fn new(frame: &'f Frame, name: &str, series: Series) -> Self {
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
            frame,
            name: name.to_string(),
            series,
            integer,
            text: OnceLock::new(),
            numbers: OnceLock::new(),
        }
    }

    pub fn error(&self, row: Option<usize>, what: impl Into<String>) -> Error {
        Error::data_at(
            &self.frame.file,
            &self.name,
            row.map(|i| self.frame.row_number(i)),
            what,
        )
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
        let series = if self.series.dtype() == &DataType::String {
            &self.series
        } else {
            cached(&self.text, || self.cast(DataType::String))?
        };
        let ca = series.str().map_err(|e| self.error(None, e.to_string()))?;
        for (i, v) in ca.iter().enumerate() {
            f(i, self.frame.clean(v))?;
        }
        Ok(())
    }

    /// The column as numbers: numeric (and boolean) columns cast, text parsed once (text that
    /// is not a number is an error naming the row).
    fn numbers(&self) -> Result<&Float64Chunked> {
        cached(&self.numbers, || {
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
    let cols: Vec<PlColumn> = columns
        .into_iter()
        .map(|(name, c)| match c {
            TableColumn::F64(v) => PlColumn::new(name.into(), v),
            TableColumn::U32(v) => PlColumn::new(name.into(), v),
            TableColumn::I32(v) => PlColumn::new(name.into(), v),
            TableColumn::Str(v) => PlColumn::new(name.into(), v),
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
