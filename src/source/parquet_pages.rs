//! A check of a Parquet column's page headers before polars decodes it: every size and count a
//! header claims is bounded by its row group, so a corrupt header is an error, not an abort.
//!
//! polars' page decoder reserves memory for as many values as a page header announces. A header
//! announcing about 2^61 values (the Parquet fuzzer made one) makes that reservation fail, and a
//! failed allocation aborts the process: no `catch_unwind` can turn it into an error. So before
//! a column is decoded, its pages are walked here, reading only the headers (the page bodies are
//! skipped), and each claim is held against what the file can hold:
//! - a page lies inside its column chunk, and its sizes are not negative;
//! - a data page has no more values (and, in version 2, rows and nulls) than its row group has
//!   rows in a flat column, where each row is one value; in a list column (a multi-valued
//!   feature's), where a row holds any number, no more than `LIST_VALUES_PER_ROW` per row of
//!   its row group;
//! - a dictionary page has no more entries than bytes (every encoded entry takes at least one);
//! - the data pages of a chunk hold exactly the rows its row group announces (a list column's
//!   at least as many values as rows: an empty or missing list still takes one).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use polars::io::parquet::read::FileMetadata;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

use crate::error::{Error, Result};

/// The most bytes a page header may take (polars' own reader allows the same order).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// The most values a list column's pages may hold per row of their row group, on average: far
/// more than any token bag a model reads (`max_len` truncates after reading), far less than the
/// absurd counts a corrupt header claims.
pub const LIST_VALUES_PER_ROW: u64 = 4096;

/// Check the page headers of column `name` in every row group of `file`.
pub fn check(file: &Path, metadata: &FileMetadata, name: &str) -> Result<()> {
    let bad = |what: String| {
        Error::data_at(file, name, None, format!("the file is malformed: {what}"))
            .with_hint(super::MALFORMED)
    };
    let mut reader = BufReader::new(
        File::open(file).map_err(|e| Error::data(file, format!("cannot open: {e}")))?,
    );
    for (g, group) in metadata.row_groups.iter().enumerate() {
        let group_rows = group.num_rows() as u64;
        for chunk in group.columns_under_root_iter(name).into_iter().flatten() {
            let list = chunk.descriptor().descriptor.max_rep_level > 0;
            // What the values of a page and of the chunk are held to.
            let rows = match list {
                true => group_rows.saturating_mul(LIST_VALUES_PER_ROW),
                false => group_rows,
            };
            let range = chunk.byte_range();
            let mut at = range.start;
            reader
                .seek(SeekFrom::Start(at))
                .map_err(|e| bad(format!("row group {g} cannot be read ({e})")))?;
            let mut values = 0u64;
            while at < range.end {
                let page = read_header(&mut reader, range.end - at)
                    .map_err(|e| bad(format!("row group {g} has a page header that {e}")))?;
                let claims =
                    Claims::of(&page).map_err(|e| bad(format!("a page of row group {g} {e}")))?;
                let body = claims.compressed;
                let header_end = reader
                    .stream_position()
                    .map_err(|e| bad(format!("row group {g} cannot be read ({e})")))?;
                if header_end + body > range.end {
                    return Err(bad(format!(
                        "a page of row group {g} claims {body} bytes, more than its column chunk holds"
                    )));
                }
                claims
                    .within(rows, group_rows)
                    .map_err(|e| bad(format!("a page of row group {g} {e}")))?;
                values += claims.data_values;
                if values > rows {
                    return Err(bad(format!(
                        "the pages of row group {g} hold more values than its {rows} rows"
                    )));
                }
                reader
                    .seek_relative(body as i64)
                    .map_err(|e| bad(format!("row group {g} cannot be read ({e})")))?;
                at = header_end + body;
            }
            if (!list && values != group_rows) || values < group_rows {
                return Err(bad(format!(
                    "row group {g} announces {group_rows} rows, its pages hold {values} values"
                )));
            }
        }
    }
    Ok(())
}

/// Read one page header of at most `room` bytes.
fn read_header(reader: &mut impl Read, room: u64) -> std::result::Result<PageHeader, String> {
    let room = room.min(MAX_HEADER_BYTES as u64);
    let mut protocol = TCompactInputProtocol::new(reader.take(room), MAX_HEADER_BYTES);
    PageHeader::read_from_in_protocol(&mut protocol).map_err(|e| format!("cannot be read ({e})"))
}

/// What one page header claims, in checked units.
#[derive(Debug, PartialEq)]
struct Claims {
    /// Bytes of the page body in the file.
    compressed: u64,
    /// Bytes of the page body once decompressed.
    uncompressed: u64,
    /// Values of a data page (0 for other pages).
    data_values: u64,
    /// Rows and nulls of a version-2 data page.
    v2_rows_nulls: Option<(u64, u64)>,
    /// Entries of a dictionary page.
    dictionary: Option<u64>,
}

impl Claims {
    fn of(page: &PageHeader) -> std::result::Result<Claims, String> {
        let size = |v: i32, what: &str| {
            u64::try_from(v).map_err(|_| format!("claims a negative {what} ({v})"))
        };
        let mut claims = Claims {
            compressed: size(page.compressed_page_size, "size")?,
            uncompressed: size(page.uncompressed_page_size, "size")?,
            data_values: 0,
            v2_rows_nulls: None,
            dictionary: None,
        };
        let missing = |what: &str| format!("is marked as a {what} but has no {what} header");
        match page.type_ {
            PageType::DATA_PAGE => {
                let h = page
                    .data_page_header
                    .as_ref()
                    .ok_or_else(|| missing("data page"))?;
                claims.data_values = size(h.num_values, "number of values")?;
            }
            PageType::DATA_PAGE_V2 => {
                let h = page
                    .data_page_header_v2
                    .as_ref()
                    .ok_or_else(|| missing("data page"))?;
                claims.data_values = size(h.num_values, "number of values")?;
                claims.v2_rows_nulls = Some((
                    size(h.num_rows, "number of rows")?,
                    size(h.num_nulls, "number of nulls")?,
                ));
            }
            PageType::DICTIONARY_PAGE => {
                let h = page
                    .dictionary_page_header
                    .as_ref()
                    .ok_or_else(|| missing("dictionary page"))?;
                claims.dictionary = Some(size(h.num_values, "number of entries")?);
            }
            PageType::INDEX_PAGE => {}
            PageType(t) => return Err(format!("has an unknown page type ({t})")),
        }
        Ok(claims)
    }

    /// Hold the claims against a row group of `rows` rows whose column may hold `values`
    /// values (`rows` in a flat column).
    fn within(&self, values: u64, rows: u64) -> std::result::Result<(), String> {
        if self.data_values > values {
            return Err(match values == rows {
                true => format!(
                    "claims {} values, more than its row group's {rows} rows",
                    self.data_values
                ),
                false => format!(
                    "claims {} values, more than {LIST_VALUES_PER_ROW} a row in a row group of {rows} rows",
                    self.data_values
                ),
            });
        }
        if let Some((page_rows, nulls)) = self.v2_rows_nulls
            && (page_rows > rows || nulls > self.data_values)
        {
            return Err(format!(
                "claims {page_rows} rows and {nulls} nulls in {} values of a row group of {rows} rows",
                self.data_values
            ));
        }
        if let Some(entries) = self.dictionary
            && entries > self.uncompressed
        {
            return Err(format!(
                "claims a dictionary of {entries} entries in {} bytes",
                self.uncompressed
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_parquet_format::{DataPageHeader, DataPageHeaderV2, DictionaryPageHeader, Encoding};

    fn page(type_: PageType, compressed: i32, uncompressed: i32) -> PageHeader {
        PageHeader::new(
            type_,
            uncompressed,
            compressed,
            None,
            None,
            None,
            None,
            None,
        )
    }

    fn data(values: i32) -> PageHeader {
        let mut p = page(PageType::DATA_PAGE, 10, 20);
        p.data_page_header = Some(DataPageHeader::new(
            values,
            Encoding::PLAIN,
            Encoding::RLE,
            Encoding::RLE,
            None,
        ));
        p
    }

    #[test]
    fn data_pages_are_bounded_by_their_row_group() {
        let c = Claims::of(&data(30)).unwrap();
        assert_eq!(c.data_values, 30);
        assert!(c.within(30, 30).is_ok());
        let e = c.within(29, 29).unwrap_err();
        assert_eq!(e, "claims 30 values, more than its row group's 29 rows");
        // A list column's page may hold up to 4096 values a row.
        assert!(c.within(29 * LIST_VALUES_PER_ROW, 29).is_ok());
        let e = Claims::of(&data(4097))
            .unwrap()
            .within(4096, 1)
            .unwrap_err();
        assert_eq!(
            e,
            "claims 4097 values, more than 4096 a row in a row group of 1 rows"
        );
    }

    #[test]
    fn negative_counts_and_sizes_are_refused() {
        assert_eq!(
            Claims::of(&data(-1)).unwrap_err(),
            "claims a negative number of values (-1)"
        );
        assert_eq!(
            Claims::of(&page(PageType::INDEX_PAGE, -8, 0)).unwrap_err(),
            "claims a negative size (-8)"
        );
        assert_eq!(
            Claims::of(&page(PageType::DATA_PAGE, 1, 1)).unwrap_err(),
            "is marked as a data page but has no data page header"
        );
        assert_eq!(
            Claims::of(&page(PageType(7), 1, 1)).unwrap_err(),
            "has an unknown page type (7)"
        );
    }

    #[test]
    fn version_two_and_dictionary_claims_are_bounded() {
        let mut p = page(PageType::DATA_PAGE_V2, 10, 20);
        p.data_page_header_v2 = Some(DataPageHeaderV2::new(
            5,
            6,
            5,
            Encoding::PLAIN,
            0,
            0,
            None,
            None,
        ));
        let e = Claims::of(&p).unwrap().within(10, 10).unwrap_err();
        assert_eq!(
            e,
            "claims 5 rows and 6 nulls in 5 values of a row group of 10 rows"
        );
        let mut d = page(PageType::DICTIONARY_PAGE, 10, 20);
        d.dictionary_page_header = Some(DictionaryPageHeader::new(21, Encoding::PLAIN, None));
        let e = Claims::of(&d).unwrap().within(1, 1).unwrap_err();
        assert_eq!(e, "claims a dictionary of 21 entries in 20 bytes");
        d.dictionary_page_header = Some(DictionaryPageHeader::new(20, Encoding::PLAIN, None));
        assert!(Claims::of(&d).unwrap().within(1, 1).is_ok());
    }
}
