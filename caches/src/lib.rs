//! In-memory caches that answer the queries dashboards send all day from
//! memory instead of scans: the last value cache (the newest rows of each
//! key, see [`last`]) and the distinct value cache (the combinations of a
//! few columns' values, see [`distinct`]).
//!
//! ```text
//!  catalog (definitions) ──sync──▶ Caches ◀──apply(WriteBatch)── buffer, after the WAL
//!                                    │
//!                      last_cache('t') table function (query crate)
//! ```
//!
//! The definitions live in the catalog, so every process (ingesters and
//! queriers, which apply the WAL they tail the same way) builds the same
//! caches; the contents are fed by the writes each process applies, and
//! refilled after a restart by the WAL replay and a query of the newest
//! persisted rows.

pub mod distinct;
pub mod last;
#[cfg(test)]
mod test_writes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use catalog::CatalogState;
use validation::WriteBatch;

/// Whether a cache holds its table's rows, and how many times it was
/// emptied to be filled again (a delete removed some rows): a fill reads
/// the count before it queries the table and keeps its rows only if the
/// count has not moved. Changed under the cache's own lock, so an emptying
/// and a fill never interleave.
#[derive(Debug, Default)]
pub(crate) struct FillState {
    filled: AtomicBool,
    refills: AtomicU64,
}

impl FillState {
    /// The cache was emptied, to be filled again.
    fn emptied(&self) {
        self.refills.fetch_add(1, Ordering::Relaxed);
        self.filled.store(false, Ordering::Relaxed);
    }

    fn refills(&self) -> u64 {
        // A stale count only makes a fill drop rows it could have kept.
        self.refills.load(Ordering::Relaxed)
    }

    fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Relaxed)
    }

    /// Runs `push` and records the cache filled, unless it was emptied
    /// since `read_at` (then `false`: the next pass fills it).
    fn fill_if_current(&self, read_at: u64, push: impl FnOnce()) -> bool {
        if self.refills() != read_at {
            return false;
        }
        push();
        self.filled.store(true, Ordering::Relaxed);
        true
    }
}

pub use distinct::{DistinctCache, ValueFilter};
pub use last::{KeyFilter, LastCache};

/// Caches of one kind per table, by (database id, table id).
type ByTable<C> = HashMap<(u32, u32), Vec<Arc<C>>>;
/// The last value caches of each table.
type LastCachesByTable = ByTable<LastCache>;
/// The distinct value caches of each table.
type DistinctCachesByTable = ByTable<DistinctCache>;

/// Every cache of this process, by table.
#[derive(Debug, Default)]
pub struct Caches {
    last: RwLock<LastCachesByTable>,
    distinct: RwLock<DistinctCachesByTable>,
    /// When expired rows were last dropped.
    swept: std::sync::Mutex<Option<std::time::Instant>>,
    /// The catalog sequence number the caches were last brought to.
    synced: std::sync::Mutex<Option<u64>>,
}

impl Caches {
    /// No caches yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Brings the set of caches to the catalog's definitions: new ones
    /// start empty, removed ones (and those of deleted tables) are dropped,
    /// and (at most once a second) expired rows go. Cheap when the catalog
    /// did not change since the last call (it is called on every WAL poll).
    pub fn sync(&self, state: &CatalogState) {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if *synced != Some(state.seq) {
            *synced = Some(state.seq);
            let last = rebuild(
                state,
                &self.last,
                |t| &t.last_caches,
                |c| c.def(),
                LastCache::new,
            );
            let distinct = rebuild(
                state,
                &self.distinct,
                |t| &t.distinct_caches,
                |c| c.def(),
                |_, t, def| DistinctCache::new(t, def),
            );
            *self.last.write().unwrap_or_else(|p| p.into_inner()) = last;
            *self.distinct.write().unwrap_or_else(|p| p.into_inner()) = distinct;
        }
        drop(synced);
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        if swept.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
            *swept = Some(std::time::Instant::now());
            let last = self.last.read().unwrap_or_else(|p| p.into_inner());
            for c in last.values().flatten() {
                c.remove_expired();
            }
            let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
            for c in distinct.values().flatten() {
                c.remove_expired();
            }
        }
    }

    /// Empties the caches of a table whose rows were deleted.
    pub fn clear_table(&self, db_id: u32, table_id: u32) {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        for c in last.get(&(db_id, table_id)).into_iter().flatten() {
            c.clear();
        }
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        for c in distinct.get(&(db_id, table_id)).into_iter().flatten() {
            c.clear();
        }
    }

    /// Empties the caches of a table some of whose rows a predicate delete
    /// removed, to be filled again from the table's rows (which no longer
    /// hold them; the query engine's filler does it within a second).
    pub fn refill_table(&self, db_id: u32, table_id: u32) {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        for c in last.get(&(db_id, table_id)).into_iter().flatten() {
            c.empty_for_refill();
        }
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        for c in distinct.get(&(db_id, table_id)).into_iter().flatten() {
            c.empty_for_refill();
        }
    }

    /// Feeds a write to the caches of its tables.
    pub fn apply(&self, batch: &WriteBatch) {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        if last.is_empty() && distinct.is_empty() {
            return;
        }
        for (table_id, rows) in &batch.tables {
            let key = (batch.db_id, *table_id);
            for c in last.get(&key).into_iter().flatten() {
                c.push_batch(rows);
            }
            for c in distinct.get(&key).into_iter().flatten() {
                c.push_batch(rows);
            }
        }
    }

    /// The distinct value cache `name` of a table (its only one when
    /// `name` is `None` and it has exactly one).
    pub fn distinct_cache(
        &self,
        db_id: u32,
        table_id: u32,
        name: Option<&str>,
    ) -> Result<Arc<DistinctCache>, String> {
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        let caches = distinct.get(&(db_id, table_id)).map(Vec::as_slice);
        pick(caches.unwrap_or(&[]), name, |c| &c.def().name, "distinct")
    }

    /// The distinct value caches of a table.
    pub fn distinct_caches_of(&self, db_id: u32, table_id: u32) -> Vec<Arc<DistinctCache>> {
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        distinct
            .get(&(db_id, table_id))
            .cloned()
            .unwrap_or_default()
    }

    /// The last value cache `name` of a table (its only one when `name` is
    /// `None` and it has exactly one).
    pub fn last_cache(
        &self,
        db_id: u32,
        table_id: u32,
        name: Option<&str>,
    ) -> Result<Arc<LastCache>, String> {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        let caches = last.get(&(db_id, table_id)).map(Vec::as_slice);
        pick(caches.unwrap_or(&[]), name, |c| &c.def().name, "last")
    }

    /// The tables with a cache not yet filled from their rows (a cache this
    /// node learned of from the catalog, made on another node or before
    /// this process started): (database id, table id).
    pub fn unfilled(&self) -> Vec<(u32, u32)> {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        let distinct = self.distinct.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(u32, u32)> = last
            .iter()
            .filter(|(_, l)| l.iter().any(|c| !c.is_filled()))
            .map(|(k, _)| *k)
            .chain(
                distinct
                    .iter()
                    .filter(|(_, l)| l.iter().any(|c| !c.is_filled()))
                    .map(|(k, _)| *k),
            )
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every last value cache: (database id, table id, cache).
    pub fn last_caches(&self) -> Vec<(u32, u32, Arc<LastCache>)> {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = last
            .iter()
            .flat_map(|(&(d, t), l)| l.iter().map(move |c| (d, t, Arc::clone(c))))
            .collect();
        all.sort_by(|a, b| (a.0, a.1, &a.2.def().name).cmp(&(b.0, b.1, &b.2.def().name)));
        all
    }
}

/// The cache of `caches` named `name`, or the only one when `name` is
/// `None`; `kind` (`last`, `distinct`) words the errors.
fn pick<T>(
    caches: &[Arc<T>],
    name: Option<&str>,
    name_of: impl Fn(&T) -> &String,
    kind: &str,
) -> Result<Arc<T>, String> {
    match name {
        Some(n) => caches
            .iter()
            .find(|c| name_of(c) == n)
            .cloned()
            .ok_or_else(|| format!("no {kind} cache named '{n}' on this table")),
        None => match caches {
            [one] => Ok(Arc::clone(one)),
            [] => Err(format!("the table has no {kind} cache")),
            _ => Err(format!(
                "the table has several {kind} caches; name one: {kind}_cache('table', 'name')"
            )),
        },
    }
}

/// One kind of cache per table as the catalog now defines them: those
/// whose definition is unchanged are kept (with their rows), others made.
fn rebuild<C, D: PartialEq + Clone>(
    state: &CatalogState,
    current: &RwLock<ByTable<C>>,
    defs_of: impl Fn(&catalog::TableSchema) -> &[D],
    def_of: impl Fn(&C) -> &D,
    make: impl Fn(&catalog::DatabaseSchema, &catalog::TableSchema, D) -> C,
) -> ByTable<C> {
    let current = current.read().unwrap_or_else(|p| p.into_inner());
    let mut wanted = HashMap::new();
    for db in state.databases() {
        for table in db.tables() {
            let defs = defs_of(table);
            if defs.is_empty() {
                continue;
            }
            let key = (db.id, table.id);
            let existing = current.get(&key);
            let list = defs
                .iter()
                .map(|def| {
                    existing
                        .and_then(|l| l.iter().find(|c| def_of(c) == def))
                        .cloned()
                        .unwrap_or_else(|| Arc::new(make(db, table, def.clone())))
                })
                .collect();
            wanted.insert(key, list);
        }
    }
    wanted
}
