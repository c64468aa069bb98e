//! PLE (Tang et al., RecSys 2020): levels of shared and per-stage experts. At each level stage
//! k's gate mixes its own and the shared experts from its own input, and a shared gate mixes
//! every expert for the next level's shared input.

use candle_core::{Result, Tensor};

use super::{Bottom, experts, export_experts, export_mix, gate, mix, run_experts, side_by_side};
use crate::config::BottomSpec;
use crate::model::export_kit::ExportKit;
use crate::model::kit::{Mode, ParamBuilder};
use crate::model::linear::Linear;
use crate::model::tower::Mlp;
use crate::onnx::Value;

pub struct Ple(Vec<PleLevel>);

/// One extraction level of PLE.
struct PleLevel {
    shared: Vec<Mlp>,
    /// Each stage's own experts.
    own: Vec<Vec<Mlp>>,
    /// Per stage, over its own experts then the shared ones.
    gates: Vec<Linear>,
    /// Over every expert (each stage's own in stage order, then the shared), for the next
    /// level's shared input; none at the last level.
    shared_gate: Option<Linear>,
}

impl Ple {
    /// Parameters, per level l, `<l>.shared.<e>.*`, `<l>.experts.<stage>.<e>.*`,
    /// `<l>.gates.<stage>.*` and `<l>.shared_gate.*` under the builder's path.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        input: usize,
        spec: &BottomSpec,
        stages: &[String],
    ) -> Result<Self> {
        let width = spec.mlp.hidden.last().copied().unwrap_or(input);
        let (own, shared) = (spec.experts, spec.shared_experts);
        let levels = (0..spec.levels)
            .map(|l| {
                let mut pb = pb.pp(&l.to_string());
                let inp = if l == 0 { input } else { width };
                Ok(PleLevel {
                    shared: experts(&mut pb.pp("shared"), shared, inp, spec)?,
                    own: stages
                        .iter()
                        .map(|s| experts(&mut pb.pp("experts").pp(s), own, inp, spec))
                        .collect::<Result<Vec<_>>>()?,
                    gates: stages
                        .iter()
                        .map(|s| gate(&mut pb.pp("gates").pp(s), inp, own + shared))
                        .collect::<Result<Vec<_>>>()?,
                    shared_gate: match l + 1 < spec.levels {
                        true => Some(gate(
                            &mut pb.pp("shared_gate"),
                            inp,
                            own * stages.len() + shared,
                        )?),
                        false => None,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Ple(levels))
    }
}

impl Bottom for Ple {
    fn width(&self) -> usize {
        self.0[0]
            .shared
            .first()
            .or_else(|| self.0[0].own.first().and_then(|o| o.first()))
            .map_or(0, Mlp::width)
    }

    fn forward(&self, x: &Tensor, stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
        let mut stage_in: Vec<Tensor> = vec![x.clone(); stages];
        let mut shared_in = x.clone();
        for level in &self.0 {
            let shared = run_experts(&level.shared, &shared_in, mode)?;
            let mut own: Vec<Vec<Tensor>> = Vec::with_capacity(stages);
            for (experts, input) in level.own.iter().zip(&stage_in) {
                own.push(run_experts(experts, input, mode)?);
            }
            let next = level
                .gates
                .iter()
                .zip(&own)
                .zip(&stage_in)
                .map(|((g, mine), input)| {
                    let outs: Vec<&Tensor> = mine.iter().chain(&shared).collect();
                    mix(g, input, &side_by_side(&outs)?, mode)
                })
                .collect::<Result<Vec<_>>>()?;
            if let Some(g) = &level.shared_gate {
                let outs: Vec<&Tensor> = own.iter().flatten().chain(&shared).collect();
                shared_in = mix(g, &shared_in, &side_by_side(&outs)?, mode)?;
            }
            stage_in = next;
        }
        Ok(stage_in)
    }

    /// `forward`'s levels, as nodes of an exported graph.
    fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        stages: usize,
    ) -> crate::error::Result<Vec<Value>> {
        let mut stage_in: Vec<Value> = vec![x.clone(); stages];
        let mut shared_in = x.clone();
        for level in &self.0 {
            let shared = export_experts(kit, &level.shared, &shared_in)?;
            let own = level
                .own
                .iter()
                .zip(&stage_in)
                .map(|(experts, input)| export_experts(kit, experts, input))
                .collect::<crate::error::Result<Vec<_>>>()?;
            let next = level
                .gates
                .iter()
                .zip(&own)
                .zip(&stage_in)
                .map(|((g, mine), input)| {
                    let outs: Vec<&Value> = mine.iter().chain(&shared).collect();
                    export_mix(kit, g, input, &outs)
                })
                .collect::<crate::error::Result<Vec<_>>>()?;
            if let Some(g) = &level.shared_gate {
                let outs: Vec<&Value> = own.iter().flatten().chain(&shared).collect();
                shared_in = export_mix(kit, g, &shared_in, &outs)?;
            }
            stage_in = next;
        }
        Ok(stage_in)
    }
}
