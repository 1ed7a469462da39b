//! The node registry: the node-id leases, read as a list of processes.

use object_store::ObjectStore;
use object_store::path::Path;

use crate::lease::{self, Holder, LeaseError, LeaseTiming};

/// What the registry says of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Its heartbeat is recent.
    Running,
    /// It released its lease on shutdown, or was marked stopped.
    Stopped,
    /// Its last heartbeat is older than the lease timeout (killed, or cut
    /// off from the object store): a replacement may take its id.
    Unresponsive,
}

impl NodeState {
    /// The name `system.nodes` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeState::Running => "running",
            NodeState::Stopped => "stopped",
            NodeState::Unresponsive => "unresponsive",
        }
    }
}

/// One registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Who it is.
    pub holder: Holder,
    /// Its lease epoch (how many processes have held this node id).
    pub epoch: u64,
    /// When its lease was taken, in ns since the epoch.
    pub claimed_at_ns: i64,
    /// Its last heartbeat, in ns since the epoch (by its own clock).
    pub heartbeat_at_ns: Option<i64>,
    /// Running, stopped or unresponsive.
    pub state: NodeState,
}

/// The registry of one cluster (a store and prefix), for the processes
/// that read it: `system.nodes`, the node stop API, and a querier naming
/// the ingesters to a misdirected writer.
#[derive(Debug, Clone)]
pub struct Registry {
    store: std::sync::Arc<dyn ObjectStore>,
    prefix: Path,
    timing: LeaseTiming,
}

impl Registry {
    /// The registry under `prefix` on `store`.
    pub fn new(store: std::sync::Arc<dyn ObjectStore>, prefix: Path, timing: LeaseTiming) -> Self {
        Self {
            store,
            prefix,
            timing,
        }
    }

    /// Every registered node (see [`list`]).
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, LeaseError> {
        list(self.store.as_ref(), &self.prefix, self.timing).await
    }

    /// Marks a node stopped (see [`stop`]).
    pub async fn stop(&self, node_id: &str) -> Result<Option<Holder>, LeaseError> {
        stop(self.store.as_ref(), &self.prefix, node_id).await
    }

    /// The running nodes with `role`, as `node_id at address`.
    pub async fn running(&self, role: &str) -> Vec<String> {
        match self.nodes().await {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|n| {
                    n.state == NodeState::Running && n.holder.roles.iter().any(|r| r == role)
                })
                .map(|n| format!("{} at {}", n.holder.node_id, n.holder.address))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the node registry");
                Vec::new()
            }
        }
    }
}

/// Every node that ever took a node-id lease on this store, by node id.
/// The state compares heartbeat times with this machine's clock, so it is
/// for display; leases themselves never compare clocks.
pub async fn list(
    store: &dyn ObjectStore,
    prefix: &Path,
    timing: LeaseTiming,
) -> Result<Vec<NodeStatus>, LeaseError> {
    let root = prefix.clone().join("catalog").join("leases");
    let listing = store.list_with_delimiter(Some(&root)).await?;
    let mut nodes = Vec::new();
    for dir in listing.common_prefixes {
        let Some(name) = dir.filename() else { continue };
        if name.strip_prefix("node-").is_none() {
            continue;
        }
        let observed = lease::observe(store, &dir).await?;
        let (Some(epoch), Some(claim)) = (observed.epoch, observed.claim.clone()) else {
            continue;
        };
        let heartbeat_at_ns = observed.beat.as_ref().map(|b| b.at_ns);
        let timeout_ns = i64::try_from(timing.timeout.as_nanos()).unwrap_or(i64::MAX);
        let last = heartbeat_at_ns.unwrap_or(claim.claimed_at_ns);
        let state = if observed.ended() {
            NodeState::Stopped
        } else if lease::now_ns().saturating_sub(last) > timeout_ns {
            NodeState::Unresponsive
        } else {
            NodeState::Running
        };
        nodes.push(NodeStatus {
            holder: claim.holder,
            epoch,
            claimed_at_ns: claim.claimed_at_ns,
            heartbeat_at_ns,
            state,
        });
    }
    nodes.sort_by(|a, b| a.holder.node_id.cmp(&b.holder.node_id));
    Ok(nodes)
}

/// Marks node `node_id` stopped (POST `/api/v3/enterprise/configure/node/stop`).
/// Use it once the process is gone: a replacement may then take the node id
/// without waiting for the lease timeout. A process that still runs stops at
/// its next heartbeat. Returns the node, or `None` if no such node exists.
pub async fn stop(
    store: &dyn ObjectStore,
    prefix: &Path,
    node_id: &str,
) -> Result<Option<Holder>, LeaseError> {
    lease::stop(store, prefix, &crate::node_lease_name(node_id)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::time::Duration;

    use object_store::memory::InMemory;
    use uuid::Uuid;

    use super::*;
    use crate::{Contention, Lease};

    #[tokio::test]
    async fn lists_running_stopped_and_unresponsive_nodes() {
        let timing = LeaseTiming {
            heartbeat: Duration::from_millis(20),
            timeout: Duration::from_millis(200),
        };
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut leases = Vec::new();
        for (id, role) in [("ing-0", "ingest"), ("q-0", "query"), ("q-1", "query")] {
            let holder = Holder {
                instance_id: Uuid::new_v4(),
                node_id: id.into(),
                roles: vec![role.into()],
                address: format!("{id}:8181"),
                started_at_ns: 1,
                pid: 7,
                hostname: id.into(),
                core_count: 2,
            };
            let name = crate::node_lease_name(id);
            leases.push(
                Lease::acquire(
                    Arc::clone(&store),
                    &Path::default(),
                    &name,
                    holder,
                    timing,
                    Contention::Refuse,
                    None,
                )
                .await
                .unwrap(),
            );
        }
        leases[1].release().await;
        let killed = leases.pop().unwrap();
        drop(killed);
        tokio::time::sleep(timing.timeout + Duration::from_millis(100)).await;
        let nodes = list(store.as_ref(), &Path::default(), timing)
            .await
            .unwrap();
        let seen: Vec<_> = nodes
            .iter()
            .map(|n| (n.holder.node_id.as_str(), n.state))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("ing-0", NodeState::Running),
                ("q-0", NodeState::Stopped),
                ("q-1", NodeState::Unresponsive)
            ]
        );
        assert_eq!(nodes[0].holder.address, "ing-0:8181");
        assert!(
            stop(store.as_ref(), &Path::default(), "missing")
                .await
                .unwrap()
                .is_none()
        );
    }
}
