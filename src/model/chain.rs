//! The chain: shared sparse embeddings, then for each stage in funnel order its tower's encoder,
//! an optional transfer from the parent's representation, and its head. One chain serves every
//! funnel depth and every model variant; the pipeline decides what is in it.

use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;

use super::bottom::Bottom;
use super::chain_input::ChainInput;
use super::din::{Din, History};
use super::heads::{Head, HeadOutputs};
use super::kit::{Dropout, ParamBuilder, Params, mode_for};
use super::row_store::RowStore;
use super::tower::Tower;
use super::transfer::Transfer;
use crate::data::Batch;
use crate::error::Result;
use crate::funnel::{Funnel, HeadKind, StageId};

/// What one forward pass of the chain gives.
pub struct ChainOutput {
    /// Logits, rows x `Funnel::logit_columns`: column k is the logit of stage k's conditional
    /// q_k, or of its cumulative p_k when the funnel's output is cumulative (`Funnel::output`);
    /// then, for stages after an optional stage (ESM²), the logit given not that stage.
    pub logits: Tensor,
    /// The same logits as one (rows x 1) tensor per column, as the heads produced them.
    pub stage_logits: Vec<Tensor>,
    /// The stages' auxiliary heads' outputs (training mode only): what the loss reads besides
    /// the logits.
    pub heads: HeadOutputs,
}

impl ChainOutput {
    /// An output that is only logits (rows x `Funnel::logit_columns`): the separable step's
    /// detached copy, and the loss's tests.
    pub fn from_logits(logits: Tensor) -> ChainOutput {
        ChainOutput {
            logits,
            stage_logits: Vec::new(),
            heads: HeadOutputs::default(),
        }
    }
}

/// What the side-by-side part of a forward pass gives for one stage.
struct Parallel {
    hidden: Tensor,
    /// The logit, when the stage has no transfer (otherwise it waits for its parent).
    logit: Option<Tensor>,
    heads: Vec<(HeadKind, Tensor)>,
    skip: Option<Tensor>,
}

/// One stage's blocks.
pub(super) struct StageBlocks {
    pub(super) tower: Tower,
    /// Reads the parent's representation; `None` keeps the stage separable.
    pub(super) transfer: Option<Box<dyn Transfer>>,
    /// Outputs only the loss reads (ESCM²-DR's imputation), from the stage's input.
    pub(super) heads: Vec<Head>,
    /// The logit of the stage's conditional given not its optional `via` stage (ESM²).
    pub(super) skip: Option<Tower>,
}

pub struct FunnelModel {
    /// The embedding stores: one shared by every stage, or one per stage.
    pub(super) stores: Vec<Box<dyn RowStore>>,
    /// Checkpoint key prefix of each store (`embeddings`, or `embeddings.<stage>`).
    pub(super) store_keys: Vec<String>,
    /// The store each stage reads.
    pub(super) stage_store: Vec<usize>,
    /// A block between the embeddings and the towers, shared by the stages.
    pub(super) bottom: Option<Box<dyn Bottom>>,
    /// DIN's pooling of the behaviour histories, joining the towers' input: none, one shared by
    /// the stages, or one per stage (`din_per_stage`).
    pub(super) din: Vec<Din>,
    pub(super) din_per_stage: bool,
    /// Uncertainty weighting's learned log-variance per stage (`loss_weighting.log_variance`).
    pub(super) log_variance: Option<Var>,
    pub(super) stages: Vec<StageBlocks>,
    pub(super) funnel: Funnel,
    pub(super) params: Params,
    /// Checkpoint names of the stages (stage names), in stage order.
    pub(super) stage_names: Vec<String>,
    pub(super) numerics: usize,
    pub(super) seed: u64,
    pub(super) initial_state: f32,
    pub(super) dev: Device,
}

impl FunnelModel {
    /// Give `stage` a transfer from its parent's representation, built by `make` from a builder
    /// at `transfers.<stage>` with the stage's own and its parent's representation widths.
    pub fn set_transfer(
        &mut self,
        stage: StageId,
        make: impl FnOnce(&mut ParamBuilder<'_>, usize, usize) -> candle_core::Result<Box<dyn Transfer>>,
    ) -> Result<()> {
        let Some(parent) = self.funnel.parent(stage) else {
            return Err(crate::error::Error::Internal(format!(
                "stage `{}` has no parent to transfer from",
                self.stage_names[stage]
            )));
        };
        let (own, from) = (
            self.stages[stage].tower.width(),
            self.stages[parent].tower.width(),
        );
        let mut root = ParamBuilder::new(self.seed, &mut self.params, &self.dev);
        let block = make(
            &mut root.pp("transfers").pp(&self.stage_names[stage]),
            own,
            from,
        )?;
        self.stages[stage].transfer = Some(block);
        Ok(())
    }

    pub fn funnel(&self) -> &Funnel {
        &self.funnel
    }

    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    /// True when the trainer may run each stage's backward pass on its own: no block is read
    /// by more than one stage (a bottom feeds every stage, a transfer reads its parent). The
    /// loss may read every output: the step takes its gradient with respect to the logits and
    /// the heads' outputs on a small graph of its own, and each stage's pass starts from its
    /// share. The step checks the first from the gradients too (`merge` refuses a parameter two
    /// stages reach). A bottom could be cut the same way (the stages' passes side by side, then
    /// one pass through the bottom), but measured it was slower than one pass through the whole
    /// graph (BENCHMARKS.md, 2026-12-05 night), so chains with a bottom take the general path.
    pub fn is_separable(&self) -> bool {
        self.bottom.is_none()
            && self.stages.iter().all(|s| s.transfer.is_none())
            && (self.din.is_empty() || self.din_per_stage)
    }

    /// Parameters weight decay must not touch: the learned loss weights.
    pub fn undecayed(&self) -> Vec<Var> {
        self.log_variance.iter().cloned().collect()
    }

    /// The learned log-variance of each stage's loss (uncertainty weighting), if any.
    pub fn log_variance(&self) -> Option<&Var> {
        self.log_variance.as_ref()
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// One forward pass over a batch's input (`ChainInput`). With `dropout`, training mode,
    /// each block drawing from the stream named by its key (`Dropout`); without, inference.
    /// Stages run side by side as far as the funnel allows: each stage's encoder reads only its
    /// input, and a stage without a transfer finishes (head included) in the same task.
    /// Transfers and their heads then run in funnel order, so a parent's representation is ready
    /// for its child. A stage's input is the bottom's output for it (or the store's input rows),
    /// with the pooled histories after it when the chain has DIN.
    pub fn forward(
        &self,
        input: &ChainInput<Tensor>,
        dropout: Option<&Dropout>,
    ) -> Result<ChainOutput> {
        let stream = |block: &str, k: usize| {
            dropout.map(|d| d.stream(&format!("{block}.{}", self.stage_names[k])))
        };
        let per_store = self.inputs_per_store();
        let rows = |store: usize| &input.xs[store * per_store];
        let histories = |store: usize| -> Vec<History<'_>> {
            input.xs[store * per_store + 1..(store + 1) * per_store]
                .iter()
                .zip(&input.token_rows)
                .map(|(tokens, rows)| History { tokens, rows })
                .collect()
        };
        // The bottom (when there is one) runs first; the stages read its outputs instead of
        // the input rows.
        let bottomed: Option<Vec<Tensor>> = match &self.bottom {
            Some(b) => {
                let mut rng = dropout.map(|d| d.stream("bottom"));
                Some(b.forward(rows(0), self.stages.len(), &mut mode_for(&mut rng))?)
            }
            None => None,
        };
        // A DIN shared by the stages pools each store's histories once.
        let shared_din: Vec<Tensor> = match (self.din.first(), self.din_per_stage) {
            (Some(din), false) => {
                let mut rng = dropout.map(|d| d.stream("din"));
                (0..self.stores.len())
                    .map(|i| din.forward(rows(i), &histories(i), &mut mode_for(&mut rng)))
                    .collect::<candle_core::Result<_>>()?
            }
            _ => Vec::new(),
        };
        let first = self
            .stages
            .par_iter()
            .zip(self.stage_store.par_iter())
            .enumerate()
            .map(|(k, (s, &store))| {
                let base = match &bottomed {
                    Some(inputs) => &inputs[k],
                    None => rows(store),
                };
                let pooled = match (self.din_per_stage, self.din.get(k)) {
                    (true, Some(din)) => {
                        let mut rng = stream("din", k);
                        Some(din.forward(
                            rows(store),
                            &histories(store),
                            &mut mode_for(&mut rng),
                        )?)
                    }
                    _ => shared_din.get(store).cloned(),
                };
                let joined;
                let x = match pooled {
                    Some(p) => {
                        joined = Tensor::cat(&[base, &p], 1)?;
                        &joined
                    }
                    None => base,
                };
                let mut rng = stream("towers", k);
                let mut mode = mode_for(&mut rng);
                let hidden = s.tower.encode(x, &mut mode)?;
                let logit = match s.transfer {
                    None => Some(s.tower.logit(&hidden, rows(store), &mut mode)?),
                    Some(_) => None,
                };
                let heads = match mode.is_train() {
                    true => s
                        .heads
                        .iter()
                        .map(|h| {
                            let mut rng = stream(h.kind.key(), k);
                            Ok((h.kind, h.forward(x, &mut mode_for(&mut rng))?))
                        })
                        .collect::<candle_core::Result<Vec<_>>>()?,
                    false => Vec::new(),
                };
                let skip = match &s.skip {
                    Some(t) => {
                        let mut rng = stream("branches", k);
                        let mut mode = mode_for(&mut rng);
                        let e = t.encode(x, &mut mode)?;
                        Some(t.logit(&e, rows(store), &mut mode)?)
                    }
                    None => None,
                };
                Ok(Parallel {
                    hidden,
                    logit,
                    heads,
                    skip,
                })
            })
            .collect::<candle_core::Result<Vec<Parallel>>>()?;
        let mut hidden: Vec<Tensor> = Vec::with_capacity(self.stages.len());
        let mut stage_logits = Vec::with_capacity(self.stages.len());
        let mut heads = HeadOutputs::default();
        let mut skips = Vec::new();
        for ((k, s), part) in self.stages.iter().enumerate().zip(first) {
            let (h, logit) = match (&s.transfer, self.funnel.parent(k), part.logit) {
                (_, _, Some(logit)) => (part.hidden, logit),
                (Some(t), Some(parent), None) => {
                    let mut rng = stream("transfers", k);
                    let mut mode = mode_for(&mut rng);
                    let h = t.forward(&part.hidden, &hidden[parent], &mut mode)?;
                    let logit = s.tower.logit(&h, rows(self.stage_store[k]), &mut mode)?;
                    (h, logit)
                }
                _ => {
                    return Err(crate::error::Error::Internal(format!(
                        "stage {k} has a transfer but no parent"
                    )));
                }
            };
            stage_logits.push(logit);
            hidden.push(h);
            for (kind, t) in part.heads {
                heads.insert(k, kind, t);
            }
            skips.extend(part.skip);
        }
        // Second logits of stages with an optional stage before them, after every stage's own
        // (`Funnel::skip_column`).
        stage_logits.extend(skips);
        Ok(ChainOutput {
            logits: Tensor::cat(&stage_logits, 1)?,
            stage_logits,
            heads,
        })
    }

    /// The bottom's per-stage outputs (tests of the dropout streams).
    #[cfg(test)]
    pub(crate) fn bottom_for_tests(
        &self,
        x: &Tensor,
        mode: &mut super::kit::Mode<'_>,
    ) -> Vec<Tensor> {
        self.bottom
            .as_ref()
            .expect("a bottom")
            .forward(x, self.stages.len(), mode)
            .expect("bottom")
    }

    /// Stage `k`'s logit from its input alone (a stage without a transfer; tests).
    #[cfg(test)]
    pub(crate) fn stage_logit_for_tests(
        &self,
        k: usize,
        x: &Tensor,
        input: &Tensor,
        mode: &mut super::kit::Mode<'_>,
    ) -> Tensor {
        let t = &self.stages[k].tower;
        let h = t.encode(x, mode).expect("encode");
        t.logit(&h, input, mode).expect("logit")
    }

    /// The logits of a batch's rows (rows x `Funnel::logit_columns`, row-major), in inference
    /// mode. The evaluation driver (`scoring`) runs it over a dataset's batches.
    pub fn logits(&self, b: &Batch) -> Result<Vec<f32>> {
        self.inference_logits(&self.input_tensors(b)?)
    }

    /// The logits of an input, in inference mode, row-major.
    pub(super) fn inference_logits(&self, input: &ChainInput<Tensor>) -> Result<Vec<f32>> {
        let logits = self.forward(input, None)?.logits;
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }

    pub fn device(&self) -> &Device {
        &self.dev
    }
}
