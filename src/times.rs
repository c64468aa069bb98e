//! Times as funnel reads them, for splits carved by time: a number (in the time column's own
//! unit, Unix seconds for dates), or a date or date-time in UTC (`2017-12-03`,
//! `2017-12-03 08:00:00`, `2017-12-03T08:00:00Z`) as Unix seconds.

/// The time `text` denotes, if it is one.
pub fn parse_time(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(x) = t.parse::<f64>() {
        return x.is_finite().then_some(x);
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (t, None),
    };
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (ymd.next()?, ymd.next()?, ymd.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let seconds = match clock {
        None => 0.0,
        Some(c) => {
            let mut hms = c.splitn(3, ':');
            let (h, mi) = (hms.next()?, hms.next()?);
            let s = hms.next().unwrap_or("0");
            let (h, mi, s): (u32, u32, f64) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
            if h > 23 || mi > 59 || !(0.0..60.0).contains(&s) {
                return None;
            }
            (h * 3600 + mi * 60) as f64 + s
        }
    };
    Some(days_from_civil(y, m, d) as f64 * 86_400.0 + seconds)
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix times checked against `date -u -d 2017-12-03 +%s` and friends.
    #[test]
    fn dates_are_unix_seconds() {
        assert_eq!(parse_time("1970-01-01"), Some(0.0));
        assert_eq!(parse_time("2017-12-03"), Some(1_512_259_200.0));
        assert_eq!(parse_time("2017-12-03 08:00:00"), Some(1_512_288_000.0));
        assert_eq!(parse_time("2017-12-03T08:00:00Z"), Some(1_512_288_000.0));
        assert_eq!(parse_time("2000-02-29"), Some(951_782_400.0));
        assert_eq!(parse_time("1969-12-31"), Some(-86_400.0));
        assert_eq!(parse_time("1512259200"), Some(1_512_259_200.0));
        for bad in [
            "2017-02-29",
            "2017-13-01",
            "17-12-03",
            "2017-12-03 25:00",
            "noon",
            "inf",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
