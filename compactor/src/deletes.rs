//! Predicate deletes, finished: the compactor rewrites every file a
//! tombstone still applies to (without the deleted rows, or removes it
//! when none is left), then drops the tombstones nothing needs any more.
//!
//! ```text
//!  file with a pending tombstone ─▶ merge() as a run of one ─▶ file without the rows
//!  tombstone T is dropped when
//!    no file of its table has T pending, and
//!    every node's WAL either has T's marker persisted (deletes_marked ≥ T)
//!    or holds no file past its persisted sequence
//! ```
//!
//! The WAL condition keeps T while any replay (an ingester restarting, a
//! querier tailing, an adoption) could still meet rows written before the
//! node marked it.

use std::sync::Arc;

use catalog::{CatalogOp, CatalogState};
use object_store::ObjectStore;
use object_store::path::Path;
use wal::WalLocation;

use crate::compact::Run;

/// Each file with a tombstone pending, as a run of one.
pub(crate) fn rewrites(s: &CatalogState) -> Vec<Run> {
    let mut runs = Vec::new();
    for db in s.databases() {
        for t in db.tables().filter(|t| !t.tombstones.is_empty()) {
            let Some(files) = s.table_files(db.id, t.id) else {
                continue;
            };
            for f in files.values() {
                if f.pending_tombstones(t).next().is_some() {
                    runs.push(Run {
                        db_id: db.id,
                        table_id: t.id,
                        files: vec![Arc::clone(f)],
                    });
                }
            }
        }
    }
    runs
}

/// The lowest tombstone id some node's WAL may still need: every
/// tombstone from it on stays. `None` when no WAL needs any.
pub(crate) async fn lowest_needed_by_wal(
    s: &CatalogState,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<Option<u64>, String> {
    let dir = prefix.clone().join("wal");
    let listed = store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|e| e.to_string())?;
    let mut lowest: Option<u64> = None;
    for node_dir in listed.common_prefixes {
        let Some(node) = node_dir.filename() else {
            continue;
        };
        let marked = s.deletes_marked(node);
        if marked >= s.last_tombstone_id() {
            continue;
        }
        let persisted = s.persisted_wal_seq(node);
        let location = WalLocation::new(Arc::clone(store), prefix, node);
        let unpersisted = location
            .list()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .any(|seq| seq > persisted);
        if unpersisted {
            let needed = marked + 1;
            lowest = Some(lowest.map_or(needed, |l| l.min(needed)));
        }
    }
    Ok(lowest)
}

/// The transactions that drop the tombstones no file and no WAL needs.
pub(crate) fn drops(s: &CatalogState, wal_needs_from: Option<u64>) -> Vec<CatalogOp> {
    let mut ops = Vec::new();
    for db in s.databases() {
        for t in db.tables().filter(|t| !t.tombstones.is_empty()) {
            let files = s.table_files(db.id, t.id);
            let ids: Vec<u64> = t
                .tombstones
                .iter()
                .filter(|x| wal_needs_from.is_none_or(|w| x.id < w))
                .filter(|x| {
                    files.is_none_or(|files| {
                        !files
                            .values()
                            .any(|f| f.pending_tombstones(t).any(|p| p.id == x.id))
                    })
                })
                .map(|x| x.id)
                .collect();
            if !ids.is_empty() {
                ops.push(CatalogOp::DropTombstones {
                    db_id: db.id,
                    table_id: t.id,
                    ids,
                });
            }
        }
    }
    ops
}
