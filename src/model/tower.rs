//! A stage tower: its encoder blocks (optional DCN-v2 cross layers, then an MLP) from the input
//! rows to the stage's representation, a head from that representation to the logit, and the
//! terms the logit adds from the input rows (DeepFM's interaction).

use candle_core::{Result, Tensor};

use super::backend::Fused;
use super::export_kit::ExportKit;
use super::kit::{Block, Mode, ParamBuilder, dropout};
use super::linear::Linear;
use crate::config::{Activation, TowerSpec};
use crate::layout::FieldLayout;
use crate::onnx::Value;

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
                Activation::Tanh | Activation::Sigmoid => inp + h,
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

super::kit::inference_module!(Mlp, Cross);

impl Block for Mlp {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            // ReLU and the sigmoid run inside the layer's own op.
            h = match self.activation {
                Activation::Relu => layer.forward_fused(&h, mode, Fused::Relu)?,
                Activation::Sigmoid => layer.forward_fused(&h, mode, Fused::Sigmoid)?,
                Activation::Tanh => layer.forward_relu(&h, mode, false)?.tanh()?,
                Activation::Gelu => layer.forward_relu(&h, mode, false)?.gelu()?,
                Activation::Silu => layer.forward_relu(&h, mode, false)?.silu()?,
            };
            h = dropout(&h, self.dropout, mode)?;
        }
        Ok(h)
    }

    fn export(&self, kit: &ExportKit, x: &Value) -> crate::error::Result<Value> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = kit.activation(&layer.export(kit, &h)?, self.activation);
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

/// A stage's tower as a composition: the blocks from the input rows to the representation, the
/// head from the representation to the logit, and terms the logit adds from the input rows.
pub struct Tower {
    /// In order: DCN-v2 cross layers (when the spec has any), then the MLP.
    encoder: Vec<Box<dyn Block>>,
    width: usize,
    head: Linear,
    /// Added to the head's output, each read from the input rows (DeepFM's interaction).
    logit_terms: Vec<Box<dyn Block>>,
}

impl Tower {
    /// Parameters `cross.<l>.weight|bias` for cross layer l, `<i>.weight|bias` for hidden layer
    /// i, and the head as the last index. An FM tower takes its slots from `layout`.
    pub fn new(
        pb: &mut ParamBuilder<'_>,
        input: usize,
        spec: &TowerSpec,
        layout: &FieldLayout,
    ) -> Result<Self> {
        let mut encoder: Vec<Box<dyn Block>> = Vec::new();
        if spec.cross_layers > 0 {
            encoder.push(Box::new(Cross::new(
                &mut pb.pp("cross"),
                input,
                spec.cross_layers,
            )?));
        }
        let mlp = Mlp::new(pb, input, spec)?;
        let width = mlp.width;
        encoder.push(Box::new(mlp));
        let head = Linear::new(
            &mut pb.pp(&spec.hidden.len().to_string()),
            width,
            1,
            width + 1,
        )?;
        let mut logit_terms: Vec<Box<dyn Block>> = Vec::new();
        if spec.fm {
            logit_terms.push(Box::new(Fm::new(layout)?));
        }
        Ok(Tower {
            encoder,
            width,
            head,
            logit_terms,
        })
    }

    /// The representation the head reads.
    pub fn encode(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut h = x.clone();
        for block in &self.encoder {
            h = block.forward(&h, mode)?;
        }
        Ok(h)
    }

    /// The logit from the representation `h`: the head, plus each logit term of the input rows
    /// `x`.
    pub fn logit(&self, h: &Tensor, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut logit = self.head.forward_relu(h, mode, false)?;
        for term in &self.logit_terms {
            logit = (logit + term.forward(x, mode)?)?;
        }
        Ok(logit)
    }

    /// `encode` as nodes of an exported graph.
    pub fn export_encode(&self, kit: &ExportKit, x: &Value) -> crate::error::Result<Value> {
        let mut h = x.clone();
        for block in &self.encoder {
            h = block.export(kit, &h)?;
        }
        Ok(h)
    }

    /// `logit` as nodes of an exported graph.
    pub fn export_logit(
        &self,
        kit: &ExportKit,
        h: &Value,
        x: &Value,
    ) -> crate::error::Result<Value> {
        let mut logit = self.head.export(kit, h)?;
        for term in &self.logit_terms {
            logit = logit.add(&term.export(kit, x)?);
        }
        Ok(logit)
    }

    /// The head alone on the representation `h` (an auxiliary head's raw output).
    pub fn head(&self, h: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.head.forward(h, mode)
    }

    /// Width of the representation the encoder produces (the input's when there are no hidden
    /// layers).
    pub fn width(&self) -> usize {
        self.width
    }
}

/// A tower as a candle-nn `Module` for inference: the stage's logit from its input rows.
impl candle_nn::Module for Tower {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut mode = Mode::Infer;
        let h = self.encode(x, &mut mode)?;
        self.logit(&h, x, &mut mode)
    }
}

/// DeepFM's interaction as a term of the logit: one field per slot of the layout (a field
/// group's summed embedding counts as one), every slot of one width.
struct Fm {
    slots: usize,
    dim: usize,
}

impl Fm {
    fn new(layout: &FieldLayout) -> Result<Self> {
        let dim = layout.common_width().ok_or_else(|| {
            candle_core::Error::Msg("an FM tower needs slots of one width".into())
        })?;
        Ok(Fm {
            slots: layout.slots().len(),
            dim,
        })
    }
}

impl Block for Fm {
    fn forward(&self, x: &Tensor, _: &mut Mode<'_>) -> Result<Tensor> {
        fm_interaction(x, self.slots, self.dim)
    }

    /// As `fm_interaction`: the slots' columns as rows x fields x dim, summed both ways.
    fn export(&self, _: &ExportKit, x: &Value) -> crate::error::Result<Value> {
        let (f, d) = (self.slots, self.dim);
        let v = x.columns(0, f * d).reshape(&[-1, f as i64, d as i64], 0);
        let sum = v.sum(1, false, d);
        let square_of_sum = sum.mul(&sum).sum(1, true, 1);
        let sum_of_squares = v.mul(&v).sum(2, false, f).sum(1, true, 1);
        Ok(square_of_sum.sub(&sum_of_squares).scaled(0.5))
    }
}

/// DeepFM's second-order interaction of `fields` embeddings of width `dim` (the slots' columns,
/// first in each input row): 0.5 Σ_d [(Σ_f v_f,d)² − Σ_f v_f,d²], rows x 1.
pub fn fm_interaction(x: &Tensor, fields: usize, dim: usize) -> Result<Tensor> {
    let rows = x.dim(0)?;
    let v = x
        .narrow(1, 0, fields * dim)?
        .contiguous()?
        .reshape((rows, fields, dim))?;
    let square_of_sum = v.sum(1)?.sqr()?.sum_keepdim(1)?;
    let sum_of_squares = v.sqr()?.sum(2)?.sum_keepdim(1)?;
    (square_of_sum - sum_of_squares)?.affine(0.5, 0.0)
}

/// DCN-v2 cross layers (Wang et al., "DCN V2", WWW 2021), stacked before the MLP:
/// x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l, each W_l a full (width x width) matrix.
pub struct Cross {
    layers: Vec<Linear>,
}

impl Cross {
    /// Layers `<l>.weight|bias`, Glorot-uniform weights (no activation follows).
    pub fn new(pb: &mut ParamBuilder<'_>, width: usize, layers: usize) -> Result<Self> {
        let layers = (0..layers)
            .map(|l| Linear::new(&mut pb.pp(&l.to_string()), width, width, 2 * width))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cross { layers })
    }
}

impl Block for Cross {
    fn forward(&self, x0: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut x = x0.clone();
        for layer in &self.layers {
            x = ((x0 * layer.forward(&x, mode)?)? + x)?;
        }
        Ok(x)
    }

    fn export(&self, kit: &ExportKit, x0: &Value) -> crate::error::Result<Value> {
        let mut x = x0.clone();
        for layer in &self.layers {
            x = x0.mul(&layer.export(kit, &x)?).add(&x);
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kit::Params;
    use candle_core::{Device, Var};

    /// Cross layers: values equal x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l in f64, and the gradient
    /// of every weight, bias and input element equals finite differences.
    #[test]
    fn cross_layers_match_the_formula() {
        let dev = Device::Cpu;
        let (d, rows, n) = (3, 2, 2);
        let mut params = Params::default();
        let cross = {
            let mut pb = ParamBuilder::new(5, &mut params, &dev);
            Cross::new(&mut pb.pp("cross"), d, n).unwrap()
        };
        let mut r = crate::rng::Rng::stream(2, "cross");
        for (_, v) in params.iter() {
            let vals: Vec<f32> = (0..v.elem_count())
                .map(|_| (0.5 * r.normal()) as f32)
                .collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &dev).unwrap())
                .unwrap();
        }
        let xs: Vec<f32> = (0..rows * d).map(|_| r.normal() as f32).collect();
        let c: Vec<f64> = (0..rows * d).map(|_| r.normal()).collect();
        let x = Var::from_slice(&xs, (rows, d), &dev).unwrap();
        let mut rng = crate::rng::Rng::stream(1, "unused");
        let out = cross
            .forward(x.as_tensor(), &mut Mode::Train(&mut rng))
            .unwrap();
        let ct = Tensor::from_vec(
            c.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            (rows, d),
            &dev,
        )
        .unwrap();
        let loss = (out * ct).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let keys: Vec<String> = params.iter().map(|(k, _)| k.to_string()).collect();
        let get =
            |p: &[Vec<f64>], key: &str| p[keys.iter().position(|k| k == key).unwrap()].clone();
        let reference = |p: &[Vec<f64>], x: &[f64]| -> f64 {
            (0..rows)
                .map(|i| {
                    let x0 = &x[i * d..(i + 1) * d];
                    let mut xl = x0.to_vec();
                    for l in 0..n {
                        let (w, b) = (
                            get(p, &format!("cross.{l}.weight")),
                            get(p, &format!("cross.{l}.bias")),
                        );
                        xl = (0..d)
                            .map(|o| {
                                let lin = b[o] + (0..d).map(|j| w[o * d + j] * xl[j]).sum::<f64>();
                                x0[o] * lin + xl[o]
                            })
                            .collect();
                    }
                    xl.iter()
                        .zip(&c[i * d..(i + 1) * d])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                })
                .sum()
        };
        let vars: Vec<(String, Var)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        crate::testing::check_against_reference(&vars, &grads, &loss, &x, reference);
    }

    /// The FM interaction by hand, and its gradient by finite differences: two fields of width
    /// 2 and one numeric column (ignored), 0.5 Σ_d [(a_d + b_d)² − a_d² − b_d²] = Σ_d a_d b_d.
    #[test]
    fn fm_interaction_is_the_pairwise_dot_product() {
        let dev = Device::Cpu;
        let xs = [1.0f32, 2.0, 3.0, -1.0, 9.0, 0.5, 0.0, 4.0, 2.0, 7.0];
        let x = Var::from_slice(&xs, (2, 5), &dev).unwrap();
        let out = fm_interaction(x.as_tensor(), 2, 2).unwrap();
        // Row 1: 1·3 + 2·(−1) = 1; row 2: 0.5·4 + 0·2 = 2.
        assert_eq!(
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
        let loss = out.sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let reference = |_: &[Vec<f64>], x: &[f64]| -> f64 {
            (0..2)
                .map(|r| x[r * 5] * x[r * 5 + 2] + x[r * 5 + 1] * x[r * 5 + 3])
                .sum()
        };
        crate::testing::check_against_reference(&[], &grads, &loss, &x, reference);
    }
}
