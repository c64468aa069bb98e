//! Feature encoders fitted on the training split: categorical vocabularies (or hash buckets) and
//! numeric transforms. They are saved in the run directory and reused unchanged by eval and predict.

use serde::{Deserialize, Serialize};

use crate::config::raw::{MissingPolicy, NumericTransform};
use crate::config::{CategoricalSpec, NumericSpec};
use std::sync::OnceLock;

use rustc_hash::FxHashMap as HashMap;

use crate::data::Routing;
use crate::data::source::{Cat, Column};
use crate::error::{Error, Result};

/// Id of the padding row: never produced by data, its embedding stays zero.
pub const PAD_ID: u32 = 0;
/// Id of values unseen in training (or seen fewer than `min_count` times).
pub const OOV_ID: u32 = 1;
/// Id of missing values.
pub const NULL_ID: u32 = 2;
/// First id of a real value.
pub const FIRST_TOKEN_ID: u32 = 3;

/// A fitted vocabulary in id order (id = FIRST_TOKEN_ID + position): by training count, ties by
/// the token's text. Integer columns keep their tokens as integers; both kinds are saved as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokens {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Tokens {
    pub fn len(&self) -> usize {
        match self {
            Tokens::Int(t) => t.len(),
            Tokens::Text(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tokens as text, as saved.
    #[cfg(test)]
    pub fn texts(&self) -> Vec<String> {
        match self {
            Tokens::Int(t) => t.iter().map(i64::to_string).collect(),
            Tokens::Text(t) => t.clone(),
        }
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::Int(Vec::new())
    }
}

impl Serialize for Tokens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        /// An integer token written as a JSON string without an intermediate `String`.
        struct Decimal(i64);
        impl Serialize for Decimal {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        match self {
            Tokens::Int(t) => s.collect_seq(t.iter().map(|&x| Decimal(x))),
            Tokens::Text(t) => s.collect_seq(t),
        }
    }
}

impl<'de> Deserialize<'de> for Tokens {
    /// Text tokens that are all canonical decimal integers are kept as integers.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        let ints: Option<Vec<i64>> = texts.iter().map(|t| canonical_int(t)).collect();
        Ok(match ints {
            Some(ints) => Tokens::Int(ints),
            None => Tokens::Text(texts),
        })
    }
}

/// The integer whose decimal text is exactly `t` ("7", "-12"; not "007", "+7", "-0" or " 7").
fn canonical_int(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let leading_zero = digits.first() == Some(&b'0') && (digits.len() > 1 || negative);
    if digits.is_empty() || digits.len() > 19 || leading_zero {
        return None;
    }
    // Accumulated as a negative number, so that i64::MIN fits.
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(d as i64)?;
    }
    if negative { Some(v) } else { v.checked_neg() }
}

/// `x` in decimal, written into `buf` (20 bytes hold every i64).
fn decimal(x: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut v = x.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if x < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

/// A key that orders integers as their decimal texts order ("-5" < "10" < "100" < "9"): one
/// nibble per character, left-aligned, 0 marking the end.
fn decimal_order(x: i64) -> u128 {
    let mut buf = [0u8; 20];
    let mut key = 0u128;
    let text = decimal(x, &mut buf);
    for (n, b) in text.bytes().enumerate() {
        let nibble = if b == b'-' { 1 } else { (b - b'0') as u128 + 2 };
        key |= nibble << (124 - 4 * n);
    }
    key
}

/// A value a vocabulary is fitted over: its lookup key while counting, its place in the id
/// order, and how it is kept.
trait TokenKey: Copy + Eq + std::hash::Hash {
    type Order: Ord;
    fn order(self) -> Self::Order;
    fn into_tokens(keys: Vec<Self>) -> Tokens;
}

impl TokenKey for i64 {
    type Order = u128;
    fn order(self) -> u128 {
        decimal_order(self)
    }
    fn into_tokens(keys: Vec<Self>) -> Tokens {
        Tokens::Int(keys)
    }
}

impl TokenKey for &str {
    type Order = Self;
    fn order(self) -> Self {
        self
    }
    /// Kept as integers when every kept token is a canonical integer (a non-integer value may
    /// have been seen only outside training, or below `min_count`), as a saved vocabulary
    /// loads back.
    fn into_tokens(keys: Vec<Self>) -> Tokens {
        match keys.iter().map(|t| canonical_int(t)).collect() {
            Some(ints) => Tokens::Int(ints),
            None => Tokens::Text(keys.into_iter().map(str::to_string).collect()),
        }
    }
}

/// Fitting and encoding in one pass: every row gets a provisional id (first-seen order) while
/// part 0's rows are counted; once the vocabulary is ordered, provisional ids are rewritten.
struct Provisional<K> {
    ids: HashMap<K, u32>,
    keys: Vec<K>,
    counts: Vec<u32>,
    out: Vec<Vec<u32>>,
}

/// Provisional id of a missing value.
const NULL_PROVISIONAL: u32 = u32::MAX;

impl<K: TokenKey> Provisional<K> {
    fn new(routing: &Routing) -> Self {
        Provisional {
            ids: HashMap::default(),
            keys: Vec::new(),
            counts: Vec::new(),
            out: routing.outputs(),
        }
    }

    #[inline]
    fn add(&mut self, part: usize, v: Option<K>) {
        let id = match v {
            None => NULL_PROVISIONAL,
            Some(k) => {
                let next = self.keys.len() as u32;
                let id = *self.ids.entry(k).or_insert(next);
                if id == next {
                    self.keys.push(k);
                    self.counts.push(0);
                }
                if part == 0 {
                    self.counts[id as usize] += 1;
                }
                id
            }
        };
        self.out[part].push(id);
    }

    /// The vocabulary (part-0 count at least `min_count`, by count then text) and every part's
    /// final ids.
    fn finish(self, min_count: u64) -> (Tokens, Vec<Vec<u32>>) {
        let Provisional {
            ids,
            keys,
            counts,
            mut out,
        } = self;
        drop(ids);
        let mut order: Vec<(std::cmp::Reverse<u32>, K::Order, u32)> = counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c as u64 >= min_count.max(1))
            .map(|(p, &c)| (std::cmp::Reverse(c), keys[p].order(), p as u32))
            .collect();
        order.sort_unstable();
        let mut remap = vec![OOV_ID; keys.len()];
        for (rank, &(_, _, p)) in order.iter().enumerate() {
            remap[p as usize] = FIRST_TOKEN_ID + rank as u32;
        }
        for v in out.iter_mut().flatten() {
            *v = match *v {
                NULL_PROVISIONAL => NULL_ID,
                p => remap[p as usize],
            };
        }
        let tokens = K::into_tokens(order.iter().map(|&(_, _, p)| keys[p as usize]).collect());
        (tokens, out)
    }
}

/// Token -> id lookups of a fitted vocabulary, for data encoded after fitting.
#[derive(Debug)]
enum Index {
    Int(HashMap<i64, u32>),
    Text(HashMap<String, u32>),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CategoricalEncoder {
    pub name: String,
    pub column: String,
    #[serde(default, skip_serializing_if = "Tokens::is_empty")]
    pub tokens: Tokens,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_buckets: Option<u32>,
    /// Built on first use by `encode`; not needed while fitting.
    #[serde(skip)]
    index: OnceLock<Index>,
}

impl Clone for CategoricalEncoder {
    /// The lookup maps are a cache of the tokens: a clone rebuilds them when needed.
    fn clone(&self) -> Self {
        CategoricalEncoder {
            name: self.name.clone(),
            column: self.column.clone(),
            tokens: self.tokens.clone(),
            hash_buckets: self.hash_buckets,
            index: OnceLock::new(),
        }
    }
}

impl PartialEq for CategoricalEncoder {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, &self.column, &self.tokens, self.hash_buckets)
            == (&o.name, &o.column, &o.tokens, o.hash_buckets)
    }
}

impl CategoricalEncoder {
    /// Fit the vocabulary on part 0 of `routing` and encode every part, reading the column once.
    pub fn fit_encode(
        spec: &CategoricalSpec,
        col: &Column<'_>,
        routing: &Routing,
    ) -> Result<(Self, Vec<Vec<u32>>)> {
        let mut enc = CategoricalEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            tokens: Tokens::default(),
            hash_buckets: spec.hash_buckets,
            index: OnceLock::new(),
        };
        if spec.hash_buckets.is_some() {
            let out = enc.encode_column(col, routing)?;
            return Ok((enc, out));
        }
        let (tokens, out) = if col.is_integer() {
            let mut prov = Provisional::<i64>::new(routing);
            col.visit_cat(|i, v| {
                if let Some(p) = routing.part(i) {
                    prov.add(p, if let Cat::Int(x) = v { Some(x) } else { None });
                }
                Ok(())
            })?;
            prov.finish(spec.min_count)
        } else if let Some(fitted) = Self::fit_text_as_integers(spec, col, routing)? {
            fitted
        } else {
            let mut prov = Provisional::<&str>::new(routing);
            col.visit_str(|i, v| {
                if let Some(p) = routing.part(i) {
                    prov.add(p, v);
                }
                Ok(())
            })?;
            prov.finish(spec.min_count)
        };
        enc.tokens = tokens;
        Ok((enc, out))
    }

    /// A text column whose values are all canonical decimal integers (ids in a CSV file) is
    /// counted as integers: cheaper than hashing text, and the same ids, since integers are
    /// ordered as their texts. `None` at the first value that is not such an integer.
    fn fit_text_as_integers(
        spec: &CategoricalSpec,
        col: &Column<'_>,
        routing: &Routing,
    ) -> Result<Option<(Tokens, Vec<Vec<u32>>)>> {
        let mut prov = Provisional::<i64>::new(routing);
        let mut text = false;
        let visited = col.visit_str(|i, v| {
            let Some(p) = routing.part(i) else {
                return Ok(());
            };
            match v.map(canonical_int) {
                None => prov.add(p, None),
                Some(Some(x)) => prov.add(p, Some(x)),
                Some(None) => {
                    text = true;
                    return Err(Error::Internal("stop: not an integer".into()));
                }
            }
            Ok(())
        });
        match visited {
            Err(_) if text => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(Some(prov.finish(spec.min_count))),
        }
    }

    /// Encode every part of `routing` with the fitted vocabulary.
    pub fn encode_column(&self, col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<u32>>> {
        let mut out = routing.outputs();
        col.visit_cat(|i, v| {
            if let Some(p) = routing.part(i) {
                out[p].push(self.encode(v));
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let id = |i: usize| FIRST_TOKEN_ID + i as u32;
            match &self.tokens {
                Tokens::Int(t) => {
                    Index::Int(t.iter().enumerate().map(|(i, &x)| (x, id(i))).collect())
                }
                Tokens::Text(t) => Index::Text(
                    t.iter()
                        .enumerate()
                        .map(|(i, x)| (x.clone(), id(i)))
                        .collect(),
                ),
            }
        })
    }

    /// Drop the lookup maps (rebuilt if `encode` is called again).
    pub fn forget_index(&mut self) {
        self.index.take();
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
        let mut buf = [0u8; 20];
        match (v, self.hash_buckets) {
            (Cat::Null, _) => NULL_ID,
            (Cat::Str(v), Some(b)) => FIRST_TOKEN_ID + (fnv1a(v.as_bytes()) % b as u64) as u32,
            (Cat::Int(x), Some(b)) => {
                FIRST_TOKEN_ID + (fnv1a(decimal(x, &mut buf).as_bytes()) % b as u64) as u32
            }
            (v, None) => {
                let found = match (self.index(), v) {
                    (Index::Int(m), Cat::Int(x)) => m.get(&x),
                    (Index::Int(m), Cat::Str(t)) => canonical_int(t).and_then(|x| m.get(&x)),
                    (Index::Text(m), Cat::Str(t)) => m.get(t),
                    (Index::Text(m), Cat::Int(x)) => m.get(decimal(x, &mut buf)),
                    (_, Cat::Null) => None,
                };
                found.copied().unwrap_or(OOV_ID)
            }
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
    /// Fit the transform on part 0 of `routing`.
    pub fn fit(spec: &NumericSpec, col: &Column<'_>, routing: &Routing) -> Result<Self> {
        let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        col.visit_f64(|i, v| {
            if routing.part(i) != Some(0) {
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
                _ if spec.missing == MissingPolicy::Error => Err(missing_error(col, i, v)),
                _ => Ok(()),
            }
        })?;
        if n == 0 {
            return Err(col.error(None, "no usable value in the training split"));
        }
        let std = (m2 / n as f64).sqrt();
        if !(std.is_finite() && (hi - lo).is_finite()) {
            return Err(col
                .error(None, "values too large to standardise in 64-bit floats")
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

    /// Encode every part of `routing`.
    pub fn encode_column(&self, col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<f32>>> {
        let mut out = routing.outputs();
        col.visit_f64(|i, v| {
            if let Some(p) = routing.part(i) {
                out[p].push(self.encode(v).ok_or_else(|| missing_error(col, i, v))?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

fn missing_error(col: &Column<'_>, i: usize, v: Option<f64>) -> Error {
    let what = match v {
        None => "missing value".to_string(),
        Some(x) if x.is_finite() => format!("value {x} does not fit a 32-bit float once encoded"),
        Some(x) => format!("non-finite value {x}"),
    };
    col.error(Some(i), what)
        .with_hint("set the feature's `missing` to `mean` or `zero` to fill such values")
}

/// Encoded feature columns of one split: categorical ids per feature, then numeric values per
/// feature.
pub type EncodedColumns = (Vec<Vec<u32>>, Vec<Vec<f32>>);

/// All encoders of a pipeline, in the pipeline's feature order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encoders {
    pub categorical: Vec<CategoricalEncoder>,
    pub numeric: Vec<NumericEncoder>,
}

impl Encoders {
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// Drop every vocabulary's lookup maps (tens of MB per million-token vocabulary).
    pub fn forget_indexes(&mut self) {
        for c in &mut self.categorical {
            c.forget_index();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::FileFormat;
    use crate::config::{CsvOptions, FileSource};
    use crate::data::source::Frame;

    /// A file source with default CSV settings (comma, header, empty cell = missing).
    fn source(path: &std::path::Path, format: FileFormat) -> FileSource {
        FileSource {
            path: path.to_path_buf(),
            format,
            csv: CsvOptions {
                separator: b',',
                header: true,
                null_values: vec![String::new()],
                trim_whitespace: false,
            },
        }
    }

    /// A categorical feature `x` read from column `x`, every value kept.
    fn spec_x() -> CategoricalSpec {
        CategoricalSpec {
            name: "x".into(),
            column: "x".into(),
            dim: 4,
            min_count: 1,
            hash_buckets: None,
        }
    }

    /// An integer column (Parquet) and the same values as text (CSV) give the same vocabulary and
    /// ids, so a model trained on one can predict on the other.
    #[test]
    fn integer_and_text_columns_share_ids() {
        use crate::data::source::{TableColumn, write_table};
        let d = tempfile::tempdir().unwrap();
        let ids: Vec<u32> = vec![10, 9, 10, 100, 9, 10, 7, 100, 8];
        let pq = d.path().join("x.parquet");
        write_table(&pq, vec![("x".into(), TableColumn::U32(ids.clone()))]).unwrap();
        let csv = d.path().join("x.csv");
        let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(&csv, format!("x\n{text}")).unwrap();
        let spec = spec_x();
        // Rows 0..7 are the fitting part; rows 7 and 8 (ids 100 and 8) a second part, encoded
        // in the same pass with the vocabulary fitted on the first.
        let routing = Routing::new(ids.len(), &[&[0, 1, 2, 3, 4, 5, 6], &[7, 8]]);
        let fp = Frame::read(&source(&pq, FileFormat::Parquet), None).unwrap();
        let fc = Frame::read(&source(&csv, FileFormat::Csv), None).unwrap();
        let (a, a_ids) =
            CategoricalEncoder::fit_encode(&spec, &fp.column("x").unwrap(), &routing).unwrap();
        let (b, b_ids) =
            CategoricalEncoder::fit_encode(&spec, &fc.column("x").unwrap(), &routing).unwrap();
        // Training counts 10:3, 9:2, 100:1, 7:1 (8 is only in the second part): ties broken by
        // text ("100" < "7" < "9").
        assert!(matches!(a.tokens, Tokens::Int(_)));
        // Text that is all canonical integers is counted as integers too.
        assert!(matches!(b.tokens, Tokens::Int(_)));
        assert_eq!(a.tokens.texts(), ["10", "9", "100", "7"]);
        assert_eq!(a.tokens.texts(), b.tokens.texts());
        assert_eq!(a_ids, vec![vec![3, 4, 3, 5, 4, 3, 6], vec![5, OOV_ID]]);
        assert_eq!(a_ids, b_ids);
        // The one-pass ids are what the fitted vocabulary gives afterwards, from either kind.
        for (part, rows) in [(0usize, 0..7usize), (1, 7..9)] {
            for (j, i) in rows.enumerate() {
                assert_eq!(a.encode(Cat::Int(ids[i] as i64)), a_ids[part][j]);
                assert_eq!(b.encode(Cat::Str(&ids[i].to_string())), a_ids[part][j]);
            }
        }
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

    /// A text column with a value that is not a canonical integer ("007", "x") keeps text
    /// tokens, ordered by count and then by text, and encodes with them.
    #[test]
    fn text_column_with_non_integers_keeps_text_tokens() {
        let d = tempfile::tempdir().unwrap();
        let csv = d.path().join("x.csv");
        std::fs::write(&csv, "x\n10\nx\n9\n10\n007\nx\n10\n\n").unwrap();
        let frame = Frame::read(&source(&csv, FileFormat::Csv), None).unwrap();
        let spec = spec_x();
        let routing = Routing::all(frame.len());
        let (enc, ids) =
            CategoricalEncoder::fit_encode(&spec, &frame.column("x").unwrap(), &routing).unwrap();
        assert_eq!(
            enc.tokens,
            Tokens::Text(vec!["10".into(), "x".into(), "007".into(), "9".into()])
        );
        assert_eq!(ids, vec![vec![3, 4, 6, 3, 5, 4, 3, NULL_ID]]);
        assert_eq!(enc.encode(Cat::Int(9)), 6);
        assert_eq!(enc.encode(Cat::Int(7)), OOV_ID);
        // With min_count 3 only "10" is kept: an integer vocabulary, equal to itself once saved
        // and loaded.
        let spec3 = CategoricalSpec {
            min_count: 3,
            ..spec
        };
        let (enc3, ids3) =
            CategoricalEncoder::fit_encode(&spec3, &frame.column("x").unwrap(), &routing).unwrap();
        assert_eq!(enc3.tokens, Tokens::Int(vec![10]));
        assert_eq!(ids3, vec![vec![3, 1, 1, 3, 1, 1, 3, NULL_ID]]);
        let saved = serde_json::to_string(&enc3).unwrap();
        assert_eq!(
            serde_json::from_str::<CategoricalEncoder>(&saved).unwrap(),
            enc3
        );
    }

    /// Integer tokens sort as their decimal texts do, and only canonical texts are integers.
    #[test]
    fn decimal_order_is_text_order() {
        let mut xs: Vec<i64> = vec![
            0,
            1,
            9,
            10,
            100,
            99,
            -1,
            -10,
            -9,
            -100,
            7,
            70,
            700,
            12345,
            i64::MAX,
            i64::MIN,
            5,
            -5,
        ];
        let mut by_text = xs.clone();
        by_text.sort_by_key(|x| x.to_string());
        xs.sort_by_key(|&x| decimal_order(x));
        assert_eq!(xs, by_text);
        for x in [0, 7, -12, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal(x, &mut buf), x.to_string());
            assert_eq!(canonical_int(&x.to_string()), Some(x));
        }
        for t in ["007", "+7", "-0", " 7", "7.0", "", "x"] {
            assert_eq!(canonical_int(t), None, "{t:?}");
        }
    }

    /// Tokens are saved as text either way; all-integer texts load back as integers.
    #[test]
    fn tokens_round_trip_as_text() {
        let int = Tokens::Int(vec![10, -3, 7]);
        let json = serde_json::to_string(&int).unwrap();
        assert_eq!(json, r#"["10","-3","7"]"#);
        assert_eq!(serde_json::from_str::<Tokens>(&json).unwrap(), int);
        let text: Tokens = serde_json::from_str(r#"["10","007"]"#).unwrap();
        assert_eq!(text, Tokens::Text(vec!["10".into(), "007".into()]));
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
