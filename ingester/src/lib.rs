//! The ingester: the write path.
//!
//! ```text
//!  WriteRequest
//!    │ 1. parse lines, convert timestamps        (validation::parse)
//!    │ 2. find missing tables/columns, conflicts (validation::schema_check)
//!    │ 3. one catalog transaction if needed      (catalog::Catalog::ensure)
//!    │ 4. build Arrow rows against that state    (validation::build)
//!    │ 5. queue the accepted lines for the WAL   (wal::Wal, group commit)
//!    ▼
//!  WAL PUT succeeds ─▶ rows applied to the Buffer ─▶ 204
//! ```
//!
//! On start the ingester replays its WAL files that are not persisted yet,
//! in order, through the same steps 1–4, so replayed data equals what was
//! acknowledged. The WAL stores the accepted lines with the request's
//! precision and the time given to lines without a timestamp, which makes
//! the replay exact.
//!
//! Persistence (see [`persist`]) moves the buffer to Parquet after
//! `--wal-snapshot-size` WAL files or past `--buffer-mem-limit`, and then
//! deletes the WAL files it covers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use buffer::Buffer;
use bytes::Bytes;
use catalog::{Catalog, CatalogError};
use object_store::ObjectStore;
use object_store::path::Path;
use services::{WriteError, WriteOutcome, WriteRequest, WriteService};
use validation::WriteBatch;
use wal::{FlushObserver, Wal, WalEntry, WalError, WalLocation};

pub mod adopt;
pub mod persist;
pub use persist::PersistConfig;

/// Why the ingester could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    /// Reading the WAL failed; the message names the file.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The catalog failed during replay.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A replayed entry could not be rebuilt.
    #[error("replaying WAL file {seq}: {reason}")]
    Replay {
        /// The WAL file.
        seq: u64,
        /// What failed.
        reason: String,
    },
}

/// Ingester settings.
#[derive(Debug, Clone)]
pub struct IngesterConfig {
    /// The object store holding the WAL.
    pub store: Arc<dyn ObjectStore>,
    /// `--object-store-prefix`.
    pub prefix: Path,
    /// `--node-id`: names this ingester's WAL directory.
    pub node_id: String,
    /// `--wal-flush-interval`.
    pub wal_flush_interval: Duration,
    /// `--wal-max-batch-size`: flush early once this many bytes are queued.
    pub wal_max_batch_size: usize,
    /// When and how the buffer is persisted.
    pub persist: PersistConfig,
    /// Catalog size limits for writes.
    pub limits: validation::Limits,
    /// The lease on `node_id`, when the process took one: writes are
    /// acknowledged and persists committed only while it is valid.
    pub lease: Option<Arc<cluster::Lease>>,
}

impl IngesterConfig {
    /// The settings the common flags give, over `store`.
    pub fn from_args(
        args: &server::CommonArgs,
        persist: &server::IngestArgs,
        store: Arc<dyn ObjectStore>,
        node: &server::Node,
    ) -> Self {
        Self {
            store,
            prefix: args.prefix(),
            node_id: node.id().to_string(),
            lease: Some(Arc::clone(node.lease())),
            wal_flush_interval: args.wal_flush_interval,
            wal_max_batch_size: persist.wal_max_batch_size,
            persist: PersistConfig {
                wal_snapshot_size: persist.wal_snapshot_size,
                buffer_mem_limit: persist.buffer_mem_limit,
            },
            limits: validation::Limits {
                max_databases: persist.max_databases,
                max_tables_per_database: persist.max_tables_per_database,
                max_columns_per_table: persist.max_columns_per_table,
            },
        }
    }
}

/// The write path of one node.
#[derive(Debug)]
pub struct Ingester {
    /// Where every durable WAL flush goes besides the buffer (the
    /// processing engine), once set.
    flushes: Arc<std::sync::OnceLock<Arc<dyn services::engine::FlushListener>>>,
    catalog: Arc<Catalog>,
    buffer: Arc<Buffer>,
    wal: Wal<WriteBatch>,
    persister: Arc<persist::Persister>,
    limits: validation::Limits,
    /// Delete markers are written one at a time.
    marking: tokio::sync::Mutex<()>,
}

impl Ingester {
    /// Replays this node's WAL into `buffer`, then starts accepting writes.
    pub async fn start(
        config: IngesterConfig,
        catalog: Arc<Catalog>,
        buffer: Arc<Buffer>,
        observe: FlushObserver,
    ) -> Result<Arc<Self>, IngesterError> {
        let location = WalLocation::new(Arc::clone(&config.store), &config.prefix, &config.node_id);
        let started = std::time::Instant::now();
        let persisted = catalog.state().persisted_wal_seq(&config.node_id);
        // Delete markers in the WAL already persisted are not replayed.
        buffer.set_deletes_applied(catalog.state().deletes_marked(&config.node_id));
        // The persister runs during the replay: past --buffer-mem-limit it
        // persists what is replayed so far, so a restart needs no more
        // memory than the limit however much WAL there is.
        let persister = persist::Persister::new(
            &config,
            Arc::clone(&catalog),
            Arc::clone(&buffer),
            location.clone(),
            persisted,
            persisted,
        );
        persister.spawn();
        let (files, rows, next_seq) =
            replay(&location, &catalog, &buffer, persisted, Some(&persister)).await?;
        persister.applied(next_seq - 1);
        tracing::info!(
            files,
            rows,
            next_seq,
            persisted,
            elapsed_ms = started.elapsed().as_millis() as u64,
            node_id = %config.node_id,
            "WAL replayed"
        );
        let trigger = Arc::clone(&persister);
        let apply_buffer = Arc::clone(&buffer);
        let flushes: Arc<std::sync::OnceLock<Arc<dyn services::engine::FlushListener>>> =
            Arc::default();
        let listener = Arc::clone(&flushes);
        // A write is acknowledged only while this process holds its node
        // id: a successor replays the WAL it finds when it takes over, so
        // a former holder's later files would be lost to it.
        let gate = config.lease.clone().map(|lease| -> wal::AckGate {
            Arc::new(move || {
                let lease = Arc::clone(&lease);
                Box::pin(async move {
                    if lease.wait_valid(Duration::from_secs(5)).await {
                        Ok(())
                    } else {
                        Err(format!(
                            "this node could not confirm its lease on its node id ({}), so the write is not acknowledged; retry it",
                            lease.name()
                        ))
                    }
                })
            })
        });
        let wal = Wal::start(
            location,
            next_seq,
            config.wal_flush_interval,
            config.wal_max_batch_size,
            Box::new(move |seq, batches: Vec<WriteBatch>| {
                if let Some(listener) = listener.get() {
                    notify_flush(listener.as_ref(), &batches);
                }
                apply_buffer.apply_file(seq, batches);
                http_api::cluster_metrics()
                    .buffer_bytes
                    .set(i64::try_from(apply_buffer.memory_bytes()).unwrap_or(i64::MAX));
                trigger.applied(seq);
            }),
            observe,
            gate,
        );
        // Deletes made on other nodes reach this buffer with the catalog.
        buffer.apply_catalog(&catalog.state());
        let ingester = Arc::new(Self {
            flushes,
            catalog,
            buffer,
            wal,
            persister,
            limits: config.limits,
            marking: tokio::sync::Mutex::new(()),
        });
        // Predicate deletes made while this node was away, then those other
        // nodes make, get their marker in this node's WAL.
        ingester
            .mark_deletes()
            .await
            .map_err(|e| IngesterError::Replay {
                seq: next_seq,
                reason: format!("marking the predicate deletes in the WAL: {e}"),
            })?;
        // Held weakly: the loop ends with the ingester (an adopted node's
        // ingester goes once its WAL is persisted).
        let watch = Arc::downgrade(&ingester);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(watch) = watch.upgrade() else {
                    return;
                };
                let state = watch.catalog.state();
                watch.buffer.apply_catalog(&state);
                if state.last_tombstone_id() > watch.buffer.deletes_applied()
                    && let Err(e) = watch.mark_deletes().await
                {
                    tracing::warn!(error = %e, "marking predicate deletes in the WAL failed; retrying");
                }
            }
        });
        Ok(ingester)
    }

    /// Writes a delete marker for the catalog's tombstones this node has
    /// not marked yet, and waits until it is durable and applied: the rows
    /// buffered before it that they match are gone, and every write
    /// acknowledged after it stays.
    pub async fn mark_deletes(&self) -> Result<(), WriteError> {
        let _one_at_a_time = self.marking.lock().await;
        let state = self.catalog.state();
        let through = state.last_tombstone_id();
        let applied = self.buffer.deletes_applied();
        if through <= applied {
            return Ok(());
        }
        let marker = validation::DeleteMarker {
            through,
            tombstones: state.tombstones_between(applied, through),
        };
        self.wal
            .write(
                self.wal.arrival(),
                WalEntry::delete_marker(through, catalog::now_ns()),
                WriteBatch::delete_marker(marker),
            )
            .await
            .map_err(|e| match e {
                WalError::ObjectStore(_) => WriteError::Unavailable(format!(
                    "the delete could not be made durable in the WAL: {e}; it is in the catalog and will be applied on retry"
                )),
                WalError::NotLeaseHolder(m) => WriteError::Unavailable(m),
                _ => WriteError::Internal(e.to_string()),
            })
    }
}

impl Ingester {
    /// Persists the whole buffer to Parquet and waits for it (at most
    /// `max_wait`): on a clean shutdown, after the last write was answered,
    /// so that the node's WAL is empty when it goes. Returns whether it
    /// finished in time.
    pub async fn drain(&self, max_wait: Duration) -> bool {
        let started = std::time::Instant::now();
        let done = self.persister.drain(max_wait).await;
        if done {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "buffer persisted for shutdown; the WAL is empty"
            );
        } else {
            tracing::warn!(
                "the buffer was not persisted within {max_wait:?}; its WAL stays for the next process with this node id"
            );
        }
        done
    }

    /// Hands every WAL flush from now on, once durable, to `listener` (the
    /// processing engine's WAL triggers); set once.
    pub fn set_flush_listener(&self, listener: Arc<dyn services::engine::FlushListener>) {
        if self.flushes.set(listener).is_err() {
            tracing::warn!("the WAL flush listener was already set");
        }
    }
}

/// One flush's rows, per database (the writes of a flush to one database
/// reach a listener together).
fn notify_flush(listener: &dyn services::engine::FlushListener, batches: &[WriteBatch]) {
    let mut by_db: Vec<(u32, Vec<(u32, arrow::record_batch::RecordBatch)>)> = Vec::new();
    for b in batches.iter().filter(|b| b.deletes.is_none()) {
        let at = match by_db.iter().position(|(db, _)| *db == b.db_id) {
            Some(i) => i,
            None => {
                by_db.push((b.db_id, Vec::new()));
                by_db.len() - 1
            }
        };
        by_db[at].1.extend(b.tables.iter().cloned());
    }
    for (db_id, tables) in by_db {
        listener.flushed(db_id, &tables);
    }
}

/// Replays the WAL files at `location` after `persisted` into `buffer`, and
/// deletes those up to `persisted` (left by a persist that stopped before
/// its cleanup). With `persister`, each file replayed is reported to it,
/// and the replay waits while the buffer is past its limit, so that it
/// persists as it goes. Returns the number of files replayed and rows, and
/// the next sequence number to write: after every file and every persisted
/// sequence, so a number is never reused.
pub(crate) async fn replay(
    location: &WalLocation,
    catalog: &Catalog,
    buffer: &Buffer,
    persisted: u64,
    persister: Option<&persist::Persister>,
) -> Result<(usize, usize, u64), IngesterError> {
    let listed = location.list_with_times().await?;
    // The caches the catalog defines exist before the rows that feed them.
    if listed.iter().any(|&(seq, _)| seq > persisted) {
        buffer.caches().sync(&catalog.state());
    }
    let (mut files, mut rows) = (0, 0);
    for &(seq, _) in listed.iter().filter(|(s, _)| *s > persisted) {
        let file = location.read(seq).await?;
        for entry in &file.entries {
            rows += buffer::replay::apply_wal_entry(catalog, buffer, seq, entry)
                .await
                .map_err(|source| IngesterError::Replay {
                    seq,
                    reason: source.to_string(),
                })?;
        }
        files += 1;
        if let Some(p) = persister {
            p.applied(seq);
            p.wait_below_limit().await;
        }
    }
    for &(seq, _) in listed.iter().filter(|(s, _)| *s <= persisted) {
        location.delete(seq).await?;
    }
    let last = listed.last().map_or(0, |(s, _)| *s).max(persisted);
    Ok((files, rows, last + 1))
}

fn catalog_error(e: CatalogError) -> WriteError {
    match e {
        CatalogError::ObjectStore(_) | CatalogError::TooMuchContention(_) => {
            WriteError::Unavailable(e.to_string())
        }
        _ => WriteError::Internal(e.to_string()),
    }
}

#[async_trait]
impl WriteService for Ingester {
    fn catalog_changed(&self) {
        self.buffer.apply_catalog(&self.catalog.state());
    }

    async fn apply_deletes(&self) -> Result<(), WriteError> {
        self.mark_deletes().await
    }

    async fn drain(&self, max_wait: Duration) -> bool {
        Ingester::drain(self, max_wait).await
    }

    async fn write_lp(&self, req: WriteRequest) -> Result<WriteOutcome, WriteError> {
        catalog::validate_db_name(&req.db).map_err(WriteError::InvalidDatabaseName)?;
        // Backpressure: while persistence is behind, writers wait (before
        // parsing, so waiting requests hold only their bodies).
        // Briefly: a client's timeout is often 5 or 10 s, and a 503 with
        // Retry-After tells it what to do.
        if !self.persister.wait_for_room(Duration::from_secs(3)).await {
            return Err(WriteError::Unavailable(
                "the write buffer is full because persistence to the object store is behind; retry later".into(),
            ));
        }
        // On its way to the WAL until queued (or rejected): the WAL flushes
        // early only when no write is.
        let arrival = self.wal.arrival();
        let default_time_ns = catalog::now_ns();
        let state = self.catalog.state();
        let internal = |e: validation::BuildError| WriteError::Internal(e.to_string());
        // One pass when the catalog already knows every column; otherwise
        // the two-phase path that may change the catalog.
        let known = validation::parse_and_build_known(
            &state,
            &req.db,
            &req.body,
            req.precision,
            default_time_ns,
        )
        .map_err(internal)?;
        let (built, rejected) = match known {
            Some(x) => x,
            None => {
                self.build_with_catalog_changes(&req, state, default_time_ns)
                    .await?
            }
        };
        if built.batch.rows == 0 || (!req.accept_partial && !rejected.is_empty()) {
            return Err(WriteError::Rejected(rejected));
        }
        let lines_written = built.batch.rows;
        let entry = WalEntry {
            db: req.db,
            precision: req.precision.code(),
            default_time_ns,
            lines: match built.accepted {
                Some(lines) => Bytes::from(lines),
                None => req.body.clone(),
            },
        };
        let result = if req.no_sync {
            self.wal.write_no_sync(arrival, entry, built.batch).await
        } else {
            self.wal.write(arrival, entry, built.batch).await
        };
        result.map_err(|e| match e {
            WalError::ObjectStore(_) => WriteError::Unavailable(format!(
                "the write could not be made durable and was not applied: {e}; retry it"
            )),
            WalError::NotLeaseHolder(m) => WriteError::Unavailable(m),
            _ => WriteError::Internal(e.to_string()),
        })?;
        Ok(WriteOutcome {
            lines_written,
            rejected,
        })
    }
}

impl Ingester {
    /// The two-phase write path: parse everything, find what the catalog
    /// lacks, change the catalog once, then build against the new state.
    async fn build_with_catalog_changes(
        &self,
        req: &WriteRequest,
        state: Arc<catalog::CatalogState>,
        default_time_ns: i64,
    ) -> Result<(validation::Built, Vec<validation::RejectedLine>), WriteError> {
        let mut parsed = validation::parse(&req.body, req.precision);
        if !req.accept_partial && !parsed.rejected.is_empty() {
            return Err(WriteError::Rejected(sorted(parsed.rejected)));
        }
        let change = validation::schema_check(&state, &req.db, &mut parsed, &self.limits);
        if parsed.good.is_empty() || (!req.accept_partial && !parsed.rejected.is_empty()) {
            return Err(WriteError::Rejected(sorted(parsed.rejected)));
        }
        let state = if change.tables.is_empty() && state.db(&req.db).is_some() {
            state
        } else {
            self.catalog.ensure(&change).await.map_err(catalog_error)?
        };
        let built = validation::build(&state, &req.db, &mut parsed, default_time_ns)
            .map_err(|e| WriteError::Internal(e.to_string()))?;
        Ok((built, sorted(parsed.rejected)))
    }
}

fn sorted(mut r: Vec<validation::RejectedLine>) -> Vec<validation::RejectedLine> {
    r.sort_by_key(|l| l.line_number);
    r
}
