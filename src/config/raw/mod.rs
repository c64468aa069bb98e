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
}

impl Shorthand for RawSource {
    const EXPECTING: &'static str =
        "a file path, or a block of keys (`path`, `format`, `csv`, or `split_from` and `fraction`)";
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
