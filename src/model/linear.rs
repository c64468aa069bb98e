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

super::kit::inference_module!(Linear);

impl Block for Linear {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.forward_relu(x, mode, false)
    }

    fn export(&self, kit: &ExportKit, x: &Value) -> crate::error::Result<Value> {
        let (w, b) = (kit.weight(&self.weight)?, kit.weight(&self.bias)?);
        Ok(x.linear(&w, &b, self.weight.dims()[0]))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Module, Tensor};

    use super::*;
    use crate::model::kit::Params;

    /// funnel's dense layer run as a candle-nn `Module` (its fused GEMM) gives what candle-nn's
    /// own `Linear` over the same weight and bias gives, inside a candle-nn `Sequential` too.
    #[test]
    fn a_layer_is_a_candle_nn_module() {
        let dev = Device::Cpu;
        let mut params = Params::default();
        let layer = {
            let mut pb = ParamBuilder::new(3, &mut params, &dev);
            Linear::new(&mut pb.pp("l"), 5, 4, 5).unwrap()
        };
        let mut r = crate::rng::Rng::stream(9, "module");
        let bias: Vec<f32> = (0..4).map(|_| r.normal() as f32).collect();
        layer
            .bias
            .set(&Tensor::new(bias.as_slice(), &dev).unwrap())
            .unwrap();
        let xs: Vec<f32> = (0..15).map(|_| r.normal() as f32).collect();
        let x = Tensor::from_vec(xs, (3, 5), &dev).unwrap();
        let theirs = candle_nn::Linear::new(
            layer.weight.as_tensor().clone(),
            Some(layer.bias.as_tensor().clone()),
        );
        let ours = candle_nn::seq().add(layer).add_fn(|t| t.relu());
        let want = theirs.forward(&x).unwrap().relu().unwrap();
        let got = ours.forward(&x).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }
}
