//! Parquet files on the object store: where they live, how they are written,
//! and how they are read back.
//!
//! ```text
//!  {prefix}/data/{db_id}/{table_id}/{YYYY-MM-DD}/{file_uuid}.parquet
//!
//!  buffer chunk ─▶ sort by tags, then time ─▶ ZSTD Parquet (Arrow schema embedded:
//!                  tags Dictionary(Int32, Utf8), time Timestamp(ns), typed fields,
//!                  each with its `iox::column::type` metadata) ─▶ ParquetFile stats
//! ```
//!
//! The date in the path is the UTC day of the time chunk the rows came from,
//! so an operator can see and delete data by day.

pub mod file_index;
pub mod key_runs;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int32Type, TimestampNanosecondType};
use bytes::Bytes;
use catalog::{ColumnKind, ParquetFile, TableSchema};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// Tag statistics longer than this are not kept in the catalog (the file
/// then cannot be pruned on that tag, which is only slower, never wrong).
const MAX_TAG_STAT_LEN: usize = 256;

/// Rows per row group.
const ROW_GROUP_SIZE: usize = 256 * 1024;

/// Rows per data page (Parquet's default is 20,000). Rows are sorted by
/// series, so a page holds a few series and its min/max statistics in the
/// page index are narrow: a query for one series decompresses a page or two
/// of each column instead of a third of the file.
const PAGE_ROWS: usize = 2048;

/// The footer key-value entry that lists the row runs of each value of the
/// file's first series-key column, when that column is a tag:
/// `{"column": name, "runs": [[value, first_row, end_row], ...]}`, rows
/// counted from the start of the file, runs in row order, null rows left
/// out. Rows are sorted by series key, so each value is one run, and a query
/// naming values of that tag reads exactly their rows instead of the pages
/// whose min/max statistics allow them (a page of 2,048 rows holds about two
/// hosts of the benchmark's `cpu` table, and hosts that sort apart each
/// bring a page).
///
/// A run whose `time` values step evenly (row `k` of the run at
/// `first_time + k * step`, `step > 0`; a one-row run with step 0), as a
/// single series sampled at a fixed interval does, lists them too:
/// `[value, first_row, end_row, first_time, step]`. A query's time range
/// then selects exactly its rows of the run, with no `time` to decode and
/// compare.
pub const KEY_RUNS: &str = "inflow.key_runs";

/// A file gets [`KEY_RUNS`] only with at most this many runs, and at most
/// one per [`MIN_ROWS_PER_RUN`] rows: beyond that the list would be large
/// next to the pages it narrows.
const MAX_KEY_RUNS: usize = 100_000;
const MIN_ROWS_PER_RUN: usize = 8;

/// Errors from writing or reading files.
#[derive(Debug, thiserror::Error)]
pub enum ParquetStoreError {
    /// The object store failed.
    #[error("object store error on {path}: {source}")]
    ObjectStore {
        /// The file.
        path: String,
        /// The error.
        source: object_store::Error,
    },
    /// Encoding or decoding failed.
    #[error("parquet error on {path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The error.
        source: parquet::errors::ParquetError,
    },
    /// Arrow failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// The path of a new file for rows of `chunk_time`.
pub fn new_file_path(prefix: &Path, db_id: u32, table_id: u32, chunk_time: i64) -> Path {
    let day = chrono::DateTime::from_timestamp_nanos(chunk_time)
        .format("%Y-%m-%d")
        .to_string();
    prefix
        .clone()
        .join("data")
        .join(db_id.to_string().as_str())
        .join(table_id.to_string().as_str())
        .join(day.as_str())
        .join(format!("{}.parquet", uuid::Uuid::new_v4()).as_str())
}

/// The directory of a database's files (for hard deletes).
pub fn database_dir(prefix: &Path, db_id: u32) -> Path {
    prefix.clone().join("data").join(db_id.to_string().as_str())
}

/// Encodings and codecs chosen per column for time series sorted by series
/// then time:
/// - `time` and integer fields are delta-encoded: consecutive values of a
///   series differ little, so the deltas pack into a few bits. What is left
///   is close to its entropy, so ZSTD saved 2% of their bytes and cost a fifth
///   of a selective query's time. They get LZ4 (raw), which still finds long
///   repeats and decodes at memory speed.
/// - Floats are byte-stream-split, so their exponent and high mantissa bytes
///   repeat, and ZSTD's entropy coding shrinks them: 2.5 B per value against
///   LZ4's 3.6 for one-decimal readings.
/// - Tags and strings keep Parquet's dictionary encoding, with ZSTD.
///
/// Every ZSTD column chunk a query opens creates a ZSTD context, and each
/// creation runs `cpuid`, which a virtual machine traps (6 µs each on the
/// benchmark machine): another reason to keep ZSTD where it pays.
fn writer_properties(batch: &RecordBatch) -> WriterProperties {
    let schema = batch.schema();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_SIZE))
        .set_data_page_row_count_limit(PAGE_ROWS);
    for (f, column) in schema.fields().iter().zip(batch.columns()) {
        // Time (regular deltas) and tags whose values repeat (dictionary
        // keys in long runs, rows being sorted by series) are already a
        // few bits per row; left uncompressed, a read of them builds no
        // ZSTD context, which cost more than decoding a selective query's
        // pages. A tag with a value per few rows keeps ZSTD for its
        // dictionary of mostly unique strings.
        let few_values = column
            .as_any_dictionary_opt()
            .is_some_and(|d| d.values().len().saturating_mul(16) <= batch.num_rows());
        let codec = match f.data_type() {
            DataType::Timestamp(..) => Some(Compression::UNCOMPRESSED),
            DataType::Int64 | DataType::UInt64 => Some(Compression::LZ4_RAW),
            _ if few_values => Some(Compression::UNCOMPRESSED),
            _ => None,
        };
        if let Some(codec) = codec {
            b = b.set_column_compression(ColumnPath::from(f.name().as_str()), codec);
        }
        let encoding = match f.data_type() {
            DataType::Timestamp(..) | DataType::Int64 | DataType::UInt64 => {
                Encoding::DELTA_BINARY_PACKED
            }
            DataType::Float64 => Encoding::BYTE_STREAM_SPLIT,
            _ => continue,
        };
        let path = ColumnPath::from(f.name().as_str());
        b = b
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding);
    }
    b.build()
}

/// A new file path in the directory of the file at `path` (a compaction
/// writes its output next to its inputs).
pub fn sibling_path(path: &str) -> Path {
    let dir = match path.rsplit_once('/') {
        Some((dir, _)) => Path::from(dir),
        None => Path::default(),
    };
    dir.join(format!("{}.parquet", uuid::Uuid::new_v4()).as_str())
}

/// Writes `batch` (deduplicated, in the table's Arrow schema, and sorted by
/// series key with [`table_batch::sort_by_key`], as buffer chunks already are)
/// as a new file. Returns the file's catalog entry with id 0; the caller
/// assigns the id when it registers the file.
pub async fn write_file(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    db_id: u32,
    table: &TableSchema,
    chunk_time: i64,
    batch: &RecordBatch,
) -> Result<ParquetFile, ParquetStoreError> {
    let path = new_file_path(prefix, db_id, table.id, chunk_time);
    write_file_at(store, path, db_id, table, chunk_time, batch).await
}

/// [`write_file`] to a given path.
pub async fn write_file_at(
    store: &Arc<dyn ObjectStore>,
    path: Path,
    db_id: u32,
    table: &TableSchema,
    chunk_time: i64,
    batch: &RecordBatch,
) -> Result<ParquetFile, ParquetStoreError> {
    let pq = |source| ParquetStoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(batch.get_array_memory_size() / 4);
    {
        let mut writer =
            ArrowWriter::try_new(&mut buf, batch.schema(), Some(writer_properties(batch)))
                .map_err(pq)?;
        if let Some(runs) = key_runs(batch, table) {
            writer.append_key_value_metadata(KeyValue::new(KEY_RUNS.to_string(), runs));
        }
        writer.write(batch).map_err(pq)?;
        writer.close().map_err(pq)?;
    }
    let size_bytes = buf.len() as u64;
    store
        .put(&path, Bytes::from(buf).into())
        .await
        .map_err(|source| ParquetStoreError::ObjectStore {
            path: path.to_string(),
            source,
        })?;
    let (min_time, max_time) = table_batch::time_range(batch).unwrap_or((chunk_time, chunk_time));
    Ok(ParquetFile {
        id: 0,
        db_id,
        table_id: table.id,
        path: path.to_string(),
        size_bytes,
        row_count: batch.num_rows() as u64,
        min_time,
        max_time,
        chunk_time,
        max_wal_seq: 0,
        level: 0,
        tag_ranges: tag_ranges(batch, table),
        value_index: Default::default(),
        deletes_applied: 0,
    })
}

/// The [`KEY_RUNS`] entry of `batch`, if its first series-key column is a
/// tag with few enough runs.
fn key_runs(batch: &RecordBatch, table: &TableSchema) -> Option<String> {
    let first = *table_batch::key_columns(&batch.schema(), table).first()?;
    let schema = batch.schema();
    let name = schema.field(first).name();
    if table.column(name)?.kind != ColumnKind::Tag {
        return None;
    }
    let dict = batch.column(first).as_dictionary_opt::<Int32Type>()?;
    let strings: &StringArray = dict.values().as_string_opt()?;
    let keys = dict.keys();
    let value = |row: usize| -> Option<&str> {
        let k = usize::try_from(keys.is_valid(row).then(|| keys.value(row))?).ok()?;
        (k < strings.len() && strings.is_valid(k)).then(|| strings.value(k))
    };
    let rows = batch.num_rows();
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        .filter(|t| t.null_count() == 0)
        .map(|t| t.values());
    // `(first_time, step)` if the run's times step evenly.
    let even = |run: &[i64]| -> Option<(i64, i64)> {
        let (first, rest) = run.split_first()?;
        let Some(second) = rest.first() else {
            return Some((*first, 0));
        };
        let step = second.checked_sub(*first).filter(|s| *s > 0)?;
        run.windows(2)
            .all(|w| w[1].checked_sub(w[0]) == Some(step))
            .then_some((*first, step))
    };
    let mut runs: Vec<serde_json::Value> = Vec::new();
    let mut start = 0;
    for row in 1..=rows {
        if row < rows && value(row) == value(start) {
            continue;
        }
        if let Some(v) = value(start) {
            runs.push(match times.and_then(|t| even(&t[start..row])) {
                Some((first, step)) => serde_json::json!([v, start, row, first, step]),
                None => serde_json::json!([v, start, row]),
            });
            if runs.len() > MAX_KEY_RUNS || runs.len().saturating_mul(MIN_ROWS_PER_RUN) > rows {
                return None;
            }
        }
        start = row;
    }
    Some(serde_json::json!({ "column": name, "runs": runs }).to_string())
}

/// The smallest and largest value of each tag column.
fn tag_ranges(batch: &RecordBatch, table: &TableSchema) -> BTreeMap<Arc<str>, (String, String)> {
    let mut out = BTreeMap::new();
    for (i, f) in batch.schema().fields().iter().enumerate() {
        let Some(col) = table.column(f.name()) else {
            continue;
        };
        if col.kind != ColumnKind::Tag {
            continue;
        }
        let array = batch.column(i);
        // Only values that rows use count: a dictionary may hold more.
        let (lo, hi) = match array.data_type() {
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = array.as_dictionary::<Int32Type>();
                let values: &StringArray = d.values().as_string();
                let mut used = vec![false; values.len()];
                for k in d.keys().iter().flatten() {
                    if let Some(u) = used.get_mut(k as usize) {
                        *u = true;
                    }
                }
                min_max(
                    used.iter()
                        .enumerate()
                        .filter(|(_, u)| **u)
                        .map(|(i, _)| values.value(i)),
                )
            }
            DataType::Utf8 => min_max(array.as_string::<i32>().iter().flatten()),
            _ => continue,
        };
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo.len() <= MAX_TAG_STAT_LEN
            && hi.len() <= MAX_TAG_STAT_LEN
        {
            out.insert(Arc::clone(&col.name), (lo.to_string(), hi.to_string()));
        }
    }
    out
}

fn min_max<'a>(values: impl Iterator<Item = &'a str>) -> (Option<&'a str>, Option<&'a str>) {
    values.fold((None, None), |(lo, hi), v| {
        (
            Some(lo.map_or(v, |l: &str| l.min(v))),
            Some(hi.map_or(v, |h: &str| h.max(v))),
        )
    })
}

/// Reads a whole file into record batches.
pub async fn read_file(
    store: &Arc<dyn ObjectStore>,
    path: &str,
) -> Result<Vec<RecordBatch>, ParquetStoreError> {
    read_file_where(store, path, None).await
}

/// Which rows of a file to read: those whose `time` lies in `min_time..=max_time`
/// and whose tags each equal one of their values. A file without one of the
/// tags has none of its rows read (a missing tag is null, which equals
/// nothing).
#[derive(Debug, Clone, Default)]
pub struct RowsWhere {
    /// The earliest time kept, in nanoseconds.
    pub min_time: i64,
    /// The latest time kept.
    pub max_time: i64,
    /// Tag columns and the values they may have.
    pub tags: Vec<(String, Vec<String>)>,
}

impl RowsWhere {
    /// Which rows of `batch` (holding `time` and the tag columns that the
    /// file has) are kept.
    pub fn mask(
        &self,
        batch: &RecordBatch,
    ) -> Result<arrow::array::BooleanArray, arrow::error::ArrowError> {
        let n = batch.num_rows();
        let mut keep = vec![true; n];
        if let Some(time) = batch
            .column_by_name("time")
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
        {
            for (k, t) in keep.iter_mut().zip(time.values()) {
                *k = (self.min_time..=self.max_time).contains(t);
            }
        }
        // A tag the batch lacks is null in every row, which equals nothing.
        if self
            .tags
            .iter()
            .any(|(tag, _)| batch.column_by_name(tag).is_none())
        {
            keep.fill(false);
        }
        if let Some(tags) = table_batch::tag_mask(batch, &self.tags) {
            for (k, t) in keep.iter_mut().zip(tags.iter()) {
                *k = *k && t;
            }
        }
        Ok(arrow::array::BooleanArray::from(keep))
    }
}

/// The rows of the file at `path` that `rows` keeps (all with `None`). The
/// filter's columns are decoded first and the others only for the rows it
/// keeps (late materialisation): a merge of overlapping files for one
/// series decodes little more than that series.
pub async fn read_file_where(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    rows: Option<&RowsWhere>,
) -> Result<Vec<RecordBatch>, ParquetStoreError> {
    let location = Path::from(path);
    let bytes = store
        .get(&location)
        .await
        .map_err(|source| ParquetStoreError::ObjectStore {
            path: path.to_string(),
            source,
        })?
        .bytes()
        .await
        .map_err(|source| ParquetStoreError::ObjectStore {
            path: path.to_string(),
            source,
        })?;
    let pq = |source| ParquetStoreError::Parquet {
        path: path.to_string(),
        source,
    };
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
    if let Some(rows) = rows {
        let columns = std::iter::once("time").chain(rows.tags.iter().map(|(t, _)| t.as_str()));
        let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns);
        let rows = rows.clone();
        let predicate =
            parquet::arrow::arrow_reader::ArrowPredicateFn::new(mask, move |b| rows.mask(&b));
        builder = builder.with_row_filter(parquet::arrow::arrow_reader::RowFilter::new(vec![
            Box::new(predicate),
        ]));
    }
    let reader = builder.build().map_err(pq)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(ParquetStoreError::from)
}

#[cfg(test)]
mod tests;
