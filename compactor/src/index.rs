//! The file index's backfill: files persisted before their columns were
//! indexed get their value sets from the compactor, a bounded number per
//! pass, each table's in one `IndexParquetFiles` transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::{CatalogOp, CatalogState, ValueSet};
use object_store::ObjectStore;

/// Files read for the backfill per pass at most.
const FILES_PER_PASS: usize = 256;

/// A table's files that lack the value set of an indexed column.
pub(crate) struct Backfill {
    pub(crate) db_id: u32,
    pub(crate) table_id: u32,
    /// (file id, path, the columns it lacks).
    pub(crate) files: Vec<(u64, String, Vec<Arc<str>>)>,
}

/// What the next pass backfills.
pub(crate) fn plan(state: &CatalogState) -> Vec<Backfill> {
    let mut out = Vec::new();
    let mut budget = FILES_PER_PASS;
    for db in state.databases() {
        if db.file_indexes.is_empty() {
            continue;
        }
        for table in db.tables() {
            let indexed = db.indexed_columns(table);
            if indexed.is_empty() || budget == 0 {
                continue;
            }
            let Some(files) = state.table_files(db.id, table.id) else {
                continue;
            };
            let mut todo = Vec::new();
            for f in files.values() {
                let missing: Vec<Arc<str>> = indexed
                    .iter()
                    .filter(|c| !f.value_index.contains_key(c.as_ref()))
                    .cloned()
                    .collect();
                if !missing.is_empty() && budget > 0 {
                    budget -= 1;
                    todo.push((f.id, f.path.clone(), missing));
                }
            }
            if !todo.is_empty() {
                out.push(Backfill {
                    db_id: db.id,
                    table_id: table.id,
                    files: todo,
                });
            }
        }
    }
    out
}

/// Reads the files of `b` and returns the transaction that records their
/// value sets.
pub(crate) async fn index(store: &Arc<dyn ObjectStore>, b: &Backfill) -> Result<CatalogOp, String> {
    let mut files: Vec<(u64, BTreeMap<Arc<str>, ValueSet>)> = Vec::with_capacity(b.files.len());
    for (id, path, missing) in &b.files {
        let batches = parquet_store::read_file(store, path)
            .await
            .map_err(|e| e.to_string())?;
        // The batches of one file, as one: their value sets are the file's.
        let sets = match batches.first().map(|b| b.schema()) {
            Some(schema) => {
                let merged =
                    arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
                parquet_store::file_index::build(&merged, missing)
            }
            // No rows: no value of any column.
            None => missing
                .iter()
                .map(|c| (Arc::clone(c), ValueSet::Exact(Vec::new())))
                .collect(),
        };
        files.push((*id, sets));
    }
    Ok(CatalogOp::IndexParquetFiles {
        db_id: b.db_id,
        table_id: b.table_id,
        files,
    })
}
