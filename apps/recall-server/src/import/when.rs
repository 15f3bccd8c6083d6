//! `--since` and `--until`: a date, a date and time, or a duration ago.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// A point in time as unix seconds, from:
///
/// * a duration before `now`: a number and a unit, `s`, `m`, `h`, `d` or
///   `w` (`90d`, `12h`);
/// * a date, `2026-01-31`, in UTC: its start, or with `end_of_day` (for
///   `--until`) its end, so that `--until 2026-01-31` includes that day;
/// * an RFC 3339 date and time, `2026-01-31T08:00:00Z`;
/// * unix seconds, `1769817600`.
///
/// ```
/// use recall_server::import::parse_when;
/// let now = 1_769_904_000; // 2026-02-01T00:00:00Z
/// assert_eq!(parse_when("1d", now, false), Ok(now - 86_400));
/// assert_eq!(parse_when("2026-01-31", now, false), Ok(1_769_817_600));
/// assert_eq!(parse_when("2026-01-31", now, true), Ok(1_769_904_000));
/// assert!(parse_when("yesterday", now, false).is_err());
/// ```
///
/// # Errors
/// A text of none of these forms, or a duration too long, with what is
/// allowed.
pub fn parse_when(text: &str, now: i64, end_of_day: bool) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "got {text:?}; allowed: a date (2026-01-31), a date and time (2026-01-31T08:00:00Z), unix seconds, or a duration ago such as 90d, 12h, 30m, 2w"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|_| invalid());
    }
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic) {
        let number = &text[..text.len() - 1];
        if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            let per: i64 = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(invalid()),
            };
            return number
                .parse::<i64>()
                .ok()
                .and_then(|n| n.checked_mul(per))
                .and_then(|secs| now.checked_sub(secs))
                .ok_or_else(invalid);
        }
    }
    if let Ok(date) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let start = date.midnight().assume_utc().unix_timestamp();
        return Ok(if end_of_day { start + 86_400 } else { start });
    }
    time::OffsetDateTime::parse(text, &Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| invalid())
}
