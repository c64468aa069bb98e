//! Multi-valued columns read and encoded: each row's tokens (a list cell, or a text cell cut at
//! a separator) with their weights (inline, from a weight column, or none), checked and
//! truncated to `max_len`; encoded by a fitted vocabulary, fitted and encoded in one pass, or
//! counted a range of rows at a time for a streamed fit.

use rustc_hash::FxHashMap as HashMap;

use super::bags::{BagParts, Bags};
use super::tokens::{Provisional, TokenKey, Tokens, counted_vocabulary};
use super::{CategoricalEncoder, Routing};
use crate::config::{EmptyList, KeepTokens, MultiValuedSpec, TokenWeights};
use crate::error::Result;
use crate::layout::Pooling;
use crate::source::{Cat, Column};

/// Fit the vocabulary on part 0's tokens (unless `fitted` is given) and encode every part,
/// reading the column (and its weight column) once.
pub fn encode_bags(
    spec: &MultiValuedSpec,
    col: &Column<'_>,
    weights: Option<&Column<'_>>,
    routing: &Routing,
    fitted: Option<&CategoricalEncoder>,
) -> Result<(Option<CategoricalEncoder>, BagParts)> {
    let mut rows = RowReader::new(spec, col, weights)?;
    if let Some(enc) = fitted {
        let parts = rows.encode(routing, |_, cat| enc.encode(cat))?;
        return Ok((None, parts));
    }
    let mut enc = CategoricalEncoder::unfitted(&spec.vocabulary);
    if spec.vocabulary.hash_buckets.is_some() {
        let parts = rows.encode(routing, |_, cat| enc.encode(cat))?;
        return Ok((Some(enc), parts));
    }
    let parts = if col.is_integer_list() {
        rows.fit::<i64>(routing, &mut enc, |c| match c {
            Cat::Int(x) => Some(x),
            _ => None,
        })?
    } else {
        rows.fit::<&str>(routing, &mut enc, |c| match c {
            Cat::Str(t) => Some(t),
            _ => None,
        })?
    };
    Ok((Some(enc), parts))
}

/// A multi-valued feature's vocabulary gathered a range of rows at a time (streamed encoding):
/// the part-0 tokens of each row as `encode_bags` reads them (weights checked, lists
/// truncated), counted by the same keys, so the same rows give the same vocabulary.
#[derive(Default)]
pub struct BagCounts {
    ints: HashMap<i64, u32>,
    texts: HashMap<String, u32>,
}

impl BagCounts {
    /// Count the training tokens (part 0 of `routing`) of `col`, weighted by `weights`.
    pub fn add(
        &mut self,
        spec: &MultiValuedSpec,
        col: &Column<'_>,
        weights: Option<&Column<'_>>,
        routing: &Routing,
    ) -> Result<()> {
        let mut rows = RowReader::new(spec, col, weights)?;
        let ints = col.is_integer_list();
        rows.visit_rows(routing, |reader, part, _| {
            if part == 0 {
                for &c in &reader.tokens {
                    match c {
                        Cat::Int(x) if ints => *self.ints.entry(x).or_insert(0) += 1,
                        Cat::Str(t) if !ints => match self.texts.get_mut(t) {
                            Some(n) => *n += 1,
                            None => {
                                self.texts.insert(t.to_string(), 1);
                            }
                        },
                        _ => {}
                    }
                }
            }
        })
    }

    /// The vocabulary of the tokens counted.
    pub fn finish(self, min_count: u64) -> Tokens {
        counted_vocabulary(self.ints, &self.texts, min_count)
    }
}

/// The flat weights of a weight column, and each row's span of them.
struct ColumnWeights {
    spans: Vec<Option<(usize, usize)>>,
    values: Vec<f32>,
}

fn read_weights(col: &Column<'_>, separator: &str) -> Result<ColumnWeights> {
    let mut w = ColumnWeights {
        spans: Vec::new(),
        values: Vec::new(),
    };
    col.visit_lists(separator, |i, list| {
        let Some(list) = list else {
            w.spans.push(None);
            return Ok(());
        };
        let start = w.values.len();
        for v in list {
            w.values.push(match *v {
                Cat::Int(x) => x as f32,
                Cat::Str(t) => t
                    .trim()
                    .parse::<f32>()
                    .map_err(|_| col.error(Some(i), format!("weight {t:?} is not a number")))?,
                Cat::Null => return Err(col.error(Some(i), "a weight is missing")),
            });
        }
        w.spans.push(Some((start, w.values.len())));
        Ok(())
    })?;
    Ok(w)
}

/// Reads a column's rows into tokens and weights, one row at a time.
struct RowReader<'c> {
    spec: &'c MultiValuedSpec,
    col: &'c Column<'c>,
    column_weights: Option<ColumnWeights>,
    /// The row being read.
    tokens: Vec<Cat<'c>>,
    weights: Vec<f32>,
}

impl<'c> RowReader<'c> {
    /// A reader of `col`'s rows, with their weights from `weights` when the feature has a
    /// weight column.
    fn new(
        spec: &'c MultiValuedSpec,
        col: &'c Column<'c>,
        weights: Option<&Column<'_>>,
    ) -> Result<RowReader<'c>> {
        let column_weights = match (&spec.weights, weights) {
            (TokenWeights::Column(_), Some(w)) => Some(read_weights(w, &spec.separator)?),
            _ => None,
        };
        Ok(RowReader {
            spec,
            col,
            column_weights,
            tokens: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// Read row `i` (its list as visited) into `tokens` and `weights`; true when it was
    /// truncated.
    fn read(&mut self, i: usize, list: Option<&[Cat<'c>]>) -> Result<bool> {
        let spec = self.spec;
        self.tokens.clear();
        self.weights.clear();
        let Some(list) = list else {
            self.tokens.push(Cat::Null);
            self.weights.push(1.0);
            return Ok(false);
        };
        match &spec.weights {
            TokenWeights::Inline(sep) => {
                for &c in list {
                    let Cat::Str(t) = c else {
                        return Err(self
                            .col
                            .error(
                                Some(i),
                                "inline weights (`weight_separator`) need text tokens",
                            )
                            .with_hint("give the weights in a `weight_column`"));
                    };
                    let Some((token, w)) = t.rsplit_once(sep.as_str()) else {
                        return Err(self.col.error(
                            Some(i),
                            format!("token {t:?} has no weight (written `token{sep}weight`)"),
                        ));
                    };
                    let w = w.trim().parse::<f32>().map_err(|_| {
                        self.col.error(
                            Some(i),
                            format!("the weight of token {t:?} is not a number"),
                        )
                    })?;
                    self.tokens.push(Cat::Str(token));
                    self.weights.push(w);
                }
            }
            TokenWeights::Column(name) => {
                let cw = self.column_weights.as_ref();
                let span = cw.and_then(|w| w.spans.get(i).copied().flatten());
                let values = match (cw, span) {
                    (Some(w), Some((a, b))) => &w.values[a..b],
                    _ => &[][..],
                };
                if values.len() != list.len() {
                    return Err(self.col.error(
                        Some(i),
                        format!(
                            "{} tokens but {} weights in column `{name}`",
                            list.len(),
                            values.len()
                        ),
                    ));
                }
                self.tokens.extend_from_slice(list);
                self.weights.extend_from_slice(values);
            }
            TokenWeights::None => {
                self.tokens.extend_from_slice(list);
                self.weights.resize(list.len(), 1.0);
            }
        }
        if let Some(&w) = self.weights.iter().find(|w| !w.is_finite()) {
            return Err(self.col.error(Some(i), format!("weight {w} is not finite")));
        }
        if spec.pooling == Pooling::Mean
            && let Some(&w) = self.weights.iter().find(|&&w| w <= 0.0)
        {
            return Err(self
                .col
                .error(Some(i), format!("weight {w} is not positive"))
                .with_hint(
                    "`pooling: mean` divides by the sum of the weights; use `pooling: sum` for weights that may be 0 or negative",
                ));
        }
        if self.tokens.is_empty() && spec.empty == EmptyList::Missing {
            self.tokens.push(Cat::Null);
            self.weights.push(1.0);
        }
        let Some(max) = spec.max_len.filter(|&m| self.tokens.len() > m) else {
            return Ok(false);
        };
        match spec.keep {
            KeepTokens::First => {
                self.tokens.truncate(max);
                self.weights.truncate(max);
            }
            KeepTokens::Last => {
                let cut = self.tokens.len() - max;
                self.tokens.drain(..cut);
                self.weights.drain(..cut);
            }
        }
        Ok(true)
    }

    /// Read every row of the column routed to a part, and hand `body` its part, its tokens
    /// and the part's bags (whose weights and offsets are written here; `body` writes the ids
    /// and returns how many the part holds after the row).
    fn each_row(
        &mut self,
        routing: &Routing,
        mut body: impl FnMut(usize, &[Cat<'c>], &mut Bags) -> usize,
    ) -> Result<BagParts> {
        let mut parts = BagParts {
            bags: vec![Bags::default(); routing.parts()],
            truncated: vec![0; routing.parts()],
        };
        let weighted = self.spec.weights != TokenWeights::None;
        self.visit_rows(routing, |reader, p, truncated| {
            parts.truncated[p] += truncated as usize;
            let bags = &mut parts.bags[p];
            let ids = body(p, &reader.tokens, bags);
            if weighted {
                bags.weights.extend_from_slice(&reader.weights);
            }
            bags.offsets.push(ids as u64);
        })?;
        Ok(parts)
    }

    /// Read each routed row's tokens (and weights) in turn and hand them to `row` with the
    /// row's part and whether its list was cut: no bags built (what counting needs).
    fn visit_rows(
        &mut self,
        routing: &Routing,
        mut row: impl FnMut(&Self, usize, bool),
    ) -> Result<()> {
        let (col, separator) = (self.col, self.spec.separator.as_str());
        col.visit_lists(separator, |i, list| {
            let Some(p) = routing.part(i) else {
                return Ok(());
            };
            let truncated = self.read(i, list)?;
            row(self, p, truncated);
            Ok(())
        })
    }

    /// Encode every part with `id` (part, token) -> id.
    fn encode(
        &mut self,
        routing: &Routing,
        mut id: impl FnMut(usize, Cat<'c>) -> u32,
    ) -> Result<BagParts> {
        self.each_row(routing, |p, tokens, bags| {
            bags.ids.extend(tokens.iter().map(|&c| id(p, c)));
            bags.ids.len()
        })
    }

    /// Fit the vocabulary over part 0's tokens (keys made by `key`) while giving every token a
    /// provisional id, then rewrite the ids.
    fn fit<K: TokenKey + 'c>(
        &mut self,
        routing: &Routing,
        enc: &mut CategoricalEncoder,
        key: impl Fn(Cat<'c>) -> Option<K>,
    ) -> Result<BagParts> {
        let mut prov = Provisional::<K>::new(routing);
        let mut parts = self.each_row(routing, |p, tokens, _| {
            for &c in tokens {
                prov.add(p, key(c));
            }
            prov.pushed(p)
        })?;
        let (tokens, ids) = prov.finish(self.spec.vocabulary.min_count);
        enc.tokens = tokens;
        for (bags, ids) in parts.bags.iter_mut().zip(ids) {
            bags.ids = ids;
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CategoricalSpec, CsvOptions, FileFormat, FileSource};
    use crate::features::{FIRST_TOKEN_ID, NULL_ID as MISSING, OOV_ID};
    use crate::source::Frame;

    fn spec(weights: TokenWeights, pooling: Pooling) -> MultiValuedSpec {
        MultiValuedSpec {
            vocabulary: CategoricalSpec {
                name: "tags".into(),
                column: "tags".into(),
                dim: 4,
                min_count: 2,
                hash_buckets: None,
                l2: None,
                allow_leak: false,
            },
            separator: "|".into(),
            weights,
            pooling,
            max_len: Some(3),
            keep: KeepTokens::First,
            empty: EmptyList::Own,
        }
    }

    fn csv(text: &str) -> (tempfile::TempDir, Frame) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let src = FileSource {
            path,
            format: FileFormat::Csv,
            csv: CsvOptions {
                separator: b',',
                header: true,
                null_values: vec![String::new(), "NA".into()],
                trim_whitespace: false,
            },
        };
        let f = Frame::read(&src, None).unwrap();
        (d, f)
    }

    /// Tokens counted over the fitting part only, ordered by count then text, `min_count` 2:
    /// `a` 3, `b` 2 (c once, `d` only in part 1). The empty cell is the empty list (no ids), `NA`
    /// is missing, a long row keeps its first 3 tokens and is counted, and part 1 is encoded
    /// with part 0's vocabulary.
    #[test]
    fn tokens_fit_on_the_first_part_and_encode_every_part() {
        let (_d, f) = csv("tags\na|b\nb|a|c\n\nNA\na|a|b|c|c\nd|a\n");
        let col = f.column("tags").unwrap();
        let routing = Routing::new(6, &[&[0, 1, 2, 3], &[4, 5]]);
        let s = spec(TokenWeights::None, Pooling::Mean);
        let (enc, parts) = encode_bags(&s, &col, None, &routing, None).unwrap();
        let enc = enc.unwrap();
        assert_eq!(enc.tokens.texts(), ["a", "b"]);
        let (a, b) = (FIRST_TOKEN_ID, FIRST_TOKEN_ID + 1);
        assert_eq!(parts.bags[0].ids, vec![a, b, b, a, OOV_ID, MISSING]);
        assert_eq!(parts.bags[0].offsets, vec![0, 2, 5, 5, 6]);
        assert_eq!(parts.bags[1].ids, vec![a, a, b, OOV_ID, a]);
        assert_eq!(parts.bags[1].offsets, vec![0, 3, 5]);
        assert_eq!(parts.truncated, vec![0, 1]);
        assert!(parts.bags[0].weights.is_empty());
        // The fitted vocabulary, used again, gives the same ids.
        let (none, again) = encode_bags(&s, &col, None, &routing, Some(&enc)).unwrap();
        assert!(none.is_none());
        assert_eq!(again.bags, parts.bags);
        // `keep: last` keeps the last 3 tokens; `empty: missing` makes the empty list missing.
        let last = MultiValuedSpec {
            keep: KeepTokens::Last,
            empty: EmptyList::Missing,
            ..s
        };
        let (_, p) = encode_bags(&last, &col, None, &routing, Some(&enc)).unwrap();
        assert_eq!(p.bags[0].ids[5], MISSING);
        assert_eq!(p.bags[1].ids[..3], [b, OOV_ID, OOV_ID]);
        // Taking rows builds a batch's bags.
        let t = parts.bags[0].take(&[3, 1, 2]);
        assert_eq!(t.ids, vec![MISSING, b, a, OOV_ID]);
        assert_eq!(t.offsets, vec![0, 1, 4, 4]);
    }

    /// Inline weights (`tag:w`) and a weight column give the same weights; a token without a
    /// weight, a weight that is not a number and, under mean pooling, a weight that is not
    /// positive are errors naming the row.
    #[test]
    fn weights_inline_or_in_a_column() {
        let (_d, f) = csv("tags,plain,w\na:0.5|b:2,a|b,0.5|2\nb:1,b,1\n");
        let routing = Routing::all(2);
        let inline = spec(TokenWeights::Inline(":".into()), Pooling::Sum);
        let (_, p) =
            encode_bags(&inline, &f.column("tags").unwrap(), None, &routing, None).unwrap();
        assert_eq!(p.bags[0].weights, vec![0.5, 2.0, 1.0]);
        let col = MultiValuedSpec {
            weights: TokenWeights::Column("w".into()),
            ..inline.clone()
        };
        let w = f.column("w").unwrap();
        let (_, q) =
            encode_bags(&col, &f.column("plain").unwrap(), Some(&w), &routing, None).unwrap();
        assert_eq!(q.bags[0].weights, p.bags[0].weights);
        assert_eq!(q.bags[0].offsets, p.bags[0].offsets);

        let (_d, bad) = csv("tags\na:1|b\n");
        let e = encode_bags(&inline, &bad.column("tags").unwrap(), None, &routing, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1") && e.contains("\"b\" has no weight"),
            "{e}"
        );
        let (_d, zero) = csv("tags\na:0|b:1\n");
        let mean = MultiValuedSpec {
            pooling: Pooling::Mean,
            ..inline
        };
        let e = encode_bags(&mean, &zero.column("tags").unwrap(), None, &routing, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight 0 is not positive"), "{e}");
    }

    /// A Parquet list column (text tokens, and integer tokens) with a parallel list of weights
    /// gives the bags the same rows give as text cells; a null list is missing, an empty one
    /// the empty list.
    #[test]
    fn parquet_list_columns_read_as_their_text_cells() {
        use polars::prelude::*;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.parquet");
        let text: Vec<Option<Series>> = vec![
            Some(Series::new("".into(), &["a", "b"])),
            Some(Series::new("".into(), &["b", "a", "c"])),
            Some(Series::new("".into(), Vec::<&str>::new())),
            None,
        ];
        let ints: Vec<Option<Series>> = vec![
            Some(Series::new("".into(), &[10i64, 20])),
            Some(Series::new("".into(), &[20i64, 10, 30])),
            Some(Series::new("".into(), Vec::<i64>::new())),
            None,
        ];
        let weights: Vec<Option<Series>> = vec![
            Some(Series::new("".into(), &[0.5f64, 2.0])),
            Some(Series::new("".into(), &[1.0f64, 1.0, 3.0])),
            Some(Series::new("".into(), Vec::<f64>::new())),
            None,
        ];
        let list = |name: &str, v: Vec<Option<Series>>| {
            let ca: ListChunked = v.into_iter().collect();
            ca.with_name(name.into()).into_series().into_column()
        };
        let mut df = DataFrame::new_infer_height(vec![
            list("tags", text),
            list("ids", ints),
            list("w", weights),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let src = FileSource {
            path: path.clone(),
            format: FileFormat::Parquet,
            csv: CsvOptions {
                separator: b',',
                header: true,
                null_values: vec![String::new()],
                trim_whitespace: false,
            },
        };
        let pq = Frame::read(&src, None).unwrap();
        let (_d, text_cells) =
            csv("tags,ids,w\na|b,10|20,0.5|2\nb|a|c,20|10|30,1|1|3\n,,\nNA,NA,NA\n");
        let routing = Routing::all(4);
        let mut s = spec(TokenWeights::Column("w".into()), Pooling::Sum);
        s.vocabulary.min_count = 1;
        for name in ["tags", "ids"] {
            let run = |f: &Frame| {
                let w = f.column("w").unwrap();
                encode_bags(&s, &f.column(name).unwrap(), Some(&w), &routing, None).unwrap()
            };
            let ((enc_pq, from_pq), (enc_csv, from_csv)) = (run(&pq), run(&text_cells));
            assert_eq!(from_pq.bags, from_csv.bags, "{name}");
            assert_eq!(enc_pq, enc_csv, "{name}");
            let b = &from_pq.bags[0];
            assert_eq!(b.offsets, vec![0, 2, 5, 5, 6], "{name}");
            assert_eq!(b.ids[5], MISSING);
            assert_eq!(b.weights, vec![0.5, 2.0, 1.0, 1.0, 3.0, 1.0]);
        }
        assert!(pq.column("ids").unwrap().is_integer_list());
    }
}
