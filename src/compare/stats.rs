//! Statistics over seeds: mean, standard deviation, a 95% interval from Student's t, and the
//! paired t-test between two pipelines run under the same seeds.
//!
//! Student's t distribution comes from the regularised incomplete beta function: for ν degrees
//! of freedom, P(|T| > t) = I_{ν/(ν+t²)}(ν/2, 1/2). The function is evaluated by its continued
//! fraction (modified Lentz), and quantiles by bisection on that tail.

use serde::{Deserialize, Serialize};

/// The fewest values with a spread (a sample standard deviation needs two).
pub const MIN_FOR_SPREAD: usize = 2;

/// The fewest values (or pairs) given a 95% interval or a t-test. With two, Student's t has one
/// degree of freedom and t(0.975, 1) = 12.71: the interval reaches 9 standard deviations to
/// each side of the mean, wider than an AUC's range for any real spread ([-2.43, 3.63] was
/// printed), and the test has almost no power. Three is the least that says anything.
pub const MIN_FOR_INTERVAL: usize = 3;

/// Summary of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` under `MIN_FOR_SPREAD` values.
    pub sd: Option<f64>,
    /// The 95% interval of the mean, mean ± t(0.975, n − 1) · sd / √n; `None` under
    /// `MIN_FOR_INTERVAL` values.
    pub ci95: Option<(f64, f64)>,
}

pub fn summary(x: &[f64]) -> Option<Summary> {
    let n = x.len();
    if n == 0 {
        return None;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let sd = (n >= MIN_FOR_SPREAD)
        .then(|| (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    let ci95 = sd.filter(|_| n >= MIN_FOR_INTERVAL).map(|sd| {
        let h = t_quantile_two_sided(0.05, (n - 1) as f64) * sd / (n as f64).sqrt();
        (mean - h, mean + h)
    });
    Some(Summary { n, mean, sd, ci95 })
}

/// A paired t-test of `x − base` over matching seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub n: usize,
    /// Mean of the differences.
    pub diff: f64,
    /// The t statistic and its two-sided p-value; `null` when the differences do not vary
    /// across seeds (the test is undefined: no spread is not evidence either way).
    pub t: Option<f64>,
    pub p: Option<f64>,
}

/// The paired t-test of `x` against `base` (same seeds, same order); `None` under
/// `MIN_FOR_INTERVAL` pairs.
pub fn paired_t(x: &[f64], base: &[f64]) -> Option<Paired> {
    let d: Vec<f64> = x.iter().zip(base).map(|(a, b)| a - b).collect();
    let n = d.len();
    if n < MIN_FOR_INTERVAL {
        return None;
    }
    let s = summary(&d)?;
    let sd = s.sd?;
    // No spread, or spread at rounding level: differences equal in every seed.
    if sd == 0.0 || sd <= 1e-12 * s.mean.abs() {
        return Some(Paired {
            n,
            diff: s.mean,
            t: None,
            p: None,
        });
    }
    let t = s.mean / (sd / (n as f64).sqrt());
    Some(Paired {
        n,
        diff: s.mean,
        t: Some(t),
        p: Some(t_two_sided_p(t, (n - 1) as f64)),
    })
}

/// P(|T| > |t|) for Student's t with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The t with P(|T| > t) = `alpha`.
pub fn t_quantile_two_sided(alpha: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while t_two_sided_p(hi, df) > alpha {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_p(mid, df) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised incomplete beta function I_x(a, b).
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); else use symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let floor = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / floor(1.0 - qab * x / qap);
    let mut h = d;
    // One Lentz step with partial numerator `aa`: the factor it multiplies `h` by.
    let mut step = |aa: f64| {
        d = 1.0 / floor(1.0 + aa * d);
        c = floor(1.0 + aa / c);
        d * c
    };
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    #[test]
    fn ln_gamma_by_hand() {
        close(ln_gamma(1.0), 0.0, 1e-13);
        close(ln_gamma(5.0), 24f64.ln(), 1e-12);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13);
        close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-12);
    }

    /// Reference values from scipy 1.17.1 (`pip install scipy`, 2026-11-30):
    /// `scipy.stats.t.ppf(0.975, df)` and `2 * scipy.stats.t.sf(t, df)`.
    #[test]
    fn student_t_against_scipy() {
        close(
            t_quantile_two_sided(0.05, 1.0),
            12.706_204_736_174_694,
            1e-9,
        );
        close(
            t_quantile_two_sided(0.05, 4.0),
            2.776_445_105_197_793_4,
            1e-10,
        );
        close(
            t_quantile_two_sided(0.05, 9.0),
            2.262_157_162_798_205,
            1e-10,
        );
        close(
            t_quantile_two_sided(0.05, 1000.0),
            1.962_339_080_826_408_3,
            1e-9,
        );
        close(t_two_sided_p(2.0, 4.0), 0.116_116_523_516_815_56, 1e-12);
        close(t_two_sided_p(0.0, 3.0), 1.0, 1e-15);
        close(t_two_sided_p(-3.5, 10.0), 0.005_726_505_429_885_21, 1e-12);
        // ν = 1 is the Cauchy distribution: P(|T| > 1) = 1/2 exactly.
        close(t_two_sided_p(1.0, 1.0), 0.5, 1e-14);
    }

    #[test]
    fn summaries_and_paired_tests_by_hand() {
        let s = summary(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        close(s.mean, 3.0, 1e-15);
        close(s.sd.unwrap(), 2.5f64.sqrt(), 1e-15);
        let (lo, hi) = s.ci95.unwrap();
        // 3 ± 2.7764451 · √2.5 / √5.
        close(hi - 3.0, 2.776_445_105_197_8 * (0.5f64).sqrt(), 1e-9);
        close(3.0 - lo, hi - 3.0, 1e-12);
        let one = summary(&[0.7]).unwrap();
        assert_eq!((one.sd, one.ci95), (None, None));
        // Two values: a spread, no interval (t(0.975, 1) = 12.71 makes it meaningless).
        let two = summary(&[0.7, 0.8]).unwrap();
        close(two.sd.unwrap(), 0.005f64.sqrt(), 1e-15);
        assert_eq!(two.ci95, None);
        assert_eq!(summary(&[]), None);
        // d = [0.1, 0.3, 0.2, 0.4]: mean 0.25, sd = √(0.05 / 3), t = 0.25 / (sd / 2) =
        // 3.8729833, p = 2·t.sf(t, 3) = 0.0304663 (scipy).
        let p = paired_t(&[1.1, 2.3, 3.2, 4.4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        close(p.diff, 0.25, 1e-12);
        close(p.t.unwrap(), 3.872_983_346_207_417, 1e-9);
        close(p.p.unwrap(), 0.030_466_291_662_170_977, 1e-9);
        // No spread: no test (a constant difference is not evidence of anything).
        let same = paired_t(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((same.diff, same.t, same.p), (0.0, None, None));
        let shifted = paired_t(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((shifted.diff, shifted.p), (1.0, None));
        assert_eq!(paired_t(&[1.0], &[0.0]), None);
        assert_eq!(
            paired_t(&[1.0, 2.5], &[0.0, 2.0]),
            None,
            "two pairs: no test"
        );
    }
}
