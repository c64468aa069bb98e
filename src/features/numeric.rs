//! Numeric encoders: the transform, its statistics from the training split, and the missing-value policy.

use serde::{Deserialize, Serialize};

use crate::config::{MissingPolicy, NumericSpec, NumericTransform};

use super::Routing;
use crate::error::{Error, Result};
use crate::source::Column;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumericEncoder {
    pub name: String,
    pub column: String,
    pub transform: NumericTransform,
    pub missing: MissingPolicy,
    /// Output = (pre(x) - shift) / scale, where pre is ln1p for `log1p` and the identity otherwise.
    pub shift: f64,
    pub scale: f64,
    /// Value (after `pre`) that a missing entry takes, unless the policy is `error`.
    pub fill: f64,
}

fn pre(transform: NumericTransform, x: f64) -> f64 {
    match transform {
        NumericTransform::Log1p => x.signum() * x.abs().ln_1p(),
        _ => x,
    }
}

impl NumericEncoder {
    /// Fit the transform on part 0 of `routing`.
    pub fn fit(spec: &NumericSpec, col: &Column<'_>, routing: &Routing) -> Result<Self> {
        let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        col.visit_f64(|i, v| {
            if routing.part(i) != Some(0) {
                return Ok(());
            }
            match v {
                Some(x) if x.is_finite() => {
                    let t = pre(spec.transform, x);
                    n += 1;
                    let d = t - mean;
                    mean += d / n as f64;
                    m2 += d * (t - mean);
                    lo = lo.min(t);
                    hi = hi.max(t);
                    Ok(())
                }
                _ if spec.missing == MissingPolicy::Error => Err(missing_error(col, i, v)),
                _ => Ok(()),
            }
        })?;
        if n == 0 {
            return Err(col.error(None, "no usable value in the training split"));
        }
        let std = (m2 / n as f64).sqrt();
        if !(std.is_finite() && (hi - lo).is_finite()) {
            return Err(col
                .error(None, "values too large to standardise in 64-bit floats")
                .with_hint("use `transform: log1p`, or rescale the column"));
        }
        let (shift, scale) = match spec.transform {
            NumericTransform::Standardize | NumericTransform::Log1p => {
                (mean, if std > 0.0 { std } else { 1.0 })
            }
            NumericTransform::MinMax => (lo, if hi > lo { hi - lo } else { 1.0 }),
            NumericTransform::None => (0.0, 1.0),
        };
        let fill = match spec.missing {
            MissingPolicy::Zero => pre(spec.transform, 0.0),
            _ => mean,
        };
        Ok(NumericEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            transform: spec.transform,
            missing: spec.missing,
            shift,
            scale,
            fill,
        })
    }

    /// Encode one value; `None` (or NaN/inf) gets the fill, or an error under `missing: error`.
    pub fn encode(&self, v: Option<f64>) -> Option<f32> {
        let t = match v {
            Some(x) if x.is_finite() => pre(self.transform, x),
            _ if self.missing == MissingPolicy::Error => return None,
            _ => self.fill,
        };
        let v = ((t - self.shift) / self.scale) as f32;
        v.is_finite().then_some(v)
    }

    /// Encode every part of `routing`.
    pub fn encode_column(&self, col: &Column<'_>, routing: &Routing) -> Result<Vec<Vec<f32>>> {
        let mut out = routing.outputs();
        col.visit_f64(|i, v| {
            if let Some(p) = routing.part(i) {
                out[p].push(self.encode(v).ok_or_else(|| missing_error(col, i, v))?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

fn missing_error(col: &Column<'_>, i: usize, v: Option<f64>) -> Error {
    let what = match v {
        None => "missing value".to_string(),
        Some(x) if x.is_finite() => format!("value {x} does not fit a 32-bit float once encoded"),
        Some(x) => format!("non-finite value {x}"),
    };
    col.error(Some(i), what)
        .with_hint("set the feature's `missing` to `mean` or `zero` to fill such values")
}
