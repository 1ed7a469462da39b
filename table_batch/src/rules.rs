//! Batch rules: how the rows of one table are put in shape, the same way
//! wherever they are (the buffer, persistence, compaction, queries).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int32Array, TimestampNanosecondArray, UInt32Array,
    new_null_array,
};
use arrow::compute::{cast, take, take_record_batch};
use arrow::datatypes::{Int32Type, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use catalog::{ColumnKind, TableSchema};

/// Which rows of `batch` have, in each listed tag, one of its values,
/// matched by dictionary key (each dictionary entry compared once). A null
/// tag equals nothing. Tags that are not string dictionary columns of the
/// batch are left out of the mask; `None` when none is one.
pub fn tag_mask(
    batch: &RecordBatch,
    tags: &[(String, Vec<String>)],
) -> Option<arrow::buffer::BooleanBuffer> {
    let mut keep: Option<arrow::buffer::BooleanBuffer> = None;
    for (name, values) in tags {
        let Some(dict) = batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<DictionaryArray<Int32Type>>())
        else {
            continue;
        };
        let Some(strings) = dict.values().as_string_opt::<i32>() else {
            continue;
        };
        let wanted: Vec<bool> = (0..strings.len())
            .map(|i| strings.is_valid(i) && values.iter().any(|v| v == strings.value(i)))
            .collect();
        let keys = dict.keys().values();
        let mask = arrow::buffer::BooleanBuffer::collect_bool(keys.len(), |row| {
            wanted.get(keys[row] as usize).copied().unwrap_or(false)
        });
        let mask = match dict.nulls() {
            Some(nulls) => &mask & nulls.inner(),
            None => mask,
        };
        keep = Some(match keep {
            Some(k) => &k & &mask,
            None => mask,
        });
    }
    keep
}

/// The smallest and largest `time` of a batch.
pub fn time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let t = batch
        .column_by_name("time")?
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()?;
    Some((arrow::compute::min(t)?, arrow::compute::max(t)?))
}

/// Puts a batch into `schema`: columns it lacks become nulls, and columns
/// `schema` lacks are dropped.
pub fn align(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Arc::clone(c),
            None => new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The positions of the series key in a batch of `table`: its tags in the
/// order the table first saw them (as InfluxDB 3 orders a series key, and
/// usually the order writers put the most specific tag first in, such as
/// `hostname` in `cpu,hostname=…,region=…`), then time.
pub fn key_columns(schema: &arrow::datatypes::Schema, table: &TableSchema) -> Vec<usize> {
    let mut tags: Vec<(u32, usize)> = Vec::new();
    let mut time = None;
    for (i, f) in schema.fields().iter().enumerate() {
        match table.column(f.name()) {
            Some(c) if c.kind == ColumnKind::Tag => tags.push((c.id, i)),
            Some(c) if c.kind == ColumnKind::Time => time = Some(i),
            _ => {}
        }
    }
    tags.sort_unstable();
    tags.into_iter().map(|(_, i)| i).chain(time).collect()
}

/// Sorts rows by the series key: tags (in series-key order), then time.
/// The sort is stable, so rows with one key keep their write order. In
/// Parquet files this keeps a series' rows together and, with the first tag
/// the one queries name most, gives its pages narrow min/max statistics.
pub fn sort_by_key(batch: &RecordBatch, table: &TableSchema) -> Result<RecordBatch, ArrowError> {
    let key_cols = key_columns(&batch.schema(), table);
    if batch.num_rows() < 2 || key_cols.is_empty() {
        return Ok(batch.clone());
    }
    let converter = RowConverter::new(
        key_cols
            .iter()
            .map(|i| SortField::new(batch.schema().field(*i).data_type().clone()))
            .collect(),
    )?;
    let keys: Vec<ArrayRef> = key_cols
        .iter()
        .map(|i| Arc::clone(batch.column(*i)))
        .collect();
    let rows = converter.convert_columns(&keys)?;
    let mut idx: Vec<u32> = (0..batch.num_rows() as u32).collect();
    idx.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
    if idx.windows(2).all(|w| w[0] < w[1]) {
        return Ok(batch.clone());
    }
    take_record_batch(batch, &UInt32Array::from(idx))
}

/// Gives every dictionary column (tag) a dictionary of distinct values.
///
/// Concatenating the batches of many requests keeps each request's
/// dictionary side by side (Arrow merges them only when they outgrow the
/// rows), so a chunk of 60 K rows from 12 requests carried 12 K host names
/// for 1 K hosts, and every tag filter compared all of them. The values are
/// encoded once more, and the keys mapped through that encoding.
pub fn compact_dictionaries(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for c in batch.columns() {
        let Some(dict) = c.as_any().downcast_ref::<DictionaryArray<Int32Type>>() else {
            columns.push(Arc::clone(c));
            continue;
        };
        let values = dict.values();
        if values.len() < 2 {
            columns.push(Arc::clone(c));
            continue;
        }
        // Old value index -> new key, and the distinct values.
        let encoded = cast(values.as_ref(), c.data_type())?;
        let Some(encoded) = encoded
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
        else {
            columns.push(Arc::clone(c));
            continue;
        };
        if encoded.values().len() == values.len() {
            columns.push(Arc::clone(c));
            continue;
        }
        let keys = take(encoded.keys(), dict.keys(), None)?;
        let keys = keys
            .as_any()
            .downcast_ref::<Int32Array>()
            .cloned()
            .ok_or_else(|| ArrowError::CastError("dictionary keys are not Int32".to_string()))?;
        columns.push(Arc::new(DictionaryArray::try_new(
            keys,
            Arc::clone(encoded.values()),
        )?));
        changed = true;
    }
    if !changed {
        return Ok(batch.clone());
    }
    RecordBatch::try_new(batch.schema(), columns)
}

/// Deduplicates rows with the same tags and time; the last non-null value of
/// each field wins. Returns the batch unchanged when there are no duplicates.
pub fn dedup(batch: &RecordBatch, table: &TableSchema) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let key_cols = key_columns(&schema, table);
    let n = batch.num_rows();
    if n < 2 {
        return Ok(batch.clone());
    }
    let converter = RowConverter::new(
        key_cols
            .iter()
            .map(|i| SortField::new(schema.field(*i).data_type().clone()))
            .collect(),
    )?;
    let keys: Vec<ArrayRef> = key_cols
        .iter()
        .map(|i| Arc::clone(batch.column(*i)))
        .collect();
    let rows = converter.convert_columns(&keys)?;
    let mut groups: HashMap<arrow::row::Row<'_>, u32> = HashMap::with_capacity(n);
    let mut first: Vec<u32> = Vec::with_capacity(n);
    let mut group_of: Vec<u32> = Vec::with_capacity(n);
    for i in 0..n {
        match groups.entry(rows.row(i)) {
            Entry::Occupied(o) => group_of.push(*o.get()),
            Entry::Vacant(v) => {
                let g = first.len() as u32;
                v.insert(g);
                first.push(i as u32);
                group_of.push(g);
            }
        }
    }
    if first.len() == n {
        return Ok(batch.clone());
    }
    let first_idx = UInt32Array::from(first.clone());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (ci, col) in batch.columns().iter().enumerate() {
        if key_cols.contains(&ci) {
            columns.push(take(col.as_ref(), &first_idx, None)?);
            continue;
        }
        let mut src = first.clone();
        for (i, g) in group_of.iter().enumerate() {
            if col.is_valid(i) {
                src[*g as usize] = i as u32;
            }
        }
        columns.push(take(col.as_ref(), &UInt32Array::from(src), None)?);
    }
    RecordBatch::try_new(schema, columns)
}
