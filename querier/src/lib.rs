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
}

impl WalTailer {
    /// A tailer that applies into `buffer`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, catalog: Arc<Catalog>, buffer: Arc<Buffer>) -> Self {
        Self {
            store,
            prefix,
            catalog,
            buffer,
            applied: HashMap::new(),
        }
    }

    /// Applies every WAL file not applied yet; returns how many.
    pub async fn poll(&mut self) -> Result<usize, String> {
        let dir = self.prefix.clone().join("wal");
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| e.to_string())?;
        let mut applied = 0;
        for node_dir in listing.common_prefixes {
            let Some(node) = node_dir.filename().map(str::to_string) else {
                continue;
            };
            let location = WalLocation::new(Arc::clone(&self.store), &self.prefix, &node);
            let last = self.applied.get(&node).copied().unwrap_or(0);
            for seq in location.list().await.map_err(|e| e.to_string())? {
                if seq <= last {
                    continue;
                }
                let file = location.read(seq).await.map_err(|e| e.to_string())?;
                for entry in &file.entries {
                    buffer::replay::apply_wal_entry(&self.catalog, &self.buffer, seq, entry)
                        .await
                        .map_err(|e| format!("WAL {node}/{seq}: {e}"))?;
                }
                self.applied.insert(node.clone(), seq);
                applied += 1;
            }
        }
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
