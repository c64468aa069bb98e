//! How a source's values are read as text (whitespace trimming, null markers), and the one
//! row numbering every message and output uses.

use std::path::{Path, PathBuf};

/// A file's cleaning rules: what a column of it applies to each value it visits.
pub struct Cleaning {
    pub(super) file: PathBuf,
    pub(super) trim: bool,
    pub(super) nulls: Vec<String>,
    /// A source of several files: each part's file and its first row in the whole table.
    pub(super) parts: Vec<(PathBuf, usize)>,
    /// A frame of some of a file's rows (`Frame::rows`): the file's index of its row 0.
    pub(super) offset: usize,
}

impl Cleaning {
    /// The rules of `src` (a text file's trimming and null markers; none for Parquet, whose
    /// values are read as written), for its file as a whole.
    pub fn of(src: &crate::config::FileSource) -> Self {
        let text = src.format == crate::config::FileFormat::Csv;
        Cleaning {
            file: src.path.clone(),
            trim: text && src.csv.trim_whitespace,
            nulls: if text {
                src.csv.null_values.clone()
            } else {
                Vec::new()
            },
            parts: Vec::new(),
            offset: 0,
        }
    }

    /// Whether values are trimmed of spaces and tabs.
    pub fn trims(&self) -> bool {
        self.trim
    }

    /// The texts that mark a missing value.
    pub fn null_markers(&self) -> &[String] {
        &self.nulls
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// A value (or a token of one) with its spaces and tabs trimmed when the source says so.
    pub fn trimmed<'a>(&self, v: &'a str) -> &'a str {
        if self.trim {
            v.trim_matches([' ', '\t'])
        } else {
            v
        }
    }

    /// The file holding row `i` of the table, and the row's index in that file.
    pub fn locate(&self, i: usize) -> (&Path, usize) {
        match self.parts.partition_point(|&(_, start)| start <= i) {
            0 => (&self.file, self.offset + i),
            k => {
                let (file, start) = &self.parts[k - 1];
                (file, i - start)
            }
        }
    }

    /// A value as every feature reads it: trimmed when the source says so, `None` when it is
    /// missing or one of the source's null markers.
    pub fn clean<'a>(&self, v: Option<&'a str>) -> Option<&'a str> {
        let v = self.trimmed(v?);
        if self.nulls.iter().any(|n| n == v) {
            None
        } else {
            Some(v)
        }
    }
}

impl Cleaning {
    /// A list cell as a multi-valued feature reads it: trimmed when the source says so; the
    /// empty cell is the empty list (the only way a text file can write one), even where the
    /// empty string is a null marker for other features; the source's other markers are
    /// missing.
    pub fn clean_list<'a>(&self, v: Option<&'a str>) -> Option<&'a str> {
        match self.trimmed(v?) {
            "" => Some(""),
            v if self.nulls.iter().any(|n| n == v) => None,
            v => Some(v),
        }
    }
}

/// The file's data row of row index `i`, counted from 1 with the header not counted: the
/// numbering of every row number funnel prints or writes (data errors, `predict --split`'s
/// `row`, `generate`'s `row_id`).
pub fn row_number(i: usize) -> usize {
    i + 1
}
