//! A pass over a CSV file's bytes before polars parses it, to name the line of every structural
//! fault polars would pad silently or report without a place: a record with fewer or more
//! fields than the header, a quote never closed, a blank line between records. Blank lines at
//! the end are allowed (UCI's own adult.data ends with one). Gzip files are scanned through
//! their decompressed bytes.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// What the scan found: the data records (header and trailing blank lines not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub rows: usize,
    /// The cells written as a quote after the separator's space (`a, "b"`), which a CSV parser
    /// reads with their spaces and quotes: `trim_whitespace` unquotes these and only these.
    pub spaced: SpacedQuotes,
}

/// Where fields open with spaces and then a quote: header columns, and per column a bit per
/// data row (only for columns that have one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpacedQuotes {
    pub header: Vec<usize>,
    pub cells: std::collections::BTreeMap<usize, Vec<u64>>,
}

impl SpacedQuotes {
    /// Whether data row `row` (0-based) of column `column` is one.
    pub fn has(&self, column: usize, row: usize) -> bool {
        self.cells
            .get(&column)
            .and_then(|bits| bits.get(row / 64))
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    }

    fn mark(&mut self, column: usize, row: usize) {
        let bits = self.cells.entry(column).or_default();
        if bits.len() <= row / 64 {
            bits.resize(row / 64 + 1, 0);
        }
        bits[row / 64] |= 1 << (row % 64);
    }
}

/// The scanner's state between buffers.
struct Scanner {
    sep: u8,
    header: bool,
    /// Fields every record must have (the first record's count).
    width: Option<usize>,
    line: usize,
    /// The line the current record started on.
    record_line: usize,
    fields: usize,
    /// Whether the current record has any byte besides line endings.
    nonblank: bool,
    at_field_start: bool,
    /// The field so far holds only spaces and tabs (a quote now opens no quoted field, but
    /// looks as if it did: `a, "b,c"`).
    field_blank: bool,
    /// The record has such a quote: its field count then names the cause.
    spaced_quote: bool,
    /// Every such quote of the file.
    spaced: SpacedQuotes,
    in_quotes: bool,
    /// Inside quotes, a quote was just seen: a second one is an escaped quote, anything else
    /// closes the field.
    quote_pending: bool,
    quote_line: usize,
    /// Blank lines seen since the last record (an error if another record follows).
    blank_since: Option<usize>,
    records: usize,
}

/// Scan `file` (plain or gzip CSV) with separator `sep`.
pub fn scan(file: &Path, sep: u8, header: bool) -> Result<Shape> {
    let mut input = super::open_text(file)?;
    let mut s = Scanner {
        sep,
        header,
        width: None,
        line: 1,
        record_line: 1,
        fields: 1,
        nonblank: false,
        at_field_start: true,
        field_blank: true,
        spaced_quote: false,
        spaced: SpacedQuotes::default(),
        in_quotes: false,
        quote_pending: false,
        quote_line: 0,
        blank_since: None,
        records: 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    // The bytes of a UTF-8 character cut by the end of the previous buffer.
    let mut cut: Vec<u8> = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::data(file, format!("cannot read: {e}"))
                    .with_hint("a truncated or corrupt gzip file reads this way"));
            }
        };
        let joined;
        let chunk: &[u8] = if cut.is_empty() {
            &buf[..n]
        } else {
            joined = [std::mem::take(&mut cut).as_slice(), &buf[..n]].concat();
            &joined
        };
        // polars refuses text that is not UTF-8 with no place ("invalid utf-8 sequence"):
        // find the line and the column here, where both are known.
        match std::str::from_utf8(chunk) {
            Ok(_) => s.bytes(file, chunk)?,
            Err(e) => {
                let good = e.valid_up_to();
                s.bytes(file, &chunk[..good])?;
                match e.error_len() {
                    None => cut = chunk[good..].to_vec(),
                    Some(_) => return Err(s.not_utf8(file, chunk[good])),
                }
            }
        }
    }
    if let Some(&b) = cut.first() {
        return Err(s.not_utf8(file, b));
    }
    s.finish(file)
}

/// The `index`-th (0-based) field of the file's first line, quotes removed.
fn header_field(file: &Path, sep: u8, index: usize) -> Option<String> {
    let mut first = Vec::new();
    std::io::BufRead::read_until(
        &mut std::io::BufReader::new(super::open_text(file).ok()?.take(1 << 20)),
        b'\n',
        &mut first,
    )
    .ok()?;
    let (mut fields, mut field, mut quoted) = (Vec::new(), Vec::new(), false);
    let line = first.strip_suffix(b"\n").unwrap_or(&first);
    for &b in line.strip_suffix(b"\r").unwrap_or(line) {
        match b {
            b'"' => quoted = !quoted,
            b if b == sep && !quoted => fields.push(std::mem::take(&mut field)),
            b => field.push(b),
        }
    }
    fields.push(field);
    // As the column is named once read (`trim_whitespace` or not: no name starts with a space).
    fields.get(index).map(|f| {
        String::from_utf8_lossy(f)
            .trim_matches([' ', '\t'])
            .to_string()
    })
}

impl Scanner {
    /// The error for a byte that starts no UTF-8 character, at the scanner's place.
    fn not_utf8(&self, file: &Path, byte: u8) -> Error {
        let what = format!(
            "line {}, field {}: byte 0x{byte:02X} is not UTF-8 text",
            self.line, self.fields
        );
        let hint = "funnel reads CSV files as UTF-8; this one looks Latin-1 or Windows-1252 (é is 0xE9 there): convert it, e.g. `iconv -f latin1 -t utf-8 IN.csv > OUT.csv`";
        let in_header = self.header && self.records == 0;
        match header_field(file, self.sep, self.fields - 1) {
            Some(column) if !in_header => Error::data_at(
                file,
                &column,
                Some(self.records + usize::from(!self.header)),
                what,
            )
            .with_hint(hint),
            _ => Error::data(file, format!("{what} (in the header)")).with_hint(hint),
        }
    }

    fn bytes(&mut self, file: &Path, mut b: &[u8]) -> Result<()> {
        while !b.is_empty() {
            if self.in_quotes {
                if self.quote_pending {
                    self.quote_pending = false;
                    if b[0] == b'"' {
                        b = &b[1..];
                        continue;
                    }
                    self.in_quotes = false;
                    continue;
                }
                match memchr::memchr2(b'"', b'\n', b) {
                    Some(i) => {
                        if b[i] == b'\n' {
                            self.line += 1;
                        } else {
                            self.quote_pending = true;
                        }
                        b = &b[i + 1..];
                    }
                    None => b = &[],
                }
                continue;
            }
            let blank = |bytes: &[u8]| bytes.iter().all(|&c| c == b' ' || c == b'\t');
            let Some(i) = memchr::memchr3(self.sep, b'"', b'\n', b) else {
                self.nonblank |= b.iter().any(|&c| c != b'\r');
                self.at_field_start &= b.is_empty();
                self.field_blank &= blank(b);
                b = &[];
                continue;
            };
            self.nonblank |= b[..i].iter().any(|&c| c != b'\r');
            self.field_blank &= blank(&b[..i]);
            if i > 0 {
                self.at_field_start = false;
            }
            match b[i] {
                b'\n' => {
                    self.end_record(file)?;
                    self.line += 1;
                }
                b'"' if self.at_field_start => {
                    self.in_quotes = true;
                    self.quote_line = self.line;
                    self.nonblank = true;
                    self.at_field_start = false;
                }
                b'"' => {
                    if self.field_blank {
                        self.spaced_quote = true;
                        let column = self.fields - 1;
                        match (self.header, self.records) {
                            (true, 0) => self.spaced.header.push(column),
                            (true, r) => self.spaced.mark(column, r - 1),
                            (false, r) => self.spaced.mark(column, r),
                        }
                    }
                    self.field_blank = false;
                    self.nonblank = true;
                }
                _ => {
                    self.fields += 1;
                    self.nonblank = true;
                    self.at_field_start = true;
                    self.field_blank = true;
                }
            }
            b = &b[i + 1..];
        }
        Ok(())
    }

    fn end_record(&mut self, file: &Path) -> Result<()> {
        let (fields, line) = (self.fields, self.record_line);
        (self.fields, self.at_field_start, self.record_line) = (1, true, self.line + 1);
        self.field_blank = true;
        let spaced_quote = std::mem::take(&mut self.spaced_quote);
        // A blank line is a record (one missing value) only in a one-column file.
        if !std::mem::take(&mut self.nonblank) && self.width != Some(1) {
            self.blank_since.get_or_insert(line);
            return Ok(());
        }
        let data_row = self.records + usize::from(!self.header);
        if let Some(blank) = self.blank_since.take() {
            return Err(Error::data(
                file,
                format!("a blank line (line {blank}) lies between records"),
            )
            .at_row(data_row)
            .with_hint("remove the blank line; only blank lines at the end are allowed"));
        }
        let width = *self.width.get_or_insert(fields);
        if fields != width {
            let what = if self.header && self.records > 0 {
                "the header"
            } else {
                "the first row"
            };
            return Err(Error::data(
                file,
                format!(
                    "{fields} field(s) where {what} has {width} (line {line}); a row is never padded or cut"
                ),
            )
            .at_row(data_row)
            .with_hint(if spaced_quote {
                format!(
                    "a field quoted after a space (`{sep} \"a{sep}b\"`) is not a quoted field to the CSV reader, so the `{sep}` inside it splits it: write the quote right after the separator (`{sep}\"a{sep}b\"`)",
                    sep = self.sep as char
                )
            } else {
                format!(
                    "check the row for a missing or extra `{}`; quote fields that contain it",
                    self.sep as char
                )
            }));
        }
        self.records += 1;
        Ok(())
    }

    fn finish(mut self, file: &Path) -> Result<Shape> {
        if self.in_quotes && !self.quote_pending {
            return Err(Error::data(
                file,
                format!("a quote opened on line {} is never closed", self.quote_line),
            )
            .with_hint("close the quote; a quote inside a quoted field is written twice (\"\")"));
        }
        self.in_quotes = false;
        if self.nonblank {
            self.end_record(file)?;
        }
        Ok(Shape {
            rows: self.records.saturating_sub(usize::from(self.header)),
            spaced: self.spaced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Result<Shape> {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.csv");
        std::fs::write(&f, text).unwrap();
        scan(&f, b',', true)
    }

    fn message(text: &str) -> String {
        shape(text).unwrap_err().to_string()
    }

    #[test]
    fn well_formed_files() {
        assert_eq!(shape("a,b\n1,2\n3,4\n").unwrap().rows, 2);
        assert_eq!(shape("a,b\n1,2\n3,4").unwrap().rows, 2, "no final newline");
        assert_eq!(shape("a,b\r\n1,2\r\n").unwrap().rows, 1, "CRLF");
        assert_eq!(
            shape("a,b\n1,2\n\n\r\n").unwrap().rows,
            1,
            "trailing blank lines"
        );
        assert_eq!(
            shape("a,b\n\"x,y\",2\n").unwrap().rows,
            1,
            "quoted separator"
        );
        assert_eq!(
            shape("a,b\n\"x\"\"y\nz\",2\n").unwrap().rows,
            1,
            "escaped quote, newline"
        );
        assert_eq!(
            shape("a,b\nx\"y,2\n").unwrap().rows,
            1,
            "a quote inside a field"
        );
        assert_eq!(shape("a,b\n").unwrap().rows, 0);
        assert_eq!(shape("").unwrap().rows, 0);
        assert_eq!(shape("a,b\n,\n").unwrap().rows, 1, "two empty fields");
        assert_eq!(
            shape("a\n1\n\n2\n\n").unwrap().rows,
            4,
            "one column: blank is missing"
        );
    }

    #[test]
    fn faults_name_their_row_and_line() {
        assert!(
            message("a,b,c\n1,2,3\n1,2\n")
                .contains(", row 2: 2 field(s) where the header has 3 (line 3)"),
            "{}",
            message("a,b,c\n1,2,3\n1,2\n")
        );
        assert!(message("a,b\n1,2\n1,2,3\n").contains("row 2: 3 field(s) where the header has 2"));
        // A quote after the separator's space opens no quoted field: the hint says so.
        let m = message("a,b\n1, \"x,y\"\n");
        assert!(
            m.contains("3 field(s)") && m.contains("write the quote right after"),
            "{m}"
        );
        assert!(!message("a,b\n1,2,3\n").contains("quote right after"));
        assert!(
            message("a,b\n1,2\n\n3,4\n")
                .contains("row 2: a blank line (line 3) lies between records")
        );
        let m = message("a,b\n1,2\n\"3,4\n5,6\n");
        assert!(
            m.contains("a quote opened on line 3 is never closed"),
            "{m}"
        );
        assert!(m.len() < 300, "{m}");
    }

    #[test]
    fn gzip_is_scanned_decompressed() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,2\n3\n").unwrap();
        std::fs::write(&f, gz.finish().unwrap()).unwrap();
        let m = scan(&f, b',', true).unwrap_err().to_string();
        assert!(
            m.contains("row 2: 1 field(s) where the header has 2"),
            "{m}"
        );
        // Truncated: half the bytes.
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
        assert!(scan(&f, b',', true).is_err());
    }
}
