//! GradNorm (Chen et al., ICML 2018): per-stage loss weights that the trainer moves after every
//! step, so that each stage's gradient norm at the input the stages share grows with how far
//! behind its loss has fallen.
//!
//! With stage losses L_k (each already times its fixed `loss_weight`), weights w_k and
//! n_k = ‖∂L_k/∂X‖ over the batch's shared input rows X (the embeddings every stage reads):
//! G_k = w_k n_k, Ḡ = mean G, L̃_k = L_k / L_k(0) (L_k(0) the first step's loss),
//! r_k = L̃_k / mean L̃, and the weights descend L_grad = Σ_k |G_k − Ḡ r_k^α| with the
//! targets Ḡ r_k^α held constant (the paper's rule), by their own Adam. After each update the
//! weights are floored at a small positive value and rescaled to sum to the stage count.
//!
//! The paper takes W as the last shared layer's weights; the stages here share the input rows
//! (every stage reads the same embeddings, through a bottom or not), so X stands in for W, as
//! the paper allows for cost. Measuring each n_k takes a backward pass per stage.

use serde::{Deserialize, Serialize};

use crate::config::GradNormSpec;

/// The smallest weight a stage keeps before the weights are rescaled.
const FLOOR: f64 = 1e-3;

/// The weights and their optimizer state (saved whole in a training checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradNorm {
    alpha: f64,
    lr: f64,
    weights: Vec<f64>,
    /// Each stage's loss at the first step.
    initial: Option<Vec<f64>>,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl GradNorm {
    /// Every weight starts at 1.
    pub fn new(stages: usize, spec: &GradNormSpec) -> Self {
        GradNorm {
            alpha: spec.alpha,
            lr: spec.lr,
            weights: vec![1.0; stages],
            initial: None,
            m: vec![0.0; stages],
            v: vec![0.0; stages],
            t: 0,
        }
    }

    /// The weights the next step uses.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// After a step that used `weights()`: move the weights given that step's stage losses and
    /// each stage's unweighted gradient norm n_k. Non-finite inputs leave the weights as they
    /// are (the trainer's divergence check reports them).
    pub fn update(&mut self, losses: &[f64], norms: &[f64]) {
        if losses.iter().chain(norms).any(|x| !x.is_finite()) {
            return;
        }
        let initial = self.initial.get_or_insert_with(|| losses.to_vec());
        let targets = targets(&self.weights, norms, losses, initial, self.alpha);
        let (_, grad) = balance_loss(&self.weights, norms, &targets);
        self.t += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        for (k, g) in grad.iter().enumerate() {
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * g;
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * g * g;
            let m = self.m[k] / (1.0 - b1.powi(self.t));
            let v = self.v[k] / (1.0 - b2.powi(self.t));
            self.weights[k] = (self.weights[k] - self.lr * m / (v.sqrt() + eps)).max(FLOOR);
        }
        let scale = self.weights.len() as f64 / self.weights.iter().sum::<f64>();
        for w in &mut self.weights {
            *w *= scale;
        }
    }
}

/// The targets Ḡ r_k^α of every stage's weighted gradient norm.
pub fn targets(
    weights: &[f64],
    norms: &[f64],
    losses: &[f64],
    initial: &[f64],
    alpha: f64,
) -> Vec<f64> {
    let k = weights.len() as f64;
    let mean_g = weights.iter().zip(norms).map(|(w, n)| w * n).sum::<f64>() / k;
    let rate: Vec<f64> = losses
        .iter()
        .zip(initial)
        .map(|(l, l0)| if *l0 > 0.0 { l / l0 } else { 1.0 })
        .collect();
    let mean_rate = rate.iter().sum::<f64>() / k;
    rate.iter()
        .map(|r| match mean_rate > 0.0 {
            true => mean_g * (r / mean_rate).powf(alpha),
            false => mean_g,
        })
        .collect()
}

/// L_grad = Σ_k |w_k n_k − target_k| and its gradient with respect to the weights, the targets
/// held constant: sign(w_k n_k − target_k) · n_k (0 at the kink).
pub fn balance_loss(weights: &[f64], norms: &[f64], targets: &[f64]) -> (f64, Vec<f64>) {
    let mut value = 0.0;
    let grad = weights
        .iter()
        .zip(norms)
        .zip(targets)
        .map(|((w, n), t)| {
            let d = w * n - t;
            value += d.abs();
            if d == 0.0 { 0.0 } else { d.signum() * n }
        })
        .collect();
    (value, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of L_grad with respect to the weights by central finite differences in f64,
    /// away from the kinks.
    #[test]
    fn balance_gradient_matches_finite_differences() {
        let w = [0.7, 1.1, 1.2];
        let n = [0.3, 2.0, 0.05];
        let t = targets(&w, &n, &[0.5, 0.2, 0.9], &[0.6, 0.7, 1.0], 1.5);
        let (_, grad) = balance_loss(&w, &n, &t);
        let h = 1e-6;
        for k in 0..3 {
            let (mut up, mut down) = (w, w);
            up[k] += h;
            down[k] -= h;
            let fd = (balance_loss(&up, &n, &t).0 - balance_loss(&down, &n, &t).0) / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-7,
                "stage {k}: {fd} vs {}",
                grad[k]
            );
        }
    }

    /// Targets by hand: w = (1, 1), n = (2, 4): Ḡ = 3. Loss ratios 0.5 and 1.0, mean 0.75,
    /// r = (2/3, 4/3); with α = 1 the targets are (2, 4), with α = 0 both are Ḡ = 3.
    #[test]
    fn targets_by_hand() {
        let t = targets(&[1.0, 1.0], &[2.0, 4.0], &[0.5, 1.0], &[1.0, 1.0], 1.0);
        assert!(
            (t[0] - 2.0).abs() < 1e-12 && (t[1] - 4.0).abs() < 1e-12,
            "{t:?}"
        );
        let t = targets(&[1.0, 1.0], &[2.0, 4.0], &[0.5, 1.0], &[1.0, 1.0], 0.0);
        assert_eq!(t, vec![3.0, 3.0]);
        // At the targets L_grad is 0.
        assert_eq!(balance_loss(&[1.0, 1.0], &[2.0, 4.0], &[2.0, 4.0]).0, 0.0);
    }

    /// Equal norms, but stage 1's loss has fallen less than stage 0's: its weight rises, stage
    /// 0's falls, and the weights keep summing to the stage count. The first update fixes the
    /// initial losses (all rates 1): with equal norms nothing moves.
    #[test]
    fn the_slower_stage_gains_weight() {
        let spec = GradNormSpec {
            alpha: 1.5,
            lr: 0.025,
        };
        let mut g = GradNorm::new(2, &spec);
        g.update(&[1.0, 1.0], &[1.0, 1.0]);
        assert_eq!(g.weights(), &[1.0, 1.0]);
        for _ in 0..10 {
            g.update(&[0.2, 0.9], &[1.0, 1.0]);
        }
        let w = g.weights();
        assert!(w[1] > 1.1 && w[0] < 0.9, "{w:?}");
        assert!((w[0] + w[1] - 2.0).abs() < 1e-12);
        // A non-finite norm leaves the weights as they were.
        let before = g.weights().to_vec();
        g.update(&[0.2, 0.9], &[f64::NAN, 1.0]);
        assert_eq!(g.weights(), before.as_slice());
    }
}
