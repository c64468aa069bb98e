//! How a metric is written in the tables: four decimals, or `undefined`.

/// A metric to four decimals, `undefined` when there is none.
pub(super) fn fmt_opt(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x:.4}"),
        None => "undefined".into(),
    }
}
