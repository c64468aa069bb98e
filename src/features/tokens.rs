//! Vocabulary tokens: integers kept as integers, text as text, ordered by count then by text, and the provisional ids given while a column is read once.

use serde::{Deserialize, Serialize};

use rustc_hash::FxHashMap as HashMap;

use super::Routing;
use super::*;

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

    /// The tokens as text, as saved (in id order from `FIRST_TOKEN_ID`).
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

/// The integer whose decimal text is exactly `t` ("7", "-12"; not "007", "+7", "-0" or " 7"),
/// optionally followed by a point and zeros ("7.0"): pandas writes an integer id column that
/// has a missing value as floats, in CSV and Parquet alike, and those ids must still match
/// the vocabulary's integers.
pub(super) fn canonical_int(t: &str) -> Option<i64> {
    let t = match t.split_once('.') {
        Some((int, zeros)) if !zeros.is_empty() && zeros.bytes().all(|c| c == b'0') => int,
        Some(_) => return None,
        None => t,
    };
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
pub(super) fn decimal(x: i64, buf: &mut [u8; 20]) -> &str {
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
pub(super) fn decimal_order(x: i64) -> u128 {
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
pub(super) trait TokenKey: Copy + Eq + std::hash::Hash {
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
pub(super) struct Provisional<K> {
    ids: HashMap<K, u32>,
    keys: Vec<K>,
    counts: Vec<u32>,
    out: Vec<Vec<u32>>,
}

/// Provisional id of a missing value.
pub(super) const NULL_PROVISIONAL: u32 = u32::MAX;

impl<K: TokenKey> Provisional<K> {
    pub(super) fn new(routing: &Routing) -> Self {
        Provisional {
            ids: HashMap::default(),
            keys: Vec::new(),
            counts: Vec::new(),
            out: routing.outputs(),
        }
    }

    #[inline]
    pub(super) fn add(&mut self, part: usize, v: Option<K>) {
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

    /// Ids given so far to part `part`.
    pub(super) fn pushed(&self, part: usize) -> usize {
        self.out[part].len()
    }

    /// The vocabulary (part-0 count at least `min_count`, by count then text) and every part's
    /// final ids.
    pub(super) fn finish(self, min_count: u64) -> (Tokens, Vec<Vec<u32>>) {
        let Provisional {
            ids,
            keys,
            counts,
            mut out,
        } = self;
        drop(ids);
        let order = ranked(&keys, &counts, min_count);
        let mut remap = vec![OOV_ID; keys.len()];
        for (rank, &p) in order.iter().enumerate() {
            remap[p as usize] = FIRST_TOKEN_ID + rank as u32;
        }
        for v in out.iter_mut().flatten() {
            *v = match *v {
                NULL_PROVISIONAL => NULL_ID,
                p => remap[p as usize],
            };
        }
        let tokens = K::into_tokens(order.iter().map(|&p| keys[p as usize]).collect());
        (tokens, out)
    }
}

/// The vocabulary's keys in id order, as positions in `keys`: those counted at least
/// `min_count` times (and once), by count, ties by text.
fn ranked<K: TokenKey>(keys: &[K], counts: &[u32], min_count: u64) -> Vec<u32> {
    let mut order: Vec<(std::cmp::Reverse<u32>, K::Order, u32)> = counts
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c as u64 >= min_count.max(1))
        .map(|(p, &c)| (std::cmp::Reverse(c), keys[p].order(), p as u32))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, _, p)| p).collect()
}

/// A vocabulary's training counts gathered over a file's row ranges in turn (streamed
/// encoding), fitted to the vocabulary `CategoricalEncoder::fit_encode` fits over the whole
/// column: an integer column's integers; a text column's texts, counted as the integers they
/// write when every value read is one (`7` and `7.0` then count as one), else as texts.
#[derive(Default)]
pub struct TokenCounts {
    ints: HashMap<i64, u32>,
    texts: HashMap<String, u32>,
    /// Some text value read was not a canonical integer.
    text: bool,
}

impl TokenCounts {
    /// Count the values of `col` in part 0 of `routing`; every routed value decides whether a
    /// text column counts as integers.
    pub fn add(
        &mut self,
        col: &crate::source::Column<'_>,
        routing: &Routing,
    ) -> crate::error::Result<()> {
        use crate::source::Cat;
        if col.is_integer() {
            return col.visit_cat(|i, v| {
                if let (Some(0), Cat::Int(x)) = (routing.part(i), v) {
                    *self.ints.entry(x).or_insert(0) += 1;
                }
                Ok(())
            });
        }
        col.visit_str(|i, v| {
            let (Some(part), Some(v)) = (routing.part(i), v) else {
                return Ok(());
            };
            if !self.text && canonical_int(v).is_none() {
                self.text = true;
            }
            if part == 0 {
                match self.texts.get_mut(v) {
                    Some(c) => *c += 1,
                    None => {
                        self.texts.insert(v.to_string(), 1);
                    }
                }
            }
            Ok(())
        })
    }

    /// The vocabulary of the values counted.
    pub fn finish(mut self, min_count: u64) -> Tokens {
        if !self.text {
            for (t, c) in std::mem::take(&mut self.texts) {
                if let Some(x) = canonical_int(&t) {
                    *self.ints.entry(x).or_insert(0) += c;
                }
            }
        }
        counted_vocabulary(self.ints, &self.texts, min_count)
    }
}

/// The vocabulary of counted tokens: the texts when any was counted, else the integers, each
/// kept at least `min_count` times, in id order (`ranked`).
pub(super) fn counted_vocabulary(
    ints: HashMap<i64, u32>,
    texts: &HashMap<String, u32>,
    min_count: u64,
) -> Tokens {
    if !texts.is_empty() {
        let (keys, counts): (Vec<&str>, Vec<u32>) =
            texts.iter().map(|(t, &c)| (t.as_str(), c)).unzip();
        let order = ranked(&keys, &counts, min_count);
        return <&str>::into_tokens(order.iter().map(|&p| keys[p as usize]).collect());
    }
    let (keys, counts): (Vec<i64>, Vec<u32>) = ints.into_iter().unzip();
    let order = ranked(&keys, &counts, min_count);
    Tokens::Int(order.iter().map(|&p| keys[p as usize]).collect())
}
