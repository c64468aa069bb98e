//! A stage tower: an MLP from the shared input row to the stage's representation (its last
//! hidden layer), and a head from that representation to the stage's logit.

use candle_core::{Result, Tensor};

use super::kit::{Block, Mode, ParamBuilder, dropout};
use super::linear::Linear;
use crate::config::{Activation, TowerSpec};

/// Hidden layers, each followed by the activation and dropout.
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
    dropout: f64,
    width: usize,
}

impl Mlp {
    /// Layers named `<first>`, `<first + 1>`, ... under the builder's path.
    pub(super) fn new(pb: &mut ParamBuilder<'_>, input: usize, spec: &TowerSpec) -> Result<Self> {
        let mut layers = Vec::with_capacity(spec.hidden.len());
        let mut inp = input;
        for (i, &h) in spec.hidden.iter().enumerate() {
            let fan = match spec.activation {
                Activation::Relu | Activation::Gelu | Activation::Silu => inp,
                Activation::Tanh => inp + h,
            };
            layers.push(Linear::new(&mut pb.pp(&i.to_string()), inp, h, fan)?);
            inp = h;
        }
        Ok(Mlp {
            layers,
            activation: spec.activation,
            dropout: spec.dropout,
            width: inp,
        })
    }
}

impl Block for Mlp {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            let relu = self.activation == Activation::Relu;
            h = layer.forward_relu(&h, mode, relu)?;
            h = match self.activation {
                Activation::Relu => h,
                Activation::Tanh => h.tanh()?,
                Activation::Gelu => h.gelu()?,
                Activation::Silu => h.silu()?,
            };
            h = dropout(&h, self.dropout, mode)?;
        }
        Ok(h)
    }
}

impl Mlp {
    /// Width of the output (the input's when there are no layers).
    pub fn width(&self) -> usize {
        self.width
    }
}

pub struct Tower {
    pub encoder: Mlp,
    pub head: Linear,
}

impl Tower {
    /// Parameters `<i>.weight|bias` for hidden layer i, and the head as the last index.
    pub fn new(pb: &mut ParamBuilder<'_>, input: usize, spec: &TowerSpec) -> Result<Self> {
        let encoder = Mlp::new(pb, input, spec)?;
        let w = encoder.width;
        let head = Linear::new(&mut pb.pp(&spec.hidden.len().to_string()), w, 1, w + 1)?;
        Ok(Tower { encoder, head })
    }

    /// Width of the representation the encoder produces (the input's when there are no hidden
    /// layers).
    pub fn width(&self) -> usize {
        self.encoder.width
    }
}
