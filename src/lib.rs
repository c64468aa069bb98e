//! funnel: train multi-stage conversion funnels (ESMM and its variants) from a YAML pipeline.
//!
//! The path of data: `config` (YAML → validated `Pipeline` with its `funnel`) → `data` (files →
//! encoded splits, via `features`) → batches → `model` (embedding store → chain) → `loss` →
//! `train` (the step and the loop) → `metrics`, `checkpoint`; `report` carries what a run says to
//! its front end (`cli`). docs/architecture.md has the whole picture.

pub mod checkpoint;
pub mod cli;
pub mod collective;
pub mod compare;
pub mod config;
pub mod data;
pub mod error;
pub mod export;
pub mod features;
pub mod fsutil;
pub mod funnel;
pub mod generate;
pub mod html;
pub mod init;
pub mod interrupt;
pub mod layout;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod numerics;
pub mod onnx;
pub mod optim;
pub mod prepare;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod scoring;
pub mod serve;
pub mod source;
pub mod spill;
#[cfg(test)]
mod testing;
pub mod times;
pub mod track;
pub mod train;

pub use error::{Error, Result};
