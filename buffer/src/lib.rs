//! The in-memory buffer: validated rows as Arrow record batches, per table.
//!
//! ```text
//!  WAL flush ──apply(WriteBatch)──▶ TableBuffer { batches: [b1, b2, b3 ...] }
//!                                              │ snapshot(): align to the table's
//!                                              │ schema, concatenate, deduplicate
//!  query ◀──────── one RecordBatch ◀───────────┘ (and keep the result as the
//!                                                 single batch, so the work is done once)
//! ```
//!
//! Dedup rule (shared with persistence and compaction when they land): rows
//! with the same tag set and time are one point; for each field, the value of
//! the latest row that has one wins. Buffer order is WAL order, so "latest" is
//! the last row in the buffer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::{Array, ArrayRef, UInt32Array, new_null_array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use catalog::{ColumnKind, TableSchema};

mod schema;
pub mod replay;
pub mod validate;

pub use schema::{COLUMN_TYPE_KEY, arrow_field, arrow_type, column_type_name, table_arrow_schema};
pub use validate::WriteBatch;

/// Buffered rows of every table, keyed by (database id, table id).
#[derive(Debug, Default)]
pub struct Buffer {
    tables: RwLock<HashMap<(u32, u32), Arc<Mutex<TableBuffer>>>>,
}

#[derive(Debug, Default)]
struct TableBuffer {
    batches: Vec<RecordBatch>,
    /// Whether `batches` is one batch in the table's current schema, deduplicated.
    consolidated: Option<SchemaRef>,
    rows: usize,
}

impl Buffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a validated write. Called in WAL order.
    pub fn apply(&self, batch: WriteBatch) {
        for (table_id, rb) in batch.tables {
            if rb.num_rows() == 0 {
                continue;
            }
            let tb = self.table_or_create(batch.db_id, table_id);
            let mut tb = lock(&tb);
            tb.rows += rb.num_rows();
            tb.batches.push(rb);
            tb.consolidated = None;
        }
    }

    fn table_or_create(&self, db_id: u32, table_id: u32) -> Arc<Mutex<TableBuffer>> {
        if let Some(t) = read(&self.tables).get(&(db_id, table_id)) {
            return Arc::clone(t);
        }
        let mut w = match self.tables.write() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        Arc::clone(w.entry((db_id, table_id)).or_default())
    }

    /// Rows buffered for a table (before dedup).
    pub fn row_count(&self, db_id: u32, table_id: u32) -> usize {
        read(&self.tables)
            .get(&(db_id, table_id))
            .map_or(0, |t| lock(t).rows)
    }

    /// All buffered rows of a table, deduplicated, in `table`'s Arrow schema
    /// ([`table_arrow_schema`]). `None` if nothing is buffered.
    pub fn snapshot(&self, db_id: u32, table: &TableSchema) -> Result<Option<RecordBatch>, ArrowError> {
        let Some(tb) = read(&self.tables).get(&(db_id, table.id)).cloned() else {
            return Ok(None);
        };
        let schema = table_arrow_schema(table);
        let mut tb = lock(&tb);
        if tb.batches.is_empty() {
            return Ok(None);
        }
        if tb.consolidated.as_ref() != Some(&schema) {
            let aligned = tb
                .batches
                .iter()
                .map(|b| align(b, &schema))
                .collect::<Result<Vec<_>, _>>()?;
            let all = concat_batches(&schema, &aligned)?;
            let deduped = dedup(&all, table)?;
            tb.rows = deduped.num_rows();
            tb.batches = vec![deduped];
            tb.consolidated = Some(schema);
        }
        Ok(tb.batches.first().cloned())
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Puts a batch into `schema`: columns it lacks become nulls.
fn align(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
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

/// Deduplicates rows with the same tags and time; the last non-null value of
/// each field wins. Returns the batch unchanged when there are no duplicates.
pub fn dedup(batch: &RecordBatch, table: &TableSchema) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let key_cols: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            table
                .column(f.name())
                .is_some_and(|c| matches!(c.kind, ColumnKind::Tag | ColumnKind::Time))
        })
        .map(|(i, _)| i)
        .collect();
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
    let keys: Vec<ArrayRef> = key_cols.iter().map(|i| Arc::clone(batch.column(*i))).collect();
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

#[cfg(test)]
mod tests;
