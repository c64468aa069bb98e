//! Helpers shared by unit tests (compiled in tests only).

use candle_core::Tensor;

/// A tensor's values as f64, in row-major order.
pub fn to_f64(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("an f32 tensor")
        .iter()
        .map(|&v| v as f64)
        .collect()
}
