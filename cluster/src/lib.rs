//! Cluster membership on the object store: who is running, and who may act.
//!
//! ```text
//!  {prefix}/catalog/leases/{name}/
//!     {epoch:020}.claim   created with PutMode::Create: the holder of epoch E
//!     {epoch:020}.beat    rewritten by that holder every --node-heartbeat-interval
//!     {epoch:020}.stop    created by POST /api/v3/enterprise/configure/node/stop
//!
//!  node-{node_id}   every process, exclusive: one live process per node id
//!  compactor        the one active compactor of the cluster
//! ```
//!
//! Every process takes the lease of its node id ([`Lease::acquire`]), which
//! is also its entry in the node registry: the claim says who it is (role,
//! advertised address, start time) and the beat that it is alive.
//! `system.nodes` lists them ([`nodes::list`]). Two ingesters with one node id
//! would write one WAL directory and delete each other's files, so the
//! second refuses to start while the first is alive.
//!
//! Only conditional creates are needed (the local file store has no
//! compare-and-swap), and no clocks are compared: a contender takes a lease
//! over only after it has watched the holder's beat stay unchanged for the
//! whole lease timeout on its own monotonic clock, while a holder stops
//! acting half a timeout after its last successful renewal. So a holder
//! has stopped before anyone can take over, however far apart the clocks
//! of the two machines are. Fencing of the catalog writes that must not
//! come from a former holder is the catalog's (`CatalogOp::TakeLease`).

pub mod lease;
pub mod nodes;

pub use lease::{Contention, Holder, Lease, LeaseError, LeaseTiming};
pub use nodes::{NodeState, NodeStatus, Registry};

/// The lease name of a node id.
pub fn node_lease_name(node_id: &str) -> String {
    format!("node-{node_id}")
}

/// The lease of the cluster's active compactor.
pub const COMPACTOR_LEASE: &str = "compactor";

/// Checks a node id: it names a directory on the object store, so it is
/// 1–63 characters of ASCII letters, digits, `.`, `_` and `-`, starting with
/// a letter or digit (a Kubernetes pod name always is).
pub fn validate_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid node id '{id}': use 1-63 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}
