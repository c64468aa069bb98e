//! The chain as an ONNX graph, walked as `forward` walks it in inference: the encoded inputs
//! (an int64 id vector per single-valued embedded field, `ids.<feature>`; per multi-valued
//! feature its token ids padded with 0 into a rows x width matrix, `tokens.<feature>`, and for
//! a weighted one the weights beside them, `weights.<feature>`; the numeric values side by
//! side, `numeric`), each store's input rows gathered from its tables (bags pooled, a field
//! group's rows summed into its slot), the bottom, the towers and transfers, then each stage's
//! conditional and cumulative probability by the funnel's own formulas (`Funnel::log_probs`),
//! as outputs `<stage>_conditional` and `<stage>_cumulative` (one value per row). An empty
//! list is given as the one token of its table's last row (the empty list's), weight 1.

use std::cell::RefCell;
use std::collections::HashMap;

use super::chain::FunnelModel;
use super::export_kit::ExportKit;
use crate::config::{Pipeline, TokenWeights};
use crate::error::Result;
use crate::funnel::LogSpace;
use crate::layout::Pooling;
use crate::onnx::{Elem, Graph, Value};

/// The graph's input of feature `name`'s ids.
pub fn ids_input(name: &str) -> String {
    format!("ids.{name}")
}

/// The graph's inputs of multi-valued feature `name`'s padded tokens and their weights.
pub fn token_inputs(name: &str) -> (String, String) {
    (format!("tokens.{name}"), format!("weights.{name}"))
}

/// The names of each stage's conditional and cumulative probability, stage by stage
/// (`<stage>_conditional`, `<stage>_cumulative`): the graph's outputs, and the columns
/// `predict` and the serving API write.
pub fn prediction_columns(stages: &[String]) -> Vec<String> {
    stages
        .iter()
        .flat_map(|s| [format!("{s}_conditional"), format!("{s}_cumulative")])
        .collect()
}

/// The graph's input of the numeric values.
pub const NUMERIC_INPUT: &str = "numeric";

impl FunnelModel {
    /// The model of pipeline `p` as an ONNX graph (see the module doc).
    pub fn to_onnx(&self, p: &Pipeline) -> Result<Graph> {
        let fields: Vec<&str> = p.embedded_fields().into_iter().map(|(n, _)| n).collect();
        let layout = self.stores[0].layout();
        let g = Graph::new();
        let kit = ExportKit::new(g.clone(), self.params.iter());
        let singles = layout.single_fields();
        let ids: Vec<Value> = fields[..singles]
            .iter()
            .map(|name| g.input(&ids_input(name), Elem::I64, None))
            .collect();
        let bags: Vec<(Value, Option<Value>)> = p
            .multi_valued
            .iter()
            .map(|m| {
                let name = &m.vocabulary.name;
                let (tokens, weights) = token_inputs(name);
                let width = format!("width.{name}");
                let t = g.padded_input(&tokens, Elem::I64, &width);
                let w = (m.weights != TokenWeights::None)
                    .then(|| g.padded_input(&weights, Elem::F32, &width));
                (t, w)
            })
            .collect();
        let sequences: Vec<Value> = layout
            .sequences()
            .iter()
            .map(|seq| {
                let (tokens, _) = token_inputs(&seq.name);
                g.padded_input(&tokens, Elem::I64, &format!("width.{}", seq.name))
            })
            .collect();
        let numeric =
            (self.numerics > 0).then(|| g.input(NUMERIC_INPUT, Elem::F32, Some(self.numerics)));
        let tables = self.tables();
        let per_store = layout.fields();
        // Each table one constant, however many inputs read it (a history reads its target's).
        let written: RefCell<HashMap<usize, Value>> = RefCell::default();
        let table = |i: usize| {
            let (key, t) = &tables[i];
            let value = written
                .borrow_mut()
                .entry(i)
                .or_insert_with(|| {
                    let values = t.rows().flatten().copied().collect();
                    g.constant(key, &[t.vocab, t.dim], values)
                })
                .clone();
            (value, *t)
        };
        let rows: Vec<Value> = (0..self.stores.len())
            .map(|s| {
                let mut parts = Vec::with_capacity(layout.slots().len() + 1);
                for slot in layout.slots() {
                    // The slot's first field's rows, then the group's others added in order,
                    // as the gather sums them.
                    let mut sum: Option<Value> = None;
                    for &f in &slot.fields {
                        let (table, t) = table(s * per_store + f);
                        let e = match layout.pooling(f) {
                            None => ids[f].gather_rows(&table, t.dim),
                            Some(pooling) => {
                                let (tokens, weights) = &bags[f - singles];
                                pool(tokens, weights.as_ref(), &table, t.dim, pooling)
                            }
                        };
                        sum = Some(match sum {
                            None => e,
                            Some(acc) => acc.add(&e),
                        });
                    }
                    parts.extend(sum);
                }
                parts.extend(numeric.clone());
                Value::concat(&parts, 1)
            })
            .collect();
        // Each store's histories: the padded ids and their rows from the target's table.
        let histories: Vec<Vec<(Value, Value)>> = (0..self.stores.len())
            .map(|s| {
                layout
                    .sequences()
                    .iter()
                    .zip(&sequences)
                    .map(|(seq, ids)| {
                        let (table, t) = table(s * per_store + seq.field);
                        (ids.clone(), ids.gather_rows(&table, t.dim))
                    })
                    .collect()
            })
            .collect();
        let shared_din: Vec<Value> = match (self.din.first(), self.din_per_stage) {
            (Some(din), false) => (0..self.stores.len())
                .map(|s| din.export(&kit, &rows[s], &histories[s]))
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        let k = self.stages.len();
        let bottomed = match &self.bottom {
            Some(b) => Some(b.export(&kit, &rows[0], k)?),
            None => None,
        };
        let mut hidden: Vec<Value> = Vec::with_capacity(k);
        let mut logits = Vec::with_capacity(k);
        let mut skips = Vec::new();
        for (s, stage) in self.stages.iter().enumerate() {
            let store = self.stage_store[s];
            let input = &rows[store];
            let base = bottomed.as_ref().map_or(input, |b| &b[s]);
            let pooled = match (self.din_per_stage, self.din.get(s)) {
                (true, Some(din)) => Some(din.export(&kit, input, &histories[store])?),
                _ => shared_din.get(store).cloned(),
            };
            let joined;
            let x = match pooled {
                Some(p) => {
                    joined = Value::concat(&[base.clone(), p], 1);
                    &joined
                }
                None => base,
            };
            let own = stage.tower.export_encode(&kit, x)?;
            let h = match (&stage.transfer, self.funnel.parent(s)) {
                (Some(t), Some(parent)) => t.export(&kit, &own, &hidden[parent])?,
                _ => own,
            };
            logits.push(stage.tower.export_logit(&kit, &h, input)?);
            hidden.push(h);
            if let Some(t) = &stage.skip {
                let e = t.export_encode(&kit, x)?;
                skips.push(t.export_logit(&kit, &e, input)?);
            }
        }
        logits.extend(skips);
        let logits = Value::concat(&logits, 1);
        let Ok(probs) = self.funnel.log_probs(&logits);
        let names = prediction_columns(&self.stage_names);
        for (s, names) in names.chunks_exact(2).enumerate() {
            for (log, name) in [&probs.log_q, &probs.log_p].into_iter().zip(names) {
                let Ok(column) = log.column(s);
                g.output(&column.unary("Exp").flatten_rows(), name);
            }
        }
        Ok(g)
    }
}

/// A bag field's slot from its padded tokens (rows x width, 0 past a row's tokens) and their
/// weights (1 when the feature has none), as `pooling::pool` computes it: Σ wₜ eₜ, the same
/// over Σ wₜ, or each column's maximum over the row's tokens (the padding kept out).
fn pool(
    tokens: &Value,
    weights: Option<&Value>,
    table: &Value,
    dim: usize,
    pooling: Pooling,
) -> Value {
    let rows = tokens.gather_rows(table, dim);
    let present = tokens.positive();
    let w = weights.map_or_else(|| present.clone(), |w| w.mul(&present));
    let column = |v: &Value| v.reshape(&[0, 0, 1], 0);
    match pooling {
        Pooling::Sum => rows.mul(&column(&w)).sum(1, false, dim),
        Pooling::Mean => {
            let coef = w.div(&w.sum(1, true, 1));
            rows.mul(&column(&coef)).sum(1, false, dim)
        }
        Pooling::Max => {
            // 0 for a token, −10³⁰ for the padding: the maximum never takes the padding.
            let one = tokens.graph().scalar(1.0);
            let away = present.sub(&one).scaled(1e30);
            rows.add(&column(&away)).max_over(1, dim)
        }
    }
}
