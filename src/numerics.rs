//! Scalar log-space helpers shared by the loss ops and the metrics (all in f64).

/// ln(1 + e^x) without overflow or cancellation.
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// ln σ(x) = -softplus(-x).
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// σ(x), computed on the side that does not overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 - e^x) for x <= 0 (Mächler's split between expm1 and log1p). -inf at x = 0.
pub fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

/// Largest log-probability a cumulative prediction may take in a loss: ln(1 - 1e-7).
/// Keeps ln(1 - p) and its gradient finite when p rounds to 1.
pub const MAX_LOG_PROB: f64 = -1.000_000_05e-7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_naive_formulas_where_those_are_accurate() {
        for &x in &[-5.0, -1.0, -0.1, 0.0, 0.3, 2.0, 7.0] {
            let naive = (1.0 + f64::exp(x)).ln();
            assert!((softplus(x) - naive).abs() < 1e-12, "softplus {x}");
            let s = 1.0 / (1.0 + f64::exp(-x));
            assert!((sigmoid(x) - s).abs() < 1e-15);
            assert!((log_sigmoid(x) - s.ln()).abs() < 1e-12);
        }
        for &x in &[-20.0, -3.0, -0.7, -0.5, -1e-3] {
            let naive = (1.0 - f64::exp(x)).ln();
            assert!(
                (log1mexp(x) - naive).abs() < 1e-9 * naive.abs().max(1.0),
                "{x}"
            );
        }
    }

    #[test]
    fn extreme_arguments_stay_finite_and_accurate() {
        // ln σ(-50) = -50 - ln(1 + e^-50) ≈ -50 (exactly -50 to double precision).
        assert_eq!(log_sigmoid(-50.0), -50.0);
        // ln σ(50) = -ln(1 + e^-50) ≈ -e^-50 = -1.9287498479639178e-22.
        assert!((log_sigmoid(50.0) + 1.928_749_847_963_917_8e-22).abs() < 1e-35);
        // ln(1 - e^-1e-10) ≈ ln(1e-10) = -23.025850929940457 (series: ln(x) - x/2 for tiny x).
        assert!((log1mexp(-1e-10) - (-23.025_850_929_990_46)).abs() < 1e-6);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }
}
