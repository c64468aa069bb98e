//! The shared bottom: one MLP every stage's tower reads.

use candle_core::{Result, Tensor};

use super::Bottom;
use crate::config::BottomSpec;
use crate::model::export_kit::ExportKit;
use crate::model::kit::{Block, Mode, ParamBuilder};
use crate::model::tower::Mlp;
use crate::onnx::Value;

pub struct SharedBottom(Mlp);

impl SharedBottom {
    /// Parameters `<layer>.weight|bias` under the builder's path.
    pub fn new(pb: &mut ParamBuilder<'_>, input: usize, spec: &BottomSpec) -> Result<Self> {
        Ok(SharedBottom(Mlp::new(pb, input, &spec.mlp)?))
    }
}

impl Bottom for SharedBottom {
    fn width(&self) -> usize {
        self.0.width()
    }

    fn forward(&self, x: &Tensor, stages: usize, mode: &mut Mode<'_>) -> Result<Vec<Tensor>> {
        let h = self.0.forward(x, mode)?;
        Ok(vec![h; stages])
    }

    fn export(
        &self,
        kit: &ExportKit,
        x: &Value,
        stages: usize,
    ) -> crate::error::Result<Vec<Value>> {
        Ok(vec![self.0.export(kit, x)?; stages])
    }
}
