//! Training progress: a live bar (rows/s, running loss) on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct EpochProgress {
    bar: Option<ProgressBar>,
    start: Instant,
    epoch: usize,
    epochs: usize,
    rows: usize,
    loss_sum: f64,
    batches: usize,
}

impl EpochProgress {
    pub fn start(epoch: usize, epochs: usize, total_rows: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total_rows as u64);
            let style =
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} rows  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(format!("{epoch}/{epochs}"));
            b
        });
        EpochProgress {
            bar,
            start: Instant::now(),
            epoch,
            epochs,
            rows: 0,
            loss_sum: 0.0,
            batches: 0,
        }
    }

    pub fn batch(&mut self, rows: usize, loss: f64) {
        self.rows += rows;
        self.loss_sum += loss;
        self.batches += 1;
        if let Some(b) = &self.bar {
            b.inc(rows as u64);
            if self.batches.is_multiple_of(16) {
                let rate = self.rows as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
                b.set_message(format!("{rate:.0} rows/s  loss {:.4}", self.mean_loss()));
            }
        }
    }

    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.batches.max(1) as f64
    }

    /// Close the bar and print the epoch's summary line; returns the mean training loss.
    pub fn finish(self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        eprintln!(
            "epoch {}/{}: {} rows in {:.2}s ({:.0} rows/s), train loss {:.5}",
            self.epoch,
            self.epochs,
            self.rows,
            secs,
            self.rows as f64 / secs.max(1e-9),
            self.mean_loss()
        );
        self.mean_loss()
    }
}
