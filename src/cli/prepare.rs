//! `funnel prepare`: public log formats turned into funnel tables (`crate::prepare`).

use std::path::PathBuf;

use clap::Subcommand;

use super::output::check_output;
use crate::error::Result;

/// The log formats `funnel prepare` reads.
#[derive(Subcommand)]
pub(super) enum PrepareFormat {
    /// PaddleRec's encoding of Ali-CCP (`sample_id,click,ctcvr,field:feature,...`), written in
    /// `ali-ccp`'s columns.
    #[command(name = "paddlerec-esmm")]
    PaddlerecEsmm {
        /// The text file (`small.txt` in PaddleRec's ESMM example).
        #[arg(long)]
        input: PathBuf,
        /// Output file: Parquet or CSV.
        #[arg(long)]
        out: PathBuf,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
    /// The Ali-CCP raw files (the ESMM paper's data): each skeleton line joined to its common
    /// features, one column per field of the paper's schema, the 14-day behaviour fields as
    /// lists of ids with their values; streamed with bounded memory.
    #[command(name = "ali-ccp")]
    AliCcp {
        /// The skeleton file (`sample_id,click,buy,common_feature_index,feature_count,feature_list`).
        #[arg(long)]
        skeleton: PathBuf,
        /// The common-features file (`common_feature_index,feature_count,feature_list`).
        #[arg(long)]
        common: PathBuf,
        /// Output file: Parquet (`.parquet`, lists as lists) or CSV (lists as `a|b|c`).
        #[arg(long)]
        out: PathBuf,
        /// Keep each skeleton line with this probability, drawn from a hash of its sample id
        /// and `--seed` (a random sample: the skeleton is sorted by its join key).
        #[arg(long, default_value_t = 1.0)]
        sample: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Replace `--out` when it exists.
        #[arg(long)]
        force: bool,
    },
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
        PrepareFormat::PaddlerecEsmm { input, out, force } => {
            check_output(&out, &[&input], force)?;
            let s = crate::prepare::paddlerec_esmm(&input, &out)?;
            eprintln!(
                "wrote {} impressions to {}; {} bought without a click; {} tokens of fields outside the schema and {} extra tokens of single-valued fields skipped",
                s.rows,
                out.display(),
                s.buy_without_click,
                s.unknown_entries,
                s.extra_entries
            );
            Ok(())
        }
        PrepareFormat::AliCcp {
            skeleton,
            common,
            out,
            sample,
            seed,
            force,
        } => {
            if !(sample > 0.0 && sample <= 1.0) {
                return Err(crate::error::Error::Usage(format!(
                    "--sample {sample}: the share of lines kept must be in (0, 1]\n  hint: e.g. `--sample 0.01` keeps about 1% of the impressions"
                )));
            }
            check_output(&out, &[&skeleton, &common], force)?;
            let start = std::time::Instant::now();
            let s = crate::prepare::ali_ccp(&skeleton, &common, &out, sample, seed)?;
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "wrote {} of {} impressions to {} in {secs:.2}s ({:.0} lines/s, {} partition(s))",
                s.rows,
                s.read,
                out.display(),
                s.read as f64 / secs.max(1e-9),
                s.partitions
            );
            eprintln!(
                "{} bought without a click (kept as logged: train's `inconsistent_rows` decides); {} without their common features; {} entries of fields outside the schema and {} extra entries of single-valued fields skipped",
                s.buy_without_click, s.unmatched, s.unknown_entries, s.extra_entries
            );
            Ok(())
        }
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
