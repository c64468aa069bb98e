//! The terminal front end of a run: a live progress bar (rows/s, running loss) when stderr is a
//! terminal, one line per epoch, metrics tables and timing on stdout, warnings on stderr.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{StageMetrics, Timing, format_metrics};
use crate::report::{EpochSummary, Reporter};

#[derive(Default)]
pub struct Terminal {
    bar: Option<ProgressBar>,
    start: Option<Instant>,
    rows: usize,
    loss_sum: f64,
    batches: usize,
}

impl Reporter for Terminal {
    fn warning(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }

    fn epoch_started(&mut self, epoch: usize, epochs: usize, rows: usize) {
        self.bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(rows as u64);
            let style =
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} rows  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(format!("{epoch}/{epochs}"));
            b
        });
        (self.start, self.rows, self.loss_sum, self.batches) = (Some(Instant::now()), 0, 0.0, 0);
    }

    fn batch(&mut self, rows: usize, loss: f64) {
        self.rows += rows;
        self.loss_sum += loss;
        self.batches += 1;
        if let (Some(b), Some(start)) = (&self.bar, self.start) {
            b.inc(rows as u64);
            if self.batches.is_multiple_of(16) {
                let rate = self.rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
                let mean = self.loss_sum / self.batches as f64;
                b.set_message(format!("{rate:.0} rows/s  loss {mean:.4}"));
            }
        }
    }

    fn epoch_finished(&mut self, s: &EpochSummary) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!(
            "epoch {}/{}: {} rows in {:.2}s ({:.0} rows/s), train loss {:.5}",
            s.epoch,
            s.epochs,
            s.rows,
            s.secs,
            s.rows as f64 / s.secs.max(1e-9),
            s.train_loss
        );
    }

    fn metrics(&mut self, title: &str, m: &[StageMetrics]) {
        out!("{}", format_metrics(title, m));
    }

    fn timing(&mut self, t: &Timing) {
        outln!(
            "timing: read {:.2}s, encode {:.2}s, train {:.2}s ({:.0} samples/s), evaluate {:.2}s",
            t.read_s,
            t.encode_s,
            t.train_s,
            t.train_samples_per_s,
            t.evaluate_s
        );
    }
}
