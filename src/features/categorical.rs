//! Categorical encoders: a vocabulary fitted on the training split, or hash buckets.

use serde::{Deserialize, Serialize};

use crate::config::CategoricalSpec;
use std::sync::OnceLock;

use rustc_hash::FxHashMap as HashMap;

use super::Routing;
use super::tokens::*;
use super::*;
use crate::error::{Error, Result};
use crate::source::{Cat, Column};

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
    /// An encoder of `spec`'s name, column and hashing, before its tokens are fitted.
    pub(super) fn unfitted(spec: &CategoricalSpec) -> Self {
        CategoricalEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            tokens: Tokens::default(),
            hash_buckets: spec.hash_buckets,
            index: OnceLock::new(),
        }
    }

    /// The encoder of `spec` with the vocabulary `tokens` (none for a hashed feature).
    pub fn with_tokens(spec: &CategoricalSpec, tokens: Tokens) -> Self {
        let mut enc = Self::unfitted(spec);
        enc.tokens = tokens;
        enc
    }

    /// Fit the vocabulary on part 0 of `routing` and encode every part, reading the column once.
    pub fn fit_encode(
        spec: &CategoricalSpec,
        col: &Column<'_>,
        routing: &Routing,
    ) -> Result<(Self, Vec<Vec<u32>>)> {
        let mut enc = Self::unfitted(spec);
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
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
