//! The row runs of each value of a Parquet file's first series-key tag
//! ([`parquet_store::KEY_RUNS`] in its footer), decoded once per file.
//!
//! With them a scan for `hostname IN (...)` selects exactly the hosts' rows
//! of a file, where the page index selects the pages whose min/max allow
//! them: eight hosts of the benchmark's quick set are 8.6 K rows, and the
//! pages that hold them 33 K, every one of which the scan decoded and
//! filtered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parquet::file::metadata::ParquetMetaData;
use parquet_store::key_runs::Run;

/// The runs of one file.
#[derive(Debug)]
pub(crate) struct KeyRuns {
    /// The tag.
    pub(crate) column: String,
    /// Each value's runs.
    runs: HashMap<String, Vec<Run>>,
}

impl KeyRuns {
    /// Decodes the footer's entry; `None` without one, or with one that
    /// does not fit the file (a run past its last row).
    fn decode(footer: &ParquetMetaData) -> Option<Self> {
        let text = footer
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == parquet_store::KEY_RUNS)?
            .value
            .as_deref()?;
        let rows = usize::try_from(footer.file_metadata().num_rows()).ok()?;
        let decoded = parquet_store::key_runs::decode(text, rows)?;
        Some(Self {
            column: decoded.column,
            runs: decoded.runs,
        })
    }

    /// The rows holding any of `values` with `min_time <= time <= max_time`
    /// where their runs' times step evenly (all rows of the others),
    /// ascending and disjoint.
    pub(crate) fn rows_of(
        &self,
        values: &[String],
        min_time: i64,
        max_time: i64,
    ) -> Vec<std::ops::Range<usize>> {
        let mut out: Vec<std::ops::Range<usize>> = values
            .iter()
            .filter_map(|v| self.runs.get(v))
            .flatten()
            .map(|r| r.rows_within(min_time, max_time))
            .filter(|r| !r.is_empty())
            .collect();
        out.sort_unstable_by_key(|r| r.start);
        out.dedup();
        out
    }

    /// Whether every run of `values` lists its times, so that
    /// [`KeyRuns::rows_of`] selects exactly the rows in a time range.
    pub(crate) fn times_listed(&self, values: &[String]) -> bool {
        values
            .iter()
            .filter_map(|v| self.runs.get(v))
            .flatten()
            .all(|r| r.even.is_some())
    }

    fn size(&self) -> usize {
        self.runs.len().max(1)
    }
}

/// Decoded runs by file path. Files never change once written and their
/// paths are never reused, so entries never go stale; the cache forgets
/// everything once it holds [`MAX_CACHED_RUNS`] values.
#[derive(Debug, Default)]
pub(crate) struct KeyRunsCache {
    inner: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    files: HashMap<String, Option<Arc<KeyRuns>>>,
    values: usize,
}

/// About 64 bytes each: a million values (a thousand files of a thousand
/// hosts) is tens of MB.
const MAX_CACHED_RUNS: usize = 1_000_000;

impl KeyRunsCache {
    /// The runs of the file at `path`, whose footer is `footer`.
    pub(crate) fn get(&self, path: &str, footer: &ParquetMetaData) -> Option<Arc<KeyRuns>> {
        if let Ok(c) = self.inner.lock()
            && let Some(found) = c.files.get(path)
        {
            return found.clone();
        }
        let decoded = KeyRuns::decode(footer).map(Arc::new);
        if let Ok(mut c) = self.inner.lock() {
            let size = decoded.as_ref().map_or(1, |r| r.size());
            if c.values + size > MAX_CACHED_RUNS {
                c.files.clear();
                c.values = 0;
            }
            c.values += size;
            c.files.insert(path.to_string(), decoded.clone());
        }
        decoded
    }
}
