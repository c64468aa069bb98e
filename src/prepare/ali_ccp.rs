//! The public Ali-CCP raw files (the ESMM paper's data) as one table: each skeleton line
//! (`sample_id,click,buy,common_feature_index,feature_count,feature_list`) joined to its common
//! features (`common_feature_index,feature_count,feature_list`) on `common_feature_index`. A
//! feature list holds entries separated by byte 0x01, each `field_id 0x02 feature_id 0x03 value`.
//!
//! Output columns: `sample_id`, `click`, `buy`, then one column per field of the paper's
//! schema: a single-valued field as its feature id (missing when the row has none), a
//! multi-valued field (`109_14`, `110_14`, `127_14`, `150_14`: a user's 14-day behaviour) as a
//! list of feature ids with a parallel list of values (`<field>_w`), for
//! `features.multi_valued` with `weight_column`.
//!
//! The real files are tens of GB, so the join is streamed with bounded memory: both files are
//! first cut into partitions by a hash of `common_feature_index` (temporary files beside the
//! output), then each partition's common features are held in memory (about the common file's
//! size over the partition count) while its skeleton lines stream past. Rows come out in
//! partition order (deterministic, not the skeleton's). `sample` keeps each skeleton line with
//! that probability, drawn from a hash of its `sample_id` and the seed: a random sample, not a
//! prefix of the skeleton, which is sorted by `common_feature_index`.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::features::fnv1a;
use crate::interrupt::Temp;
use crate::source::{TableColumn, TableWriter};

/// The single-valued fields of the paper's schema, in output order.
pub const SINGLE_FIELDS: [&str; 19] = [
    "101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210",
    "216", "508", "509", "702", "853", "301",
];
/// The multi-valued fields (a user's behaviour over 14 days, each value a weight).
pub const MULTI_FIELDS: [&str; 4] = ["109_14", "110_14", "127_14", "150_14"];

/// Bytes of common features held in memory per partition (the partition count follows).
const PARTITION_BYTES: u64 = 256 << 20;
/// Rows written per chunk.
pub(super) const CHUNK: usize = 50_000;

/// What a preparation read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliCcpSummary {
    /// Skeleton lines read, and kept (by `sample`).
    pub read: usize,
    pub rows: usize,
    /// Rows bought without a click (the funnel's order broken in the log).
    pub buy_without_click: usize,
    /// Rows whose common features were not in the common file.
    pub unmatched: usize,
    /// Entries of fields outside the schema (skipped), and extra entries of single-valued
    /// fields (the first kept).
    pub unknown_entries: usize,
    pub extra_entries: usize,
    pub partitions: usize,
}

impl AliCcpSummary {
    /// Nothing read yet, over `partitions` partitions.
    pub(super) fn empty(partitions: usize) -> Self {
        AliCcpSummary {
            read: 0,
            rows: 0,
            buy_without_click: 0,
            unmatched: 0,
            unknown_entries: 0,
            extra_entries: 0,
            partitions,
        }
    }
}

/// Prepare `skeleton` joined to `common` into `out` (Parquet or CSV by extension), keeping each
/// line with probability `sample` under `seed`.
pub fn ali_ccp(
    skeleton: &Path,
    common: &Path,
    out: &Path,
    sample: f64,
    seed: u64,
) -> Result<AliCcpSummary> {
    let bytes = std::fs::metadata(common)
        .map_err(|e| Error::io(common, e))?
        .len();
    let partitions = bytes.div_ceil(PARTITION_BYTES).clamp(1, 4096) as usize;
    ali_ccp_in(skeleton, common, out, sample, seed, partitions)
}

/// The same with a given partition count (tests force several).
pub fn ali_ccp_in(
    skeleton: &Path,
    common: &Path,
    out: &Path,
    sample: f64,
    seed: u64,
    partitions: usize,
) -> Result<AliCcpSummary> {
    let mut summary = AliCcpSummary::empty(partitions);
    let common_file = common;
    // Pass 1: both files cut into partitions by their join key.
    let common_parts = split(common, out, "common", partitions, 0, |_| true)?;
    let keep = |line: &str| sample >= 1.0 || keep_line(line, sample, seed);
    let skeleton_parts = split(skeleton, out, "skeleton", partitions, 3, keep)?;
    summary.read = skeleton_parts.read;
    // Pass 2: each partition joined in memory.
    let mut w = TableWriter::create(out)?;
    let mut rows = Rows::default();
    for (c, s) in common_parts.files.iter().zip(&skeleton_parts.files) {
        let mut features: HashMap<String, String> = HashMap::new();
        for_lines(c.path(), |n, line| {
            let (index, _) = field(line, 0, c.path(), n)?;
            // `common_feature_index,feature_count,feature_list`.
            let list = line.splitn(3, ',').nth(2).unwrap_or("");
            features.insert(index.to_string(), list.to_string());
            Ok(())
        })?;
        for_lines(s.path(), |n, line| {
            let cols: Vec<&str> = line.splitn(6, ',').collect();
            if cols.len() != 6 {
                return Err(Error::data(
                    skeleton,
                    format!(
                        "a skeleton line has {} fields, not 6 (partition line {n})",
                        cols.len()
                    ),
                ));
            }
            let flag = |k: usize, name: &str| match cols[k] {
                "0" => Ok(0i64),
                "1" => Ok(1i64),
                other => Err(Error::data_at(
                    skeleton,
                    name,
                    None,
                    format!("{other:?} is not 0 or 1 (sample {})", cols[0]),
                )),
            };
            let (click, buy) = (flag(1, "click")?, flag(2, "buy")?);
            summary.buy_without_click += (buy == 1 && click == 0) as usize;
            let common = features.get(cols[3]);
            summary.unmatched += common.is_none() as usize;
            let mut row = Row::default();
            row.add(cols[5], skeleton, &mut summary)?;
            if let Some(list) = common {
                row.add(list, common_file, &mut summary)?;
            }
            rows.push(cols[0], click, buy, row);
            summary.rows += 1;
            if rows.len() == CHUNK {
                w.write(std::mem::take(&mut rows).columns())?;
            }
            Ok(())
        })?;
    }
    if rows.len() > 0 || summary.rows == 0 {
        w.write(rows.columns())?;
    }
    w.finish()?;
    Ok(summary)
}

/// Whether to keep a skeleton line under `sample`: a hash of its sample id and the seed.
fn keep_line(line: &str, sample: f64, seed: u64) -> bool {
    let id = line.split(',').next().unwrap_or("");
    let h = fnv1a(id.as_bytes()) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // A mixed 53-bit fraction of the hash.
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49eb_133b_a2cb);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < sample
}

/// Field `k` of a comma-separated line, and the line from there on.
fn field<'a>(line: &'a str, k: usize, file: &Path, n: usize) -> Result<(&'a str, &'a str)> {
    let mut rest = line;
    for _ in 0..k {
        rest = rest.split_once(',').map(|(_, r)| r).ok_or_else(|| {
            Error::data(file, format!("line {n} has fewer than {} fields", k + 1))
        })?;
    }
    Ok((rest.split(',').next().unwrap_or(""), rest))
}

/// Partition files of one input, and the lines read.
struct Parts {
    files: Vec<Temp>,
    read: usize,
}

/// Cut `input` into `n` temporary files beside `out` by a hash of its comma-separated field
/// `key`, keeping the lines `keep` accepts.
fn split(
    input: &Path,
    out: &Path,
    what: &str,
    n: usize,
    key: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<Parts> {
    let base = crate::fsutil::temp_sibling(out)?;
    let mut files = Vec::with_capacity(n);
    let mut writers = Vec::with_capacity(n);
    for p in 0..n {
        let path = PathBuf::from(format!("{}.{what}-{p}", base.display()));
        let (temp, file) = Temp::create(path.clone()).map_err(|e| Error::io(&path, e))?;
        files.push(temp);
        writers.push(BufWriter::new(file));
    }
    let mut read = 0;
    for_lines(input, |n_line, line| {
        read += 1;
        if !keep(line) {
            return Ok(());
        }
        let (k, _) = field(line, key, input, n_line)?;
        let p = (fnv1a(k.as_bytes()) % n as u64) as usize;
        writeln!(writers[p], "{line}").map_err(|e| Error::io(files[p].path(), e))
    })?;
    for (w, f) in writers.iter_mut().zip(&files) {
        w.flush().map_err(|e| Error::io(f.path(), e))?;
    }
    Ok(Parts { files, read })
}

/// Every non-empty line of a text file (gzip or not), numbered from 1.
fn for_lines(file: &Path, mut f: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    let reader = std::io::BufReader::with_capacity(1 << 20, crate::source::open_text(file)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| Error::io(file, e))?;
        let line = line.trim_end_matches('\r');
        if !line.is_empty() {
            f(i + 1, line)?;
        }
    }
    Ok(())
}

/// One row's fields: each single-valued field's id, each multi-valued field's ids and values.
#[derive(Default)]
pub(super) struct Row {
    single: [Option<i64>; SINGLE_FIELDS.len()],
    multi: [(Vec<i64>, Vec<f64>); MULTI_FIELDS.len()],
}

impl Row {
    /// Add a feature list's entries (`field 0x02 feature 0x03 value`, separated by 0x01).
    fn add(&mut self, list: &str, file: &Path, summary: &mut AliCcpSummary) -> Result<()> {
        for entry in list.split('\u{1}').filter(|e| !e.is_empty()) {
            let bad = || {
                Error::data(
                    file,
                    format!("a feature entry {entry:?} is not `field 0x02 feature 0x03 value`"),
                )
                .with_hint("the Ali-CCP raw files separate entries by byte 0x01 and a field, its feature and its value by 0x02 and 0x03")
            };
            let (field, rest) = entry.split_once('\u{2}').ok_or_else(bad)?;
            let (feature, value) = rest.split_once('\u{3}').ok_or_else(bad)?;
            let id: i64 = feature.trim().parse().map_err(|_| bad())?;
            let v: f64 = value.trim().parse().map_err(|_| bad())?;
            self.put(field, id, v, summary);
        }
        Ok(())
    }

    /// One entry: a single-valued field's first id (later ones counted), a multi-valued
    /// field's id and value, an unknown field counted.
    pub(super) fn put(&mut self, field: &str, id: i64, value: f64, summary: &mut AliCcpSummary) {
        if let Some(k) = SINGLE_FIELDS.iter().position(|f| *f == field) {
            match self.single[k] {
                None => self.single[k] = Some(id),
                Some(_) => summary.extra_entries += 1,
            }
        } else if let Some(k) = MULTI_FIELDS.iter().position(|f| *f == field) {
            self.multi[k].0.push(id);
            self.multi[k].1.push(value);
        } else {
            summary.unknown_entries += 1;
        }
    }
}

/// A multi-valued field's chunk: each row's feature ids and their values.
type ListColumns = (Vec<Vec<i64>>, Vec<Vec<f64>>);

/// The columns of a chunk of rows.
#[derive(Default)]
pub(super) struct Rows {
    sample_id: Vec<Option<String>>,
    click: Vec<i64>,
    buy: Vec<i64>,
    single: Vec<Vec<Option<i64>>>,
    multi: Vec<ListColumns>,
}

impl Rows {
    pub(super) fn len(&self) -> usize {
        self.click.len()
    }

    pub(super) fn push(&mut self, id: &str, click: i64, buy: i64, row: Row) {
        if self.single.is_empty() {
            self.single = vec![Vec::new(); SINGLE_FIELDS.len()];
            self.multi = vec![(Vec::new(), Vec::new()); MULTI_FIELDS.len()];
        }
        self.sample_id.push(Some(id.to_string()));
        self.click.push(click);
        self.buy.push(buy);
        for (col, v) in self.single.iter_mut().zip(row.single) {
            col.push(v);
        }
        for (col, (ids, values)) in self.multi.iter_mut().zip(row.multi) {
            col.0.push(ids);
            col.1.push(values);
        }
    }

    pub(super) fn columns(mut self) -> Vec<(String, TableColumn)> {
        if self.single.is_empty() {
            self.single = vec![Vec::new(); SINGLE_FIELDS.len()];
            self.multi = vec![(Vec::new(), Vec::new()); MULTI_FIELDS.len()];
        }
        let mut out = vec![
            ("sample_id".to_string(), TableColumn::Str(self.sample_id)),
            ("click".into(), TableColumn::I64(self.click)),
            ("buy".into(), TableColumn::I64(self.buy)),
        ];
        for (name, col) in SINGLE_FIELDS.iter().zip(self.single) {
            out.push((name.to_string(), TableColumn::OptI64(col)));
        }
        for (name, (ids, values)) in MULTI_FIELDS.iter().zip(self.multi) {
            out.push((name.to_string(), TableColumn::ListI64(ids)));
            out.push((format!("{name}_w"), TableColumn::ListF64(values)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw files worked by hand: s1 joins c1 (user field 101 and two 14-day behaviours with
    /// their values), s2 is bought without a click, s3's common features are missing and it
    /// has an entry of an unknown field, s4 has a second entry of a single-valued field (the
    /// first kept). Cut into 3 partitions or 1, the rows are the same.
    #[test]
    fn skeleton_joins_its_common_features_by_hand() {
        let d = tempfile::tempdir().unwrap();
        let (sk, co) = (d.path().join("skeleton.csv"), d.path().join("common.csv"));
        let e = |f: &str, id: i64, v: f64| format!("{f}\u{2}{id}\u{3}{v}");
        let list = |es: &[String]| es.join("\u{1}");
        std::fs::write(
            &co,
            format!(
                "c1,3,{}\nc2,1,{}\n",
                list(&[
                    e("101", 11, 1.0),
                    e("109_14", 501, 2.0),
                    e("109_14", 502, 0.5)
                ]),
                list(&[e("101", 12, 1.0)])
            ),
        )
        .unwrap();
        std::fs::write(
            &sk,
            format!(
                "s1,1,0,c1,2,{}\ns2,0,1,c2,1,{}\ns3,0,0,c9,2,{}\ns4,1,1,c1,2,{}\n",
                list(&[e("205", 21, 1.0), e("301", 31, 1.0)]),
                list(&[e("205", 22, 1.0)]),
                list(&[e("205", 23, 1.0), e("999", 1, 1.0)]),
                list(&[e("205", 24, 1.0), e("205", 25, 1.0)])
            ),
        )
        .unwrap();
        let mut outputs = Vec::new();
        for parts in [3, 1] {
            let out = d.path().join(format!("out{parts}.csv"));
            let s = ali_ccp_in(&sk, &co, &out, 1.0, 0, parts).unwrap();
            assert_eq!(
                s,
                AliCcpSummary {
                    read: 4,
                    rows: 4,
                    buy_without_click: 1,
                    unmatched: 1,
                    unknown_entries: 1,
                    extra_entries: 1,
                    partitions: parts,
                }
            );
            let text = std::fs::read_to_string(&out).unwrap();
            let mut lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
            lines.sort();
            outputs.push(lines);
            let header = text.lines().next().unwrap();
            assert!(
                header.starts_with("sample_id,click,buy,101,121,"),
                "{header}"
            );
            assert!(header.ends_with("150_14,150_14_w"), "{header}");
        }
        assert_eq!(outputs[0], outputs[1]);
        let row = |id: &str| -> Vec<String> {
            let line = outputs[0]
                .iter()
                .find(|l| l.starts_with(&format!("{id},")))
                .unwrap();
            line.split(',').map(str::to_string).collect()
        };
        // Columns: sample_id, click, buy, the 19 single fields (101 first, 205 tenth, 301
        // last), then each multi-valued field and its values.
        let s1 = row("s1");
        assert_eq!((&s1[1][..], &s1[2][..], &s1[3][..]), ("1", "0", "11"));
        assert_eq!((&s1[12][..], &s1[21][..]), ("21", "31"));
        assert_eq!((&s1[22][..], &s1[23][..]), ("501|502", "2|0.5"));
        let s3 = row("s3");
        assert_eq!((&s3[3][..], &s3[12][..]), ("", "23"));
        assert_eq!(row("s4")[12], "24");
    }

    /// `sample` keeps about its share of the lines, chosen by their ids (the same under one
    /// seed, others under another), spread over the file, not its first lines.
    #[test]
    fn sampling_is_random_not_a_prefix() {
        let lines: Vec<String> = (0..2000).map(|i| format!("s{i},0,0,c1,0,")).collect();
        let kept = |seed: u64| -> Vec<usize> {
            (0..lines.len())
                .filter(|&i| keep_line(&lines[i], 0.25, seed))
                .collect()
        };
        let a = kept(7);
        assert!((400..600).contains(&a.len()), "{}", a.len());
        assert_eq!(a, kept(7));
        assert_ne!(a, kept(8));
        assert!(a.iter().any(|&i| i >= 1500) && a.iter().any(|&i| i < 500));
    }
}
