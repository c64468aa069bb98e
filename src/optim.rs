//! Adam and AdamW for the dense (tower) parameters, with explicit weight decay.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use crate::config::{DenseOptimizerKind, OptimizerSpec};

struct Slot {
    var: Var,
    /// Whether weight decay applies (not to learned loss weights).
    decay: bool,
    value: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// One parameter's first and second moments.
pub type Moments<'a> = (&'a [f32], &'a [f32]);

/// Adam (weight decay as an L2 term in the gradient) or AdamW (decoupled decay), bias-corrected.
pub struct DenseOptimizer {
    cfg: OptimizerSpec,
    slots: Vec<Slot>,
    step: i32,
    /// A schedule's factor on the learning rate (1 without one).
    lr_scale: f64,
    /// Scale the gradients down together when their global L2 norm exceeds this.
    clip_norm: Option<f64>,
}

impl DenseOptimizer {
    pub fn new(vars: Vec<Var>, cfg: &OptimizerSpec) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|var| {
                let value = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                let n = value.len();
                Ok(Slot {
                    var,
                    decay: true,
                    value,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                })
            })
            .collect::<Result<_>>()?;
        Ok(DenseOptimizer {
            cfg: cfg.clone(),
            slots,
            step: 0,
            lr_scale: 1.0,
            clip_norm: None,
        })
    }

    /// The same optimizer with gradient-norm clipping at `norm`.
    pub fn with_clipping(mut self, norm: Option<f64>) -> Self {
        self.clip_norm = norm;
        self
    }

    /// Set the schedule's factor for the steps that follow.
    pub fn set_lr_scale(&mut self, factor: f64) {
        self.lr_scale = factor;
    }

    pub fn lr_scale(&self) -> f64 {
        self.lr_scale
    }

    /// The same optimizer with no weight decay on `vars` (learned loss weights: decay would pull
    /// them towards equal weights).
    pub fn without_decay(mut self, vars: &[Var]) -> Self {
        for s in &mut self.slots {
            if vars
                .iter()
                .any(|v| v.as_tensor().id() == s.var.as_tensor().id())
            {
                s.decay = false;
            }
        }
        self
    }

    /// Steps taken, and each parameter's first and second moments, in parameter order.
    pub fn moments(&self) -> (i32, Vec<Moments<'_>>) {
        let m = self
            .slots
            .iter()
            .map(|s| (s.m.as_slice(), s.v.as_slice()))
            .collect();
        (self.step, m)
    }

    /// Restore what `moments` gave, and re-read each parameter's value from its variable (after
    /// the variables were loaded). Errors when the moments do not fit the parameters.
    pub fn restore(&mut self, step: i32, moments: Vec<(Vec<f32>, Vec<f32>)>) -> Result<()> {
        if moments.len() != self.slots.len() {
            candle_core::bail!(
                "{} moments for {} parameters",
                moments.len(),
                self.slots.len()
            );
        }
        for (s, (m, v)) in self.slots.iter_mut().zip(moments) {
            if m.len() != s.m.len() || v.len() != s.v.len() {
                candle_core::bail!("moments of the wrong length");
            }
            (s.m, s.v) = (m, v);
            s.value = s.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        }
        self.step = step;
        Ok(())
    }

    /// One step with the gradients in `grads`: one store holding each parameter's whole gradient
    /// (the sum over every stage that reads it). A parameter without a gradient is left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let c = &self.cfg;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let (lr, eps, wd) = (
            (c.lr * self.lr_scale) as f32,
            c.eps as f32,
            c.weight_decay as f32,
        );
        // Each gradient read off the tensor once; clipping scales them all by one factor, from
        // their global norm.
        let mut gradients: Vec<Option<Vec<f32>>> = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            gradients.push(match grads.get(s.var.as_tensor()) {
                Some(g) => Some(g.flatten_all()?.to_vec1::<f32>()?),
                None => None,
            });
        }
        let clip = match self.clip_norm {
            Some(max) => {
                let sq: f64 = gradients
                    .iter()
                    .flatten()
                    .flat_map(|g| g.iter().map(|&v| f64::from(v) * f64::from(v)))
                    .sum();
                let norm = sq.sqrt();
                if norm > max { (max / norm) as f32 } else { 1.0 }
            }
            None => 1.0,
        };
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        for (s, g) in self.slots.iter_mut().zip(gradients) {
            let Some(mut g) = g else {
                continue;
            };
            if clip < 1.0 {
                g.iter_mut().for_each(|v| *v *= clip);
            }
            let decoupled = c.kind == DenseOptimizerKind::Adamw;
            let wd = if s.decay { wd } else { 0.0 };
            for (((w, m), v), &g) in s.value.iter_mut().zip(&mut s.m).zip(&mut s.v).zip(&g) {
                let g = if decoupled { g } else { g + wd * *w };
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let step = lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
                let decay = if decoupled { lr * wd * *w } else { 0.0 };
                *w -= step + decay;
            }
            let t = Tensor::from_slice(&s.value, s.var.shape(), s.var.device())?;
            s.var.set(&t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// AdamW, lr 0.1, weight decay 0.5.
    fn adamw() -> OptimizerSpec {
        OptimizerSpec {
            kind: DenseOptimizerKind::Adamw,
            lr: 0.1,
            weight_decay: 0.5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    #[test]
    fn first_steps_by_hand() {
        let dev = Device::Cpu;
        let cfg = adamw();
        let x = Var::from_slice(&[2.0f32], 1, &dev).unwrap();
        let mut opt = DenseOptimizer::new(vec![x.clone()], &cfg).unwrap();
        // loss = 3x -> grad 3; first Adam step moves by lr * sign = 0.1; decay 0.1*0.5*2 = 0.1.
        let loss = (x.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        let v = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 1.8).abs() < 1e-5, "{v}");
    }

    #[test]
    fn parameters_without_decay_get_none() {
        let dev = Device::Cpu;
        let cfg = adamw();
        let x = Var::from_slice(&[2.0f32], 1, &dev).unwrap();
        let mut opt = DenseOptimizer::new(vec![x.clone()], &cfg)
            .unwrap()
            .without_decay(std::slice::from_ref(&x));
        // Only Adam's step of lr · sign(grad) = 0.1; no decay.
        let loss = (x.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        let v = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 1.9).abs() < 1e-5, "{v}");
    }

    /// Clipping scales every gradient by max / ‖g‖ (here ‖(3, 4)‖ = 5 over two parameters, so
    /// 0.5 / 5); a schedule's factor scales the learning rate: with Adam's first step of lr ·
    /// sign(g), x moves by 0.1 · 0.5 whatever the clipping.
    #[test]
    fn clipping_and_schedule_by_hand() {
        let dev = Device::Cpu;
        let cfg = OptimizerSpec {
            kind: DenseOptimizerKind::Adam,
            lr: 0.1,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let x = Var::from_slice(&[1.0f32], 1, &dev).unwrap();
        let y = Var::from_slice(&[1.0f32], 1, &dev).unwrap();
        let mut opt = DenseOptimizer::new(vec![x.clone(), y.clone()], &cfg)
            .unwrap()
            .with_clipping(Some(0.5));
        opt.set_lr_scale(0.5);
        let loss = ((x.as_tensor() * 3.0).unwrap() + (y.as_tensor() * 4.0).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
        let xv = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((xv - 0.95).abs() < 1e-5, "{xv}");
        // Adam's first moment saw the clipped gradient 3 · 0.1 = 0.3: m = 0.1 · 0.3.
        let (_, m) = opt.moments();
        assert!((m[0].0[0] - 0.03).abs() < 1e-6, "{}", m[0].0[0]);
    }
}
