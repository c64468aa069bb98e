//! A dense layer, x Wᵀ + b, with an optional fused ReLU.

use candle_core::{Result, Tensor, Var};

use super::backend::{self, Fused};
use super::export_kit::ExportKit;
use super::kit::{Block, Mode, ParamBuilder};
use crate::onnx::Value;

pub struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    /// Uniform init in ±sqrt(6 / fan): He-uniform (fan = in) before a ReLU-like activation,
    /// Glorot-uniform (fan = in + out) otherwise. Bias zero. Parameters `weight` and `bias`.
    pub fn new(pb: &mut ParamBuilder<'_>, inp: usize, out: usize, fan: usize) -> Result<Self> {
        Ok(Linear {
            weight: pb.uniform("weight", out, inp, (6.0 / fan as f64).sqrt())?,
            bias: pb.zeros("bias", out)?,
        })
    }

    /// x Wᵀ + b, followed by a ReLU when `relu` (one autograd node with the bias).
    pub fn forward_relu(&self, x: &Tensor, mode: &Mode<'_>, relu: bool) -> Result<Tensor> {
        let act = if relu { Fused::Relu } else { Fused::Identity };
        self.forward_fused(x, mode, act)
    }

    /// act(x Wᵀ + b), one autograd node.
    pub fn forward_fused(&self, x: &Tensor, mode: &Mode<'_>, act: Fused) -> Result<Tensor> {
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        backend::linear(x, w, b, act, mode.is_train())
    }
}

impl Block for Linear {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.forward_relu(x, mode, false)
    }

    fn export(&self, kit: &ExportKit, x: &Value) -> crate::error::Result<Value> {
        let (w, b) = (kit.weight(&self.weight)?, kit.weight(&self.bias)?);
        Ok(x.linear(&w, &b, self.weight.dims()[0]))
    }
}
