//! Values and row-level expressions: arithmetic, math functions and
//! conditions, with InfluxQL's typing (integer division gives a float,
//! a missing tag is the empty string).

use std::cmp::Ordering;

use influxql::{BinaryOp, Expr, Literal};
use regex::Regex;
use services::influxql::Value;

/// The math functions that apply to each row.
pub(crate) const MATH_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "round", "sqrt", "pow", "exp", "ln", "log", "log2", "log10", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2",
];

/// Where a row-level expression reads its variables.
pub(crate) trait Vars {
    /// The value of a field or tag; [`Value::Null`] when absent.
    fn var(&self, name: &str) -> Value;
}

pub(crate) fn literal(l: &Literal) -> Value {
    match l {
        Literal::Integer(i) => Value::Integer(*i),
        Literal::Unsigned(u) => Value::Unsigned(*u),
        Literal::Float(f) => Value::Float(*f),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Boolean(b) => Value::Boolean(*b),
        Literal::Duration(d) => Value::Integer(*d),
    }
}

pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        Value::Unsigned(u) => Some(*u as f64),
        _ => None,
    }
}

/// Evaluates a row-level expression. Aggregates are not row-level: the
/// caller substitutes them first (see `select`), so a call here is a math
/// function.
pub(crate) fn eval(e: &Expr, vars: &dyn Vars) -> Value {
    match e {
        Expr::VarRef { name, .. } => vars.var(name),
        Expr::Literal(l) => literal(l),
        Expr::Paren(inner) => eval(inner, vars),
        Expr::Binary { op, lhs, rhs } => binary(*op, &eval(lhs, vars), &eval(rhs, vars)),
        Expr::Call { name, args } => {
            let values: Vec<Value> = args.iter().map(|a| eval(a, vars)).collect();
            math(name, &values)
        }
        _ => Value::Null,
    }
}

/// A math function of already evaluated arguments.
pub(crate) fn math(name: &str, args: &[Value]) -> Value {
    let Some(first) = args.first() else {
        return Value::Null;
    };
    match (name, first) {
        (_, Value::Null) => return Value::Null,
        ("abs", Value::Integer(i)) => return Value::Integer(i.wrapping_abs()),
        ("abs" | "ceil" | "floor" | "round", Value::Unsigned(_))
        | ("ceil" | "floor" | "round", Value::Integer(_)) => return first.clone(),
        _ => {}
    }
    let Some(x) = as_f64(first) else {
        return Value::Null;
    };
    let second = || args.get(1).and_then(as_f64);
    let y = match name {
        "abs" => x.abs(),
        "ceil" => x.ceil(),
        "floor" => x.floor(),
        "round" => x.round(),
        "sqrt" => x.sqrt(),
        "exp" => x.exp(),
        "ln" => x.ln(),
        "log2" => x.log2(),
        "log10" => x.log10(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "pow" => match second() {
            Some(p) => x.powf(p),
            None => return Value::Null,
        },
        "log" => match second() {
            Some(b) => x.ln() / b.ln(),
            None => return Value::Null,
        },
        "atan2" => match second() {
            Some(b) => x.atan2(b),
            None => return Value::Null,
        },
        _ => return Value::Null,
    };
    if y.is_nan() {
        return Value::Null;
    }
    Value::Float(y)
}

/// `lhs op rhs` over values.
pub(crate) fn binary(op: BinaryOp, lhs: &Value, rhs: &Value) -> Value {
    use BinaryOp::*;
    use Value::*;
    if lhs.is_null() || rhs.is_null() {
        return Null;
    }
    if op.is_comparison() {
        return compare(op, lhs, rhs).map(Boolean).unwrap_or(Null);
    }
    match (op, lhs, rhs) {
        (And, Boolean(a), Boolean(b)) | (BitAnd, Boolean(a), Boolean(b)) => Boolean(*a && *b),
        (Or, Boolean(a), Boolean(b)) | (BitOr, Boolean(a), Boolean(b)) => Boolean(*a || *b),
        (BitXor, Boolean(a), Boolean(b)) => Boolean(*a ^ *b),
        (Add, Integer(a), Integer(b)) => Integer(a.wrapping_add(*b)),
        (Sub, Integer(a), Integer(b)) => Integer(a.wrapping_sub(*b)),
        (Mul, Integer(a), Integer(b)) => Integer(a.wrapping_mul(*b)),
        (Mod, Integer(a), Integer(b)) => Integer(if *b == 0 { 0 } else { a.wrapping_rem(*b) }),
        (BitAnd, Integer(a), Integer(b)) => Integer(a & b),
        (BitOr, Integer(a), Integer(b)) => Integer(a | b),
        (BitXor, Integer(a), Integer(b)) => Integer(a ^ b),
        (Add, Unsigned(a), Unsigned(b)) => Unsigned(a.wrapping_add(*b)),
        (Sub, Unsigned(a), Unsigned(b)) => Unsigned(a.wrapping_sub(*b)),
        (Mul, Unsigned(a), Unsigned(b)) => Unsigned(a.wrapping_mul(*b)),
        (Mod, Unsigned(a), Unsigned(b)) => Unsigned(if *b == 0 { 0 } else { a % b }),
        (BitAnd, Unsigned(a), Unsigned(b)) => Unsigned(a & b),
        (BitOr, Unsigned(a), Unsigned(b)) => Unsigned(a | b),
        (BitXor, Unsigned(a), Unsigned(b)) => Unsigned(a ^ b),
        _ => {
            let (Some(a), Some(b)) = (as_f64(lhs), as_f64(rhs)) else {
                return Null;
            };
            match op {
                Add => Float(a + b),
                Sub => Float(a - b),
                Mul => Float(a * b),
                // InfluxQL divides by zero to zero.
                Div => Float(if b == 0.0 { 0.0 } else { a / b }),
                Mod => Float(if b == 0.0 { 0.0 } else { a % b }),
                _ => Null,
            }
        }
    }
}

fn order(lhs: &Value, rhs: &Value) -> Option<Ordering> {
    use Value::*;
    match (lhs, rhs) {
        (String(a), String(b)) => Some(a.cmp(b)),
        (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
        (Integer(a), Integer(b)) => Some(a.cmp(b)),
        (Unsigned(a), Unsigned(b)) => Some(a.cmp(b)),
        _ => as_f64(lhs)?.partial_cmp(&as_f64(rhs)?),
    }
}

fn compare(op: BinaryOp, lhs: &Value, rhs: &Value) -> Option<bool> {
    let o = order(lhs, rhs);
    Some(match op {
        BinaryOp::Eq => o == Some(Ordering::Equal),
        BinaryOp::NotEq => o != Some(Ordering::Equal),
        BinaryOp::Lt => o? == Ordering::Less,
        BinaryOp::LtEq => o? != Ordering::Greater,
        BinaryOp::Gt => o? == Ordering::Greater,
        BinaryOp::GtEq => o? != Ordering::Less,
        _ => return None,
    })
}

/// Orders values for `max`, `min`, `top`, sorting: numbers by value,
/// then strings, then booleans.
pub(crate) fn total_order(a: &Value, b: &Value) -> Ordering {
    order(a, b).unwrap_or(Ordering::Equal)
}

/// Evaluates a condition over a row where tags are `tags` (absent tags
/// are the empty string, as in InfluxDB). Used where SQL does not see the
/// rows: the rows of a subquery.
pub(crate) fn matches(e: &Expr, vars: &dyn Vars, is_tag: &dyn Fn(&str) -> bool) -> bool {
    match e {
        Expr::Paren(inner) => matches(inner, vars, is_tag),
        Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => matches(lhs, vars, is_tag) && matches(rhs, vars, is_tag),
        Expr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => matches(lhs, vars, is_tag) || matches(rhs, vars, is_tag),
        Expr::Binary { op, lhs, rhs }
            if matches!(op, BinaryOp::RegexMatch | BinaryOp::RegexNotMatch) =>
        {
            let Expr::Regex(pattern) = rhs.unparen() else {
                return false;
            };
            let Ok(re) = Regex::new(pattern) else {
                return false;
            };
            let text = match side(lhs, vars, is_tag) {
                Value::String(s) => s,
                _ => return false,
            };
            re.is_match(&text) == (*op == BinaryOp::RegexMatch)
        }
        Expr::Binary { op, lhs, rhs } if op.is_comparison() => {
            let l = side(lhs, vars, is_tag);
            let r = side(rhs, vars, is_tag);
            matches!(binary(*op, &l, &r), Value::Boolean(true))
        }
        Expr::Literal(Literal::Boolean(b)) => *b,
        _ => false,
    }
}

fn side(e: &Expr, vars: &dyn Vars, is_tag: &dyn Fn(&str) -> bool) -> Value {
    match e.unparen() {
        Expr::VarRef { name, .. } => match vars.var(name) {
            Value::Null if is_tag(name) => Value::String(String::new()),
            v => v,
        },
        other => eval(other, vars),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn influxql_arithmetic() {
        assert_eq!(
            binary(BinaryOp::Div, &Value::Integer(7), &Value::Integer(2)),
            Value::Float(3.5)
        );
        assert_eq!(
            binary(BinaryOp::Add, &Value::Integer(7), &Value::Integer(2)),
            Value::Integer(9)
        );
        assert_eq!(
            binary(BinaryOp::Div, &Value::Float(1.0), &Value::Integer(0)),
            Value::Float(0.0)
        );
        assert_eq!(math("round", &[Value::Float(2.5)]), Value::Float(3.0));
        assert_eq!(math("abs", &[Value::Integer(-2)]), Value::Integer(2));
        assert_eq!(math("sqrt", &[Value::Float(-1.0)]), Value::Null);
    }
}
