//! The in-memory buffer: validated rows as Arrow record batches, per table,
//! chunked by time, in generations.
//!
//! ```text
//!  WAL flush ──apply(seq, WriteBatch)──▶ active generation
//!                                          table ─▶ chunk [t0, t0+gen1) ─▶ [b1, b2 ...]
//!  persist:  seal() ─▶ sealed generation (still queried) ─▶ Parquet ─▶ catalog
//!            ─▶ remove_generation(): the files now answer for those rows
//!  query ◀── table_chunks(): one deduplicated batch per (generation, chunk),
//!            oldest first, its rows sorted by series key (consolidated once,
//!            kept until the chunk changes)
//! ```
//!
//! Dedup rule (shared with persistence and the query path): rows with the
//! same tag set and time are one point; for each field, the value of the
//! latest row that has one wins. Buffer order is WAL order, so "latest" is
//! the last row in a chunk, and a later generation beats an earlier one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow::array::{Array, TimestampNanosecondArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use catalog::TableSchema;

pub mod replay;

pub use validation::WriteBatch;

use table_batch::{align, compact_dictionaries, dedup, sort_by_key, table_arrow_schema};

/// The default time chunk (`--gen1-duration`).
pub const DEFAULT_CHUNK_DURATION: Duration = Duration::from_secs(600);

/// Buffered rows of every table, in generations (oldest first; the last one
/// takes new writes).
#[derive(Debug)]
pub struct Buffer {
    chunk_ns: i64,
    gens: RwLock<Vec<Arc<Generation>>>,
    next_gen: AtomicU64,
    /// The data-delete cut-offs already applied, per (database, table name);
    /// `None` until the first [`Buffer::apply_catalog`].
    cutoffs_seen: Mutex<Option<CutoffsSeen>>,
    /// The caches the applied writes feed (after the WAL, in its order).
    caches: Arc<caches::Caches>,
    /// The highest tombstone whose delete marker was applied: every
    /// buffered row before it that a tombstone up to it matches is gone.
    deletes_applied: AtomicU64,
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

/// The data-delete cut-off applied, per (database id, table name).
type CutoffsSeen = HashMap<(u32, Arc<str>), i64>;

/// A generation's tables, by (database id, table id).
type TableBuffers = HashMap<(u32, u32), Arc<Mutex<TableBuffer>>>;

/// One generation: the rows of a run of WAL files.
#[derive(Debug)]
pub struct Generation {
    id: u64,
    chunk_ns: i64,
    tables: RwLock<TableBuffers>,
    bytes: AtomicUsize,
    /// The last WAL sequence number applied (0 if none).
    max_seq: AtomicU64,
    /// The buffer's `deletes_applied` when the generation was sealed (or
    /// now, while it is active): what its files record.
    deletes_applied: AtomicU64,
}

#[derive(Debug)]
struct TableBuffer {
    chunks: BTreeMap<i64, Chunk>,
    /// Stamped from [`NEXT_VERSION`] when created and on every write (see
    /// [`TableVersion`]).
    version: u64,
}

impl Default for TableBuffer {
    fn default() -> Self {
        Self {
            chunks: BTreeMap::new(),
            version: next_version(),
        }
    }
}

/// Versions of buffered tables, unique in the process.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// What a table's buffered rows are made of: each generation holding some
/// (by id, oldest first) with the version of its rows there. Any write to
/// the table, a generation dropped after persisting, a table's rows
/// dropped, or the buffer rebuilt gives a different value; equal values
/// mean [`Buffer::table_chunks`] returns the same rows. Taken before the
/// chunks, under the same locks as the writes, it may be older than them
/// but never newer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableVersion(Vec<(u64, u64)>);

#[derive(Debug, Default)]
struct Chunk {
    batches: Vec<RecordBatch>,
    /// The table's column count when `batches` became one deduplicated
    /// batch in the table's schema (`None`: not consolidated). Columns are
    /// only ever added, so the count names the schema.
    consolidated: Option<usize>,
    rows: usize,
    bytes: usize,
    min_time: i64,
    max_time: i64,
}

/// One deduplicated chunk of buffered rows, sorted by series key
/// ([`table_batch::sort_by_key`]).
#[derive(Debug, Clone)]
pub struct BufferChunk {
    /// The chunk's start time.
    pub chunk_time: i64,
    /// The rows, in the table's Arrow schema ([`table_batch::table_arrow_schema`]).
    pub batch: RecordBatch,
    /// The smallest `time`.
    pub min_time: i64,
    /// The largest `time`.
    pub max_time: i64,
}

impl Buffer {
    /// An empty buffer with the default time chunk.
    pub fn new() -> Self {
        Self::with_chunk_duration(DEFAULT_CHUNK_DURATION)
    }

    /// An empty buffer whose chunks span `d` (at least 1 ns).
    pub fn with_chunk_duration(d: Duration) -> Self {
        let chunk_ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).max(1);
        Self {
            chunk_ns,
            gens: RwLock::new(vec![Arc::new(Generation::new(1, chunk_ns))]),
            next_gen: AtomicU64::new(2),
            cutoffs_seen: Mutex::new(None),
            caches: Arc::new(caches::Caches::new()),
            deletes_applied: AtomicU64::new(0),
        }
    }

    /// The highest tombstone whose delete marker was applied here.
    pub fn deletes_applied(&self) -> u64 {
        self.deletes_applied.load(Ordering::Acquire)
    }

    /// Records that the markers up to `through` were applied before (in a
    /// WAL already persisted, so replay did not see them).
    pub fn set_deletes_applied(&self, through: u64) {
        self.deletes_applied.fetch_max(through, Ordering::AcqRel);
    }

    /// Applies a delete marker: every buffered row a tombstone of it
    /// matches is deleted, in every generation.
    fn apply_delete_marker(&self, gens: &[Arc<Generation>], marker: &validation::DeleteMarker) {
        let applied = self.deletes_applied();
        for (db_id, table_id, t) in &marker.tombstones {
            if t.id <= applied {
                continue;
            }
            for g in gens {
                g.delete_rows(*db_id, *table_id, t);
            }
            // The caches may hold deleted values: filled again without them.
            self.caches.refill_table(*db_id, *table_id);
        }
        self.deletes_applied
            .fetch_max(marker.through, Ordering::AcqRel);
    }

    /// This buffer, feeding `caches` (another buffer's, so a buffer rebuilt
    /// to replace it keeps them current) instead of its own.
    pub fn with_caches(mut self, caches: Arc<caches::Caches>) -> Self {
        self.caches = caches;
        self
    }

    /// The caches that the writes applied here feed.
    pub fn caches(&self) -> &Arc<caches::Caches> {
        &self.caches
    }

    /// Drops buffered rows the catalog says are deleted: tables and
    /// databases that are gone or soft-deleted, and tables whose data was
    /// deleted since the last call. The first call only records the data
    /// cut-offs (replay already skipped the rows they void).
    pub fn apply_catalog(&self, state: &catalog::CatalogState) {
        self.caches.sync(state);
        let mut seen_guard = lock(&self.cutoffs_seen);
        let first = seen_guard.is_none();
        let seen = seen_guard.get_or_insert_with(HashMap::new);
        let mut cleared: Vec<(u32, u32)> = Vec::new();
        for db in state.all_databases() {
            for t in db.all_tables() {
                if let Some(c) = db.wal_cutoffs.get(&t.name) {
                    let key = (db.id, Arc::clone(&t.name));
                    if seen.get(&key).is_none_or(|s| s < c) {
                        seen.insert(key, *c);
                        if !first {
                            cleared.push((db.id, t.id));
                        }
                    }
                }
            }
        }
        drop(seen_guard);
        // A table's cached rows go with its deleted data, buffered or not.
        for &(db_id, table_id) in &cleared {
            self.caches.clear_table(db_id, table_id);
        }
        let gens: Vec<Arc<Generation>> = read(&self.gens).clone();
        for g in gens {
            let keys: Vec<(u32, u32)> = read(&g.tables).keys().copied().collect();
            for (db_id, table_id) in keys {
                let live = state
                    .db_by_id(db_id)
                    .filter(|d| d.deleted.is_none())
                    .and_then(|d| d.table_by_id(table_id))
                    .is_some_and(|t| t.deleted.is_none());
                if !live || cleared.contains(&(db_id, table_id)) {
                    g.drop_table(db_id, table_id);
                }
            }
        }
    }

    /// The chunk duration in nanoseconds.
    pub fn chunk_ns(&self) -> i64 {
        self.chunk_ns
    }

    /// Appends the validated writes of WAL file `seq`. Called in WAL order.
    /// [`Buffer::seal`] waits for it, so a generation holds whole files.
    pub fn apply(&self, seq: u64, batch: WriteBatch) {
        self.apply_file(seq, [batch]);
    }

    /// Appends every write of WAL file `seq` into one generation.
    pub fn apply_file(&self, seq: u64, batches: impl IntoIterator<Item = WriteBatch>) {
        let gens = read(&self.gens);
        if let Some(active) = gens.last() {
            for b in batches {
                if let Some(marker) = &b.deletes {
                    self.apply_delete_marker(&gens, marker);
                    active.max_seq.fetch_max(seq, Ordering::AcqRel);
                    continue;
                }
                self.caches.apply(&b);
                active.apply(seq, b);
            }
        }
    }

    /// Seals the active generation and starts a new one. Returns the sealed
    /// generation, or `None` if it held nothing (then nothing changes).
    pub fn seal(&self) -> Option<Arc<Generation>> {
        let mut gens = write(&self.gens);
        let active = gens.last()?;
        if active.is_empty() {
            return None;
        }
        let sealed = Arc::clone(active);
        sealed
            .deletes_applied
            .store(self.deletes_applied(), Ordering::Release);
        let id = self.next_gen.fetch_add(1, Ordering::Relaxed);
        gens.push(Arc::new(Generation::new(id, self.chunk_ns)));
        Some(sealed)
    }

    /// Drops a sealed generation once its rows are persisted and visible in
    /// the catalog.
    pub fn remove_generation(&self, id: u64) {
        let mut gens = write(&self.gens);
        let last = gens.len().saturating_sub(1);
        if let Some(i) = gens.iter().position(|g| g.id == id)
            && i != last
        {
            gens.remove(i);
        }
    }

    /// Replaces everything with the contents of `other` (a querier rebuilt
    /// from the WAL files not yet persisted).
    pub fn replace_with(&self, other: Buffer) {
        let theirs = std::mem::take(&mut *write(&other.gens));
        self.deletes_applied
            .store(other.deletes_applied(), Ordering::Release);
        let mut gens = write(&self.gens);
        let mut next = self.next_gen.load(Ordering::Relaxed);
        *gens = theirs
            .into_iter()
            .map(|g| {
                let mut g = Arc::try_unwrap(g).unwrap_or_else(|g| g.clone_shallow());
                g.id = next;
                next += 1;
                Arc::new(g)
            })
            .collect();
        if gens.is_empty() {
            gens.push(Arc::new(Generation::new(next, self.chunk_ns)));
            next += 1;
        }
        self.next_gen.store(next, Ordering::Relaxed);
    }

    /// Approximate bytes held, over every generation.
    pub fn memory_bytes(&self) -> usize {
        read(&self.gens).iter().map(|g| g.bytes()).sum()
    }

    /// Rows buffered for a table (before dedup), over every generation.
    pub fn row_count(&self, db_id: u32, table_id: u32) -> usize {
        read(&self.gens)
            .iter()
            .map(|g| g.row_count(db_id, table_id))
            .sum()
    }

    /// The version of a table's buffered rows (see [`TableVersion`]).
    pub fn table_version(&self, db_id: u32, table_id: u32) -> TableVersion {
        let gens = read(&self.gens);
        TableVersion(
            gens.iter()
                .filter_map(|g| {
                    let tb = read(&g.tables).get(&(db_id, table_id)).cloned()?;
                    let v = lock(&tb).version;
                    Some((g.id, v))
                })
                .collect(),
        )
    }

    /// Every deduplicated chunk of a table, oldest generation first, each
    /// generation's chunks in time order.
    pub fn table_chunks(
        &self,
        db_id: u32,
        table: &TableSchema,
    ) -> Result<Vec<BufferChunk>, ArrowError> {
        let gens: Vec<Arc<Generation>> = read(&self.gens).clone();
        let mut out = Vec::new();
        for g in gens {
            out.extend(g.table_chunks(db_id, table)?);
        }
        Ok(out)
    }

    /// All buffered rows of a table as one deduplicated batch, in `table`'s
    /// Arrow schema. `None` if nothing is buffered.
    pub fn snapshot(
        &self,
        db_id: u32,
        table: &TableSchema,
    ) -> Result<Option<RecordBatch>, ArrowError> {
        let chunks = self.table_chunks(db_id, table)?;
        if chunks.is_empty() {
            return Ok(None);
        }
        let schema = table_arrow_schema(table);
        let batches: Vec<RecordBatch> = chunks.into_iter().map(|c| c.batch).collect();
        let all = concat_batches(&schema, &batches)?;
        dedup(&all, table).map(Some)
    }
}

impl Generation {
    fn new(id: u64, chunk_ns: i64) -> Self {
        Self {
            id,
            chunk_ns,
            tables: RwLock::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            deletes_applied: AtomicU64::new(0),
        }
    }

    fn clone_shallow(&self) -> Self {
        Self {
            id: self.id,
            chunk_ns: self.chunk_ns,
            tables: RwLock::new(read(&self.tables).clone()),
            bytes: AtomicUsize::new(self.bytes()),
            max_seq: AtomicU64::new(self.max_seq()),
            deletes_applied: AtomicU64::new(self.deletes_applied()),
        }
    }

    /// The highest tombstone applied to every row of this generation (set
    /// when it was sealed): what the files persisted from it record.
    pub fn deletes_applied(&self) -> u64 {
        self.deletes_applied.load(Ordering::Acquire)
    }

    /// Deletes the rows of a table that `t` matches.
    fn delete_rows(&self, db_id: u32, table_id: u32, t: &catalog::Tombstone) {
        let Some(tb) = read(&self.tables).get(&(db_id, table_id)).cloned() else {
            return;
        };
        let mut tb = lock(&tb);
        let mut changed = false;
        for c in tb.chunks.values_mut() {
            if c.max_time < t.min_time || c.min_time > t.max_time {
                continue;
            }
            for b in c.batches.iter_mut() {
                match table_batch::without_deleted(b, [t]) {
                    Ok(kept) if kept.num_rows() != b.num_rows() => {
                        let (before, after) =
                            (b.get_array_memory_size(), kept.get_array_memory_size());
                        c.rows -= b.num_rows() - kept.num_rows();
                        c.bytes = (c.bytes + after).saturating_sub(before);
                        self.bytes.fetch_add(after, Ordering::Relaxed);
                        self.bytes
                            .fetch_sub(before.min(self.bytes()), Ordering::Relaxed);
                        *b = kept;
                        changed = true;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, db_id, table_id, "a delete could not be applied to buffered rows")
                    }
                }
            }
            c.batches.retain(|b| b.num_rows() > 0);
        }
        if changed {
            tb.version = next_version();
        }
    }

    /// The generation id (higher is newer).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The last WAL sequence number applied.
    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Acquire)
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn is_empty(&self) -> bool {
        self.max_seq() == 0 && read(&self.tables).is_empty()
    }

    /// The (database, table) ids with rows here.
    pub fn tables(&self) -> Vec<(u32, u32)> {
        let mut t: Vec<_> = read(&self.tables).keys().copied().collect();
        t.sort_unstable();
        t
    }

    fn drop_table(&self, db_id: u32, table_id: u32) {
        let removed = write(&self.tables).remove(&(db_id, table_id));
        if let Some(tb) = removed {
            let bytes: usize = lock(&tb).chunks.values().map(|c| c.bytes).sum();
            self.bytes
                .fetch_sub(bytes.min(self.bytes()), Ordering::Relaxed);
        }
    }

    fn row_count(&self, db_id: u32, table_id: u32) -> usize {
        read(&self.tables)
            .get(&(db_id, table_id))
            .map_or(0, |t| lock(t).chunks.values().map(|c| c.rows).sum())
    }

    fn apply(&self, seq: u64, batch: WriteBatch) {
        for (table_id, rb) in batch.tables {
            if rb.num_rows() == 0 {
                continue;
            }
            let tb = self.table_or_create(batch.db_id, table_id);
            let mut tb = lock(&tb);
            tb.version = next_version();
            for (chunk_time, (min, max), part) in split_by_chunk(&rb, self.chunk_ns) {
                let bytes = part.get_array_memory_size();
                let c = tb.chunks.entry(chunk_time).or_insert_with(|| Chunk {
                    min_time: min,
                    max_time: max,
                    ..Default::default()
                });
                c.min_time = c.min_time.min(min);
                c.max_time = c.max_time.max(max);
                c.rows += part.num_rows();
                c.bytes += bytes;
                c.batches.push(part);
                c.consolidated = None;
                self.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
        self.max_seq.fetch_max(seq, Ordering::AcqRel);
    }

    fn table_or_create(&self, db_id: u32, table_id: u32) -> Arc<Mutex<TableBuffer>> {
        if let Some(t) = read(&self.tables).get(&(db_id, table_id)) {
            return Arc::clone(t);
        }
        Arc::clone(write(&self.tables).entry((db_id, table_id)).or_default())
    }

    /// This generation's deduplicated chunks of a table, in time order.
    pub fn table_chunks(
        &self,
        db_id: u32,
        table: &TableSchema,
    ) -> Result<Vec<BufferChunk>, ArrowError> {
        let Some(tb) = read(&self.tables).get(&(db_id, table.id)).cloned() else {
            return Ok(Vec::new());
        };
        // Comparing schemas field by field for every chunk of every query
        // cost more than the rest of this call; the column count is enough.
        let columns = table.columns().len();
        let mut schema: Option<SchemaRef> = None;
        let mut tb = lock(&tb);
        let mut out = Vec::with_capacity(tb.chunks.len());
        for (chunk_time, c) in tb.chunks.iter_mut() {
            if c.batches.is_empty() {
                continue;
            }
            if c.consolidated != Some(columns) {
                let schema = schema.get_or_insert_with(|| table_arrow_schema(table));
                let aligned = c
                    .batches
                    .iter()
                    .map(|b| align(b, schema))
                    .collect::<Result<Vec<_>, _>>()?;
                let all = concat_batches(schema, &aligned)?;
                // Sorted by series key, a series' rows are one slice that a
                // query on the first key tag finds by binary search.
                let deduped = compact_dictionaries(&sort_by_key(&dedup(&all, table)?, table)?)?;
                let bytes = deduped.get_array_memory_size();
                // Keep the byte count honest: consolidation can shrink or grow it.
                if bytes >= c.bytes {
                    self.bytes.fetch_add(bytes - c.bytes, Ordering::Relaxed);
                } else {
                    self.bytes.fetch_sub(c.bytes - bytes, Ordering::Relaxed);
                }
                c.bytes = bytes;
                c.rows = deduped.num_rows();
                c.batches = vec![deduped];
                c.consolidated = Some(columns);
            }
            if let Some(b) = c.batches.first() {
                out.push(BufferChunk {
                    chunk_time: *chunk_time,
                    batch: b.clone(),
                    min_time: c.min_time,
                    max_time: c.max_time,
                });
            }
        }
        Ok(out)
    }
}

/// Splits a batch into the time chunks its rows fall in, each with its
/// smallest and largest `time`.
fn split_by_chunk(batch: &RecordBatch, chunk_ns: i64) -> Vec<(i64, (i64, i64), RecordBatch)> {
    let chunk_of = |t: i64| t - t.rem_euclid(chunk_ns);
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
    let Some((times, min, max)) =
        times.and_then(|t| Some((t, arrow::compute::min(t)?, arrow::compute::max(t)?)))
    else {
        return vec![(0, (0, 0), batch.clone())];
    };
    if chunk_of(min) == chunk_of(max) {
        return vec![(chunk_of(min), (min, max), batch.clone())];
    }
    let mut rows: BTreeMap<i64, (i64, i64, Vec<u32>)> = BTreeMap::new();
    for (i, t) in times.values().iter().enumerate() {
        let (lo, hi, idx) = rows.entry(chunk_of(*t)).or_insert((*t, *t, Vec::new()));
        *lo = (*lo).min(*t);
        *hi = (*hi).max(*t);
        idx.push(i as u32);
    }
    let split = rows
        .into_iter()
        .map(|(chunk, (lo, hi, idx))| {
            take_record_batch(batch, &UInt32Array::from(idx)).map(|b| (chunk, (lo, hi), b))
        })
        .collect::<Result<Vec<_>, ArrowError>>();
    // `take` on valid arrays does not fail; if it ever did, keeping the rows
    // together in one chunk is still correct (chunks are only a layout).
    split.unwrap_or_else(|_| vec![(chunk_of(min), (min, max), batch.clone())])
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match l.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
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

#[cfg(test)]
mod tests;
