//! The distinct value cache: the combinations of values of a few columns
//! (tags or string fields, in hierarchy order) that the table's writes
//! carried, each kept for `max_age` after it was last seen, and at most
//! `max_cardinality` of them (the least recently seen go first).
//!
//! ```text
//!  region ─▶ "eu" ─▶ host ─▶ "b" (seen t1)
//!         │               └▶ "c" (seen t2)
//!         └▶ "us" ─▶ host ─▶ "a" (seen t3)
//! ```
//!
//! A row that has none of the columns adds nothing; a missing value lower
//! in the hierarchy is a null in its combination, as `SELECT DISTINCT`
//! shows it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use catalog::{ColumnKind, DistinctCacheDef, FieldType, TableSchema};

/// Whether a column of this kind can be in a distinct value cache (as
/// InfluxDB 3: tags and string fields).
pub fn valid_column_kind(kind: ColumnKind) -> bool {
    matches!(kind, ColumnKind::Tag | ColumnKind::Field(FieldType::String))
}

/// A condition on one column, applied while the cache walks its levels:
/// the value is (or, `negated`, is not) one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueFilter {
    /// The column.
    pub column: String,
    /// The values.
    pub values: Vec<Arc<str>>,
    /// `!=` / `NOT IN`.
    pub negated: bool,
}

#[derive(Debug, Default)]
struct Level {
    values: BTreeMap<Option<Arc<str>>, Entry>,
}

#[derive(Debug)]
struct Entry {
    seen: Instant,
    /// The next column's values; `None` at the last column.
    next: Option<Level>,
}

impl Level {
    /// Inserts one combination; whether it is new.
    fn insert(&mut self, path: &[Option<Arc<str>>], now: Instant) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        let mut new = false;
        let entry = self.values.entry(first.clone()).or_insert_with(|| {
            new = rest.is_empty();
            Entry {
                seen: now,
                next: (!rest.is_empty()).then(Level::default),
            }
        });
        entry.seen = now;
        match &mut entry.next {
            Some(level) => level.insert(rest, now) || new,
            None => new,
        }
    }

    /// Drops combinations last seen before `oldest`; how many are left.
    fn retain_seen(&mut self, oldest: Instant) -> usize {
        let mut left = 0;
        self.values.retain(|_, e| {
            if e.seen < oldest {
                return false;
            }
            match &mut e.next {
                Some(level) => {
                    let n = level.retain_seen(oldest);
                    left += n;
                    n > 0
                }
                None => {
                    left += 1;
                    true
                }
            }
        });
        left
    }

    fn leaves(
        &self,
        path: &mut Vec<Option<Arc<str>>>,
        out: &mut Vec<(Instant, Vec<Option<Arc<str>>>)>,
    ) {
        for (v, e) in &self.values {
            path.push(v.clone());
            match &e.next {
                Some(level) => level.leaves(path, out),
                None => out.push((e.seen, path.clone())),
            }
            path.pop();
        }
    }

    /// Removes one combination; whether this level is empty after it.
    fn remove(&mut self, path: &[Option<Arc<str>>]) -> bool {
        if let Some((first, rest)) = path.split_first() {
            let now_empty = match self.values.get_mut(first) {
                Some(Entry {
                    next: Some(level), ..
                }) => level.remove(rest),
                Some(Entry { next: None, .. }) => true,
                None => false,
            };
            if now_empty {
                self.values.remove(first);
            }
        }
        self.values.is_empty()
    }

    fn collect<'a>(
        &'a self,
        filters: &[Vec<&ValueFilter>],
        oldest: Option<Instant>,
        depth: usize,
        path: &mut Vec<&'a Option<Arc<str>>>,
        out: &mut Vec<Vec<&'a Option<Arc<str>>>>,
    ) {
        let here = filters.get(depth).map(Vec::as_slice).unwrap_or(&[]);
        for (v, e) in &self.values {
            let passes = here.iter().all(|f| match v {
                // A null equals nothing and differs from nothing, as in SQL.
                None => false,
                Some(s) => f.values.iter().any(|x| x == s) != f.negated,
            });
            if !passes || oldest.is_some_and(|o| e.seen < o) {
                continue;
            }
            path.push(v);
            match &e.next {
                Some(level) => level.collect(filters, oldest, depth + 1, path, out),
                None => out.push(path.clone()),
            }
            path.pop();
        }
    }
}

#[derive(Debug)]
struct State {
    root: Level,
    count: usize,
}

/// One distinct value cache of one table.
#[derive(Debug)]
pub struct DistinctCache {
    /// Whether it was filled from the table's rows (see `Caches::unfilled`).
    fill: crate::FillState,
    def: DistinctCacheDef,
    table_name: Arc<str>,
    state: Mutex<State>,
}

impl DistinctCache {
    /// An empty cache of `table` by `def` (checked by the catalog).
    pub fn new(table: &TableSchema, def: DistinctCacheDef) -> Self {
        Self {
            fill: Default::default(),
            def,
            table_name: Arc::clone(&table.name),
            state: Mutex::new(State {
                root: Level::default(),
                count: 0,
            }),
        }
    }

    /// Empties it, to be filled again from the table's rows (a delete
    /// removed some of them).
    pub fn empty_for_refill(&self) {
        let mut state = self.lock();
        Self::clear_locked(&mut state);
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
    pub fn def(&self) -> &DistinctCacheDef {
        &self.def
    }

    /// The table it caches.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// How many combinations it holds.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops every combination.
    pub fn clear(&self) {
        Self::clear_locked(&mut self.lock());
    }

    fn clear_locked(s: &mut State) {
        s.root = Level::default();
        s.count = 0;
    }

    /// Drops the combinations not seen for `max_age`.
    pub fn remove_expired(&self) {
        if let Some(oldest) = Instant::now().checked_sub(Duration::from_secs(self.def.max_age_secs))
        {
            let mut s = self.lock();
            s.count = s.root.retain_seen(oldest);
        }
    }

    /// Adds the combinations of `batch`'s rows (a write, or rows read back).
    pub fn push_batch(&self, batch: &RecordBatch) {
        self.push_into(&mut self.lock(), batch);
    }

    fn push_into(&self, s: &mut State, batch: &RecordBatch) {
        let arrays: Vec<Option<&ArrayRef>> = self
            .def
            .columns
            .iter()
            .map(|c| batch.column_by_name(c))
            .collect();
        if arrays.iter().all(Option::is_none) {
            return;
        }
        let start = Instant::now();
        let mut path: Vec<Option<Arc<str>>> = Vec::with_capacity(arrays.len());
        for row in 0..batch.num_rows() {
            path.clear();
            path.extend(
                arrays
                    .iter()
                    .map(|a| a.and_then(|a| string_at(a.as_ref(), row))),
            );
            if path.iter().all(Option::is_none) {
                continue;
            }
            // Later rows of the batch count as seen later.
            let seen = start + Duration::from_nanos(row as u64);
            if s.root.insert(&path, seen) {
                s.count += 1;
            }
        }
        if s.count > self.def.max_cardinality {
            // The least recently seen go: keep the newest `max_cardinality`.
            let mut leaves = Vec::with_capacity(s.count);
            s.root.leaves(&mut Vec::new(), &mut leaves);
            leaves.sort_unstable_by_key(|l| l.0);
            let excess = leaves.len().saturating_sub(self.def.max_cardinality);
            for (_, path) in leaves.into_iter().take(excess) {
                s.root.remove(&path);
            }
            s.count = s.count.saturating_sub(excess);
        }
    }

    /// The cached combinations that pass `filters`, sorted.
    pub fn record_batch(&self, filters: &[ValueFilter]) -> Result<RecordBatch, ArrowError> {
        let s = self.lock();
        let oldest = Instant::now().checked_sub(Duration::from_secs(self.def.max_age_secs));
        let level_filters: Vec<Vec<&ValueFilter>> = self
            .def
            .columns
            .iter()
            .map(|c| filters.iter().filter(|f| f.column == *c).collect())
            .collect();
        let mut found = Vec::new();
        s.root
            .collect(&level_filters, oldest, 0, &mut Vec::new(), &mut found);
        let mut builders: Vec<StringBuilder> = self
            .def
            .columns
            .iter()
            .map(|_| StringBuilder::new())
            .collect();
        for combo in found {
            for (b, v) in builders.iter_mut().zip(combo) {
                b.append_option(v.as_deref());
            }
        }
        let columns: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        RecordBatch::try_new(self.schema(), columns)
    }

    /// Its columns: the cached ones, as strings.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.def
                .columns
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }
}

fn string_at(a: &dyn Array, row: usize) -> Option<Arc<str>> {
    if a.is_null(row) {
        return None;
    }
    let any = a.as_any();
    if let Some(d) = any.downcast_ref::<DictionaryArray<Int32Type>>() {
        let values = d.values().as_any().downcast_ref::<StringArray>()?;
        let k = usize::try_from(d.keys().value(row)).ok()?;
        return (k < values.len() && values.is_valid(k)).then(|| Arc::from(values.value(k)));
    }
    any.downcast_ref::<StringArray>()
        .map(|s| Arc::from(s.value(row)))
}

#[cfg(test)]
mod tests;
