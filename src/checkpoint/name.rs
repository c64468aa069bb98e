//! The default name of a new run directory: the pipeline, the UTC time, the seed and the
//! process.

use std::path::PathBuf;

use crate::config::Pipeline;

/// `runs/<pipeline name>-<UTC timestamp>-seed<seed>-<process id>` under the current directory:
/// unique to the second, the seed and the process, so parallel seed sweeps never collide.
pub fn default_run_dir(p: &Pipeline) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    PathBuf::from("runs").join(format!(
        "{}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-seed{}-{}",
        p.name,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        p.train.seed,
        std::process::id()
    ))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        // 2026-11-28 is day 20_785 since the epoch (python: date(2026,11,28)-date(1970,1,1)).
        assert_eq!(super::civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
