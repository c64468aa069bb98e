//! Numeric encoders: the transform, its statistics from the training split, the missing-value
//! policy, and quantile bucket boundaries for numerics read as embeddings.

use serde::{Deserialize, Serialize};

use crate::config::{MissingPolicy, NumericSpec, NumericTransform};

use super::{FIRST_TOKEN_ID, NULL_ID, Routing};
use crate::error::{Error, Result};
use crate::source::Column;
use crate::spill::Sorter;

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
    /// `quantile_buckets`: interval boundaries, ascending and distinct. Value x falls in bucket
    /// #{b : b <= x}, whose id is `FIRST_TOKEN_ID` + bucket; a missing value's id is `NULL_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundaries: Option<Vec<f64>>,
}

/// The largest magnitude `transform: none` accepts: a network's first layer, initialised for
/// inputs of order one, saturates or blows up far beyond it.
const RAW_LIMIT: f64 = 1e4;

/// The median of `values` (the mean of the middle two for an even count); `values` is
/// reordered. Never empty here: fitting needs one usable value.
fn median_of(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return upper;
    }
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// The median of values gathered by a sorter: selected in memory when none was spilled, else
/// read off the merged runs at the middle rank(s). The same value either way.
fn median(values: Sorter<f64>) -> Result<f64> {
    match values.held_only() {
        Ok(mut v) => Ok(median_of(&mut v)),
        Err(sorted) => {
            let n = sorted.len();
            let (lower_at, upper_at) = (n.saturating_sub(1) / 2, n / 2);
            let (mut lower, mut upper, mut i) = (0.0, 0.0, 0);
            sorted.for_each(|v| {
                if i == lower_at {
                    lower = v;
                }
                if i == upper_at {
                    upper = v;
                }
                i += 1;
            })?;
            Ok(match n % 2 {
                1 => upper,
                _ => (lower + upper) / 2.0,
            })
        }
    }
}

fn pre(transform: NumericTransform, x: f64) -> f64 {
    match transform {
        NumericTransform::Log1p => x.signum() * x.abs().ln_1p(),
        _ => x,
    }
}

/// A numeric feature's fit gathered a value at a time, over a whole column or over a file's
/// row ranges in turn (streamed encoding): the same values in the same order give the same
/// encoder either way.
pub struct NumericFit<'s> {
    spec: &'s NumericSpec,
    /// The file the column is read from, for messages about the whole column.
    file: std::path::PathBuf,
    n: u64,
    mean: f64,
    m2: f64,
    lo: f64,
    hi: f64,
    /// The value farthest from zero so far, and, under `transform: none` once it is out of
    /// range, the error naming its row.
    far: f64,
    far_error: Option<Error>,
    /// The training values themselves, for the quantiles of a bucketed feature.
    seen: Vec<f64>,
    /// The values after `pre`, for the median fill: past the fit's limit, sorted runs spilled
    /// to temporary files.
    pres: Sorter<f64>,
}

impl<'s> NumericFit<'s> {
    /// A fit holding at most `held` values for the median in memory (spilling the rest).
    pub fn new(spec: &'s NumericSpec, file: &std::path::Path, held: usize) -> Self {
        NumericFit {
            spec,
            file: file.to_path_buf(),
            n: 0,
            mean: 0.0,
            m2: 0.0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            far: 0.0,
            far_error: None,
            seen: Vec::new(),
            pres: Sorter::new(f64::total_cmp, held),
        }
    }

    /// Add the training values of `col` (the rows of part 0 of `routing`).
    pub fn add(&mut self, col: &Column<'_>, routing: &Routing) -> Result<()> {
        let spec = self.spec;
        col.visit_f64(|i, v| {
            if routing.part(i) != Some(0) {
                return Ok(());
            }
            match v {
                Some(x) if x.is_finite() => {
                    let t = pre(spec.transform, x);
                    self.n += 1;
                    let d = t - self.mean;
                    self.mean += d / self.n as f64;
                    self.m2 += d * (t - self.mean);
                    self.lo = self.lo.min(t);
                    self.hi = self.hi.max(t);
                    if t.abs() > self.far {
                        self.far = t.abs();
                        if spec.transform == NumericTransform::None && self.far > RAW_LIMIT {
                            self.far_error = Some(col.error(
                                Some(i),
                                format!(
                                    "`transform: none` gives the network the raw value, and {:e} is far outside what it can use (|x| up to {RAW_LIMIT:e}): its loss would blow up or its units saturate",
                                    self.far
                                ),
                            ));
                        }
                    }
                    if spec.buckets.is_some() {
                        self.seen.push(x);
                    }
                    if spec.missing == MissingPolicy::Median {
                        self.pres.push(t)?;
                    }
                    Ok(())
                }
                _ if spec.missing == MissingPolicy::Error => Err(missing_error(col, i, v)),
                _ => Ok(()),
            }
        })
    }

    /// The encoder of the values added.
    pub fn finish(mut self) -> Result<NumericEncoder> {
        let spec = self.spec;
        let whole = |what: &str| Error::data_at(&self.file, &spec.column, None, what);
        if self.n == 0 {
            return Err(whole("no usable value in the training split"));
        }
        let (n, mean, lo, hi) = (self.n, self.mean, self.lo, self.hi);
        let std = (self.m2 / n as f64).sqrt();
        if !(std.is_finite() && (hi - lo).is_finite()) {
            return Err(whole("values too large to standardise in 64-bit floats")
                .with_hint("use `transform: log1p`, or rescale the column"));
        }
        let (shift, scale) = match spec.transform {
            NumericTransform::Standardize
            | NumericTransform::Log1p
            | NumericTransform::QuantileBuckets => (mean, if std > 0.0 { std } else { 1.0 }),
            NumericTransform::MinMax => (lo, if hi > lo { hi - lo } else { 1.0 }),
            NumericTransform::None => (0.0, 1.0),
        };
        if let Some(e) = self.far_error.take() {
            return Err(e.with_hint(
                "use `transform: standardize`, `log1p` or `quantile_buckets`, or rescale the column",
            ));
        }
        let fill = match spec.missing {
            MissingPolicy::Zero => pre(spec.transform, 0.0),
            MissingPolicy::Median => median(self.pres)?,
            MissingPolicy::Mean | MissingPolicy::Error => mean,
        };
        Ok(NumericEncoder {
            name: spec.name.clone(),
            column: spec.column.clone(),
            transform: spec.transform,
            missing: spec.missing,
            shift,
            scale,
            fill,
            boundaries: spec
                .buckets
                .map(|b| quantile_boundaries(std::mem::take(&mut self.seen), b.count)),
        })
    }
}

impl NumericEncoder {
    /// Fit the transform on part 0 of `routing`.
    pub fn fit(spec: &NumericSpec, col: &Column<'_>, routing: &Routing) -> Result<Self> {
        // The column is in memory: so are its values.
        let mut fit = NumericFit::new(spec, col.file(), usize::MAX);
        fit.add(col, routing)?;
        fit.finish()
    }

    /// Rows of the feature's bucket table (padding, out-of-vocabulary and missing included).
    pub fn bucket_rows(&self) -> Option<usize> {
        self.boundaries
            .as_ref()
            .map(|b| FIRST_TOKEN_ID as usize + b.len() + 1)
    }

    /// The bucket id of one value (`None` for a missing value under `missing: error`).
    pub fn bucket(&self, boundaries: &[f64], v: Option<f64>) -> Option<u32> {
        match v {
            Some(x) if x.is_finite() => {
                Some(FIRST_TOKEN_ID + boundaries.partition_point(|&b| b <= x) as u32)
            }
            _ if self.missing == MissingPolicy::Error => None,
            _ => Some(NULL_ID),
        }
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

    /// Encode every part of `routing`: the bucket ids of a bucketed feature, and the values
    /// when `values` is set.
    pub fn encode_column(
        &self,
        col: &Column<'_>,
        routing: &Routing,
        values: bool,
    ) -> Result<NumericColumns> {
        let mut out = NumericColumns {
            ids: self.boundaries.as_ref().map(|_| routing.outputs()),
            values: values.then(|| routing.outputs()),
        };
        col.visit_f64(|i, v| {
            let Some(p) = routing.part(i) else {
                return Ok(());
            };
            if let (Some(ids), Some(b)) = (&mut out.ids, &self.boundaries) {
                ids[p].push(self.bucket(b, v).ok_or_else(|| missing_error(col, i, v))?);
            }
            if let Some(values) = &mut out.values {
                values[p].push(self.encode(v).ok_or_else(|| missing_error(col, i, v))?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// One numeric column encoded for every part: bucket ids and values, where asked.
pub struct NumericColumns {
    pub ids: Option<Vec<Vec<u32>>>,
    pub values: Option<Vec<Vec<f32>>>,
}

/// Boundaries cutting `values` into `count` intervals of (about) equal size. A value that holds
/// more than one interval's share of the values, such as the zeros of a column mostly zero, is
/// a mass point: it gets an interval of its own (boundaries at it and at the next larger value).
/// The share is taken again over the values left, with the intervals left, until no value holds
/// more (adult's capital gain: the zeros first, then 15024, a tenth of the non-zero values).
/// The other values are cut into the intervals left by their own quantiles: their sorted values
/// at positions ⌊i·m/r⌋ for i = 1..r. Boundaries are kept when they exceed the smallest value,
/// once each. Without mass points exactly ⌊i·n/count⌋ distinct values lie below boundary i;
/// with them there may be a few more intervals than `count`.
pub fn quantile_boundaries(mut values: Vec<f64>, count: usize) -> Vec<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let Some(&lowest) = values.first() else {
        return Vec::new();
    };
    // Runs of equal values: (first index, length), in value order.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let run = values[i..].partition_point(|&v| v == values[i]);
        runs.push((i, run));
        i += run;
    }
    let mut cuts = Vec::with_capacity(count);
    let (mut left, mut rest) = (count, values.len());
    let mut mass = vec![false; runs.len()];
    loop {
        let found: Vec<usize> = (0..runs.len())
            .filter(|&r| !mass[r] && left > 1 && runs[r].1 * left > rest)
            .collect();
        if found.is_empty() {
            break;
        }
        for r in found {
            mass[r] = true;
            let (start, len) = runs[r];
            cuts.push(values[start]);
            if let Some(&next) = values.get(start + len) {
                cuts.push(next);
            }
            left = left.saturating_sub(1).max(1);
            rest -= len;
        }
    }
    let others: Vec<f64> = runs
        .iter()
        .zip(&mass)
        .filter(|&(_, &m)| !m)
        .flat_map(|(&(start, len), _)| values[start..start + len].iter().copied())
        .collect();
    let m = others.len();
    if m > 0 {
        cuts.extend((1..left).map(|q| others[(q * m / left).min(m - 1)]));
    }
    cuts.sort_unstable_by(f64::total_cmp);
    cuts.dedup();
    cuts.retain(|&b| b > lowest);
    cuts
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The median read off spilled runs equals the selection in memory, odd and even counts,
    /// ties included.
    #[test]
    fn spilled_median_equals_the_selection() {
        let mut r = crate::rng::Rng::stream(2, "median");
        for n in [1usize, 2, 3, 10, 101, 1000] {
            let values: Vec<f64> = (0..n).map(|_| (r.below(40) as f64 - 20.0) / 3.0).collect();
            let want = median_of(&mut values.clone());
            for held in [1, 7, usize::MAX] {
                let mut s = Sorter::new(f64::total_cmp, held);
                for &v in &values {
                    s.push(v).unwrap();
                }
                assert_eq!(s.spilled_runs() > 0, held < n, "{n} values, {held} held");
                assert_eq!(
                    median(s).unwrap().to_bits(),
                    want.to_bits(),
                    "{n} values, {held} held"
                );
            }
        }
    }
    use crate::rng::Rng;

    /// With distinct values, exactly ⌊i·n/count⌋ values lie below boundary i: counted by brute
    /// force over the unsorted values, for several sizes and bucket counts.
    #[test]
    fn boundaries_are_the_brute_force_quantiles() {
        let mut r = Rng::stream(7, "test-quantiles");
        for (n, count) in [(1000usize, 32usize), (999, 7), (10, 3), (64, 64), (5, 8)] {
            // Distinct values in random order: a shuffled arithmetic sequence, shifted.
            let mut values: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - 50.0).collect();
            for i in (1..n).rev() {
                values.swap(i, r.below(i as u64 + 1) as usize);
            }
            let b = quantile_boundaries(values.clone(), count);
            let mut expected = Vec::new();
            for i in 1..count {
                let below = i * n / count;
                // The smallest value with exactly `below` values under it, unless that is the
                // minimum (no boundary) or a repeat of the previous boundary.
                if below > 0 && expected.last() != Some(&below) && below < n {
                    expected.push(below);
                }
            }
            let counted: Vec<usize> = b
                .iter()
                .map(|&x| values.iter().filter(|&&v| v < x).count())
                .collect();
            assert_eq!(counted, expected, "n {n}, count {count}");
            assert!(b.iter().all(|x| values.contains(x)));
        }
    }

    /// The median fill, by hand: one value of 1e38 moves the mean to 2.5e37 and the median
    /// not at all.
    #[test]
    fn median_fill_ignores_one_extreme_value() {
        assert_eq!(median_of(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        let mut v = [1.0, 2.0, 3.0, 1e38, 2.0];
        assert_eq!(median_of(&mut v), 2.0);
        assert_eq!(median_of(&mut [7.5]), 7.5);
        assert_eq!(median_of(&mut []), 0.0);
    }

    /// Mass points get their own buckets: [0 x6, 5, 7, 7, 9] in 4 buckets. A share is 10/4
    /// values: the six zeros are a mass point (boundaries at 0, the minimum, dropped, and at
    /// 5, the next value). Over the 4 values left with 3 buckets a share is 4/3: the two 7s
    /// are one (boundaries 7 and 9). Over [5, 9] with 2 buckets nothing is; their quantile at
    /// ⌊1·2/2⌋ = 1 is 9. By hand: buckets {0}, {5}, {7, 7}, {9}. Plain quantiles (positions
    /// 2, 5, 7 of all ten: 0, 0, 7) would have put 5 with the zeros and 7 with 9.
    #[test]
    fn tied_quantiles_make_one_boundary() {
        let v = vec![0.0, 7.0, 0.0, 9.0, 0.0, 0.0, 5.0, 0.0, 7.0, 0.0];
        assert_eq!(quantile_boundaries(v, 4), vec![5.0, 7.0, 9.0]);
        assert_eq!(quantile_boundaries(vec![3.0; 5], 4), Vec::<f64>::new());
        assert_eq!(quantile_boundaries(Vec::new(), 4), Vec::<f64>::new());
    }

    /// A column 99% zeros (a `spend` positive only after a conversion) keeps the zeros in one
    /// bucket and cuts its 100 positive values into the 31 buckets left, by their quantiles:
    /// the feature is not a constant, and the zero bucket holds exactly the zeros.
    #[test]
    fn a_mass_point_gets_its_own_bucket_and_the_rest_their_quantiles() {
        let mut v = vec![0.0; 9900];
        v.extend((1..=100).map(|i| i as f64 * 1.5));
        let b = quantile_boundaries(v.clone(), 32);
        assert_eq!(b[0], 1.5, "the zeros alone below the first boundary");
        // The positives 1.5..150 by their own quantiles: positions ⌊q·100/31⌋, q = 1..30.
        let rest: Vec<f64> = (1..31).map(|q| ((q * 100 / 31) + 1) as f64 * 1.5).collect();
        assert_eq!(b[1..], rest[..]);
        let below_first = v.iter().filter(|&&x| x < b[0]).count();
        assert_eq!(below_first, 9900);
    }

    /// Ids: a value's bucket counts the boundaries at or below it; missing values get the
    /// missing row, unless the policy is `error`.
    #[test]
    fn bucket_ids() {
        let enc = NumericEncoder {
            name: "x".into(),
            column: "x".into(),
            transform: NumericTransform::QuantileBuckets,
            missing: MissingPolicy::Mean,
            shift: 0.0,
            scale: 1.0,
            fill: 0.0,
            boundaries: Some(vec![1.0, 2.5]),
        };
        let b = enc.boundaries.clone().unwrap();
        let id = |v| enc.bucket(&b, v);
        assert_eq!(enc.bucket_rows(), Some(6));
        assert_eq!(id(Some(-1e9)), Some(FIRST_TOKEN_ID));
        assert_eq!(id(Some(0.999)), Some(FIRST_TOKEN_ID));
        assert_eq!(id(Some(1.0)), Some(FIRST_TOKEN_ID + 1));
        assert_eq!(id(Some(2.4)), Some(FIRST_TOKEN_ID + 1));
        assert_eq!(id(Some(2.5)), Some(FIRST_TOKEN_ID + 2));
        assert_eq!(id(Some(1e300)), Some(FIRST_TOKEN_ID + 2));
        assert_eq!(id(None), Some(NULL_ID));
        assert_eq!(id(Some(f64::NAN)), Some(NULL_ID));
        let strict = NumericEncoder {
            missing: MissingPolicy::Error,
            ..enc.clone()
        };
        assert_eq!(strict.bucket(&b, None), None);
        // Saved and loaded unchanged; an encoder without boundaries loads as before.
        let json = serde_json::to_string(&enc).unwrap();
        assert_eq!(serde_json::from_str::<NumericEncoder>(&json).unwrap(), enc);
        let plain = NumericEncoder {
            boundaries: None,
            ..enc
        };
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("boundaries"));
        assert_eq!(
            serde_json::from_str::<NumericEncoder>(&json).unwrap(),
            plain
        );
    }
}
