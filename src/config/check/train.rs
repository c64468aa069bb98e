//! The `train` block: sizes, optimizers and early stopping.

use super::Checker;
use crate::config::pipeline::*;
use crate::config::raw::*;
use crate::error::Result;
use crate::funnel::Prediction;

impl Checker<'_> {
    pub(super) fn train(&self, t: RawTrain, stages: &[&str]) -> Result<TrainSpec> {
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
            memory_budget,
            clip_grad_norm,
            lr_schedule,
            warm_start,
            shuffle,
        } = t;
        let shuffle = match shuffle {
            None => Shuffle::Full,
            Some(s) => self.shuffle(s)?,
        };
        let warm_start = warm_start.map(|d| self.base.join(d));
        if let Some(c) = clip_grad_norm
            && !(c > 0.0 && c < 1e30)
        {
            return Err(self.err(
                "train.clip_grad_norm",
                format!("clip_grad_norm must be a positive number, got {c}"),
                "1 to 10 are common; remove it to leave gradients as they are",
            ));
        }
        let lr_schedule = lr_schedule.map(|s| self.schedule(s)).transpose()?;
        let memory_budget = match memory_budget {
            None => None,
            Some(b) => Some(bytes(&b).filter(|&n| n > 0).ok_or_else(|| {
                self.err(
                    "train.memory_budget",
                    format!("{b:?} is not a size"),
                    "give bytes (`8589934592`) or a number with a unit: `8GiB`, `512MiB`, `16GB`",
                )
            })?),
        };
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
        for (key, value, example) in [
            ("batch_size", batch_size, "e.g. `batch_size: 512`"),
            (
                "eval_batch_size",
                eval_batch_size,
                "e.g. `eval_batch_size: 8192`",
            ),
        ] {
            if !(1..=MAX_BATCH).contains(&value) {
                return Err(self.err(
                    &format!("train.{key}"),
                    format!("{key} must be between 1 and {MAX_BATCH}, got {value}"),
                    example,
                ));
            }
        }
        if threads > MAX_THREADS {
            return Err(self.err(
                "train.threads",
                format!("threads must be at most {MAX_THREADS}, got {threads}"),
                "0 uses one thread per available core; more than 4 per core are capped at run time",
            ));
        }
        // Optimizers run in f32: keep every value representable and eps well above f32's floor.
        // A learning rate above 1000 is never what was meant (it diverges at once).
        let rate = |v: f64| v > 0.0 && v <= 1000.0;
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
        for (key, value, ok, what) in [
            ("lr", lr, rate(lr), "in (0, 1000]"),
            (
                "weight_decay",
                weight_decay,
                (0.0..1e30).contains(&weight_decay),
                "a number >= 0",
            ),
            ("beta1", beta1, unit(beta1), "in [0, 1)"),
            ("beta2", beta2, unit(beta2), "in [0, 1)"),
            ("eps", eps, (1e-30..1.0).contains(&eps), "in [1e-30, 1)"),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.optimizer.{key}"),
                    format!("`{key}` must be {what}, got {}", value),
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
            l2,
        } = embedding_optimizer;
        let l2 = self
            .l2("train.embedding_optimizer.l2", Some(l2))?
            .unwrap_or(0.0);
        let embedding_optimizer = EmbeddingOptimizerSpec {
            kind,
            lr,
            beta1,
            beta2,
            eps,
            initial_accumulator,
            l2,
        };
        for (key, value, ok, what) in [
            ("lr", lr, rate(lr), "in (0, 1000]"),
            ("beta1", beta1, unit(beta1), "in [0, 1)"),
            ("beta2", beta2, unit(beta2), "in [0, 1)"),
            ("eps", eps, (1e-30..1.0).contains(&eps), "in [1e-30, 1)"),
            (
                "initial_accumulator",
                initial_accumulator,
                (0.0..1e30).contains(&initial_accumulator),
                "a number >= 0",
            ),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.embedding_optimizer.{key}"),
                    format!("`{key}` must be {what}, got {}", value),
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
            memory_budget,
            clip_grad_norm,
            lr_schedule,
            warm_start,
            shuffle,
        })
    }

    fn shuffle(&self, s: RawShuffle) -> Result<Shuffle> {
        let RawShuffle {
            block_rows,
            buffer_rows,
        } = s;
        if block_rows == 0 {
            return Err(self.err(
                "train.shuffle.block_rows",
                "block_rows must be at least 1",
                "blocks of 4096 to 65536 rows read well from disk; e.g. `block_rows: 16384`",
            ));
        }
        if buffer_rows < block_rows {
            return Err(self.err(
                "train.shuffle.buffer_rows",
                format!(
                    "buffer_rows ({buffer_rows}) must hold at least one block of {block_rows} rows"
                ),
                "the buffer holds whole blocks; the more it holds, the closer to a full shuffle: e.g. 64 blocks' worth",
            ));
        }
        Ok(Shuffle::Blocks {
            block_rows,
            blocks_per_window: buffer_rows / block_rows,
        })
    }

    fn schedule(&self, s: RawSchedule) -> Result<ScheduleSpec> {
        let RawSchedule {
            kind,
            warmup_steps,
            min_factor,
            gamma,
            step_epochs,
        } = s;
        let at = "train.lr_schedule";
        if !(0.0..=1.0).contains(&min_factor) {
            return Err(self.err(
                &format!("{at}.min_factor"),
                format!("min_factor must be in [0, 1], got {min_factor}"),
                "the cosine schedule ends at this share of the learning rates; 0 is common",
            ));
        }
        if !(gamma > 0.0 && gamma <= 1.0) {
            return Err(self.err(
                &format!("{at}.gamma"),
                format!("gamma must be in (0, 1], got {gamma}"),
                "the step schedule multiplies the learning rates by gamma; 0.5 or 0.1 are common",
            ));
        }
        if step_epochs == 0 {
            return Err(self.err(
                &format!("{at}.step_epochs"),
                "step_epochs must be at least 1",
                "e.g. `step_epochs: 2` halves the rates every two epochs with `gamma: 0.5`",
            ));
        }
        Ok(ScheduleSpec {
            kind,
            warmup_steps,
            min_factor,
            gamma,
            step_epochs,
        })
    }

    fn early_stopping(&self, es: &RawEarlyStopping, stages: &[&str]) -> Result<EarlyStopping> {
        let RawEarlyStopping { monitor, patience } = es;
        let at = "train.early_stopping.monitor";
        let hint = || {
            format!(
                "write `<stage>.<cumulative|conditional>.<auc|logloss>`, e.g. `{}.cumulative.auc`",
                stages.last().copied().unwrap_or("conversion")
            )
        };
        let parts: Vec<&str> = monitor.split('.').collect();
        let [stage, prediction, measure] = parts[..] else {
            return Err(self.err(at, format!("cannot read monitor `{}`", monitor), hint()));
        };
        let Some(stage) = stages.iter().position(|s| *s == stage) else {
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

/// A size in bytes from a count or from text with a unit (`1.5GiB`, `512 MiB`, `16GB`).
fn bytes(b: &RawBytes) -> Option<u64> {
    let text = match b {
        RawBytes::Count(n) => return Some(*n),
        RawBytes::Text(t) => t.trim(),
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024f64.powi(2),
        "GiB" => 1024f64.powi(3),
        "TiB" => 1024f64.powi(4),
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    let v = number.parse::<f64>().ok()? * scale;
    (v.is_finite() && v < 1.8e19).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let t = |s: &str| bytes(&RawBytes::Text(s.into()));
        assert_eq!(t("8GiB"), Some(8 << 30));
        assert_eq!(t("1.5 MiB"), Some(1_572_864));
        assert_eq!(t("16GB"), Some(16_000_000_000));
        assert_eq!(t("512"), Some(512));
        assert_eq!(bytes(&RawBytes::Count(7)), Some(7));
        assert_eq!(t("8 gigs"), None);
        assert_eq!(t("GiB"), None);
        assert_eq!(t("1e30GiB"), None);
    }
}
