//! Feature encoders fitted on the training split: categorical vocabularies (or hash buckets) and
//! numeric transforms. They are saved in the run directory and reused unchanged by eval and predict.

use serde::{Deserialize, Serialize};

use crate::config::raw::{MissingPolicy, NumericTransform};
use crate::config::{CategoricalSpec, NumericSpec};
use rayon::prelude::*;
use std::sync::OnceLock;

use rustc_hash::FxHashMap as HashMap;

use crate::data::source::{Cat, Frame, RowSubset};
use crate::error::{Error, Result};

/// Id of the padding row: never produced by data, its embedding stays zero.
pub const PAD_ID: u32 = 0;
/// Id of values unseen in training (or seen fewer than `min_count` times).
pub const OOV_ID: u32 = 1;
/// Id of missing values.
pub const NULL_ID: u32 = 2;
/// First id of a real value.
pub const FIRST_TOKEN_ID: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CategoricalEncoder {
    pub name: String,
    pub column: String,
    /// Tokens in id order (id = FIRST_TOKEN_ID + position): by training count, ties by token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<u32>,
    /// Token -> id, built on first use.
    #[serde(skip)]
    index: OnceLock<HashMap<String, u32>>,
    /// Canonical decimal tokens as integers -> id, for integer columns read without formatting;
    /// built on first use (or while fitting an integer column).
    #[serde(skip)]
    int_index: OnceLock<HashMap<i64, u32>>,
}

impl CategoricalEncoder {
    pub fn fit(spec: &CategoricalSpec, frame: &Frame, rows: &[u32]) -> Result<Self> {
        let mut enc = CategoricalEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            tokens: Vec::new(),
            hash_buckets: spec.hash_buckets,
            index: OnceLock::new(),
            int_index: OnceLock::new(),
        };
        if spec.hash_buckets.is_some() {
            return Ok(enc);
        }
        let mut counts: HashMap<String, u64> = HashMap::default();
        let mut int_counts: HashMap<i64, u64> = HashMap::default();
        let mut subset = RowSubset::new(rows);
        frame.visit_cat(&spec.column, |i, v| {
            if subset.take(i) {
                match v {
                    Cat::Null => {}
                    Cat::Int(x) => *int_counts.entry(x).or_insert(0) += 1,
                    Cat::Str(v) => match counts.get_mut(v) {
                        Some(c) => *c += 1,
                        None => {
                            counts.insert(v.to_string(), 1);
                        }
                    },
                }
            }
            Ok(())
        })?;
        // Tokens are ordered by count, ties by their text, whether the column held integers
        // (Parquet) or text (CSV): the same data gives the same ids either way.
        let mut by_count: Vec<(String, Option<i64>, u64)> = counts
            .into_iter()
            .map(|(t, c)| (t, None, c))
            .chain(
                int_counts
                    .into_iter()
                    .map(|(x, c)| (x.to_string(), Some(x), c)),
            )
            .filter(|(_, _, c)| *c >= spec.min_count)
            .collect();
        by_count.sort_unstable_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        if by_count.iter().all(|(_, x, _)| x.is_some()) {
            let ints = by_count
                .iter()
                .enumerate()
                .filter_map(|(i, (_, x, _))| Some(((*x)?, FIRST_TOKEN_ID + i as u32)))
                .collect();
            let _ = enc.int_index.set(ints);
        }
        enc.tokens = by_count.into_iter().map(|(t, _, _)| t).collect();
        Ok(enc)
    }

    fn index(&self) -> &HashMap<String, u32> {
        self.index.get_or_init(|| {
            self.tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), FIRST_TOKEN_ID + i as u32))
                .collect()
        })
    }

    fn int_index(&self) -> &HashMap<i64, u32> {
        self.int_index.get_or_init(|| {
            self.tokens
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let x: i64 = t.parse().ok()?;
                    (x.to_string() == *t).then_some((x, FIRST_TOKEN_ID + i as u32))
                })
                .collect()
        })
    }

    /// Rows of this feature's embedding table (specials included).
    pub fn vocab_size(&self) -> usize {
        FIRST_TOKEN_ID as usize
            + match self.hash_buckets {
                Some(b) => b as usize,
                None => self.tokens.len(),
            }
    }

    pub fn encode(&self, v: Cat<'_>) -> u32 {
        match (v, self.hash_buckets) {
            (Cat::Null, _) => NULL_ID,
            (Cat::Str(v), Some(b)) => FIRST_TOKEN_ID + (fnv1a(v.as_bytes()) % b as u64) as u32,
            (Cat::Int(x), Some(b)) => {
                FIRST_TOKEN_ID + (fnv1a(x.to_string().as_bytes()) % b as u64) as u32
            }
            (Cat::Str(v), None) => self.index().get(v).copied().unwrap_or(OOV_ID),
            (Cat::Int(x), None) => self.int_index().get(&x).copied().unwrap_or(OOV_ID),
        }
    }
}

/// FNV-1a, 64 bit: a hash that never changes between versions or platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumericEncoder {
    pub name: String,
    pub column: String,
    pub transform: NumericTransform,
    pub missing: MissingPolicy,
    /// Output = (pre(x) - shift) / scale, where pre is ln1p for `log1p` and the identity otherwise.
    pub shift: f64,
    pub scale: f64,
    /// Value (after `pre`) that a missing entry takes, unless the policy is `error`.
    pub fill: f64,
}

fn pre(transform: NumericTransform, x: f64) -> f64 {
    match transform {
        NumericTransform::Log1p => x.signum() * x.abs().ln_1p(),
        _ => x,
    }
}

impl NumericEncoder {
    pub fn fit(spec: &NumericSpec, frame: &Frame, rows: &[u32]) -> Result<Self> {
        let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut subset = RowSubset::new(rows);
        frame.visit_f64(&spec.column, |i, v| {
            if !subset.take(i) {
                return Ok(());
            }
            match v {
                Some(x) if x.is_finite() => {
                    let t = pre(spec.transform, x);
                    n += 1;
                    let d = t - mean;
                    mean += d / n as f64;
                    m2 += d * (t - mean);
                    lo = lo.min(t);
                    hi = hi.max(t);
                    Ok(())
                }
                _ if spec.missing == MissingPolicy::Error => {
                    Err(missing_error(frame, &spec.column, i, v))
                }
                _ => Ok(()),
            }
        })?;
        if n == 0 {
            return Err(Error::data_at(
                frame.file(),
                &spec.column,
                None,
                "no usable value in the training split",
            ));
        }
        let std = (m2 / n as f64).sqrt();
        if !(std.is_finite() && (hi - lo).is_finite()) {
            return Err(Error::data_at(
                frame.file(),
                &spec.column,
                None,
                "values too large to standardise in 64-bit floats",
            )
            .with_hint("use `transform: log1p`, or rescale the column"));
        }
        let (shift, scale) = match spec.transform {
            NumericTransform::Standardize | NumericTransform::Log1p => {
                (mean, if std > 0.0 { std } else { 1.0 })
            }
            NumericTransform::MinMax => (lo, if hi > lo { hi - lo } else { 1.0 }),
            NumericTransform::None => (0.0, 1.0),
        };
        let fill = match spec.missing {
            MissingPolicy::Zero => pre(spec.transform, 0.0),
            _ => mean,
        };
        Ok(NumericEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            transform: spec.transform,
            missing: spec.missing,
            shift,
            scale,
            fill,
        })
    }

    /// Encode one value; `None` (or NaN/inf) gets the fill, or an error under `missing: error`.
    pub fn encode(&self, v: Option<f64>) -> Option<f32> {
        let t = match v {
            Some(x) if x.is_finite() => pre(self.transform, x),
            _ if self.missing == MissingPolicy::Error => return None,
            _ => self.fill,
        };
        let v = ((t - self.shift) / self.scale) as f32;
        v.is_finite().then_some(v)
    }
}

fn missing_error(frame: &Frame, column: &str, i: usize, v: Option<f64>) -> Error {
    let what = match v {
        None => "missing value".to_string(),
        Some(x) if x.is_finite() => format!("value {x} does not fit a 32-bit float once encoded"),
        Some(x) => format!("non-finite value {x}"),
    };
    Error::data_at(frame.file(), column, Some(frame.row_number(i)), what)
        .with_hint("set the feature's `missing` to `mean` or `zero` to fill such values")
}

/// Encoded feature columns: categorical ids per feature, then numeric values per feature.
pub type EncodedColumns = (Vec<Vec<u32>>, Vec<Vec<f32>>);

/// All encoders of a pipeline, in the pipeline's feature order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encoders {
    pub categorical: Vec<CategoricalEncoder>,
    pub numeric: Vec<NumericEncoder>,
}

impl Encoders {
    pub fn fit(
        cats: &[CategoricalSpec],
        nums: &[NumericSpec],
        frame: &Frame,
        rows: &[u32],
    ) -> Result<Self> {
        Ok(Encoders {
            categorical: cats
                .par_iter()
                .map(|c| CategoricalEncoder::fit(c, frame, rows))
                .collect::<Result<_>>()?,
            numeric: nums
                .par_iter()
                .map(|n| NumericEncoder::fit(n, frame, rows))
                .collect::<Result<_>>()?,
        })
    }

    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// Encode the given rows of a frame into columns (features in parallel).
    pub fn encode(&self, frame: &Frame, rows: &[u32]) -> Result<EncodedColumns> {
        let cats = self
            .categorical
            .par_iter()
            .map(|enc| {
                let mut out = Vec::with_capacity(rows.len());
                let mut subset = RowSubset::new(rows);
                frame.visit_cat(&enc.column, |i, v| {
                    if subset.take(i) {
                        out.push(enc.encode(v));
                    }
                    Ok(())
                })?;
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        let nums = self
            .numeric
            .par_iter()
            .map(|enc| {
                let mut out = Vec::with_capacity(rows.len());
                let mut subset = RowSubset::new(rows);
                frame.visit_f64(&enc.column, |i, v| {
                    if subset.take(i) {
                        out.push(
                            enc.encode(v)
                                .ok_or_else(|| missing_error(frame, &enc.column, i, v))?,
                        );
                    }
                    Ok(())
                })?;
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((cats, nums))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integer column (Parquet) and the same values as text (CSV) give the same vocabulary and
    /// ids, so a model trained on one can predict on the other.
    #[test]
    fn integer_and_text_columns_share_ids() {
        use crate::config::raw::FileFormat;
        use crate::config::{CsvOptions, FileSource};
        use crate::data::source::{TableColumn, write_table};
        let d = tempfile::tempdir().unwrap();
        let ids: Vec<u32> = vec![10, 9, 10, 100, 9, 10, 7, 100, 8];
        let pq = d.path().join("x.parquet");
        write_table(&pq, vec![("x".into(), TableColumn::U32(ids.clone()))]).unwrap();
        let csv = d.path().join("x.csv");
        let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(&csv, format!("x\n{text}")).unwrap();
        let spec = CategoricalSpec {
            name: "x".into(),
            column: "x".into(),
            dim: 4,
            min_count: 1,
            hash_buckets: None,
        };
        let source = |path: &std::path::Path, format| FileSource {
            path: path.to_path_buf(),
            format,
            csv: CsvOptions {
                separator: b',',
                header: true,
                null_values: vec![String::new()],
                trim_whitespace: false,
            },
        };
        let rows: Vec<u32> = (0..ids.len() as u32).collect();
        let fp = Frame::read(&source(&pq, FileFormat::Parquet), None).unwrap();
        let fc = Frame::read(&source(&csv, FileFormat::Csv), None).unwrap();
        let a = CategoricalEncoder::fit(&spec, &fp, &rows).unwrap();
        let b = CategoricalEncoder::fit(&spec, &fc, &rows).unwrap();
        // Counts 3, 2, 2, 1, 1: ties broken by text ("100" < "9", "7" < "8").
        assert_eq!(a.tokens, ["10", "100", "9", "7", "8"]);
        assert_eq!(a.tokens, b.tokens);
        for &x in &ids {
            assert_eq!(
                a.encode(Cat::Int(x as i64)),
                b.encode(Cat::Str(&x.to_string()))
            );
            assert_eq!(
                b.encode(Cat::Int(x as i64)),
                a.encode(Cat::Str(&x.to_string()))
            );
        }
        assert_eq!(a.encode(Cat::Int(5)), OOV_ID);
        assert_eq!(a.encode(Cat::Str("010")), OOV_ID);
        assert_eq!(a.encode(Cat::Null), NULL_ID);
    }

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn numeric_transforms() {
        let enc = NumericEncoder {
            name: "x".into(),
            column: "x".into(),
            transform: NumericTransform::Log1p,
            missing: MissingPolicy::Mean,
            shift: 1.0,
            scale: 2.0,
            fill: 1.0,
        };
        // (ln(1 + e - 1) - 1) / 2 = 0
        assert!(enc.encode(Some(std::f64::consts::E - 1.0)).unwrap().abs() < 1e-7);
        assert_eq!(enc.encode(None), Some(0.0));
        assert_eq!(enc.encode(Some(f64::NAN)), Some(0.0));
        let strict = NumericEncoder {
            missing: MissingPolicy::Error,
            ..enc
        };
        assert_eq!(strict.encode(Some(f64::INFINITY)), None);
    }
}
