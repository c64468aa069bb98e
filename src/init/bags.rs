//! Columns `init` declares as multi-valued: Parquet list columns, and text columns whose cells
//! are mostly token lists (`a|b|c`), with `token:weight` pairs recognised.

use crate::error::Result;
use crate::source::{Cat, Frame};

/// The token separator `init` recognises in text cells.
pub(super) const SEPARATOR: &str = "|";

/// A share of the non-empty cells holding the separator above which a text column is a list.
const LIST_SHARE: f64 = 0.3;

/// What `init` saw of a column of token lists.
pub(super) struct BagProfile {
    /// Whether the column is text cut at `SEPARATOR` (else a Parquet list column).
    pub(super) text: bool,
    /// Whether every token is written `token:weight`.
    pub(super) weighted: bool,
    pub(super) mean_len: f64,
    pub(super) max_len: usize,
    pub(super) distinct: usize,
    pub(super) empty: usize,
    pub(super) rows: usize,
}

/// The column's profile when it holds token lists; `None` when it does not. A text column is a
/// list when at least 30% of its non-empty cells hold `|` (and `|` does not separate the file's
/// columns).
pub(super) fn bag_profile(
    frame: &Frame,
    col: &str,
    file_separator: u8,
) -> Result<Option<BagProfile>> {
    let column = frame.column(col)?;
    let text = !column.is_list();
    if text {
        if file_separator == b'|' {
            return Ok(None);
        }
        let (mut cells, mut lists) = (0usize, 0usize);
        column.visit_str(|_, v| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                cells += 1;
                lists += v.contains(SEPARATOR) as usize;
            }
            Ok(())
        })?;
        if cells == 0 || (lists as f64) < LIST_SHARE * cells as f64 {
            return Ok(None);
        }
    }
    let mut distinct = std::collections::HashSet::new();
    let (mut tokens, mut max_len, mut empty, mut rows, mut weighted) = (0usize, 0, 0, 0, true);
    column.visit_lists(SEPARATOR, |_, list| {
        rows += 1;
        let Some(list) = list else { return Ok(()) };
        empty += list.is_empty() as usize;
        tokens += list.len();
        max_len = max_len.max(list.len());
        for &c in list {
            let token = match c {
                Cat::Str(t) => {
                    let pair = t.rsplit_once(':');
                    weighted &= pair.is_some_and(|(_, w)| w.parse::<f64>().is_ok());
                    pair.map_or(t, |(token, _)| token).to_string()
                }
                Cat::Int(x) => {
                    weighted = false;
                    x.to_string()
                }
                Cat::Null => continue,
            };
            distinct.insert(token);
        }
        Ok(())
    })?;
    Ok(Some(BagProfile {
        text,
        weighted: weighted && text && tokens > 0,
        mean_len: tokens as f64 / rows.max(1) as f64,
        max_len,
        distinct: distinct.len(),
        empty,
        rows,
    }))
}
