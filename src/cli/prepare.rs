//! `funnel prepare`: public log formats turned into funnel tables (`crate::prepare`).

use std::path::PathBuf;

use clap::Subcommand;

use super::output::check_output;
use crate::error::Result;

/// The log formats `funnel prepare` reads.
#[derive(Subcommand)]
pub(super) enum PrepareFormat {
    /// The Taobao user-behaviour log (`user_id,item_id,category_id,behavior_type,timestamp`):
    /// one row per user-item pair with stage flags pv, cart_or_fav and buy, the time of its
    /// first event, and the user's earlier items and categories as behaviour sequences.
    Taobao {
        /// The log (CSV without a header, optionally gzip-compressed).
        #[arg(long)]
        log: PathBuf,
        /// Output file: Parquet (`.parquet`, sequences as lists) or CSV (sequences as `a|b|c`).
        #[arg(long)]
        out: PathBuf,
        /// The most earlier events kept in a row's sequences (the most recent).
        #[arg(long, default_value_t = 50)]
        max_history: usize,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn run(format: PrepareFormat) -> Result<()> {
    match format {
        PrepareFormat::Taobao {
            log,
            out,
            max_history,
            force,
        } => {
            check_output(&out, &[&log], force)?;
            let start = std::time::Instant::now();
            let s = crate::prepare::taobao(&log, &out, max_history)?;
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "wrote {} user-item pairs of {} users ({} events) to {} in {secs:.2}s ({:.0} events/s)",
                s.pairs,
                s.users,
                s.events,
                out.display(),
                s.events as f64 / secs.max(1e-9)
            );
            eprintln!(
                "out of order: {} pair(s) bought without a cart or favourite, {} carted or favoured without a view (flags kept as logged; read the later stages with `meaning: given_previous`)",
                s.buy_without_cart_or_fav, s.cart_or_fav_without_pv
            );
            Ok(())
        }
    }
}
