//! Adopting the WAL of an ingester that died: the acknowledged writes in
//! the WAL of a node that is gone (killed, or scaled down without
//! persisting) would wait for a process with its node id that may never
//! come. Each running ingester looks for such WAL directories; one that
//! takes the dead node's lease (the same lease a replacement pod takes, so
//! only one process ever acts for a node id) replays that WAL into a
//! buffer of its own, persists it to Parquet under the dead node's id,
//! deletes the WAL and lets the lease go.
//!
//! ```text
//!  every --orphan-wal-check-interval:
//!    registry: ingest nodes not running, last heartbeat older than --adopt-orphan-wal-after
//!      with WAL files ─▶ take lease node-<id> (refused while anyone holds it)
//!        ─▶ Ingester::start(node id <id>) replays its WAL ─▶ drain (persist, delete WAL)
//!        ─▶ release the lease (a returning pod takes it at once)
//! ```

use std::sync::Arc;
use std::time::Duration;

use buffer::Buffer;
use catalog::Catalog;
use wal::WalLocation;

use crate::{Ingester, IngesterConfig};

/// When to adopt a dead node's WAL.
#[derive(Debug, Clone, Copy)]
pub struct AdoptConfig {
    /// How often to look.
    pub interval: Duration,
    /// How long a node must have been silent (its last heartbeat) first,
    /// so that a pod being restarted gets its own WAL back.
    pub after: Duration,
    /// The buffer's time chunks (`--gen1-duration`).
    pub chunk: Duration,
}

/// Runs the adoption loop of this ingester in the background.
pub fn spawn(
    template: IngesterConfig,
    node: &server::Node,
    catalog: Arc<Catalog>,
    config: AdoptConfig,
) {
    let (registry, own_id) = (node.registry().clone(), node.id().to_string());
    let (store, prefix, timing) = (
        Arc::clone(node.store()),
        node.prefix().clone(),
        node.timing(),
    );
    let holder = node.holder().clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(config.interval).await;
            let Ok(nodes) = registry.nodes().await else {
                continue;
            };
            let now = catalog::now_ns();
            let silent_ns = i64::try_from(config.after.as_nanos()).unwrap_or(i64::MAX);
            for n in nodes {
                let id = n.holder.node_id.clone();
                let silent_since = n.heartbeat_at_ns.unwrap_or(n.claimed_at_ns);
                if id == own_id
                    || n.state == cluster::NodeState::Running
                    || !n.holder.roles.iter().any(|r| r == "ingest")
                    || now.saturating_sub(silent_since) < silent_ns
                {
                    continue;
                }
                let location = WalLocation::new(Arc::clone(&store), &prefix, &id);
                if location.list().await.map_or(true, |s| s.is_empty()) {
                    continue;
                }
                let acting = cluster::Holder {
                    instance_id: uuid::Uuid::new_v4(),
                    node_id: id.clone(),
                    roles: vec!["ingest".to_string()],
                    started_at_ns: catalog::now_ns(),
                    ..holder.clone()
                };
                let lease_name = cluster::node_lease_name(&id);
                let taken = tokio::time::timeout(
                    timing.timeout * 2,
                    cluster::Lease::acquire(
                        Arc::clone(&store),
                        &prefix,
                        &lease_name,
                        acting.clone(),
                        timing,
                        cluster::Contention::Refuse,
                        server::fence_hook(&catalog, &lease_name, &acting),
                    ),
                )
                .await;
                let lease = match taken {
                    Ok(Ok(lease)) => lease,
                    Ok(Err(e)) => {
                        tracing::debug!(node_id = %id, error = %e, "not adopting the WAL: the node id is held");
                        continue;
                    }
                    Err(_) => continue,
                };
                tracing::warn!(node_id = %id, epoch = lease.epoch(), "adopting the WAL of a node that is gone");
                adopt(&template, &catalog, &id, &lease, config.chunk).await;
                lease.release().await;
            }
        }
    });
}

/// Replays node `id`'s WAL under `lease`, persists it and deletes it.
async fn adopt(
    template: &IngesterConfig,
    catalog: &Arc<Catalog>,
    id: &str,
    lease: &Arc<cluster::Lease>,
    chunk: Duration,
) {
    let config = IngesterConfig {
        node_id: id.to_string(),
        lease: Some(Arc::clone(lease)),
        ..template.clone()
    };
    let buffer = Arc::new(Buffer::with_chunk_duration(chunk));
    match Ingester::start(config, Arc::clone(catalog), buffer, Box::new(|_| {})).await {
        Ok(adopted) => {
            if adopted.drain(Duration::from_secs(120)).await {
                tracing::warn!(node_id = %id, "adopted WAL persisted and deleted");
            }
        }
        Err(e) => {
            tracing::warn!(node_id = %id, error = %e, "adopting the WAL failed; trying again later")
        }
    }
}
