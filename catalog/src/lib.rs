//! The catalog: databases, tables and columns with their types, and the
//! cluster UUID, kept on the object store as a log of transactions.
//!
//! ```text
//!  catalog/checkpoint.json          state at some seq N (written every CHECKPOINT_EVERY txns)
//!  catalog/log/{N+1:020}.json       one transaction each, created with PutMode::Create
//!  catalog/log/{N+2:020}.json       ...
//! ```
//!
//! Every pod holds the materialised state in memory. A writer describes what it
//! needs as an *intent* ([`SchemaChange`]: "this table with these columns must
//! exist"). The catalog turns the intent into operations against the newest
//! state and tries to create the next log file. If another writer got that
//! sequence number first, the create fails with `AlreadyExists`: the loser reads
//! the winner's transaction, recomputes its operations and retries. So every
//! change lands exactly once, and two writers adding one column with different
//! types get exactly one winner; the loser's lines then fail validation against
//! the winner's type.
//!
//! Readers start from the checkpoint and read log files one by one from its
//! sequence until one is missing, so start-up never lists the whole log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod files;
mod schema;
pub mod tokens;
pub use files::{ParquetFile, TableFiles, ValueSet};
pub use schema::{
    ColumnDef, ColumnKind, DatabaseSchema, Deletion, DistinctCacheDef, ErrorBehavior, FieldType,
    FileIndexDef, LastCacheDef, TableSchema, TagCondition, TagOp, Tombstone, TriggerDef,
    validate_db_name,
};
pub use tokens::{Action, Permission, ResourceType, TokenInfo};

/// A checkpoint is written after this many transactions.
const CHECKPOINT_EVERY: u64 = 100;

/// Errors from the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The object store failed.
    #[error("catalog object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A catalog file could not be decoded.
    #[error(
        "catalog file {path} is corrupt: {source}; restore it from a backup or remove the catalog to start empty"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// A log file holds an operation that doesn't apply to the state before it.
    #[error("catalog log {seq} does not apply: {reason}")]
    Inconsistent {
        /// The log sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The thing to create exists already (HTTP 409).
    #[error("{0}")]
    AlreadyExists(String),
    /// The thing to change does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The change is not allowed (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// This process only reads the catalog (a querier).
    #[error("this node only reads the catalog; send catalog changes to an ingester")]
    ReadOnly,
    /// The writer's lease epoch is no longer the catalog's: another process
    /// took its node id (or the compactor role) over.
    #[error(
        "lease '{lease}' epoch {epoch} was superseded (the catalog has {current:?}); this process must stop acting under it"
    )]
    LeaseLost {
        /// The lease.
        lease: String,
        /// The writer's epoch.
        epoch: u64,
        /// The catalog's.
        current: Option<u64>,
    },
    /// Too many concurrent writers kept winning the race.
    #[error(
        "catalog update did not succeed after {0} attempts because of concurrent updates; retry the request"
    )]
    TooMuchContention(usize),
}

/// One operation in a catalog transaction. Ids are assigned by the writer
/// against the state the transaction follows, so replay is deterministic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogOp {
    /// The first transaction: gives the catalog its UUID.
    Init {
        /// The catalog (cluster) UUID.
        uuid: Uuid,
    },
    /// A new database.
    CreateDatabase {
        /// Its id.
        db_id: u32,
        /// Its name.
        name: String,
        /// Its retention period, if any.
        #[serde(default)]
        retention_ns: Option<i64>,
    },
    /// A database's retention period changes (`None`: keep forever).
    SetDatabaseRetention {
        /// The database.
        db_id: u32,
        /// The new retention.
        retention_ns: Option<i64>,
    },
    /// A soft delete: the database is renamed and hidden; its name is free.
    SoftDeleteDatabase {
        /// The database.
        db_id: u32,
        /// Its name from now on.
        new_name: String,
        /// When.
        deleted_at_ns: i64,
        /// When to remove it for good, if scheduled.
        hard_delete_at_ns: Option<i64>,
    },
    /// The database leaves the catalog; its files become garbage.
    RemoveDatabase {
        /// The database.
        db_id: u32,
    },
    /// Every row of the database is deleted; its schema stays (unless
    /// `remove_tables`, which removes the tables too).
    ClearDatabaseData {
        /// The database.
        db_id: u32,
        /// When: WAL lines written up to then are void.
        at_ns: i64,
        /// Remove the tables as well.
        remove_tables: bool,
    },
    /// A table's retention period changes (`None`: the database's applies).
    SetTableRetention {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The new retention.
        retention_ns: Option<i64>,
    },
    /// A soft delete of a table: renamed and hidden; its name is free.
    SoftDeleteTable {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// Its name from now on.
        new_name: String,
        /// When.
        deleted_at_ns: i64,
        /// When to remove it for good, if scheduled.
        hard_delete_at_ns: Option<i64>,
    },
    /// The table leaves the catalog; its files become garbage.
    RemoveTable {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
    },
    /// Every row of the table is deleted; its schema stays.
    ClearTableData {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// When: WAL lines written up to then are void.
        at_ns: i64,
    },
    /// Garbage objects that were deleted from the store.
    ForgetGarbage {
        /// Their paths.
        paths: Vec<String>,
    },
    /// A new table with its first columns.
    CreateTable {
        /// The database.
        db_id: u32,
        /// The new table's id.
        table_id: u32,
        /// Its name.
        name: String,
        /// Its columns.
        columns: Vec<ColumnDef>,
    },
    /// A new token (only its hash).
    CreateToken {
        /// The token.
        token: TokenInfo,
    },
    /// A token is revoked.
    DeleteToken {
        /// The token's id.
        id: u64,
    },
    /// Parquet files persisted by `node_id`, covering its WAL up to and
    /// including `wal_seq`. Ids in `files` are assigned by the writer.
    AddParquetFiles {
        /// The ingester that persisted them.
        node_id: String,
        /// The last WAL sequence number the files cover.
        wal_seq: u64,
        /// The files.
        files: Vec<ParquetFile>,
        /// The highest tombstone whose marker is in the node's WAL up to
        /// `wal_seq` (see [`Tombstone`]).
        #[serde(default)]
        deletes_marked: u64,
    },
    /// Files removed from the index (compaction, retention, deletes). The
    /// objects themselves are deleted later, after a grace period.
    RemoveParquetFiles {
        /// The files: (database, table, file id).
        ids: Vec<(u32, u32, u64)>,
        /// When (starts the grace period).
        #[serde(default)]
        at_ns: i64,
    },
    /// A compaction: `added` replaces the files `removed` of one table and
    /// takes the highest of their ids, so it keeps their place in write
    /// order among the table's other files. If any of `removed` is gone
    /// (retention or a delete got there first), nothing is replaced and
    /// `added` becomes garbage.
    ReplaceParquetFiles {
        /// The files merged, all of `added`'s table.
        removed: Vec<u64>,
        /// The merged file; its id is set when the operation applies.
        added: ParquetFile,
        /// When (starts the grace period of the removed files).
        at_ns: i64,
    },
    /// A process took epoch `epoch` of lease `lease` (its node id, or the
    /// compactor role). Fenced writes of older epochs are refused from now on.
    TakeLease {
        /// The lease name.
        lease: String,
        /// The epoch taken.
        epoch: u64,
        /// The process.
        instance_id: Uuid,
        /// What the process does (`ingest`, `compact`, ...): queriers tail
        /// the WAL of the node leases with `ingest`.
        #[serde(default)]
        roles: Vec<String>,
    },
    /// A last value cache on a table.
    CreateLastCache {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The cache.
        cache: LastCacheDef,
    },
    /// A last value cache goes away.
    DeleteLastCache {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The cache's name.
        name: String,
    },
    /// A distinct value cache on a table.
    CreateDistinctCache {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The cache.
        cache: DistinctCacheDef,
    },
    /// A distinct value cache goes away.
    DeleteDistinctCache {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The cache's name.
        name: String,
    },
    /// A file index is set (replacing the one of the same table, or of the
    /// database when `table` is `None`).
    SetFileIndex {
        /// The database.
        db_id: u32,
        /// The index.
        index: FileIndexDef,
    },
    /// A file index goes away.
    DeleteFileIndex {
        /// The database.
        db_id: u32,
        /// Its table, or `None` for the database's.
        table: Option<String>,
    },
    /// Value indexes computed for files persisted before their columns were
    /// indexed: per file id of the database, its columns' value sets.
    IndexParquetFiles {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// Per file id, the value sets to add.
        files: Vec<(u64, BTreeMap<Arc<str>, ValueSet>)>,
    },
    /// A processing engine trigger.
    CreateTrigger {
        /// The database.
        db_id: u32,
        /// The trigger.
        trigger: TriggerDef,
    },
    /// A trigger goes away.
    DeleteTrigger {
        /// The database.
        db_id: u32,
        /// The trigger's name.
        name: String,
    },
    /// A trigger is disabled or enabled.
    SetTriggerDisabled {
        /// The database.
        db_id: u32,
        /// The trigger's name.
        name: String,
        /// Disabled from now on, or enabled.
        disabled: bool,
    },
    /// Predicate deletes on tables of one database (ids assigned by the
    /// writer from [`CatalogState::next_tombstone_id`]).
    CreateTombstones {
        /// The database.
        db_id: u32,
        /// Per table, the tombstone.
        tombstones: Vec<(u32, Tombstone)>,
    },
    /// Tombstones no file or WAL needs any more (the compactor rewrote
    /// the files they applied to).
    DropTombstones {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The tombstones' ids.
        ids: Vec<u64>,
    },
    /// New columns on an existing table.
    AddColumns {
        /// The database.
        db_id: u32,
        /// The table.
        table_id: u32,
        /// The new columns.
        columns: Vec<ColumnDef>,
    },
}

/// The catalog's record of a lease: the epoch last taken, by which
/// process, with which roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The epoch.
    pub epoch: u64,
    /// The process.
    pub instance_id: Uuid,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// One log file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Transaction {
    seq: u64,
    time_ns: i64,
    ops: Vec<CatalogOp>,
}

/// The materialised catalog at one sequence number. Immutable; changes make a
/// new state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogState {
    /// The last applied log sequence number.
    pub seq: u64,
    /// The catalog UUID (nil until the Init transaction).
    pub uuid: Uuid,
    next_db_id: u32,
    next_table_id: u32,
    databases: BTreeMap<u32, Arc<DatabaseSchema>>,
    #[serde(default)]
    next_token_id: u64,
    #[serde(default)]
    tokens: BTreeMap<u64, Arc<TokenInfo>>,
    #[serde(default)]
    next_file_id: u64,
    /// Per database, per table: the Parquet files.
    #[serde(default)]
    files: BTreeMap<u32, BTreeMap<u32, Arc<TableFiles>>>,
    /// Per ingester node: the last WAL sequence number persisted to Parquet.
    #[serde(default)]
    persisted_wal: BTreeMap<String, u64>,
    /// Objects no longer referenced, with the time they were dropped; the
    /// compactor deletes them after a grace period.
    #[serde(default)]
    garbage: BTreeMap<String, i64>,
    /// WAL lines for a database name written at or before this time are
    /// void (the database was deleted).
    #[serde(default)]
    db_name_cutoffs: BTreeMap<String, i64>,
    /// Per lease, the epoch last taken, by which process, and its roles.
    #[serde(default)]
    leases: BTreeMap<String, LeaseRecord>,
    #[serde(default)]
    next_tombstone_id: u64,
    /// Per ingester node: the highest tombstone whose marker is in its
    /// persisted WAL.
    #[serde(default)]
    deletes_marked: BTreeMap<String, u64>,
    #[serde(skip)]
    db_by_name: HashMap<Arc<str>, u32>,
    #[serde(skip)]
    token_by_hash: HashMap<Vec<u8>, u64>,
    #[serde(skip)]
    token_by_name: HashMap<Arc<str>, u64>,
}

impl CatalogState {
    /// A database by name.
    pub fn db(&self, name: &str) -> Option<&Arc<DatabaseSchema>> {
        self.db_by_name
            .get(name)
            .and_then(|id| self.databases.get(id))
    }

    /// A database by id.
    pub fn db_by_id(&self, id: u32) -> Option<&Arc<DatabaseSchema>> {
        self.databases.get(&id)
    }

    /// The live (not deleted) databases, by id.
    pub fn databases(&self) -> impl Iterator<Item = &Arc<DatabaseSchema>> {
        self.databases.values().filter(|d| d.deleted.is_none())
    }

    /// Every database, soft-deleted ones included, by id.
    pub fn all_databases(&self) -> impl Iterator<Item = &Arc<DatabaseSchema>> {
        self.databases.values()
    }

    /// Whether WAL lines for database `name` written at `time_ns` were
    /// voided by a later delete of that database.
    pub fn wal_db_voided(&self, name: &str, time_ns: i64) -> bool {
        self.db_name_cutoffs
            .get(name)
            .is_some_and(|c| time_ns <= *c)
    }

    /// Unreferenced objects and when they were dropped.
    pub fn garbage(&self) -> &BTreeMap<String, i64> {
        &self.garbage
    }

    /// The token whose hash is `hash`; the final comparison is constant-time.
    pub fn token_by_hash(&self, hash: &[u8]) -> Option<&Arc<TokenInfo>> {
        let t = self
            .token_by_hash
            .get(hash)
            .and_then(|id| self.tokens.get(id))?;
        tokens::hashes_equal(&t.hash, hash).then_some(t)
    }

    /// A token by name.
    pub fn token_by_name(&self, name: &str) -> Option<&Arc<TokenInfo>> {
        self.token_by_name
            .get(name)
            .and_then(|id| self.tokens.get(id))
    }

    /// All tokens, by id.
    pub fn tokens(&self) -> impl Iterator<Item = &Arc<TokenInfo>> {
        self.tokens.values()
    }

    /// The Parquet files of a table (empty if none).
    pub fn table_files(&self, db_id: u32, table_id: u32) -> Option<&Arc<TableFiles>> {
        self.files.get(&db_id).and_then(|t| t.get(&table_id))
    }

    /// Every Parquet file of a database, by table.
    pub fn database_files(&self, db_id: u32) -> impl Iterator<Item = (u32, &Arc<TableFiles>)> {
        self.files
            .get(&db_id)
            .into_iter()
            .flat_map(|t| t.iter().map(|(id, f)| (*id, f)))
    }

    /// The last WAL sequence number `node_id` has persisted (0 if none).
    pub fn persisted_wal_seq(&self, node_id: &str) -> u64 {
        self.persisted_wal.get(node_id).copied().unwrap_or(0)
    }

    /// Every node's persisted WAL sequence number.
    pub fn persisted_wal(&self) -> &BTreeMap<String, u64> {
        &self.persisted_wal
    }

    /// The epoch of lease `name` the catalog last recorded.
    pub fn lease_epoch(&self, name: &str) -> Option<u64> {
        self.leases.get(name).map(|l| l.epoch)
    }

    /// Every lease the catalog has recorded, by name.
    pub fn leases(&self) -> &BTreeMap<String, LeaseRecord> {
        &self.leases
    }

    /// The id the next database gets.
    pub fn next_db_id(&self) -> u32 {
        self.next_db_id
    }

    /// The id the next table gets.
    pub fn next_table_id(&self) -> u32 {
        self.next_table_id
    }

    /// The id the next Parquet file gets.
    pub fn next_file_id(&self) -> u64 {
        self.next_file_id.max(1)
    }

    /// Reads a state written by [`CatalogState::to_json`] (a checkpoint,
    /// or a backup's catalog).
    pub fn from_json(bytes: &[u8]) -> Result<CatalogState, CatalogError> {
        let mut state: CatalogState =
            serde_json::from_slice(bytes).map_err(|source| CatalogError::Corrupt {
                path: "<catalog state>".into(),
                source,
            })?;
        state.rebuild_indexes();
        Ok(state)
    }

    /// Applies one log file (read from `path`, for error messages) to
    /// this state, as a catalog that syncs does with each file it reads:
    /// an error when it does not decode or its transaction does not follow
    /// this state's sequence number. [`CatalogState::rebuild_indexes`]
    /// then makes the result ready to use.
    pub fn apply_log_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), CatalogError> {
        let txn: Transaction =
            serde_json::from_slice(bytes).map_err(|source| CatalogError::Corrupt {
                path: path.to_string(),
                source,
            })?;
        self.apply(&txn)
    }

    /// The state as a checkpoint holds it.
    pub fn to_json(&self) -> Result<Vec<u8>, CatalogError> {
        serde_json::to_vec(self).map_err(|source| CatalogError::Corrupt {
            path: "<catalog state>".into(),
            source,
        })
    }

    /// Every Parquet file the state references.
    pub fn all_files(&self) -> impl Iterator<Item = &Arc<ParquetFile>> {
        self.files
            .values()
            .flat_map(|t| t.values())
            .flat_map(|f| f.values())
    }

    /// This state as a restore into another store starts from it: file
    /// paths moved from `from_prefix` to `to_prefix`, no leases and no
    /// garbage (neither was copied), and with `only`, just that database,
    /// under a new name. Returns the state and each file's old and new
    /// path.
    pub fn restored(
        &self,
        from_prefix: &Path,
        to_prefix: &Path,
        only: Option<(&str, &str)>,
    ) -> Result<(CatalogState, Vec<(String, String)>), CatalogError> {
        let mut s = self.clone();
        s.leases.clear();
        s.garbage.clear();
        if let Some((name, new_name)) = only {
            let id = s
                .db(name)
                .map(|d| d.id)
                .ok_or_else(|| CatalogError::NotFound(format!("database not found: {name}")))?;
            validate_db_name(new_name).map_err(CatalogError::Invalid)?;
            s.databases.retain(|k, _| *k == id);
            s.files.retain(|k, _| *k == id);
            let cutoff = s.db_name_cutoffs.remove(name);
            s.db_name_cutoffs.clear();
            if let Some(c) = cutoff {
                s.db_name_cutoffs.insert(new_name.to_string(), c);
            }
            if let Some(db) = s.databases.get_mut(&id) {
                Arc::make_mut(db).name = Arc::from(new_name);
            }
        }
        let from = from_prefix.as_ref();
        let mut moved = Vec::new();
        for tables in s.files.values_mut() {
            for files in tables.values_mut() {
                for f in Arc::make_mut(files).values_mut() {
                    let rel = if from.is_empty() {
                        f.path.as_str()
                    } else {
                        f.path
                            .strip_prefix(from)
                            .and_then(|p| p.strip_prefix('/'))
                            .unwrap_or(f.path.as_str())
                    };
                    let new_path = if to_prefix.as_ref().is_empty() {
                        rel.to_string()
                    } else {
                        format!("{to_prefix}/{rel}")
                    };
                    moved.push((f.path.clone(), new_path.clone()));
                    Arc::make_mut(f).path = new_path;
                }
            }
        }
        s.rebuild_indexes();
        Ok((s, moved))
    }

    /// The id the next tombstone gets (ids start at 1).
    pub fn next_tombstone_id(&self) -> u64 {
        self.next_tombstone_id.max(1)
    }

    /// The highest tombstone id ever assigned (0: none).
    pub fn last_tombstone_id(&self) -> u64 {
        self.next_tombstone_id().saturating_sub(1)
    }

    /// The highest tombstone whose marker is in `node_id`'s persisted WAL.
    pub fn deletes_marked(&self, node_id: &str) -> u64 {
        self.deletes_marked.get(node_id).copied().unwrap_or(0)
    }

    /// Every tombstone of the catalog with id in `(after, through]`, with
    /// its database and table, in id order.
    pub fn tombstones_between(&self, after: u64, through: u64) -> Vec<(u32, u32, Tombstone)> {
        let mut out: Vec<(u32, u32, Tombstone)> = Vec::new();
        for db in self.databases.values() {
            for t in db.all_tables() {
                for x in &t.tombstones {
                    if x.id > after && x.id <= through {
                        out.push((db.id, t.id, x.clone()));
                    }
                }
            }
        }
        out.sort_by_key(|(_, _, t)| t.id);
        out
    }

    /// The id the next token gets.
    pub fn next_token_id(&self) -> u64 {
        self.next_token_id
    }

    /// Rebuilds the lookups by name and token hash after
    /// [`CatalogState::apply_log_file`], as a syncing catalog does once
    /// after the files it read.
    pub fn rebuild_indexes(&mut self) {
        self.token_by_hash = self
            .tokens
            .values()
            .map(|t| (t.hash.clone(), t.id))
            .collect();
        self.token_by_name = self
            .tokens
            .values()
            .map(|t| (Arc::clone(&t.name), t.id))
            .collect();
        self.db_by_name = self
            .databases
            .values()
            .filter(|d| d.deleted.is_none())
            .map(|d| (Arc::clone(&d.name), d.id))
            .collect();
        for db in self.databases.values_mut() {
            if !db.indexed() {
                Arc::make_mut(db).rebuild_indexes();
            }
        }
    }

    fn apply(&mut self, txn: &Transaction) -> Result<(), CatalogError> {
        let bad = |reason: String| CatalogError::Inconsistent {
            seq: txn.seq,
            reason,
        };
        if txn.seq != self.seq + 1 {
            return Err(bad(format!("expected sequence {}", self.seq + 1)));
        }
        for op in &txn.ops {
            match op {
                CatalogOp::Init { uuid } => self.uuid = *uuid,
                CatalogOp::CreateDatabase {
                    db_id,
                    name,
                    retention_ns,
                } => {
                    if self.db_by_name.contains_key(name.as_str()) {
                        return Err(bad(format!("database {name} exists")));
                    }
                    let mut db = DatabaseSchema::new(*db_id, name);
                    db.retention_ns = *retention_ns;
                    self.db_by_name.insert(Arc::clone(&db.name), *db_id);
                    self.databases.insert(*db_id, Arc::new(db));
                    self.next_db_id = self.next_db_id.max(db_id + 1);
                }
                CatalogOp::CreateTable {
                    db_id,
                    table_id,
                    name,
                    columns,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    if db.table(name).is_some() {
                        return Err(bad(format!("table {name} exists")));
                    }
                    db.insert_table(TableSchema::new(*table_id, name, columns.clone()));
                    self.next_table_id = self.next_table_id.max(table_id + 1);
                }
                CatalogOp::CreateToken { token } => {
                    if self.token_by_name.contains_key(&token.name) {
                        return Err(bad(format!("token {} exists", token.name)));
                    }
                    self.token_by_name.insert(Arc::clone(&token.name), token.id);
                    self.token_by_hash.insert(token.hash.clone(), token.id);
                    self.next_token_id = self.next_token_id.max(token.id + 1);
                    self.tokens.insert(token.id, Arc::new(token.clone()));
                }
                CatalogOp::DeleteToken { id } => {
                    let t = self
                        .tokens
                        .remove(id)
                        .ok_or_else(|| bad(format!("no token {id}")))?;
                    self.token_by_name.remove(&t.name);
                    self.token_by_hash.remove(&t.hash);
                }
                CatalogOp::AddParquetFiles {
                    node_id,
                    wal_seq,
                    files,
                    deletes_marked,
                } => {
                    let marked = self.deletes_marked.entry(node_id.clone()).or_default();
                    *marked = (*marked).max(*deletes_marked);
                    let done = self.persisted_wal.entry(node_id.clone()).or_default();
                    if *wal_seq < *done {
                        return Err(bad(format!(
                            "node {node_id} persisted WAL {wal_seq} after {done}"
                        )));
                    }
                    *done = *wal_seq;
                    for f in files {
                        let live = self
                            .databases
                            .get(&f.db_id)
                            .filter(|d| d.deleted.is_none())
                            .and_then(|d| d.table_by_id(f.table_id))
                            .is_some_and(|t| t.deleted.is_none());
                        if !live {
                            // Deleted while it was being persisted.
                            self.garbage.insert(f.path.clone(), txn.time_ns);
                            continue;
                        }
                        let table = self
                            .files
                            .entry(f.db_id)
                            .or_default()
                            .entry(f.table_id)
                            .or_default();
                        Arc::make_mut(table).insert(f.id, Arc::new(f.clone()));
                        self.next_file_id = self.next_file_id.max(f.id + 1);
                    }
                }
                CatalogOp::RemoveParquetFiles { ids, at_ns } => {
                    for (db_id, table_id, id) in ids {
                        if let Some(t) = self.files.get_mut(db_id).and_then(|t| t.get_mut(table_id))
                            && let Some(f) = Arc::make_mut(t).remove(id)
                        {
                            self.garbage.insert(f.path.clone(), *at_ns);
                        }
                    }
                }
                CatalogOp::ReplaceParquetFiles {
                    removed,
                    added,
                    at_ns,
                } => {
                    let table = self
                        .files
                        .get_mut(&added.db_id)
                        .and_then(|t| t.get_mut(&added.table_id));
                    match (table, removed.iter().max()) {
                        (Some(t), Some(&id)) if removed.iter().all(|r| t.contains_key(r)) => {
                            let t = Arc::make_mut(t);
                            for r in removed {
                                if let Some(f) = t.remove(r) {
                                    self.garbage.insert(f.path.clone(), *at_ns);
                                }
                            }
                            let mut f = added.clone();
                            f.id = id;
                            t.insert(id, Arc::new(f));
                        }
                        _ => {
                            self.garbage.insert(added.path.clone(), *at_ns);
                        }
                    }
                }
                CatalogOp::SetDatabaseRetention {
                    db_id,
                    retention_ns,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    Arc::make_mut(db).retention_ns = *retention_ns;
                }
                CatalogOp::SoftDeleteDatabase {
                    db_id,
                    new_name,
                    deleted_at_ns,
                    hard_delete_at_ns,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    let original = match &db.deleted {
                        Some(d) => Arc::clone(&d.original_name),
                        None => Arc::clone(&db.name),
                    };
                    let cutoff = self
                        .db_name_cutoffs
                        .entry(original.to_string())
                        .or_default();
                    *cutoff = (*cutoff).max(*deleted_at_ns);
                    if self.db_by_name.get(&original) == Some(db_id) {
                        self.db_by_name.remove(&original);
                    }
                    db.deleted = Some(Deletion {
                        original_name: original,
                        deleted_at_ns: *deleted_at_ns,
                        hard_delete_at_ns: *hard_delete_at_ns,
                    });
                    db.name = Arc::from(new_name.as_str());
                }
                CatalogOp::RemoveDatabase { db_id } => {
                    let Some(db) = self.databases.remove(db_id) else {
                        return Err(bad(format!("no database {db_id}")));
                    };
                    if self.db_by_name.get(&db.name) == Some(db_id) {
                        self.db_by_name.remove(&db.name);
                    }
                    for t in self
                        .files
                        .remove(db_id)
                        .into_iter()
                        .flat_map(|t| t.into_values())
                    {
                        for f in t.values() {
                            self.garbage.insert(f.path.clone(), txn.time_ns);
                        }
                    }
                }
                CatalogOp::ClearDatabaseData {
                    db_id,
                    at_ns,
                    remove_tables,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    let names: Vec<Arc<str>> =
                        db.all_tables().map(|t| Arc::clone(&t.name)).collect();
                    for name in names {
                        let c = db.wal_cutoffs.entry(name).or_default();
                        *c = (*c).max(*at_ns);
                    }
                    if *remove_tables {
                        db.tables_mut().clear();
                        db.rebuild_indexes();
                    }
                    for t in self
                        .files
                        .remove(db_id)
                        .into_iter()
                        .flat_map(|t| t.into_values())
                    {
                        for f in t.values() {
                            self.garbage.insert(f.path.clone(), txn.time_ns);
                        }
                    }
                }
                CatalogOp::SetTableRetention {
                    db_id,
                    table_id,
                    retention_ns,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    t.retention_ns = *retention_ns;
                }
                CatalogOp::SoftDeleteTable {
                    db_id,
                    table_id,
                    new_name,
                    deleted_at_ns,
                    hard_delete_at_ns,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    let original = match &t.deleted {
                        Some(d) => Arc::clone(&d.original_name),
                        None => Arc::clone(&t.name),
                    };
                    t.deleted = Some(Deletion {
                        original_name: Arc::clone(&original),
                        deleted_at_ns: *deleted_at_ns,
                        hard_delete_at_ns: *hard_delete_at_ns,
                    });
                    t.name = Arc::from(new_name.as_str());
                    if let Some(db) = self.databases.get_mut(db_id) {
                        let db = Arc::make_mut(db);
                        // Its file index goes with it (a new table of the
                        // name starts without).
                        db.file_indexes
                            .retain(|i| i.table.as_deref() != Some(original.as_ref()));
                        let c = db.wal_cutoffs.entry(original).or_default();
                        *c = (*c).max(*deleted_at_ns);
                        // Later operations in this replay look the name up.
                        db.rebuild_indexes();
                    }
                }
                CatalogOp::RemoveTable { db_id, table_id } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    if db.tables_mut().remove(table_id).is_none() {
                        return Err(bad(format!("no table {table_id}")));
                    }
                    db.rebuild_indexes();
                    self.drop_table_files(*db_id, *table_id, txn.time_ns);
                }
                CatalogOp::ClearTableData {
                    db_id,
                    table_id,
                    at_ns,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    let name = Arc::clone(&t.name);
                    if let Some(db) = self.databases.get_mut(db_id) {
                        let c = Arc::make_mut(db).wal_cutoffs.entry(name).or_default();
                        *c = (*c).max(*at_ns);
                    }
                    self.drop_table_files(*db_id, *table_id, txn.time_ns);
                }
                CatalogOp::CreateLastCache {
                    db_id,
                    table_id,
                    cache,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    if t.last_caches.iter().any(|c| c.name == cache.name) {
                        return Err(bad(format!("last cache {} exists", cache.name)));
                    }
                    t.last_caches.push(cache.clone());
                }
                CatalogOp::DeleteLastCache {
                    db_id,
                    table_id,
                    name,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    t.last_caches.retain(|c| c.name != *name);
                }
                CatalogOp::CreateDistinctCache {
                    db_id,
                    table_id,
                    cache,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    if t.distinct_caches.iter().any(|c| c.name == cache.name) {
                        return Err(bad(format!("distinct cache {} exists", cache.name)));
                    }
                    t.distinct_caches.push(cache.clone());
                }
                CatalogOp::DeleteDistinctCache {
                    db_id,
                    table_id,
                    name,
                } => {
                    let t = self.table_mut(*db_id, *table_id).map_err(bad)?;
                    t.distinct_caches.retain(|c| c.name != *name);
                }
                CatalogOp::SetFileIndex { db_id, index } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    db.file_indexes.retain(|d| d.table != index.table);
                    db.file_indexes.push(index.clone());
                }
                CatalogOp::CreateTrigger { db_id, trigger } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    Arc::make_mut(db)
                        .triggers
                        .insert(trigger.name.clone(), trigger.clone());
                }
                CatalogOp::DeleteTrigger { db_id, name } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    Arc::make_mut(db).triggers.remove(name);
                }
                CatalogOp::SetTriggerDisabled {
                    db_id,
                    name,
                    disabled,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    if let Some(t) = Arc::make_mut(db).triggers.get_mut(name) {
                        t.disabled = *disabled;
                    }
                }
                CatalogOp::DeleteFileIndex { db_id, table } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    Arc::make_mut(db).file_indexes.retain(|d| d.table != *table);
                }
                CatalogOp::IndexParquetFiles {
                    db_id,
                    table_id,
                    files,
                } => {
                    if let Some(table_files) =
                        self.files.get_mut(db_id).and_then(|t| t.get_mut(table_id))
                    {
                        let table_files = Arc::make_mut(table_files);
                        for (id, sets) in files {
                            // A file compacted or deleted since is skipped.
                            if let Some(f) = table_files.get_mut(id) {
                                let f = Arc::make_mut(f);
                                for (c, v) in sets {
                                    f.value_index.insert(Arc::clone(c), v.clone());
                                }
                            }
                        }
                    }
                }
                CatalogOp::TakeLease {
                    lease,
                    epoch,
                    instance_id,
                    roles,
                } => {
                    let record = LeaseRecord {
                        epoch: *epoch,
                        instance_id: *instance_id,
                        roles: roles.clone(),
                    };
                    self.leases.insert(lease.clone(), record);
                }
                CatalogOp::ForgetGarbage { paths } => {
                    for p in paths {
                        self.garbage.remove(p);
                    }
                }
                CatalogOp::CreateTombstones { db_id, tombstones } => {
                    for (table_id, t) in tombstones {
                        self.next_tombstone_id = self.next_tombstone_id().max(t.id + 1);
                        let table = self.table_mut(*db_id, *table_id).map_err(bad)?;
                        table.tombstones.push(t.clone());
                    }
                }
                CatalogOp::DropTombstones {
                    db_id,
                    table_id,
                    ids,
                } => {
                    // A table gone since has nothing left to drop.
                    if let Ok(table) = self.table_mut(*db_id, *table_id) {
                        table.tombstones.retain(|t| !ids.contains(&t.id));
                    }
                }
                CatalogOp::AddColumns {
                    db_id,
                    table_id,
                    columns,
                } => {
                    let db = self
                        .databases
                        .get_mut(db_id)
                        .ok_or_else(|| bad(format!("no database {db_id}")))?;
                    let db = Arc::make_mut(db);
                    let table = db
                        .table_by_id_mut(*table_id)
                        .ok_or_else(|| bad(format!("no table {table_id}")))?;
                    for c in columns {
                        if table.column(&c.name).is_some() {
                            return Err(bad(format!("column {} exists", c.name)));
                        }
                        table.push_column(c.clone());
                    }
                }
            }
        }
        self.seq = txn.seq;
        Ok(())
    }

    fn table_mut(&mut self, db_id: u32, table_id: u32) -> Result<&mut TableSchema, String> {
        let db = self
            .databases
            .get_mut(&db_id)
            .ok_or_else(|| format!("no database {db_id}"))?;
        Arc::make_mut(db)
            .table_by_id_mut(table_id)
            .ok_or_else(|| format!("no table {table_id}"))
    }

    fn drop_table_files(&mut self, db_id: u32, table_id: u32, at_ns: i64) {
        if let Some(files) = self.files.get_mut(&db_id).and_then(|t| t.remove(&table_id)) {
            for f in files.values() {
                self.garbage.insert(f.path.clone(), at_ns);
            }
        }
    }

    /// Turns an intent into the operations it needs against this state.
    /// Columns that exist with another kind are left out: the caller sees the
    /// existing kind when it re-validates.
    fn plan(&self, change: &SchemaChange) -> Vec<CatalogOp> {
        let mut ops = Vec::new();
        let mut next_table = self.next_table_id;
        let (db_id, db) = match self.db(&change.db) {
            Some(db) => (db.id, Some(db)),
            None => {
                let id = self.next_db_id;
                ops.push(CatalogOp::CreateDatabase {
                    db_id: id,
                    name: change.db.clone(),
                    retention_ns: None,
                });
                (id, None)
            }
        };
        for t in &change.tables {
            match db.and_then(|d| d.table(&t.name)) {
                None => {
                    let table_id = next_table;
                    next_table += 1;
                    let mut columns: Vec<ColumnDef> = Vec::new();
                    for (name, kind) in &t.columns {
                        if columns.iter().any(|c| &*c.name == name.as_str()) {
                            continue;
                        }
                        columns.push(ColumnDef {
                            id: columns.len() as u32,
                            name: Arc::from(name.as_str()),
                            kind: *kind,
                        });
                    }
                    if !columns.iter().any(|c| c.kind == ColumnKind::Time) {
                        columns.push(ColumnDef {
                            id: columns.len() as u32,
                            name: Arc::from("time"),
                            kind: ColumnKind::Time,
                        });
                    }
                    ops.push(CatalogOp::CreateTable {
                        db_id,
                        table_id,
                        name: t.name.clone(),
                        columns,
                    });
                }
                Some(table) => {
                    let mut columns: Vec<ColumnDef> = Vec::new();
                    let mut next_col = table.columns().len() as u32;
                    for (name, kind) in &t.columns {
                        if table.column(name).is_some()
                            || columns.iter().any(|c| &*c.name == name.as_str())
                        {
                            continue;
                        }
                        columns.push(ColumnDef {
                            id: next_col,
                            name: Arc::from(name.as_str()),
                            kind: *kind,
                        });
                        next_col += 1;
                    }
                    if !columns.is_empty() {
                        ops.push(CatalogOp::AddColumns {
                            db_id,
                            table_id: table.id,
                            columns,
                        });
                    }
                }
            }
        }
        ops
    }
}

/// What a writer needs to exist: a database, and tables with columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaChange {
    /// The database name (created if missing).
    pub db: String,
    /// Tables and the columns each needs, in first-seen order.
    pub tables: Vec<TableChange>,
}

/// The columns one table needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableChange {
    /// The table name.
    pub name: String,
    /// Column names and kinds.
    pub columns: Vec<(String, ColumnKind)>,
}

/// The catalog handle shared by every part of a process.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    state: RwLock<Arc<CatalogState>>,
    /// Serialises this process's writers; other processes are serialised by
    /// the conditional create.
    write_lock: tokio::sync::Mutex<()>,
    /// A querier's catalog: every change is refused.
    read_only: bool,
}

impl Catalog {
    /// Loads the catalog from the store, creating it (with a new UUID) if the
    /// store has none.
    pub async fn load(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
    ) -> Result<Arc<Self>, CatalogError> {
        Self::open(store, prefix, false).await
    }

    /// Loads the catalog for a process that never changes it (a querier).
    /// A store without a catalog yet reads as empty until an ingester
    /// creates it; every [`Catalog::update`] fails with
    /// [`CatalogError::ReadOnly`].
    pub async fn load_read_only(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
    ) -> Result<Arc<Self>, CatalogError> {
        Self::open(store, prefix, true).await
    }

    /// The object store the catalog (and the whole cluster) lives in.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store prefix everything of the cluster lives under (the
    /// catalog in `catalog/`, the WAL in `wal/`, the files in `dbs/`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Writes `state` as the catalog of an empty store (a restore): its
    /// checkpoint, from which [`Catalog::load`] starts. Refused when the
    /// store has a catalog already.
    pub async fn write_restored(
        store: &Arc<dyn ObjectStore>,
        prefix: &Path,
        state: &CatalogState,
    ) -> Result<(), CatalogError> {
        let dir = prefix.clone().join("catalog");
        let mut listed = store.list(Some(&dir));
        if futures::StreamExt::next(&mut listed).await.is_some() {
            return Err(CatalogError::AlreadyExists(format!(
                "the store already has a catalog under {dir}"
            )));
        }
        let path = dir.join("checkpoint.json");
        store
            .put_opts(
                &path,
                PutPayload::from(state.to_json()?),
                PutOptions::from(PutMode::Create),
            )
            .await?;
        Ok(())
    }

    /// Whether this process only reads the catalog.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn open(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        read_only: bool,
    ) -> Result<Arc<Self>, CatalogError> {
        let catalog = Arc::new(Self {
            store,
            prefix,
            state: RwLock::new(Arc::new(CatalogState::default())),
            write_lock: tokio::sync::Mutex::new(()),
            read_only,
        });
        let _guard = catalog.write_lock.lock().await;
        if let Some(state) = catalog.read_checkpoint().await? {
            catalog.publish(state);
        }
        catalog.sync_locked().await?;
        if catalog.state().seq == 0 && !read_only {
            let init = vec![CatalogOp::Init {
                uuid: Uuid::new_v4(),
            }];
            // Losing this race is fine: the winner's UUID is the catalog's.
            if !catalog.try_commit(init).await? {
                catalog.sync_locked().await?;
            }
        }
        Ok(Arc::clone(&catalog))
    }

    /// The current state. Cheap: an `Arc` clone.
    pub fn state(&self) -> Arc<CatalogState> {
        match self.state.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The catalog (cluster) UUID.
    pub fn uuid(&self) -> Uuid {
        self.state().uuid
    }

    fn publish(&self, state: CatalogState) {
        let new = Arc::new(state);
        match self.state.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Reads transactions other processes have written since our state.
    pub async fn sync(&self) -> Result<Arc<CatalogState>, CatalogError> {
        let _guard = self.write_lock.lock().await;
        self.sync_locked().await?;
        Ok(self.state())
    }

    async fn sync_locked(&self) -> Result<(), CatalogError> {
        let mut state: Option<CatalogState> = None;
        loop {
            let next = state.as_ref().map_or_else(|| self.state().seq, |s| s.seq) + 1;
            let Some((path, bytes)) = self.read_log(next).await? else {
                break;
            };
            let s = state.get_or_insert_with(|| (*self.state()).clone());
            s.apply_log_file(path.as_ref(), &bytes)?;
        }
        if let Some(mut s) = state {
            s.rebuild_indexes();
            self.publish(s);
        }
        Ok(())
    }

    /// Makes sure the database, tables and columns of `change` exist, and
    /// returns the resulting state. Columns that already exist with another
    /// kind are not changed; callers must re-validate against the result.
    pub async fn ensure(&self, change: &SchemaChange) -> Result<Arc<CatalogState>, CatalogError> {
        self.update(|state| Ok(state.plan(change))).await
    }

    /// Applies the operations `plan` derives from the newest state, as one
    /// transaction. `plan` runs again after every lost race, so it must
    /// decide from the state it is given (and may refuse with an error). An
    /// empty plan changes nothing.
    pub async fn update<F>(&self, plan: F) -> Result<Arc<CatalogState>, CatalogError>
    where
        F: Fn(&CatalogState) -> Result<Vec<CatalogOp>, CatalogError>,
    {
        const MAX_ATTEMPTS: usize = 100;
        if self.read_only {
            return Err(CatalogError::ReadOnly);
        }
        let _guard = self.write_lock.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let ops = plan(&self.state())?;
            if ops.is_empty() {
                return Ok(self.state());
            }
            if self.try_commit(ops).await? {
                return Ok(self.state());
            }
            self.sync_locked().await?;
        }
        Err(CatalogError::TooMuchContention(MAX_ATTEMPTS))
    }

    /// [`Catalog::update`] for writes only the current holder of lease
    /// `lease` at `epoch` may make (a node's persists, the compactor's
    /// passes): refused with [`CatalogError::LeaseLost`] once the catalog
    /// records a later epoch. The check runs against the state the
    /// transaction follows, so a former holder can never commit after its
    /// successor's `TakeLease`.
    pub async fn update_fenced<F>(
        &self,
        lease: &str,
        epoch: u64,
        plan: F,
    ) -> Result<Arc<CatalogState>, CatalogError>
    where
        F: Fn(&CatalogState) -> Result<Vec<CatalogOp>, CatalogError>,
    {
        self.update(|state| {
            let current = state.lease_epoch(lease);
            if current != Some(epoch) {
                return Err(CatalogError::LeaseLost {
                    lease: lease.to_string(),
                    epoch,
                    current,
                });
            }
            plan(state)
        })
        .await
    }

    /// Records that this process took `epoch` of `lease` (see
    /// [`CatalogOp::TakeLease`]).
    pub async fn take_lease(
        &self,
        lease: &str,
        epoch: u64,
        instance_id: Uuid,
        roles: &[String],
    ) -> Result<(), CatalogError> {
        self.update(|state| {
            if state
                .leases
                .get(lease)
                .is_some_and(|l| l.epoch == epoch && l.instance_id == instance_id)
            {
                return Ok(vec![]);
            }
            Ok(vec![CatalogOp::TakeLease {
                lease: lease.to_string(),
                epoch,
                instance_id,
                roles: roles.to_vec(),
            }])
        })
        .await
        .map(|_| ())
    }

    /// Writes `ops` as the next transaction. Returns false if another writer
    /// took that sequence number first.
    async fn try_commit(&self, ops: Vec<CatalogOp>) -> Result<bool, CatalogError> {
        let current = self.state();
        let txn = Transaction {
            seq: current.seq + 1,
            time_ns: now_ns(),
            ops,
        };
        let mut next = (*current).clone();
        next.apply(&txn)?;
        next.rebuild_indexes();
        let body = serde_json::to_vec(&txn).map_err(|e| CatalogError::Corrupt {
            path: "<new transaction>".into(),
            source: e,
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let path = self.log_path(txn.seq);
        match self
            .store
            .put_opts(&path, PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Ours, if an earlier attempt of this PUT was stored but
                // reported failed (the client retried it): the log file is
                // byte for byte this transaction (its time included).
                if self.get_optional(&path).await?.as_deref() != Some(&body[..]) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
        let seq = next.seq;
        self.publish(next);
        if seq.is_multiple_of(CHECKPOINT_EVERY) {
            // A failed checkpoint only makes the next start-up read more logs.
            if let Err(e) = self.write_checkpoint().await {
                tracing::warn!(error = %e, "failed to write catalog checkpoint");
            }
        }
        Ok(true)
    }

    async fn write_checkpoint(&self) -> Result<(), CatalogError> {
        let state = self.state();
        let body = serde_json::to_vec(&*state).map_err(|e| CatalogError::Corrupt {
            path: "<checkpoint>".into(),
            source: e,
        })?;
        // Overwrite is safe: a checkpoint only moves forward, and a reader that
        // sees an older one replays more logs.
        self.store
            .put(&self.checkpoint_path(), PutPayload::from(body))
            .await?;
        Ok(())
    }

    async fn read_checkpoint(&self) -> Result<Option<CatalogState>, CatalogError> {
        let path = self.checkpoint_path();
        let Some(bytes) = self.get_optional(&path).await? else {
            return Ok(None);
        };
        let mut state: CatalogState =
            serde_json::from_slice(&bytes).map_err(|source| CatalogError::Corrupt {
                path: path.to_string(),
                source,
            })?;
        state.rebuild_indexes();
        Ok(Some(state))
    }

    /// Log file `seq` as stored, if it exists.
    async fn read_log(&self, seq: u64) -> Result<Option<(Path, Bytes)>, CatalogError> {
        let path = self.log_path(seq);
        Ok(self.get_optional(&path).await?.map(|bytes| (path, bytes)))
    }

    async fn get_optional(&self, path: &Path) -> Result<Option<Bytes>, CatalogError> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn log_path(&self, seq: u64) -> Path {
        self.prefix
            .clone()
            .join("catalog")
            .join("log")
            .join(format!("{seq:020}.json").as_str())
    }

    fn checkpoint_path(&self) -> Path {
        self.prefix.clone().join("catalog").join("checkpoint.json")
    }
}

/// A retention period as the shortest exact `{n}{unit}` (`7d`, `36h`).
pub fn format_retention(ns: i64) -> String {
    const S: i64 = 1_000_000_000;
    for (unit, size) in [
        ("d", 86_400 * S),
        ("h", 3_600 * S),
        ("m", 60 * S),
        ("s", S),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// The current time in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
