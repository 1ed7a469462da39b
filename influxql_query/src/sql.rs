//! The SQL the planner sends to DataFusion: the scan of one measurement,
//! with the time range and the rest of the `WHERE` clause as predicates so
//! that file pruning and filter pushdown apply.

use catalog::{ColumnKind, FieldType, TableSchema};
use influxql::{BinaryOp, Expr, Literal};
use regex::Regex;
use services::QueryError;
use services::influxql::Value;

use crate::eval::{binary, literal};
use crate::invalid;
use crate::time::TimeRange;

pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `SELECT time, <columns> FROM <table> WHERE <range> AND <condition>`.
pub(crate) fn scan(
    table: &str,
    columns: &[String],
    range: TimeRange,
    condition: Option<&str>,
) -> String {
    let mut sql = String::from("SELECT \"time\"");
    for c in columns {
        sql.push_str(", ");
        sql.push_str(&ident(c));
    }
    sql.push_str(" FROM ");
    sql.push_str(&ident(table));
    let mut predicates = Vec::new();
    if let Some(s) = range.start {
        predicates.push(format!("\"time\" >= to_timestamp_nanos({s})"));
    }
    if let Some(e) = range.end {
        predicates.push(format!("\"time\" <= to_timestamp_nanos({e})"));
    }
    if let Some(c) = condition {
        predicates.push(format!("({c})"));
    }
    if !predicates.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&predicates.join(" AND "));
    }
    sql
}

/// What a name is in a table.
enum Role {
    Tag,
    Field(FieldType),
    Unknown,
}

fn role(table: &TableSchema, name: &str) -> Role {
    match table.column(name).map(|c| c.kind) {
        Some(ColumnKind::Tag) => Role::Tag,
        Some(ColumnKind::Field(t)) => Role::Field(t),
        _ => Role::Unknown,
    }
}

/// A condition (without its `time` comparisons) as a SQL predicate over
/// `table`, with InfluxDB's semantics: a missing tag equals `''`, and a
/// comparison of values of different types is false.
pub(crate) fn condition(e: &Expr, table: &TableSchema) -> Result<String, QueryError> {
    match e {
        Expr::Paren(inner) => condition(inner, table),
        Expr::Binary {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            lhs,
            rhs,
        } => Ok(format!(
            "({} {} {})",
            condition(lhs, table)?,
            op.symbol(),
            condition(rhs, table)?
        )),
        Expr::Binary { op, lhs, rhs } if op.is_comparison() => comparison(*op, lhs, rhs, table),
        Expr::Literal(Literal::Boolean(b)) => Ok(b.to_string()),
        Expr::VarRef { name, .. } => match role(table, name) {
            Role::Field(FieldType::Boolean) => Ok(ident(name)),
            _ => Ok("false".to_string()),
        },
        other => Err(invalid(format!("invalid condition: {other}"))),
    }
}

fn comparison(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    table: &TableSchema,
) -> Result<String, QueryError> {
    let (lhs, rhs) = (lhs.unparen(), rhs.unparen());
    // Regex matches.
    if matches!(op, BinaryOp::RegexMatch | BinaryOp::RegexNotMatch) {
        let Expr::Regex(pattern) = rhs else {
            return Err(invalid(format!(
                "invalid operation: {lhs} {} {rhs}",
                op.symbol()
            )));
        };
        let re = Regex::new(pattern).map_err(|e| invalid(format!("invalid regex: {e}")))?;
        let sql_op = if op == BinaryOp::RegexMatch {
            "~"
        } else {
            "!~"
        };
        let Expr::VarRef { name, .. } = lhs else {
            return Ok("false".to_string());
        };
        let matched_by_empty = re.is_match("");
        return Ok(match role(table, name) {
            Role::Tag => {
                let test = format!("{} {sql_op} {}", ident(name), string(pattern));
                // A missing tag is '' for InfluxDB.
                let null_matches = matched_by_empty == (op == BinaryOp::RegexMatch);
                if null_matches {
                    format!("({} IS NULL OR {test})", ident(name))
                } else {
                    test
                }
            }
            Role::Field(FieldType::String) => {
                format!("{} {sql_op} {}", ident(name), string(pattern))
            }
            Role::Field(_) => "false".to_string(),
            Role::Unknown => (matched_by_empty == (op == BinaryOp::RegexMatch)).to_string(),
        });
    }
    // `name op literal` and `literal op name`.
    let (var, lit, op) = match (lhs, rhs) {
        (Expr::VarRef { name, .. }, Expr::Literal(l)) => (Some(name), Some(l), op),
        (Expr::Literal(l), Expr::VarRef { name, .. }) => {
            (Some(name), Some(l), crate::time::flip(op))
        }
        _ => (None, None, op),
    };
    if let (Some(name), Some(lit)) = (var, lit) {
        return Ok(match role(table, name) {
            Role::Tag => match lit {
                Literal::String(s) => tag_comparison(name, op, s),
                _ => "false".to_string(),
            },
            Role::Field(t) => {
                if compatible(t, lit) {
                    format!("{} {} {}", ident(name), sql_op(op), literal_sql(lit))
                } else {
                    "false".to_string()
                }
            }
            Role::Unknown => {
                let v = binary(op, &Value::String(String::new()), &literal(lit));
                matches!(v, Value::Boolean(true)).to_string()
            }
        });
    }
    // Anything else: both sides as SQL expressions.
    Ok(format!(
        "{} {} {}",
        value_sql(lhs, table)?,
        sql_op(op),
        value_sql(rhs, table)?
    ))
}

fn tag_comparison(name: &str, op: BinaryOp, value: &str) -> String {
    let col = ident(name);
    let v = string(value);
    match op {
        BinaryOp::Eq if value.is_empty() => format!("({col} IS NULL OR {col} = '')"),
        BinaryOp::Eq => format!("{col} = {v}"),
        BinaryOp::NotEq if value.is_empty() => format!("({col} IS NOT NULL AND {col} <> '')"),
        BinaryOp::NotEq => format!("({col} IS NULL OR {col} <> {v})"),
        other => format!("COALESCE({col}, '') {} {v}", sql_op(other)),
    }
}

fn compatible(t: FieldType, lit: &Literal) -> bool {
    match lit {
        Literal::Integer(_) | Literal::Unsigned(_) | Literal::Float(_) | Literal::Duration(_) => {
            matches!(
                t,
                FieldType::Float | FieldType::Integer | FieldType::UInteger
            )
        }
        Literal::String(_) => t == FieldType::String,
        Literal::Boolean(_) => t == FieldType::Boolean,
    }
}

fn sql_op(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::NotEq => "<>",
        BinaryOp::BitAnd => "&",
        BinaryOp::BitOr => "|",
        BinaryOp::BitXor => "#",
        other => other.symbol(),
    }
}

fn literal_sql(l: &Literal) -> String {
    match l {
        Literal::Integer(i) => i.to_string(),
        Literal::Unsigned(u) => u.to_string(),
        Literal::Float(f) => {
            if f.is_finite() {
                format!("CAST({f:?} AS DOUBLE)")
            } else {
                "CAST('NaN' AS DOUBLE)".to_string()
            }
        }
        Literal::String(s) => string(s),
        Literal::Boolean(b) => b.to_string(),
        Literal::Duration(d) => d.to_string(),
    }
}

fn value_sql(e: &Expr, table: &TableSchema) -> Result<String, QueryError> {
    Ok(match e {
        Expr::VarRef { name, .. } => match role(table, name) {
            Role::Tag => format!("COALESCE({}, '')", ident(name)),
            Role::Field(_) => ident(name),
            Role::Unknown => "NULL".to_string(),
        },
        Expr::Literal(l) => literal_sql(l),
        Expr::Paren(inner) => format!("({})", value_sql(inner, table)?),
        Expr::Binary { op, lhs, rhs } if !op.is_comparison() => {
            let l = value_sql(lhs, table)?;
            let r = value_sql(rhs, table)?;
            if *op == BinaryOp::Div {
                format!("(CAST({l} AS DOUBLE) / NULLIF(CAST({r} AS DOUBLE), 0))")
            } else {
                format!("({l} {} {r})", sql_op(*op))
            }
        }
        other => return Err(invalid(format!("invalid condition: {other}"))),
    })
}

/// Replaces `$name` placeholders with their values.
pub(crate) fn bind(e: &Expr, params: Option<&services::Params>) -> Result<Expr, QueryError> {
    Ok(match e {
        Expr::BindParam(name) => {
            let v = params
                .and_then(|p| p.get(name).or_else(|| p.get(&format!("${name}"))))
                .ok_or_else(|| invalid(format!("missing parameter: {name}")))?;
            match v {
                serde_json::Value::String(s) => Expr::Literal(Literal::String(s.clone())),
                serde_json::Value::Bool(b) => Expr::Literal(Literal::Boolean(*b)),
                serde_json::Value::Number(n) => Expr::Literal(if let Some(i) = n.as_i64() {
                    Literal::Integer(i)
                } else if let Some(u) = n.as_u64() {
                    Literal::Unsigned(u)
                } else {
                    Literal::Float(n.as_f64().unwrap_or(0.0))
                }),
                _ => {
                    return Err(invalid(format!(
                        "parameter {name} must be a string, number or boolean"
                    )));
                }
            }
        }
        Expr::Binary { op, lhs, rhs } => Expr::Binary {
            op: *op,
            lhs: Box::new(bind(lhs, params)?),
            rhs: Box::new(bind(rhs, params)?),
        },
        Expr::Paren(inner) => Expr::Paren(Box::new(bind(inner, params)?)),
        Expr::Call { name, args } => Expr::Call {
            name: name.clone(),
            args: args
                .iter()
                .map(|a| bind(a, params))
                .collect::<Result<_, _>>()?,
        },
        other => other.clone(),
    })
}
