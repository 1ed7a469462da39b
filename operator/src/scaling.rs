//! Autoscaling in the cluster reconcile: for each role whose spec asks the
//! operator to scale it, read the pods' load (`measure`), decide the count
//! (`autoscale::decide`), report the decision in the status and an Event
//! when the count changes. The workloads are then applied with that count.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::autoscale::{self, Behavior};
use crate::crd::{AutoscalingMode, AutoscalingSpec, InflowCluster, ScalingStatus};
use crate::measure::{self, PodTarget};
use crate::reconcile::Context;
use crate::workloads::{self, PORT, Role};

/// The autoscaling spec of `role`, when the operator scales it.
pub fn operator_scaled(cluster: &InflowCluster, role: Role) -> Option<&AutoscalingSpec> {
    let spec = match role {
        Role::Ingester => &cluster.spec.ingesters,
        Role::Querier => &cluster.spec.queriers,
        Role::Compactor => return None,
    };
    spec.autoscaling
        .as_ref()
        .filter(|a| a.mode == AutoscalingMode::Operator)
}

/// The running pods of `role` and their addresses.
async fn pod_targets(
    ctx: &Context,
    cluster: &InflowCluster,
    role: Role,
    namespace: &str,
) -> Result<Vec<PodTarget>, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = workloads::labels(cluster, role)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let status = p.status?;
            (status.phase.as_deref() == Some("Running")).then_some(())?;
            Some(PodTarget {
                name: p.metadata.name?,
                address: format!("{}:{PORT}", status.pod_ip?),
            })
        })
        .collect())
}

/// How often an autoscaled cluster is reconciled at least.
pub const DECISION_PERIOD: std::time::Duration = std::time::Duration::from_secs(15);

/// Decides the count of each operator-scaled role; returns the decisions
/// by role name. A role whose load cannot be read keeps its count, and
/// says why.
pub async fn decide_roles(
    cluster: &InflowCluster,
    ctx: &Context,
    namespace: &str,
) -> BTreeMap<String, ScalingStatus> {
    let mut out = BTreeMap::new();
    let previous = cluster
        .status
        .as_ref()
        .map(|s| s.autoscaling.clone())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for role in [Role::Ingester, Role::Querier] {
        let Some(spec) = operator_scaled(cluster, role) else {
            continue;
        };
        let before = previous.get(role.name());
        if let Some(b) = before.filter(|b| now - b.decided_at < 1) {
            out.insert(role.name().to_string(), b.clone());
            continue;
        }
        let current = before
            .map(|s| s.replicas)
            .unwrap_or_else(|| role.replicas(cluster))
            .clamp(spec.min_replicas.max(1), spec.max_replicas.max(1));
        let mut status = ScalingStatus {
            decided_at: now,
            replicas: current,
            recommended: current,
            last_scale_time: before.and_then(|b| b.last_scale_time.clone()),
            recommendations: before
                .map(|b| b.recommendations.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        let behavior = match Behavior::of(spec) {
            Ok(b) => b,
            Err(e) => {
                status.reason = format!("invalid stabilization window {e}");
                out.insert(role.name().to_string(), status);
                continue;
            }
        };
        let loads = match &spec.prometheus {
            Some(p) => {
                let selector = p.selector.clone().unwrap_or_else(|| {
                    format!(
                        "namespace=\"{namespace}\",pod=~\"{}-{}-.*\"",
                        cluster.metadata.name.as_deref().unwrap_or_default(),
                        role.name()
                    )
                });
                let window = p.rate_window.as_deref().unwrap_or("1m");
                measure::from_prometheus(&ctx.http, &p.url, &selector, window, current as usize)
                    .await
            }
            None => match pod_targets(ctx, cluster, role, namespace).await {
                Ok(targets) => {
                    let mut loads = measure::from_pods(&ctx.http, &ctx.sampler, &targets).await;
                    loads.resize(loads.len().max(current as usize), None);
                    Ok(loads)
                }
                Err(e) => Err(format!("listing the {} pods: {e}", role.name())),
            },
        };
        let loads = match loads {
            Ok(l) => l,
            Err(e) => {
                status.reason = format!("the load could not be read ({e}): the count stays");
                out.insert(role.name().to_string(), status);
                continue;
            }
        };
        let decision = autoscale::decide(
            spec,
            behavior,
            current,
            &loads,
            &status.recommendations,
            now,
        );
        if decision.replicas != current {
            status.last_scale_time = Some(crate::reconcile::now_rfc3339());
            let note = format!("{}: {}", role.name(), decision.reason);
            // Events of one reason fold into a series: up and down differ.
            let reason = if decision.replicas > current {
                "ScaledUp"
            } else {
                "ScaledDown"
            };
            ctx.event(cluster, false, reason, note).await;
        }
        status.replicas = decision.replicas;
        status.recommended = decision.recommended;
        status.metric = decision.metric.map(|(m, ..)| m.name().to_string());
        status.observed = decision
            .metric
            .map(|(_, mean, _)| (mean * 1000.0).round() / 1000.0);
        status.target = decision.metric.map(|(.., target)| target);
        status.reason = decision.reason;
        status.recommendations = decision.history;
        out.insert(role.name().to_string(), status);
    }
    out
}

/// `cluster` with the decided counts as its roles' replicas.
pub fn with_counts(
    cluster: &InflowCluster,
    decisions: &BTreeMap<String, ScalingStatus>,
) -> InflowCluster {
    let mut scaled = cluster.clone();
    if let Some(d) = decisions.get(Role::Ingester.name()) {
        scaled.spec.ingesters.replicas = Some(d.replicas);
    }
    if let Some(d) = decisions.get(Role::Querier.name()) {
        scaled.spec.queriers.replicas = Some(d.replicas);
    }
    scaled
}
