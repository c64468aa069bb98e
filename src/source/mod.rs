//! Data files on disk: reading CSV (also gzip) and Parquet into a `Frame`, visiting its columns,
//! and writing tables. The only module that touches polars.

mod column;
mod frame;
mod write;

pub use column::{Cat, Column};
pub use frame::Frame;
pub use write::{TableColumn, TableWriter, write_table};

use std::path::Path;
use std::time::Instant;

use polars::prelude::PolarsError;

use crate::error::{Error, Result};

fn polars_err(file: &Path, e: PolarsError) -> Error {
    Error::data(file, format!("cannot read: {e}"))
}

fn open(file: &Path) -> Result<std::fs::File> {
    std::fs::File::open(file).map_err(|e| Error::io(file, e))
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
