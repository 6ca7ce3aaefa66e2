//! Number formatting shared by the report's sections: three significant digits for times,
//! rates and ratios, `–` for a missing ratio, civil UTC dates and the targets' verdicts.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats nanoseconds with three significant digits: `61.5 ns`, `1.62 us`, `22.1 us`,
/// `4.05 ms`.
///
/// ```
/// use shmx_bench::report::format_ns;
/// assert_eq!(format_ns(61.5), "61.5 ns");
/// assert_eq!(format_ns(1620.0), "1.62 us");
/// assert_eq!(format_ns(22_140.0), "22.1 us");
/// assert_eq!(format_ns(4_050_000.0), "4.05 ms");
/// ```
pub fn format_ns(ns: f64) -> String {
    let (v, unit) = match ns {
        n if n < 1e3 => (n, "ns"),
        n if n < 1e6 => (n / 1e3, "us"),
        n if n < 1e9 => (n / 1e6, "ms"),
        n => (n / 1e9, "s"),
    };
    format!("{} {unit}", sig3(v))
}

/// Formats a rate per second: `3.21 M/s`, `850 k/s`.
///
/// ```
/// use shmx_bench::report::format_rate;
/// assert_eq!(format_rate(3_210_000.0), "3.21 M/s");
/// assert_eq!(format_rate(850_000.0), "850 k/s");
/// ```
pub fn format_rate(per_s: f64) -> String {
    match per_s {
        r if r >= 1e9 => format!("{} G/s", sig3(r / 1e9)),
        r if r >= 1e6 => format!("{} M/s", sig3(r / 1e6)),
        r if r >= 1e3 => format!("{} k/s", sig3(r / 1e3)),
        r => format!("{} /s", sig3(r)),
    }
}

/// Formats a ratio: `1.32×`, `0.0254×`, `41×`.
///
/// ```
/// use shmx_bench::report::format_ratio;
/// assert_eq!(format_ratio(1.324), "1.32×");
/// assert_eq!(format_ratio(0.02541), "0.0254×");
/// assert_eq!(format_ratio(41.2), "41.2×");
/// ```
pub fn format_ratio(r: f64) -> String {
    format!("{}×", sig3(r))
}

/// Formats a ratio that a verdict compares with `limit`: as [`format_ratio`], with as many
/// more decimals as it takes (up to six) for the figure not to read as the limit itself when
/// it is not (2.003 against a limit of 2 would otherwise print as `2.00×` and be missed).
pub(super) fn format_ratio_against(r: f64, limit: f64) -> String {
    let short = format_ratio(r);
    if r == limit || !r.is_finite() || short != format_ratio(limit) {
        return short;
    }
    (3..=6)
        .map(|d| (format!("{r:.d$}"), format!("{limit:.d$}")))
        .find(|(a, b)| a != b)
        .map_or_else(|| format!("{r:.6}×"), |(a, _)| format!("{a}×"))
}

/// Three significant digits, no exponent.
fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let a = v.abs();
    let decimals = match a {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 || a == 0.0 => 2,
        a => (2 - a.log10().floor() as i32).clamp(2, 9) as usize,
    };
    format!("{v:.decimals$}")
}

pub(super) fn opt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), format_ratio)
}

/// `2026-11-23 18:40 UTC`.
pub fn format_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

pub(super) fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_453_260);
        assert_eq!(format_utc(t), "2026-11-23 17:01 UTC");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(format_utc(leap), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn significant_digits() {
        assert_eq!(format_ns(999.4), "999 ns");
        assert_eq!(format_ns(0.0), "0.00 ns");
        assert_eq!(format_rate(31_400_000.0), "31.4 M/s");
        assert_eq!(format_ratio(0.5), "0.500×");
        // Next to a limit, enough digits to tell which side it is on.
        assert_eq!(format_ratio_against(2.003, 2.0), "2.003×");
        assert_eq!(format_ratio_against(1.9996, 2.0), "1.9996×");
        assert_eq!(format_ratio_against(2.1, 2.0), "2.10×");
        assert_eq!(format_ratio_against(2.0, 2.0), "2.00×");
    }
}
