//! The last value cache: for each combination of the key columns' values
//! (a series, by default), the newest `count` rows of the value columns,
//! each kept for `ttl` after it was cached.
//!
//! ```text
//!  index: (host, region) ─▶ slot      slot 0: ("a", "us")  rows 0..count, newest first
//!                                     slot 1: ("b", "eu")  rows count..2·count
//!  columns: times[], cached_at[], one Vec per value column, all slot·count + i
//! ```
//!
//! The storage is columnar and a key's rows sit side by side, so a read of
//! every key walks memory in order (one pointer per row would be a cache
//! miss per row: 100,000 keys cost 8 ms that way, under 1 ms this way).
//! Rows come out in the order their keys were first cached.
//!
//! A row without a value for every key column is not cached. Rows of the
//! same key at the same time are one point: the later write's values win
//! field by field, as everywhere in Inflow. Without explicit value columns
//! the cache keeps every other column of the table, and the fields the
//! table gains later too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch,
    StringArray, StringBuilder, StringDictionaryBuilder, TimestampNanosecondArray, UInt64Array,
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
#[derive(Debug, Clone, Default, PartialEq)]
enum Cell {
    #[default]
    Null,
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(Arc<str>),
    Time(i64),
}

#[derive(Debug, Default)]
struct State {
    /// The value columns, in output order.
    values: Vec<(Arc<str>, ColumnKind)>,
    /// Key values to their slot.
    index: HashMap<Box<[KeyValue]>, usize>,
    /// Per key column, each slot's value.
    slot_keys: Vec<KeyStore>,
    /// Rows held per slot (at most `count`).
    slot_len: Vec<u8>,
    /// Per row (`slot * count + i`, newest first within a slot): its time,
    /// when it was cached, and per value column its value.
    times: Vec<i64>,
    cached_at: Vec<Instant>,
    cells: Vec<ValueStore>,
}

impl State {
    fn slots(&self) -> usize {
        self.slot_len.len()
    }

    fn values_kinds(&self) -> impl Iterator<Item = ColumnKind> + '_ {
        self.values.iter().map(|(_, k)| *k)
    }
}

/// One last value cache of one table.
#[derive(Debug)]
pub struct LastCache {
    /// Whether it was filled from the table's rows (see `Caches::unfilled`).
    fill: crate::FillState,
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
            fill: Default::default(),
            db_name: Arc::clone(&db.name),
            table_name: Arc::clone(&table.name),
            state: Mutex::new(State {
                cells: values.iter().map(|(_, k)| ValueStore::new(*k)).collect(),
                slot_keys: keys.iter().map(|(_, k)| KeyStore::for_kind(*k)).collect(),
                values,
                ..State::default()
            }),
            keys,
            def,
        }
    }

    /// Empties it, to be filled again from the table's rows (a delete
    /// removed some of them).
    pub fn empty_for_refill(&self) {
        let mut state = self.lock();
        self.clear_locked(&mut state);
        self.fill.emptied();
    }

    /// How many times it was emptied to be filled again: what a fill reads
    /// before it queries the table, for [`Self::fill`].
    pub fn refills(&self) -> u64 {
        self.fill.refills()
    }

    /// Takes `batches` (oldest first), rows read from the table after
    /// `refills` was read, and records it filled; unless it was emptied
    /// since, when the rows may hold deleted values and are dropped
    /// (`false`: the next pass fills it again).
    pub fn fill<'a>(
        &self,
        refills: u64,
        batches: impl IntoIterator<Item = &'a RecordBatch>,
    ) -> bool {
        let mut state = self.lock();
        self.fill.fill_if_current(refills, || {
            for b in batches {
                self.push_into(&mut state, b);
            }
        })
    }

    /// Whether it was filled from the table's rows.
    pub fn is_filled(&self) -> bool {
        self.fill.is_filled()
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
        self.lock().slot_len.iter().filter(|n| **n > 0).count()
    }

    fn count(&self) -> usize {
        self.def.count.clamp(1, 255)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.def.ttl_secs)
    }

    /// Drops every row.
    pub fn clear(&self) {
        self.clear_locked(&mut self.lock());
    }

    fn clear_locked(&self, state: &mut State) {
        let values = std::mem::take(&mut state.values);
        *state = State {
            cells: values.iter().map(|(_, k)| ValueStore::new(*k)).collect(),
            slot_keys: self
                .keys
                .iter()
                .map(|(_, k)| KeyStore::for_kind(*k))
                .collect(),
            values,
            ..State::default()
        };
    }

    /// Drops the rows older than the TTL, and the keys left without rows
    /// once they are most of the slots.
    pub fn remove_expired(&self) {
        let Some(oldest) = Instant::now().checked_sub(self.ttl()) else {
            return;
        };
        let count = self.count();
        let mut state = self.lock();
        let s = &mut *state;
        for slot in 0..s.slots() {
            let base = slot * count;
            let len = usize::from(s.slot_len[slot]);
            let mut kept = 0;
            for i in 0..len {
                if s.cached_at[base + i] >= oldest {
                    if kept != i {
                        s.times[base + kept] = s.times[base + i];
                        s.cached_at[base + kept] = s.cached_at[base + i];
                        for col in &mut s.cells {
                            col.move_to(base + i, base + kept);
                        }
                    }
                    kept += 1;
                }
            }
            for i in kept..len {
                for col in &mut s.cells {
                    col.clear(base + i);
                }
            }
            s.slot_len[slot] = kept as u8;
        }
        let empty = s.slot_len.iter().filter(|n| **n == 0).count();
        if empty > 0 && empty * 2 >= s.slots() {
            self.compact(s);
        }
    }

    /// Rebuilds the storage without the keys that hold no rows.
    fn compact(&self, s: &mut State) {
        let count = self.count();
        let keep: Vec<usize> = (0..s.slots()).filter(|&i| s.slot_len[i] > 0).collect();
        let cells = s.values_kinds().map(ValueStore::new).collect();
        let mut next = State {
            values: std::mem::take(&mut s.values),
            cells,
            slot_keys: self
                .keys
                .iter()
                .map(|(_, k)| KeyStore::for_kind(*k))
                .collect(),
            ..State::default()
        };
        for (new_slot, &old) in keep.iter().enumerate() {
            let key: Box<[KeyValue]> = s.slot_keys.iter().map(|k| k.get(old)).collect();
            for (j, k) in key.iter().enumerate() {
                next.slot_keys[j].push(k);
            }
            next.index.insert(key, new_slot);
            next.slot_len.push(s.slot_len[old]);
            let base = old * count;
            next.times.extend_from_slice(&s.times[base..base + count]);
            next.cached_at
                .extend_from_slice(&s.cached_at[base..base + count]);
            for (c, col) in s.cells.iter().enumerate() {
                next.cells[c].extend_from(col, base..base + count);
            }
        }
        *s = next;
    }

    /// The slot of `key`, made if new.
    fn slot(&self, s: &mut State, key: Vec<KeyValue>) -> usize {
        if let Some(&slot) = s.index.get(key.as_slice()) {
            return slot;
        }
        let count = self.count();
        let slot = s.slots();
        for (j, k) in key.iter().enumerate() {
            s.slot_keys[j].push(k);
        }
        s.index.insert(key.into_boxed_slice(), slot);
        s.slot_len.push(0);
        s.times.resize(s.times.len() + count, 0);
        let now = Instant::now();
        s.cached_at.resize(s.cached_at.len() + count, now);
        for col in &mut s.cells {
            col.grow(count);
        }
        slot
    }

    /// Puts one row in its slot's place (newest first), merging it into a
    /// row of the same time, and keeps at most `count` rows.
    fn push_row(&self, s: &mut State, slot: usize, time: i64, cells: Vec<Cell>, at: Instant) {
        let count = self.count();
        let base = slot * count;
        let len = usize::from(s.slot_len[slot]);
        let pos = (0..len).find(|&i| s.times[base + i] <= time);
        match pos {
            Some(i) if s.times[base + i] == time => {
                for (c, v) in cells.into_iter().enumerate() {
                    if v != Cell::Null {
                        s.cells[c].set(base + i, v);
                    }
                }
                s.cached_at[base + i] = at;
            }
            _ => {
                let at_index = pos.unwrap_or(len);
                if at_index >= count {
                    return;
                }
                // Shift the older rows down one, dropping the last if full.
                let last = len.min(count - 1);
                for i in (at_index..last).rev() {
                    s.times[base + i + 1] = s.times[base + i];
                    s.cached_at[base + i + 1] = s.cached_at[base + i];
                    for col in &mut s.cells {
                        col.move_to(base + i, base + i + 1);
                    }
                }
                s.times[base + at_index] = time;
                s.cached_at[base + at_index] = at;
                for (c, v) in cells.into_iter().enumerate() {
                    s.cells[c].set(base + at_index, v);
                }
                s.slot_len[slot] = (len + 1).min(count) as u8;
            }
        }
    }

    /// Caches the rows of `batch`: a write to the table (its columns by
    /// name, as the buffer holds them), or rows read back from the table.
    pub fn push_batch(&self, batch: &RecordBatch) {
        self.push_into(&mut self.lock(), batch);
    }

    fn push_into(&self, state: &mut State, batch: &RecordBatch) {
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
        if self.def.value_columns.is_none() {
            // Columns the table gained since the cache was made.
            for (field, _) in batch.schema().fields().iter().zip(batch.columns()) {
                let name = field.name().as_str();
                let known = state.values.iter().any(|(n, _)| n.as_ref() == name)
                    || self.keys.iter().any(|(n, _)| n.as_ref() == name);
                if !known && let Some(kind) = kind_of(field.data_type()) {
                    state.values.push((Arc::from(name), kind));
                    let rows = state.times.len();
                    let mut store = ValueStore::new(kind);
                    store.grow(rows);
                    state.cells.push(store);
                }
            }
        }
        let value_arrays: Vec<Option<&ArrayRef>> = state
            .values
            .iter()
            .map(|(n, _)| batch.column_by_name(n))
            .collect();
        let now = Instant::now();
        'rows: for row in 0..batch.num_rows() {
            if times.is_null(row) {
                continue;
            }
            let mut key = Vec::with_capacity(key_arrays.len());
            for a in &key_arrays {
                match key_at(a.as_ref(), row) {
                    Some(v) => key.push(v),
                    None => continue 'rows,
                }
            }
            let cells: Vec<Cell> = value_arrays
                .iter()
                .map(|a| a.map_or(Cell::Null, |a| cell_at(a.as_ref(), row)))
                .collect();
            let slot = self.slot(state, key);
            self.push_row(state, slot, times.value(row), cells, now);
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

    /// The cached rows whose keys pass `filters`: keys in the order they
    /// were first cached, each key's rows newest first, none older than
    /// the TTL.
    pub fn record_batch(&self, filters: &[KeyFilter]) -> Result<RecordBatch, ArrowError> {
        let state = self.lock();
        let s = &*state;
        let schema = self.schema_of(s);
        let count = self.count();
        let oldest = Instant::now().checked_sub(self.ttl());
        // Per key column, its filters.
        let by_key: Vec<(usize, &KeyFilter)> = filters
            .iter()
            .filter_map(|f| {
                self.keys
                    .iter()
                    .position(|(n, _)| n.as_ref() == f.column)
                    .map(|j| (j, f))
            })
            .collect();
        let passes = |slot: usize| {
            by_key.iter().all(|(j, f)| {
                let store = &s.slot_keys[*j];
                f.values.iter().any(|x| store.equals(slot, x)) != f.negated
            })
        };
        let rows_of = |slot: usize| {
            let base = slot * count;
            (base..base + usize::from(s.slot_len[slot]))
                .filter(move |&r| oldest.is_none_or(|o| s.cached_at[r] >= o))
        };
        // One value per key column: one lookup instead of a walk.
        let rows: Vec<usize> = match self.single_key(&by_key) {
            Some(key) => s
                .index
                .get(key.as_slice())
                .into_iter()
                .flat_map(|&slot| rows_of(slot))
                .collect(),
            None if by_key.is_empty() => (0..s.slots()).flat_map(rows_of).collect(),
            None => (0..s.slots())
                .filter(|&i| passes(i))
                .flat_map(rows_of)
                .collect(),
        };
        // Every slot's one row, in order (one value per key, none expired):
        // the key columns are the stores' own arrays.
        let every_slot_in_order =
            count == 1 && rows.len() == s.slots() && rows.iter().enumerate().all(|(i, &r)| i == r);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.keys.len() + s.values.len());
        for store in &s.slot_keys {
            let whole = every_slot_in_order.then(|| store.whole_column()).flatten();
            columns.push(whole.unwrap_or_else(|| store.column(rows.iter().map(|r| r / count))));
        }
        for store in &s.cells {
            columns.push(store.column(&rows));
        }
        RecordBatch::try_new(schema, columns)
    }

    /// The key the filters name, if they give every key column exactly one
    /// value to equal.
    fn single_key(&self, by_key: &[(usize, &KeyFilter)]) -> Option<Vec<KeyValue>> {
        (0..self.keys.len())
            .map(|j| {
                let mut eq = by_key.iter().filter(|(k, f)| *k == j && !f.negated);
                match (eq.next(), eq.next()) {
                    (Some((_, f)), None) if f.values.len() == 1 => Some(f.values[0].clone()),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()
            // Other conditions on a named key still apply: then walk.
            .filter(|_| {
                by_key
                    .iter()
                    .all(|(_, f)| !f.negated && f.values.len() == 1)
            })
    }
}

/// One key column's value per slot, stored as Arrow stores it (strings
/// in one buffer), so reading many slots reads memory in order.
#[derive(Debug)]
enum KeyStore {
    Str { data: String, ends: Vec<usize> },
    Int(Vec<i64>),
    UInt(Vec<u64>),
    Bool(Vec<bool>),
}

impl KeyStore {
    fn for_kind(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Field(FieldType::Integer) => KeyStore::Int(Vec::new()),
            ColumnKind::Field(FieldType::UInteger) => KeyStore::UInt(Vec::new()),
            ColumnKind::Field(FieldType::Boolean) => KeyStore::Bool(Vec::new()),
            _ => KeyStore::Str {
                data: String::new(),
                ends: Vec::new(),
            },
        }
    }

    fn push(&mut self, v: &KeyValue) {
        match (self, v) {
            (KeyStore::Str { data, ends }, KeyValue::Str(x)) => {
                data.push_str(x);
                ends.push(data.len());
            }
            (KeyStore::Int(a), KeyValue::Int(x)) => a.push(*x),
            (KeyStore::UInt(a), KeyValue::UInt(x)) => a.push(*x),
            (KeyStore::Bool(a), KeyValue::Bool(x)) => a.push(*x),
            // A column's values have one type; a mismatch keeps the slots aligned.
            (KeyStore::Str { data, ends }, _) => ends.push(data.len()),
            (KeyStore::Int(a), _) => a.push(0),
            (KeyStore::UInt(a), _) => a.push(0),
            (KeyStore::Bool(a), _) => a.push(false),
        }
    }

    fn str_at<'a>(data: &'a str, ends: &[usize], slot: usize) -> Option<&'a str> {
        let end = *ends.get(slot)?;
        let start = if slot == 0 { 0 } else { ends[slot - 1] };
        data.get(start..end)
    }

    fn get(&self, slot: usize) -> KeyValue {
        match self {
            KeyStore::Str { data, ends } => {
                KeyValue::Str(Arc::from(Self::str_at(data, ends, slot).unwrap_or("")))
            }
            KeyStore::Int(a) => KeyValue::Int(a.get(slot).copied().unwrap_or(0)),
            KeyStore::UInt(a) => KeyValue::UInt(a.get(slot).copied().unwrap_or(0)),
            KeyStore::Bool(a) => KeyValue::Bool(a.get(slot).copied().unwrap_or(false)),
        }
    }

    fn equals(&self, slot: usize, v: &KeyValue) -> bool {
        match (self, v) {
            (KeyStore::Str { data, ends }, KeyValue::Str(x)) => {
                Self::str_at(data, ends, slot) == Some(x.as_ref())
            }
            (KeyStore::Int(a), KeyValue::Int(x)) => a.get(slot) == Some(x),
            (KeyStore::UInt(a), KeyValue::UInt(x)) => a.get(slot) == Some(x),
            (KeyStore::Bool(a), KeyValue::Bool(x)) => a.get(slot) == Some(x),
            _ => false,
        }
    }

    /// The values of `slots`, in order, as an Arrow column.
    /// Every slot's value in slot order, copied as a whole, for string keys
    /// (the store is laid out as Arrow's strings).
    fn whole_column(&self) -> Option<ArrayRef> {
        let KeyStore::Str { data, ends } = self else {
            return None;
        };
        let offsets = std::iter::once(0)
            .chain(ends.iter().copied())
            .map(i32::try_from)
            .collect::<Result<Vec<i32>, _>>()
            .ok()?;
        let offsets = arrow::buffer::OffsetBuffer::new(offsets.into());
        let values = arrow::buffer::Buffer::from(data.as_bytes());
        StringArray::try_new(offsets, values, None)
            .ok()
            .map(|a| Arc::new(a) as ArrayRef)
    }

    fn column(&self, slots: impl Iterator<Item = usize>) -> ArrayRef {
        match self {
            KeyStore::Str { data, ends } => {
                let (n, _) = slots.size_hint();
                let mut b = StringBuilder::with_capacity(n, n * 8);
                for slot in slots {
                    b.append_value(Self::str_at(data, ends, slot).unwrap_or(""));
                }
                Arc::new(b.finish())
            }
            KeyStore::Int(a) => Arc::new(Int64Array::from_iter_values(
                slots.map(|s| a.get(s).copied().unwrap_or(0)),
            )),
            KeyStore::UInt(a) => Arc::new(UInt64Array::from_iter_values(
                slots.map(|s| a.get(s).copied().unwrap_or(0)),
            )),
            KeyStore::Bool(a) => Arc::new(BooleanArray::from_iter(
                slots.map(|s| Some(a.get(s).copied().unwrap_or(false))),
            )),
        }
    }
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

/// One value column's values per row, typed, with their validity.
#[derive(Debug)]
enum ValueStore {
    Float(Vec<f64>, Vec<bool>),
    Int(Vec<i64>, Vec<bool>),
    UInt(Vec<u64>, Vec<bool>),
    Bool(Vec<bool>, Vec<bool>),
    Time(Vec<i64>),
    /// Tags and string fields.
    Str(Vec<Option<Arc<str>>>, bool),
}

impl ValueStore {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Tag => ValueStore::Str(Vec::new(), true),
            ColumnKind::Time => ValueStore::Time(Vec::new()),
            ColumnKind::Field(FieldType::Float) => ValueStore::Float(Vec::new(), Vec::new()),
            ColumnKind::Field(FieldType::Integer) => ValueStore::Int(Vec::new(), Vec::new()),
            ColumnKind::Field(FieldType::UInteger) => ValueStore::UInt(Vec::new(), Vec::new()),
            ColumnKind::Field(FieldType::String) => ValueStore::Str(Vec::new(), false),
            ColumnKind::Field(FieldType::Boolean) => ValueStore::Bool(Vec::new(), Vec::new()),
        }
    }

    /// Appends `n` empty rows.
    fn grow(&mut self, n: usize) {
        match self {
            ValueStore::Float(v, ok) => {
                v.resize(v.len() + n, 0.0);
                ok.resize(ok.len() + n, false);
            }
            ValueStore::Int(v, ok) => {
                v.resize(v.len() + n, 0);
                ok.resize(ok.len() + n, false);
            }
            ValueStore::UInt(v, ok) => {
                v.resize(v.len() + n, 0);
                ok.resize(ok.len() + n, false);
            }
            ValueStore::Bool(v, ok) => {
                v.resize(v.len() + n, false);
                ok.resize(ok.len() + n, false);
            }
            ValueStore::Time(v) => v.resize(v.len() + n, 0),
            ValueStore::Str(v, _) => v.resize(v.len() + n, None),
        }
    }

    /// Row `r`'s value (a value of another type is a null).
    fn set(&mut self, r: usize, c: Cell) {
        match (self, c) {
            (ValueStore::Float(v, ok), Cell::Float(x)) => (v[r], ok[r]) = (x, true),
            (ValueStore::Int(v, ok), Cell::Int(x)) => (v[r], ok[r]) = (x, true),
            (ValueStore::UInt(v, ok), Cell::UInt(x)) => (v[r], ok[r]) = (x, true),
            (ValueStore::Bool(v, ok), Cell::Bool(x)) => (v[r], ok[r]) = (x, true),
            (ValueStore::Time(v), Cell::Time(x)) => v[r] = x,
            (ValueStore::Str(v, _), Cell::Str(x)) => v[r] = Some(x),
            (store, _) => store.clear(r),
        }
    }

    fn clear(&mut self, r: usize) {
        match self {
            ValueStore::Float(_, ok)
            | ValueStore::Int(_, ok)
            | ValueStore::UInt(_, ok)
            | ValueStore::Bool(_, ok) => ok[r] = false,
            ValueStore::Time(v) => v[r] = 0,
            ValueStore::Str(v, _) => v[r] = None,
        }
    }

    /// Moves row `from`'s value to row `to`, leaving `from` empty.
    fn move_to(&mut self, from: usize, to: usize) {
        match self {
            ValueStore::Float(v, ok) => (v[to], ok[to], ok[from]) = (v[from], ok[from], false),
            ValueStore::Int(v, ok) => (v[to], ok[to], ok[from]) = (v[from], ok[from], false),
            ValueStore::UInt(v, ok) => (v[to], ok[to], ok[from]) = (v[from], ok[from], false),
            ValueStore::Bool(v, ok) => (v[to], ok[to], ok[from]) = (v[from], ok[from], false),
            ValueStore::Time(v) => v[to] = v[from],
            ValueStore::Str(v, _) => v[to] = v[from].take(),
        }
    }

    /// Appends `other`'s rows `range`.
    fn extend_from(&mut self, other: &ValueStore, range: std::ops::Range<usize>) {
        match (self, other) {
            (ValueStore::Float(v, ok), ValueStore::Float(w, wok)) => {
                v.extend_from_slice(&w[range.clone()]);
                ok.extend_from_slice(&wok[range]);
            }
            (ValueStore::Int(v, ok), ValueStore::Int(w, wok)) => {
                v.extend_from_slice(&w[range.clone()]);
                ok.extend_from_slice(&wok[range]);
            }
            (ValueStore::UInt(v, ok), ValueStore::UInt(w, wok)) => {
                v.extend_from_slice(&w[range.clone()]);
                ok.extend_from_slice(&wok[range]);
            }
            (ValueStore::Bool(v, ok), ValueStore::Bool(w, wok)) => {
                v.extend_from_slice(&w[range.clone()]);
                ok.extend_from_slice(&wok[range]);
            }
            (ValueStore::Time(v), ValueStore::Time(w)) => v.extend_from_slice(&w[range]),
            (ValueStore::Str(v, _), ValueStore::Str(w, _)) => v.extend_from_slice(&w[range]),
            (store, _) => store.grow(range.len()),
        }
    }

    /// Rows `rows`, in order, as an Arrow column of the column's type.
    fn column(&self, rows: &[usize]) -> ArrayRef {
        fn opt<T: Copy>(v: &[T], ok: &[bool], r: usize) -> Option<T> {
            ok[r].then(|| v[r])
        }
        // The values gathered in one pass and the validity in another (none
        // when every row has a value): no builder call per row.
        fn gathered<T: arrow::datatypes::ArrowPrimitiveType>(
            v: &[T::Native],
            ok: &[bool],
            rows: &[usize],
        ) -> ArrayRef {
            let values: Vec<T::Native> = rows.iter().map(|&r| v[r]).collect();
            let nulls = rows
                .iter()
                .any(|&r| !ok[r])
                .then(|| arrow::buffer::NullBuffer::from_iter(rows.iter().map(|&r| ok[r])));
            Arc::new(arrow::array::PrimitiveArray::<T>::new(values.into(), nulls))
        }
        match self {
            ValueStore::Float(v, ok) => gathered::<arrow::datatypes::Float64Type>(v, ok, rows),
            ValueStore::Int(v, ok) => gathered::<arrow::datatypes::Int64Type>(v, ok, rows),
            ValueStore::UInt(v, ok) => gathered::<arrow::datatypes::UInt64Type>(v, ok, rows),
            ValueStore::Bool(v, ok) => {
                Arc::new(BooleanArray::from_iter(rows.iter().map(|&r| opt(v, ok, r))))
            }
            ValueStore::Time(v) => Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|&r| v[r]),
            )),
            ValueStore::Str(v, true) => {
                let mut b = StringDictionaryBuilder::<Int32Type>::new();
                for &r in rows {
                    match &v[r] {
                        Some(s) => {
                            b.append_value(s.as_ref());
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            ValueStore::Str(v, false) => Arc::new(StringArray::from_iter(
                rows.iter().map(|&r| v[r].as_deref()),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
