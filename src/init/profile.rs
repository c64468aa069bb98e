//! What `init` reads off a data file: the CSV separator and spacing from its first lines, and
//! each column's profile (type, distinct values, missing share, spread, frequent values).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::source::Frame;

/// Distinct values counted per column before it is called high-cardinality.
const DISTINCT_CAP: usize = 1_000_000;

/// The separator (the most frequent of `,` `;` tab `|` in the header line, `,` on a tie or
/// none) and whether cells are written `a, b` (to be trimmed), from the first line of a plain
/// or gzip CSV.
pub(super) fn sniff(data: &Path) -> Result<(u8, bool)> {
    let input = crate::source::open_text(data)?;
    let mut first = Vec::new();
    BufReader::new(input.take(1 << 20))
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::io(data, e))?;
    Ok(separator_and_trim(&first))
}

fn separator_and_trim(header: &[u8]) -> (u8, bool) {
    // Only bytes outside double quotes count: `"Last, First"` is one name.
    let mut outside = Vec::with_capacity(header.len());
    let mut quoted = false;
    for &b in header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            outside.push(b);
        }
    }
    let count = |c: u8| outside.iter().filter(|&&b| b == c).count();
    // The most frequent; on a tie, the rarer kind of separator (`;`, tab, `|`) over `,`.
    let mut best = (b',', count(b','));
    for c in [b';', b'\t', b'|'] {
        if count(c) > 0 && count(c) >= best.1 {
            best = (c, count(c));
        }
    }
    let sep = best.0;
    (sep, outside.windows(2).any(|w| w == [sep, b' ']))
}

/// What one column holds.
#[derive(Debug, Clone)]
pub(super) struct Profile {
    pub(super) rows: usize,
    pub(super) missing: usize,
    /// The table row (0-based) of the first missing value: `Frame::error_at` names its file
    /// and row.
    pub(super) first_missing: Option<usize>,
    /// Distinct non-missing values (capped at `DISTINCT_CAP`).
    pub(super) distinct: usize,
    /// Whether every non-missing value parses as a number, and whether all are integers.
    pub(super) numeric: bool,
    pub(super) integer: bool,
    pub(super) min: f64,
    pub(super) median: f64,
    pub(super) max: f64,
    /// Up to three values, the most frequent first (for labels).
    pub(super) top: Vec<(String, usize)>,
    /// The share of the distinct values seen fewer than `RARE` times (a long tail, which one
    /// epoch memorises: docs/tuning.md), and the share of the non-missing rows they hold.
    pub(super) tail: f64,
    pub(super) tail_rows: f64,
}

/// A value seen fewer times than this is rare (the `min_count` `init` writes for a long tail).
pub(super) const RARE: usize = 5;

pub(super) fn profile(frame: &Frame, name: &str) -> Result<Profile> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let (mut missing, mut numeric, mut integer) = (0usize, true, true);
    let mut first_missing = None;
    let mut numbers: Vec<f64> = Vec::new();
    frame.visit_str(name, |i, v| {
        let Some(v) = v else {
            missing += 1;
            first_missing.get_or_insert(i);
            return Ok(());
        };
        let full = seen.len() >= DISTINCT_CAP;
        match seen.get_mut(v) {
            Some(n) => *n += 1,
            None if !full => {
                seen.insert(v.to_string(), 1);
            }
            None => {}
        }
        if counts.len() < 64 || counts.contains_key(v) {
            *counts.entry(v.to_string()).or_default() += 1;
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => {
                integer &= x.fract() == 0.0;
                numbers.push(x);
            }
            _ => numeric = false,
        }
        Ok(())
    })?;
    numbers.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| {
        numbers
            .get(((numbers.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mut top: Vec<(String, usize)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(3);
    let present = frame.len() - missing;
    let rare = seen.values().filter(|&&n| n < RARE);
    let (rare_values, rare_rows) = rare.fold((0usize, 0usize), |(v, r), &n| (v + 1, r + n));
    Ok(Profile {
        tail: rare_values as f64 / seen.len().max(1) as f64,
        tail_rows: rare_rows as f64 / present.max(1) as f64,
        rows: frame.len(),
        missing,
        first_missing,
        distinct: seen.len(),
        numeric: numeric && !numbers.is_empty(),
        integer,
        min: at(0.0),
        median: at(0.5),
        max: at(1.0),
        top,
    })
}

/// A number for a comment: integers as such, others to four decimals.
pub(super) fn short(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_spacing_from_the_header() {
        assert_eq!(separator_and_trim(b"a,b,c\n"), (b',', false));
        assert_eq!(
            separator_and_trim(b"age, workclass, fnlwgt\n"),
            (b',', true)
        );
        assert_eq!(separator_and_trim(b"a;b;c,d\n"), (b';', false));
        assert_eq!(separator_and_trim(b"a\tb\tc\n"), (b'\t', false));
        assert_eq!(separator_and_trim(b"a|b\n"), (b'|', false));
        assert_eq!(separator_and_trim(b"single\n"), (b',', false));
        // Separators inside quotes do not count.
        assert_eq!(
            separator_and_trim(b"\"a,b\";\"c,d\";\"e\"\n"),
            (b';', false)
        );
        assert_eq!(separator_and_trim(b"\"Last, First\",age\n"), (b',', false));
    }

    #[test]
    fn gzip_files_are_sniffed_through_the_compression() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"a; b; c\n1; 2; 3\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(sniff(&path).unwrap(), (b';', true));
    }
}
