//! Data files on disk: reading CSV (also gzip) and Parquet into a `Frame`, visiting its columns,
//! and writing tables. The only module that touches polars.

mod cleaning;
mod column;
mod csv_read;
mod csv_scan;
mod frame;
mod guard;
mod parquet_pages;
mod parts;
mod write;

pub use cleaning::Cleaning;
pub use column::{Cat, Column};
pub use frame::Frame;
pub use parts::{base as source_base, files as source_files, is_pattern};
pub use write::{Passed, TableColumn, TableWriter, write_table};

use std::path::Path;
use std::time::Instant;

use polars::prelude::PolarsError;

use crate::error::{Error, Result};

/// A polars error as a message about `file`: advice meant for polars' Python API is left out,
/// and the text is cut at 300 characters (a parse error can quote the rest of the file).
fn polars_err(file: &Path, e: PolarsError) -> Error {
    let text = e.to_string();
    if text.contains("empty CSV") {
        return Error::data(file, "the file is empty")
            .with_hint("a CSV source needs a header line and at least one row");
    }
    let mut kept: String = text
        .lines()
        .filter(|l| {
            !l.contains("Consider setting")
                && !l.contains("infer_schema_length")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((cut, _)) = kept.char_indices().nth(300) {
        kept.truncate(cut);
        kept.push_str(" [...]");
    }
    Error::data(file, format!("cannot read: {kept}"))
}

/// The hint of every error about a file whose bytes contradict themselves.
const MALFORMED: &str = "the file is corrupt or was not written completely; write it again";

fn open(file: &Path) -> Result<std::fs::File> {
    std::fs::File::open(file).map_err(|e| Error::io(file, e))
}

/// A text file's bytes, decompressed when it is gzip (by its magic bytes, whatever its name).
pub fn open_text(file: &Path) -> Result<Box<dyn std::io::Read>> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, open(file)?);
    let gzip = reader
        .fill_buf()
        .map_err(|e| Error::io(file, e))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
