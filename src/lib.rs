//! funnel: train multi-stage conversion funnels (ESMM and its variants) from a YAML pipeline.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod features;
pub mod fsutil;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod numerics;
pub mod optim;
pub mod progress;
pub mod rng;
pub mod runtime;
pub mod train;
pub mod truth;

pub use error::{Error, Result};
