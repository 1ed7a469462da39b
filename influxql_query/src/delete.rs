//! The condition of an InfluxQL `DELETE`: a time range and tag
//! comparisons, as InfluxDB 1.x allows them there.

use catalog::{TagCondition, TagOp};
use influxql::{BinaryOp, Expr, Literal};
use services::QueryError;

use crate::invalid;
use crate::time::split_condition;

/// What a `DELETE ... WHERE` selects: rows with `time` in `[start, end]`
/// (unbounded sides `None`) whose tags meet every comparison of one of
/// `alternatives` (no alternatives: every row in the range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteCondition {
    /// The first time deleted.
    pub start: Option<i64>,
    /// The last time deleted.
    pub end: Option<i64>,
    /// The tag comparisons, as `OR`s of `AND`s.
    pub alternatives: Vec<Vec<TagCondition>>,
}

/// Alternatives past this many (an `AND` of long `OR`s multiplies them)
/// are refused.
const MAX_ALTERNATIVES: usize = 100;

/// Splits a `DELETE` condition into its time range (`time` compared at the
/// top level, with `AND`) and its tag comparisons: `=`, `!=` or `<>` with
/// a string, `=~` or `!~` with a regex, joined by `AND`, `OR` and
/// parentheses. A comparison with a number or a boolean is on a field,
/// which InfluxDB 1.x refuses with the same words. Anything else is an
/// error, never a wider delete.
pub fn delete_condition(cond: Option<&Expr>, now_ns: i64) -> Result<DeleteCondition, QueryError> {
    let (range, rest) = split_condition(cond, now_ns)?;
    let alternatives = match rest {
        Some(rest) => alternatives(&rest)?,
        None => Vec::new(),
    };
    Ok(DeleteCondition {
        start: range.start,
        end: range.end,
        alternatives,
    })
}

/// `e` in disjunctive normal form.
fn alternatives(e: &Expr) -> Result<Vec<Vec<TagCondition>>, QueryError> {
    match e.unparen() {
        Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => {
            let mut out = alternatives(lhs)?;
            out.extend(alternatives(rhs)?);
            limited(out)
        }
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            let (l, r) = (alternatives(lhs)?, alternatives(rhs)?);
            let mut out = Vec::with_capacity(l.len() * r.len());
            for a in &l {
                for b in &r {
                    out.push(a.iter().chain(b).cloned().collect());
                    if out.len() > MAX_ALTERNATIVES {
                        return limited(out);
                    }
                }
            }
            Ok(out)
        }
        Expr::Binary { op, lhs, rhs } => {
            let (name, other, op) = match (lhs.unparen(), rhs.unparen()) {
                (Expr::VarRef { name, .. }, other) => (name, other, *op),
                (other, Expr::VarRef { name, .. }) => (name, other, crate::time::flip(*op)),
                _ => return Err(unsupported(e)),
            };
            let (op, value) = match (op, other) {
                (BinaryOp::Eq, Expr::Literal(Literal::String(v))) => (TagOp::Eq, v),
                (BinaryOp::NotEq, Expr::Literal(Literal::String(v))) => (TagOp::NotEq, v),
                (BinaryOp::RegexMatch, Expr::Regex(r)) => (TagOp::Regex, r),
                (BinaryOp::RegexNotMatch, Expr::Regex(r)) => (TagOp::NotRegex, r),
                (
                    _,
                    Expr::Literal(
                        Literal::Integer(_)
                        | Literal::Unsigned(_)
                        | Literal::Float(_)
                        | Literal::Boolean(_),
                    ),
                ) => {
                    return Err(invalid(
                        "fields not supported in WHERE clause during deletion",
                    ));
                }
                _ => return Err(unsupported(e)),
            };
            if matches!(op, TagOp::Regex | TagOp::NotRegex) {
                regex::Regex::new(value)
                    .map_err(|err| invalid(format!("invalid regex /{value}/: {err}")))?;
            }
            Ok(vec![vec![TagCondition {
                tag: name.clone(),
                op,
                value: value.clone(),
            }]])
        }
        _ => Err(unsupported(e)),
    }
}

fn limited(v: Vec<Vec<TagCondition>>) -> Result<Vec<Vec<TagCondition>>, QueryError> {
    if v.len() > MAX_ALTERNATIVES {
        return Err(invalid(format!(
            "the DELETE condition has more than {MAX_ALTERNATIVES} alternatives; split it into several DELETEs"
        )));
    }
    Ok(v)
}

fn unsupported(e: &Expr) -> QueryError {
    invalid(format!(
        "DELETE supports time ranges and tag comparisons (=, !=, =~, !~ joined by AND and OR), not {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(q: &str) -> Result<DeleteCondition, QueryError> {
        let stmts = influxql::parse(q).unwrap();
        let influxql::Statement::Delete { condition, .. } = &stmts[0] else {
            panic!("not a delete: {q}");
        };
        delete_condition(condition.as_ref(), 1_000)
    }

    fn c(tag: &str, op: TagOp, value: &str) -> TagCondition {
        TagCondition {
            tag: tag.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn time_and_tags() {
        let d =
            cond("DELETE FROM cpu WHERE time >= 10 AND time < 20 AND host = 'a' AND (dc <> 'x')")
                .unwrap();
        assert_eq!((d.start, d.end), (Some(10), Some(19)));
        assert_eq!(
            d.alternatives,
            vec![vec![c("host", TagOp::Eq, "a"), c("dc", TagOp::NotEq, "x")]]
        );
        let d = cond("DELETE WHERE time < now()").unwrap();
        assert_eq!((d.start, d.end, d.alternatives.len()), (None, Some(999), 0));
        let d = cond("DELETE FROM cpu WHERE (host = 'a' OR host =~ /^b/) AND dc !~ /x/").unwrap();
        assert_eq!(
            d.alternatives,
            vec![
                vec![c("host", TagOp::Eq, "a"), c("dc", TagOp::NotRegex, "x")],
                vec![c("host", TagOp::Regex, "^b"), c("dc", TagOp::NotRegex, "x")],
            ]
        );
        let field = cond("DELETE FROM cpu WHERE value > 1")
            .unwrap_err()
            .to_string();
        assert!(field.contains("fields not supported"), "{field}");
        assert!(cond("DELETE FROM cpu WHERE host = 'a' OR time < 5").is_err());
        assert!(cond("DELETE FROM cpu WHERE host > 'a'").is_err());
    }
}
