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

impl Ple {
    /// The levels' wiring, whatever computes it (the forward's tensors, an exported graph's
    /// nodes): at each level every stage's own experts and the shared ones run on their
    /// inputs, each stage's gate mixes its own and the shared outputs from its input, and the
    /// shared gate mixes every output for the next level's shared input.
    fn walk<T: Clone, E, S: ?Sized>(
        &self,
        state: &mut S,
        x: &T,
        stages: usize,
        experts: impl Fn(&mut S, &[Mlp], &T) -> std::result::Result<Vec<T>, E>,
        mix: impl Fn(&mut S, &Linear, &T, &[&T]) -> std::result::Result<T, E>,
    ) -> std::result::Result<Vec<T>, E> {
        let mut stage_in: Vec<T> = vec![x.clone(); stages];
        let mut shared_in = x.clone();
        for level in &self.0 {
            let shared = experts(state, &level.shared, &shared_in)?;
            let mut own: Vec<Vec<T>> = Vec::with_capacity(stages);
            for (set, input) in level.own.iter().zip(&stage_in) {
                own.push(experts(state, set, input)?);
            }
            let mut next = Vec::with_capacity(stages);
            for ((g, mine), input) in level.gates.iter().zip(&own).zip(&stage_in) {
                let outs: Vec<&T> = mine.iter().chain(&shared).collect();
                next.push(mix(state, g, input, &outs)?);
            }
            if let Some(g) = &level.shared_gate {
                let outs: Vec<&T> = own.iter().flatten().chain(&shared).collect();
                shared_in = mix(state, g, &shared_in, &outs)?;
            }
            stage_in = next;
        }
        Ok(stage_in)
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
        self.walk(
            mode,
            x,
            stages,
            |mode, experts, input| run_experts(experts, input, mode),
            |mode, gate, input, outs| mix(gate, input, &side_by_side(outs)?, mode),
        )
    }

    fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        stages: usize,
    ) -> crate::error::Result<Vec<Value>> {
        self.walk(
            &mut (),
            x,
            stages,
            |_, experts, input| export_experts(kit, experts, input),
            |_, gate, input, outs| export_mix(kit, gate, input, outs),
        )
    }
}
