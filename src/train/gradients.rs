//! What one step's backward pass gives: the dense gradients, the input rows' gradients, and the
//! losses; the step and the reduction over ranks both read and write it.

use candle_core::backprop::GradStore;

/// What one step's backward pass gives.
pub struct Gradients {
    /// Every dense parameter's whole gradient.
    pub dense: GradStore,
    /// The loss's gradient with respect to each store's input rows (rows x input width,
    /// row-major), by store.
    pub input: Vec<Vec<f32>>,
    /// The batch loss.
    pub loss: f64,
    /// Each stage's loss, weighted (`Loss::stages`).
    pub stage_losses: Vec<f64>,
    /// With GradNorm's weights: each stage's unweighted gradient norm ‖∂L_k/∂X‖ at the input
    /// rows.
    pub input_norms: Option<Vec<f64>>,
}
