//! The Parquet file index: which files hold a table's persisted rows, with
//! the statistics queries prune by, and how far each node's WAL is persisted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One persisted Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParquetFile {
    /// The file id, unique in the catalog and increasing in persistence
    /// order: among overlapping files, the higher id holds the later writes.
    pub id: u64,
    /// The database.
    pub db_id: u32,
    /// The table.
    pub table_id: u32,
    /// The object path, including the store prefix.
    pub path: String,
    /// Bytes on the object store.
    pub size_bytes: u64,
    /// Rows in the file (after dedup).
    pub row_count: u64,
    /// The smallest `time` in the file, in nanoseconds.
    pub min_time: i64,
    /// The largest `time` in the file, in nanoseconds.
    pub max_time: i64,
    /// The start of the time chunk the rows came from.
    pub chunk_time: i64,
    /// The last WAL sequence number of the persist that wrote the file (the
    /// node's WAL up to it is covered by files).
    #[serde(default)]
    pub max_wal_seq: u64,
    /// Compaction level: 0 for files the ingester persisted.
    #[serde(default)]
    pub level: u8,
    /// The smallest and largest value of each tag column, for pruning on tag
    /// equality. A tag with no entry (all null, or values too long to keep)
    /// cannot prune.
    #[serde(default)]
    pub tag_ranges: BTreeMap<Arc<str>, (String, String)>,
    /// The values of each indexed column (see the file index): a query
    /// with equality on such a column skips the file when none of its
    /// values can be in it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_index: BTreeMap<Arc<str>, ValueSet>,
    /// The highest tombstone id already applied to the file's rows (see
    /// [`crate::Tombstone`]): tombstones above it that overlap the file
    /// apply to it when it is read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletes_applied: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The values one column takes in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSet {
    /// Every value, sorted.
    Exact(Vec<String>),
    /// A split-block bloom filter of the values (Parquet's, XxHash64),
    /// its bitset in base64: no false negatives.
    Bloom(String),
}

impl ParquetFile {
    /// The tombstones of `table` that still apply to this file's rows, in
    /// id order.
    pub fn pending_tombstones<'t>(
        &self,
        table: &'t crate::TableSchema,
    ) -> impl Iterator<Item = &'t crate::Tombstone> + 't {
        let (applied, min, max) = (self.deletes_applied, self.min_time, self.max_time);
        table
            .tombstones
            .iter()
            .filter(move |t| t.id > applied && t.min_time <= max && t.max_time >= min)
    }

    /// Whether the file may hold rows with time in `[min, max]`.
    pub fn overlaps_time(&self, min: i64, max: i64) -> bool {
        self.min_time <= max && self.max_time >= min
    }

    /// Whether the file may hold a row whose tag `tag` is one of `values`.
    pub fn may_contain_tag<S: AsRef<str>>(&self, tag: &str, values: &[S]) -> bool {
        match self.tag_ranges.get(tag) {
            Some((lo, hi)) => values.iter().any(|v| {
                let v = v.as_ref();
                lo.as_str() <= v && v <= hi.as_str()
            }),
            // Without statistics a file may hold anything; a column the file
            // lacks entirely is tracked as absent by the writer, not here.
            None => true,
        }
    }
}

/// The files of one table, by id.
pub type TableFiles = BTreeMap<u64, Arc<ParquetFile>>;
