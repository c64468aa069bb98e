//! Bottoms: blocks between the embeddings and the towers, shared by the stages. Each kind is a
//! file implementing `Bottom` (a shared MLP, MMoE, PLE, an MLP per group of stages); `build`
//! maps the pipeline's kind to it, and the gates the mixtures share live here.

mod groups;
mod mmoe;
mod ple;
mod shared;

use candle_core::{Result, Tensor};

use super::export_kit::ExportKit;
use super::kit::{Block, Mode, ParamBuilder};
use super::linear::Linear;
use super::tower::Mlp;
use crate::config::{BottomKind, BottomSpec};
use crate::onnx::Value;

/// A block between the embeddings and the towers.
pub trait Bottom: Send + Sync {
    /// Width of what each stage's tower reads.
    fn width(&self) -> usize;

    /// Each stage's input (rows x width), from the shared input rows.
    fn forward(&self, x: &Tensor, stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>>;

    /// What `forward` computes in inference, as nodes of an exported graph.
    fn export(&self, kit: &ExportKit, x: &Value, stages: usize)
    -> crate::error::Result<Vec<Value>>;
}

/// The bottom `spec` asks for over `input` columns, its parameters under the builder's path,
/// for the stages named `stages` (in stage order).
pub fn build(
    pb: &mut ParamBuilder<'_>,
    input: usize,
    spec: &BottomSpec,
    stages: &[String],
) -> Result<Box<dyn Bottom>> {
    Ok(match spec.kind {
        BottomKind::SharedBottom => Box::new(shared::SharedBottom::new(pb, input, spec)?),
        BottomKind::Mmoe => Box::new(mmoe::Mmoe::new(pb, input, spec, stages)?),
        BottomKind::Ple => Box::new(ple::Ple::new(pb, input, spec, stages)?),
        BottomKind::StageGroups => Box::new(groups::StageGroups::new(pb, input, spec)?),
    })
}

/// A Glorot-uniform gate from `input` to one weight per expert (no activation follows).
fn gate(pb: &mut ParamBuilder<'_>, input: usize, experts: usize) -> Result<Linear> {
    Linear::new(pb, input, experts, input + experts)
}

/// `n` expert MLPs under `<path>.<e>`.
fn experts(
    pb: &mut ParamBuilder<'_>,
    n: usize,
    input: usize,
    spec: &BottomSpec,
) -> Result<Vec<Mlp>> {
    (0..n)
        .map(|e| Mlp::new(&mut pb.pp(&e.to_string()), input, &spec.mlp))
        .collect()
}

/// Every expert's output on `x`.
fn run_experts(experts: &[Mlp], x: &Tensor, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
    experts.iter().map(|e| e.forward(x, mode)).collect()
}

/// Experts' outputs side by side (rows x E·H): what `mix` reads.
fn side_by_side(outs: &[&Tensor]) -> Result<Tensor> {
    Tensor::cat(outs, 1)
}

/// A softmax gate from `x` over the experts' outputs side by side (`side_by_side`):
/// Σ_e softmax(W x + b)_e · out_e, one fused op (`backend::mix`).
fn mix(gate: &Linear, x: &Tensor, stacked: &Tensor, mode: &Mode<'_>) -> Result<Tensor> {
    let w = softmax_rows(&gate.forward_relu(x, mode, false)?)?;
    super::backend::mix(&w, stacked)
}

/// `mix` as nodes of an exported graph: the gate's softmax weights times the experts' outputs
/// (rows x E x H), summed over the experts.
fn export_mix(
    kit: &ExportKit,
    gate: &Linear,
    x: &Value,
    outs: &[&Value],
) -> crate::error::Result<Value> {
    let (e, h) = (outs.len(), outs[0].cols);
    let w = gate
        .export(kit, x)?
        .softmax(1)
        .reshape(&[-1, e as i64, 1], 0);
    let stacked: Vec<Value> = outs.iter().map(|&o| o.clone()).collect();
    let stacked = Value::concat(&stacked, 1).reshape(&[-1, e as i64, h as i64], 0);
    Ok(stacked.mul(&w).sum(1, false, h))
}

/// Every expert's output on `x`, as nodes of an exported graph.
fn export_experts(kit: &ExportKit, experts: &[Mlp], x: &Value) -> crate::error::Result<Vec<Value>> {
    experts.iter().map(|e| e.export(kit, x)).collect()
}

/// Softmax over each row, shifted by the (detached) row maximum so exp never overflows.
fn softmax_rows(a: &Tensor) -> Result<Tensor> {
    let m = a.max_keepdim(1)?.detach();
    let e = a.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

#[cfg(test)]
mod tests;
