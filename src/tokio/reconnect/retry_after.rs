//! `Retry-After` (RFC 9110 §10.2.3): how long a server that answered 429 or 503 asks the
//! client to wait, as seconds or as an HTTP-date (§5.6.7, all three formats).

use crate::handshake::Response;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the response asks to wait, if it says. An HTTP-date is measured against the
/// response's own `Date` header when it has a valid one (so the two clocks' skew cancels),
/// else against `now`; a date in the past asks for no wait. `None` when there is no valid
/// `Retry-After`.
pub(super) fn retry_after(response: &Response, now: SystemTime) -> Option<Duration> {
    // RFC 9110 §10.2.3: "Retry-After = HTTP-date / delay-seconds"; "A delay-seconds value
    // is a non-negative decimal integer, representing time in seconds."
    let value = response.header("retry-after")?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds: longer than anyone will wait (the caller caps it).
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let now = unix_seconds(now);
    let reference = response
        .header("date")
        .and_then(|date| http_date(date.trim(), now))
        .unwrap_or(now);
    let at = http_date(value, reference)?;
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(reference)).unwrap_or(0),
    ))
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses an HTTP-date into Unix seconds. `reference` (Unix seconds) places the two-digit
/// year of the obsolete RFC 850 format.
///
/// RFC 9110 §5.6.7: "A recipient that parses a timestamp value in an HTTP field MUST
/// accept all three HTTP-date formats":
/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT`
/// (RFC 850) and `Sun Nov  6 08:49:37 1994` (ANSI C's asctime).
fn http_date(value: &str, reference: i64) -> Option<i64> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let (year, month, day, time) = match fields.as_slice() {
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => (
            number(year, 4)?,
            month_number(month)?,
            number(day, 2)?,
            *time,
        ),
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let year = two_digit_year(number(year, 2)?, reference);
            (year, month_number(month)?, number(day, 2)?, *time)
        }
        [_weekday, month, day, time, year] => {
            // date3 = month SP ( 2DIGIT / ( SP DIGIT ) ): a one-digit day is padded by a
            // space, which the split above has already eaten.
            let day = if day.len() == 1 {
                number(day, 1)?
            } else {
                number(day, 2)?
            };
            (number(year, 4)?, month_number(month)?, day, *time)
        }
        _ => return None,
    };
    let mut hms = time.split(':');
    let (h, m, s) = (
        number(hms.next()?, 2)?,
        number(hms.next()?, 2)?,
        number(hms.next()?, 2)?,
    );
    // RFC 9110 §5.6.7: hour 00-23, minute 00-59, second 00-60 (a leap second).
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<i64> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// RFC 9110 §5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses a
/// two-digit year, MUST interpret a timestamp that appears to be more than 50 years in the
/// future as representing the most recent year in the past that had the same last two
/// digits."
fn two_digit_year(yy: i64, reference: i64) -> i64 {
    let current = civil_year(reference);
    let mut year = current - current.rem_euclid(100) + yy;
    if year > current + 50 {
        year -= 100;
    }
    year
}

/// Month names are case-sensitive in HTTP-date (`%s"Jan"`).
fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as i64 + 1)
}

const fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, in eras of 400 years).
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Gregorian year of a Unix time, for placing two-digit years.
fn civil_year(unix: i64) -> i64 {
    // A year has 365 or 366 days: start from an estimate and walk to the right year.
    // Clamped to about ±11,000 years of 1970: only a broken clock goes further, and the
    // walk below stays short.
    let days = unix.div_euclid(86_400).clamp(-4_000_000, 4_000_000);
    let mut year = 1970 + days.div_euclid(365);
    while days_from_civil(year, 1, 1) > days {
        year -= 1;
    }
    while days_from_civil(year + 1, 1, 1) <= days {
        year += 1;
    }
    year
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 §5.6.7's example instant, in all three formats.
    const EXAMPLE: i64 = 784_111_777;

    #[test]
    fn rfc9110_5_6_7_all_three_formats() {
        let now = EXAMPLE;
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(EXAMPLE)
        );
        assert_eq!(
            http_date("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(EXAMPLE)
        );
        assert_eq!(http_date("Sun Nov  6 08:49:37 1994", now), Some(EXAMPLE));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(0));
        assert_eq!(
            http_date("Tue, 29 Feb 2000 23:59:60 GMT", now),
            Some(days_from_civil(2000, 3, 1) * 86_400)
        );
    }

    #[test]
    fn rfc9110_5_6_7_two_digit_years_are_never_50_years_ahead() {
        let in_2026 = days_from_civil(2026, 6, 1) * 86_400;
        let year_of = |text: &str| civil_year(http_date(text, in_2026).unwrap());
        assert_eq!(year_of("Monday, 01-Jan-70 00:00:00 GMT"), 2070);
        assert_eq!(year_of("Monday, 01-Jan-77 00:00:00 GMT"), 1977);
        assert_eq!(year_of("Monday, 01-Jan-26 00:00:00 GMT"), 2026);
    }

    #[test]
    fn rfc9110_5_6_7_malformed_dates_are_refused() {
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun Nov 06 08:49:37 94",
            "tomorrow",
            "-5",
        ] {
            assert_eq!(http_date(bad, EXAMPLE), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_year_matches_days_from_civil() {
        for year in [1600, 1969, 1970, 1999, 2000, 2024, 2100, 9999] {
            let start = days_from_civil(year, 1, 1) * 86_400;
            assert_eq!(civil_year(start), year);
            assert_eq!(civil_year(start - 1), year - 1);
        }
    }
}
