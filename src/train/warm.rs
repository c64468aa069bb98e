//! Warm start: a new run's weights initialised from an earlier run's where they match. Dense
//! parameters by key and shape; embedding rows by value, not by id: a categorical value's row
//! moves to wherever the new vocabulary puts it (vocabularies differ between data refreshes),
//! hashed tables move whole when their size is the same, bucket tables when their boundaries
//! are. Optimizer state starts fresh.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::checkpoint::Run;
use crate::error::Result;
use crate::features::{Encoders, FIRST_TOKEN_ID};
use crate::model::{FunnelModel, TableMut};
use crate::source::Cat;

/// What a warm start loaded.
#[derive(Debug, Default, PartialEq)]
pub struct WarmReport {
    pub dense_loaded: usize,
    pub dense_total: usize,
    /// Rows copied, of the new tables' rows.
    pub rows_loaded: usize,
    pub rows_total: usize,
    /// Tensors or tables left at their initial values, by key.
    pub skipped: Vec<String>,
}

impl WarmReport {
    pub fn summary(&self, dir: &Path) -> String {
        let skipped = match self.skipped.len() {
            0 => String::new(),
            n => format!("; {n} left as initialised: {}", self.skipped.join(", ")),
        };
        format!(
            "warm start from {}: {} of {} dense tensors, {} of {} embedding rows{skipped}",
            dir.display(),
            self.dense_loaded,
            self.dense_total,
            self.rows_loaded,
            self.rows_total
        )
    }
}

/// Where each of the new encoder's ids was in the old one (`None`: a value the old run never
/// saw), for the embedded field `name`; `None` when the tables cannot be matched.
fn id_map(name: &str, new: &Encoders, old: &Encoders) -> Option<Vec<Option<u32>>> {
    if let Some(n) = new.categorical.iter().find(|e| e.name == name) {
        let o = old.categorical.iter().find(|e| e.name == name)?;
        if n.hash_buckets.is_some() || o.hash_buckets.is_some() {
            return (n.hash_buckets == o.hash_buckets)
                .then(|| (0..n.vocab_size() as u32).map(Some).collect());
        }
        let texts = n.tokens.texts();
        let mut map: Vec<Option<u32>> = (0..FIRST_TOKEN_ID).map(Some).collect();
        map.extend(texts.iter().map(|t| {
            let id = o.encode(Cat::Str(t));
            (id >= FIRST_TOKEN_ID).then_some(id)
        }));
        return Some(map);
    }
    let n = new.numeric.iter().find(|e| e.name == name)?;
    let o = old.numeric.iter().find(|e| e.name == name)?;
    (n.boundaries.is_some() && n.boundaries == o.boundaries)
        .then(|| (0..n.bucket_rows().unwrap_or(0) as u32).map(Some).collect())
}

/// Load what matches from the finished run in `dir` into `model` (built with `encoders`).
pub fn load(model: &mut FunnelModel, encoders: &Encoders, dir: &Path) -> Result<WarmReport> {
    let old = Run::open(dir)?;
    let mut report = WarmReport::default();
    let old_params: HashMap<&str, &candle_core::Var> = old.model.params().iter().collect();
    let dev = model.device().clone();
    for (name, var) in model.params().iter() {
        report.dense_total += 1;
        match old_params.get(name) {
            Some(o) if o.dims() == var.dims() => {
                var.set(&Tensor::from_vec(
                    o.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                    var.dims(),
                    &dev,
                )?)?;
                report.dense_loaded += 1;
            }
            _ => report.skipped.push(name.to_string()),
        }
    }
    let old_tables: HashMap<String, &crate::model::Table> =
        old.model.tables().into_iter().collect();
    // One map per table name: with a set of tables per stage, each name appears once per stage.
    let mut maps: std::collections::HashMap<String, Option<Vec<Option<u32>>>> = Default::default();
    for TableMut { key, table: t, .. } in model.tables_mut() {
        report.rows_total += t.vocab;
        let matched = old_tables
            .get(&key)
            .filter(|o| o.dim == t.dim)
            .and_then(|o| {
                let map = maps
                    .entry(t.name.clone())
                    .or_insert_with(|| id_map(&t.name, encoders, &old.encoders));
                Some((o, map.as_ref()?))
            });
        let Some((o, map)) = matched else {
            report.skipped.push(key);
            continue;
        };
        for (new_id, old_id) in map.iter().enumerate() {
            if let Some(old_id) = *old_id
                && (old_id as usize) < o.vocab
                && new_id < t.vocab
            {
                t.set_row(new_id as u32, o.row(old_id));
                report.rows_loaded += 1;
            }
        }
    }
    Ok(report)
}
