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

use candle_core::backprop::GradStore;
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

    /// Every tower's logit column, towers in parallel. With `dropout`, one generator per tower
    /// (training mode); without, inference.
    fn tower_outputs(&self, x: &Tensor, dropout: Option<&mut [Rng]>) -> Result<Vec<Tensor>> {
        let outs: candle_core::Result<Vec<Tensor>> = match dropout {
            Some(rngs) => self
                .towers
                .par_iter()
                .zip(rngs.par_iter_mut())
                .map(|(t, r)| t.forward(x, Some(r)))
                .collect(),
            None => self.towers.par_iter().map(|t| t.forward(x, None)).collect(),
        };
        Ok(outs?)
    }

    /// One optimisation step on a batch; returns the batch loss.
    ///
    /// The towers only meet in the head, so the step runs them side by side: forward passes in
    /// parallel; the head's loss and its gradient with respect to the logits on a small graph of
    /// its own; then each tower's backward pass, in parallel, from its logit's gradient g_k
    /// (the gradient of sum(z_k * g_k) is the chain rule through the head). The input's gradient
    /// is the sum of the towers' contributions, in stage order.
    pub fn train_step(
        &mut self,
        b: &Batch,
        dense: &mut DenseOptimizer,
        dropout_rng: &mut Rng,
    ) -> Result<f64> {
        let w = self.input_width();
        let x = Var::from_vec(self.input(b), (b.rows, w), &self.dev)?;
        let labels = Tensor::from_slice(&b.labels, (b.rows, self.stages()), &self.dev)?;
        // Each tower draws its dropout masks from its own stream, split off the step's stream.
        let mut rngs: Vec<Rng> = (0..self.stages()).map(|_| dropout_rng.split()).collect();
        let (value, grads) = self.gradients(&x, &labels, &mut rngs)?;
        let gx = input_gradient(&grads, x.as_tensor())?;
        // The sparse update runs beside the towers' optimizer step: they touch disjoint weights.
        let store = &mut self.store;
        let (stepped, ()) = rayon::join(
            || dense.step(&grads),
            || store.apply_gradient(&b.cat, &gx, w),
        );
        stepped?;
        Ok(value)
    }

    /// The batch loss and one gradient store per tower (holding its parameters' gradients and
    /// its contribution to the input's), computed as `train_step` describes.
    fn gradients(
        &self,
        x: &Var,
        labels: &Tensor,
        rngs: &mut [Rng],
    ) -> Result<(f64, Vec<GradStore>)> {
        let outs = self.tower_outputs(x.as_tensor(), Some(rngs))?;
        let detached: Vec<Tensor> = outs.iter().map(Tensor::detach).collect();
        let z = Var::from_tensor(&Tensor::cat(&detached, 1)?)?;
        let loss = self.head.loss(z.as_tensor(), labels)?;
        let value = loss.to_scalar::<f32>()? as f64;
        let gz = loss
            .backward()?
            .get(z.as_tensor())
            .ok_or_else(|| Error::Internal("no gradient reached the logits".into()))?
            .clone();
        let grads = outs
            .par_iter()
            .enumerate()
            .map(|(k, out)| out.mul(&gz.narrow(1, k, 1)?)?.sum_all()?.backward())
            .collect::<candle_core::Result<Vec<GradStore>>>()?;
        Ok((value, grads))
    }

    /// Logits of every row of a dataset (rows x stages, row-major), in inference mode.
    pub fn predict_logits(&self, d: &Dataset, batch_size: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(d.rows * self.stages());
        let w = self.input_width();
        for start in (0..d.rows).step_by(batch_size) {
            let end = (start + batch_size).min(d.rows);
            let b = d.batch_range(start, end);
            let x = Tensor::from_vec(self.input(&b), (b.rows, w), &self.dev)?;
            let logits = Tensor::cat(&self.tower_outputs(&x, None)?, 1)?;
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

/// The sum over towers of the input's gradient (rows x width, row-major), in stage order, read
/// in place from each tower's gradient store.
fn input_gradient(grads: &[GradStore], x: &Tensor) -> Result<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    for g in grads {
        let Some(t) = g.get(x) else { continue };
        let (storage, layout) = t.storage_and_layout();
        let values = match (&*storage, layout.contiguous_offsets()) {
            (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
                &cpu.as_slice::<f32>()?[start..end]
            }
            _ => {
                return Err(Error::Internal(
                    "the input gradient is not a contiguous CPU tensor".into(),
                ));
            }
        };
        if sum.is_empty() {
            sum.extend_from_slice(values);
        } else {
            for (s, v) in sum.iter_mut().zip(values) {
                *s += v;
            }
        }
    }
    if sum.len() != x.elem_count() {
        return Err(Error::Internal("no gradient reached the input".into()));
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split backward (head first, then each tower from its logit's gradient) gives the
    /// loss and gradients of one backward pass through the whole graph, for three stages with
    /// different activations, one of them with dropout.
    #[test]
    fn split_backward_equals_one_graph() {
        let yaml = "name: t\ndata:\n  train: { path: none.csv }\nfeatures:\n  categorical:\n    - { name: a, dim: 4 }\n    - { name: b, dim: 3 }\n  numeric:\n    - { name: n }\nstages:\n  - { name: s0, label: { column: y0 }, tower: { hidden: [8, 5] } }\n  - { name: s1, label: { column: y1 }, tower: { hidden: [6], activation: tanh, dropout: 0.3 } }\n  - { name: s2, label: { column: y2 }, tower: { hidden: [4], activation: silu } }\n";
        let p = Pipeline::from_text(Path::new("t.yaml"), yaml).unwrap();
        let enc = Encoders::from_json(r#"{"categorical":[{"name":"a","column":"a","hash_buckets":20},{"name":"b","column":"b","hash_buckets":9}],"numeric":[{"name":"n","column":"n","transform":"none","missing":"mean","shift":0.0,"scale":1.0,"fill":0.0}]}"#).unwrap();
        let model = FunnelModel::new(&p, &enc).unwrap();
        let mut r = Rng::stream(3, "test");
        let rows = 12;
        let cat: Vec<u32> = (0..rows * 2).map(|_| 3 + r.below(9) as u32).collect();
        let num: Vec<f32> = (0..rows).map(|_| r.normal() as f32).collect();
        let mut labels = Vec::new();
        for _ in 0..rows {
            let mut reached = 1.0;
            for _ in 0..3 {
                reached *= (r.uniform() < 0.6) as u8 as f32;
                labels.push(reached);
            }
        }
        let b = Batch {
            rows,
            cat,
            num,
            labels,
        };
        let w = model.input_width();
        let x = Var::from_vec(model.input(&b), (rows, w), &model.dev).unwrap();
        let y = Tensor::from_slice(&b.labels, (rows, 3), &model.dev).unwrap();
        // The same dropout masks in both passes: each starts from the same per-tower streams.
        let streams = || -> Vec<Rng> { (0..3).map(|k| Rng::stream(5, &format!("d{k}"))).collect() };

        // The reference: one graph from the input through every tower to the loss.
        let outs = model
            .tower_outputs(x.as_tensor(), Some(&mut streams()))
            .unwrap();
        let loss = model
            .head
            .loss(&Tensor::cat(&outs, 1).unwrap(), &y)
            .unwrap();
        let whole = loss.backward().unwrap();

        let (value, split) = model.gradients(&x, &y, &mut streams()).unwrap();
        assert!((value - loss.to_scalar::<f32>().unwrap() as f64).abs() < 1e-6);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() <= 1e-6 * (1.0 + v.abs()), "{u} vs {v}");
            }
        };
        for var in model.dense_vars() {
            let reference = whole.get(var.as_tensor()).unwrap();
            let got = split.iter().find_map(|g| g.get(var.as_tensor())).unwrap();
            close(&flat(got), &flat(reference));
        }
        let gx = input_gradient(&split, x.as_tensor()).unwrap();
        let reference = flat(whole.get(x.as_tensor()).unwrap());
        assert!(reference.iter().any(|&g| g != 0.0));
        close(&gx, &reference);
    }
}
