//! A stage tower: an MLP from the shared input row to one logit, initialised from our own seeded
//! generator (candle's CPU generator cannot be seeded).

use candle_core::{Device, Result, Tensor, Var};

use super::ops::{AddBias, AddBiasRelu};
use crate::config::raw::Activation;
use crate::rng::Rng;

pub struct Linear {
    pub weight: Var,
    pub bias: Var,
}

impl Linear {
    /// Uniform init in ±sqrt(6 / fan): He-uniform (fan = in) before a ReLU-like activation,
    /// Glorot-uniform (fan = in + out) otherwise. Bias zero.
    fn new(inp: usize, out: usize, fan: usize, rng: &mut Rng, dev: &Device) -> Result<Self> {
        let bound = (6.0 / fan as f64).sqrt();
        let w: Vec<f32> = (0..inp * out)
            .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
            .collect();
        Ok(Linear {
            weight: Var::from_vec(w, (out, inp), dev)?,
            bias: Var::zeros(out, candle_core::DType::F32, dev)?,
        })
    }

    /// x W^T + b, followed by a ReLU when `relu` (fused with the bias: one autograd node).
    fn forward(&self, x: &Tensor, detach: bool, relu: bool) -> Result<Tensor> {
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        match (detach, relu) {
            (true, false) => x
                .matmul(&w.detach().t()?)?
                .apply_op2_no_bwd(&b.detach(), &AddBias),
            (true, true) => x
                .matmul(&w.detach().t()?)?
                .apply_op2_no_bwd(&b.detach(), &AddBiasRelu),
            (false, false) => x.matmul(&w.t()?)?.apply_op2(b, AddBias),
            (false, true) => x.matmul(&w.t()?)?.apply_op2(b, AddBiasRelu),
        }
    }
}

pub struct Tower {
    pub layers: Vec<Linear>,
    activation: Activation,
    dropout: f64,
}

impl Tower {
    pub fn new(
        input: usize,
        hidden: &[usize],
        activation: Activation,
        dropout: f64,
        rng: &mut Rng,
        dev: &Device,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut inp = input;
        for &h in hidden {
            let fan = match activation {
                Activation::Relu | Activation::Gelu | Activation::Silu => inp,
                Activation::Tanh => inp + h,
            };
            layers.push(Linear::new(inp, h, fan, rng, dev)?);
            inp = h;
        }
        layers.push(Linear::new(inp, 1, inp + 1, rng, dev)?);
        Ok(Tower {
            layers,
            activation,
            dropout,
        })
    }

    /// Logits (rows x 1). With `dropout_rng`, hidden activations are dropped (training mode);
    /// without it the tower runs detached from autograd (inference).
    pub fn forward(&self, x: &Tensor, mut dropout_rng: Option<&mut Rng>) -> Result<Tensor> {
        let train = dropout_rng.is_some();
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let relu = i < last && self.activation == Activation::Relu;
            h = layer.forward(&h, !train, relu)?;
            if i == last {
                break;
            }
            h = match self.activation {
                Activation::Relu => h,
                Activation::Tanh => h.tanh()?,
                Activation::Gelu => h.gelu()?,
                Activation::Silu => h.silu()?,
            };
            if let Some(rng) = dropout_rng.as_deref_mut()
                && self.dropout > 0.0
            {
                h = dropout(&h, self.dropout, rng)?;
            }
        }
        Ok(h)
    }

    /// Parameters in a fixed order, named `<prefix>.<layer>.weight|bias`.
    pub fn params(&self, prefix: &str) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    (format!("{prefix}.{i}.weight"), l.weight.clone()),
                    (format!("{prefix}.{i}.bias"), l.bias.clone()),
                ]
            })
            .collect()
    }
}

/// Inverted dropout with a mask drawn from our seeded generator.
fn dropout(h: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..h.elem_count())
        .map(|_| if rng.uniform() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, h.shape(), h.device())?;
    h.mul(&mask)
}
