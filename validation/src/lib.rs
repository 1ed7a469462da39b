//! Write validation: line protocol in, checked Arrow record batches and
//! catalog intents out. The first stage of the write path:
//! line_protocol ─▶ validation ─▶ wal ─▶ buffer ─▶ parquet_store.
//!
//! ```text
//!  body ─parse()─▶ ParsedWrite ─schema_check(state)─▶ SchemaChange ─▶ catalog.ensure()
//!                                                                          │
//!                  WriteBatch (one RecordBatch per table) ◀─build(state)───┘
//! ```
//!
//! The steps are split so that the catalog is only changed once per request,
//! and not at all when `accept_partial=false` and a line is already bad.
//! `build` checks every line again against the state the catalog returned,
//! because another writer may have won a race for a column's type.

use std::collections::HashMap;
use std::sync::Arc;

use std::borrow::Cow;

use arrow::array::{
    ArrayRef, BooleanBuilder, DictionaryArray, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{Int32Type, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use catalog::{
    CatalogState, ColumnDef, ColumnKind, FieldType, SchemaChange, TableChange, TableSchema,
};
use line_protocol::{Field, FieldValue, Precision, Tag};

use table_batch::arrow_field;

pub use services::{Limits, MAX_REPORTED_ERRORS, RejectedLine};

/// A parsed line with its position and timestamp in nanoseconds. Its tags
/// and fields are ranges of the request's shared vectors.
#[derive(Debug)]
pub struct GoodLine<'a> {
    /// The 1-based line number.
    pub line_number: usize,
    /// The raw line.
    pub raw: &'a [u8],
    /// The measurement.
    pub measurement: std::borrow::Cow<'a, str>,
    tags: std::ops::Range<usize>,
    fields: std::ops::Range<usize>,
    /// The timestamp in nanoseconds, or `None` for "now".
    pub time_ns: Option<i64>,
}

/// The lines of a request, split into good and rejected.
#[derive(Debug, Default)]
pub struct ParsedWrite<'a> {
    /// Lines that parsed.
    pub good: Vec<GoodLine<'a>>,
    /// Lines that did not.
    pub rejected: Vec<RejectedLine>,
    tags: Vec<Tag<'a>>,
    fields: Vec<Field<'a>>,
}

/// One good line's measurement, tags and fields.
#[derive(Debug, Clone, Copy)]
struct LineView<'r, 'a> {
    measurement: &'r str,
    tags: &'r [Tag<'a>],
    fields: &'r [Field<'a>],
}

impl<'a> ParsedWrite<'a> {
    fn view<'r>(&'r self, g: &'r GoodLine<'a>) -> LineView<'r, 'a> {
        LineView {
            measurement: &g.measurement,
            tags: &self.tags[g.tags.clone()],
            fields: &self.fields[g.fields.clone()],
        }
    }
}

impl ParsedWrite<'_> {
    fn reject(&mut self, line_number: usize, raw: &[u8], error_message: String) {
        self.rejected
            .push(RejectedLine::new(line_number, raw, error_message, false));
    }
}

/// Parses every line and converts timestamps to nanoseconds.
pub fn parse(body: &[u8], precision: Precision) -> ParsedWrite<'_> {
    let mut out = ParsedWrite::default();
    // A guess at the line count, to avoid regrowing a large vector.
    out.good.reserve(count_newlines(body) + 1);
    out.tags.reserve(out.good.capacity() * 10);
    out.fields.reserve(out.good.capacity() * 10);
    for (line_number, raw) in line_protocol::split_lines(body) {
        let (t0, f0) = (out.tags.len(), out.fields.len());
        match line_protocol::parse_line_into(raw, &mut out.tags, &mut out.fields) {
            Ok((measurement, timestamp)) => {
                let time_ns = match timestamp.map(|t| precision.to_nanos(t)).transpose() {
                    Ok(t) => t,
                    Err(e) => {
                        out.tags.truncate(t0);
                        out.fields.truncate(f0);
                        out.reject(line_number, raw, e.to_string());
                        continue;
                    }
                };
                out.good.push(GoodLine {
                    line_number,
                    raw,
                    measurement,
                    tags: t0..out.tags.len(),
                    fields: f0..out.fields.len(),
                    time_ns,
                });
            }
            Err(e) => out.reject(line_number, raw, e.to_string()),
        }
    }
    out
}

fn field_type(v: &FieldValue<'_>) -> FieldType {
    match v {
        FieldValue::F64(_) => FieldType::Float,
        FieldValue::I64(_) => FieldType::Integer,
        FieldValue::U64(_) => FieldType::UInteger,
        FieldValue::String(_) => FieldType::String,
        FieldValue::Bool(_) => FieldType::Boolean,
    }
}

fn conflict(table: &str, column: &str, existing: ColumnKind, wanted: ColumnKind) -> String {
    match (existing, wanted) {
        (ColumnKind::Field(_), ColumnKind::Tag) => format!(
            "tag '{column}' conflicts with the existing field '{column}' of table '{table}'; a column is either a tag or a field"
        ),
        (ColumnKind::Tag, ColumnKind::Field(_)) => format!(
            "field '{column}' conflicts with the existing tag '{column}' of table '{table}'; a column is either a tag or a field"
        ),
        _ => format!(
            "invalid column type for column '{column}' of table '{table}': expected {}, got {}",
            existing.describe(),
            wanted.describe()
        ),
    }
}

/// Finds the columns the request needs that the catalog lacks, and rejects
/// lines that conflict with the catalog or with an earlier line of the same
/// request.
pub fn schema_check(
    state: &CatalogState,
    db: &str,
    parsed: &mut ParsedWrite<'_>,
    limits: &Limits,
) -> SchemaChange {
    let db_schema = state.db(db);
    let mut change = SchemaChange {
        db: db.to_string(),
        tables: Vec::new(),
    };
    if db_schema.is_none() && state.databases().count() >= limits.max_databases {
        let msg = format!(
            "database '{db}' can't be created: the server has reached its limit of {} databases; raise it with --max-databases or delete a database",
            limits.max_databases
        );
        let lines = std::mem::take(&mut parsed.good);
        parsed.rejected.extend(
            lines
                .into_iter()
                .map(|g| RejectedLine::new(g.line_number, g.raw, msg.clone(), true)),
        );
        return change;
    }
    let live_tables = db_schema.map_or(0, |d| d.tables().count());
    // table name -> index in change.tables, and the new columns' kinds.
    let mut new_tables: HashMap<String, (usize, HashMap<String, ColumnKind>)> = HashMap::new();
    let mut rejected_idx: Vec<(usize, String, bool)> = Vec::new();
    let mut prev_ok: Option<usize> = None;
    'lines: for (i, g) in parsed.good.iter().enumerate() {
        // Most lines have the shape of the line before: nothing new to check.
        let v = parsed.view(g);
        if prev_ok.is_some_and(|p| same_shape(parsed.view(&parsed.good[p]), v)) {
            continue;
        }
        let table_name: &str = v.measurement;
        let existing = db_schema.and_then(|d| d.table(table_name));
        let cols = v
            .tags
            .iter()
            .map(|(k, _)| (k.as_ref(), ColumnKind::Tag))
            .chain(
                v.fields
                    .iter()
                    .map(|(k, v)| (k.as_ref(), ColumnKind::Field(field_type(v)))),
            );
        let mut missing: Vec<(&str, ColumnKind)> = Vec::new();
        for (name, kind) in cols {
            if let Some(c) = existing.and_then(|t| t.column(name)) {
                if c.kind != kind {
                    rejected_idx.push((i, conflict(table_name, name, c.kind, kind), false));
                    continue 'lines;
                }
                continue;
            }
            if let Some((_, seen)) = new_tables.get(table_name)
                && let Some(k) = seen.get(name)
            {
                if *k != kind {
                    rejected_idx.push((i, conflict(table_name, name, *k, kind), false));
                    continue 'lines;
                }
                continue;
            }
            missing.push((name, kind));
        }
        if !missing.is_empty() {
            // Limits: a new table, or more columns than a table may have.
            let is_new_table = existing.is_none() && !new_tables.contains_key(table_name);
            if is_new_table && live_tables + new_tables.len() >= limits.max_tables_per_database {
                rejected_idx.push((
                    i,
                    format!(
                        "table '{table_name}' can't be created: database '{db}' has reached its limit of {} tables; raise it with --max-tables-per-database",
                        limits.max_tables_per_database
                    ),
                    true,
                ));
                continue 'lines;
            }
            let have = existing.map_or(1, |t| t.columns().len())
                + new_tables.get(table_name).map_or(0, |(_, seen)| seen.len());
            if have + missing.len() > limits.max_columns_per_table {
                rejected_idx.push((
                    i,
                    format!(
                        "table '{table_name}' can't have more than {} columns (it would have {}); raise the limit with --max-columns-per-table",
                        limits.max_columns_per_table,
                        have + missing.len()
                    ),
                    true,
                ));
                continue 'lines;
            }
            let (idx, seen) = new_tables.entry(table_name.to_string()).or_insert_with(|| {
                change.tables.push(TableChange {
                    name: table_name.to_string(),
                    columns: Vec::new(),
                });
                (change.tables.len() - 1, HashMap::new())
            });
            for (name, kind) in missing {
                seen.insert(name.to_string(), kind);
                change.tables[*idx].columns.push((name.to_string(), kind));
            }
        }
        prev_ok = Some(i);
    }
    if !rejected_idx.is_empty() {
        // One pass, in order: rejected_idx is ascending.
        let mut next = 0;
        let mut i = 0;
        let mut rejected = Vec::with_capacity(rejected_idx.len());
        parsed.good.retain(|g| {
            let reject = rejected_idx.get(next).is_some_and(|(r, _, _)| *r == i);
            if reject {
                rejected.push(RejectedLine::new(
                    g.line_number,
                    g.raw,
                    std::mem::take(&mut rejected_idx[next].1),
                    rejected_idx[next].2,
                ));
                next += 1;
            }
            i += 1;
            !reject
        });
        parsed.rejected.extend(rejected);
    }
    change
}

/// Whether two lines have the same measurement, keys (in order) and field types.
fn same_shape(a: LineView<'_, '_>, b: LineView<'_, '_>) -> bool {
    a.measurement == b.measurement
        && a.tags.len() == b.tags.len()
        && a.tags.iter().zip(b.tags).all(|(x, y)| x.0 == y.0)
        && same_fields(a.fields, b.fields)
}

/// Validated rows, ready for the WAL and the buffer.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    /// The database id.
    pub db_id: u32,
    /// One record batch per table: the columns the rows use, sorted by name.
    pub tables: Vec<(u32, RecordBatch)>,
    /// Rows in all tables.
    pub rows: usize,
    /// Set on a WAL delete marker (no rows): the tombstones it applies.
    pub deletes: Option<DeleteMarker>,
}

/// What a WAL delete marker applies to the rows before it: every
/// tombstone with an id up to `through` (those the catalog still has,
/// resolved when the marker is applied).
#[derive(Debug, Clone, Default)]
pub struct DeleteMarker {
    /// The highest tombstone id the marker covers.
    pub through: u64,
    /// The tombstones, with their database and table ids.
    pub tombstones: Vec<(u32, u32, catalog::Tombstone)>,
}

impl WriteBatch {
    /// A delete marker: no rows, the tombstones up to `through`.
    pub fn delete_marker(marker: DeleteMarker) -> Self {
        Self {
            db_id: u32::MAX,
            tables: Vec::new(),
            rows: 0,
            deletes: Some(marker),
        }
    }
}

/// The result of [`build`].
#[derive(Debug)]
pub struct Built {
    /// The rows.
    pub batch: WriteBatch,
    /// The accepted lines, `\n`-separated, for the WAL; `None` when every
    /// line of the body was accepted (the body itself is the WAL entry).
    pub accepted: Option<Vec<u8>>,
}

/// Converts the good lines into Arrow, checking each against `state`.
/// Lines that conflict (another writer won the race for a column's type) are
/// moved to `parsed.rejected`.
pub fn build<'a>(
    state: &CatalogState,
    db: &str,
    parsed: &mut ParsedWrite<'a>,
    default_time_ns: i64,
) -> Result<Built, BuildError> {
    let db_schema = state
        .db(db)
        .ok_or_else(|| BuildError::MissingDatabase(db.to_string()))?;
    let mut tables: Vec<TableBuilder<'a>> = Vec::new();
    let mut keys: Vec<(u32, i32)> = Vec::with_capacity(16);
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut accepted = Vec::with_capacity(parsed.good.iter().map(|g| g.raw.len() + 1).sum());
    let mut rejected = Vec::new();
    let mut cols: Vec<(u32, ColumnKind)> = Vec::with_capacity(32);
    // (index in parsed.good, table builder index) of the last line built.
    let mut prev: Option<(usize, usize)> = None;
    for (i, g) in parsed.good.iter().enumerate() {
        let v = parsed.view(g);
        if let Some((p, t)) = prev
            && same_shape(parsed.view(&parsed.good[p]), v)
        {
            // Same columns as the line before: reuse their resolution.
            let time = g.time_ns.unwrap_or(default_time_ns);
            if let Some(msg) = tables[t].expired(time) {
                rejected.push((g.line_number, g.raw, msg));
                continue;
            }
            tables[t].push(&cols, v, time, &mut keys);
            accepted.push(b'\n');
            accepted.extend_from_slice(g.raw);
            continue;
        }
        let name: &str = v.measurement;
        let idx = match by_name.get(name) {
            Some(i) => *i,
            None => {
                let Some(t) = db_schema.table(name) else {
                    rejected.push((
                        g.line_number,
                        g.raw,
                        format!("table '{name}' is not in the catalog"),
                    ));
                    continue;
                };
                tables.push(TableBuilder::new(
                    Arc::clone(t),
                    retention_cutoff(db_schema, t, default_time_ns),
                ));
                by_name.insert(&g.measurement, tables.len() - 1);
                tables.len() - 1
            }
        };
        let tb = &mut tables[idx];
        cols.clear();
        let mut bad = None;
        for (k, _) in v.tags {
            match tb.table.column(k) {
                Some(c) if c.kind == ColumnKind::Tag => cols.push((c.id, c.kind)),
                Some(c) => {
                    bad = Some(conflict(name, k, c.kind, ColumnKind::Tag));
                    break;
                }
                None => {
                    bad = Some(format!("column '{k}' is not in the catalog"));
                    break;
                }
            }
        }
        if bad.is_none() {
            for (k, value) in v.fields {
                let kind = ColumnKind::Field(field_type(value));
                match tb.table.column(k) {
                    Some(c) if c.kind == kind => cols.push((c.id, c.kind)),
                    Some(c) => {
                        bad = Some(conflict(name, k, c.kind, kind));
                        break;
                    }
                    None => {
                        bad = Some(format!("column '{k}' is not in the catalog"));
                        break;
                    }
                }
            }
        }
        if let Some(msg) = bad {
            rejected.push((g.line_number, g.raw, msg));
            // `cols` now holds this line's partial resolution, not `prev`'s.
            prev = None;
            continue;
        }
        let time = g.time_ns.unwrap_or(default_time_ns);
        if let Some(msg) = tb.expired(time) {
            rejected.push((g.line_number, g.raw, msg));
            continue;
        }
        tb.push(&cols, v, time, &mut keys);
        if !accepted.is_empty() {
            accepted.push(b'\n');
        }
        accepted.extend_from_slice(g.raw);
        prev = Some((i, idx));
    }
    for (n, raw, msg) in rejected {
        parsed.reject(n, raw, msg);
    }
    Ok(Built {
        batch: finish_tables(db_schema.id, tables)?,
        accepted: Some(accepted),
    })
}

/// Turns a request's table builders into its `WriteBatch`. A table whose
/// every line was rejected gets no batch (the one-pass path may have
/// started one before it found the conflict), as on the two-phase path.
fn finish_tables(db_id: u32, tables: Vec<TableBuilder<'_>>) -> Result<WriteBatch, BuildError> {
    let mut rows = 0;
    let mut out = Vec::with_capacity(tables.len());
    for tb in tables.into_iter().filter(|tb| tb.rows > 0) {
        rows += tb.rows;
        let id = tb.table.id;
        out.push((id, tb.finish()?));
    }
    Ok(WriteBatch {
        db_id,
        tables: out,
        rows,
        deletes: None,
    })
}

/// The oldest time a row of `table` may have at `now_ns`; `i64::MIN` if
/// rows are kept forever.
fn retention_cutoff(db: &catalog::DatabaseSchema, table: &TableSchema, now_ns: i64) -> i64 {
    db.retention_cutoff(table, now_ns).unwrap_or(i64::MIN)
}

fn rfc3339_ns(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Why rows could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The database vanished from the catalog.
    #[error("database '{0}' is not in the catalog")]
    MissingDatabase(String),
    /// Arrow refused the arrays (a bug).
    #[error("building record batch: {0}")]
    Arrow(#[from] ArrowError),
}

/// Column builders for one table of one request.
struct TableBuilder<'a> {
    table: Arc<TableSchema>,
    /// Rows older than this are past retention: rejected (i64::MIN: none).
    min_time: i64,
    /// Indexed by column id.
    cols: Vec<Option<ColBuilder<'a>>>,
    time: TimestampNanosecondBuilder,
    rows: usize,
}

/// A fast hash map: tag values and series keys come from the request.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A tag column: a dictionary of the request's values and one key per row.
struct TagBuilder<'a> {
    keys: Int32Builder,
    values: StringBuilder,
    index: FastMap<Cow<'a, str>, i32>,
}

impl<'a> TagBuilder<'a> {
    fn new() -> Self {
        Self {
            keys: Int32Builder::new(),
            values: StringBuilder::new(),
            index: FastMap::default(),
        }
    }

    /// The key of `value`, added to the dictionary if new. A request holds
    /// fewer than 2^31 distinct values: the request size limit sees to it.
    #[allow(
        clippy::ptr_arg,
        reason = "a new value is kept as the same Cow, borrowed from the body"
    )]
    fn key(&mut self, value: &Cow<'a, str>) -> i32 {
        if let Some(k) = self.index.get(value.as_ref()) {
            return *k;
        }
        let k = i32::try_from(self.index.len()).unwrap_or(i32::MAX);
        self.values.append_value(value);
        self.index.insert(value.clone(), k);
        k
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let array = DictionaryArray::<Int32Type>::try_new(
            self.keys.finish(),
            Arc::new(self.values.finish()),
        )?;
        Ok(Arc::new(array))
    }
}

enum ColBuilder<'a> {
    Tag(TagBuilder<'a>),
    F64(Float64Builder),
    I64(Int64Builder),
    U64(UInt64Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
}

impl ColBuilder<'_> {
    fn new(kind: ColumnKind) -> Option<Self> {
        Some(match kind {
            ColumnKind::Tag => Self::Tag(TagBuilder::new()),
            ColumnKind::Field(FieldType::Float) => Self::F64(Float64Builder::new()),
            ColumnKind::Field(FieldType::Integer) => Self::I64(Int64Builder::new()),
            ColumnKind::Field(FieldType::UInteger) => Self::U64(UInt64Builder::new()),
            ColumnKind::Field(FieldType::String) => Self::Str(StringBuilder::new()),
            ColumnKind::Field(FieldType::Boolean) => Self::Bool(BooleanBuilder::new()),
            ColumnKind::Time => return None,
        })
    }

    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Self::Tag(b) => b.keys.len(),
            Self::F64(b) => b.len(),
            Self::I64(b) => b.len(),
            Self::U64(b) => b.len(),
            Self::Str(b) => b.len(),
            Self::Bool(b) => b.len(),
        }
    }

    fn pad(&mut self, to: usize) {
        let n = to.saturating_sub(self.len());
        if n == 0 {
            return;
        }
        match self {
            Self::Tag(b) => b.keys.append_nulls(n),
            Self::F64(b) => b.append_nulls(n),
            Self::I64(b) => b.append_nulls(n),
            Self::U64(b) => b.append_nulls(n),
            Self::Str(b) => b.append_nulls(n),
            Self::Bool(b) => b.append_nulls(n),
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Self::Tag(b) => return b.finish(),
            Self::F64(mut b) => Arc::new(b.finish()),
            Self::I64(mut b) => Arc::new(b.finish()),
            Self::U64(mut b) => Arc::new(b.finish()),
            Self::Str(mut b) => Arc::new(b.finish()),
            Self::Bool(mut b) => Arc::new(b.finish()),
        })
    }
}

impl<'a> TableBuilder<'a> {
    fn new(table: Arc<TableSchema>, min_time: i64) -> Self {
        let n = table.columns().len();
        Self {
            table,
            min_time,
            cols: (0..n).map(|_| None).collect(),
            time: TimestampNanosecondBuilder::new(),
            rows: 0,
        }
    }

    /// The rejection message if a row at `time_ns` is past retention.
    fn expired(&self, time_ns: i64) -> Option<String> {
        (time_ns < self.min_time).then(|| {
            format!(
                "point time {} is older than the retention period of table '{}' allows (cut-off {}); it would be deleted at once",
                rfc3339_ns(time_ns),
                self.table.name,
                rfc3339_ns(self.min_time)
            )
        })
    }

    /// The builder of column `id`, created on first use and padded to the
    /// current row. `None` for the time column, which has its own.
    fn col(&mut self, id: u32, kind: ColumnKind) -> Option<&mut ColBuilder<'a>> {
        let id = id as usize;
        if id >= self.cols.len() {
            self.cols.resize_with(id + 1, || None);
        }
        let slot = &mut self.cols[id];
        if slot.is_none() {
            *slot = ColBuilder::new(kind);
        }
        let b = slot.as_mut()?;
        b.pad(self.rows);
        Some(b)
    }

    /// The dictionary key of `value` in tag column `id`.
    #[allow(clippy::ptr_arg, reason = "passed on to TagBuilder::key")]
    fn tag_key(&mut self, id: u32, value: &Cow<'a, str>) -> i32 {
        match self.col(id, ColumnKind::Tag) {
            Some(ColBuilder::Tag(b)) => b.key(value),
            // Column kinds were checked against the same definitions.
            _ => 0,
        }
    }

    /// Appends one row. `cols` are the line's tag columns then field
    /// columns, in the line's order, already checked; `keys` is scratch
    /// space for the tags' dictionary keys.
    fn push(
        &mut self,
        cols: &[(u32, ColumnKind)],
        line: LineView<'_, 'a>,
        time_ns: i64,
        keys: &mut Vec<(u32, i32)>,
    ) {
        keys.clear();
        let (tag_cols, field_cols) = cols.split_at(line.tags.len().min(cols.len()));
        for ((id, _), (_, v)) in tag_cols.iter().zip(line.tags) {
            let k = self.tag_key(*id, v);
            keys.push((*id, k));
        }
        self.push_row(keys, field_cols, line.fields, time_ns);
    }

    /// Appends one row whose tags are already dictionary keys
    /// (`(column id, key)`); `field_cols` are the fields' columns, checked.
    fn push_row(
        &mut self,
        tags: &[(u32, i32)],
        field_cols: &[(u32, ColumnKind)],
        fields: &[Field<'a>],
        time_ns: i64,
    ) {
        let row = self.rows;
        for (id, key) in tags {
            if let Some(ColBuilder::Tag(b)) = self.col(*id, ColumnKind::Tag) {
                b.keys.append_value(*key);
            }
        }
        for ((id, kind), (_, v)) in field_cols.iter().zip(fields) {
            let Some(b) = self.col(*id, *kind) else {
                continue;
            };
            match (b, v) {
                (ColBuilder::F64(b), FieldValue::F64(x)) => b.append_value(*x),
                (ColBuilder::I64(b), FieldValue::I64(x)) => b.append_value(*x),
                (ColBuilder::U64(b), FieldValue::U64(x)) => b.append_value(*x),
                (ColBuilder::Str(b), FieldValue::String(x)) => b.append_value(x),
                (ColBuilder::Bool(b), FieldValue::Bool(x)) => b.append_value(*x),
                // Kinds were checked against the same column definitions.
                (b, _) => b.pad(row + 1),
            }
        }
        self.time.append_value(time_ns);
        self.rows += 1;
    }

    fn finish(self) -> Result<RecordBatch, ArrowError> {
        let rows = self.rows;
        let mut columns: Vec<(&ColumnDef, ArrayRef)> = Vec::new();
        let mut time = self.time;
        for (c, b) in self.table.columns().iter().zip(self.cols) {
            if let Some(mut b) = b {
                b.pad(rows);
                columns.push((c, b.finish()?));
            }
        }
        let time_col = self
            .table
            .columns()
            .iter()
            .find(|c| c.kind == ColumnKind::Time);
        let time_array: ArrayRef = Arc::new(time.finish());
        if let Some(tc) = time_col {
            columns.push((tc, time_array));
        }
        columns.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let schema = Schema::new(
            columns
                .iter()
                .map(|(c, _)| arrow_field(c))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
    }
}

fn count_newlines(body: &[u8]) -> usize {
    body.iter().filter(|b| **b == b'\n').count()
}

/// The accepted lines of a body, copied only once a line is rejected: until
/// then the body itself is the list.
struct Accepted<'b> {
    body: &'b [u8],
    copy: Option<Vec<u8>>,
}

impl Accepted<'_> {
    fn kept(&mut self, raw: &[u8]) {
        if let Some(c) = &mut self.copy {
            if !c.is_empty() {
                c.push(b'\n');
            }
            c.extend_from_slice(raw);
        }
    }

    /// `raw` (a slice of the body) is rejected: from now on keep a copy of
    /// the accepted lines, starting with everything before `raw`.
    fn dropped(&mut self, raw: &[u8]) {
        if self.copy.is_none() {
            let start = (raw.as_ptr() as usize)
                .checked_sub(self.body.as_ptr() as usize)
                .filter(|s| *s <= self.body.len())
                .unwrap_or(0);
            let prefix = self.body[..start].trim_ascii_end();
            let mut c = Vec::with_capacity(self.body.len());
            c.extend_from_slice(prefix);
            self.copy = Some(c);
        }
    }
}

/// What the one-pass path has rejected so far, and the accepted lines.
struct Outcome<'b> {
    rejected: Vec<RejectedLine>,
    accepted: Accepted<'b>,
}

impl Outcome<'_> {
    fn reject(&mut self, line_number: usize, raw: &[u8], error_message: String) {
        self.accepted.dropped(raw);
        self.rejected
            .push(RejectedLine::new(line_number, raw, error_message, false));
    }
}

/// A series key seen earlier in a request: its table and its tags as
/// dictionary keys, a range of the request's shared list.
#[derive(Debug, Clone, Copy)]
struct SeriesEntry {
    table: usize,
    tags: (u32, u32),
}

/// Whether two lines' fields have the same keys and types in the same order.
fn same_fields(a: &[Field<'_>], b: &[Field<'_>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && field_type(&x.1) == field_type(&y.1))
}

/// Resolves fields to the table's columns. `Ok(None)`: a column is missing
/// from the catalog. `Err`: a type conflict (the message) or a key used twice
/// (no message: the full parser names it).
///
/// This is also what checks a cached series' line, whose tags were not
/// parsed again: a key used twice resolves to one column id twice, and a
/// field named like one of the line's tags resolves to a tag column.
fn resolve_fields(
    table: &TableSchema,
    fields: &[Field<'_>],
    out: &mut Vec<(u32, ColumnKind)>,
) -> Result<Option<()>, Option<String>> {
    out.clear();
    for (name, value) in fields {
        let kind = ColumnKind::Field(field_type(value));
        match table.column(name) {
            Some(c) if c.kind == kind => {
                if out.iter().any(|(id, _)| *id == c.id) {
                    return Err(None);
                }
                out.push((c.id, c.kind));
            }
            Some(c) => return Err(Some(conflict(&table.name, name, c.kind, kind))),
            None => return Ok(None),
        }
    }
    Ok(Some(()))
}

/// The common case in one pass: when the catalog already has every table
/// and column the lines use, each line is parsed straight into the Arrow
/// builders. Returns `None` as soon as a line needs a catalog change; the
/// caller then takes the two-phase path (`parse`, `schema_check`, `ensure`,
/// `build`), which gives the same result.
///
/// Two caches make the usual line cheap. A series key (measurement and tag
/// set, as written) seen before in the request maps to its table and tag
/// dictionary keys, so its tags are neither parsed nor hashed one by one
/// again. And fields with the same keys and types as the line before reuse
/// that line's column resolution and checks.
pub fn parse_and_build_known(
    state: &CatalogState,
    db: &str,
    body: &[u8],
    precision: Precision,
    default_time_ns: i64,
) -> Result<Option<(Built, Vec<RejectedLine>)>, BuildError> {
    let Some(db_schema) = state.db(db) else {
        return Ok(None);
    };
    let mut tables: Vec<TableBuilder<'_>> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut series: FastMap<&[u8], SeriesEntry> = FastMap::default();
    let mut series_tags: Vec<(u32, i32)> = Vec::new();
    let mut out = Outcome {
        rejected: Vec::new(),
        accepted: Accepted { body, copy: None },
    };
    let mut tag_cols: Vec<u32> = Vec::with_capacity(16);
    let mut keys: Vec<(u32, i32)> = Vec::with_capacity(16);
    let mut field_cols: Vec<(u32, ColumnKind)> = Vec::with_capacity(16);
    let mut cur_tags: Vec<Tag<'_>> = Vec::with_capacity(16);
    let (mut cur_fields, mut prev_fields): (Vec<Field<'_>>, Vec<Field<'_>>) =
        (Vec::with_capacity(16), Vec::with_capacity(16));
    // The table of the previous built line, whose fields `field_cols` resolves.
    let mut prev_table: Option<usize> = None;
    // The full parser's verdict on a line a shortcut found wrong, so the
    // message is the same whichever way the line went.
    let full_parse_error = |raw: &[u8]| line_protocol::parse_line(raw).err().map(|e| e.to_string());
    for (line_number, raw) in line_protocol::split_lines(body) {
        cur_fields.clear();
        let split = line_protocol::split_series(raw);
        let cached = split.and_then(|(key, rest)| series.get(key).map(|e| (*e, rest)));
        // A timestamp out of range for the precision is a parse error, so it
        // is reported before any check against the catalog, as `parse` does.
        let to_nanos = |ts: Option<i64>| {
            ts.map(|t| precision.to_nanos(t))
                .transpose()
                .map(|t| t.unwrap_or(default_time_ns))
        };
        let (table, entry, time_ns) = if let Some((entry, rest)) = cached {
            let ts = match line_protocol::parse_fields_into(rest, &mut cur_fields, &prev_fields) {
                Ok(ts) => ts,
                Err(e) => {
                    let msg = full_parse_error(raw).unwrap_or_else(|| e.to_string());
                    out.reject(line_number, raw, msg);
                    continue;
                }
            };
            match to_nanos(ts) {
                Ok(t) => (entry.table, Some(entry), t),
                Err(e) => {
                    out.reject(line_number, raw, e.to_string());
                    continue;
                }
            }
        } else {
            cur_tags.clear();
            let (measurement, ts) =
                match line_protocol::parse_line_into(raw, &mut cur_tags, &mut cur_fields) {
                    Ok(x) => x,
                    Err(e) => {
                        out.reject(line_number, raw, e.to_string());
                        continue;
                    }
                };
            let time_ns = match to_nanos(ts) {
                Ok(t) => t,
                Err(e) => {
                    out.reject(line_number, raw, e.to_string());
                    continue;
                }
            };
            let idx = match by_name.get(measurement.as_ref()) {
                Some(i) => *i,
                None => {
                    let Some(t) = db_schema.table(&measurement) else {
                        return Ok(None);
                    };
                    tables.push(TableBuilder::new(
                        Arc::clone(t),
                        retention_cutoff(db_schema, t, default_time_ns),
                    ));
                    by_name.insert(measurement.to_string(), tables.len() - 1);
                    tables.len() - 1
                }
            };
            tag_cols.clear();
            let table = &tables[idx].table;
            let mut bad = None;
            for (k, _) in &cur_tags {
                match table.column(k) {
                    Some(c) if c.kind == ColumnKind::Tag => tag_cols.push(c.id),
                    Some(c) => {
                        bad = Some(conflict(&table.name, k, c.kind, ColumnKind::Tag));
                        break;
                    }
                    None => return Ok(None),
                }
            }
            if let Some(msg) = bad {
                out.reject(line_number, raw, msg);
                continue;
            }
            (idx, None, time_ns)
        };
        if prev_table != Some(table) || !same_fields(&prev_fields, &cur_fields) {
            match resolve_fields(&tables[table].table, &cur_fields, &mut field_cols) {
                Ok(Some(())) => {}
                Ok(None) => return Ok(None),
                Err(msg) => {
                    let msg = full_parse_error(raw)
                        .or(msg)
                        .unwrap_or_else(|| "duplicate field key".to_string());
                    out.reject(line_number, raw, msg);
                    // `field_cols` no longer matches the previous line.
                    prev_table = None;
                    continue;
                }
            }
        }
        let tb = &mut tables[table];
        if let Some(msg) = tb.expired(time_ns) {
            out.reject(line_number, raw, msg);
            continue;
        }
        match entry {
            Some(e) => tb.push_row(
                &series_tags[e.tags.0 as usize..e.tags.1 as usize],
                &field_cols,
                &cur_fields,
                time_ns,
            ),
            None => {
                keys.clear();
                for (id, (_, v)) in tag_cols.iter().zip(&cur_tags) {
                    let k = tb.tag_key(*id, v);
                    keys.push((*id, k));
                }
                tb.push_row(&keys, &field_cols, &cur_fields, time_ns);
                if let Some((key, _)) = split {
                    let start = series_tags.len() as u32;
                    series_tags.extend_from_slice(&keys);
                    series.insert(
                        key,
                        SeriesEntry {
                            table,
                            tags: (start, series_tags.len() as u32),
                        },
                    );
                }
            }
        }
        out.accepted.kept(raw);
        std::mem::swap(&mut cur_fields, &mut prev_fields);
        prev_table = Some(table);
    }
    Ok(Some((
        Built {
            batch: finish_tables(db_schema.id, tables)?,
            accepted: out.accepted.copy,
        },
        out.rejected,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::Catalog;
    use object_store::memory::InMemory;

    /// A catalog with table `mem` (tag `host`, integer field `free`).
    async fn state() -> Arc<CatalogState> {
        let cat = Catalog::load(Arc::new(InMemory::new()), Default::default())
            .await
            .expect("in memory");
        let mut parsed = parse(b"mem,host=a free=1i 1", Precision::Nanosecond);
        let change = schema_check(&cat.state(), "db", &mut parsed, &Limits::UNLIMITED);
        cat.ensure(&change).await.expect("in memory")
    }

    /// Found by the `write_validator` fuzz target: when every line of a
    /// table was rejected, the one-pass path still sent the table an
    /// empty batch, where the two-phase path sends none.
    #[tokio::test]
    async fn a_table_whose_every_line_is_rejected_gets_no_batch() {
        let state = state().await;
        let body = b"mem,host=b free=\"oops\" 2\nmem,host=c free=2i 3\nmem,host=d free=true 4";
        let (built, rejected) = parse_and_build_known(&state, "db", body, Precision::Nanosecond, 0)
            .expect("db exists")
            .expect("known columns");
        assert_eq!((built.batch.rows, rejected.len()), (1, 2));
        assert_eq!(built.batch.tables.len(), 1);
        let (built, rejected) =
            parse_and_build_known(&state, "db", &body[..24], Precision::Nanosecond, 0)
                .expect("db exists")
                .expect("known columns");
        assert_eq!((built.batch.rows, rejected.len()), (0, 1));
        assert!(built.batch.tables.is_empty(), "{:?}", built.batch.tables);
    }

    /// Found by the `write_validator` fuzz target: a line with a tag that
    /// is a field of the table and a timestamp out of range for the
    /// precision got the tag conflict from the one-pass path and the
    /// timestamp from the two-phase path. A parse error, the timestamp's
    /// range included, comes first on both.
    #[tokio::test]
    async fn a_bad_timestamp_is_reported_before_a_schema_conflict() {
        let state = state().await;
        let body = b"mem,host=a free=1i 5\nmem,free=x used=1i 9223372036854775807";
        let (_, one_pass) = parse_and_build_known(&state, "db", body, Precision::Second, 0)
            .expect("db exists")
            .expect("known columns");
        let mut parsed = parse(body, Precision::Second);
        schema_check(&state, "db", &mut parsed, &Limits::UNLIMITED);
        let messages = |r: &[RejectedLine]| {
            r.iter()
                .map(|l| (l.line_number, l.error_message.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&one_pass), messages(&parsed.rejected));
        assert_eq!(one_pass.len(), 1);
        assert!(
            one_pass[0].error_message.contains("out of range"),
            "{:?}",
            one_pass[0]
        );
    }
}
