//! Serving a finished run from Rust: `Model::load(run_dir)` gives a thread-safe predictor that
//! turns raw rows (a polars DataFrame, or one row of named values) into each stage's
//! conditional and cumulative probability as `funnel predict` computes them (a table's to the
//! last bit), without loading any training state: the dense blocks are read once, the embedding tables stay in the run's
//! weights file, memory-mapped.

mod values;

use std::path::{Path, PathBuf};

use polars::prelude::{Column as PlColumn, DataFrame};

use crate::config::{FileSource, Pipeline, TokenWeights};
use crate::data::{self, Dataset};
use crate::error::{Error, Result};
use crate::features::Encoders;
use crate::funnel::Funnel;
use crate::model::row_store::RowSource;
use crate::model::{FunnelModel, MappedStore};
use crate::source::Frame;

pub use values::Value;

// A served model is shared between threads: checked when the crate compiles.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Model>();
};

/// A finished run ready to predict. `Send + Sync`: share one behind an `Arc` and call
/// `predict` from as many threads as you like. Call `funnel::runtime::init()` first thing in
/// `main` (before any thread starts): without it candle reads `/proc/cpuinfo` on every matrix
/// product, which quadrupled AITM's single-row latency.
pub struct Model {
    dir: PathBuf,
    pipeline: Pipeline,
    encoders: Encoders,
    model: FunnelModel,
    stores: Vec<MappedStore>,
}

impl Model {
    /// Open the finished run in `run_dir`: every file is checked against its manifest (as
    /// `funnel eval` and `predict` check it), the dense weights are loaded and the embedding
    /// tables memory-mapped from `weights.safetensors`.
    pub fn load(run_dir: impl AsRef<Path>) -> Result<Model> {
        let dir = run_dir.as_ref();
        let (pipeline, encoders, _) = crate::checkpoint::read_run(dir)?;
        let (model, stores) =
            FunnelModel::open_mapped(&pipeline, &encoders, &dir.join(crate::checkpoint::WEIGHTS))?;
        Ok(Model {
            dir: dir.to_path_buf(),
            pipeline,
            encoders,
            model,
            stores,
        })
    }

    /// The run directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run's resolved pipeline (its features, stages and settings).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The stage names, in funnel order.
    pub fn stages(&self) -> Vec<&str> {
        self.pipeline
            .stages
            .iter()
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The input columns the model reads (each feature's column; the rows may have others,
    /// which are ignored).
    pub fn columns(&self) -> Vec<&str> {
        self.pipeline.feature_columns().collect()
    }

    /// Each stage's probabilities for every row of `rows`, which holds the feature columns as
    /// the training file held them (numbers, text, lists for multi-valued features; text read
    /// by the training file's trimming and null markers). Rows are scored in batches of the
    /// pipeline's `train.eval_batch_size`.
    pub fn predict(&self, rows: &DataFrame) -> Result<Predictions> {
        let d = self.dataset(rows)?;
        let mut out = Predictions::new(&self.pipeline);
        out.warnings = data::oov_warnings(&self.pipeline, &d)
            .into_iter()
            .chain(data::truncation_warnings(&self.pipeline, &d))
            .collect();
        self.score(&d, |logits| {
            out.push(&self.pipeline.funnel, logits);
            Ok(())
        })?;
        Ok(out)
    }

    /// Each stage's probabilities for one row given as named values (names not read by the
    /// model are ignored; a feature missing from the row is an error, `Value::Missing` is a
    /// missing value).
    pub fn predict_row(&self, row: &[(&str, Value)]) -> Result<Predictions> {
        self.predict(&values::one_row(row)?)
    }

    /// The rows encoded as the inputs of the run's exported ONNX graph (`funnel export`): what a
    /// server in Rust feeds ONNX Runtime or tract.
    pub fn encode(&self, rows: &DataFrame) -> Result<Encoded> {
        let d = self.dataset(rows)?;
        let names = self.pipeline.embedded_fields();
        Ok(Encoded {
            rows: d.rows,
            ids: names
                .iter()
                .zip(&d.cat)
                .map(|((name, _), ids)| {
                    (
                        crate::model::ids_input(name),
                        ids.iter().map(|&i| i as i64).collect(),
                    )
                })
                .collect(),
            bags: self
                .pipeline
                .multi_valued
                .iter()
                .zip(&d.bags)
                .zip(self.encoders.empty_list_ids())
                .map(|((m, bags), empty)| {
                    let weighted = m.weights != TokenWeights::None;
                    Padded::of(&m.vocabulary.name, weighted, bags, Some(empty as i64))
                })
                .chain(
                    self.pipeline
                        .sequences
                        .iter()
                        .zip(&d.bags[self.pipeline.multi_valued.len()..])
                        .map(|(s, bags)| Padded::of(&s.tokens.vocabulary.name, false, bags, None)),
                )
                .collect(),
            numeric: d.batch_range(0, d.rows).num,
            numeric_columns: d.num.len(),
        })
    }

    /// The rows encoded by the run's encoders.
    fn dataset(&self, rows: &DataFrame) -> Result<Dataset> {
        let columns: Vec<String> = self.columns().into_iter().map(str::to_string).collect();
        // Read by the training file's rules (trimming, null markers); messages name the rows.
        let like = FileSource {
            path: PathBuf::from("<served rows>"),
            ..self.pipeline.train_source.clone()
        };
        let frame = Frame::from_dataframe(rows.clone(), &like, &columns)?;
        data::encode_unlabelled(&frame, &self.encoders, &self.pipeline)
    }

    /// The logits of an encoded dataset, a batch at a time.
    fn score(&self, d: &Dataset, mut sink: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let sources: Vec<&dyn RowSource> =
            self.stores.iter().map(|s| s as &dyn RowSource).collect();
        let batch = self.pipeline.train.eval_batch_size;
        let logits = |b: &crate::data::Batch| self.model.logits_from(&sources, b);
        crate::scoring::score_with(d, batch, logits, |_, z| {
            if z.iter().any(|z| !z.is_finite()) {
                return Err(Error::run(
                    &self.dir,
                    "the model predicts a non-finite value for these rows",
                )
                .with_hint("look for extreme numeric inputs; train the run again with `train.clip_grad_norm` if they are ordinary"));
            }
            sink(z)
        })
    }
}

/// Rows encoded as an exported graph's inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub rows: usize,
    /// Each embedded field's ids by the graph's input name (`ids.<feature>`), in input order.
    pub ids: Vec<(String, Vec<i64>)>,
    /// Each multi-valued feature's tokens, then each behaviour history's, padded, in input
    /// order.
    pub bags: Vec<Padded>,
    /// The `numeric` input: rows x `numeric_columns`, row-major; empty when the model reads no
    /// numeric value.
    pub numeric: Vec<f32>,
    pub numeric_columns: usize,
}

/// A multi-valued feature's or a history's tokens as the graph reads them: rows x `width` ids,
/// each row's tokens then 0s (the padding id); a multi-valued feature's empty list as the one id
/// of its table's last row, an empty history as no token.
#[derive(Clone, Debug, PartialEq)]
pub struct Padded {
    /// The inputs' names: `tokens.<feature>`, and `weights.<feature>` for a weighted feature.
    pub tokens_input: String,
    pub weights_input: Option<String>,
    pub width: usize,
    pub tokens: Vec<i64>,
    /// The tokens' weights (0 for the padding), when the feature has weights.
    pub weights: Vec<f32>,
}

impl Padded {
    /// The bags of feature `name`; an empty one as the token `empty` (a multi-valued feature's
    /// empty-list row) or as no token at all (a history).
    fn of(name: &str, weighted: bool, bags: &crate::features::Bags, empty: Option<i64>) -> Self {
        let (tokens_input, weights_input) = crate::model::token_inputs(name);
        let rows = bags.rows();
        let width = (0..rows)
            .map(|r| bags.span(r).len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut tokens = vec![0i64; rows * width];
        let mut weights = vec![0f32; if weighted { rows * width } else { 0 }];
        for r in 0..rows {
            let span = bags.span(r);
            if let (true, Some(id)) = (span.is_empty(), empty) {
                tokens[r * width] = id;
                if weighted {
                    weights[r * width] = 1.0;
                }
            }
            for (j, t) in span.enumerate() {
                tokens[r * width + j] = bags.ids[t] as i64;
                if weighted {
                    weights[r * width + j] = bags.weight(t);
                }
            }
        }
        Padded {
            tokens_input,
            weights_input: weighted.then_some(weights_input),
            width,
            tokens,
            weights,
        }
    }
}

/// Each stage's conditional probability q (of reaching the stage, given the stage before it)
/// and cumulative probability p (of reaching it) for a block of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    stages: Vec<String>,
    /// conditional[s][i], cumulative[s][i]: stage s, row i.
    conditional: Vec<Vec<f64>>,
    cumulative: Vec<Vec<f64>>,
    warnings: Vec<String>,
}

impl Predictions {
    /// No rows yet, for the stages of `p`.
    pub(crate) fn new(p: &Pipeline) -> Self {
        let k = p.stages.len();
        Predictions {
            stages: p.stages.iter().map(|s| s.name.clone()).collect(),
            conditional: vec![Vec::new(); k],
            cumulative: vec![Vec::new(); k],
            warnings: Vec::new(),
        }
    }

    /// Append the probabilities of a block of rows from their logits (rows x
    /// `Funnel::logit_columns`, row-major).
    pub(crate) fn push(&mut self, funnel: &Funnel, logits: &[f32]) {
        let probs = funnel.probabilities(logits);
        for (s, (q, p)) in self
            .conditional
            .iter_mut()
            .zip(&mut self.cumulative)
            .enumerate()
        {
            for j in 0..probs.rows() {
                let pr = probs.get(j, s);
                q.push(pr.log_q.exp());
                p.push(pr.log_p.exp());
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.cumulative.first().map_or(0, Vec::len)
    }

    /// The stage names, in funnel order.
    pub fn stages(&self) -> &[String] {
        &self.stages
    }

    /// The index of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == name)
    }

    /// Stage `s`'s conditional probability for each row: of reaching it, given the stage
    /// before it was reached (for the first stage, its cumulative probability).
    pub fn conditional(&self, s: usize) -> &[f64] {
        &self.conditional[s]
    }

    /// Stage `s`'s cumulative probability for each row: of reaching it (and so every stage
    /// before it).
    pub fn cumulative(&self, s: usize) -> &[f64] {
        &self.cumulative[s]
    }

    /// What scoring noticed about the rows: values outside the vocabulary, token lists cut to
    /// their `max_len` (`funnel predict` prints the same lines as warnings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The output columns, named as `funnel predict` names them: `<stage>_conditional`,
    /// `<stage>_cumulative`, stage by stage.
    pub fn column_names(&self) -> Vec<String> {
        crate::model::prediction_columns(&self.stages)
    }

    /// Take the rows so far as named columns (in `column_names` order), leaving none.
    pub(crate) fn drain(&mut self) -> Vec<(String, Vec<f64>)> {
        let names = self.column_names();
        let values = self
            .conditional
            .iter_mut()
            .zip(&mut self.cumulative)
            .flat_map(|(q, p)| [std::mem::take(q), std::mem::take(p)]);
        names.into_iter().zip(values).collect()
    }

    /// The predictions as a DataFrame with the columns of `column_names`.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let columns: Vec<PlColumn> = self
            .column_names()
            .into_iter()
            .zip(
                self.conditional
                    .iter()
                    .zip(&self.cumulative)
                    .flat_map(|(q, p)| [q, p]),
            )
            .map(|(name, v)| PlColumn::new(name.into(), v))
            .collect();
        DataFrame::new(self.rows(), columns)
            .map_err(|e| Error::Internal(format!("predictions table: {e}")))
    }
}
