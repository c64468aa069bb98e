//! An MLP per group of stages: the stages of a group read one MLP, and the groups share only
//! the embeddings (hard sharing where the stages are alike, e.g. the conversion stages apart
//! from the click).

use candle_core::{Result, Tensor};

use super::Bottom;
use crate::config::BottomSpec;
use crate::model::export_kit::ExportKit;
use crate::model::kit::{Block, Mode, ParamBuilder};
use crate::model::tower::Mlp;
use crate::onnx::Value;

pub struct StageGroups {
    /// One MLP per group, in the order the pipeline lists the groups.
    mlps: Vec<Mlp>,
    /// The group of each stage.
    group_of: Vec<usize>,
}

impl StageGroups {
    /// Parameters `<g>.<layer>.weight|bias` under the builder's path for group g.
    pub fn new(pb: &mut ParamBuilder<'_>, input: usize, spec: &BottomSpec) -> Result<Self> {
        let stages = spec.groups.iter().map(Vec::len).sum();
        let mut group_of = vec![usize::MAX; stages];
        for (g, members) in spec.groups.iter().enumerate() {
            for &s in members {
                match group_of.get_mut(s) {
                    Some(slot) if *slot == usize::MAX => *slot = g,
                    _ => candle_core::bail!("stage {s} is in more than one group, or no stage"),
                }
            }
        }
        let mlps = (0..spec.groups.len())
            .map(|g| Mlp::new(&mut pb.pp(&g.to_string()), input, &spec.mlp))
            .collect::<Result<Vec<_>>>()?;
        Ok(StageGroups { mlps, group_of })
    }
}

impl Bottom for StageGroups {
    fn width(&self) -> usize {
        self.mlps.first().map_or(0, Mlp::width)
    }

    fn forward(&self, x: &Tensor, stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
        if stages != self.group_of.len() {
            candle_core::bail!(
                "a bottom for {} stages asked for {stages}",
                self.group_of.len()
            );
        }
        let outs = self
            .mlps
            .iter()
            .map(|m| m.forward(x, mode))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.group_of.iter().map(|&g| outs[g].clone()).collect())
    }

    fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        _stages: usize,
    ) -> crate::error::Result<Vec<Value>> {
        let outs = self
            .mlps
            .iter()
            .map(|m| m.export(kit, x))
            .collect::<crate::error::Result<Vec<_>>>()?;
        Ok(self.group_of.iter().map(|&g| outs[g].clone()).collect())
    }
}
