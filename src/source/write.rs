//! Writing tables of named columns to CSV or Parquet, atomically and in chunks.

use std::path::{Path, PathBuf};

use polars::prelude::Column as PlColumn;
use polars::prelude::*;

use crate::config::FileFormat;
use crate::error::{Error, Result};

/// The columns as a polars frame; lists as text cells `a|b|c` when `lists_as_text` (CSV, which
/// has no lists: a multi-valued feature reads them back with its default separator).
fn to_polars_columns(
    columns: Vec<(String, TableColumn)>,
    lists_as_text: bool,
) -> Result<DataFrame> {
    let height = columns.first().map(|(_, c)| c.len()).unwrap_or(0);
    let cols: Vec<PlColumn> = columns
        .into_iter()
        .map(|(name, c)| match c {
            TableColumn::F64(v) => PlColumn::new(name.into(), v),
            TableColumn::U32(v) => PlColumn::new(name.into(), v),
            TableColumn::U64(v) => PlColumn::new(name.into(), v),
            TableColumn::I32(v) => PlColumn::new(name.into(), v),
            TableColumn::I64(v) => PlColumn::new(name.into(), v),
            TableColumn::OptI64(v) => PlColumn::new(name.into(), v),
            TableColumn::Str(v) => PlColumn::new(name.into(), v),
            TableColumn::ListI64(v) => list_column(name, &v, lists_as_text),
            TableColumn::ListF64(v) => list_column(name, &v, lists_as_text),
            TableColumn::Passed(Passed(series)) => series.with_name(name.into()).into(),
        })
        .collect();
    DataFrame::new(height, cols).map_err(|e| Error::Internal(e.to_string()))
}

/// A list per row: a Parquet list column, or `a|b|c` text cells.
fn list_column<T>(name: String, lists: &[Vec<T>], as_text: bool) -> PlColumn
where
    T: ToString,
    Series: NamedFrom<Vec<T>, [T]>,
    T: Clone,
{
    if as_text {
        let text: Vec<String> = lists
            .iter()
            .map(|l| l.iter().map(T::to_string).collect::<Vec<_>>().join("|"))
            .collect();
        return <Series as NamedFrom<Vec<String>, [String]>>::new(name.into(), text).into_column();
    }
    let lists: ListChunked = lists
        .iter()
        .map(|l| Some(Series::new(PlSmallStr::EMPTY, l.clone())))
        .collect();
    lists.with_name(name.into()).into_series().into()
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
    /// CSV into a gzip stream (`.csv.gz`); the second handle finishes the stream.
    CsvGz(polars::io::csv::write::BatchedWriter<Gz>, Gz),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<std::fs::File>>),
}

/// A gzip encoder shared by polars' CSV writer and `TableWriter::finish`, which writes the
/// stream's trailer and sees its errors (dropping an encoder would swallow them).
#[derive(Clone)]
struct Gz(std::sync::Arc<std::sync::Mutex<Option<flate2::write::GzEncoder<std::fs::File>>>>);

impl std::io::Write for Gz {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .as_mut()
        {
            Some(e) => e.write(buf),
            None => Err(std::io::Error::other("the gzip stream is finished")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .as_mut()
        {
            Some(e) => e.flush(),
            None => Ok(()),
        }
    }
}

impl Gz {
    fn finish(&self) -> std::io::Result<()> {
        let encoder = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .take();
        match encoder {
            Some(e) => e.finish()?.sync_all(),
            None => Ok(()),
        }
    }
}

/// Writes a table chunk by chunk (bounded memory) into a temporary file next to `path`, renamed
/// into place by `finish`. Dropped unfinished, it removes the temporary file.
pub struct TableWriter {
    path: PathBuf,
    /// Removed when dropped unfinished, or when the process is interrupted.
    tmp: Option<crate::interrupt::Temp>,
    file: Option<std::fs::File>,
    sink: Option<Sink>,
}

impl TableWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let (tmp, file) = crate::interrupt::Temp::create(crate::fsutil::temp_sibling(path)?)
            .map_err(|e| Error::io(path, e))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            file: Some(file),
            sink: None,
        })
    }

    /// Write one chunk of rows. A stop request (`interrupt`) ends the write here: the error
    /// drops the writer, which removes its temporary file.
    pub fn write(&mut self, columns: Vec<(String, TableColumn)>) -> Result<()> {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(crate::interrupt::stopped(
                signal,
                &format!("{} was not written", self.path.display()),
            ));
        }
        crate::interrupt::testing_pause("write");
        let parquet = crate::config::format_from_extension(&self.path) == Some(FileFormat::Parquet);
        let df = to_polars_columns(columns, !parquet)?;
        let fail = |e: PolarsError| Error::io(&self.path, io_err(e));
        if self.sink.is_none() {
            let file = self
                .file
                .take()
                .ok_or_else(|| Error::Internal("writer reused".into()))?;
            let schema = df.schema().clone();
            self.sink = Some(if parquet {
                Sink::Parquet(Box::new(
                    ParquetWriter::new(file)
                        .with_compression(ParquetCompression::Snappy)
                        .batched(&schema)
                        .map_err(fail)?,
                ))
            } else if gzipped(&self.path) {
                let gz = Gz(std::sync::Arc::new(std::sync::Mutex::new(Some(
                    flate2::write::GzEncoder::new(file, flate2::Compression::default()),
                ))));
                Sink::CsvGz(
                    CsvWriter::new(gz.clone()).batched(&schema).map_err(fail)?,
                    gz,
                )
            } else {
                Sink::Csv(CsvWriter::new(file).batched(&schema).map_err(fail)?)
            });
        }
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.write_batch(&df).map_err(fail),
            Some(Sink::CsvGz(w, _)) => w.write_batch(&df).map_err(fail),
            Some(Sink::Parquet(w)) => w.write_batch(&df).map_err(fail),
            None => Err(Error::Internal("no sink".into())),
        }
    }

    pub fn finish(mut self) -> Result<()> {
        let fail = |e: PolarsError| Error::io(&self.path, io_err(e));
        match self.sink.as_mut() {
            Some(Sink::Csv(w)) => w.finish().map_err(fail)?,
            Some(Sink::CsvGz(w, gz)) => {
                w.finish().map_err(fail)?;
                gz.finish().map_err(|e| Error::io(&self.path, e))?;
            }
            Some(Sink::Parquet(w)) => {
                w.finish().map_err(fail)?;
            }
            None => return Err(Error::Internal("nothing was written".into())),
        }
        self.sink = None;
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| Error::Internal("writer finished twice".into()))?;
        tmp.commit(&self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// Whether a CSV output's name asks for gzip (`.gz`, as `.csv.gz`).
fn gzipped(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        // The sink's file is closed before its temporary path is removed.
        self.sink = None;
        self.tmp = None;
    }
}

pub enum TableColumn {
    F64(Vec<f64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    /// Integers, some missing.
    OptI64(Vec<Option<i64>>),
    Str(Vec<Option<String>>),
    /// A list of integers per row (a Parquet list column; `a|b|c` text in CSV).
    ListI64(Vec<Vec<i64>>),
    /// A list of numbers per row, likewise.
    ListF64(Vec<Vec<f64>>),
    /// An input column copied as read, with its type (`Frame::pass_through`).
    Passed(Passed),
}

/// An input column as read from its file, to be written out unchanged.
pub struct Passed(pub(super) Series);

impl TableColumn {
    /// The values at `rows` (indices into this column), in that order.
    pub fn take(&self, rows: &[u32]) -> Result<TableColumn> {
        fn pick<T: Clone>(v: &[T], rows: &[u32]) -> Vec<T> {
            rows.iter().map(|&i| v[i as usize].clone()).collect()
        }
        if let Some(&bad) = rows.iter().find(|&&i| i as usize >= self.len()) {
            return Err(crate::error::Error::Internal(format!(
                "row {bad} is past a column of {} rows",
                self.len()
            )));
        }
        Ok(match self {
            TableColumn::F64(v) => TableColumn::F64(pick(v, rows)),
            TableColumn::U32(v) => TableColumn::U32(pick(v, rows)),
            TableColumn::U64(v) => TableColumn::U64(pick(v, rows)),
            TableColumn::I32(v) => TableColumn::I32(pick(v, rows)),
            TableColumn::I64(v) => TableColumn::I64(pick(v, rows)),
            TableColumn::OptI64(v) => TableColumn::OptI64(pick(v, rows)),
            TableColumn::ListF64(v) => TableColumn::ListF64(pick(v, rows)),
            TableColumn::Str(v) => TableColumn::Str(pick(v, rows)),
            TableColumn::ListI64(v) => TableColumn::ListI64(pick(v, rows)),
            TableColumn::Passed(Passed(s)) => TableColumn::Passed(Passed(
                s.take_slice(rows)
                    .map_err(|e| crate::error::Error::Internal(e.to_string()))?,
            )),
        })
    }

    fn len(&self) -> usize {
        match self {
            TableColumn::F64(v) => v.len(),
            TableColumn::U32(v) => v.len(),
            TableColumn::U64(v) => v.len(),
            TableColumn::I32(v) => v.len(),
            TableColumn::I64(v) => v.len(),
            TableColumn::OptI64(v) => v.len(),
            TableColumn::ListF64(v) => v.len(),
            TableColumn::Str(v) => v.len(),
            TableColumn::ListI64(v) => v.len(),
            TableColumn::Passed(Passed(s)) => s.len(),
        }
    }
}
