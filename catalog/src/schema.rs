//! Database, table and column definitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The type of a field column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// 64-bit float.
    Float,
    /// 64-bit signed integer.
    Integer,
    /// 64-bit unsigned integer.
    UInteger,
    /// UTF-8 string.
    String,
    /// Boolean.
    Boolean,
}

impl FieldType {
    /// The name used in messages, matching InfluxDB's `iox::column_type` names.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::UInteger => "unsigned integer",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        }
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A tag: part of the series key, stored as a dictionary string.
    Tag,
    /// A field of the given type.
    Field(FieldType),
    /// The timestamp, nanoseconds since the epoch.
    Time,
}

impl ColumnKind {
    /// A description for error messages.
    pub fn describe(self) -> String {
        match self {
            ColumnKind::Tag => "tag".to_string(),
            ColumnKind::Field(t) => format!("{} field", t.name()),
            ColumnKind::Time => "timestamp".to_string(),
        }
    }
}

/// One column of a table. Ids are positions: columns are only ever appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// The column id within its table.
    pub id: u32,
    /// The column name.
    pub name: Arc<str>,
    /// Tag, field type or time.
    pub kind: ColumnKind,
}

/// A last value cache on a table: the newest `count` rows of each
/// combination of `key_columns`' values, for `ttl_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCacheDef {
    /// Unique within its table.
    pub name: String,
    /// The columns whose values key the cache, in hierarchy order.
    pub key_columns: Vec<String>,
    /// The columns kept per key; `None`: every other column, fields the
    /// table gains later included.
    pub value_columns: Option<Vec<String>>,
    /// Rows kept per key (1 to 10).
    pub count: usize,
    /// How long a row stays after it was cached, in seconds.
    pub ttl_secs: u64,
}

/// What a trigger does when its plugin fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ErrorBehavior {
    /// Log the error and go on with the next call.
    #[default]
    Log,
    /// Call the plugin again with the same input, backing off.
    Retry,
    /// Disable the trigger.
    Disable,
}

/// A processing engine trigger: which plugin runs on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerDef {
    /// Unique within its database.
    pub name: String,
    /// The plugin: a file or directory under `--plugin-dir`.
    pub plugin_filename: String,
    /// `table:NAME`, `all_tables`, `every:DURATION`, `cron:EXPR` or
    /// `request:PATH`, as given (checked when the trigger was created).
    pub specification: String,
    /// Passed to the plugin as `args`.
    #[serde(default)]
    pub arguments: Option<BTreeMap<String, String>>,
    /// Calls of a WAL or schedule trigger do not wait for each other.
    #[serde(default)]
    pub run_async: bool,
    /// What a failed call does.
    #[serde(default)]
    pub error_behavior: ErrorBehavior,
    /// Not run until enabled.
    #[serde(default)]
    pub disabled: bool,
    /// The node that runs it (WAL and schedule triggers), if one was named.
    #[serde(default)]
    pub node_id: Option<String>,
}

/// A distinct value cache on a table: the combinations of `columns`'
/// values seen in the last `max_age_secs`, at most `max_cardinality`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistinctCacheDef {
    /// Unique within its table.
    pub name: String,
    /// Tags or string fields, in hierarchy order.
    pub columns: Vec<String>,
    /// Combinations kept at most.
    pub max_cardinality: usize,
    /// How long a combination stays after it was last seen, in seconds.
    pub max_age_secs: u64,
}

/// A file index: the columns whose values each new Parquet file of the
/// table (of every table, when `table` is `None`) records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndexDef {
    /// The table, or `None` for the whole database.
    pub table: Option<String>,
    /// The columns.
    pub columns: Vec<String>,
}

/// A predicate delete: the rows of a table with `time` in
/// `[min_time, max_time]` whose tags match every condition of `predicate`
/// are gone, for every row written before the delete.
///
/// "Before" is each ingester's own WAL order: an ingester that sees a new
/// tombstone writes a marker into its WAL ([`wal::DELETE_MARKER`] in the
/// wal crate); rows before the marker are deleted from its buffer, in
/// memory, at replay and in a tailing querier alike. Files record the
/// highest tombstone applied to their rows (`deletes_applied`): a higher
/// one that overlaps a file is applied when it is read, until the compactor
/// rewrites the file. A tombstone is dropped once no file and no
/// unpersisted WAL needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Unique in the catalog, increasing in creation order.
    pub id: u64,
    /// The first `time` deleted, in nanoseconds.
    pub min_time: i64,
    /// The last `time` deleted, in nanoseconds.
    pub max_time: i64,
    /// Conditions on tags, all of which a row must meet; empty: every row
    /// in the time range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predicate: Vec<TagCondition>,
    /// When the delete was made (ns since the epoch).
    pub created_ns: i64,
}

/// One condition of a tombstone's predicate on a tag. A row without the
/// tag has the empty string as its value (as in InfluxQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCondition {
    /// The tag column.
    pub tag: String,
    /// How the tag's value is compared with `value`.
    pub op: TagOp,
    /// The value, or the regular expression (unanchored, as InfluxQL's).
    pub value: String,
}

/// How a [`TagCondition`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagOp {
    /// Equal to the value.
    Eq,
    /// Not equal to it.
    NotEq,
    /// Matched by the regular expression.
    Regex,
    /// Not matched by it.
    NotRegex,
}

impl TagOp {
    /// InfluxQL's operator.
    pub fn symbol(self) -> &'static str {
        match self {
            TagOp::Eq => "=",
            TagOp::NotEq => "!=",
            TagOp::Regex => "=~",
            TagOp::NotRegex => "!~",
        }
    }
}

impl std::fmt::Display for TagCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            TagOp::Eq | TagOp::NotEq => write!(
                f,
                "{}{}'{}'",
                self.tag,
                self.op.symbol(),
                self.value.replace('\\', "\\\\").replace('\'', "\\'")
            ),
            TagOp::Regex | TagOp::NotRegex => {
                write!(f, "{}{}/{}/", self.tag, self.op.symbol(), self.value)
            }
        }
    }
}

/// A table's schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table id, unique in the catalog.
    pub id: u32,
    /// The table name (after a soft delete, `{name}-{YYYYMMDDTHHMMSS}`).
    pub name: Arc<str>,
    /// Rows older than this are deleted; overrides the database's.
    #[serde(default)]
    pub retention_ns: Option<i64>,
    /// Soft-deleted: invisible to queries and writes; its name is free.
    #[serde(default)]
    pub deleted: Option<Deletion>,
    /// Its last value caches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_caches: Vec<LastCacheDef>,
    /// Its distinct value caches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_caches: Vec<DistinctCacheDef>,
    /// Its outstanding predicate deletes, in id order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstone>,
    columns: Vec<ColumnDef>,
    #[serde(skip)]
    by_name: HashMap<Arc<str>, usize>,
}

impl TableSchema {
    pub(crate) fn new(id: u32, name: &str, columns: Vec<ColumnDef>) -> Self {
        let mut t = Self {
            id,
            name: Arc::from(name),
            retention_ns: None,
            deleted: None,
            last_caches: Vec::new(),
            distinct_caches: Vec::new(),
            tombstones: Vec::new(),
            columns,
            by_name: HashMap::new(),
        };
        t.rebuild_indexes();
        t
    }

    /// Whether the name index covers the columns (it is empty after
    /// deserialisation; `push_column` keeps it current).
    fn indexed(&self) -> bool {
        self.by_name.len() == self.columns.len()
    }

    pub(crate) fn rebuild_indexes(&mut self) {
        self.by_name = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (Arc::clone(&c.name), i))
            .collect();
    }

    pub(crate) fn push_column(&mut self, c: ColumnDef) {
        self.by_name.insert(Arc::clone(&c.name), self.columns.len());
        self.columns.push(c);
    }

    /// Columns in id order.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.by_name.get(name).map(|i| &self.columns[*i])
    }

    /// Tag columns, sorted by name: the order of the series key and of the
    /// sort key (tags, then time).
    pub fn tag_columns_sorted(&self) -> Vec<&ColumnDef> {
        let mut tags: Vec<&ColumnDef> = self
            .columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Tag)
            .collect();
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        tags
    }
}

/// When and how a database or table was soft-deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    /// The name it had.
    pub original_name: Arc<str>,
    /// When it was deleted (ns since the epoch).
    pub deleted_at_ns: i64,
    /// When its files and catalog entries are removed, if scheduled.
    pub hard_delete_at_ns: Option<i64>,
}

/// A database's schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSchema {
    /// The database id.
    pub id: u32,
    /// The database name (after a soft delete, `{name}-{YYYYMMDDTHHMMSS}`).
    pub name: Arc<str>,
    /// Rows older than this are deleted (per table unless it has its own).
    #[serde(default)]
    pub retention_ns: Option<i64>,
    /// Soft-deleted: invisible to queries and writes; its name is free.
    #[serde(default)]
    pub deleted: Option<Deletion>,
    /// WAL lines of a table name written at or before this time are void
    /// (the table was deleted or its data was): replay skips them.
    #[serde(default)]
    pub wal_cutoffs: BTreeMap<Arc<str>, i64>,
    /// File indexes: the columns whose values persisted files record, per
    /// table, or for every table of the database (key `None`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_indexes: Vec<FileIndexDef>,
    /// Processing engine triggers, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, TriggerDef>,
    tables: BTreeMap<u32, Arc<TableSchema>>,
    #[serde(skip)]
    table_by_name: HashMap<Arc<str>, u32>,
}

impl DatabaseSchema {
    pub(crate) fn new(id: u32, name: &str) -> Self {
        Self {
            id,
            name: Arc::from(name),
            retention_ns: None,
            deleted: None,
            wal_cutoffs: BTreeMap::new(),
            file_indexes: Vec::new(),
            triggers: BTreeMap::new(),
            tables: BTreeMap::new(),
            table_by_name: HashMap::new(),
        }
    }

    /// The columns of `table` that its new files index: those of the
    /// database's file index and of the table's, that the table has.
    pub fn indexed_columns(&self, table: &TableSchema) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for def in &self.file_indexes {
            if def
                .table
                .as_deref()
                .is_some_and(|t| t != table.name.as_ref())
            {
                continue;
            }
            for c in &def.columns {
                if let Some(col) = table.column(c)
                    && !out.contains(&col.name)
                {
                    out.push(Arc::clone(&col.name));
                }
            }
        }
        out
    }

    /// The retention that applies to `table`: its own, else the database's.
    pub fn retention_for(&self, table: &TableSchema) -> Option<i64> {
        table.retention_ns.or(self.retention_ns)
    }

    /// The oldest `time` a row of `table` may have at `now_ns` under that
    /// retention; `None` if rows are kept forever.
    pub fn retention_cutoff(&self, table: &TableSchema, now_ns: i64) -> Option<i64> {
        self.retention_for(table).map(|r| now_ns.saturating_sub(r))
    }

    /// Whether WAL lines of table `name` written at `time_ns` were voided
    /// by a later delete.
    pub fn wal_voided(&self, name: &str, time_ns: i64) -> bool {
        self.wal_cutoffs.get(name).is_some_and(|c| time_ns <= *c)
    }

    pub(crate) fn tables_mut(&mut self) -> &mut BTreeMap<u32, Arc<TableSchema>> {
        &mut self.tables
    }

    /// A database with no tables (for virtual databases such as `_internal`).
    pub fn empty(name: &str) -> Self {
        Self::new(u32::MAX, name)
    }

    /// Whether the name indexes of the database and its tables are
    /// current. Checked before rebuilding them, so that a transaction
    /// copies only the schemas it changes: queries keep their plans while
    /// a database's schema is the same `Arc` (see the query crate's plan
    /// cache).
    pub(crate) fn indexed(&self) -> bool {
        let live = self.tables.values().filter(|t| t.deleted.is_none());
        self.table_by_name.len() == live.clone().count()
            && live
                .into_iter()
                .all(|t| t.indexed() && self.table_by_name.get(&t.name) == Some(&t.id))
    }

    pub(crate) fn rebuild_indexes(&mut self) {
        self.table_by_name = self
            .tables
            .values()
            .filter(|t| t.deleted.is_none())
            .map(|t| (Arc::clone(&t.name), t.id))
            .collect();
        for t in self.tables.values_mut() {
            if !t.indexed() {
                Arc::make_mut(t).rebuild_indexes();
            }
        }
    }

    pub(crate) fn insert_table(&mut self, t: TableSchema) {
        self.table_by_name.insert(Arc::clone(&t.name), t.id);
        self.tables.insert(t.id, Arc::new(t));
    }

    pub(crate) fn table_by_id_mut(&mut self, id: u32) -> Option<&mut TableSchema> {
        self.tables.get_mut(&id).map(Arc::make_mut)
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&Arc<TableSchema>> {
        self.table_by_name
            .get(name)
            .and_then(|id| self.tables.get(id))
    }

    /// A table by id.
    pub fn table_by_id(&self, id: u32) -> Option<&Arc<TableSchema>> {
        self.tables.get(&id)
    }

    /// The live (not deleted) tables, by id.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
        self.tables.values().filter(|t| t.deleted.is_none())
    }

    /// Every table, soft-deleted ones included, by id.
    pub fn all_tables(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
        self.tables.values()
    }
}

/// Checks a database name as InfluxDB 3 Core does (its rule is wider than
/// the OpenAPI text's pattern, and clients are tested against Core): ASCII
/// letters, digits, `_` and `-`, starting with a letter or digit, at most
/// 64 bytes, with at most one `/` that separates a v1 retention policy
/// (`db/rp`) and does not end the name.
pub fn validate_db_name(name: &str) -> Result<(), String> {
    const MAX_LEN: usize = 64;
    let invalid = |why: &str| Err(format!("invalid database name '{name}': {why}"));
    let Some(first) = name.bytes().next() else {
        return Err("invalid database name: the name is empty".to_string());
    };
    if name.len() > MAX_LEN {
        return invalid(&format!("names are at most {MAX_LEN} characters"));
    }
    if !first.is_ascii_alphanumeric() {
        return invalid("names start with a letter or digit");
    }
    if name
        .bytes()
        .any(|c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'/'))
    {
        return invalid("names contain only ASCII letters, digits, '_' and '-'");
    }
    if name.matches('/').count() > 1 || name.ends_with('/') {
        return invalid("a retention policy is given as '<db>/<rp>', with one '/'");
    }
    Ok(())
}
