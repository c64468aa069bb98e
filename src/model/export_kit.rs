//! What every block's export reads: the graph being built, and the model's dense weights as its
//! constants, each named by its checkpoint key and written once however many nodes read it.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::{TensorId, Var};

use crate::config::Activation;
use crate::error::{Error, Result};
use crate::onnx::{Graph, Value};

pub struct ExportKit {
    pub g: Graph,
    /// Each dense parameter's checkpoint key.
    keys: HashMap<TensorId, String>,
    written: RefCell<HashMap<TensorId, Value>>,
}

impl ExportKit {
    /// A kit over `g` for parameters keyed as `params` gives them.
    pub fn new<'a>(g: Graph, params: impl Iterator<Item = (&'a str, &'a Var)>) -> Self {
        ExportKit {
            g,
            keys: params.map(|(k, v)| (v.id(), k.to_string())).collect(),
            written: RefCell::default(),
        }
    }

    /// Parameter `v` as a constant of the graph, named by its key.
    pub fn weight(&self, v: &Var) -> Result<Value> {
        if let Some(w) = self.written.borrow().get(&v.id()) {
            return Ok(w.clone());
        }
        let key = self
            .keys
            .get(&v.id())
            .cloned()
            .ok_or_else(|| Error::Internal("a weight outside the model's parameters".into()))?;
        let values = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let w = self.g.constant(&key, v.dims(), values);
        self.written.borrow_mut().insert(v.id(), w.clone());
        Ok(w)
    }

    /// `activation` applied to `x`, as candle computes it (GELU in its tanh form).
    pub fn activation(&self, x: &Value, activation: Activation) -> Value {
        match activation {
            Activation::Relu => x.unary("Relu"),
            Activation::Sigmoid => x.unary("Sigmoid"),
            Activation::Tanh => x.unary("Tanh"),
            Activation::Silu => x.mul(&x.unary("Sigmoid")),
            Activation::Gelu => {
                // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
                let cube = x.mul(x).mul(x);
                let inner = x
                    .add(&cube.scaled(0.044715))
                    .scaled((2.0 / std::f64::consts::PI).sqrt() as f32);
                let one = self.g.scalar(1.0);
                x.mul(&inner.unary("Tanh").add(&one)).scaled(0.5)
            }
        }
    }
}
