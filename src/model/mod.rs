//! The funnel model: shared sparse embeddings and the chain of stage blocks, built from a small
//! kit (seeded parameter builder, blocks with a train/infer mode), with one device seam. One
//! chain for every funnel depth; variants are chosen by the pipeline, never by copies of code.

mod aitm;
pub mod backend;
mod bottom;
mod build;
mod chain;
mod embedding;
mod heads;
mod input;
pub mod kit;
mod linear;
mod ops;
mod persist;
mod sparse_optim;
mod tower;
pub mod transfer;
pub(crate) mod weights_file;

pub use chain::{ChainOutput, FunnelModel};
pub use embedding::{EmbeddingStore, SparseOptimizer, Table};
pub use heads::HeadOutputs;
pub use linear::Linear;
pub use tower::Tower;
