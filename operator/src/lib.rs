//! Inflow's Kubernetes operator: the custom resources of group
//! `inflow.dev` and the controllers that reconcile them (the binary
//! `inflow-operator` runs them).
//!
//! ```text
//!  InflowCluster ───watch──▶ reconcile ──▶ its workloads (server-side apply), or
//!                                         /health of an external server (status)
//!  Database, Token,
//!  Trigger ────────watch──▶ reconcile ──▶ the cluster's management API
//!        ▲                       │           (its ingester Service, or spec.external.url)
//!        └── status, conditions ◀┘
//! ```

pub mod api;
pub mod autoscale;
pub mod backup;
pub mod crd;
pub mod lease;
pub mod measure;
pub mod metrics;
pub mod reconcile;
pub mod scaling;
pub mod trigger;
pub mod workloads;
