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
//!       ─▶ ReplaceParquetFiles (the inputs become garbage; see `compact`);
//!       files persisted before a file index covered their columns ─▶
//!       IndexParquetFiles (see `index`)
//!    3c. predicate deletes: files a tombstone still applies to ─▶ rewritten
//!       without its rows; tombstones nothing needs ─▶ DropTombstones (see `deletes`)
//!    4. garbage older than --gc-grace-period ─▶ DELETE object ─▶ ForgetGarbage
//! ```
//!
//! Removed files stay on the store for the grace period, so a query that
//! planned with them still reads them. Every step is a catalog transaction
//! planned against the newest state, so two compactors racing cannot remove
//! anything twice; and only one runs at a time: the loop runs while its
//! process holds the cluster's compactor lease ([`CompactorRole`]), and each
//! transaction is fenced by the lease's epoch, so a former holder's pass
//! commits nothing once a standby has taken over.

mod compact;
mod deletes;
mod index;

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
    /// Files given the value sets of newly indexed columns.
    pub indexed_files: usize,
    /// Files rewritten (or removed) without the rows of predicate deletes.
    pub delete_rewrites: usize,
    /// Tombstones dropped.
    pub tombstones_dropped: usize,
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
    pub fn new(
        catalog: Arc<Catalog>,
        store: Arc<dyn ObjectStore>,
        config: MaintenanceConfig,
    ) -> Self {
        Self {
            catalog,
            store,
            config,
        }
    }

    /// Runs passes every interval while `lease` is held; returns why it
    /// stopped (the lease was lost).
    pub async fn run_while_held(&self, lease: &cluster::Lease) -> String {
        let mut tick = tokio::time::interval(self.config.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                why = lease.lost() => return why,
                _ = tick.tick() => {}
            }
            if !lease.is_valid() {
                // Renewals are behind: another process may be taking over.
                continue;
            }
            let fence = Fence {
                lease: lease.name().to_string(),
                epoch: lease.epoch(),
            };
            match self.pass_fenced(Some(&fence)).await {
                Ok(r) if r != PassReport::default() => tracing::info!(
                    expired_files = r.expired_files,
                    hard_deleted = r.hard_deleted,
                    compacted_files = r.compacted_files,
                    compactions = r.compactions,
                    objects_deleted = r.objects_deleted,
                    "maintenance pass"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "maintenance pass failed; retrying next interval")
                }
            }
        }
    }

    /// One pass of every step, unfenced (tests, and a single process).
    pub async fn pass(&self) -> Result<PassReport, String> {
        self.pass_fenced(None).await
    }

    /// Applies `plan` as one transaction, fenced by `fence` if given.
    async fn update<F>(&self, fence: Option<&Fence>, plan: F) -> Result<Arc<CatalogState>, String>
    where
        F: Fn(&CatalogState) -> Result<Vec<CatalogOp>, catalog::CatalogError>,
    {
        match fence {
            Some(f) => self.catalog.update_fenced(&f.lease, f.epoch, plan).await,
            None => self.catalog.update(plan).await,
        }
        .map_err(|e| e.to_string())
    }

    /// One pass of every step; each transaction fenced by `fence`.
    async fn pass_fenced(&self, fence: Option<&Fence>) -> Result<PassReport, String> {
        let mut report = PassReport::default();
        let now = catalog::now_ns();
        // 1 and 2 in one transaction, planned against the newest state.
        let (expired, hard) = (AtomicUsize::new(0), AtomicUsize::new(0));
        self.update(fence, |s| {
            let (ops, e, h) = plan_removals(s, now);
            expired.store(e, Ordering::Relaxed);
            hard.store(h, Ordering::Relaxed);
            Ok(ops)
        })
        .await?;
        report.expired_files = expired.load(Ordering::Relaxed);
        report.hard_deleted = hard.load(Ordering::Relaxed);

        // 3. Compaction, one run at a time (each holds its rows in memory).
        let metrics = http_api::cluster_metrics();
        for run in compact::plan(&self.catalog.state(), self.config.compaction_max_rows) {
            let started = std::time::Instant::now();
            match compact::merge(&self.catalog, &self.store, &run, fence).await {
                Ok(true) => {
                    report.compacted_files += run.files.len();
                    report.compactions += 1;
                    metrics.compactions.with_label_values(&["ok"]).inc();
                    metrics
                        .compaction_duration
                        .observe(started.elapsed().as_secs_f64());
                    metrics
                        .compaction_rows
                        .inc_by(run.files.iter().map(|f| f.row_count).sum());
                    metrics.compacted_files.inc_by(run.files.len() as u64);
                }
                Ok(false) => metrics.compactions.with_label_values(&["superseded"]).inc(),
                Err(e) => {
                    metrics.compactions.with_label_values(&["error"]).inc();
                    tracing::warn!(table_id = run.table_id, files = run.files.len(), error = %e, "compaction failed; retrying next pass");
                    break;
                }
            }
        }

        // 3b. Value sets for files persisted before their columns were indexed.
        for backfill in index::plan(&self.catalog.state()) {
            match index::index(&self.store, &backfill).await {
                Ok(op) => {
                    let n = backfill.files.len();
                    self.update(fence, |_| Ok(vec![op.clone()])).await?;
                    report.indexed_files += n;
                }
                Err(e) => {
                    tracing::warn!(table_id = backfill.table_id, error = %e, "indexing files failed; retrying next pass");
                    break;
                }
            }
        }

        // 3c. Predicate deletes: rewrite the files they still apply to,
        // then drop the tombstones nothing needs.
        for run in deletes::rewrites(&self.catalog.state()) {
            match compact::merge(&self.catalog, &self.store, &run, fence).await {
                Ok(took) => report.delete_rewrites += usize::from(took),
                Err(e) => {
                    tracing::warn!(table_id = run.table_id, error = %e, "rewriting a file without deleted rows failed; retrying next pass");
                    break;
                }
            }
        }
        let state = self.catalog.state();
        if state
            .databases()
            .any(|d| d.tables().any(|t| !t.tombstones.is_empty()))
        {
            let wal_needs_from =
                deletes::lowest_needed_by_wal(&state, &self.store, self.catalog.prefix()).await?;
            let dropped = AtomicUsize::new(0);
            self.update(fence, |s| {
                let ops = deletes::drops(s, wal_needs_from);
                dropped.store(
                    ops.iter()
                        .map(|op| match op {
                            CatalogOp::DropTombstones { ids, .. } => ids.len(),
                            _ => 0,
                        })
                        .sum(),
                    Ordering::Relaxed,
                );
                Ok(ops)
            })
            .await?;
            report.tombstones_dropped = dropped.load(Ordering::Relaxed);
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
                Err(e) => {
                    tracing::warn!(path, error = %e, "could not delete a garbage object; retrying later")
                }
            }
        }
        if !deleted.is_empty() {
            report.objects_deleted = deleted.len();
            self.update(fence, |_| {
                Ok(vec![CatalogOp::ForgetGarbage {
                    paths: deleted.clone(),
                }])
            })
            .await?;
        }
        Ok(report)
    }
}

/// The lease epoch a pass's transactions are fenced by.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    pub(crate) lease: String,
    pub(crate) epoch: u64,
}

/// The compactor loop of a process, active while it holds the compactor
/// lease and a standby while another process does.
#[derive(Debug)]
pub struct CompactorRole {
    task: tokio::task::JoinHandle<()>,
    current: Arc<std::sync::Mutex<Option<Arc<cluster::Lease>>>>,
}

impl CompactorRole {
    /// Starts `maintenance` under the cluster's compactor lease, taken as
    /// `node` (`inflow serve` and `inflow-compactor` both do this, so any
    /// number of them run one compactor). A standby takes over within the
    /// lease timeout once the active one stops renewing.
    pub fn start(node: &server::Node, catalog: &Arc<Catalog>, maintenance: Maintenance) -> Self {
        let current: Arc<std::sync::Mutex<Option<Arc<cluster::Lease>>>> = Arc::default();
        let (store, prefix, holder, timing) = (
            Arc::clone(node.store()),
            node.prefix().clone(),
            node.holder().clone(),
            node.timing(),
        );
        let hook = node.fence_hook(catalog, cluster::COMPACTOR_LEASE);
        let held = Arc::clone(&current);
        let task = tokio::spawn(async move {
            loop {
                let acquired = cluster::Lease::acquire(
                    Arc::clone(&store),
                    &prefix,
                    cluster::COMPACTOR_LEASE,
                    holder.clone(),
                    timing,
                    cluster::Contention::Wait,
                    hook.clone(),
                )
                .await;
                let lease = match acquired {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take the compactor lease; retrying");
                        tokio::time::sleep(timing.heartbeat).await;
                        continue;
                    }
                };
                tracing::info!(
                    epoch = lease.epoch(),
                    "this process is the cluster's compactor"
                );
                *held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&lease));
                let why = maintenance.run_while_held(&lease).await;
                held.lock().unwrap_or_else(|p| p.into_inner()).take();
                tracing::warn!(reason = %why, "no longer the cluster's compactor; standing by");
            }
        });
        Self { task, current }
    }

    /// Stops compacting and releases the lease, so a standby takes over at once.
    pub async fn stop(self) {
        self.task.abort();
        let lease = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(lease) = lease {
            lease.release().await;
        }
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
            let Some(cutoff) = db.retention_cutoff(t, now) else {
                continue;
            };
            if let Some(files) = s.table_files(db.id, t.id) {
                expired.extend(
                    files
                        .values()
                        .filter(|f| f.max_time < cutoff)
                        .map(|f| (db.id, t.id, f.id)),
                );
            }
        }
    }
    let n = expired.len();
    if n > 0 {
        ops.insert(
            0,
            CatalogOp::RemoveParquetFiles {
                ids: expired,
                at_ns: now,
            },
        );
    }
    (ops, n, hard)
}
