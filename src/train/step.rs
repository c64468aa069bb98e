//! One optimisation step, owned by the trainer: forward through the chain, the loss, one
//! backward pass into one gradient store, the dense optimizer on that store, and the sparse
//! update of the embedding rows the batch touched.
//!
//! Two ways to get the gradients, chosen by the chain's structure, never by a model name:
//! - general: one backward pass through the whole graph. Always correct; a parameter that
//!   several stages read gets the sum of their contributions.
//! - separable (no parameter shared between stages, as in ESMM): the stages only meet in the
//!   loss, so the loss's gradient with respect to the logits and the auxiliary heads' outputs
//!   is taken on a small graph of its own, then each stage's backward runs side by side from
//!   its share g_k (the gradient of Σ z_k g_k is the chain rule through the loss). Same
//!   numbers, both cores busy.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use rayon::prelude::*;

use crate::collective::Collective;
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::loss::{Loss, Targets, funnel_loss, objective};
use crate::model::backend::with_f32;
use crate::model::kit::Dropout;
use crate::model::{ChainInput, ChainOutput, FunnelModel, HeadOutputs};
use crate::optim::DenseOptimizer;
use crate::rng::Rng;

pub use super::gradients::Gradients;
use super::gradnorm::GradNorm;

/// Which way `gradients` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    General,
    Separable,
}

impl Path {
    /// The fast path when the chain allows it.
    pub fn for_model(model: &FunnelModel) -> Path {
        if model.is_separable() {
            Path::Separable
        } else {
            Path::General
        }
    }
}

/// The loss and gradients of a batch, with the step's dropout draws. With `stage_weights`
/// (GradNorm's), the objective is Σ_k w_k L_k and each stage's gradient is taken on its own
/// (`weighted_gradients`), whatever the path.
pub fn gradients(
    model: &FunnelModel,
    input: &ChainInput<Var>,
    targets: &Targets,
    dropout: &Dropout,
    path: Path,
    stage_weights: Option<&[f64]>,
) -> Result<Gradients> {
    let out = model.forward(&input.tensors(), Some(dropout))?;
    let xs = &input.xs;
    if let Some(w) = stage_weights {
        let loss = funnel_loss(model.funnel(), &out, targets)?;
        return weighted_gradients(model, xs, &loss.stages, w);
    }
    let log_variance = model.log_variance().map(Var::as_tensor);
    let (loss, total, dense, input) = match path {
        Path::General => {
            let loss = funnel_loss(model.funnel(), &out, targets)?;
            let total = objective(&loss.stages, log_variance)?;
            let mut grads = [total.backward()?];
            let input = xs
                .iter()
                .map(|x| input_gradient(&mut grads, x.as_tensor()))
                .collect::<Result<Vec<_>>>()?;
            let [grads] = grads;
            (loss, total, grads, input)
        }
        Path::Separable => separable_gradients(model, xs, &out, targets, log_variance)?,
    };
    Ok(Gradients {
        dense,
        input,
        loss: total.to_scalar::<f32>()? as f64,
        stage_losses: loss
            .stages
            .to_vec1::<f32>()?
            .into_iter()
            .map(f64::from)
            .collect(),
        input_norms: None,
    })
}

/// A detached copy of `t` that gradients can be taken with respect to: where the separable
/// step cuts the graph.
fn cut(t: &Tensor) -> candle_core::Result<Var> {
    Var::from_tensor(&t.detach())
}

/// A step's loss, objective, parameter gradients and input gradients.
type Parts = (Loss, Tensor, GradStore, Vec<Vec<f32>>);

/// The separable step: the same loss and gradients as one pass through the whole graph, in
/// two parts. (1) The loss on detached copies of the logits and of the heads' outputs: a small
/// graph whose gradients g there are what the rest starts from (the gradient of Σ out · g is
/// the chain rule through the loss). (2) Each stage's pass, side by side, from Σ z_k g_k plus
/// its heads' Σ h g_h.
fn separable_gradients(
    model: &FunnelModel,
    xs: &[Var],
    out: &ChainOutput,
    targets: &Targets,
    log_variance: Option<&Tensor>,
) -> Result<Parts> {
    if !model.is_separable() {
        return Err(Error::Internal(
            "the separable step was asked of a chain whose stages share parameters".into(),
        ));
    }
    // (1) The loss alone.
    let z = cut(&out.logits)?;
    let mut heads = HeadOutputs::default();
    let mut head_copies = Vec::new();
    for (stage, kind, t) in out.heads.iter() {
        let v = cut(t)?;
        heads.insert(stage, kind, v.as_tensor().clone());
        head_copies.push((stage, t, v));
    }
    let loss = funnel_loss(
        model.funnel(),
        &ChainOutput {
            logits: z.as_tensor().clone(),
            stage_logits: Vec::new(),
            heads,
        },
        targets,
    )?;
    let total = objective(&loss.stages, log_variance)?;
    let small = total.backward()?;
    let gz = small
        .get(z.as_tensor())
        .ok_or_else(|| Error::Internal("no gradient reached the logits".into()))?;
    // (2) The stages side by side; a stage's heads go with its own logit column.
    let mut stores = out
        .stage_logits
        .par_iter()
        .enumerate()
        .map(|(k, zk)| {
            let mut root = zk.mul(&gz.narrow(1, k, 1)?)?.sum_all()?;
            for (_, h, v) in head_copies.iter().filter(|(s, _, _)| *s == k) {
                if let Some(g) = small.get(v.as_tensor()) {
                    root = (root + h.mul(g)?.sum_all()?)?;
                }
            }
            root.backward()
        })
        .collect::<candle_core::Result<Vec<GradStore>>>()?;
    let input = xs
        .iter()
        .map(|x| input_gradient(&mut stores, x.as_tensor()))
        .collect::<Result<Vec<_>>>()?;
    let mut merged = merge(model, stores)?;
    // The loss weights live on the small graph of the loss alone.
    if let Some(s) = log_variance
        && let Some(g) = small.get(s)
    {
        merged.insert(s, g.clone());
    }
    Ok((loss, total, merged, input))
}

/// Gradients of Σ_k w_k L_k from one backward pass per stage loss L_k: each pass gives
/// ∂L_k/∂θ for every parameter and ∂L_k/∂X for the input rows; their norms are GradNorm's n_k,
/// and the weighted sums are the step's gradients (the objective is linear in the weights, so
/// no further pass is needed).
fn weighted_gradients(
    model: &FunnelModel,
    xs: &[Var],
    stages: &Tensor,
    w: &[f64],
) -> Result<Gradients> {
    let k = stages.dim(0)?;
    if w.len() != k {
        return Err(Error::Internal(format!(
            "{} loss weights for {k} stages",
            w.len()
        )));
    }
    let mut stores = (0..k)
        .map(|s| stages.get(s)?.backward())
        .collect::<candle_core::Result<Vec<GradStore>>>()?;
    let mut input: Vec<Vec<f32>> = Vec::with_capacity(xs.len());
    let mut squares = vec![0f64; k];
    for x in xs {
        let mut sum = vec![0f32; x.elem_count()];
        for (s, store) in stores.iter_mut().enumerate() {
            let g = input_gradient(std::slice::from_mut(store), x.as_tensor())?;
            squares[s] += g.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            let ws = w[s] as f32;
            for (a, v) in sum.iter_mut().zip(&g) {
                *a += ws * v;
            }
        }
        input.push(sum);
    }
    // Each parameter's weighted sum, into the first stage's store.
    let mut rest = stores.split_off(1);
    let mut dense = stores
        .pop()
        .ok_or_else(|| Error::Internal("a chain without stages".into()))?;
    for (_, var) in model.params().iter() {
        let t = var.as_tensor();
        let mut sum = dense.remove(t).map(|g| g.affine(w[0], 0.0)).transpose()?;
        for (s, store) in rest.iter_mut().enumerate() {
            if let Some(g) = store.remove(t) {
                let g = g.affine(w[s + 1], 0.0)?;
                sum = Some(match sum {
                    Some(a) => (a + g)?,
                    None => g,
                });
            }
        }
        if let Some(g) = sum {
            dense.insert(t, g);
        }
    }
    let stage_losses: Vec<f64> = stages
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect();
    Ok(Gradients {
        dense,
        input,
        loss: stage_losses.iter().zip(w).map(|(l, w)| l * w).sum(),
        stage_losses,
        input_norms: Some(squares.into_iter().map(f64::sqrt).collect()),
    })
}

/// One store from the stages' stores: each parameter's gradient moved in from the one store
/// that holds it. Two holding it would mean the chain was not separable: an error, never a
/// silent pick of one stage's gradient.
fn merge(model: &FunnelModel, stores: Vec<GradStore>) -> Result<GradStore> {
    let mut rest = stores.into_iter();
    let mut merged = rest
        .next()
        .ok_or_else(|| Error::Internal("a chain without stages".into()))?;
    for mut s in rest {
        for (name, var) in model.params().iter() {
            if let Some(g) = s.remove(var.as_tensor())
                && merged.insert(var.as_tensor(), g).is_some()
            {
                return Err(Error::Internal(format!(
                    "parameter `{name}` has gradients from two stages in the separable step"
                )));
            }
        }
    }
    Ok(merged)
}

/// The input's gradient, summed over the stores in order and taken out of them, as a
/// row-major vector (read in place, one copy).
fn input_gradient(stores: &mut [GradStore], x: &Tensor) -> Result<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    for s in stores.iter_mut() {
        let Some(g) = s.remove(x) else { continue };
        with_f32(&g, |v| {
            if sum.is_empty() {
                sum.extend_from_slice(v);
            } else {
                for (s, v) in sum.iter_mut().zip(v) {
                    *s += v;
                }
            }
        })?;
    }
    if sum.len() != x.elem_count() {
        return Err(Error::Internal("no gradient reached the input".into()));
    }
    Ok(sum)
}

/// Advance an epoch's dropout stream past `steps` steps, as `step` consumes it (for a run
/// resumed in the middle of an epoch).
pub fn skip_steps(dropout_rng: &mut Rng, steps: usize) {
    for _ in 0..steps {
        Dropout::next(dropout_rng);
    }
}

/// The trainer's step on one batch: returns the batch loss and the stage losses. With
/// GradNorm, its weights weigh the stages and are moved after the step. Over several ranks
/// (`collective`), `b` is this rank's part of the global batch, and the loss, the gradients
/// and the sparse step are the global batch's (`parallel::reduce`).
pub fn step(
    model: &mut FunnelModel,
    dense: &mut DenseOptimizer,
    b: &Batch,
    dropout_rng: &mut Rng,
    path: Path,
    gradnorm: Option<&mut GradNorm>,
    collective: &dyn Collective,
) -> Result<(f64, Vec<f64>)> {
    let xs = model.input_vars(b)?;
    let targets = Targets::new(model.funnel(), &b.labels, &b.own, b.rows, model.device())?;
    // Each block draws its dropout masks from its own stream, named off the step's draws.
    let draws = Dropout::next(dropout_rng);
    let weights = gradnorm.as_ref().map(|g| g.weights().to_vec());
    let g = gradients(model, &xs, &targets, &draws, path, weights.as_deref())?;
    let (g, global) = match collective.size() {
        1 => (g, None),
        _ => {
            let (g, all) = super::parallel::reduce(collective, model, b, g)?;
            (g, Some(all))
        }
    };
    let b = global.as_ref().unwrap_or(b);
    if let (Some(gn), Some(norms)) = (gradnorm, &g.input_norms) {
        gn.update(&g.stage_losses, norms);
    }
    // The schedule's factor applies to the tables as to the towers.
    let lr_scale = dense.lr_scale() as f32;
    // The sparse update runs beside the dense optimizer step: they touch disjoint weights.
    let (stepped, ()) = rayon::join(
        || dense.step(&g.dense),
        || model.apply_input_gradient(b, &g.input, lr_scale),
    );
    stepped?;
    Ok((g.loss, g.stage_losses))
}

#[cfg(test)]
mod tests {
    use std::path::Path as FsPath;

    use candle_core::Result as CResult;

    use super::*;
    use crate::collective::Single;
    use crate::config::Pipeline;
    use crate::features::Encoders;
    use crate::model::Linear;
    use crate::model::backend;
    use crate::model::kit::{Mode, ParamBuilder};
    use crate::model::transfer::Transfer;

    /// Small encoders for any pipeline: every categorical feature hashed into 23 buckets.
    fn encoders(p: &Pipeline) -> Encoders {
        let cats: Vec<String> = p
            .categorical
            .iter()
            .map(|c| {
                format!(
                    r#"{{"name":"{}","column":"{}","hash_buckets":23}}"#,
                    c.name, c.column
                )
            })
            .collect();
        let nums: Vec<String> = p
            .numeric
            .iter()
            .map(|n| {
                // A bucketed feature gets 4 boundaries: 5 buckets, ids 3..=7.
                let boundaries = match n.buckets {
                    Some(_) => r#","boundaries":[-1.0,0.0,1.0,2.0]"#,
                    None => "",
                };
                format!(r#"{{"name":"{}","column":"{}","transform":"none","missing":"mean","shift":0.0,"scale":1.0,"fill":0.0{boundaries}}}"#, n.name, n.column)
            })
            .collect();
        let bags: Vec<String> = p
            .multi_valued
            .iter()
            .map(|m| {
                let v = &m.vocabulary;
                format!(
                    r#"{{"name":"{}","column":"{}","hash_buckets":23}}"#,
                    v.name, v.column
                )
            })
            .collect();
        Encoders::from_json(&format!(
            r#"{{"categorical":[{}],"numeric":[{}],"multi_valued":[{}]}}"#,
            cats.join(","),
            nums.join(","),
            bags.join(",")
        ))
        .unwrap()
    }

    /// A batch of random ids, bags of 0 to 4 tokens (every other bag weighted), numerics and
    /// consistent cumulative labels.
    fn batch(p: &Pipeline, rows: usize, seed: u64) -> Batch {
        let mut r = Rng::stream(seed, "test-batch");
        let (c, n, k) = (p.categorical.len(), p.dense_values(), p.stages.len());
        let f = p.embedded_fields().len() - p.multi_valued.len();
        // Categorical ids below the 23 hash rows, bucket ids below the 8 bucket rows.
        let cat: Vec<u32> = (0..rows * f)
            .map(|i| 3 + r.below(if i % f < c { 20 } else { 5 }) as u32)
            .collect();
        let ids = (0..f)
            .map(|j| (0..rows).map(|i| cat[i * f + j]).collect())
            .collect();
        let num = (0..rows * n).map(|_| r.normal() as f32).collect();
        let mut labels = Vec::with_capacity(rows * k);
        for _ in 0..rows {
            let mut reached = 1.0;
            for _ in 0..k {
                reached *= (r.uniform() < 0.6) as u8 as f32;
                labels.push(reached);
            }
        }
        // Every token list: the multi-valued features' bags, then the sequences' (ids of
        // their targets' 23 hash rows, unweighted).
        let bags = p
            .token_lists()
            .enumerate()
            .map(|(m, _)| {
                // Every other multi-valued bag weighted.
                let weighted = m % 2 == 1 && m < p.multi_valued.len();
                let mut b = crate::features::Bags::default();
                for _ in 0..rows {
                    for _ in 0..r.below(5) {
                        b.ids.push(3 + r.below(20) as u32);
                        if weighted {
                            b.weights.push(0.5 + r.uniform() as f32);
                        }
                    }
                    b.offsets.push(b.ids.len() as u64);
                }
                b
            })
            .collect();
        Batch {
            rows,
            ids,
            bags,
            num,
            labels,
            own: Vec::new(),
        }
    }

    fn draws() -> Dropout {
        draws_at(5)
    }

    fn grads(model: &FunnelModel, b: &Batch, path: Path) -> Result<Gradients> {
        let x = model.input_vars(b)?;
        let t = Targets::new(model.funnel(), &b.labels, &b.own, b.rows, model.device())?;
        gradients(model, &x, &t, &draws(), path, None)
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= tol * (1.0 + v.abs()), "{what}: {u} vs {v}");
        }
    }

    /// The separable step gives the loss and every gradient of one backward pass through the
    /// whole graph, for every pipeline the project ships (and the `naive` preset).
    #[test]
    fn separable_step_equals_one_graph_on_every_shipped_pipeline() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let mut files: Vec<_> = [root.clone(), root.join("bench")]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 5, "{files:?}");
        let mut pipelines: Vec<Pipeline> =
            files.iter().map(|f| Pipeline::load(f).unwrap()).collect();
        // Learned loss weights live on the loss's own small graph in the separable step.
        let text = std::fs::read_to_string(root.join("esmm.yaml"))
            .unwrap()
            .replace(
                "  preset: esmm",
                "  preset: esmm\n  loss_weighting: uncertainty",
            );
        pipelines.push(Pipeline::from_text(&root.join("uncertainty.yaml"), &text).unwrap());
        // DIN with a unit per stage keeps the stages apart; its history's gradient reaches the
        // tokens' rows from every stage.
        let text = std::fs::read_to_string(root.join("synthetic-history.yaml"))
            .unwrap()
            .replace("activation: relu }", "activation: relu, per_stage: true }");
        let per_stage = Pipeline::from_text(&root.join("din.yaml"), &text).unwrap();
        assert!(per_stage.din.as_ref().is_some_and(|d| d.per_stage));
        pipelines.push(per_stage);
        assert!(pipelines.iter().any(|p| !p.funnel.is_plain_entire_space()));
        let (mut separable, mut with_heads) = (0, 0);
        for p in &pipelines {
            let model = FunnelModel::new(p, &encoders(p)).unwrap();
            let b = batch(p, 17, 1);
            let whole = grads(&model, &b, Path::General).unwrap();
            assert!(whole.loss.is_finite(), "{}", p.name);
            if !model.is_separable() {
                // AITM's transfer, a shared bottom: the general path only.
                assert_eq!(Path::for_model(&model), Path::General, "{}", p.name);
                assert!(grads(&model, &b, Path::Separable).is_err(), "{}", p.name);
                continue;
            }
            separable += 1;
            // ESCM²'s imputation heads feed the loss beside the logits.
            let x = model.input_vars(&b).unwrap().tensors();
            let out = model.forward(&x, Some(&draws())).unwrap();
            with_heads += usize::from(!out.heads.is_empty());
            let split = grads(&model, &b, Path::Separable).unwrap();
            assert!((whole.loss - split.loss).abs() < 1e-6, "{}", p.name);
            assert_eq!(whole.stage_losses, split.stage_losses);
            for (name, var) in model.params().iter() {
                let reference = whole.dense.get(var.as_tensor()).unwrap();
                let got = split.dense.get(var.as_tensor()).unwrap();
                close(
                    &format!("{} {name}", p.name),
                    &flat(got),
                    &flat(reference),
                    1e-5,
                );
            }
            for (split, whole) in split.input.iter().zip(&whole.input) {
                assert!(whole.iter().any(|&g| g != 0.0));
                close(&p.name, split, whole, 1e-5);
            }
        }
        assert!(separable >= 9, "{separable} separable pipelines");
        assert!(with_heads >= 1, "no separable pipeline with heads");
    }

    /// A row store that is not the local one, as the trainer sees it only through the trait:
    /// rows are made on first use (any id, no vocabulary) and stepped by plain SGD, one thread.
    /// It holds no `Table`s, so a checkpoint would save none of it. The test keeps a handle on
    /// its rows.
    struct LazyStore {
        layout: crate::layout::FieldLayout,
        rows: std::sync::Arc<LazyRows>,
        steps: u64,
    }

    #[derive(Default)]
    struct LazyRows {
        rows: std::sync::Mutex<std::collections::HashMap<(usize, u32), Vec<f32>>>,
        /// The summed gradient of each (field, id) the last step received.
        last: std::sync::Mutex<std::collections::HashMap<(usize, u32), Vec<f32>>>,
    }

    impl LazyRows {
        fn row(&self, f: usize, id: u32, dim: usize) -> Vec<f32> {
            let mut rows = self.rows.lock().unwrap();
            rows.entry((f, id))
                .or_insert_with(|| {
                    let mut r = Rng::stream(7, &format!("lazy/{f}/{id}"));
                    (0..dim).map(|_| 0.3 * r.normal() as f32).collect()
                })
                .clone()
        }
    }

    const LAZY_LR: f32 = 0.5;

    impl crate::model::row_store::RowSource for LazyStore {
        fn layout(&self) -> &crate::layout::FieldLayout {
            &self.layout
        }
        fn gather(&self, b: &Batch, rows: std::ops::Range<usize>, x: &mut [f32], w: usize) {
            for (j, r) in rows.enumerate() {
                for (f, col) in b.ids.iter().enumerate() {
                    let slot = self.layout.slot_of(f);
                    let out = &mut x[j * w + slot.offset..j * w + slot.offset + slot.width];
                    let row = self.rows.row(f, col[r], slot.width);
                    if self.layout.opens_slot(f) {
                        out.copy_from_slice(&row);
                    } else {
                        out.iter_mut().zip(&row).for_each(|(o, v)| *o += v);
                    }
                }
            }
        }
        fn gather_tokens(&self, b: &Batch, s: usize) -> Vec<f32> {
            let seq = &self.layout.sequences()[s];
            let width = self.layout.slot_of(seq.field).width;
            b.bags[seq.bag]
                .ids
                .iter()
                .flat_map(|&id| self.rows.row(seq.field, id, width))
                .collect()
        }
    }
    impl crate::model::row_store::RowStore for LazyStore {
        fn apply(
            &mut self,
            b: &Batch,
            grad: &crate::model::row_store::InputGradient<'_>,
            lr_scale: f32,
        ) {
            self.steps += 1;
            let mut last = self.rows.last.lock().unwrap();
            last.clear();
            let w = grad.width;
            for (f, col) in b.ids.iter().enumerate() {
                let slot = self.layout.slot_of(f);
                for (r, &id) in col.iter().enumerate() {
                    let g = &grad.rows[r * w + slot.offset..r * w + slot.offset + slot.width];
                    let sum = last.entry((f, id)).or_insert(vec![0.0; slot.width]);
                    sum.iter_mut().zip(g).for_each(|(a, v)| *a += v);
                }
            }
            for (seq, g) in self.layout.sequences().iter().zip(&grad.tokens) {
                let width = self.layout.slot_of(seq.field).width;
                for (&id, g) in b.bags[seq.bag].ids.iter().zip(g.chunks_exact(width)) {
                    let sum = last.entry((seq.field, id)).or_insert(vec![0.0; width]);
                    sum.iter_mut().zip(g).for_each(|(a, v)| *a += v);
                }
            }
            let mut rows = self.rows.rows.lock().unwrap();
            for (key, g) in last.iter() {
                let row = rows.get_mut(key).unwrap();
                row.iter_mut()
                    .zip(g)
                    .for_each(|(v, g)| *v -= LAZY_LR * lr_scale * g);
            }
        }
        fn tables(&self) -> Vec<&crate::model::Table> {
            Vec::new()
        }
        fn tables_mut(&mut self) -> Vec<&mut crate::model::Table> {
            Vec::new()
        }
        // The walk asks a store's optimizer only for the state its tables carry, and this store
        // has no tables; its rows keep no state (plain SGD), which no `SparseOptimizer` names.
        fn optimizer(&self) -> crate::model::SparseOptimizer {
            crate::model::SparseOptimizer::RowwiseAdagrad {
                lr: LAZY_LR,
                eps: 0.0,
            }
        }
        fn steps(&self) -> u64 {
            self.steps
        }
        fn set_steps(&mut self, steps: u64) {
            self.steps = steps;
        }
        fn release_scratch(&mut self) {}
    }

    /// The row store seam with a second store behind it (ids far beyond any vocabulary, a
    /// field group summed into one slot): the step hands each used row the loss's gradient with
    /// respect to it (checked against central differences of the loss in that row's weights),
    /// and the store's own rule moves the rows; the loss falls.
    #[test]
    fn a_lazy_row_store_gets_each_rows_gradient_through_the_trait() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let p = Pipeline::load(&root.join("esmm-groups.yaml")).unwrap();
        let layout = p.field_layout().unwrap();
        let rows = std::sync::Arc::new(LazyRows::default());
        let store = LazyStore {
            layout: layout.clone(),
            rows: rows.clone(),
            steps: 0,
        };
        let mut model = FunnelModel::new(&p, &encoders(&p))
            .unwrap()
            .with_stores(vec![Box::new(store)])
            .unwrap();
        let mut b = batch(&p, 24, 3);
        for col in &mut b.ids {
            for id in col.iter_mut() {
                *id += 4_000_000_000 - 100;
            }
        }
        let loss = |m: &FunnelModel| grads(m, &b, Path::General).unwrap().loss;
        let g = grads(&model, &b, Path::General).unwrap();
        // A grouped field's used row: its gradient from the input gradient the step hands the
        // store (the group's slot, summed over the rows that use the id).
        let group = layout.slots().iter().find(|s| s.fields.len() > 1).unwrap();
        let f = group.fields[1];
        let (id, slot) = (b.ids[f][5], layout.slot_of(f).clone());
        let w = model.input_width();
        let mut want = vec![0f64; slot.width];
        for r in (0..b.rows).filter(|&r| b.ids[f][r] == id) {
            for (j, a) in want.iter_mut().enumerate() {
                *a += f64::from(g.input[0][r * w + slot.offset + j]);
            }
        }
        // Central differences of the loss in that row's weights.
        let h = 1e-2f32;
        let base = rows.row(f, id, slot.width);
        for j in 0..slot.width {
            let nudge = |d: f32| {
                let mut row = base.clone();
                row[j] += d;
                rows.rows.lock().unwrap().insert((f, id), row);
                let l = loss(&model);
                rows.rows.lock().unwrap().insert((f, id), base.clone());
                l
            };
            let fd = (nudge(h) - nudge(-h)) / (2.0 * f64::from(h));
            assert!(
                (fd - want[j]).abs() < 2e-3 + 0.05 * want[j].abs(),
                "d{j}: {fd} vs {}",
                want[j]
            );
        }
        assert!(want.iter().any(|v| v.abs() > 1e-3), "{want:?}");
        // Training through the trait moves the rows by the store's own rule; the loss falls.
        let mut dense = DenseOptimizer::new(model.params().vars(), &p.train.optimizer).unwrap();
        let mut rng = Rng::stream(1, "step");
        let (first, path) = (loss(&model), Path::for_model(&model));
        for _ in 0..30 {
            step(&mut model, &mut dense, &b, &mut rng, path, None, &Single).unwrap();
        }
        assert_eq!(model.store_steps(), vec![30]);
        let last = rows.last.lock().unwrap();
        assert!(last.contains_key(&(f, id)) && last.len() > b.ids.len());
        let after = loss(&model);
        assert!(after < 0.8 * first, "{first} -> {after}");
    }

    /// Rows `r` of a batch.
    fn rows_of(b: &Batch, r: std::ops::Range<usize>) -> Batch {
        let (n, k) = (b.num.len() / b.rows, b.labels.len() / b.rows);
        Batch {
            rows: r.len(),
            ids: b.ids.iter().map(|c| c[r.clone()].to_vec()).collect(),
            bags: {
                let rows: Vec<u32> = (r.start as u32..r.end as u32).collect();
                b.bags.iter().map(|bag| bag.take(&rows)).collect()
            },
            num: b.num[r.start * n..r.end * n].to_vec(),
            labels: b.labels[r.start * k..r.end * k].to_vec(),
            own: Vec::new(),
        }
    }

    /// Every weight of a model, tables then dense parameters, by key.
    fn weights(m: &FunnelModel) -> Vec<(String, Vec<f32>)> {
        let mut w: Vec<(String, Vec<f32>)> = m
            .tables()
            .into_iter()
            .map(|(k, t)| (k, t.weights()))
            .collect();
        w.extend(
            m.params()
                .iter()
                .map(|(k, v)| (k.to_string(), flat(v.as_tensor()))),
        );
        w
    }

    /// Data parallelism through the collective seam: two ranks (threads) holding unequal parts
    /// of each global batch (40 and 24 of 64 rows) and reducing through `Collective` reach the
    /// weights of one process stepping on the whole batch, tables included, on ESMM (whose
    /// loss is a mean over all rows), on ESMM over an MMoE bottom (the general path), and on
    /// token bags (weighted and not, empty rows among them) sent between the ranks.
    #[test]
    fn two_ranks_in_threads_reach_the_single_process_weights() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        for file in ["esmm.yaml", "mmoe.yaml", "bench/bags.yaml"] {
            let p = Pipeline::load(&root.join(file)).unwrap();
            let batches: Vec<Batch> = (0..4).map(|s| batch(&p, 64, 10 + s)).collect();
            let train = |b: &[Batch], c: &dyn crate::collective::Collective| {
                let mut model = FunnelModel::new(&p, &encoders(&p)).unwrap();
                let mut dense =
                    DenseOptimizer::new(model.params().vars(), &p.train.optimizer).unwrap();
                let mut rng = Rng::stream(1, "step");
                let path = Path::for_model(&model);
                let losses: Vec<f64> = b
                    .iter()
                    .map(|b| {
                        step(&mut model, &mut dense, b, &mut rng, path, None, c)
                            .unwrap()
                            .0
                    })
                    .collect();
                (weights(&model), losses)
            };
            let (want, want_losses) = train(&batches, &Single);
            let ranks = std::thread::scope(|s| {
                let handles: Vec<_> = crate::collective::threads::ranks(2)
                    .into_iter()
                    .map(|c| {
                        let rows = if c.rank() == 0 { 0..40 } else { 40..64 };
                        let mine: Vec<Batch> =
                            batches.iter().map(|b| rows_of(b, rows.clone())).collect();
                        let train = &train;
                        s.spawn(move || train(&mine, &c))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            });
            for (got, losses) in ranks {
                for (a, b) in losses.iter().zip(&want_losses) {
                    assert!((a - b).abs() < 1e-5, "{file}: loss {a} vs {b}");
                }
                for ((key, a), (_, b)) in got.iter().zip(&want) {
                    close(&format!("{file} {key}"), a, b, 1e-4);
                }
                // The steps moved the weights: the comparison is not of initial values.
                assert_ne!(got, weights(&FunnelModel::new(&p, &encoders(&p)).unwrap()));
            }
        }
    }

    /// With stage weights (GradNorm's), the per-stage passes give what one backward pass of
    /// Σ_k w_k L_k gives, for every parameter and the input; each n_k is the norm of the input
    /// gradient of L_k alone. On ESMM, and on AITM over an MMoE bottom with five stages.
    #[test]
    fn weighted_stage_gradients_equal_one_pass_of_the_weighted_sum() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        for file in ["esmm-gradnorm.yaml", "aitm-mmoe-5stage.yaml"] {
            let p = Pipeline::load(&root.join(file)).unwrap();
            let model = FunnelModel::new(&p, &encoders(&p)).unwrap();
            let b = batch(&p, 19, 3);
            let k = p.stages.len();
            let w: Vec<f64> = (0..k).map(|s| 0.4 + 0.3 * s as f64).collect();
            let x = model.input_vars(&b).unwrap();
            let t =
                Targets::new(model.funnel(), &b.labels, &b.own, b.rows, model.device()).unwrap();
            let got = gradients(&model, &x, &t, &draws(), Path::General, Some(&w)).unwrap();
            // The reference: one graph, one backward pass of the weighted sum.
            let out = model.forward(&x.tensors(), Some(&draws())).unwrap();
            let loss = funnel_loss(model.funnel(), &out, &t).unwrap();
            let wt = Tensor::from_vec(
                w.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                k,
                model.device(),
            )
            .unwrap();
            let total = loss.stages.mul(&wt).unwrap().sum_all().unwrap();
            let mut reference = [total.backward().unwrap()];
            let stage_losses: Vec<f64> = flat(&loss.stages).iter().map(|&v| v as f64).collect();
            assert_eq!(got.stage_losses, stage_losses, "{file}");
            let want_loss = total.to_scalar::<f32>().unwrap() as f64;
            assert!((got.loss - want_loss).abs() < 1e-6, "{file}");
            for (name, var) in model.params().iter() {
                let want = reference[0].get(var.as_tensor()).unwrap();
                let have = got.dense.get(var.as_tensor()).unwrap();
                close(&format!("{file} {name}"), &flat(have), &flat(want), 1e-5);
            }
            let want = input_gradient(&mut reference, x.xs[0].as_tensor()).unwrap();
            close(file, &got.input[0], &want, 1e-5);
            let norms = got.input_norms.unwrap();
            for (s, norm) in norms.iter().enumerate() {
                let mut one = [loss.stages.get(s).unwrap().backward().unwrap()];
                let g = input_gradient(&mut one, x.xs[0].as_tensor()).unwrap();
                let n = g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                assert!(n > 0.0 && (norm - n).abs() <= 1e-6 * n, "{file} stage {s}");
            }
        }
    }

    /// A test-only transfer: own + relu(parent Wᵀ + b).
    struct AddParent(Linear);

    impl Transfer for AddParent {
        fn forward(&self, own: &Tensor, parent: &Tensor, mode: &mut Mode<'_>) -> CResult<Tensor> {
            let t = backend::linear(
                parent,
                self.0.weight.as_tensor(),
                self.0.bias.as_tensor(),
                backend::Fused::Relu,
                mode.is_train(),
            )?;
            own + t
        }

        fn export(
            &self,
            kit: &crate::model::export_kit::ExportKit,
            own: &crate::onnx::Value,
            parent: &crate::onnx::Value,
        ) -> crate::error::Result<crate::onnx::Value> {
            use crate::model::kit::Block;
            Ok(own.add(&self.0.export(kit, parent)?.unary("Relu")))
        }
    }

    fn with_transfer(weights: [f64; 2]) -> FunnelModel {
        let yaml = format!(
            "name: t\ndata:\n  train: {{ path: none.csv }}\nfeatures:\n  categorical:\n    - {{ name: a, dim: 4 }}\n    - {{ name: b, dim: 3 }}\n  numeric:\n    - {{ name: n }}\nstages:\n  - {{ name: s0, label: {{ column: y0 }}, tower: {{ hidden: [8, 5] }}, loss_weight: {} }}\n  - {{ name: s1, label: {{ column: y1 }}, tower: {{ hidden: [6], activation: tanh, dropout: 0.3 }}, loss_weight: {} }}\n",
            weights[0], weights[1]
        );
        let p = Pipeline::from_text(FsPath::new("t.yaml"), &yaml).unwrap();
        let mut model = FunnelModel::new(&p, &encoders(&p)).unwrap();
        model
            .set_transfer(1, |pb: &mut ParamBuilder<'_>, own, from| {
                Ok(Box::new(AddParent(Linear::new(pb, from, own, from)?)) as Box<dyn Transfer>)
            })
            .unwrap();
        model
    }

    /// A parameter that two stages read (stage 0's tower, read by stage 1 through the
    /// transfer) gets the sum of both stages' gradients.
    #[test]
    fn shared_parameter_gets_the_sum_of_both_stages_gradients() {
        let both = with_transfer([1.0, 1.0]);
        assert!(!both.is_separable());
        let b = batch(
            &Pipeline::from_text(FsPath::new("t.yaml"), "name: t\ndata:\n  train: { path: none.csv }\nfeatures:\n  categorical: [{ name: a }, { name: b }]\n  numeric: [{ name: n }]\nstages:\n  - { name: s0, label: { column: y0 } }\n  - { name: s1, label: { column: y1 } }\n").unwrap(),
            19,
            2,
        );
        assert!(
            grads(&both, &b, Path::Separable).is_err(),
            "the fast path refuses a shared parameter"
        );
        let key = "towers.s0.1.weight";
        let grad_of = |m: &FunnelModel| {
            let g = grads(m, &b, Path::General).unwrap();
            flat(g.dense.get(param(m, key).as_tensor()).unwrap())
        };
        let whole = grad_of(&both);
        let from0 = grad_of(&with_transfer([1.0, 0.0]));
        let from1 = grad_of(&with_transfer([0.0, 1.0]));
        assert!(
            from1.iter().any(|&v| v.abs() > 1e-6),
            "stage 1 reaches stage 0's tower"
        );
        let sum: Vec<f32> = from0.iter().zip(&from1).map(|(a, b)| a + b).collect();
        close(key, &whole, &sum, 1e-5);
    }

    fn param(m: &FunnelModel, key: &str) -> candle_core::Var {
        m.params()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    /// The chain with a transfer trains through the general path: the loss falls and the
    /// transfer's own parameters move.
    #[test]
    fn toy_transfer_trains_through_the_general_path() {
        let mut model = with_transfer([1.0, 1.0]);
        let p = Pipeline::from_text(FsPath::new("t.yaml"), "name: t\ndata:\n  train: { path: none.csv }\nfeatures:\n  categorical: [{ name: a }, { name: b }]\n  numeric: [{ name: n }]\nstages:\n  - { name: s0, label: { column: y0 } }\n  - { name: s1, label: { column: y1 } }\n").unwrap();
        let b = batch(&p, 64, 3);
        let path = Path::for_model(&model);
        assert_eq!(path, Path::General);
        let mut dense = DenseOptimizer::new(model.params().vars(), &p.train.optimizer).unwrap();
        let key = "transfers.s1.weight";
        let before = flat(param(&model, key).as_tensor());
        let mut rng = Rng::stream(1, "steps");
        let (first, _) = step(&mut model, &mut dense, &b, &mut rng, path, None, &Single).unwrap();
        let mut last = first;
        for _ in 0..150 {
            last = step(&mut model, &mut dense, &b, &mut rng, path, None, &Single)
                .unwrap()
                .0;
        }
        assert!(last < 0.8 * first, "loss {first} -> {last}");
        let after = flat(param(&model, key).as_tensor());
        assert!(before.iter().zip(&after).any(|(a, b)| a != b));
    }

    /// Dropout streams are named by block key: in a training pass each stage's tower draws
    /// from `towers.<stage>` and the bottom from `bottom`, whatever else the chain holds. A
    /// stage tower run alone on the bottom's output with those streams gives the chain's
    /// logits (AITM over MMoE, five stages, dropout on everywhere).
    #[test]
    fn dropout_streams_are_named_by_block_key() {
        use crate::model::kit::mode_for;
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let text = std::fs::read_to_string(root.join("aitm-mmoe-5stage.yaml"))
            .unwrap()
            .replace("dropout: 0.0", "dropout: 0.3")
            .replace("hidden: [32] }", "hidden: [32], dropout: 0.3 }");
        assert_eq!(text.matches("dropout: 0.3").count(), 6);
        let p = Pipeline::from_text(&root.join("dropout.yaml"), &text).unwrap();
        let model = FunnelModel::new(&p, &encoders(&p)).unwrap();
        let b = batch(&p, 16, 2);
        let xs = model.input_vars(&b).unwrap().tensors();
        let d = draws();
        let out = flat(&model.forward(&xs, Some(&d)).unwrap().logits);
        let twice = flat(&model.forward(&xs, Some(&d)).unwrap().logits);
        assert_eq!(out, twice, "the same draws, the same masks");
        let other = flat(&model.forward(&xs, Some(&draws_at(6))).unwrap().logits);
        assert_ne!(out, other, "dropout is on");
        // The first stage (no transfer) by hand: the bottom on `bottom`, its tower on
        // `towers.<first stage>`.
        let mut rng = Some(d.stream("bottom"));
        let bottomed = model.bottom_for_tests(&xs.xs[0], &mut mode_for(&mut rng));
        let mut rng = Some(d.stream(&format!("towers.{}", p.stages[0].name)));
        let z = model.stage_logit_for_tests(0, &bottomed[0], &xs.xs[0], &mut mode_for(&mut rng));
        let k = p.funnel.logit_columns();
        let first: Vec<f32> = out.iter().step_by(k).copied().collect();
        assert_eq!(flat(&z), first);
    }

    fn draws_at(seed: u64) -> Dropout {
        Dropout::next(&mut Rng::stream(seed, "dropout"))
    }

    /// ESCM²-DR's imputation heads predict a loss, so their outputs are never negative, even
    /// where the raw head output is far below zero.
    #[test]
    fn imputation_outputs_are_non_negative() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let p = Pipeline::load(&root.join("escm2-dr.yaml")).unwrap();
        let model = FunnelModel::new(&p, &encoders(&p)).unwrap();
        let b = batch(&p, 64, 4);
        let mut xs = model.input_vars(&b).unwrap().tensors();
        for x in &mut xs.xs {
            *x = x.affine(1e3, 0.0).unwrap();
        }
        let out = model.forward(&xs, Some(&draws())).unwrap();
        use crate::funnel::HeadKind::Imputation;
        assert!(out.heads.get(0, Imputation).is_none());
        let e = flat(out.heads.get(1, Imputation).expect("stage 2 imputes"));
        assert!(e.iter().all(|&v| v >= 0.0), "{e:?}");
        assert!(e.iter().any(|&v| v > 0.0));
    }
}
