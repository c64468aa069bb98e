//! The error type of the whole crate: every failure a user can cause names where it happened and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a YAML file a problem sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlSpot {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted YAML path such as `stages[1].label.column`; `.` for the document root.
    pub path: String,
}

impl fmt::Display for YamlSpot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: `{}`",
            self.file.display(),
            self.line,
            self.column,
            self.path
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pipeline or generator spec that cannot be accepted.
    #[error("{spot}: {message}{}", hint_suffix(.hint))]
    Config {
        spot: YamlSpot,
        message: String,
        hint: Option<String>,
    },
    /// Data that does not fit the pipeline: names the file, the column and the first bad row.
    #[error("{}{}: {message}{}", .file.display(), data_place(.column, .row), hint_suffix(.hint))]
    Data {
        file: PathBuf,
        column: Option<String>,
        /// 1-based data row (header not counted).
        row: Option<usize>,
        message: String,
        hint: Option<String>,
    },
    /// A run directory whose files are missing or do not belong together.
    #[error("run directory {}: {message}{}", .dir.display(), hint_suffix(.hint))]
    Run {
        dir: PathBuf,
        message: String,
        hint: Option<String>,
    },
    /// Bad command-line usage not caught by the argument parser.
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A failure inside the tensor library: a bug in funnel, not in the user's input.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("internal error: {0}")]
    Internal(String),
    /// Several problems found in one pass (`validate` and every load report them all), each
    /// with its own place and hint. Never empty, never holding one error (that one is returned
    /// itself).
    #[error("{}", several(.0))]
    Several(Vec<Error>),
    /// Training stopped by a signal after writing a checkpoint.
    #[error("{message}")]
    Interrupted { signal: i32, message: String },
    /// Training diverged: the batch loss at `epoch`, `step` and what it was judged against; the
    /// run in `dir` is left unfinished.
    #[error(
        "training diverged in epoch {epoch}, step {step}: the batch loss is {loss:.4e}, {against}; the run in {} is left unfinished\n  hint: lower `train.optimizer.lr` or `train.embedding_optimizer.lr`, and give numeric features a `transform` that scales them (`standardize`, `log1p`, `quantile_buckets`), then train again",
        .dir.display()
    )]
    Diverged {
        dir: PathBuf,
        epoch: usize,
        step: usize,
        loss: f64,
        against: String,
    },
}

fn several(errors: &[Error]) -> String {
    let mut s = format!("{} problems found", errors.len());
    for (i, e) in errors.iter().enumerate() {
        s.push_str(&format!("\n[{}/{}] {e}", i + 1, errors.len()));
    }
    s
}

/// Gather errors into one: none is `Ok`, one is itself, more are `Several` (nested lists
/// flattened).
pub fn gather(errors: Vec<Error>) -> Result<()> {
    let mut flat = Vec::with_capacity(errors.len());
    for e in errors {
        match e {
            Error::Several(inner) => flat.extend(inner),
            e => flat.push(e),
        }
    }
    match flat.len() {
        0 => Ok(()),
        1 => Err(flat.remove(0)),
        _ => Err(Error::Several(flat)),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("\n  hint: {h}"),
        None => String::new(),
    }
}

fn data_place(column: &Option<String>, row: &Option<usize>) -> String {
    let mut s = String::new();
    if let Some(c) = column {
        s.push_str(&format!(": column `{c}`"));
    }
    if let Some(r) = row {
        s.push_str(&format!(", row {r}"));
    }
    s
}

impl Error {
    /// Exit status: 2 for anything the user can fix (input, config, data, usage), 1 for our own failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. }
            | Error::Data { .. }
            | Error::Run { .. }
            | Error::Usage(_)
            | Error::Diverged { .. }
            | Error::Io { .. } => 2,
            Error::Several(errors) => errors.iter().map(Error::exit_code).max().unwrap_or(2),
            Error::Tensor(_) | Error::Internal(_) => 1,
            // The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM).
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn data(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Data {
            file: file.as_ref().to_path_buf(),
            column: None,
            row: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn data_at(
        file: impl AsRef<Path>,
        column: &str,
        row: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Data {
            file: file.as_ref().to_path_buf(),
            column: Some(column.to_string()),
            row,
            message: message.into(),
            hint: None,
        }
    }

    pub fn run(dir: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Run {
            dir: dir.as_ref().to_path_buf(),
            message: message.into(),
            hint: None,
        }
    }

    /// Attach a hint to an error that can carry one; other errors are returned unchanged.
    /// A data error about one 1-based data row of its file (no column).
    pub fn at_row(mut self, data_row: usize) -> Self {
        if let Error::Data { row, .. } = &mut self {
            *row = Some(data_row);
        }
        self
    }

    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        if let Error::Config { hint, .. } | Error::Data { hint, .. } | Error::Run { hint, .. } =
            &mut self
        {
            *hint = Some(text.into());
        }
        self
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
