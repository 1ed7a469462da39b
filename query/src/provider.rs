//! DataFusion catalog, schema and table providers over one database.
//!
//! A table's rows live in two places: Parquet files listed in the catalog,
//! and the buffer (chunks not yet persisted). [`InflowTable::scan`] prunes
//! files by the query's time range and tag equalities, then groups the
//! remaining sources by overlapping time ranges:
//!
//! ```text
//!  files (by id) + buffer chunks (by generation)      sources whose time ranges
//!        │ prune: time range, tag = / IN               overlap nothing else are
//!        ▼                                             scanned as they are:
//!  sweep by min_time ─▶ alone ─────────────────────▶   Parquet scan (one DataSourceExec,
//!                    └▶ overlapping group ─▶ read,      every file) ∪ memory scan
//!                       concat oldest first, dedup ─▶  (later writes win, field by field)
//! ```
//!
//! The buffer is read before the catalog: a persist registers its files
//! before it drops the buffered rows, so a query sees every row at least
//! once, and a row seen twice is collapsed by the dedup of its group.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int32Array, StringArray,
};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::Int32Type;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use buffer::{Buffer, BufferChunk};
use catalog::{Catalog, ColumnKind, DatabaseSchema, FieldType, ParquetFile, TableSchema};
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_expr::expressions::{
    BinaryExpr as PhysicalBinaryExpr, Column as PhysicalColumn, col as physical_col,
    lit as physical_lit,
};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use crate::ScanMetrics;
use crate::key_runs::{KeyRuns, KeyRunsCache};

/// The schema name of user tables, as in InfluxDB 3.
pub(crate) const IOX_SCHEMA: &str = "iox";

/// The URL under which the engine registers the object store.
pub(crate) const STORE_URL: &str = "inflow://store";

/// What a table scan reads besides the schema: the buffer, the catalog for
/// the file list, and the store for files it must read itself.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) buffer: Arc<Buffer>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) metrics: Arc<ScanMetrics>,
    /// Files' decoded [`KeyRuns`].
    pub(crate) key_runs: Arc<KeyRunsCache>,
    /// The node registry, for `system.nodes`.
    pub(crate) registry: Option<cluster::Registry>,
    /// What plugins logged, for `system.processing_engine_logs`.
    pub(crate) engine_logs: Option<Arc<services::engine::EngineLogs>>,
}

/// What the table scans of one query's physical plan read, in its
/// session's configuration (a logical plan kept for reuse holds the table
/// providers of the query that planned it, so the log cannot be theirs).
#[derive(Debug, Default)]
pub(crate) struct ScanLog(std::sync::Mutex<Vec<ScanRecord>>);

impl ScanLog {
    /// Takes what the scans planned so far read.
    pub(crate) fn take(&self) -> Vec<ScanRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What one table scan of a physical plan read: enough to tell later
/// whether a fresh scan would read the same rows the same way.
#[derive(Debug, Clone)]
pub(crate) struct ScanRecord {
    db_id: u32,
    table_id: u32,
    buffer: buffer::TableVersion,
    /// Held so that the pointer compared stays this list's.
    files: Option<Arc<catalog::TableFiles>>,
    /// Whether the scan fixed nothing but those rows: no retention cut-off
    /// (a time), and every file planned with its footer (a file planned
    /// without one is read whole: right, but slower than a new plan).
    pub(crate) fixed_rows_only: bool,
    /// Parquet files read, and pruned before opening.
    pub(crate) files_scanned: u64,
    pub(crate) files_pruned: u64,
}

impl Sources {
    /// Whether a scan now would read the rows `r` did.
    pub(crate) fn unchanged(&self, r: &ScanRecord) -> bool {
        // Buffer first, then the catalog, like `scan`.
        self.buffer.table_version(r.db_id, r.table_id) == r.buffer
            && match (
                self.catalog.state().table_files(r.db_id, r.table_id),
                &r.files,
            ) {
                (Some(now), Some(then)) => Arc::ptr_eq(now, then),
                (None, None) => true,
                _ => false,
            }
    }
}

/// The `public` catalog of a query: the database's tables in schema `iox`.
#[derive(Debug)]
pub struct DatabaseCatalog {
    iox: Arc<DatabaseTables>,
    system: Arc<crate::system::SystemTables>,
}

impl DatabaseCatalog {
    /// A catalog over `db`'s schema of the moment, with the `system` tables
    /// of catalog state `state`.
    pub(crate) fn new(
        db: Arc<DatabaseSchema>,
        sources: Sources,
        state: Arc<catalog::CatalogState>,
    ) -> Self {
        Self {
            system: Arc::new(crate::system::SystemTables::new(
                state,
                Arc::clone(&db),
                sources.registry.clone(),
                Arc::clone(sources.buffer.caches()),
                sources.engine_logs.clone(),
            )),
            iox: Arc::new(DatabaseTables { db, sources }),
        }
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![
            IOX_SCHEMA.to_string(),
            crate::system::SYSTEM_SCHEMA.to_string(),
        ]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            IOX_SCHEMA => Some(Arc::clone(&self.iox) as Arc<dyn SchemaProvider>),
            crate::system::SYSTEM_SCHEMA => {
                Some(Arc::clone(&self.system) as Arc<dyn SchemaProvider>)
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct DatabaseTables {
    db: Arc<DatabaseSchema>,
    sources: Sources,
}

#[async_trait]
impl SchemaProvider for DatabaseTables {
    fn table_names(&self) -> Vec<String> {
        self.db.tables().map(|t| t.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.db.table(name).map(|t| {
            Arc::new(InflowTable {
                db_id: self.db.id,
                db: Arc::clone(&self.db),
                schema: table_batch::table_arrow_schema(t),
                table: Arc::clone(t),
                sources: self.sources.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.db.table(name).is_some()
    }
}

/// One table: its Parquet files and buffered chunks.
#[derive(Debug)]
struct InflowTable {
    db_id: u32,
    /// The database schema, for the table's retention.
    db: Arc<DatabaseSchema>,
    table: Arc<TableSchema>,
    schema: SchemaRef,
    sources: Sources,
}

/// Whether `provider` is an Inflow table, whose scans read the buffer and
/// the files of the moment they run (so a plan over it stays valid while
/// the table's schema does).
pub(crate) fn reads_live_rows(provider: &dyn TableProvider) -> bool {
    provider.is::<InflowTable>()
}

/// A source of rows with its time range, in age order.
enum Source {
    File(Arc<ParquetFile>),
    Chunk(BufferChunk),
}

impl Source {
    fn range(&self) -> (i64, i64) {
        match self {
            Source::File(f) => (f.min_time, f.max_time),
            Source::Chunk(c) => (c.min_time, c.max_time),
        }
    }
}

impl InflowTable {
    /// What `filters` allow, with the time range narrowed by retention, and
    /// the retention cut-off.
    fn pruning(&self, filters: &[Expr]) -> (Pruning, Option<i64>) {
        let mut prune = Pruning::from_filters(filters, &self.table);
        // Rows past retention are never returned.
        let retention_cutoff = self.db.retention_cutoff(&self.table, catalog::now_ns());
        if let Some(c) = retention_cutoff {
            prune.min_time = prune.min_time.max(c);
        }
        (prune, retention_cutoff)
    }

    /// Buffered chunks are sorted by series key; its first column, if a
    /// tag, is sorted outright.
    fn first_key(&self) -> Option<&str> {
        table_batch::key_columns(&self.schema, &self.table)
            .first()
            .map(|i| self.schema.field(*i).name().as_str())
            .filter(|name| {
                self.table
                    .column(name)
                    .is_some_and(|c| c.kind == ColumnKind::Tag)
            })
    }

    /// About how many rows a scan with `filters` reads: the rows of the
    /// files it keeps that their statistics allow (see
    /// [`estimated_file_rows`]), and the buffered rows in its time range
    /// whose first key tag has a value it allows (counted by binary search,
    /// nothing copied). Cheap next to planning: no file is opened.
    fn estimated_rows(
        &self,
        filters: &[Expr],
        footers: &FileMetadataCache,
    ) -> Result<EstimatedRows> {
        let arrow_err = |e| DataFusionError::ArrowError(Box::new(e), None);
        let (prune, _) = self.pruning(filters);
        let files: usize = self
            .sources
            .catalog
            .state()
            .table_files(self.db_id, self.table.id)
            .map_or(0, |files| {
                files
                    .values()
                    .filter(|f| prune.keeps_file(f))
                    .map(|f| estimated_file_rows(f, &prune, footers, &self.sources.key_runs))
                    .sum()
            });
        let first_key = self.first_key();
        let chunks = self
            .sources
            .buffer
            .table_chunks(self.db_id, &self.table)
            .map_err(arrow_err)?;
        let mut buffered = 0usize;
        for c in chunks {
            if c.min_time <= prune.max_time && c.max_time >= prune.min_time {
                buffered += match first_tag_ranges(&c.batch, &prune.tags, first_key) {
                    Some((_, ranges)) => ranges.iter().map(|(lo, hi)| hi - lo).sum(),
                    None => c.batch.num_rows(),
                };
            }
        }
        Ok(EstimatedRows { files, buffered })
    }
}

/// A scan's estimated rows, by where they are.
struct EstimatedRows {
    /// In Parquet files (to be decoded).
    files: usize,
    /// In the buffer (in memory already).
    buffered: usize,
}

/// About how many rows of file `f` a scan pruned by `prune` reads.
///
/// With the file's footer in the metadata cache (the first query that reads
/// a file puts it there), these are the rows of the row groups and pages
/// whose statistics allow the time range, tag values and field comparisons:
/// what the scan's [`access_plan`] lets it read. Without it, the file's rows
/// in proportion to how much of its time range the scan's covers.
fn estimated_file_rows(
    f: &ParquetFile,
    prune: &Pruning,
    footers: &FileMetadataCache,
    runs: &KeyRunsCache,
) -> usize {
    if let Some(footer) = cached_footer(footers, &f.path) {
        let runs = runs.get(&f.path, &footer);
        return footer_rows(&footer, prune, runs.as_deref());
    }
    let (lo, hi) = (
        f.min_time.max(prune.min_time),
        f.max_time.min(prune.max_time),
    );
    if hi < lo {
        return 0;
    }
    let span = i128::from(f.max_time) - i128::from(f.min_time) + 1;
    let covered = i128::from(hi) - i128::from(lo) + 1;
    usize::try_from(i128::from(f.row_count) * covered / span).unwrap_or(usize::MAX)
}

/// The decoded footer of the file at `path`, if a query has read it.
fn cached_footer(footers: &FileMetadataCache, path: &str) -> Option<Arc<ParquetMetaData>> {
    let entry = footers.get(&object_store::path::Path::from(path))?;
    let cached = entry
        .file_metadata
        .as_any()
        .downcast_ref::<CachedParquetMetaData>()?;
    Some(Arc::clone(cached.parquet_metadata()))
}

/// The Arrow schema of the file of `footer`: the table's fields of the
/// file's columns, in the file's order (a file has the columns its table
/// had when it was written; columns are only ever added, never retyped).
/// Handed to the reader, it saves decoding the schema embedded in the
/// footer at every open (a quarter of a million instructions for the
/// TSBS table). `None` if a column is not the table's.
fn file_arrow_schema(footer: &ParquetMetaData, table: &SchemaRef) -> Option<SchemaRef> {
    let columns = footer.file_metadata().schema_descr().columns();
    let fields = columns
        .iter()
        .map(|c| table.field_with_name(c.name()).ok().cloned())
        .collect::<Option<Vec<_>>>()?;
    Some(Arc::new(arrow::datatypes::Schema::new(fields)))
}

/// The rows of the row groups and pages of `footer` whose statistics allow
/// what `prune` asks for (all rows of a row group or page without
/// statistics).
fn footer_rows(footer: &ParquetMetaData, prune: &Pruning, runs: Option<&KeyRuns>) -> usize {
    let columns = PruneColumns::new(footer, prune, runs);
    (0..footer.num_row_groups())
        .map(|g| columns.select(footer, g).rows(row_group_rows(footer, g)))
        .sum()
}

/// Which rows of each row group of `footer` may match `prune`, as a
/// DataFusion access plan: row groups skipped outright by their statistics,
/// and within the others, the rows of the pages every constrained column's
/// page index allows, narrowed to the exact rows of the values of the first
/// series-key tag that the query names when the file lists them (`runs`).
/// `None` when every row may match.
fn access_plan(
    footer: &ParquetMetaData,
    prune: &Pruning,
    runs: Option<&KeyRuns>,
) -> Option<ParquetAccessPlan> {
    let columns = PruneColumns::new(footer, prune, runs);
    let mut all = true;
    let access = (0..footer.num_row_groups())
        .map(|g| match columns.select(footer, g) {
            Rows::All => RowGroupAccess::Scan,
            Rows::Ranges(r) if r.is_empty() => {
                all = false;
                RowGroupAccess::Skip
            }
            Rows::Ranges(r) => {
                all = false;
                let rows = row_group_rows(footer, g);
                RowGroupAccess::Selection(RowSelection::from_consecutive_ranges(
                    r.into_iter(),
                    rows,
                ))
            }
        })
        .collect();
    (!all).then(|| ParquetAccessPlan::new(access))
}

fn row_group_rows(footer: &ParquetMetaData, g: usize) -> usize {
    usize::try_from(footer.row_group(g).num_rows()).unwrap_or(0)
}

/// The leaf columns of a file that `prune` constrains: `time`, each tag with
/// values, and each field compared with a number.
struct PruneColumns<'p> {
    /// `time`'s column, with the range the query allows, if it narrows it.
    time: Option<(usize, i64, i64)>,
    tags: Vec<(usize, &'p [String])>,
    /// The exact rows of the first series-key tag's values the query
    /// names (from the file's [`KeyRuns`]), from the start of the file, and
    /// where each row group starts.
    exact: Option<(Vec<std::ops::Range<usize>>, Vec<usize>)>,
    fields: Vec<(usize, FieldBound)>,
    /// A constrained tag or field the file does not have: all its rows
    /// are null there, so none matches.
    missing_column: bool,
}

/// Rows of a row group: all of them, or these ascending, disjoint ranges.
enum Rows {
    All,
    Ranges(Vec<std::ops::Range<usize>>),
}

impl Rows {
    fn rows(&self, group_rows: usize) -> usize {
        match self {
            Rows::All => group_rows,
            Rows::Ranges(r) => r.iter().map(|r| r.len()).sum(),
        }
    }

    /// The rows in both.
    fn and(self, other: Rows) -> Rows {
        let (a, b) = match (self, other) {
            (Rows::All, o) | (o, Rows::All) => return o,
            (Rows::Ranges(a), Rows::Ranges(b)) => (a, b),
        };
        let (mut i, mut j) = (0, 0);
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        while i < a.len() && j < b.len() {
            let (lo, hi) = (a[i].start.max(b[j].start), a[i].end.min(b[j].end));
            if lo < hi {
                out.push(lo..hi);
            }
            if a[i].end < b[j].end {
                i += 1;
            } else {
                j += 1;
            }
        }
        Rows::Ranges(out)
    }
}

impl<'p> PruneColumns<'p> {
    fn new(footer: &ParquetMetaData, prune: &'p Pruning, runs: Option<&KeyRuns>) -> Self {
        let columns = footer.file_metadata().schema_descr();
        let index_of =
            |name: &str| (0..columns.num_columns()).find(|i| columns.column(*i).name() == name);
        let mut missing_column = false;
        let mut find = |name: &str| {
            let found = index_of(name);
            missing_column |= found.is_none();
            found
        };
        let mut exact = None;
        let tags = prune
            .tags
            .iter()
            .filter(|(tag, values)| match runs.filter(|r| &r.column == tag) {
                Some(r) => {
                    let starts = (0..footer.num_row_groups())
                        .scan(0, |start, g| {
                            let this = *start;
                            *start += row_group_rows(footer, g);
                            Some(this)
                        })
                        .collect();
                    exact = Some((r.rows_of(values, prune.min_time, prune.max_time), starts));
                    false
                }
                None => true,
            })
            .filter_map(|(tag, values)| find(tag).map(|i| (i, values.as_slice())))
            .collect();
        let fields = prune
            .fields
            .iter()
            .filter_map(|(field, bound)| find(field).map(|i| (i, *bound)))
            .collect();
        let narrowed = prune.min_time > i64::MIN || prune.max_time < i64::MAX;
        let time = index_of("time")
            .filter(|_| narrowed)
            .map(|t| (t, prune.min_time, prune.max_time));
        Self {
            time,
            tags,
            exact,
            fields,
            missing_column,
        }
    }

    /// The rows of row group `g` that every constrained column's statistics
    /// allow.
    fn select(&self, footer: &ParquetMetaData, g: usize) -> Rows {
        if self.missing_column {
            return Rows::Ranges(Vec::new());
        }
        let mut rows = Rows::All;
        if let Some((ranges, starts)) = &self.exact {
            let (start, len) = (
                starts.get(g).copied().unwrap_or(0),
                row_group_rows(footer, g),
            );
            let end = start + len;
            let within = ranges
                .iter()
                .filter(|r| r.start < end && r.end > start)
                .map(|r| r.start.max(start) - start..r.end.min(end) - start)
                .collect::<Vec<_>>();
            rows = if within.len() == 1 && within[0] == (0..len) {
                Rows::All
            } else {
                Rows::Ranges(within)
            };
        }
        if let Some((t, min_time, max_time)) = self.time {
            rows = rows.and(allowed_rows(footer, g, t, |s| match s {
                Stat::Int(min, max) => min <= max_time && max >= min_time,
                Stat::Float(..) | Stat::Bytes(..) => true,
            }));
        }
        for (c, values) in &self.tags {
            rows = rows.and(allowed_rows(footer, g, *c, |s| match s {
                Stat::Bytes(min, max) => values
                    .iter()
                    .any(|v| min <= v.as_bytes() && v.as_bytes() <= max),
                Stat::Int(..) | Stat::Float(..) => true,
            }));
        }
        for (c, bound) in &self.fields {
            rows = rows.and(allowed_rows(footer, g, *c, |s| bound.allows_stat(s)));
        }
        rows
    }
}

/// A column chunk's or page's smallest and largest value.
enum Stat<'a> {
    Int(i64, i64),
    Float(f64, f64),
    Bytes(&'a [u8], &'a [u8]),
}

/// A number a field is compared with.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

/// `field <op> value`.
#[derive(Debug, Clone, Copy)]
struct FieldBound {
    op: Operator,
    value: Num,
}

impl FieldBound {
    /// Whether a value between `min` and `max` may satisfy the bound.
    fn allows<T: PartialOrd>(&self, min: T, max: T, v: T) -> bool {
        match self.op {
            Operator::Gt => max > v,
            Operator::GtEq => max >= v,
            Operator::Lt => min < v,
            Operator::LtEq => min <= v,
            Operator::Eq => min <= v && v <= max,
            _ => true,
        }
    }

    fn allows_stat(&self, s: Stat<'_>) -> bool {
        match (s, self.value) {
            (Stat::Int(min, max), Num::Int(v)) => self.allows(min, max, v),
            (Stat::Float(min, max), Num::Float(v)) => self.allows(min, max, v),
            _ => true,
        }
    }
}

/// The rows of row group `g` whose column `c` statistics `allow`: none when
/// the chunk's statistics rule it out, else the rows of the pages they
/// allow (adjacent pages merged), or all of them without a page index. A
/// page of nulls only is never allowed (the constraints are comparisons).
fn allowed_rows(
    footer: &ParquetMetaData,
    g: usize,
    c: usize,
    allow: impl Fn(Stat<'_>) -> bool,
) -> Rows {
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    use parquet::file::statistics::Statistics;
    let chunk = footer.row_group(g).column(c);
    let chunk_allows = match chunk.statistics() {
        Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => allow(Stat::Int(*min, *max)),
            _ => true,
        },
        Some(Statistics::Double(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => allow(Stat::Float(*min, *max)),
            _ => true,
        },
        Some(Statistics::ByteArray(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => allow(Stat::Bytes(min.data(), max.data())),
            _ => true,
        },
        _ => true,
    };
    if !chunk_allows {
        return Rows::Ranges(Vec::new());
    }
    let (Some(pages), Some(offsets)) = (
        footer.column_index().and_then(|ci| ci.get(g)?.get(c)),
        footer.offset_index().and_then(|oi| oi.get(g)?.get(c)),
    ) else {
        return Rows::All;
    };
    let page_allows = |p: usize| match pages {
        ColumnIndexMetaData::INT64(idx) => match (idx.min_value(p), idx.max_value(p)) {
            (Some(min), Some(max)) => allow(Stat::Int(*min, *max)),
            _ => false,
        },
        ColumnIndexMetaData::DOUBLE(idx) => match (idx.min_value(p), idx.max_value(p)) {
            (Some(min), Some(max)) => allow(Stat::Float(*min, *max)),
            _ => false,
        },
        ColumnIndexMetaData::BYTE_ARRAY(idx) => match (idx.min_value(p), idx.max_value(p)) {
            (Some(min), Some(max)) => allow(Stat::Bytes(min, max)),
            _ => false,
        },
        _ => true,
    };
    let group_rows = row_group_rows(footer, g);
    let locations = offsets.page_locations();
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for (p, location) in locations.iter().enumerate() {
        if !page_allows(p) {
            continue;
        }
        let start = usize::try_from(location.first_row_index)
            .unwrap_or(0)
            .min(group_rows);
        let end = locations
            .get(p + 1)
            .map_or(group_rows, |next| {
                usize::try_from(next.first_row_index).unwrap_or(group_rows)
            })
            .min(group_rows);
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ if start < end => ranges.push(start..end),
            _ => {}
        }
    }
    if ranges.len() == 1 && ranges[0] == (0..group_rows) {
        return Rows::All;
    }
    Rows::Ranges(ranges)
}

/// About how much work the scans of `plan` are: the values they read
/// (each scan's estimated rows, see `InflowTable::estimated_rows`, times the
/// columns it reads), a value decoded from Parquet counting as
/// [`DECODE_COST`] buffered ones. Other tables, such as system tables, count
/// as none. `footers` is the runtime's Parquet metadata cache.
pub(crate) fn estimated_scan_work(
    plan: &LogicalPlan,
    footers: &FileMetadataCache,
) -> Result<usize> {
    let mut work = 0usize;
    plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(scan) = p
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<InflowTable>()
        {
            let columns = scan
                .projection
                .as_ref()
                .map_or(table.schema.fields().len(), Vec::len)
                .max(1);
            let rows = table.estimated_rows(&scan.filters, footers)?;
            let weighted = rows
                .files
                .saturating_mul(DECODE_COST)
                .saturating_add(rows.buffered);
            work = work.saturating_add(weighted.saturating_mul(columns));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(work)
}

/// How many buffered values reading one Parquet value is worth, for
/// choosing the partitions of a plan (measured on the TSBS queries: a
/// 12-column scan of 37 K Parquet rows ran 10% faster on two partitions than
/// on one, one of 9 K buffered rows 7% slower).
const DECODE_COST: usize = 4;

#[async_trait]
impl TableProvider for InflowTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Time ranges and tag values the scan applies itself (see `scan`);
        // the other filters prune files, row groups and pages, and
        // DataFusion applies them.
        Ok(filters
            .iter()
            .map(|f| match applied_by_scan(f, &self.table) {
                true => TableProviderFilterPushDown::Exact,
                false => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let arrow_err = |e| DataFusionError::ArrowError(Box::new(e), None);
        // Buffer first, then the catalog (see the module docs). The
        // version is taken before the chunks, so it is never newer.
        let buffer_version = self.sources.buffer.table_version(self.db_id, self.table.id);
        let chunks = self
            .sources
            .buffer
            .table_chunks(self.db_id, &self.table)
            .map_err(arrow_err)?;
        let catalog_state = self.sources.catalog.state();
        let (prune, retention_cutoff) = self.pruning(filters);
        // The filters DataFusion left to this scan (`supports_filters_pushdown`
        // said `Exact`): each source either holds only rows that pass them
        // (its time range inside theirs, its rows selected by tag value)
        // or gets them as a predicate or a filter.
        let own_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| applied_by_scan(f, &self.table))
            .cloned()
            .collect();
        let own = Pruning::from_filters(&own_filters, &self.table);
        let inside = |lo: i64, hi: i64| own.min_time <= lo && hi <= own.max_time;

        let mut sources: Vec<Source> = Vec::new();
        let (mut scanned, mut pruned) = (0u64, 0u64);
        if let Some(files) = catalog_state.table_files(self.db_id, self.table.id) {
            for f in files.values() {
                if prune.keeps_file(f) {
                    scanned += 1;
                    sources.push(Source::File(Arc::clone(f)));
                } else {
                    pruned += 1;
                }
            }
        }
        self.sources.metrics.record(scanned, pruned);
        let mut record = ScanRecord {
            db_id: self.db_id,
            table_id: self.table.id,
            buffer: buffer_version,
            files: catalog_state
                .table_files(self.db_id, self.table.id)
                .cloned(),
            fixed_rows_only: retention_cutoff.is_none(),
            files_scanned: scanned,
            files_pruned: pruned,
        };
        sources.extend(
            chunks
                .into_iter()
                .filter(|c| c.min_time <= prune.max_time && c.max_time >= prune.min_time)
                .map(Source::Chunk),
        );

        // Group sources whose time ranges overlap; `sources` is in age order
        // and the sort is stable, so each group stays in age order.
        let mut order: Vec<usize> = (0..sources.len()).collect();
        order.sort_by_key(|i| sources[*i].range().0);
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_max = i64::MIN;
        for i in order {
            let (lo, hi) = sources[i].range();
            match groups.last_mut() {
                Some(g) if lo <= group_max => {
                    g.push(i);
                    group_max = group_max.max(hi);
                }
                _ => {
                    groups.push(vec![i]);
                    group_max = hi;
                }
            }
        }

        // Under retention, rows are filtered on `time`, so the scan reads it.
        let time_idx = self.schema.index_of("time").ok();
        let wanted = projection.cloned();
        let projection = match (retention_cutoff, time_idx, &wanted) {
            (Some(_), Some(t), Some(p)) if !p.contains(&t) => {
                let mut p = p.clone();
                p.push(t);
                Some(p)
            }
            _ => wanted.clone(),
        };
        // Buffered rows keep only the projection's columns and the tags the
        // selection matches on: selecting and concatenating the other
        // columns (tags most of all, whose dictionaries concatenation
        // merges) was most of a selective buffer scan.
        let kept: Option<Vec<usize>> = projection.as_ref().map(|p| {
            let mut k = p.clone();
            k.extend(
                prune
                    .tags
                    .iter()
                    .filter_map(|(tag, _)| self.schema.index_of(tag).ok()),
            );
            k.extend(time_idx.filter(|_| own.min_time > i64::MIN || own.max_time < i64::MAX));
            k.sort_unstable();
            k.dedup();
            k
        });
        let narrow = |b: &RecordBatch| match &kept {
            Some(k) => b.project(k),
            None => Ok(b.clone()),
        };

        let first_key = self.first_key();
        let footers = state.runtime_env().cache_manager.get_file_metadata_cache();
        // Whether every file comes with the rows its statistics allow.
        let mut every_file_planned = true;
        // Each with whether it needs the scan's own filters applied.
        let mut files: Vec<(PartitionedFile, FileFilter)> = Vec::new();
        let mut memory: Vec<(RecordBatch, bool)> = Vec::new();
        // A file a predicate delete still applies to (until the compactor
        // rewrites it) is scanned with the delete's negation as one more
        // predicate, grouped with the files that have the same deletes
        // pending; in a group of overlapping sources it is filtered in
        // memory before the dedup.
        let pending_ids = |i: usize| -> Vec<u64> {
            match &sources[i] {
                Source::File(f) => f.pending_tombstones(&self.table).map(|t| t.id).collect(),
                Source::Chunk(_) => Vec::new(),
            }
        };
        let mut tombstoned: BTreeMap<Vec<u64>, Vec<PartitionedFile>> = BTreeMap::new();
        for mut g in groups {
            if g.len() == 1 {
                match &sources[g[0]] {
                    Source::File(f) => {
                        let file = PartitionedFile::new(f.path.clone(), f.size_bytes);
                        let planned = match cached_footer(footers.as_ref(), &f.path) {
                            Some(footer) => {
                                let file = match file_arrow_schema(&footer, &self.schema) {
                                    Some(schema) => file.with_arrow_schema(schema),
                                    None => file,
                                };
                                let runs = self.sources.key_runs.get(&f.path, &footer);
                                // Its access plan selects exactly the rows of
                                // the first key tag's values (`KeyRuns`); other
                                // tags only by page statistics.
                                let tags_exact = own.tags.iter().all(|(tag, _)| {
                                    runs.as_ref().is_some_and(|r| r.column == *tag)
                                });
                                // Runs that list their times select exactly the
                                // rows in the time range as well.
                                let times_exact = !own.tags.is_empty()
                                    && own.tags.iter().all(|(_, values)| {
                                        runs.as_ref().is_some_and(|r| r.times_listed(values))
                                    });
                                let filter = match (
                                    tags_exact,
                                    times_exact || inside(f.min_time, f.max_time),
                                ) {
                                    (true, true) => FileFilter::Nothing,
                                    (true, false) => FileFilter::Time,
                                    (false, _) => FileFilter::All,
                                };
                                let file = match access_plan(&footer, &prune, runs.as_deref()) {
                                    Some(plan) => file.with_extension(plan),
                                    None => file,
                                };
                                (file, filter)
                            }
                            None => {
                                every_file_planned = false;
                                (
                                    file,
                                    if own_filters.is_empty() {
                                        FileFilter::Nothing
                                    } else {
                                        FileFilter::All
                                    },
                                )
                            }
                        };
                        // With deletes pending, the file keeps its access
                        // plan and gets every filter and their negations.
                        let ids = pending_ids(g[0]);
                        if ids.is_empty() {
                            files.push(planned);
                        } else {
                            tombstoned.entry(ids).or_default().push(planned.0);
                        }
                    }
                    Source::Chunk(c) => {
                        let batch = narrow(&c.batch)
                            .and_then(|b| select_tags(&b, &prune.tags, first_key))
                            .map_err(arrow_err)?;
                        // `select_tags` matches dictionary tag columns exactly.
                        let exact = inside(c.min_time, c.max_time)
                            && own.tags.iter().all(|(tag, _)| {
                                batch.column_by_name(tag).is_some_and(|col| {
                                    col.as_any()
                                        .downcast_ref::<DictionaryArray<Int32Type>>()
                                        .is_some_and(|d| {
                                            d.values().as_string_opt::<i32>().is_some()
                                        })
                                })
                            });
                        memory.push((batch, !exact));
                    }
                }
                continue;
            }
            g.sort_unstable();
            memory.push((
                narrow(&self.merge(&sources, &g, &prune).await?).map_err(arrow_err)?,
                !own_filters.is_empty(),
            ));
        }
        // The scan's own filters that say something of `time`: what a file
        // whose access plan selects exactly the tag values still needs.
        let time_filters: Vec<Expr> = own_filters
            .iter()
            .filter(|f| {
                let p = Pruning::from_filters(std::slice::from_ref(*f), &self.table);
                p.tags.is_empty() || p.min_time > i64::MIN || p.max_time < i64::MAX
            })
            .cloned()
            .collect();
        // Some of the scan's own filters as one predicate over `schema`.
        let predicate_of = |filters: &[Expr],
                            schema: &SchemaRef|
         -> Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
            let unqualified = filters
                .iter()
                .map(|f| {
                    f.clone()
                        .transform(|e| match e {
                            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(
                                datafusion::common::Column::new_unqualified(c.name),
                            ))),
                            other => Ok(Transformed::no(other)),
                        })
                        .map(|t| t.data)
                })
                .collect::<Result<Vec<Expr>>>()?;
            let predicate =
                conjunction(unqualified).unwrap_or_else(|| datafusion::logical_expr::lit(true));
            state.create_physical_expr(predicate, &DFSchema::try_from(Arc::clone(schema))?)
        };

        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        let by_id: BTreeMap<u64, &catalog::Tombstone> =
            self.table.tombstones.iter().map(|t| (t.id, t)).collect();
        if !files.is_empty() || !tombstoned.is_empty() {
            // Filters are evaluated while decoding (late materialisation):
            // selective queries decode the other columns only for matches.
            // Files never change once written, so their decoded footers are
            // kept in the runtime's metadata cache across queries.
            let store = state
                .runtime_env()
                .object_store(ObjectStoreUrl::parse(STORE_URL)?)?;
            let reader = PageIndexedReaderFactory(CachedParquetFileReaderFactory::new(
                store,
                Arc::clone(&footers),
            ));
            let source = ParquetSource::new(Arc::clone(&self.schema))
                .with_parquet_file_reader_factory(Arc::new(reader))
                .with_pushdown_filters(true)
                .with_reorder_filters(true)
                // Inflow writes no bloom filters; looking for them cost
                // about 0.4 ms per file opened.
                .with_bloom_filter_on_read(false);
            // When the filters are all time ranges, tag values and field
            // comparisons (`Pruning::exact`) and every file comes with its
            // access plan, DataFusion's own pruning by
            // row group and page statistics would find nothing more, and it
            // costs about a tenth of a single-host query (it builds and
            // evaluates pruning expressions per file, row group and filter).
            // A dynamic filter pushed into the scan later turns it back on
            // (`PruneDynamicFilters`).
            let source = if prune.exact && every_file_planned {
                without_statistics_pruning(source)
            } else {
                source
            };
            // No predicate here: the physical optimizer pushes the query's
            // filter into this source (it evaluates filters while decoding),
            // and one set here as well was evaluated a second time, both
            // while pruning and on every row.
            // Spread files over the target partitions, keeping them whole.
            // Files that need the scan's own filters get them as their
            // predicate (over the table's columns, whatever the projection).
            // Files whose tag values their access plans select exactly get
            // only the time filters: a tag predicate would decode the tag
            // column and compare strings for nothing.
            let mut by_filter: [(FileFilter, Vec<PartitionedFile>); 3] = [
                (FileFilter::Nothing, Vec::new()),
                (FileFilter::Time, Vec::new()),
                (FileFilter::All, Vec::new()),
            ];
            for (file, filter) in files {
                if let Some((_, group)) = by_filter.iter_mut().find(|(f, _)| *f == filter) {
                    group.push(file);
                }
            }
            // Files with deletes pending: the scan's own filters and the
            // deletes' negations, evaluated while decoding.
            for (ids, files) in std::mem::take(&mut tombstoned) {
                let mut filters = own_filters.clone();
                for t in ids.iter().filter_map(|id| by_id.get(id)) {
                    filters.push(kept_by_tombstone(t, &self.table)?);
                }
                let n = state.config().target_partitions().max(1).min(files.len());
                let mut file_groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); n];
                for (i, f) in files.into_iter().enumerate() {
                    file_groups[i % n].push(f);
                }
                let source = source
                    .clone()
                    .with_predicate(predicate_of(&filters, &self.schema)?);
                let config =
                    FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(source))
                        .with_file_groups(file_groups.into_iter().map(FileGroup::new).collect())
                        .with_projection_indices(projection.clone())?
                        .build();
                plans.push(DataSourceExec::from_data_source(config));
            }
            for (filter, files) in by_filter {
                if files.is_empty() {
                    continue;
                }
                let n = state.config().target_partitions().max(1).min(files.len());
                let mut file_groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); n];
                for (i, f) in files.into_iter().enumerate() {
                    file_groups[i % n].push(f);
                }
                let source = match filter {
                    FileFilter::Nothing => source.clone(),
                    FileFilter::Time if time_filters.is_empty() => source.clone(),
                    FileFilter::Time => {
                        source.with_predicate(predicate_of(&time_filters, &self.schema)?)
                    }
                    FileFilter::All => {
                        source.with_predicate(predicate_of(&own_filters, &self.schema)?)
                    }
                };
                let filter = filter != FileFilter::Nothing;
                let config =
                    FileScanConfigBuilder::new(ObjectStoreUrl::parse(STORE_URL)?, Arc::new(source))
                        .with_file_groups(file_groups.into_iter().map(FileGroup::new).collect())
                        .with_projection_indices(projection.clone())?
                        .with_limit(if retention_cutoff.is_some() || filter {
                            None
                        } else {
                            limit
                        })
                        .build();
                plans.push(DataSourceExec::from_data_source(config));
            }
        }
        // Buffered rows in at most `target_partitions` partitions, like the
        // files: a partition per chunk (72 for 12 hours of 10-minute chunks)
        // cost more in streams and repartitioning than the rows themselves.
        memory.retain(|(b, _)| b.num_rows() > 0);
        let (filtered, exact): (Vec<_>, Vec<_>) = memory.into_iter().partition(|(_, f)| *f);
        let no_sources = plans.is_empty() && exact.is_empty() && filtered.is_empty();
        for (memory, filter) in [(exact, false), (filtered, true)] {
            if memory.is_empty() && (filter || !no_sources) {
                continue;
            }
            let n = state
                .config()
                .target_partitions()
                .max(1)
                .min(memory.len().max(1));
            let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
            for (i, (b, _)) in memory.into_iter().enumerate() {
                partitions[i % n].push(b);
            }
            // A selective query takes a few rows from each of many chunks
            // (12 hours are 72 chunks); every operator above pays per batch
            // (the filter of high-cpu-1 spent 15 µs on each 60-row batch),
            // so small selections are joined into one batch per partition.
            for p in partitions.iter_mut() {
                let rows: usize = p.iter().map(|b| b.num_rows()).sum();
                if p.len() > 1
                    && rows < p.len() * SMALL_BATCH_ROWS
                    && let Some(first) = p.first()
                {
                    *p = vec![concat_batches(&first.schema(), p.iter()).map_err(arrow_err)?];
                }
            }
            // The batches hold the `kept` columns; the projection is
            // renumbered into them.
            let (schema, within) = match (&kept, &projection) {
                (Some(k), Some(p)) => (
                    Arc::new(self.schema.project(k)?),
                    Some(
                        p.iter()
                            .filter_map(|i| k.binary_search(i).ok())
                            .collect::<Vec<_>>(),
                    ),
                ),
                _ => (Arc::clone(&self.schema), projection.clone()),
            };
            if !filter {
                let mem = MemorySourceConfig::try_new(&partitions, schema, within)?.with_limit(
                    if retention_cutoff.is_some() {
                        None
                    } else {
                        limit
                    },
                );
                plans.push(DataSourceExec::from_data_source(mem));
                continue;
            }
            // The kept columns (which include those the filters read),
            // filtered, then projected.
            let mem: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(
                MemorySourceConfig::try_new(&partitions, Arc::clone(&schema), None)?,
            );
            let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(
                predicate_of(&own_filters, &schema)?,
                mem,
            )?);
            plans.push(match within {
                Some(within) => {
                    let exprs = within
                        .iter()
                        .map(|i| {
                            let name = schema.field(*i).name();
                            ProjectionExpr::new(
                                Arc::new(PhysicalColumn::new(name, *i))
                                    as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                                name.clone(),
                            )
                        })
                        .collect::<Vec<_>>();
                    Arc::new(ProjectionExec::try_new(exprs, filtered)?)
                }
                None => filtered,
            });
        }
        record.fixed_rows_only &= every_file_planned;
        if let Some(log) = state.config().get_extension::<ScanLog>() {
            log.0.lock().unwrap_or_else(|p| p.into_inner()).push(record);
        }
        let plan = UnionExec::try_new(plans)?;
        match retention_cutoff {
            Some(cutoff) => {
                retention_filter(plan, cutoff, wanted.is_some() && projection != wanted)
            }
            None => Ok(plan),
        }
    }
}

/// The rows a tombstone keeps: those it does not match (`IS NOT TRUE`, so a
/// comparison with a null tag keeps the row, as the tombstone's rule reads
/// a missing tag as the empty string).
fn kept_by_tombstone(t: &catalog::Tombstone, table: &TableSchema) -> Result<Expr> {
    use datafusion::logical_expr::{BinaryExpr, lit};
    let time = || Expr::Column(datafusion::common::Column::new_unqualified("time"));
    let at = |v: i64| lit(ScalarValue::TimestampNanosecond(Some(v), None));
    let mut matched = time()
        .gt_eq(at(t.min_time))
        .and(time().lt_eq(at(t.max_time)));
    for c in &t.predicate {
        let value = if table.column(&c.tag).is_some() {
            // A CASE, not `coalesce`: this expression goes to the scan
            // without the optimizer's simplification.
            let tag = || Expr::Column(datafusion::common::Column::new_unqualified(&c.tag));
            datafusion::logical_expr::when(tag().is_null(), lit("")).otherwise(
                datafusion::logical_expr::cast(tag(), arrow::datatypes::DataType::Utf8),
            )?
        } else {
            lit("")
        };
        let op = match c.op {
            catalog::TagOp::Eq => Operator::Eq,
            catalog::TagOp::NotEq => Operator::NotEq,
            catalog::TagOp::Regex => Operator::RegexMatch,
            catalog::TagOp::NotRegex => Operator::RegexNotMatch,
        };
        matched = matched.and(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(value),
            op,
            Box::new(lit(c.value.clone())),
        )));
    }
    Ok(Expr::IsNotTrue(Box::new(matched)))
}

/// Whether the scan applies filter `e` itself, exactly, so that DataFusion
/// need not: a comparison of `time` with a timestamp, or a tag's `=`, `IN`
/// or `OR` of equalities with strings (and `AND`s of those). Each source of
/// the scan either holds only rows that pass such filters or gets them as a
/// predicate (see `scan`). Field comparisons prune, but DataFusion applies
/// them.
fn applied_by_scan(e: &Expr, table: &TableSchema) -> bool {
    let mut p = Pruning::from_filters(&[], table);
    p.understood(e, table) && p.fields.is_empty()
}

/// Which of the scan's own filters a file's rows still need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileFilter {
    /// None: its access plan selects exactly the tag values, and its time
    /// range is inside theirs or its runs list even time steps (the access
    /// plan then selects exactly the time range too).
    Nothing,
    /// Those on `time`: its access plan selects exactly the tag values.
    Time,
    /// All of them.
    All,
}

/// Buffered selections averaging fewer rows than this per batch are joined
/// into one batch.
const SMALL_BATCH_ROWS: usize = 1024;

/// `source` without DataFusion's row group and page pruning.
fn without_statistics_pruning(source: ParquetSource) -> ParquetSource {
    let mut options = source.table_parquet_options().clone();
    options.global.pruning = false;
    options.global.enable_page_index = false;
    source.with_table_parquet_options(options)
}

/// `source` with DataFusion's row group and page pruning.
pub(crate) fn with_statistics_pruning(source: &ParquetSource) -> Option<ParquetSource> {
    let mut options = source.table_parquet_options().clone();
    if options.global.pruning && options.global.enable_page_index {
        return None;
    }
    options.global.pruning = true;
    options.global.enable_page_index = true;
    Some(source.clone().with_table_parquet_options(options))
}

/// Reads files through DataFusion's metadata cache, always with the page
/// index. DataFusion 55 asks for a footer without it, caches that, and then
/// reads and decodes the page index again for every query that prunes pages
/// (copying the shared footer to add it): about a tenth of a selective
/// query's samples. Asked for with the index, the cache keeps both. (The
/// caller's other reader options are for decryption; Inflow writes no
/// encrypted files.)
#[derive(Debug)]
struct PageIndexedReaderFactory(CachedParquetFileReaderFactory);

impl ParquetFileReaderFactory for PageIndexedReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .0
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(PageIndexedReader(inner)))
    }
}

struct PageIndexedReader(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for PageIndexedReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let with_index =
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
            self.0.get_metadata(Some(&with_index)).await
        })
    }
}

/// Keeps rows with `time >= cutoff`; with `drop_time`, removes the `time`
/// column the filter needed (the last one) afterwards.
fn retention_filter(
    plan: Arc<dyn ExecutionPlan>,
    cutoff: i64,
    drop_time: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = plan.schema();
    let predicate = Arc::new(PhysicalBinaryExpr::new(
        physical_col("time", &schema)?,
        Operator::GtEq,
        physical_lit(ScalarValue::TimestampNanosecond(Some(cutoff), None)),
    ));
    let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, plan)?);
    if !drop_time {
        return Ok(filtered);
    }
    let keep = schema.fields().len().saturating_sub(1);
    let exprs = schema
        .fields()
        .iter()
        .take(keep)
        .enumerate()
        .map(|(i, f)| {
            ProjectionExpr::new(
                Arc::new(PhysicalColumn::new(f.name(), i))
                    as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                f.name().clone(),
            )
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
}

impl InflowTable {
    /// Reads a group of overlapping sources (in age order) into one
    /// deduplicated batch.
    ///
    /// Only rows in the filters' time range and with their tag values are
    /// read and merged: every version of a point has the point's tags and
    /// time, so those rows dedup to what the whole files would give there.
    /// (Field conditions wait until after the dedup: a later version may
    /// change the field.) A one-host query over two overlapping files
    /// merged a million rows in a second before.
    async fn merge(
        &self,
        sources: &[Source],
        group: &[usize],
        prune: &Pruning,
    ) -> Result<RecordBatch> {
        let arrow_err = |e| DataFusionError::ArrowError(Box::new(e), None);
        let rows =
            (prune.min_time > i64::MIN || prune.max_time < i64::MAX || !prune.tags.is_empty())
                .then(|| parquet_store::RowsWhere {
                    min_time: prune.min_time,
                    max_time: prune.max_time,
                    tags: prune.tags.clone(),
                });
        let mut batches = Vec::new();
        for i in group {
            match &sources[*i] {
                Source::File(f) => {
                    let read =
                        parquet_store::read_file_where(&self.sources.store, &f.path, rows.as_ref())
                            .await
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    let pending: Vec<&catalog::Tombstone> =
                        f.pending_tombstones(&self.table).collect();
                    for b in read {
                        let b = table_batch::without_deleted(&b, pending.iter().copied())
                            .map_err(arrow_err)?;
                        batches.push(table_batch::align(&b, &self.schema).map_err(arrow_err)?);
                    }
                }
                Source::Chunk(c) => batches.push(match &rows {
                    Some(rows) => {
                        let keep = rows.mask(&c.batch).map_err(arrow_err)?;
                        arrow::compute::filter_record_batch(&c.batch, &keep).map_err(arrow_err)?
                    }
                    None => c.batch.clone(),
                }),
            }
        }
        let all = concat_batches(&self.schema, &batches).map_err(arrow_err)?;
        table_batch::dedup(&all, &self.table).map_err(arrow_err)
    }
}

/// What the filters say about which rows can match.
#[derive(Debug)]
struct Pruning {
    min_time: i64,
    max_time: i64,
    /// Tag columns that must equal one of the values.
    tags: Vec<(String, Vec<String>)>,
    /// Integer and float fields compared with a number.
    fields: Vec<(String, FieldBound)>,
    /// Whether the filters say nothing more than the above: every one is a
    /// comparison of `time` with a timestamp, a tag `=`/`IN` strings, or an
    /// integer or float field compared with a number of its type.
    exact: bool,
}

impl Pruning {
    fn from_filters(filters: &[Expr], table: &TableSchema) -> Self {
        let mut p = Pruning {
            min_time: i64::MIN,
            max_time: i64::MAX,
            tags: Vec::new(),
            fields: Vec::new(),
            exact: true,
        };
        for f in filters {
            p.visit(f, table);
        }
        p
    }

    fn keeps_file(&self, f: &ParquetFile) -> bool {
        f.overlaps_time(self.min_time, self.max_time)
            && self.tags.iter().all(|(tag, values)| {
                f.may_contain_tag(tag, values)
                    && f.value_index
                        .get(tag.as_str())
                        .is_none_or(|set| parquet_store::file_index::may_contain(set, values))
            })
    }

    fn visit(&mut self, e: &Expr, table: &TableSchema) {
        if !self.understood(e, table) {
            self.exact = false;
        }
    }

    /// Rows must have one of `values` in `tag`: with an earlier constraint
    /// on the tag, one of the values of both.
    fn add_tag(&mut self, tag: String, mut values: Vec<String>) {
        match self.tags.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, earlier)) => earlier.retain(|v| values.contains(v)),
            None => {
                values.sort_unstable();
                values.dedup();
                self.tags.push((tag, values));
            }
        }
    }

    /// Narrows the pruning by `e`; whether that says all `e` says.
    fn understood(&mut self, e: &Expr, table: &TableSchema) -> bool {
        let kind = |name: &str| table.column(name).map(|c| c.kind);
        // A tag's `=`, `IN`, or `OR` of equalities (DataFusion's form of
        // short `IN` lists).
        if let Some((tag, values)) = tag_values(e, table) {
            self.add_tag(tag, values);
            return true;
        }
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::And => {
                let l = self.understood(left, table);
                let r = self.understood(right, table);
                l && r
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, op, value) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
                    (Expr::Literal(v, _), Expr::Column(c)) => match op.swap() {
                        Some(op) => (c, op, v),
                        None => return false,
                    },
                    _ => return false,
                };
                match kind(&col.name) {
                    Some(ColumnKind::Time) => {
                        let Some(t) = timestamp_ns(value) else {
                            return false;
                        };
                        match op {
                            Operator::Gt => self.min_time = self.min_time.max(t.saturating_add(1)),
                            Operator::GtEq => self.min_time = self.min_time.max(t),
                            Operator::Lt => self.max_time = self.max_time.min(t.saturating_sub(1)),
                            Operator::LtEq => self.max_time = self.max_time.min(t),
                            Operator::Eq => {
                                self.min_time = self.min_time.max(t);
                                self.max_time = self.max_time.min(t);
                            }
                            _ => return false,
                        }
                        true
                    }
                    Some(ColumnKind::Field(t)) => {
                        let value = match (t, value) {
                            (FieldType::Integer, ScalarValue::Int64(Some(v))) => Num::Int(*v),
                            (FieldType::Float, ScalarValue::Float64(Some(v))) if !v.is_nan() => {
                                Num::Float(*v)
                            }
                            _ => return false,
                        };
                        if !matches!(
                            op,
                            Operator::Gt
                                | Operator::GtEq
                                | Operator::Lt
                                | Operator::LtEq
                                | Operator::Eq
                        ) {
                            return false;
                        }
                        self.fields
                            .push((col.name.clone(), FieldBound { op, value }));
                        true
                    }
                    _ => false,
                }
            }
            Expr::Between(b) if !b.negated => {
                if let (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) =
                    (b.expr.as_ref(), b.low.as_ref(), b.high.as_ref())
                    && kind(&c.name) == Some(ColumnKind::Time)
                    && let (Some(lo), Some(hi)) = (timestamp_ns(lo), timestamp_ns(hi))
                {
                    self.min_time = self.min_time.max(lo);
                    self.max_time = self.max_time.min(hi);
                    return true;
                }
                false
            }
            _ => false,
        }
    }
}

/// The tag and values of `tag = 'a' OR tag = 'b' OR ...` (one tag, string
/// literals, `IN` lists allowed among them).
fn tag_values(e: &Expr, table: &TableSchema) -> Option<(String, Vec<String>)> {
    let is_tag = |c: &datafusion::common::Column| {
        table
            .column(&c.name)
            .is_some_and(|c| c.kind == ColumnKind::Tag)
    };
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (tag, mut values) = tag_values(left, table)?;
            let (other, more) = tag_values(right, table)?;
            (tag == other).then(|| {
                values.extend(more);
                (tag, values)
            })
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))
                if is_tag(c) =>
            {
                Some((c.name.clone(), vec![string_value(v)?]))
            }
            _ => None,
        },
        Expr::InList(l) if !l.negated => match l.expr.as_ref() {
            Expr::Column(c) if is_tag(c) => {
                let values = l
                    .list
                    .iter()
                    .map(|v| match v {
                        Expr::Literal(v, _) => string_value(v),
                        _ => None,
                    })
                    .collect::<Option<Vec<String>>>()?;
                Some((c.name.clone(), values))
            }
            _ => None,
        },
        _ => None,
    }
}

fn timestamp_ns(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t),
        ScalarValue::TimestampMicrosecond(Some(t), _) => t.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000_000),
        _ => None,
    }
}

fn string_value(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        ScalarValue::Dictionary(_, v) => string_value(v),
        _ => None,
    }
}

/// The rows of a buffered chunk whose tags can match the query's tag
/// equalities (`prune.tags`). The chunk is sorted by series key, so values
/// of its first key tag `sorted_by` are each one slice, found by binary
/// search: the work grows with the answer, not the chunk. Other tags are
/// matched by dictionary key, one pass over an `i32` column each. The
/// query's filters still run on what is left (pushdown is inexact).
fn select_tags(
    batch: &RecordBatch,
    tags: &[(String, Vec<String>)],
    sorted_by: Option<&str>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let Some((first, ranges)) = first_tag_ranges(batch, tags, sorted_by) else {
        return select_by_keys(batch, tags);
    };
    let slices: Vec<RecordBatch> = ranges
        .iter()
        .map(|(lo, hi)| batch.slice(*lo, hi - lo))
        .collect();
    let narrowed = match slices.as_slice() {
        [] => return Ok(batch.slice(0, 0)),
        [one] => one.clone(),
        _ => concat_batches(&batch.schema(), &slices)?,
    };
    let narrowed = with_compact_dictionary(narrowed, batch, first, &ranges)?;
    let rest: Vec<(String, Vec<String>)> =
        tags.iter().filter(|(n, _)| n != first).cloned().collect();
    select_by_keys(&narrowed, &rest)
}

/// `narrowed` (the rows of `ranges` of `batch`) with its `first` tag column
/// rebuilt over a dictionary of just the values it holds, one per range.
/// The chunk's dictionary has every value of the chunk (a thousand host
/// names), and each filter or group on the tag works on the whole
/// dictionary: hashing it for an `IN` list was a tenth of a selective
/// buffer query.
fn with_compact_dictionary(
    narrowed: RecordBatch,
    batch: &RecordBatch,
    first: &str,
    ranges: &[(usize, usize)],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let (Ok(idx), Some(dict)) = (
        narrowed.schema().index_of(first),
        batch
            .column_by_name(first)
            .and_then(|c| c.as_any().downcast_ref::<DictionaryArray<Int32Type>>()),
    ) else {
        return Ok(narrowed);
    };
    let Some(strings) = dict.values().as_string_opt::<i32>() else {
        return Ok(narrowed);
    };
    // Every row of a range holds the same, non-null value (the ranges were
    // found for given strings).
    let values: StringArray = ranges
        .iter()
        .map(|(lo, _)| dict.key(*lo).map(|k| strings.value(k)))
        .collect();
    let mut keys = Vec::with_capacity(narrowed.num_rows());
    for (i, (lo, hi)) in ranges.iter().enumerate() {
        keys.extend(std::iter::repeat_n(i as i32, hi - lo));
    }
    let column = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(values))?;
    let mut columns = narrowed.columns().to_vec();
    columns[idx] = Arc::new(column) as ArrayRef;
    RecordBatch::try_new(narrowed.schema(), columns)
}

/// The row ranges of a chunk sorted by `sorted_by` that hold the values the
/// query's tag equalities allow for that tag, in order, with the tag's name;
/// `None` if that tag has no equality or is not a dictionary of strings.
fn first_tag_ranges<'t>(
    batch: &RecordBatch,
    tags: &'t [(String, Vec<String>)],
    sorted_by: Option<&str>,
) -> Option<(&'t str, Vec<(usize, usize)>)> {
    let (first, values) = sorted_by.and_then(|f| tags.iter().find(|(n, _)| n == f))?;
    let dict = batch
        .column_by_name(first)
        .and_then(|c| c.as_any().downcast_ref::<DictionaryArray<Int32Type>>())?;
    let strings = dict.values().as_string_opt::<i32>()?;
    let keys = dict.keys();
    // Nulls sort first, then values in byte order (as `sort_by_key` sorts).
    let value = |row: usize| -> Option<&str> {
        let k = keys.is_valid(row).then(|| keys.value(row) as usize)?;
        (k < strings.len() && strings.is_valid(k)).then(|| strings.value(k))
    };
    let bound = |pred: &dyn Fn(usize) -> bool| {
        let (mut lo, mut hi) = (0, batch.num_rows());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let mut ranges: Vec<(usize, usize)> = values
        .iter()
        .map(|v| {
            let v = v.as_str();
            let lo = bound(&|row| value(row).is_none_or(|s| s < v));
            let hi = bound(&|row| value(row).is_none_or(|s| s <= v));
            (lo, hi)
        })
        .filter(|(lo, hi)| lo < hi)
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    Some((first.as_str(), ranges))
}

/// The rows whose tags can match `tags`, by dictionary key.
fn select_by_keys(
    batch: &RecordBatch,
    tags: &[(String, Vec<String>)],
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let Some(keep) = table_batch::tag_mask(batch, tags) else {
        return Ok(batch.clone());
    };
    match keep.count_set_bits() {
        0 => Ok(batch.slice(0, 0)),
        n if n < batch.num_rows() => filter_record_batch(batch, &BooleanArray::new(keep, None)),
        _ => Ok(batch.clone()),
    }
}
