//! Compaction: merges a table's small Parquet files into larger ones.
//!
//! Every persist writes one file per table and time chunk (10 minutes by
//! default), so a day of writes leaves about 150 small files per table, and a
//! query opens, prunes and decodes each one. Compaction merges them:
//!
//! ```text
//!  a table's files of one UTC day, in id (write) order:
//!    [s1 s2 s3 s4] B [s5 s6]      s = small (< max_rows / 2 rows), B = big,
//!     └── run ──┘     └ run ┘     or a file reaching into another day
//!  each run of ≥ 2 small files with ≤ max_rows rows in all:
//!    read ─▶ concat oldest first ─▶ dedup (later writes win, field by field)
//!         ─▶ sort by series key ─▶ one level-1 file next to the inputs
//!         ─▶ ReplaceParquetFiles: the new file takes the run's highest id
//! ```
//!
//! A run never spans a file it does not merge, so the merged file can take
//! the run's place in write order: every file older than the run's newest
//! input is either in the run or older than all of it. Files persisted while
//! a merge runs get higher ids, so their rows still win over the merged
//! ones. The inputs become garbage and are deleted after the grace period,
//! so queries planned with them finish.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::compute::concat_batches;
use catalog::{Catalog, CatalogOp, CatalogState, ParquetFile};
use object_store::ObjectStore;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Files of one table to merge into one, in id order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) db_id: u32,
    pub(crate) table_id: u32,
    pub(crate) files: Vec<Arc<ParquetFile>>,
}

fn day(t: i64) -> i64 {
    t.div_euclid(DAY_NS)
}

/// The runs to merge in `s`: per live table and UTC day, maximal sequences
/// (in id order) of small files that lie within the day, together at most
/// `max_rows` rows, broken by any other file overlapping the day.
pub(crate) fn plan(s: &CatalogState, max_rows: u64) -> Vec<Run> {
    let mut runs = Vec::new();
    if max_rows == 0 {
        return runs;
    }
    let small = |f: &ParquetFile| f.row_count < max_rows / 2 && day(f.min_time) == day(f.max_time);
    for db in s.databases() {
        for t in db.tables() {
            let Some(files) = s.table_files(db.id, t.id) else {
                continue;
            };
            // Days with at least two small files.
            let mut small_per_day: BTreeMap<i64, usize> = BTreeMap::new();
            for f in files.values().filter(|f| small(f)) {
                *small_per_day.entry(day(f.min_time)).or_default() += 1;
            }
            for d in small_per_day
                .into_iter()
                .filter(|(_, n)| *n >= 2)
                .map(|(d, _)| d)
            {
                let (lo, hi) = (
                    d.saturating_mul(DAY_NS),
                    (d + 1).saturating_mul(DAY_NS).saturating_sub(1),
                );
                let mut run: Vec<Arc<ParquetFile>> = Vec::new();
                let mut rows = 0u64;
                let mut finish = |run: &mut Vec<Arc<ParquetFile>>| {
                    if run.len() >= 2 {
                        runs.push(Run {
                            db_id: db.id,
                            table_id: t.id,
                            files: std::mem::take(run),
                        });
                    }
                    run.clear();
                };
                for f in files.values().filter(|f| f.overlaps_time(lo, hi)) {
                    if !small(f) {
                        finish(&mut run);
                        rows = 0;
                        continue;
                    }
                    if rows + f.row_count > max_rows {
                        finish(&mut run);
                        rows = 0;
                    }
                    rows += f.row_count;
                    run.push(Arc::clone(f));
                }
                finish(&mut run);
            }
        }
    }
    runs
}

/// Merges `run` into one file and swaps it in. Returns whether the catalog
/// took it (false when a delete or retention removed an input meanwhile).
pub(crate) async fn merge(
    catalog: &Catalog,
    store: &Arc<dyn ObjectStore>,
    run: &Run,
    fence: Option<&crate::Fence>,
) -> Result<bool, String> {
    let state = catalog.state();
    let Some((indexed, table)) = state.db_by_id(run.db_id).and_then(|d| {
        d.table_by_id(run.table_id)
            .map(|t| (d.indexed_columns(t), Arc::clone(t)))
    }) else {
        return Ok(false);
    };
    let schema = table_batch::table_arrow_schema(&table);
    let mut batches = Vec::new();
    for f in &run.files {
        // The predicate deletes that still apply to the file's rows go
        // before the dedup, as they do when the file is read.
        let pending: Vec<&catalog::Tombstone> = f.pending_tombstones(&table).collect();
        for b in parquet_store::read_file(store, &f.path)
            .await
            .map_err(|e| e.to_string())?
        {
            let b = table_batch::without_deleted(&b, pending.iter().copied())
                .map_err(|e| e.to_string())?;
            batches.push(table_batch::align(&b, &schema).map_err(|e| e.to_string())?);
        }
    }
    // Oldest first, so the dedup lets later writes win.
    let all = concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    drop(batches);
    // One dictionary of distinct values per tag: concatenation keeps each
    // input batch's dictionary side by side.
    let merged = table_batch::dedup(&all, &table)
        .and_then(|b| table_batch::sort_by_key(&b, &table))
        .and_then(|b| table_batch::compact_dictionaries(&b))
        .map_err(|e| e.to_string())?;
    drop(all);
    let removed: Vec<u64> = run.files.iter().map(|f| f.id).collect();
    if merged.num_rows() == 0 {
        // Deletes took every row: the files go.
        let ids: Vec<(u32, u32, u64)> = removed
            .iter()
            .map(|id| (run.db_id, run.table_id, *id))
            .collect();
        let plan = |_: &CatalogState| {
            Ok(vec![CatalogOp::RemoveParquetFiles {
                ids: ids.clone(),
                at_ns: catalog::now_ns(),
            }])
        };
        match fence {
            Some(f) => catalog.update_fenced(&f.lease, f.epoch, plan).await,
            None => catalog.update(plan).await,
        }
        .map_err(|e| e.to_string())?;
        return Ok(true);
    }
    let chunk_time = run
        .files
        .iter()
        .map(|f| f.chunk_time)
        .min()
        .unwrap_or_default();
    let path = parquet_store::sibling_path(&run.files[0].path);
    let mut added =
        parquet_store::write_file_at(store, path, run.db_id, &table, chunk_time, &merged)
            .await
            .map_err(|e| e.to_string())?;
    server::crash_point("after-compacted-write");
    added.level = 1;
    added.value_index = parquet_store::file_index::build(&merged, &indexed);
    added.max_wal_seq = run.files.iter().map(|f| f.max_wal_seq).max().unwrap_or(0);
    // Every tombstone of the state read is applied now; later ones apply
    // to the merged file as they would have to its inputs.
    added.deletes_applied = state.last_tombstone_id();
    let path = added.path.clone();
    let plan = |_: &CatalogState| {
        Ok(vec![CatalogOp::ReplaceParquetFiles {
            removed: removed.clone(),
            added: added.clone(),
            at_ns: catalog::now_ns(),
        }])
    };
    let state = match fence {
        Some(f) => catalog.update_fenced(&f.lease, f.epoch, plan).await,
        None => catalog.update(plan).await,
    }
    .map_err(|e| e.to_string())?;
    server::crash_point("after-compaction-commit");
    let id = removed.iter().max().copied().unwrap_or_default();
    let took = state
        .table_files(run.db_id, run.table_id)
        .and_then(|f| f.get(&id))
        .is_some_and(|f| f.path == path);
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{ColumnKind, FieldType, SchemaChange, TableChange};
    use object_store::memory::InMemory;
    use object_store::path::Path;

    const H: i64 = 3_600 * 1_000_000_000;

    fn file(id: u64, rows: u64, min_time: i64, max_time: i64) -> ParquetFile {
        ParquetFile {
            id,
            db_id: 0,
            table_id: 0,
            path: format!("data/0/0/f{id}.parquet"),
            size_bytes: 1,
            row_count: rows,
            min_time,
            max_time,
            chunk_time: min_time,
            max_wal_seq: id,
            level: 0,
            tag_ranges: Default::default(),
            value_index: Default::default(),
            deletes_applied: 0,
        }
    }

    async fn catalog_with(files: Vec<ParquetFile>) -> Arc<Catalog> {
        let c = Catalog::load(Arc::new(InMemory::new()), Path::default())
            .await
            .unwrap();
        c.ensure(&SchemaChange {
            db: "db".to_string(),
            tables: vec![TableChange {
                name: "m".to_string(),
                columns: vec![
                    ("host".to_string(), ColumnKind::Tag),
                    ("v".to_string(), ColumnKind::Field(FieldType::Float)),
                ],
            }],
        })
        .await
        .unwrap();
        c.update(|_| {
            Ok(vec![CatalogOp::AddParquetFiles {
                node_id: "n".to_string(),
                wal_seq: 1,
                files: files.clone(),
                deletes_marked: 0,
            }])
        })
        .await
        .unwrap();
        c
    }

    fn ids(runs: &[Run]) -> Vec<Vec<u64>> {
        runs.iter()
            .map(|r| r.files.iter().map(|f| f.id).collect())
            .collect()
    }

    /// Runs are per day, in id order, capped in rows, and broken by big
    /// files and by files reaching into another day.
    #[tokio::test]
    async fn plans_runs_that_keep_write_order() {
        let c = catalog_with(vec![
            file(1, 10, 0, H),
            file(2, 10, H, 2 * H),
            file(3, 60, 2 * H, 3 * H), // big (≥ 100 / 2): a barrier
            file(4, 10, 3 * H, 4 * H),
            file(5, 10, 4 * H, 5 * H),
            file(6, 10, 24 * H, 25 * H), // the next day, alone there
            file(7, 30, 5 * H, 6 * H),
            file(8, 30, 6 * H, 7 * H),
            file(9, 30, 7 * H, 8 * H), // 10 + 10 + 30 + 30 + 30 > 100: a new run
            file(10, 5, 8 * H, 9 * H),
            file(11, 5, 23 * H, 26 * H), // reaches into the next day: a barrier in both
            file(12, 5, 9 * H, 10 * H),
            file(13, 5, 25 * H, 26 * H),
        ])
        .await;
        let runs = plan(&c.state(), 100);
        assert_eq!(ids(&runs), vec![vec![1, 2], vec![4, 5, 7, 8], vec![9, 10]]);
        assert!(plan(&c.state(), 0).is_empty(), "0 turns compaction off");
    }

    /// Applies a `ReplaceParquetFiles` of `removed` by a file at `path`.
    async fn replace(c: &Catalog, removed: &[u64], path: &str, at_ns: i64) -> Arc<CatalogState> {
        let mut added = file(0, 20, 0, 2 * H);
        added.path = path.to_string();
        added.level = 1;
        c.update(|_| {
            Ok(vec![CatalogOp::ReplaceParquetFiles {
                removed: removed.to_vec(),
                added: added.clone(),
                at_ns,
            }])
        })
        .await
        .unwrap()
    }

    /// The merged file takes the highest input id; a replacement whose
    /// inputs are partly gone changes nothing and leaves its file as garbage.
    #[tokio::test]
    async fn replace_keeps_the_newest_id_or_nothing() {
        let c = catalog_with(vec![
            file(1, 10, 0, H),
            file(2, 10, H, 2 * H),
            file(3, 10, 2 * H, 3 * H),
        ])
        .await;
        let s = replace(&c, &[1, 2], "data/0/0/merged.parquet", 7).await;
        let files = s.table_files(0, 0).unwrap();
        assert_eq!(files.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(files[&2].path, "data/0/0/merged.parquet");
        assert_eq!(s.garbage().get("data/0/0/f1.parquet"), Some(&7));
        assert_eq!(s.garbage().get("data/0/0/f2.parquet"), Some(&7));

        // File 1 is gone now: nothing is replaced.
        let s = replace(&c, &[1, 3], "data/0/0/again.parquet", 8).await;
        let files = s.table_files(0, 0).unwrap();
        assert_eq!(files.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(files[&3].path, "data/0/0/f3.parquet");
        assert_eq!(s.garbage().get("data/0/0/again.parquet"), Some(&8));
    }
}
