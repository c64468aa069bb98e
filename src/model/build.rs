//! Building the chain from a validated pipeline: the embedding stores (one shared, or one per
//! stage), the bottom, each stage's tower (and ESM²'s second tower, the auxiliary heads its loss reads),
//! the transfers, and the learned loss weights, every parameter through the seeded builder.

use super::aitm::AitmTransfer;
use super::bottom;
use super::chain::{FunnelModel, StageBlocks};
use super::din::Din;
use super::embedding::{SparseOptimizer, Table};
use super::heads::Head;
use super::kit::{ParamBuilder, Params};
use super::local_store::LocalStore;
use super::row_store::RowStore;
use super::tower::Tower;
use super::transfer::Transfer;
use crate::config::{LossWeighting, Pipeline, RepresentationKind, TransferSpec};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::rng::Rng;

impl FunnelModel {
    /// A freshly initialised model: every random draw comes from the pipeline seed.
    pub fn new(p: &Pipeline, enc: &Encoders) -> Result<Self> {
        Self::build(p, &enc.table_rows(), p.embedding_init_std)
    }

    /// The model's dense blocks over tables without rows: what the memory estimate walks to
    /// count the dense parameters before the tables are allocated.
    pub fn dense_only(p: &Pipeline) -> Result<Self> {
        Self::build(p, &vec![0; p.embedded_fields().len()], 0.0)
    }

    /// The model saved at `weights` (a run directory's), without drawing initial tables first.
    pub fn open(p: &Pipeline, enc: &Encoders, weights: &std::path::Path) -> Result<Self> {
        let mut model = Self::build(p, &enc.table_rows(), 0.0)?;
        model.load(weights)?;
        Ok(model)
    }

    fn build(p: &Pipeline, rows: &[usize], embedding_std: f64) -> Result<Self> {
        let dev = super::backend::device();
        let seed = p.train.seed;
        let opt = SparseOptimizer::from_config(&p.train.embedding_optimizer);
        let initial_state = p.train.embedding_optimizer.initial_accumulator as f32;
        let (store_keys, stage_store): (Vec<String>, Vec<usize>) = match p.representation {
            RepresentationKind::SharedEmbeddings => {
                (vec!["embeddings".into()], vec![0; p.stages.len()])
            }
            RepresentationKind::PerStageEmbeddings => (
                p.stages
                    .iter()
                    .map(|s| format!("embeddings.{}", s.name))
                    .collect(),
                (0..p.stages.len()).collect(),
            ),
        };
        if rows.len() != p.embedded_fields().len() {
            return Err(Error::Internal(
                "the encoders do not match the pipeline's embedded features".into(),
            ));
        }
        // Each embedded field's L2: a categorical or multi-valued feature's own, else the optimizer's.
        let global_l2 = p.train.embedding_optimizer.l2;
        let l2: Vec<f32> = p
            .categorical
            .iter()
            .map(|c| c.l2.unwrap_or(global_l2) as f32)
            .chain(
                p.numeric
                    .iter()
                    .filter(|n| n.buckets.is_some())
                    .map(|_| global_l2 as f32),
            )
            .chain(
                p.multi_valued
                    .iter()
                    .map(|m| m.vocabulary.l2.unwrap_or(global_l2) as f32),
            )
            .collect();
        let layout = p.field_layout()?;
        let stores: Vec<Box<dyn RowStore>> = store_keys
            .iter()
            .map(|prefix| {
                let tables = p
                    .embedded_fields()
                    .into_iter()
                    .zip(rows)
                    .zip(&l2)
                    .map(|(((name, dim), &rows), &l2)| {
                        let key = format!("{prefix}.{name}");
                        let mut rng = Rng::stream(seed, &format!("init/{key}"));
                        Table::new(
                            name,
                            rows,
                            dim,
                            embedding_std,
                            &opt,
                            initial_state,
                            &mut rng,
                        )
                        .with_l2(l2)
                    })
                    .collect();
                Box::new(LocalStore::new(tables, layout.clone(), opt)) as Box<dyn RowStore>
            })
            .collect();
        let mut params = Params::default();
        let mut root = ParamBuilder::new(seed, &mut params, &dev);
        let names: Vec<String> = p.stages.iter().map(|s| s.name.clone()).collect();
        let bottom = p
            .bottom
            .as_ref()
            .map(|b| {
                let input = layout.width() + p.dense_values();
                bottom::build(&mut root.pp("bottom"), input, b, &names)
            })
            .transpose()?;
        let log_variance = match p.loss_weighting {
            LossWeighting::Uncertainty => Some(
                root.pp("loss_weighting")
                    .zeros("log_variance", p.stages.len())?,
            ),
            // GradNorm's weights are the trainer's state, not the model's.
            LossWeighting::Fixed | LossWeighting::GradNorm => None,
        };
        // DIN's units, each history against its target's slot: one block shared by the
        // stages (`din`), or one per stage (`din.<stage>`).
        let histories: Vec<(&str, usize, usize)> = layout
            .sequences()
            .iter()
            .map(|s| {
                let slot = layout.slot_of(s.field);
                (s.name.as_str(), slot.offset, slot.width)
            })
            .collect();
        let din: Vec<Din> = match &p.din {
            None => Vec::new(),
            Some(d) if d.per_stage => p
                .stages
                .iter()
                .map(|s| Din::new(&mut root.pp("din").pp(&s.name), &histories, &d.unit))
                .collect::<candle_core::Result<_>>()?,
            Some(d) => vec![Din::new(&mut root.pp("din"), &histories, &d.unit)?],
        };
        // What the towers read: the bottom's output, or the input rows themselves; then the
        // pooled histories.
        let input = match &bottom {
            Some(b) => b.width(),
            None => layout.width() + p.dense_values(),
        } + din.first().map_or(0, Din::width);
        let stages = p
            .stages
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let tower =
                    Tower::new(&mut root.pp("towers").pp(&s.name), input, &s.tower, &layout)?;
                let skip = match p.funnel.via(k) {
                    Some(_) => Some(Tower::new(
                        &mut root.pp("branches").pp(&s.name),
                        input,
                        &s.tower,
                        &layout,
                    )?),
                    None => None,
                };
                let heads = s
                    .heads
                    .iter()
                    .map(|&kind| {
                        Ok(Head {
                            kind,
                            tower: Tower::new(
                                &mut root.pp(kind.key()).pp(&s.name),
                                input,
                                &s.tower,
                                &layout,
                            )?,
                        })
                    })
                    .collect::<candle_core::Result<_>>()?;
                Ok(StageBlocks {
                    tower,
                    transfer: None,
                    heads,
                    skip,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        let mut model = FunnelModel {
            stores,
            store_keys,
            stage_store,
            bottom,
            din,
            din_per_stage: p.din.as_ref().is_some_and(|d| d.per_stage),
            log_variance,
            stages,
            funnel: p.funnel.clone(),
            params,
            stage_names: p.stages.iter().map(|s| s.name.clone()).collect(),
            numerics: p.dense_values(),
            seed,
            initial_state,
            dev,
        };
        for (k, s) in p.stages.iter().enumerate() {
            match s.transfer {
                Some(TransferSpec::Aitm) => {
                    let dropout = s.tower.dropout;
                    model.set_transfer(k, |pb, own, parent| {
                        Ok(Box::new(AitmTransfer::new(pb, own, parent, dropout)?)
                            as Box<dyn Transfer>)
                    })?
                }
                None => {}
            }
        }
        Ok(model)
    }
}

impl FunnelModel {
    /// The model reading its embedding rows from `stores` (one per store of the model, each
    /// with the model's field layout) instead of the local ones it was built with: the seam a
    /// store kept elsewhere plugs into.
    pub fn with_stores(mut self, stores: Vec<Box<dyn RowStore>>) -> Result<Self> {
        self.check_layouts(stores.iter().map(|s| s.layout()), "replacement row stores")?;
        self.stores = stores;
        Ok(self)
    }

    /// Nothing when `layouts` has one layout per store of the model, each the store's; else
    /// an internal error naming `what` does not fit.
    pub(super) fn check_layouts<'a>(
        &self,
        layouts: impl ExactSizeIterator<Item = &'a crate::layout::FieldLayout>,
        what: &str,
    ) -> Result<()> {
        if layouts.len() != self.stores.len()
            || layouts.zip(&self.stores).any(|(l, own)| l != own.layout())
        {
            return Err(Error::Internal(format!(
                "{what} must match the model's stores and field layout"
            )));
        }
        Ok(())
    }
}
