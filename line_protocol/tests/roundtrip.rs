//! Property tests of the line protocol parser: a point written with the
//! escaping rules of InfluxDB's line protocol (commas, spaces and `=` in
//! names, quotes and backslashes in string fields) parses back to the same
//! measurement, tags, fields and timestamp.

#![allow(clippy::unwrap_used)]

use line_protocol::{FieldValue, parse_line};
use proptest::prelude::*;

/// A name: letters, digits, punctuation and the characters that need
/// escaping, not starting with `#` (a comment line). Backslashes are left
/// out: line protocol does not escape them in names, so a name ending in
/// one cannot round-trip.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ ,=\"'.:;é日-]{1,12}".prop_filter("not a comment", |s| !s.starts_with('#'))
}

fn escape(s: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
enum Value {
    F(f64),
    I(i64),
    U(u64),
    S(String),
    B(bool),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::F),
        any::<i64>().prop_map(Value::I),
        any::<u64>().prop_map(Value::U),
        "[a-zA-Z0-9 ,=\"\\\\'é]{0,16}".prop_map(Value::S),
        any::<bool>().prop_map(Value::B),
    ]
}

fn write(v: &Value) -> String {
    match v {
        Value::F(f) => format!("{f:?}"),
        Value::I(i) => format!("{i}i"),
        Value::U(u) => format!("{u}u"),
        Value::S(s) => format!("\"{}\"", escape(s, &['"', '\\'])),
        Value::B(b) => b.to_string(),
    }
}

fn same(parsed: &FieldValue<'_>, v: &Value) -> bool {
    match (parsed, v) {
        (FieldValue::F64(a), Value::F(b)) => a == b,
        (FieldValue::I64(a), Value::I(b)) => a == b,
        (FieldValue::U64(a), Value::U(b)) => a == b,
        (FieldValue::String(a), Value::S(b)) => a == b,
        (FieldValue::Bool(a), Value::B(b)) => a == b,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn escaped_points_parse_back_to_themselves(
        measurement in name(),
        tags in proptest::collection::vec((name(), name()), 0..4),
        fields in proptest::collection::vec((name(), value()), 1..5),
        timestamp in proptest::option::of(any::<i64>()),
    ) {
        // A column is a tag or a field, once: the parser refuses the rest.
        let mut keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str())
            .chain(fields.iter().map(|(k, _)| k.as_str()))
            .collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        prop_assume!(keys.len() == all);
        let mut line = escape(&measurement, &[',', ' ']);
        for (k, v) in &tags {
            line.push(',');
            line.push_str(&escape(k, &[',', '=', ' ']));
            line.push('=');
            line.push_str(&escape(v, &[',', '=', ' ']));
        }
        line.push(' ');
        let written: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k, &[',', '=', ' ']), write(v)))
            .collect();
        line.push_str(&written.join(","));
        if let Some(t) = timestamp {
            line.push_str(&format!(" {t}"));
        }
        let parsed = parse_line(line.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(parsed.measurement.as_ref(), measurement.as_str(), "{}", line);
        let got: Vec<(String, String)> = parsed
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        prop_assert_eq!(&got, &tags, "{}", line);
        prop_assert_eq!(parsed.fields.len(), fields.len(), "{}", line);
        for ((pk, pv), (k, v)) in parsed.fields.iter().zip(&fields) {
            prop_assert_eq!(pk.as_ref(), k.as_str(), "{}", line);
            prop_assert!(same(pv, v), "{:?} != {:?}: {}", pv, v, line);
        }
        prop_assert_eq!(parsed.timestamp, timestamp, "{}", line);
    }
}
