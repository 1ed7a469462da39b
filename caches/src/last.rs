//! The last value cache: for each combination of the key columns' values
//! (a series, by default), the newest `count` rows of the value columns,
//! each kept for `ttl` after it was cached.
//!
//! ```text
//!  key level 1 (host)   ─▶ "a" ─▶ key level 2 (region) ─▶ "us" ─▶ rows, newest first
//!                       └▶ "b" ─▶ ...                              (at most `count`)
//! ```
//!
//! A row without a value for every key column is not cached. Rows of the
//! same key at the same time are one point: the later write's values win
//! field by field, as everywhere in Inflow. Without explicit value columns
//! the cache keeps every other column of the table, and the fields the
//! table gains later too.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, DictionaryArray, Float64Array, Float64Builder,
    Int64Array, Int64Builder, RecordBatch, StringArray, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondArray, TimestampNanosecondBuilder, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use catalog::{ColumnKind, DatabaseSchema, FieldType, LastCacheDef, TableSchema};

/// One value of a key column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyValue {
    /// A tag or string field.
    Str(Arc<str>),
    /// An integer field.
    Int(i64),
    /// An unsigned integer field.
    UInt(u64),
    /// A boolean field.
    Bool(bool),
}

/// A condition on one key column that the cache applies while it walks its
/// keys: the column's value is (or, `negated`, is not) one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFilter {
    /// The key column.
    pub column: String,
    /// The values.
    pub values: Vec<KeyValue>,
    /// `!=` / `NOT IN` rather than `=` / `IN`.
    pub negated: bool,
}

/// One cached value.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Arc<str>),
    Time(i64),
}

#[derive(Debug)]
struct CachedRow {
    time: i64,
    cells: Vec<Cell>,
    at: Instant,
}

#[derive(Debug)]
enum Node {
    Keys(BTreeMap<KeyValue, Node>),
    Rows(VecDeque<CachedRow>),
}

impl Node {
    fn empty(levels_left: usize) -> Self {
        if levels_left == 0 {
            Node::Rows(VecDeque::new())
        } else {
            Node::Keys(BTreeMap::new())
        }
    }

    /// Drops rows cached before `oldest`; whether nothing is left.
    fn remove_expired(&mut self, oldest: Instant) -> bool {
        match self {
            Node::Rows(rows) => {
                rows.retain(|r| r.at >= oldest);
                rows.is_empty()
            }
            Node::Keys(map) => {
                map.retain(|_, n| !n.remove_expired(oldest));
                map.is_empty()
            }
        }
    }

    fn series(&self) -> usize {
        match self {
            Node::Rows(rows) => usize::from(!rows.is_empty()),
            Node::Keys(map) => map.values().map(Node::series).sum(),
        }
    }
}

#[derive(Debug)]
struct State {
    /// The value columns, in output order.
    values: Vec<(Arc<str>, ColumnKind)>,
    root: Node,
}

/// One last value cache of one table.
#[derive(Debug)]
pub struct LastCache {
    def: LastCacheDef,
    db_name: Arc<str>,
    table_name: Arc<str>,
    /// The key columns and their kinds, in hierarchy order.
    keys: Vec<(Arc<str>, ColumnKind)>,
    state: Mutex<State>,
}

fn kind_of(t: &DataType) -> Option<ColumnKind> {
    Some(match t {
        DataType::Dictionary(_, _) => ColumnKind::Tag,
        DataType::Timestamp(_, _) => ColumnKind::Time,
        DataType::Float64 => ColumnKind::Field(FieldType::Float),
        DataType::Int64 => ColumnKind::Field(FieldType::Integer),
        DataType::UInt64 => ColumnKind::Field(FieldType::UInteger),
        DataType::Utf8 => ColumnKind::Field(FieldType::String),
        DataType::Boolean => ColumnKind::Field(FieldType::Boolean),
        _ => return None,
    })
}

/// Whether a column of this kind can key a last value cache (as InfluxDB
/// 3: tags, and string, integer, unsigned and boolean fields).
pub fn valid_key_kind(kind: ColumnKind) -> bool {
    matches!(
        kind,
        ColumnKind::Tag
            | ColumnKind::Field(
                FieldType::String | FieldType::Integer | FieldType::UInteger | FieldType::Boolean
            )
    )
}

impl LastCache {
    /// An empty cache of `table` by `def` (which the catalog checked: its
    /// columns exist and its keys have valid kinds).
    pub fn new(db: &DatabaseSchema, table: &TableSchema, def: LastCacheDef) -> Self {
        let keys: Vec<(Arc<str>, ColumnKind)> = def
            .key_columns
            .iter()
            .filter_map(|k| table.column(k).map(|c| (Arc::clone(&c.name), c.kind)))
            .collect();
        let values: Vec<(Arc<str>, ColumnKind)> = match &def.value_columns {
            None => table
                .columns()
                .iter()
                .filter(|c| !keys.iter().any(|(k, _)| *k == c.name))
                .map(|c| (Arc::clone(&c.name), c.kind))
                .collect(),
            Some(names) => names
                .iter()
                .filter(|n| n.as_str() != "time")
                .filter_map(|n| table.column(n).map(|c| (Arc::clone(&c.name), c.kind)))
                .chain(std::iter::once((Arc::from("time"), ColumnKind::Time)))
                .collect(),
        };
        Self {
            db_name: Arc::clone(&db.name),
            table_name: Arc::clone(&table.name),
            state: Mutex::new(State {
                values,
                root: Node::empty(keys.len()),
            }),
            keys,
            def,
        }
    }

    /// Its definition.
    pub fn def(&self) -> &LastCacheDef {
        &self.def
    }

    /// The database it belongs to.
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// The table it caches.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// The key columns, in hierarchy order.
    pub fn key_columns(&self) -> impl Iterator<Item = (&str, ColumnKind)> {
        self.keys.iter().map(|(n, k)| (n.as_ref(), *k))
    }

    /// The value columns now (more may come with new fields).
    pub fn value_columns(&self) -> Vec<String> {
        self.lock()
            .values
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }

    /// How many keys (series) hold rows.
    pub fn series(&self) -> usize {
        self.lock().root.series()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.def.ttl_secs)
    }

    /// Drops every row.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.root = Node::empty(self.keys.len());
    }

    /// Drops the rows older than the TTL.
    pub fn remove_expired(&self) {
        if let Some(oldest) = Instant::now().checked_sub(self.ttl()) {
            self.lock().root.remove_expired(oldest);
        }
    }

    /// Caches the rows of `batch`: a write to the table (its columns by
    /// name, as the buffer holds them), or rows read back from the table.
    pub fn push_batch(&self, batch: &RecordBatch) {
        let Some(times) = batch
            .column_by_name("time")
            .and_then(|a| a.as_any().downcast_ref::<TimestampNanosecondArray>())
        else {
            return;
        };
        let mut key_arrays = Vec::with_capacity(self.keys.len());
        for (name, _) in &self.keys {
            match batch.column_by_name(name) {
                Some(a) => key_arrays.push(a),
                // No row of this write has every key column.
                None => return,
            }
        }
        let mut state = self.lock();
        if self.def.value_columns.is_none() {
            // Columns the table gained since the cache was made.
            for (field, _) in batch.schema().fields().iter().zip(batch.columns()) {
                let name = field.name().as_str();
                let known = state.values.iter().any(|(n, _)| n.as_ref() == name)
                    || self.keys.iter().any(|(n, _)| n.as_ref() == name);
                if !known && let Some(kind) = kind_of(field.data_type()) {
                    state.values.push((Arc::from(name), kind));
                }
            }
        }
        let value_arrays: Vec<Option<&ArrayRef>> = state
            .values
            .iter()
            .map(|(n, _)| batch.column_by_name(n))
            .collect();
        let now = Instant::now();
        let count = self.def.count.max(1);
        'rows: for row in 0..batch.num_rows() {
            if times.is_null(row) {
                continue;
            }
            let mut path = Vec::with_capacity(key_arrays.len());
            for a in &key_arrays {
                match key_at(a.as_ref(), row) {
                    Some(v) => path.push(v),
                    None => continue 'rows,
                }
            }
            let cells: Vec<Cell> = value_arrays
                .iter()
                .map(|a| a.map_or(Cell::Null, |a| cell_at(a.as_ref(), row)))
                .collect();
            let levels = path.len();
            let mut node = &mut state.root;
            for (depth, value) in path.into_iter().enumerate() {
                let Node::Keys(map) = node else {
                    continue 'rows;
                };
                node = map
                    .entry(value)
                    .or_insert_with(|| Node::empty(levels - depth - 1));
            }
            let Node::Rows(rows) = node else {
                continue;
            };
            push_row(
                rows,
                CachedRow {
                    time: times.value(row),
                    cells,
                    at: now,
                },
                count,
            );
        }
    }

    /// The cache's columns now: the key columns (tags as plain strings),
    /// then the value columns.
    pub fn schema(&self) -> SchemaRef {
        let state = self.lock();
        self.schema_of(&state)
    }

    fn schema_of(&self, state: &State) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .keys
            .iter()
            .map(|(n, k)| {
                let t = match k {
                    ColumnKind::Tag => DataType::Utf8,
                    other => table_batch::arrow_type(*other),
                };
                Field::new(n.as_ref(), t, false)
            })
            .collect();
        fields.extend(state.values.iter().map(|(n, k)| {
            Field::new(
                n.as_ref(),
                table_batch::arrow_type(*k),
                *k != ColumnKind::Time,
            )
        }));
        Arc::new(Schema::new(fields))
    }

    /// The cached rows whose keys pass `filters`: keys in order, each key's
    /// rows newest first, none older than the TTL.
    pub fn record_batch(&self, filters: &[KeyFilter]) -> Result<RecordBatch, ArrowError> {
        let state = self.lock();
        let schema = self.schema_of(&state);
        let oldest = Instant::now().checked_sub(self.ttl());
        let level_filters: Vec<Vec<&KeyFilter>> = self
            .keys
            .iter()
            .map(|(n, _)| filters.iter().filter(|f| f.column == n.as_ref()).collect())
            .collect();
        let mut found: Vec<(Vec<&KeyValue>, &VecDeque<CachedRow>)> = Vec::new();
        collect(&state.root, &level_filters, &mut Vec::new(), &mut found);
        let mut keys: Vec<KeyColumn> = self.keys.iter().map(|(_, k)| KeyColumn::new(*k)).collect();
        let mut values: Vec<ValueColumn> = state
            .values
            .iter()
            .map(|(_, k)| ValueColumn::new(*k))
            .collect();
        for (path, rows) in found {
            for r in rows.iter().filter(|r| oldest.is_none_or(|o| r.at >= o)) {
                for (k, v) in keys.iter_mut().zip(&path) {
                    k.push(v);
                }
                for (i, v) in values.iter_mut().enumerate() {
                    v.push(r.cells.get(i).unwrap_or(&Cell::Null));
                }
            }
        }
        let mut columns: Vec<ArrayRef> = keys.into_iter().map(KeyColumn::finish).collect();
        columns.extend(values.into_iter().map(ValueColumn::finish));
        RecordBatch::try_new(schema, columns)
    }
}

/// Gathers the stores under `node` whose keys pass the filters of each level.
fn collect<'a>(
    node: &'a Node,
    filters: &[Vec<&KeyFilter>],
    path: &mut Vec<&'a KeyValue>,
    out: &mut Vec<(Vec<&'a KeyValue>, &'a VecDeque<CachedRow>)>,
) {
    match node {
        Node::Rows(rows) => out.push((path.clone(), rows)),
        Node::Keys(map) => {
            let here = filters.get(path.len()).map(Vec::as_slice).unwrap_or(&[]);
            let passes = |v: &KeyValue| {
                here.iter()
                    .all(|f| f.values.iter().any(|x| x == v) != f.negated)
            };
            // An equality narrows the walk to its values.
            if let Some(eq) = here.iter().find(|f| !f.negated) {
                let mut wanted: Vec<&KeyValue> = eq.values.iter().collect();
                wanted.sort();
                wanted.dedup();
                for v in wanted {
                    if let Some((k, n)) = map.get_key_value(v)
                        && passes(k)
                    {
                        path.push(k);
                        collect(n, filters, path, out);
                        path.pop();
                    }
                }
            } else {
                for (k, n) in map {
                    if passes(k) {
                        path.push(k);
                        collect(n, filters, path, out);
                        path.pop();
                    }
                }
            }
        }
    }
}

/// Puts `row` in its place (newest first), merging it into a row of the
/// same time, and keeps at most `count` rows.
fn push_row(rows: &mut VecDeque<CachedRow>, row: CachedRow, count: usize) {
    let at = rows.iter().position(|r| r.time <= row.time);
    match at {
        Some(i) if rows[i].time == row.time => {
            let existing = &mut rows[i];
            for (j, c) in row.cells.into_iter().enumerate() {
                if c != Cell::Null {
                    if j < existing.cells.len() {
                        existing.cells[j] = c;
                    } else {
                        existing.cells.resize(j, Cell::Null);
                        existing.cells.push(c);
                    }
                }
            }
            existing.at = row.at;
        }
        Some(i) => rows.insert(i, row),
        None if rows.len() < count => rows.push_back(row),
        None => {}
    }
    rows.truncate(count);
}

fn key_at(a: &dyn Array, row: usize) -> Option<KeyValue> {
    if a.is_null(row) {
        return None;
    }
    match cell_at(a, row) {
        Cell::Str(s) => Some(KeyValue::Str(s)),
        Cell::Int(i) => Some(KeyValue::Int(i)),
        Cell::UInt(u) => Some(KeyValue::UInt(u)),
        Cell::Bool(b) => Some(KeyValue::Bool(b)),
        _ => None,
    }
}

fn cell_at(a: &dyn Array, row: usize) -> Cell {
    if a.is_null(row) {
        return Cell::Null;
    }
    let any = a.as_any();
    if let Some(d) = any.downcast_ref::<DictionaryArray<Int32Type>>() {
        let Some(values) = d.values().as_any().downcast_ref::<StringArray>() else {
            return Cell::Null;
        };
        let Ok(k) = usize::try_from(d.keys().value(row)) else {
            return Cell::Null;
        };
        return if k < values.len() && values.is_valid(k) {
            Cell::Str(Arc::from(values.value(k)))
        } else {
            Cell::Null
        };
    }
    if let Some(x) = any.downcast_ref::<Float64Array>() {
        Cell::Float(x.value(row))
    } else if let Some(x) = any.downcast_ref::<Int64Array>() {
        Cell::Int(x.value(row))
    } else if let Some(x) = any.downcast_ref::<UInt64Array>() {
        Cell::UInt(x.value(row))
    } else if let Some(x) = any.downcast_ref::<BooleanArray>() {
        Cell::Bool(x.value(row))
    } else if let Some(x) = any.downcast_ref::<StringArray>() {
        Cell::Str(Arc::from(x.value(row)))
    } else if let Some(x) = any.downcast_ref::<TimestampNanosecondArray>() {
        Cell::Time(x.value(row))
    } else {
        Cell::Null
    }
}

enum KeyColumn {
    Str(StringBuilder),
    Int(Int64Builder),
    UInt(UInt64Builder),
    Bool(BooleanBuilder),
}

impl KeyColumn {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Field(FieldType::Integer) => KeyColumn::Int(Int64Builder::new()),
            ColumnKind::Field(FieldType::UInteger) => KeyColumn::UInt(UInt64Builder::new()),
            ColumnKind::Field(FieldType::Boolean) => KeyColumn::Bool(BooleanBuilder::new()),
            _ => KeyColumn::Str(StringBuilder::new()),
        }
    }

    fn push(&mut self, v: &KeyValue) {
        match (self, v) {
            (KeyColumn::Str(b), KeyValue::Str(s)) => b.append_value(s),
            (KeyColumn::Int(b), KeyValue::Int(i)) => b.append_value(*i),
            (KeyColumn::UInt(b), KeyValue::UInt(u)) => b.append_value(*u),
            (KeyColumn::Bool(b), KeyValue::Bool(x)) => b.append_value(*x),
            // A key of another type (the column's type is fixed, so never).
            (KeyColumn::Str(b), _) => b.append_value(""),
            (KeyColumn::Int(b), _) => b.append_value(0),
            (KeyColumn::UInt(b), _) => b.append_value(0),
            (KeyColumn::Bool(b), _) => b.append_value(false),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            KeyColumn::Str(mut b) => Arc::new(b.finish()),
            KeyColumn::Int(mut b) => Arc::new(b.finish()),
            KeyColumn::UInt(mut b) => Arc::new(b.finish()),
            KeyColumn::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

enum ValueColumn {
    Tag(StringDictionaryBuilder<Int32Type>),
    Time(TimestampNanosecondBuilder),
    Float(Float64Builder),
    Int(Int64Builder),
    UInt(UInt64Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
}

impl ValueColumn {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Tag => ValueColumn::Tag(StringDictionaryBuilder::new()),
            ColumnKind::Time => ValueColumn::Time(TimestampNanosecondBuilder::new()),
            ColumnKind::Field(FieldType::Float) => ValueColumn::Float(Float64Builder::new()),
            ColumnKind::Field(FieldType::Integer) => ValueColumn::Int(Int64Builder::new()),
            ColumnKind::Field(FieldType::UInteger) => ValueColumn::UInt(UInt64Builder::new()),
            ColumnKind::Field(FieldType::String) => ValueColumn::Str(StringBuilder::new()),
            ColumnKind::Field(FieldType::Boolean) => ValueColumn::Bool(BooleanBuilder::new()),
        }
    }

    fn push(&mut self, c: &Cell) {
        match (self, c) {
            (ValueColumn::Tag(b), Cell::Str(s)) => {
                b.append_value(s.as_ref());
            }
            (ValueColumn::Time(b), Cell::Time(t)) => b.append_value(*t),
            (ValueColumn::Float(b), Cell::Float(x)) => b.append_value(*x),
            (ValueColumn::Int(b), Cell::Int(x)) => b.append_value(*x),
            (ValueColumn::UInt(b), Cell::UInt(x)) => b.append_value(*x),
            (ValueColumn::Str(b), Cell::Str(s)) => b.append_value(s),
            (ValueColumn::Bool(b), Cell::Bool(x)) => b.append_value(*x),
            (ValueColumn::Tag(b), _) => b.append_null(),
            (ValueColumn::Time(b), _) => b.append_value(0),
            (ValueColumn::Float(b), _) => b.append_null(),
            (ValueColumn::Int(b), _) => b.append_null(),
            (ValueColumn::UInt(b), _) => b.append_null(),
            (ValueColumn::Str(b), _) => b.append_null(),
            (ValueColumn::Bool(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            ValueColumn::Tag(mut b) => Arc::new(b.finish()),
            ValueColumn::Time(mut b) => Arc::new(b.finish()),
            ValueColumn::Float(mut b) => Arc::new(b.finish()),
            ValueColumn::Int(mut b) => Arc::new(b.finish()),
            ValueColumn::UInt(mut b) => Arc::new(b.finish()),
            ValueColumn::Str(mut b) => Arc::new(b.finish()),
            ValueColumn::Bool(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests;
