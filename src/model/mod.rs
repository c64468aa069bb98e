//! The funnel model: shared sparse embeddings and the chain of stage blocks, built from a small
//! kit (seeded parameter builder, blocks with a train/infer mode), with one device seam. One
//! chain for every funnel depth; variants are chosen by the pipeline, never by copies of code.

mod aitm;
mod attend;
pub mod backend;
mod bottom;
mod build;
mod chain;
mod chain_input;
mod dense;
mod din;
mod din_ops;
mod embedding;
mod export;
pub mod export_kit;
mod gather;
mod heads;
mod input;
pub mod kit;
mod linear;
mod local_store;
mod mapped_store;
mod mix;
mod ops;
mod persist;
mod pooling;
pub mod row_store;
mod sparse_optim;
mod tower;
pub mod transfer;
mod walk;
pub(crate) mod weights_file;

pub use chain::{ChainOutput, FunnelModel};
pub use chain_input::ChainInput;
pub use embedding::{SparseOptimizer, Table};
pub use export::{NUMERIC_INPUT, ids_input, prediction_columns, token_inputs};
pub use heads::HeadOutputs;
pub use linear::Linear;
pub use local_store::LocalStore;
pub use mapped_store::MappedStore;
pub use tower::Tower;
pub use walk::TableMut;
