//! Persisting the buffer to Parquet.
//!
//! ```text
//!  trigger: WAL files since the last persist ≥ --wal-snapshot-size,
//!           or buffered bytes > --buffer-mem-limit
//!    1. seal the active generation (it holds whole WAL files up to seq S)
//!    2. write one Parquet file per table and time chunk (sorted, deduplicated)
//!    3. one catalog transaction: the files, and "node persisted WAL up to S"
//!    4. delete WAL files ≤ S
//!    5. drop the sealed generation from the buffer
//! ```
//!
//! Crash safety, step by step: before 3 the new files are unreferenced (not
//! visible; the WAL still has every row, and replay rebuilds them). After 3
//! the files are visible and replay starts after S, so no row is counted
//! twice. A crash in 4 leaves WAL files ≤ S, which the next start deletes
//! without replaying. Until 5, queries see the sealed rows both in the
//! buffer and in the files; they are one dedup group, so no row shows twice.
//!
//! Faults: a failed step is retried with the same files (written once per
//! generation), and the commit is idempotent: one that landed although
//! the store reported a failure leaves the node's persisted sequence at S,
//! and the retry then commits nothing. The commit is fenced by the node's
//! lease epoch (`Catalog::update_fenced`), so a process whose node id was
//! taken over can neither register files nor, therefore, delete WAL files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use buffer::{Buffer, Generation};
use catalog::{Catalog, CatalogError, CatalogOp, ParquetFile};
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::sync::Notify;
use wal::WalLocation;

use crate::IngesterConfig;

/// When to persist.
#[derive(Debug, Clone)]
pub struct PersistConfig {
    /// Persist after this many WAL files.
    pub wal_snapshot_size: u64,
    /// Persist when the buffer holds more bytes than this.
    pub buffer_mem_limit: usize,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self {
            wal_snapshot_size: 600,
            buffer_mem_limit: 1 << 30,
        }
    }
}

use server::crash_point;

/// Why a persist did not complete.
#[derive(Debug)]
enum PersistError {
    /// Retry later (the store or catalog failed).
    Failed(String),
    /// Another process holds this node id now: stop.
    LeaseLost(String),
}

/// Persists one node's buffer.
#[derive(Debug)]
pub struct Persister {
    config: PersistConfig,
    catalog: Arc<Catalog>,
    buffer: Arc<Buffer>,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    node_id: String,
    location: WalLocation,
    /// The lease on this node id; its epoch fences the commit.
    lease: Option<Arc<cluster::Lease>>,
    /// The last WAL sequence number persisted.
    persisted: AtomicU64,
    /// The last WAL sequence number applied to the buffer.
    applied: AtomicU64,
    wake: Notify,
    /// Persist whatever is buffered, limits or not (a clean shutdown).
    draining: std::sync::atomic::AtomicBool,
    /// Whether the persist loop runs: one loop per buffer, or two could
    /// seal and commit the same WAL range concurrently.
    spawned: std::sync::atomic::AtomicBool,
}

impl Persister {
    pub(crate) fn new(
        config: &IngesterConfig,
        catalog: Arc<Catalog>,
        buffer: Arc<Buffer>,
        location: WalLocation,
        persisted: u64,
        applied: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: config.persist.clone(),
            catalog,
            buffer,
            store: Arc::clone(&config.store),
            prefix: config.prefix.clone(),
            node_id: config.node_id.clone(),
            location,
            lease: config.lease.clone(),
            persisted: AtomicU64::new(persisted),
            applied: AtomicU64::new(applied.max(persisted)),
            wake: Notify::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            spawned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Called after WAL file `seq` is in the buffer: wakes the persister if
    /// a limit is reached.
    pub(crate) fn applied(&self, seq: u64) {
        self.applied.fetch_max(seq, Ordering::AcqRel);
        if self.due() {
            self.wake.notify_one();
        }
    }

    /// Waits while the buffer holds more than 1.25 × `--buffer-mem-limit`
    /// (persistence is behind the writers). Gives up after `max_wait`,
    /// returning false: the caller then refuses the write with 503.
    pub(crate) async fn wait_for_room(&self, max_wait: Duration) -> bool {
        let limit = self
            .config
            .buffer_mem_limit
            .saturating_add(self.config.buffer_mem_limit / 4);
        let deadline = Instant::now() + max_wait;
        while self.buffer.memory_bytes() > limit {
            if Instant::now() >= deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Waits while the buffer holds more than `--buffer-mem-limit`, waking
    /// the persist loop: the WAL replay calls it after each file.
    pub(crate) async fn wait_below_limit(&self) {
        let started = Instant::now();
        let mut warned = false;
        while self.buffer.memory_bytes() > self.config.buffer_mem_limit {
            if !warned && started.elapsed() > Duration::from_secs(10) {
                tracing::warn!("WAL replay waits for a persist to make room in the buffer");
                warned = true;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Persists everything buffered now, whatever the limits, and waits
    /// until the WAL up to the last applied file is persisted (and so
    /// deleted), or `max_wait` passed. For a clean shutdown once writes have
    /// stopped: a node scaled down leaves no WAL that no process replays.
    pub(crate) async fn drain(&self, max_wait: Duration) -> bool {
        let target = self.applied.load(Ordering::Acquire);
        self.draining.store(true, Ordering::Release);
        self.wake.notify_one();
        let deadline = Instant::now() + max_wait;
        while self.persisted.load(Ordering::Acquire) < target {
            if Instant::now() >= deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The persist loop deletes WAL files after its commit; the process
        // may exit before it is done, so delete them here too, until none
        // persisted is left (a file gone already is no error).
        let persisted = self.persisted.load(Ordering::Acquire);
        while Instant::now() < deadline {
            match self.location.list().await {
                Ok(seqs) => {
                    let left: Vec<u64> = seqs.into_iter().filter(|s| *s <= persisted).collect();
                    if left.is_empty() {
                        return true;
                    }
                    for seq in left {
                        let _ = self.location.delete(seq).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list WAL files to delete"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn due(&self) -> bool {
        let files = self
            .applied
            .load(Ordering::Acquire)
            .saturating_sub(self.persisted.load(Ordering::Acquire));
        if files > 0 && self.draining.load(Ordering::Acquire) {
            return true;
        }
        // A delete marker not persisted yet keeps its tombstone in the
        // catalog (the compactor drops it only once no WAL needs it), so a
        // delete is followed by a persist.
        let unpersisted_delete = files > 0
            && self.buffer.deletes_applied() > self.catalog.state().deletes_marked(&self.node_id);
        files >= self.config.wal_snapshot_size
            || unpersisted_delete
            || self.buffer.memory_bytes() > self.config.buffer_mem_limit
    }

    /// Runs the persist loop in the background.
    pub(crate) fn spawn(self: &Arc<Self>) {
        if self.spawned.swap(true, Ordering::AcqRel) {
            tracing::error!("the persist loop is already running; not starting a second one");
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            // A sealed generation whose persist failed, with the files
            // already written for it: the retry commits the same files.
            let mut pending: Option<(Arc<Generation>, Option<Vec<ParquetFile>>)> = None;
            loop {
                if pending.is_none() && !this.due() {
                    // A replay may already have passed a limit; otherwise wait.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), this.wake.notified()).await;
                    continue;
                }
                let (generation, mut files) = match pending.take() {
                    Some(p) => p,
                    None => match this.buffer.seal() {
                        Some(g) => (g, None),
                        None => {
                            // Nothing buffered: the WAL files are empty of rows.
                            this.persisted
                                .fetch_max(this.applied.load(Ordering::Acquire), Ordering::AcqRel);
                            continue;
                        }
                    },
                };
                let started = Instant::now();
                let result = this.persist(&generation, &mut files).await;
                let metrics = http_api::cluster_metrics();
                metrics
                    .persists
                    .with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
                    .inc();
                match result {
                    Ok(()) => {
                        metrics
                            .persist_duration
                            .observe(started.elapsed().as_secs_f64());
                        metrics
                            .buffer_bytes
                            .set(i64::try_from(this.buffer.memory_bytes()).unwrap_or(i64::MAX));
                        backoff = Duration::from_millis(100);
                    }
                    Err(PersistError::LeaseLost(e)) => {
                        // The process stops on its lost lease; nothing more
                        // may be committed or deleted under this node id.
                        tracing::error!(error = %e, "persist refused: this node id was taken over");
                        return;
                    }
                    Err(PersistError::Failed(e)) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "persist failed; the rows stay buffered and in the WAL");
                        pending = Some((generation, files));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    }

    /// Step 2 for one sealed generation: its Parquet files.
    async fn write_files(&self, generation: &Generation) -> Result<Vec<ParquetFile>, String> {
        let state = self.catalog.state();
        let mut files: Vec<ParquetFile> = Vec::new();
        for (db_id, table_id) in generation.tables() {
            let Some((db, table)) = state
                .db_by_id(db_id)
                .and_then(|d| d.table_by_id(table_id).map(|t| (d, t)))
            else {
                return Err(format!(
                    "table {table_id} of database {db_id} is not in the catalog"
                ));
            };
            let indexed = db.indexed_columns(table);
            let chunks = generation
                .table_chunks(db_id, table)
                .map_err(|e| e.to_string())?;
            for chunk in chunks {
                let file = parquet_store::write_file(
                    &self.store,
                    &self.prefix,
                    db_id,
                    table,
                    chunk.chunk_time,
                    &chunk.batch,
                )
                .await
                .map_err(|e| e.to_string())?;
                let mut file = file;
                file.value_index = parquet_store::file_index::build(&chunk.batch, &indexed);
                files.push(file);
            }
        }
        Ok(files)
    }

    /// Steps 2–5 for one sealed generation; `written` keeps step 2's files
    /// across retries.
    async fn persist(
        &self,
        generation: &Generation,
        written: &mut Option<Vec<ParquetFile>>,
    ) -> Result<(), PersistError> {
        let started = Instant::now();
        let wal_seq = generation.max_seq();
        let deletes_marked = generation.deletes_applied();
        let files = match written {
            Some(f) => f.clone(),
            None => {
                let f = self
                    .write_files(generation)
                    .await
                    .map_err(PersistError::Failed)?;
                *written = Some(f.clone());
                f
            }
        };
        crash_point("after-parquet-write");
        let count = files.len();
        let bytes: u64 = files.iter().map(|f| f.size_bytes).sum();
        let node_id = self.node_id.clone();
        if let Some(lease) = &self.lease
            && !lease.wait_valid(Duration::from_secs(5)).await
        {
            return Err(PersistError::Failed(
                "the lease on this node id is not confirmed; retrying".into(),
            ));
        }
        let plan = |state: &catalog::CatalogState| {
            if state.persisted_wal_seq(&node_id) >= wal_seq {
                // An earlier attempt's commit landed although the store
                // reported a failure: done already.
                return Ok(vec![]);
            }
            let mut next = state.next_file_id();
            let files = files
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    f.id = next;
                    f.max_wal_seq = wal_seq;
                    f.deletes_applied = deletes_marked;
                    next += 1;
                    f
                })
                .collect();
            Ok(vec![CatalogOp::AddParquetFiles {
                node_id: node_id.clone(),
                wal_seq,
                files,
                deletes_marked,
            }])
        };
        let committed = match &self.lease {
            Some(lease) => {
                self.catalog
                    .update_fenced(lease.name(), lease.epoch(), plan)
                    .await
            }
            None => self.catalog.update(plan).await,
        };
        match committed {
            Ok(_) => {}
            Err(e @ CatalogError::LeaseLost { .. }) => {
                return Err(PersistError::LeaseLost(e.to_string()));
            }
            Err(e) => return Err(PersistError::Failed(e.to_string())),
        }
        self.persisted.fetch_max(wal_seq, Ordering::AcqRel);
        let metrics = http_api::cluster_metrics();
        metrics.persisted_files.inc_by(count as u64);
        metrics
            .persisted_rows
            .inc_by(files.iter().map(|f| f.row_count).sum());
        crash_point("after-catalog-commit");
        // Cleanup: a failure here only leaves files the next start deletes.
        match self.location.list().await {
            Ok(seqs) => {
                for seq in seqs.into_iter().filter(|s| *s <= wal_seq) {
                    if let Err(e) = self.location.delete(seq).await {
                        tracing::warn!(seq, error = %e, "could not delete a persisted WAL file; the next start deletes it");
                    }
                    crash_point("after-wal-delete");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list WAL files to delete"),
        }
        self.buffer.remove_generation(generation.id());
        tracing::info!(
            wal_seq,
            files = count,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "persisted buffer to Parquet"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::AtomicBool;

    use async_trait::async_trait;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
        PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };
    use services::{WriteRequest, WriteService};

    use super::*;

    /// A store whose first catalog transaction registering Parquet files
    /// lands but reports a failure, as a PUT whose answer was lost.
    #[derive(Debug)]
    struct LostAnswer {
        inner: InMemory,
        tripped: AtomicBool,
    }

    impl std::fmt::Display for LostAnswer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "LostAnswer")
        }
    }

    #[async_trait]
    impl ObjectStore for LostAnswer {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let registers_files = location.as_ref().contains("catalog/log")
                && payload
                    .iter()
                    .any(|b| b.windows(17).any(|w| w == b"add_parquet_files"));
            let result = self.inner.put_opts(location, payload, opts).await?;
            if registers_files && !self.tripped.swap(true, Ordering::AcqRel) {
                return Err(object_store::Error::Generic {
                    store: "LostAnswer",
                    source: "connection reset after the request was sent".into(),
                });
            }
            Ok(result)
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(
            &self,
            l: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
    }

    /// A persist whose catalog commit landed although the store reported a
    /// failure is retried with the same files and commits nothing more: one
    /// file registered, no orphan on the store, the WAL cleaned up.
    #[tokio::test]
    async fn a_commit_that_landed_but_failed_is_not_committed_twice() {
        let store = Arc::new(LostAnswer {
            inner: InMemory::new(),
            tripped: AtomicBool::new(false),
        });
        let store_dyn: Arc<dyn ObjectStore> = Arc::clone(&store) as Arc<dyn ObjectStore>;
        let catalog = Catalog::load(Arc::clone(&store_dyn), Path::default())
            .await
            .unwrap();
        let buffer = Arc::new(Buffer::new());
        let config = IngesterConfig {
            store: Arc::clone(&store_dyn),
            prefix: Path::default(),
            node_id: "n".into(),
            wal_flush_interval: Duration::from_millis(5),
            wal_max_batch_size: 1 << 20,
            persist: PersistConfig {
                wal_snapshot_size: 1,
                buffer_mem_limit: 1 << 30,
            },
            limits: validation::Limits::UNLIMITED,
            lease: None,
        };
        let ingester =
            crate::Ingester::start(config, Arc::clone(&catalog), buffer, Box::new(|_| {}))
                .await
                .unwrap();
        ingester
            .write_lp(WriteRequest {
                db: "db".into(),
                body: bytes::Bytes::from_static(b"m,h=a v=1 1\nm,h=b v=2 2"),
                precision: line_protocol::Precision::Nanosecond,
                accept_partial: true,
                no_sync: false,
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(store.tripped.load(Ordering::Acquire)
            && catalog.state().persisted_wal_seq("n") >= 1)
        {
            assert!(Instant::now() < deadline, "never persisted");
            let _ = catalog.sync().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the retry run.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let state = catalog.sync().await.unwrap();
        let db = state.db("db").unwrap();
        let table = db.table("m").unwrap();
        assert_eq!(
            state.table_files(db.id, table.id).unwrap().len(),
            1,
            "registered once"
        );
        let objects: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
            .await
            .unwrap();
        let parquet = objects
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet"))
            .count();
        assert_eq!(parquet, 1, "no orphan file: {objects:?}");
        let wal = objects
            .iter()
            .filter(|m| m.location.as_ref().starts_with("wal/"))
            .count();
        assert_eq!(wal, 0, "the persisted WAL file was deleted");
    }
}
