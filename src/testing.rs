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

use candle_core::Var;
use candle_core::backprop::GradStore;

/// Checks a block's loss against an independent f64 `reference` of it, a function of every
/// parameter's values (in `vars` order) and of the input `x`: the value, then the gradient of
/// each parameter element and each input element by central differences.
pub fn check_against_reference(
    vars: &[(String, Var)],
    grads: &GradStore,
    loss: &Tensor,
    x: &Var,
    reference: impl Fn(&[Vec<f64>], &[f64]) -> f64,
) {
    let mut p: Vec<Vec<f64>> = vars.iter().map(|(_, v)| to_f64(v.as_tensor())).collect();
    let mut x64 = to_f64(x.as_tensor());
    let value = loss.to_scalar::<f32>().expect("a scalar loss") as f64;
    let want = reference(&p, &x64);
    assert!(
        (value - want).abs() < 1e-4 * (1.0 + want.abs()),
        "{value} vs {want}"
    );
    let h = 1e-6;
    let check = |what: &str, fd: f64, g: f64| {
        assert!(
            (fd - g).abs() < 1e-3 * (1.0 + fd.abs()),
            "{what}: fd {fd} vs {g}"
        );
    };
    for (vi, (key, v)) in vars.iter().enumerate() {
        let g = to_f64(grads.get(v.as_tensor()).expect("a gradient"));
        for j in 0..p[vi].len() {
            let keep = p[vi][j];
            p[vi][j] = keep + h;
            let up = reference(&p, &x64);
            p[vi][j] = keep - h;
            let down = reference(&p, &x64);
            p[vi][j] = keep;
            check(&format!("{key}[{j}]"), (up - down) / (2.0 * h), g[j]);
        }
    }
    let gx = to_f64(grads.get(x.as_tensor()).expect("a gradient of the input"));
    for j in 0..x64.len() {
        let keep = x64[j];
        x64[j] = keep + h;
        let up = reference(&p, &x64);
        x64[j] = keep - h;
        let down = reference(&p, &x64);
        x64[j] = keep;
        check(&format!("x[{j}]"), (up - down) / (2.0 * h), gx[j]);
    }
}
