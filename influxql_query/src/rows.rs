//! The rows the planner works on: points of one measurement with their
//! tags and the fields a statement needs, decoded from Arrow.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use services::QueryError;
use services::influxql::Value;

use crate::eval::Vars;

/// One point: its time, tag values and field values.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub(crate) time: i64,
    pub(crate) tags: Vec<Option<Arc<str>>>,
    pub(crate) fields: Vec<Value>,
}

/// Where a column of a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Tag(usize),
    Field(usize),
}

/// The points of one measurement (or of one subquery's series).
#[derive(Debug, Clone, Default)]
pub(crate) struct Frame {
    pub(crate) measurement: String,
    pub(crate) tag_keys: Vec<String>,
    pub(crate) field_names: Vec<String>,
    pub(crate) points: Vec<Point>,
    index: HashMap<String, Col>,
}

impl Frame {
    pub(crate) fn new(measurement: &str, tag_keys: Vec<String>, field_names: Vec<String>) -> Self {
        let mut index = HashMap::new();
        for (i, k) in field_names.iter().enumerate() {
            index.insert(k.clone(), Col::Field(i));
        }
        for (i, k) in tag_keys.iter().enumerate() {
            index.insert(k.clone(), Col::Tag(i));
        }
        Self {
            measurement: measurement.to_string(),
            tag_keys,
            field_names,
            points: Vec::new(),
            index,
        }
    }

    pub(crate) fn col(&self, name: &str) -> Option<Col> {
        self.index.get(name).copied()
    }

    pub(crate) fn is_tag(&self, name: &str) -> bool {
        matches!(self.col(name), Some(Col::Tag(_)))
    }

    /// The point's variables.
    pub(crate) fn vars<'a>(&'a self, p: &'a Point) -> PointVars<'a> {
        PointVars {
            frame: self,
            point: p,
        }
    }

    /// Appends the rows of `batch`, whose columns are `time`, then the tag
    /// keys, then the field names, in this frame's order.
    pub(crate) fn extend(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let n = batch.num_rows();
        let time = column_as(batch, "time", &DataType::Int64)?;
        let time = time
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| internal("time is not an integer"))?;
        let mut tags = Vec::with_capacity(self.tag_keys.len());
        for k in &self.tag_keys {
            tags.push(column_as(batch, k, &DataType::Utf8)?);
        }
        let tags: Vec<&StringArray> = tags
            .iter()
            .map(|a| a.as_any().downcast_ref::<StringArray>())
            .collect::<Option<_>>()
            .ok_or_else(|| internal("a tag is not a string"))?;
        let mut fields = Vec::with_capacity(self.field_names.len());
        for f in &self.field_names {
            let a = batch
                .column_by_name(f)
                .ok_or_else(|| internal(&format!("column {f} is missing")))?;
            fields.push(Arc::clone(a));
        }
        let mut interned: Vec<HashMap<String, Arc<str>>> = vec![HashMap::new(); tags.len()];
        self.points.reserve(n);
        for row in 0..n {
            let tag_values = tags
                .iter()
                .zip(interned.iter_mut())
                .map(|(a, seen)| {
                    if a.is_null(row) {
                        return None;
                    }
                    let v = a.value(row);
                    Some(match seen.get(v) {
                        Some(s) => Arc::clone(s),
                        None => {
                            let s: Arc<str> = Arc::from(v);
                            seen.insert(v.to_string(), Arc::clone(&s));
                            s
                        }
                    })
                })
                .collect();
            let field_values = fields.iter().map(|a| value_at(a, row)).collect();
            self.points.push(Point {
                time: time.value(row),
                tags: tag_values,
                fields: field_values,
            });
        }
        Ok(())
    }
}

/// The variables of one point of a frame.
pub(crate) struct PointVars<'a> {
    frame: &'a Frame,
    point: &'a Point,
}

impl Vars for PointVars<'_> {
    fn var(&self, name: &str) -> Value {
        match self.frame.col(name) {
            Some(Col::Field(i)) => self.point.fields[i].clone(),
            Some(Col::Tag(i)) => match &self.point.tags[i] {
                Some(s) => Value::String(s.to_string()),
                None => Value::Null,
            },
            None => Value::Null,
        }
    }
}

fn internal(message: &str) -> QueryError {
    QueryError::Execution(format!("InfluxQL scan: {message}"))
}

fn column_as(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, QueryError> {
    let a = batch
        .column_by_name(name)
        .ok_or_else(|| internal(&format!("column {name} is missing")))?;
    if a.data_type() == to {
        return Ok(Arc::clone(a));
    }
    cast(a, to).map_err(|e| internal(&e.to_string()))
}

/// The value at `row` of a field column.
pub(crate) fn value_at(a: &ArrayRef, row: usize) -> Value {
    if a.is_null(row) {
        return Value::Null;
    }
    let any = a.as_any();
    if let Some(x) = any.downcast_ref::<Float64Array>() {
        return Value::Float(x.value(row));
    }
    if let Some(x) = any.downcast_ref::<Int64Array>() {
        return Value::Integer(x.value(row));
    }
    if let Some(x) = any.downcast_ref::<UInt64Array>() {
        return Value::Unsigned(x.value(row));
    }
    if let Some(x) = any.downcast_ref::<BooleanArray>() {
        return Value::Boolean(x.value(row));
    }
    if let Some(x) = any.downcast_ref::<StringArray>() {
        return Value::String(x.value(row).to_string());
    }
    match cast(a, &DataType::Utf8) {
        Ok(s) => match s.as_any().downcast_ref::<StringArray>() {
            Some(s) if !s.is_null(row) => Value::String(s.value(row).to_string()),
            _ => Value::Null,
        },
        Err(_) => Value::Null,
    }
}
