//! MMoE (Ma et al., KDD 2018): expert MLPs and, per stage, a softmax gate over them: stage k's
//! tower reads Σ_e g_k,e(x) · expert_e(x), with g_k = softmax(W_k x + b_k).

use candle_core::{Result, Tensor};

use super::{Bottom, experts, export_experts, export_mix, gate, mix, run_experts, side_by_side};
use crate::config::BottomSpec;
use crate::model::export_kit::ExportKit;
use crate::model::kit::{Mode, ParamBuilder};
use crate::model::linear::Linear;
use crate::model::tower::Mlp;
use crate::onnx::Value;

pub struct Mmoe {
    experts: Vec<Mlp>,
    gates: Vec<Linear>,
}

impl Mmoe {
    /// Parameters `experts.<e>.<layer>.*` and `gates.<stage>.*` under the builder's path.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        input: usize,
        spec: &BottomSpec,
        stages: &[String],
    ) -> Result<Self> {
        Ok(Mmoe {
            experts: experts(&mut pb.pp("experts"), spec.experts, input, spec)?,
            gates: stages
                .iter()
                .map(|s| gate(&mut pb.pp("gates").pp(s), input, spec.experts))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

impl Bottom for Mmoe {
    fn width(&self) -> usize {
        self.experts[0].width()
    }

    fn forward(&self, x: &Tensor, _stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
        let outs = run_experts(&self.experts, x, mode)?;
        let stacked = side_by_side(&outs.iter().collect::<Vec<_>>())?;
        self.gates
            .iter()
            .map(|g| mix(g, x, &stacked, mode))
            .collect()
    }

    fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        _stages: usize,
    ) -> crate::error::Result<Vec<Value>> {
        let outs = export_experts(kit, &self.experts, x)?;
        let outs: Vec<&Value> = outs.iter().collect();
        self.gates
            .iter()
            .map(|g| export_mix(kit, g, x, &outs))
            .collect()
    }
}
