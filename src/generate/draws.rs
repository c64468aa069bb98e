//! Draws from 64-bit words of the generator's stream: uniform, standard normal, and the
//! normal CDF that maps a numeric field's value to its bin.

/// Uniform in [0, 1) from the top 53 bits.
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal from two words (Box-Muller, cosine branch).
pub fn normal(a: u64, b: u64) -> f64 {
    let u1 = 1.0 - unit(a);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * unit(b)).cos()
}

/// Standard normal CDF (erfc from Numerical Recipes, relative error < 1.2e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erfc = if x >= 0.0 { y } else { 2.0 - y };
    0.5 * erfc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_reference_values() {
        // scipy.stats.norm.cdf: 0 -> 0.5, 1 -> 0.8413447460685429, -2 -> 0.022750131948179195
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-7);
        assert!((normal_cdf(-2.0) - 0.022_750_131_948_179_195).abs() < 1e-7);
    }
}
