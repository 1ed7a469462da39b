//! Duration literals: `10s`, `1h30m`, `500ms`, `2w`.

use crate::ParseError;

/// Nanoseconds per unit, longest unit names first so `ms` wins over `m`.
const UNITS: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("u", 1_000),
    ("µ", 1_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
];

/// Parses a duration literal into nanoseconds.
pub fn parse(text: &str) -> Result<i64, ParseError> {
    let invalid = || ParseError("invalid duration".to_string());
    let mut rest = text;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, scale) = UNITS
            .iter()
            .find(|(u, _)| {
                rest.starts_with(u) && !rest[u.len()..].starts_with(|c: char| c.is_alphabetic())
            })
            .ok_or_else(invalid)?;
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| ParseError("overflowed duration".to_string()))?;
    }
    Ok(total)
}

/// Formats nanoseconds as InfluxDB writes a duration (`1h0m0s`, `168h0m0s`, `0s`).
pub fn format(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let secs = ns / 1_000_000_000;
    let rem = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac = if rem == 0 {
        String::new()
    } else {
        format!(".{:09}", rem).trim_end_matches('0').to_string()
    };
    if h > 0 {
        format!("{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{s}{frac}s")
    }
}
