//! InfluxQL results: series of rows, as InfluxDB 1.x's `/query` returns
//! them. The planner produces them; the HTTP and Flight front ends encode
//! them.

use std::collections::BTreeMap;
use std::fmt;

use crate::query::Params;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A float.
    Float(f64),
    /// A signed integer.
    Integer(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A string.
    String(String),
    /// A boolean.
    Boolean(bool),
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One series of a statement's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The measurement (or `measurements`, `databases` for meta queries);
    /// `None` where InfluxDB sends no name (`SHOW SERIES`, `SHOW RETENTION POLICIES`).
    pub name: Option<String>,
    /// The `GROUP BY` tags, when grouped.
    pub tags: Option<BTreeMap<String, String>>,
    /// The column names; when [`Series::has_time`], the first is `time`.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
    /// Whether the first column is the time (nanoseconds in [`Row::time`]).
    pub has_time: bool,
}

/// One row: the time (when the series has one) and the other columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Nanoseconds since the epoch; meaningful when the series has a time column.
    pub time: i64,
    /// One value per column after `time` (or per column, without one).
    pub values: Vec<Value>,
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatementResult {
    /// The series, in InfluxDB's order.
    pub series: Vec<Series>,
    /// The `tz()` zone, for formatting times as RFC 3339 in it.
    pub timezone: Option<String>,
}

/// One InfluxQL statement to run.
pub struct InfluxqlQuery<'a> {
    /// The `db` parameter; statements naming a database override it.
    pub db: Option<&'a str>,
    /// The `rp` parameter.
    pub rp: Option<&'a str>,
    /// The statement, parsed.
    pub statement: &'a influxql::Statement,
    /// Values for `$name` placeholders.
    pub params: Option<&'a Params>,
    /// `now()`, in nanoseconds, the same for every statement of a request.
    pub now_ns: i64,
}

impl fmt::Debug for InfluxqlQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxqlQuery")
            .field("db", &self.db)
            .field("rp", &self.rp)
            .field("statement", &self.statement)
            .finish_non_exhaustive()
    }
}

/// The rows of a result as one Arrow batch, the shape InfluxDB 3 gives
/// InfluxQL over its v3 and Flight APIs: `iox::measurement`, then `time`
/// (when the series have one), the `GROUP BY` tags, then the columns.
/// A column's type is its first non-null value's (strings when they differ).
pub fn to_record_batch(
    result: &StatementResult,
) -> Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
        TimestampNanosecondBuilder, UInt64Builder,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    let has_time = result.series.iter().any(|s| s.has_time);
    let mut tag_keys: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for s in &result.series {
        for k in s.tags.iter().flat_map(|t| t.keys()) {
            if !tag_keys.contains(k) {
                tag_keys.push(k.clone());
            }
        }
        for c in s.columns.iter().skip(usize::from(s.has_time)) {
            if !columns.contains(c) && !tag_keys.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    // Each value column's type.
    let types: Vec<DataType> = columns
        .iter()
        .map(|c| {
            let mut ty: Option<DataType> = None;
            for s in &result.series {
                let Some(i) = s
                    .columns
                    .iter()
                    .skip(usize::from(s.has_time))
                    .position(|x| x == c)
                else {
                    continue;
                };
                for r in &s.rows {
                    let t = match r.values.get(i) {
                        Some(Value::Float(_)) => DataType::Float64,
                        Some(Value::Integer(_)) => DataType::Int64,
                        Some(Value::Unsigned(_)) => DataType::UInt64,
                        Some(Value::Boolean(_)) => DataType::Boolean,
                        Some(Value::String(_)) => DataType::Utf8,
                        _ => continue,
                    };
                    match &ty {
                        None => ty = Some(t),
                        Some(prev) if *prev != t => return DataType::Utf8,
                        _ => {}
                    }
                }
            }
            ty.unwrap_or(DataType::Utf8)
        })
        .collect();
    let mut measurement = StringBuilder::new();
    let mut time = TimestampNanosecondBuilder::new();
    let mut tags: Vec<StringBuilder> = tag_keys.iter().map(|_| StringBuilder::new()).collect();
    enum B {
        F(Float64Builder),
        I(Int64Builder),
        U(UInt64Builder),
        Bo(BooleanBuilder),
        S(StringBuilder),
    }
    let mut builders: Vec<B> = types
        .iter()
        .map(|t| match t {
            DataType::Float64 => B::F(Float64Builder::new()),
            DataType::Int64 => B::I(Int64Builder::new()),
            DataType::UInt64 => B::U(UInt64Builder::new()),
            DataType::Boolean => B::Bo(BooleanBuilder::new()),
            _ => B::S(StringBuilder::new()),
        })
        .collect();
    for s in &result.series {
        let positions: Vec<Option<usize>> = columns
            .iter()
            .map(|c| {
                s.columns
                    .iter()
                    .skip(usize::from(s.has_time))
                    .position(|x| x == c)
            })
            .collect();
        for r in &s.rows {
            measurement.append_option(s.name.as_deref());
            if has_time {
                time.append_value(r.time);
            }
            for (k, b) in tag_keys.iter().zip(tags.iter_mut()) {
                b.append_option(s.tags.as_ref().and_then(|t| t.get(k)));
            }
            for (p, b) in positions.iter().zip(builders.iter_mut()) {
                let v = p.and_then(|i| r.values.get(i)).unwrap_or(&Value::Null);
                match (b, v) {
                    (B::F(b), Value::Float(x)) => b.append_value(*x),
                    (B::I(b), Value::Integer(x)) => b.append_value(*x),
                    (B::U(b), Value::Unsigned(x)) => b.append_value(*x),
                    (B::Bo(b), Value::Boolean(x)) => b.append_value(*x),
                    (B::S(b), Value::String(x)) => b.append_value(x),
                    (B::S(b), Value::Null) => b.append_null(),
                    (B::S(b), other) => b.append_value(match other {
                        Value::Float(x) => x.to_string(),
                        Value::Integer(x) => x.to_string(),
                        Value::Unsigned(x) => x.to_string(),
                        Value::Boolean(x) => x.to_string(),
                        _ => String::new(),
                    }),
                    (B::F(b), _) => b.append_null(),
                    (B::I(b), _) => b.append_null(),
                    (B::U(b), _) => b.append_null(),
                    (B::Bo(b), _) => b.append_null(),
                }
            }
        }
    }
    let mut fields = vec![Field::new("iox::measurement", DataType::Utf8, true)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(measurement.finish())];
    if has_time {
        fields.push(Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        arrays.push(Arc::new(time.finish()));
    }
    for (k, mut b) in tag_keys.iter().zip(tags) {
        fields.push(Field::new(k, DataType::Utf8, true));
        arrays.push(Arc::new(b.finish()));
    }
    for ((c, t), b) in columns.iter().zip(&types).zip(builders) {
        fields.push(Field::new(c, t.clone(), true));
        arrays.push(match b {
            B::F(mut b) => Arc::new(b.finish()),
            B::I(mut b) => Arc::new(b.finish()),
            B::U(mut b) => Arc::new(b.finish()),
            B::Bo(mut b) => Arc::new(b.finish()),
            B::S(mut b) => Arc::new(b.finish()),
        });
    }
    arrow::record_batch::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}
