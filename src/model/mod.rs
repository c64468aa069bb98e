//! The funnel model: shared sparse embeddings, one tower per stage, and a head. One chain for every
//! funnel depth; variants are chosen by the pipeline, never by copies of this code.

mod embedding;
mod head;
mod ops;
mod tower;
mod weights_file;

pub use embedding::{EmbeddingStore, SparseOptimizer, Table};
pub use head::{Head, StageProbs};
pub use tower::Tower;
use weights_file::Source;

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;

use crate::config::Pipeline;
use crate::data::{Batch, Dataset};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::optim::DenseOptimizer;
use crate::rng::Rng;

pub struct FunnelModel {
    pub store: EmbeddingStore,
    pub towers: Vec<Tower>,
    pub head: Head,
    /// Checkpoint names of the towers (stage names), in stage order.
    tower_names: Vec<String>,
    numerics: usize,
    initial_state: f32,
    dev: Device,
}

impl FunnelModel {
    /// A freshly initialised model: every random draw comes from the pipeline seed.
    pub fn new(p: &Pipeline, enc: &Encoders) -> Result<Self> {
        Self::build(p, enc, p.embedding_init_std)
    }

    /// The model saved at `weights` (a run directory's), without drawing initial tables first.
    pub fn open(p: &Pipeline, enc: &Encoders, weights: &Path) -> Result<Self> {
        let mut model = Self::build(p, enc, 0.0)?;
        model.load(weights)?;
        Ok(model)
    }

    fn build(p: &Pipeline, enc: &Encoders, embedding_std: f64) -> Result<Self> {
        let dev = Device::Cpu;
        let seed = p.train.seed;
        let opt = SparseOptimizer::from_config(&p.train.embedding_optimizer);
        let initial_state = p.train.embedding_optimizer.initial_accumulator as f32;
        let tables = p
            .categorical
            .iter()
            .zip(&enc.categorical)
            .enumerate()
            .map(|(f, (spec, e))| {
                let mut rng = Rng::stream(seed, &format!("init/embedding/{f}"));
                Table::new(
                    &spec.name,
                    e.vocab_size(),
                    spec.dim,
                    embedding_std,
                    &opt,
                    initial_state,
                    &mut rng,
                )
            })
            .collect();
        let store = EmbeddingStore::new(tables, opt);
        let input = store.width() + p.numeric.len();
        let towers = p
            .stages
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let mut rng = Rng::stream(seed, &format!("init/tower/{k}"));
                Tower::new(
                    input,
                    &s.tower.hidden,
                    s.tower.activation,
                    s.tower.dropout,
                    &mut rng,
                    &dev,
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let weights: Vec<f64> = p.stages.iter().map(|s| s.loss_weight).collect();
        Ok(FunnelModel {
            store,
            towers,
            head: Head::new(p.head, &weights, &dev)?,
            tower_names: p.stages.iter().map(|s| s.name.clone()).collect(),
            numerics: p.numeric.len(),
            initial_state,
            dev,
        })
    }

    pub fn stages(&self) -> usize {
        self.towers.len()
    }

    fn input_width(&self) -> usize {
        self.store.width() + self.numerics
    }

    /// The input rows of a batch: embeddings, then numeric features.
    fn input(&self, b: &Batch) -> Vec<f32> {
        let (w, e, f) = (
            self.input_width(),
            self.store.width(),
            self.store.tables.len(),
        );
        let mut x = vec![0f32; b.rows * w];
        // The gather is memory-latency bound (random rows of large tables): split it over the
        // pool's threads in blocks of rows.
        const BLOCK: usize = 256;
        x.par_chunks_mut(BLOCK * w)
            .enumerate()
            .for_each(|(blk, rows)| {
                for (j, row) in rows.chunks_exact_mut(w).enumerate() {
                    let r = blk * BLOCK + j;
                    if let Some(ahead) = b.cat.get((r + 4) * f..(r + 5) * f) {
                        self.store.prefetch_row(ahead);
                    }
                    self.store
                        .gather_row(&b.cat[r * f..(r + 1) * f], &mut row[..e]);
                    row[e..].copy_from_slice(&b.num[r * self.numerics..(r + 1) * self.numerics]);
                }
            });
        x
    }

    fn logits(&self, x: &Tensor, mut dropout_rng: Option<&mut Rng>) -> Result<Tensor> {
        let cols = self
            .towers
            .iter()
            .map(|t| t.forward(x, dropout_rng.as_deref_mut()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&cols, 1)?)
    }

    /// One optimisation step on a batch; returns the batch loss.
    pub fn train_step(
        &mut self,
        b: &Batch,
        dense: &mut DenseOptimizer,
        dropout_rng: &mut Rng,
    ) -> Result<f64> {
        let w = self.input_width();
        let x = Var::from_vec(self.input(b), (b.rows, w), &self.dev)?;
        let labels = Tensor::from_slice(&b.labels, (b.rows, self.stages()), &self.dev)?;
        let logits = self.logits(x.as_tensor(), Some(dropout_rng))?;
        let loss = self.head.loss(&logits, &labels)?;
        let value = loss.to_scalar::<f32>()? as f64;
        let grads = loss.backward()?;
        let gx = grads
            .get(x.as_tensor())
            .ok_or_else(|| Error::Internal("no gradient reached the input".into()))?;
        // The input gradient is read in place (no copy out of candle), and the sparse update
        // runs beside the towers' optimizer step: they touch disjoint weights.
        let (storage, layout) = gx.storage_and_layout();
        let gx = match (&*storage, layout.contiguous_offsets()) {
            (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
                &cpu.as_slice::<f32>()?[start..end]
            }
            _ => {
                return Err(Error::Internal(
                    "the input gradient is not a contiguous CPU tensor".into(),
                ));
            }
        };
        let store = &mut self.store;
        let (stepped, ()) = rayon::join(
            || dense.step(&grads),
            || store.apply_gradient(&b.cat, gx, w),
        );
        stepped?;
        Ok(value)
    }

    /// Logits of every row of a dataset (rows x stages, row-major), in inference mode.
    pub fn predict_logits(&self, d: &Dataset, batch_size: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(d.rows * self.stages());
        let w = self.input_width();
        for start in (0..d.rows).step_by(batch_size) {
            let end = (start + batch_size).min(d.rows);
            let b = d.batch_range(start, end);
            let x = Tensor::from_vec(self.input(&b), (b.rows, w), &self.dev)?;
            let logits = self.logits(&x, None)?;
            out.extend(logits.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    pub fn dense_vars(&self) -> Vec<Var> {
        self.named_dense().into_iter().map(|(_, v)| v).collect()
    }

    fn named_dense(&self) -> Vec<(String, Var)> {
        self.towers
            .iter()
            .zip(&self.tower_names)
            .flat_map(|(t, name)| t.params(&format!("towers.{name}")))
            .collect()
    }

    /// Save every weight as `embeddings.<feature>` and `towers.<stage>.<layer>.weight|bias`,
    /// one tensor in memory at a time.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut entries: Vec<(String, Source<'_>)> = self
            .store
            .tables
            .iter()
            .map(|t| (format!("embeddings.{}", t.name), Source::Table(t)))
            .collect();
        for (name, v) in self.named_dense() {
            let values = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            entries.push((name, Source::Dense(values, v.dims().to_vec())));
        }
        weights_file::write(path, entries)
    }

    /// Load weights saved by `save`; every tensor must be present with the expected shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let mut file = weights_file::Reader::open(path)?;
        for t in self.store.tables.iter_mut() {
            let w = file.take(&format!("embeddings.{}", t.name), &[t.vocab, t.dim])?;
            t.set_weights(&w, &self.store.opt, self.initial_state);
        }
        for (name, v) in self.named_dense() {
            let w = file.take(&name, v.dims())?;
            v.set(&Tensor::from_vec(w, v.dims(), &self.dev)?)?;
        }
        if let Some(extra) = file.left_over() {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Err(Error::run(
                dir,
                format!("weights hold a tensor `{extra}` the pipeline does not declare"),
            ));
        }
        Ok(())
    }
}
