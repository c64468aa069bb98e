//! The module kit: one seeded parameter builder whose path is both each parameter's random
//! stream and its checkpoint key, the sorted parameter list that saving, loading and the
//! optimizer walk, and the forward mode every block takes.
//!
//! Why not candle-nn's `VarBuilder`, `Init` and `ModuleT`: candle's CPU generator cannot be
//! seeded, so its initialisers and `ops::dropout` differ on every run, and `ModuleT` passes a bare
//! `train: bool` where dropout needs our seeded stream. `VarMap` is a `HashMap`, whose order must
//! not reach a checkpoint. The trait below is candle's `ModuleT` with the seeded stream added.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::export_kit::ExportKit;
use crate::onnx::Value;
use crate::rng::Rng;

/// Every dense parameter of a model, by checkpoint key, in key order.
#[derive(Default)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

impl Params {
    /// (key, parameter) in key order: the order of the checkpoint and of the optimizer's state.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn vars(&self) -> Vec<Var> {
        self.vars.values().cloned().collect()
    }
}

/// Creates parameters under a dotted path (`towers.click.0.weight`). The full key names the
/// checkpoint entry and the random stream (`init/<key>`) its initial values come from, so adding
/// a block never shifts another block's draws.
pub struct ParamBuilder<'a> {
    seed: u64,
    path: String,
    params: &'a mut Params,
    dev: &'a Device,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(seed: u64, params: &'a mut Params, dev: &'a Device) -> Self {
        ParamBuilder {
            seed,
            path: String::new(),
            params,
            dev,
        }
    }

    /// A builder for the sub-path `<path>.<name>`.
    pub fn pp(&mut self, name: &str) -> ParamBuilder<'_> {
        ParamBuilder {
            seed: self.seed,
            path: self.key(name),
            params: self.params,
            dev: self.dev,
        }
    }

    pub fn device(&self) -> &Device {
        self.dev
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn register(&mut self, name: &str, var: Var) -> Result<Var> {
        let key = self.key(name);
        if self.params.vars.contains_key(&key) {
            candle_core::bail!("parameter `{key}` is created twice");
        }
        self.params.vars.insert(key, var.clone());
        Ok(var)
    }

    /// A (rows x cols) matrix drawn uniformly from ±`bound`, from the stream `init/<key>`.
    pub fn uniform(&mut self, name: &str, rows: usize, cols: usize, bound: f64) -> Result<Var> {
        let mut rng = Rng::stream(self.seed, &format!("init/{}", self.key(name)));
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
            .collect();
        let var = Var::from_vec(w, (rows, cols), self.dev)?;
        self.register(name, var)
    }

    /// A (rows x cols) matrix drawn from N(0, std²), from the stream `init/<key>`.
    pub fn normal(&mut self, name: &str, rows: usize, cols: usize, std: f64) -> Result<Var> {
        let mut rng = Rng::stream(self.seed, &format!("init/{}", self.key(name)));
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| (rng.normal() * std) as f32)
            .collect();
        let var = Var::from_vec(w, (rows, cols), self.dev)?;
        self.register(name, var)
    }

    /// A vector of `len` zeros.
    pub fn zeros(&mut self, name: &str, len: usize) -> Result<Var> {
        let var = Var::zeros(len, DType::F32, self.dev)?;
        self.register(name, var)
    }
}

/// Training (dropout drawn from the stage's seeded stream, gradients tracked) or inference
/// (no dropout, detached from autograd).
pub enum Mode<'a> {
    Train(&'a mut Rng),
    Infer,
}

impl Mode<'_> {
    pub fn is_train(&self) -> bool {
        matches!(self, Mode::Train(_))
    }

    /// The dropout stream, in training mode.
    pub fn rng(&mut self) -> Option<&mut Rng> {
        match self {
            Mode::Train(r) => Some(r),
            Mode::Infer => None,
        }
    }
}

/// One training step's dropout: each block draws its masks from the stream named by its
/// checkpoint key prefix (`towers.<stage>`, `bottom`, ...), as initial values come from
/// `init/<key>`, so a new stochastic block never shifts another block's draws.
pub struct Dropout([u8; 32]);

impl Dropout {
    /// The next step's draws from an epoch's dropout stream.
    pub fn next(epoch: &mut Rng) -> Self {
        Dropout(epoch.key())
    }

    /// The stream of the block at `key`.
    pub fn stream(&self, key: &str) -> Rng {
        Rng::named(&self.0, key)
    }
}

/// A block's mode in a forward pass: training with its own stream of `dropout`, or inference.
pub fn mode_for<'a>(rng: &'a mut Option<Rng>) -> Mode<'a> {
    match rng {
        Some(r) => Mode::Train(r),
        None => Mode::Infer,
    }
}

/// A block of the chain with one input: rows x in -> rows x out.
pub trait Block: Send + Sync {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;

    /// What `forward` computes in inference, as nodes of an exported graph.
    fn export(&self, kit: &ExportKit, x: &Value) -> crate::error::Result<Value>;
}

/// Every block is a candle-nn `Module` for inference: its `forward` with no dropout, so a
/// candle program can run funnel's layers (`Linear`, `Mlp`, DCN's cross layers) as its own.
macro_rules! inference_module {
    ($($t:ty),*) => {$(
        impl candle_nn::Module for $t {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Block::forward(self, x, &mut Mode::Infer)
            }
        }
    )*};
}
pub(super) use inference_module;

/// Inverted dropout with a mask drawn from our seeded generator; identity in inference.
pub fn dropout(h: &Tensor, p: f64, mode: &mut Mode<'_>) -> Result<Tensor> {
    let Some(rng) = mode.rng() else {
        return Ok(h.clone());
    };
    if p <= 0.0 {
        return Ok(h.clone());
    }
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..h.elem_count())
        .map(|_| if rng.uniform() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, h.shape(), h.device())?;
    h.mul(&mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_streams_and_order_is_sorted() {
        let dev = Device::Cpu;
        let mut params = Params::default();
        let mut root = ParamBuilder::new(7, &mut params, &dev);
        let b = root.pp("towers").pp("b").uniform("w", 2, 3, 1.0).unwrap();
        let a = root.pp("towers").pp("a").uniform("w", 2, 3, 1.0).unwrap();
        assert!(
            root.pp("towers").pp("a").zeros("w", 1).is_err(),
            "keys are unique"
        );
        let keys: Vec<&str> = params.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["towers.a.w", "towers.b.w"]);
        // The stream is named by the key: same key, same values; other key, other values.
        let mut again = Params::default();
        let a2 = ParamBuilder::new(7, &mut again, &dev)
            .pp("towers.a")
            .uniform("w", 2, 3, 1.0)
            .unwrap();
        let v = |x: &Var| {
            x.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(v(&a), v(&a2));
        assert_ne!(v(&a), v(&b));
        assert!(v(&a).iter().all(|x| x.abs() <= 1.0));
    }
}
