//! The compactor: one per cluster. It enforces retention, carries out
//! scheduled hard deletes, merges small Parquet files, and deletes garbage
//! objects.
//!
//! ```text
//!  every --retention-check-interval:
//!    1. retention: files wholly older than now − retention ─▶ RemoveParquetFiles
//!    2. hard deletes due: soft-deleted databases/tables ─▶ RemoveDatabase/RemoveTable
//!       (their files become garbage)
//!    3. compaction: runs of small files of a table and day ─▶ one file each
//!       ─▶ ReplaceParquetFiles (the inputs become garbage; see `compact`)
//!    4. garbage older than --gc-grace-period ─▶ DELETE object ─▶ ForgetGarbage
//! ```
//!
//! Removed files stay on the store for the grace period, so a query that
//! planned with them still reads them. Every step is a catalog transaction
//! planned against the newest state, so two compactors racing (during a
//! hand-over) cannot remove anything twice.

mod compact;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use catalog::{Catalog, CatalogOp, CatalogState};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// When the maintenance loop runs and how long garbage waits.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// How often to check.
    pub interval: Duration,
    /// How long an unreferenced file stays before it is deleted.
    pub gc_grace: Duration,
    /// The most rows one compaction merges (and holds in memory); files of
    /// half as many rows or more are left as they are. 0 turns compaction off.
    pub compaction_max_rows: u64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Files removed by retention.
    pub expired_files: usize,
    /// Databases and tables hard-deleted.
    pub hard_deleted: usize,
    /// Files merged by compaction.
    pub compacted_files: usize,
    /// Files compaction wrote.
    pub compactions: usize,
    /// Objects deleted from the store.
    pub objects_deleted: usize,
}

/// Runs retention, hard deletes and garbage collection.
#[derive(Debug)]
pub struct Maintenance {
    catalog: Arc<Catalog>,
    store: Arc<dyn ObjectStore>,
    config: MaintenanceConfig,
}

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Maintenance {
    /// Maintenance over `catalog` and `store` (the root store: catalog paths
    /// include the prefix).
    pub fn new(catalog: Arc<Catalog>, store: Arc<dyn ObjectStore>, config: MaintenanceConfig) -> Self {
        Self { catalog, store, config }
    }

    /// Runs passes every interval, forever.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.pass().await {
                    Ok(r) if r != PassReport::default() => tracing::info!(
                        expired_files = r.expired_files,
                        hard_deleted = r.hard_deleted,
                        compacted_files = r.compacted_files,
                        compactions = r.compactions,
                        objects_deleted = r.objects_deleted,
                        "maintenance pass"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "maintenance pass failed; retrying next interval"),
                }
            }
        })
    }

    /// One pass of every step.
    pub async fn pass(&self) -> Result<PassReport, String> {
        let mut report = PassReport::default();
        let now = catalog::now_ns();
        // 1 and 2 in one transaction, planned against the newest state.
        let (expired, hard) = (AtomicUsize::new(0), AtomicUsize::new(0));
        self.catalog
            .update(|s| {
                let (ops, e, h) = plan_removals(s, now);
                expired.store(e, Ordering::Relaxed);
                hard.store(h, Ordering::Relaxed);
                Ok(ops)
            })
            .await
            .map_err(|e| e.to_string())?;
        report.expired_files = expired.load(Ordering::Relaxed);
        report.hard_deleted = hard.load(Ordering::Relaxed);

        // 3. Compaction, one run at a time (each holds its rows in memory).
        for run in compact::plan(&self.catalog.state(), self.config.compaction_max_rows) {
            match compact::merge(&self.catalog, &self.store, &run).await {
                Ok(true) => {
                    report.compacted_files += run.files.len();
                    report.compactions += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(table_id = run.table_id, files = run.files.len(), error = %e, "compaction failed; retrying next pass");
                    break;
                }
            }
        }

        // 4. Garbage past its grace period.
        let state = self.catalog.state();
        let cutoff = now.saturating_sub(ns(self.config.gc_grace));
        let due: Vec<String> = state
            .garbage()
            .iter()
            .filter(|(_, at)| **at <= cutoff)
            .map(|(p, _)| p.clone())
            .collect();
        let mut deleted = Vec::with_capacity(due.len());
        for path in due {
            match self.store.delete(&Path::from(path.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted.push(path),
                Err(e) => tracing::warn!(path, error = %e, "could not delete a garbage object; retrying later"),
            }
        }
        if !deleted.is_empty() {
            report.objects_deleted = deleted.len();
            self.catalog
                .update(|_| Ok(vec![CatalogOp::ForgetGarbage { paths: deleted.clone() }]))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(report)
    }
}

/// The removals due at `now`: expired files, and databases and tables whose
/// hard delete time has come. Returns the operations and the counts.
fn plan_removals(s: &CatalogState, now: i64) -> (Vec<CatalogOp>, usize, usize) {
    let mut ops = Vec::new();
    let mut expired = Vec::new();
    let mut hard = 0;
    for db in s.all_databases() {
        if let Some(d) = &db.deleted {
            if d.hard_delete_at_ns.is_some_and(|h| h <= now) {
                ops.push(CatalogOp::RemoveDatabase { db_id: db.id });
                hard += 1;
            }
            continue;
        }
        for t in db.all_tables() {
            if let Some(d) = &t.deleted {
                if d.hard_delete_at_ns.is_some_and(|h| h <= now) {
                    ops.push(CatalogOp::RemoveTable {
                        db_id: db.id,
                        table_id: t.id,
                    });
                    hard += 1;
                }
                continue;
            }
            let Some(cutoff) = db.retention_cutoff(t, now) else { continue };
            if let Some(files) = s.table_files(db.id, t.id) {
                expired.extend(files.values().filter(|f| f.max_time < cutoff).map(|f| (db.id, t.id, f.id)));
            }
        }
    }
    let n = expired.len();
    if n > 0 {
        ops.insert(0, CatalogOp::RemoveParquetFiles { ids: expired, at_ns: now });
    }
    (ops, n, hard)
}
