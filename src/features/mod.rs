//! Feature encoders fitted on the training split: categorical vocabularies (or hash buckets) and
//! numeric transforms. They are saved in the run directory and reused unchanged by eval and predict.

mod bag_rows;
mod bags;
mod categorical;
mod numeric;
mod routing;
mod tokens;

pub use bag_rows::{BagCounts, encode_bags};
pub use bags::{BagParts, Bags};
pub use categorical::CategoricalEncoder;
pub(crate) use categorical::fnv1a;
pub use numeric::{NumericColumns, NumericEncoder, NumericFit, quantile_boundaries};
pub use routing::Routing;
pub use tokens::{TokenCounts, Tokens};

use serde::{Deserialize, Serialize};

/// Id of the padding row: never produced by data, its embedding stays zero.
pub const PAD_ID: u32 = 0;
/// Id of values unseen in training (or seen fewer than `min_count` times).
pub const OOV_ID: u32 = 1;
/// Id of missing values.
pub const NULL_ID: u32 = 2;
/// First id of a real value.
pub const FIRST_TOKEN_ID: u32 = 3;

/// Encoded feature columns of one split: categorical ids per feature, then numeric values per
/// feature.
pub type EncodedColumns = (Vec<Vec<u32>>, Vec<Vec<f32>>);

/// All encoders of a pipeline, in the pipeline's feature order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encoders {
    pub categorical: Vec<CategoricalEncoder>,
    pub numeric: Vec<NumericEncoder>,
    /// The multi-valued features' token vocabularies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi_valued: Vec<CategoricalEncoder>,
}

impl Encoders {
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// Rows of each embedded field's table, in `Pipeline::embedded_fields` order: each
    /// categorical feature's vocabulary (reserved rows included), then each bucketed numeric
    /// feature's buckets, then each multi-valued feature's vocabulary and one row more, the
    /// empty list's.
    pub fn table_rows(&self) -> Vec<usize> {
        self.categorical
            .iter()
            .map(CategoricalEncoder::vocab_size)
            .chain(self.numeric.iter().filter_map(NumericEncoder::bucket_rows))
            .chain(self.empty_list_ids().into_iter().map(|id| id + 1))
            .collect()
    }

    /// Each multi-valued feature's empty-list id: its table's last row (`table_rows`).
    pub fn empty_list_ids(&self) -> Vec<usize> {
        self.multi_valued
            .iter()
            .map(CategoricalEncoder::vocab_size)
            .collect()
    }

    /// Drop every vocabulary's lookup maps (tens of MB per million-token vocabulary).
    pub fn forget_indexes(&mut self) {
        for c in self.categorical.iter_mut().chain(&mut self.multi_valued) {
            c.forget_index();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::categorical::fnv1a;
    use super::tokens::{canonical_int, decimal, decimal_order};
    use super::*;
    use crate::config::{
        CategoricalSpec, CsvOptions, FileFormat, FileSource, MissingPolicy, NumericTransform,
    };
    use crate::source::{Cat, Frame};

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
            l2: None,
            allow_leak: false,
        }
    }

    /// An integer column (Parquet) and the same values as text (CSV) give the same vocabulary and
    /// ids, so a model trained on one can predict on the other.
    #[test]
    fn token_counts_over_pieces_fit_the_whole_column_vocabulary() {
        let d = tempfile::tempdir().unwrap();
        // Integers written two ways (7 and 7.0 count as one), then text among them: counted as
        // texts, every form its own token. Rows 9 and 10 are another part (validation), read
        // but not counted: their "abc" still makes the column text.
        for (cells, text) in [
            (
                vec!["7", "7.0", "12", "7", "12", "", "3", "3", "3", "5", "99"],
                false,
            ),
            (
                vec!["7", "7.0", "12", "7", "12", "", "3", "3", "3", "5", "abc"],
                true,
            ),
        ] {
            let csv = d.path().join("x.csv");
            std::fs::write(&csv, format!("x\n{}\n", cells.join("\n"))).unwrap();
            let frame = Frame::read(&source(&csv, FileFormat::Csv), None).unwrap();
            let col = frame.column("x").unwrap();
            let n = cells.len();
            let spec = CategoricalSpec {
                min_count: 2,
                ..spec_x()
            };
            let whole = Routing::new(n, &[&[0, 1, 2, 3, 4, 5, 6, 7, 8], &[9, 10]]);
            let (fitted, _) = CategoricalEncoder::fit_encode(&spec, &col, &whole).unwrap();
            // The same rows met in two pieces, as a file read a range at a time gives them.
            let mut counts = TokenCounts::default();
            counts
                .add(&col, &Routing::new(n, &[&[0, 1, 2, 3], &[]]))
                .unwrap();
            counts
                .add(&col, &Routing::new(n, &[&[4, 5, 6, 7, 8], &[9, 10]]))
                .unwrap();
            let tokens = counts.finish(spec.min_count);
            assert_eq!(tokens, fitted.tokens, "{cells:?}");
            // By hand: as integers 7 three times, 3 three times, 12 twice (5 once, under
            // `min_count`), ties by text; as texts 3 three times, then 12 and 7 twice each (7.0
            // once, under `min_count`; the tokens kept are integers, and kept so).
            let want: &[&str] = if text {
                &["3", "12", "7"]
            } else {
                &["3", "7", "12"]
            };
            assert_eq!(tokens.texts(), want);
        }
    }

    #[test]
    fn integer_and_text_columns_share_ids() {
        use crate::source::{TableColumn, write_table};
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
        for t in [
            "007", "+7", "-0", " 7", "7.5", "7.", "7.0x", "-0.0", "", "x", ".",
        ] {
            assert_eq!(canonical_int(t), None, "{t:?}");
        }
        // Integral floats as pandas writes them are their integers.
        for (t, x) in [("7.0", 7), ("-12.00", -12), ("0.0", 0)] {
            assert_eq!(canonical_int(t), Some(x), "{t:?}");
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
            boundaries: None,
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// A vocabulary fitted on any column (integers, text, empty cells) survives a round
            /// trip through JSON unchanged, gives every training value the id it got while
            /// fitting, and sends values never seen to the out-of-vocabulary id.
            #[test]
            fn vocabularies_round_trip_and_unseen_values_are_oov(
                cells in proptest::collection::vec(
                    prop_oneof![
                        (-30i64..30).prop_map(|v| v.to_string()),
                        (0u8..6).prop_map(|c| format!("t{c}")),
                        Just(String::new()),
                    ],
                    1..40,
                ),
                min_count in 1u64..3,
            ) {
                let d = tempfile::tempdir().unwrap();
                let csv = d.path().join("x.csv");
                let text: String = cells.iter().map(|c| format!("{c}\n")).collect();
                std::fs::write(&csv, format!("x\n{text}")).unwrap();
                let frame = Frame::read(&source(&csv, FileFormat::Csv), None).unwrap();
                let spec = CategoricalSpec { min_count, ..spec_x() };
                let routing = Routing::all(frame.len());
                let (enc, ids) =
                    CategoricalEncoder::fit_encode(&spec, &frame.column("x").unwrap(), &routing).unwrap();
                let json = serde_json::to_string(&enc).unwrap();
                let back: CategoricalEncoder = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&back, &enc);
                for (cell, &id) in cells.iter().zip(&ids[0]) {
                    let value = if cell.is_empty() { Cat::Null } else { Cat::Str(cell) };
                    prop_assert_eq!(back.encode(value), id);
                    let count = cells.iter().filter(|c| *c == cell).count() as u64;
                    if !cell.is_empty() && count < min_count {
                        prop_assert_eq!(id, OOV_ID);
                    }
                }
                for unseen in ["never-seen", "31", "-31"] {
                    prop_assert_eq!(back.encode(Cat::Str(unseen)), OOV_ID);
                }
            }
        }
    }
}
