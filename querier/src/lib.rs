//! The querier: serves queries from its own buffer, which it fills by
//! tailing every ingester's WAL on the object store.
//!
//! ```text
//!  object store wal/{node}/{seq}.wal ──every --replication-interval──▶ WalTailer
//!        (new files, in order, per node)                                  │
//!                                 Buffer ◀── buffer::replay::apply_wal_entry
//!                                   │
//!  /api/v3/query_sql ─▶ QueryEngine ┘
//! ```
//!
//! No RPC to the ingesters is needed: the WAL is the replication stream.
//!
//! When the catalog shows that a node persisted its WAL up to some sequence
//! number, the tailer rebuilds its buffer from the WAL files after the
//! persisted ones and swaps it in: the persisted rows are then read from
//! Parquet. Queries read the buffer before the catalog, so they never miss
//! rows in between (see `query`'s provider).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use buffer::Buffer;
use catalog::Catalog;
use object_store::ObjectStore;
use object_store::path::Path;
use wal::WalLocation;

/// Follows the WAL files of every node.
#[derive(Debug)]
pub struct WalTailer {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    catalog: Arc<Catalog>,
    buffer: Arc<Buffer>,
    /// Per node, the last applied sequence number.
    applied: HashMap<String, u64>,
    /// Per node, the persisted sequence number the buffer was built for.
    persisted: HashMap<String, u64>,
    /// The ingesters' WAL directories, and when `wal/` was last listed for
    /// them. Every ingester records its node lease and roles in the catalog
    /// before its first WAL file, so the catalog names them; `wal/` is
    /// listed only every [`NODE_LISTING_EVERY`], for directories of nodes
    /// the catalog does not name (an older catalog). The listing on every
    /// poll was 4 of the 10 object-store requests a second of an idle querier.
    nodes: Vec<String>,
    nodes_listed: Option<std::time::Instant>,
}

/// How often a querier lists `wal/` for WAL directories the catalog does
/// not name.
pub const NODE_LISTING_EVERY: Duration = Duration::from_secs(30);

impl WalTailer {
    /// A tailer that applies into `buffer`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        catalog: Arc<Catalog>,
        buffer: Arc<Buffer>,
    ) -> Self {
        Self {
            store,
            prefix,
            catalog,
            buffer,
            applied: HashMap::new(),
            persisted: HashMap::new(),
            nodes: Vec::new(),
            nodes_listed: None,
        }
    }

    /// Applies every WAL file not applied yet; returns how many. If a node
    /// persisted since the last poll, rebuilds the buffer first.
    pub async fn poll(&mut self) -> Result<usize, String> {
        let state = self.catalog.state();
        let moved = state
            .persisted_wal()
            .iter()
            .any(|(node, seq)| self.persisted.get(node).copied().unwrap_or(0) < *seq);
        if moved {
            let fresh = Arc::new(
                Buffer::with_chunk_duration(std::time::Duration::from_nanos(
                    self.buffer.chunk_ns().max(1) as u64,
                ))
                .with_caches(Arc::clone(self.buffer.caches())),
            );
            let mut rebuilt = WalTailer {
                store: Arc::clone(&self.store),
                prefix: self.prefix.clone(),
                catalog: Arc::clone(&self.catalog),
                buffer: Arc::clone(&fresh),
                applied: state.persisted_wal().clone().into_iter().collect(),
                persisted: state.persisted_wal().clone().into_iter().collect(),
                nodes: self.nodes.clone(),
                nodes_listed: self.nodes_listed,
            };
            let applied = rebuilt.apply_new().await?;
            drop(rebuilt.buffer);
            let fresh =
                Arc::try_unwrap(fresh).map_err(|_| "rebuilt buffer still shared".to_string())?;
            self.buffer.replace_with(fresh);
            self.applied = rebuilt.applied;
            self.persisted = rebuilt.persisted;
            self.nodes = rebuilt.nodes;
            self.nodes_listed = rebuilt.nodes_listed;
            self.buffer.apply_catalog(&self.catalog.state());
            return Ok(applied);
        }
        let applied = self.apply_new().await?;
        // Deletes drop buffered rows here too.
        self.buffer.apply_catalog(&self.catalog.state());
        Ok(applied)
    }

    async fn apply_new(&mut self) -> Result<usize, String> {
        if self
            .nodes_listed
            .is_none_or(|at| at.elapsed() >= NODE_LISTING_EVERY)
        {
            let dir = self.prefix.clone().join("wal");
            let listing = self
                .store
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|e| e.to_string())?;
            self.nodes = listing
                .common_prefixes
                .iter()
                .filter_map(|d| d.filename().map(str::to_string))
                .collect();
            self.nodes_listed = Some(std::time::Instant::now());
        }
        // Every ingester records its node lease, with its roles, before it
        // writes its first WAL file; and every node that persisted has one.
        let state = self.catalog.state();
        let ingesters = state
            .leases()
            .iter()
            .filter(|(_, l)| l.roles.iter().any(|r| r == "ingest"))
            .filter_map(|(name, _)| name.strip_prefix("node-"));
        for node in ingesters.chain(state.persisted_wal().keys().map(String::as_str)) {
            if !self.nodes.iter().any(|n| n == node) {
                self.nodes.push(node.to_string());
            }
        }
        let mut applied = 0;
        for node in self.nodes.clone() {
            let location = WalLocation::new(Arc::clone(&self.store), &self.prefix, &node);
            let last = self.applied.get(&node).copied().unwrap_or(0);
            let metrics = http_api::cluster_metrics();
            let files = metrics
                .replication_files
                .with_label_values(&[node.as_str()]);
            let result = buffer::replay::apply_files_after(
                &location,
                last,
                &self.catalog,
                &self.buffer,
                |seq| {
                    self.applied.insert(node.clone(), seq);
                    files.inc();
                },
            )
            .await
            .map_err(|e| format!("WAL of node {node}: {e}"))?;
            applied += result.files;
            // How far behind the newest file applied now was; 0 when there
            // was nothing new (caught up).
            let lag = result
                .newest_written_ms
                .map_or(0.0, |ms| (now_ms() - ms).max(0) as f64 / 1e3);
            metrics
                .replication_lag_seconds
                .with_label_values(&[node.as_str()])
                .set(lag);
        }
        metrics_buffer(&self.buffer);
        Ok(applied)
    }

    /// Polls every `interval`, forever.
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.poll().await {
                    tracing::warn!(error = %e, "WAL tailing failed; retrying");
                }
            }
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn metrics_buffer(buffer: &Buffer) {
    http_api::cluster_metrics()
        .buffer_bytes
        .set(i64::try_from(buffer.memory_bytes()).unwrap_or(i64::MAX));
}
