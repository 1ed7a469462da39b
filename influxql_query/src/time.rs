//! Time in conditions: the literals InfluxQL compares `time` with, and the
//! range a condition's `time` comparisons leave.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use influxql::{BinaryOp, Expr, Literal};
use services::QueryError;

use crate::invalid;

/// An inclusive time range in nanoseconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TimeRange {
    pub(crate) start: Option<i64>,
    pub(crate) end: Option<i64>,
}

impl TimeRange {
    /// The range both allow.
    pub(crate) fn intersect(self, other: TimeRange) -> TimeRange {
        TimeRange {
            start: match (self.start, other.start) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            end: match (self.end, other.end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!((self.start, self.end), (Some(s), Some(e)) if s > e)
    }

    pub(crate) fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// Whether `e` is the `time` column.
pub(crate) fn is_time(e: &Expr) -> bool {
    matches!(e.unparen(), Expr::VarRef { name, .. } if name.eq_ignore_ascii_case("time"))
}

/// Parses a time string as InfluxQL accepts it: RFC 3339, or
/// `YYYY-MM-DD[ HH:MM:SS[.fff]]` in UTC.
pub(crate) fn parse_time_string(s: &str) -> Result<i64, QueryError> {
    let bad = || invalid(format!("invalid time literal: '{s}'"));
    let nanos = |dt: NaiveDateTime| dt.and_utc().timestamp_nanos_opt().ok_or_else(bad);
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return dt.timestamp_nanos_opt().ok_or_else(bad);
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return nanos(dt);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return nanos(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?);
    }
    Err(bad())
}

/// Evaluates the other side of a `time` comparison to nanoseconds.
pub(crate) fn eval_time(e: &Expr, now_ns: i64) -> Result<i64, QueryError> {
    match e.unparen() {
        Expr::Literal(Literal::String(s)) => parse_time_string(s),
        Expr::Literal(Literal::Integer(i)) => Ok(*i),
        Expr::Literal(Literal::Duration(d)) => Ok(*d),
        Expr::Literal(Literal::Float(f)) => Ok(*f as i64),
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now_ns),
        Expr::Binary { op, lhs, rhs } if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let l = eval_time(lhs, now_ns)?;
            let r = eval_time(rhs, now_ns)?;
            let v = if *op == BinaryOp::Add {
                l.checked_add(r)
            } else {
                l.checked_sub(r)
            };
            v.ok_or_else(|| invalid("time overflows"))
        }
        other => Err(invalid(format!(
            "invalid operation: time and {} are not compatible",
            describe(other)
        ))),
    }
}

fn describe(e: &Expr) -> String {
    match e {
        Expr::Literal(Literal::Boolean(_)) => "*influxql.BooleanLiteral".to_string(),
        Expr::VarRef { .. } => "*influxql.VarRef".to_string(),
        other => other.to_string(),
    }
}

/// Splits a condition into its time range and the rest. `time` may only
/// be compared in top-level `AND`s, as InfluxDB requires.
pub(crate) fn split_condition(
    cond: Option<&Expr>,
    now_ns: i64,
) -> Result<(TimeRange, Option<Expr>), QueryError> {
    let Some(cond) = cond else {
        return Ok((TimeRange::default(), None));
    };
    let mut range = TimeRange::default();
    let rest = strip_time(cond, now_ns, &mut range, true)?;
    Ok((range, rest))
}

fn strip_time(
    e: &Expr,
    now_ns: i64,
    range: &mut TimeRange,
    top: bool,
) -> Result<Option<Expr>, QueryError> {
    match e {
        Expr::Paren(inner) => strip_time(inner, now_ns, range, top),
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            let l = strip_time(lhs, now_ns, range, top)?;
            let r = strip_time(rhs, now_ns, range, top)?;
            Ok(match (l, r) {
                (Some(l), Some(r)) => Some(Expr::Binary {
                    op: BinaryOp::And,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                }),
                (l, r) => l.or(r),
            })
        }
        Expr::Binary { op, lhs, rhs } if op.is_comparison() && (is_time(lhs) || is_time(rhs)) => {
            if !top {
                return Err(invalid(
                    "invalid time condition: time may not be used inside OR",
                ));
            }
            let (op, other) = if is_time(lhs) {
                (*op, rhs.as_ref())
            } else {
                (flip(*op), lhs.as_ref())
            };
            let t = eval_time(other, now_ns)?;
            let bound = match op {
                BinaryOp::Gt => TimeRange {
                    start: Some(t.saturating_add(1)),
                    end: None,
                },
                BinaryOp::GtEq => TimeRange {
                    start: Some(t),
                    end: None,
                },
                BinaryOp::Lt => TimeRange {
                    start: None,
                    end: Some(t.saturating_sub(1)),
                },
                BinaryOp::LtEq => TimeRange {
                    start: None,
                    end: Some(t),
                },
                BinaryOp::Eq => TimeRange {
                    start: Some(t),
                    end: Some(t),
                },
                _ => {
                    return Err(invalid(format!(
                        "invalid time comparison operator: {}",
                        op.symbol()
                    )));
                }
            };
            *range = range.intersect(bound);
            Ok(None)
        }
        Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => {
            let mut ignored = TimeRange::default();
            strip_time(lhs, now_ns, &mut ignored, false)?;
            strip_time(rhs, now_ns, &mut ignored, false)?;
            Ok(Some(e.clone()))
        }
        other => Ok(Some(other.clone())),
    }
}

/// `a op b` as `b op' a`.
pub(crate) fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_conditions() {
        let e = influxql::parse_expr(
            "host = 'a' AND time >= '2023-11-14T22:13:20Z' AND time < 1700000010000000000",
        )
        .unwrap();
        let (r, rest) = split_condition(Some(&e), 0).unwrap();
        assert_eq!(r.start, Some(1_700_000_000_000_000_000));
        assert_eq!(r.end, Some(1_700_000_009_999_999_999));
        assert_eq!(rest.unwrap().to_string(), "host = 'a'");
        let e = influxql::parse_expr("time > now() - 1h").unwrap();
        let (r, rest) = split_condition(Some(&e), 7_200_000_000_000).unwrap();
        assert_eq!(r.start, Some(3_600_000_000_001));
        assert!(rest.is_none());
        let e = influxql::parse_expr("time >= 1700000000000ms").unwrap();
        assert_eq!(
            split_condition(Some(&e), 0).unwrap().0.start,
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time_string("2023-11-14").unwrap(),
            1_699_920_000_000_000_000
        );
        let e = influxql::parse_expr("a = 1 OR time > 0").unwrap();
        assert!(split_condition(Some(&e), 0).is_err());
    }
}
