//! The `train` block: sizes, optimizers and early stopping.

use super::Checker;
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;
use crate::funnel::Prediction;

impl Checker<'_> {
    pub(super) fn train(&self, t: RawTrain, stages: &[StageSpec]) -> Result<TrainSpec> {
        let RawTrain {
            epochs,
            batch_size,
            eval_batch_size,
            seed,
            threads,
            optimizer,
            embedding_optimizer,
            early_stopping,
            checkpoint_every_steps,
        } = t;
        if checkpoint_every_steps == Some(0) {
            return Err(self.err(
                "train.checkpoint_every_steps",
                "checkpoint_every_steps must be at least 1",
                "remove it to checkpoint after each epoch only, or e.g. `checkpoint_every_steps: 1000`",
            ));
        }
        if epochs == 0 {
            return Err(self.err(
                "train.epochs",
                "epochs must be at least 1",
                "e.g. `epochs: 10`",
            ));
        }
        if batch_size == 0 {
            return Err(self.err(
                "train.batch_size",
                "batch_size must be at least 1",
                "e.g. `batch_size: 512`",
            ));
        }
        if eval_batch_size == 0 {
            return Err(self.err(
                "train.eval_batch_size",
                "eval_batch_size must be at least 1",
                "e.g. `eval_batch_size: 8192`",
            ));
        }
        // Optimizers run in f32: keep every value representable and eps well above f32's floor.
        let positive = |v: f64| v > 0.0 && v < 1e30;
        let unit = |v: f64| (0.0..1.0).contains(&v);
        let RawOptimizer {
            kind,
            lr,
            weight_decay,
            beta1,
            beta2,
            eps,
        } = optimizer;
        let optimizer = OptimizerSpec {
            kind,
            lr,
            weight_decay,
            beta1,
            beta2,
            eps,
        };
        for (key, ok, what) in [
            ("lr", positive(lr), "a positive number"),
            (
                "weight_decay",
                (0.0..1e30).contains(&weight_decay),
                "a number >= 0",
            ),
            ("beta1", unit(beta1), "in [0, 1)"),
            ("beta2", unit(beta2), "in [0, 1)"),
            ("eps", (1e-30..1.0).contains(&eps), "in [1e-30, 1)"),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.optimizer.{key}"),
                    format!("`{key}` must be {what}"),
                    "the defaults are lr 0.001, betas 0.9/0.999, eps 1e-8",
                ));
            }
        }
        let RawEmbeddingOptimizer {
            kind,
            lr,
            beta1,
            beta2,
            eps,
            initial_accumulator,
        } = embedding_optimizer;
        let embedding_optimizer = EmbeddingOptimizerSpec {
            kind,
            lr,
            beta1,
            beta2,
            eps,
            initial_accumulator,
        };
        for (key, ok, what) in [
            ("lr", positive(lr), "a positive number"),
            ("beta1", unit(beta1), "in [0, 1)"),
            ("beta2", unit(beta2), "in [0, 1)"),
            ("eps", (1e-30..1.0).contains(&eps), "in [1e-30, 1)"),
            (
                "initial_accumulator",
                (0.0..1e30).contains(&initial_accumulator),
                "a number >= 0",
            ),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.embedding_optimizer.{key}"),
                    format!("`{key}` must be {what}"),
                    "row-wise Adagrad works well with lr 0.05",
                ));
            }
        }
        let early_stopping = early_stopping
            .map(|es| self.early_stopping(&es, stages))
            .transpose()?;
        Ok(TrainSpec {
            epochs,
            batch_size,
            eval_batch_size,
            seed,
            threads,
            optimizer,
            embedding_optimizer,
            early_stopping,
            checkpoint_every_steps,
        })
    }

    fn early_stopping(&self, es: &RawEarlyStopping, stages: &[StageSpec]) -> Result<EarlyStopping> {
        let RawEarlyStopping { monitor, patience } = es;
        let at = "train.early_stopping.monitor";
        let hint = || {
            format!(
                "write `<stage>.<cumulative|conditional>.<auc|logloss>`, e.g. `{}.cumulative.auc`",
                stages
                    .last()
                    .map(|s| s.name.as_str())
                    .unwrap_or("conversion")
            )
        };
        let parts: Vec<&str> = monitor.split('.').collect();
        let [stage, prediction, measure] = parts[..] else {
            return Err(self.err(at, format!("cannot read monitor `{}`", monitor), hint()));
        };
        let Some(stage) = stages.iter().position(|s| s.name == stage) else {
            return Err(self.err(at, format!("no stage is named `{stage}`"), hint()));
        };
        let prediction = match prediction {
            "cumulative" => Prediction::Cumulative,
            "conditional" => Prediction::Conditional,
            other => return Err(self.err(at, format!("unknown prediction `{other}`"), hint())),
        };
        let measure = match measure {
            "auc" => Measure::Auc,
            "logloss" => Measure::Logloss,
            other => return Err(self.err(at, format!("unknown measure `{other}`"), hint())),
        };
        if *patience == 0 {
            return Err(self.err(
                "train.early_stopping.patience",
                "patience must be at least 1",
                "e.g. `patience: 2` stops after two epochs without improvement",
            ));
        }
        Ok(EarlyStopping {
            stage,
            prediction,
            measure,
            patience: *patience,
            monitor: monitor.clone(),
        })
    }
}
