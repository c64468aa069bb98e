//! Chart axes: a linear axis over the values with round ticks, and numbers written as tick
//! labels (as many decimals as the step needs, no float noise).

/// A linear axis over [lo, hi] with "nice" ticks.
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) step: f64,
}

impl Axis {
    /// An axis covering `values` (and `include`), widened a little when flat.
    pub(super) fn covering(values: impl Iterator<Item = f64>, include: &[f64]) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values
            .chain(include.iter().copied())
            .filter(|v| v.is_finite())
        {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo.abs() > 1e-12 {
                lo.abs() * 0.05
            } else {
                0.5
            };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let step = nice_step((hi - lo) / 5.0);
        let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
        Axis {
            lo,
            hi,
            ticks,
            step,
        }
    }

    /// An axis over whole numbers `lo..=hi`, a tick on each.
    pub(super) fn whole(lo: f64, hi: f64) -> Axis {
        Axis {
            lo,
            hi,
            ticks: (0..=(hi - lo) as usize).map(|i| lo + i as f64).collect(),
            step: 1.0,
        }
    }

    pub(super) fn at(&self, v: f64, from: f64, to: f64) -> f64 {
        from + (v - self.lo) / (self.hi - self.lo) * (to - from)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * p)
}

/// A tick label: as many decimals as the step between ticks needs, so neighbours differ.
pub(super) fn tick(v: f64, step: f64) -> String {
    if step.is_nan() || step <= 0.0 || step >= 1e5 {
        return short(v);
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 12.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".into()
    } else {
        s
    }
}

/// A number as a label: short, without float noise.
pub fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    };
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_and_short_numbers() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.01), 0.01);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(0.9), "0.9");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(0.00012), "1.2e-4");
        assert_eq!(short(0.123456), "0.1235");
    }

    #[test]
    fn tick_labels_carry_the_decimals_their_step_needs() {
        let a = Axis::covering([0.81201, 0.81219].into_iter(), &[]);
        let labels: Vec<String> = a.ticks.iter().map(|&t| tick(t, a.step)).collect();
        for w in labels.windows(2) {
            assert_ne!(w[0], w[1], "{labels:?}");
        }
        assert_eq!(tick(0.8125, 0.0005), "0.8125");
        assert_eq!(tick(0.5, 0.1), "0.5");
        assert_eq!(tick(20.0, 5.0), "20");
        assert_eq!(tick(-0.0, 0.1), "0");
    }

    #[test]
    fn axes_cover_their_values_with_round_ticks() {
        let a = Axis::covering([0.62, 0.91].into_iter(), &[]);
        assert!(a.lo <= 0.62 && a.hi >= 0.91);
        assert_eq!(a.ticks.first().copied(), Some(a.lo));
        assert!((a.ticks.last().unwrap() - a.hi).abs() < 1e-9);
        // Flat data still gets a span.
        let f = Axis::covering([3.0, 3.0].into_iter(), &[]);
        assert!(f.lo < 3.0 && f.hi > 3.0);
        // Whole numbers: a tick each.
        let w = Axis::whole(1.0, 3.0);
        assert_eq!((w.ticks, w.step), (vec![1.0, 2.0, 3.0], 1.0));
        // Pixels: the ends of the axis map to the ends of the range.
        assert!((a.at(a.lo, 10.0, 110.0) - 10.0).abs() < 1e-9);
        assert!((a.at(a.hi, 10.0, 110.0) - 110.0).abs() < 1e-9);
    }
}
