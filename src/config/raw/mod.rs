//! The pipeline YAML as written: strict serde structs (unknown keys are errors) with every default spelled out.
//!
//! Nothing here is checked beyond its type; `check` turns these into a validated `Pipeline`.
//! Serialising a `RawPipeline` back out gives the resolved pipeline stored in a run directory.

mod features;
mod shorthand;
mod stages;
mod train;

pub use features::*;
pub use shorthand::Shorthand;
pub use stages::*;
pub use train::*;

use serde::{Deserialize, Serialize};

use super::choices::{FileFormat, InconsistentRows, SplitName};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: String,
    pub data: RawData,
    pub features: RawFeatures,
    pub stages: Vec<RawStage>,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub train: RawTrain,
    #[serde(default)]
    pub inconsistent_rows: InconsistentRows,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// A file source or its path alone (`train: data.csv`).
    #[serde(deserialize_with = "shorthand::one")]
    pub train: RawSource,
    #[serde(
        default,
        deserialize_with = "shorthand::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid: Option<RawSource>,
    #[serde(
        default,
        deserialize_with = "shorthand::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub test: Option<RawSource>,
    /// A column carried through to predictions unchanged (e.g. a request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// A column grouping rows (e.g. the user) for group AUC: each group's AUC weighted by its
    /// rows, next to AUC, for every stage both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
}

/// A split: either a file (`path`, optional `format` and `csv`) or a share carved from another split.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<RawCsv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_from: Option<SplitName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Carve by time: the latest rows by this column (with `fraction`), or those from `from` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// With `time_column`: the first time of the split, a number in the column's unit or a
    /// date (`2017-12-03`, `2017-12-03 08:00:00`, UTC) compared as Unix seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub from: Option<String>,
}

/// A scalar read as its text (`from: 1512000000` and `from: "2017-12-03"` alike).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Scalar;
    impl serde::de::Visitor<'_> for Scalar {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number or a date")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(Scalar)
}

impl Shorthand for RawSource {
    const EXPECTING: &'static str = "a file path, or a block of keys (`path`, `format`, `csv`, or `split_from` with `fraction` or `time_column`)";
    fn from_shorthand(path: &str) -> Self {
        RawSource {
            path: Some(path.to_string()),
            ..RawSource::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCsv {
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "yes")]
    pub header: bool,
    /// Cell values (after trimming, when `trim_whitespace` is on) that mean "missing".
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    /// Strip spaces and tabs around every cell (files written as `a, b, c`).
    #[serde(default)]
    pub trim_whitespace: bool,
}

impl Default for RawCsv {
    fn default() -> Self {
        RawCsv {
            separator: default_separator(),
            header: true,
            null_values: default_nulls(),
            trim_whitespace: false,
        }
    }
}

fn default_separator() -> String {
    ",".into()
}

fn default_nulls() -> Vec<String> {
    vec![String::new()]
}

fn yes() -> bool {
    true
}
