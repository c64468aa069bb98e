//! `funnel export`: a finished run as an ONNX model (`model::FunnelModel::to_onnx`, opset 17)
//! and, beside it, the JSON sidecar a server needs to turn raw values into the graph's inputs:
//! which input reads which column and how (the run's encoders: vocabularies, hashing, bucket
//! boundaries, standardisation, missing-value rules), and how text was read (trimming, null
//! markers). `serve::Model::encode` is that recipe in Rust; docs/export.md states it.

use std::path::Path;

use serde_json::json;

use crate::checkpoint::Run;
use crate::config::{FileFormat, TokenWeights};
use crate::error::{Error, Result};
use crate::layout::Pooling;
use crate::model::{NUMERIC_INPUT, ids_input, prediction_columns, token_inputs};
use crate::source::Cleaning;

/// The sidecar's format version: bumped when its fields change meaning.
pub const SIDECAR_VERSION: u32 = 1;

/// ONNX files are protobuf messages, which cannot exceed 2 GiB.
const PROTOBUF_LIMIT: usize = (1 << 31) - 1;

/// An exported run: the ONNX model's bytes and its sidecar.
pub struct Exported {
    pub model: Vec<u8>,
    pub sidecar: serde_json::Value,
}

/// The run `r` as an ONNX model and its sidecar.
pub fn onnx(r: &Run) -> Result<Exported> {
    let p = &r.pipeline;
    let graph = r.model.to_onnx(p)?;
    if graph.constant_bytes() > PROTOBUF_LIMIT {
        return Err(too_large(graph.constant_bytes()));
    }
    let stages: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    let outputs = prediction_columns(&stages);
    let metadata = vec![
        ("funnel.pipeline".to_string(), p.name.clone()),
        ("funnel.stages".to_string(), stages.join(",")),
    ];
    let model = graph.encode(
        &p.name,
        &format!(
            "funnel run `{}`: each stage's conditional and cumulative probability from the encoded inputs; the sidecar JSON says how to encode them",
            p.name
        ),
        &metadata,
    );
    if model.len() > PROTOBUF_LIMIT {
        return Err(too_large(model.len()));
    }
    let ids: Vec<serde_json::Value> = p
        .categorical
        .iter()
        .map(|c| json!({"input": ids_input(&c.name), "feature": c.name, "column": c.column, "kind": "categorical"}))
        .chain(p.numeric.iter().filter(|n| n.buckets.is_some()).map(|n| {
            json!({"input": ids_input(&n.name), "feature": n.name, "column": n.column, "kind": "bucket"})
        }))
        .collect();
    let bags: Vec<serde_json::Value> = p
        .multi_valued
        .iter()
        .zip(r.encoders.empty_list_ids())
        .map(|(m, empty)| {
            let (tokens, weights) = token_inputs(&m.vocabulary.name);
            let weights_from = match &m.weights {
                TokenWeights::None => json!(null),
                TokenWeights::Inline(sep) => json!({"inline_separator": sep}),
                TokenWeights::Column(c) => json!({"column": c}),
            };
            json!({
                "tokens_input": tokens,
                "weights_input": (m.weights != TokenWeights::None).then_some(weights),
                "feature": m.vocabulary.name,
                "column": m.vocabulary.column,
                "separator": m.separator,
                "weights": weights_from,
                "pooling": match m.pooling {
                    Pooling::Sum => "sum",
                    Pooling::Mean => "mean",
                    Pooling::Max => "max",
                },
                "max_len": m.max_len,
                "keep": m.keep,
                "empty": m.empty,
                "empty_list_id": empty,
            })
        })
        .collect();
    let sequences: Vec<serde_json::Value> = p
        .sequences
        .iter()
        .map(|s| {
            let m = &s.tokens;
            json!({
                "tokens_input": token_inputs(&m.vocabulary.name).0,
                "feature": m.vocabulary.name,
                "column": m.vocabulary.column,
                "separator": m.separator,
                "max_len": m.max_len,
                "keep": m.keep,
                "target": p.embedded_fields()[s.target].0,
            })
        })
        .collect();
    let numeric: Vec<serde_json::Value> = p
        .numeric
        .iter()
        .filter(|n| n.feeds_value())
        .map(|n| json!({"feature": n.name, "column": n.column}))
        .collect();
    let encoders = serde_json::to_value(&r.encoders)
        .map_err(|e| Error::Internal(format!("encoders as JSON: {e}")))?;
    // The rules the training file was read by (none for Parquet, read as written).
    let (csv, rules) = (&p.train_source.csv, Cleaning::of(&p.train_source));
    let text = p.train_source.format == FileFormat::Csv;
    let sidecar = json!({
        "format": "funnel-onnx-sidecar",
        "version": SIDECAR_VERSION,
        "pipeline": p.name,
        "opset": crate::onnx::OPSET,
        "stages": stages,
        "inputs": {
            "ids": ids,
            "bags": bags,
            "sequences": sequences,
            "numeric": if numeric.is_empty() { serde_json::Value::Null } else {
                json!({"input": NUMERIC_INPUT, "columns": numeric})
            },
        },
        "outputs": outputs,
        "text": {
            "format": if text { "csv" } else { "parquet" },
            "separator": (csv.separator as char).to_string(),
            "header": csv.header,
            "trim_whitespace": rules.trims(),
            "null_values": rules.null_markers(),
        },
        "encoders": encoders,
    });
    Ok(Exported { model, sidecar })
}

/// A model of `bytes` past what an ONNX file holds.
fn too_large(bytes: usize) -> Error {
    Error::Usage(format!(
        "the model is {} MiB, past the 2 GiB an ONNX file can hold\n  hint: lower `embedding_dim` or the vocabularies (`min_count`, `hash_buckets`); the Rust serving API (`funnel::serve`) serves any size",
        bytes >> 20
    ))
}

/// The sidecar's path beside the model at `out`: `<out>.json`.
pub fn sidecar_path(out: &Path) -> std::path::PathBuf {
    let mut name = out.as_os_str().to_os_string();
    name.push(".json");
    name.into()
}
