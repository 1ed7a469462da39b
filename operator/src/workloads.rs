//! The Kubernetes objects of a deployed `InflowCluster`, built as plain
//! values (unit-testable) and applied with server-side apply, each owned
//! by the cluster so that deleting it removes them.
//!
//! ```text
//!  <name>-ingester            StatefulSet (pod name = --node-id: a replaced pod replays its WAL)
//!  <name>-ingester-headless   headless Service of the StatefulSet
//!  <name>-ingester            Service :8181 (writers, Telegraf, the configure API)
//!  <name>-querier             Deployment + Service :8181 (queries, Flight)
//!  <name>-compactor           Deployment, one replica
//!  <name>-ingester/-querier   PodDisruptionBudgets (one pod at a time)
//!  <name>-data                PersistentVolumeClaim, for the file object store
//!  <name>-plugins             PersistentVolumeClaim, for the processing engine on S3
//!  <name>-ingester/-querier   HorizontalPodAutoscalers, for `autoscaling.mode: hpa`
//!  <name>-admin-token         Secret, generated once unless the spec names one
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, Lifecycle,
    LifecycleHandler, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, SecretKeySelector,
    SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{InflowCluster, ObjectStoreSpec, PackageManager, RoleSpec, SecretKeyRef};

/// The image a cluster runs when its spec names none.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/inflow-dev/inflow:", env!("CARGO_PKG_VERSION"));
/// The HTTP (and Flight) port of every role.
pub const PORT: i32 = 8181;
const TOKEN_MOUNT: &str = "/etc/inflow/admin-token";
/// Where the file object store's claim is mounted.
pub const DATA_MOUNT: &str = "/var/lib/inflow";
/// The plugins' own claim's mount (on S3; on the file store they live on
/// the data claim).
const PLUGINS_MOUNT: &str = "/var/lib/inflow-plugins";

/// The roles and their binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `inflow-ingester`.
    Ingester,
    /// `inflow-querier`.
    Querier,
    /// `inflow-compactor`.
    Compactor,
}

impl Role {
    /// The role's name in object names and labels.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingester => "ingester",
            Role::Querier => "querier",
            Role::Compactor => "compactor",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Role::Ingester => "inflow-ingester",
            Role::Querier => "inflow-querier",
            Role::Compactor => "inflow-compactor",
        }
    }

    fn spec(self, cluster: &InflowCluster) -> &RoleSpec {
        match self {
            Role::Ingester => &cluster.spec.ingesters,
            Role::Querier => &cluster.spec.queriers,
            Role::Compactor => &cluster.spec.compactor,
        }
    }

    /// The replicas the spec asks for (1 by default).
    pub fn replicas(self, cluster: &InflowCluster) -> i32 {
        self.spec(cluster).replicas.unwrap_or(1)
    }
}

/// The admin token's Secret: the spec's, or `<name>-admin-token`.
pub fn admin_secret(cluster: &InflowCluster) -> SecretKeyRef {
    cluster
        .spec
        .admin_token_secret_ref
        .clone()
        .unwrap_or_else(|| SecretKeyRef {
            name: format!("{}-admin-token", name_of(cluster)),
            key: None,
        })
}

fn engine_enabled(cluster: &InflowCluster) -> bool {
    cluster
        .spec
        .processing_engine
        .as_ref()
        .is_some_and(|e| e.enabled)
}

fn on_s3(cluster: &InflowCluster) -> bool {
    matches!(cluster.spec.object_store, Some(ObjectStoreSpec::S3(_)))
}

/// The engine's flags for a role (none for the compactor, or when off):
/// a plugin directory and virtual environment every pod shares.
fn engine_args(cluster: &InflowCluster, role: Role) -> Vec<String> {
    let Some(engine) = cluster
        .spec
        .processing_engine
        .as_ref()
        .filter(|e| e.enabled)
    else {
        return Vec::new();
    };
    if role == Role::Compactor {
        return Vec::new();
    }
    let root = if on_s3(cluster) {
        PLUGINS_MOUNT
    } else {
        DATA_MOUNT
    };
    let manager = match engine.package_manager {
        PackageManager::Pip => "pip",
        PackageManager::Uv => "uv",
        PackageManager::Disabled => "disabled",
    };
    vec![
        format!("--plugin-dir={root}/plugins"),
        format!("--virtual-env-location={root}/python-venv"),
        format!("--package-manager={manager}"),
    ]
}

fn name_of(cluster: &InflowCluster) -> String {
    cluster.metadata.name.clone().unwrap_or_default()
}

/// The labels of a role's pods.
pub fn labels(cluster: &InflowCluster, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "inflow".to_string()),
        ("app.kubernetes.io/instance".to_string(), name_of(cluster)),
        (
            "app.kubernetes.io/component".to_string(),
            role.name().to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "inflow-operator".to_string(),
        ),
    ])
}

/// Metadata of an object owned by the cluster.
pub fn owned_meta(
    cluster: &InflowCluster,
    name: &str,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    let owner = OwnerReference {
        api_version: "inflow.dev/v1alpha1".to_string(),
        kind: "InflowCluster".to_string(),
        name: name_of(cluster),
        uid: cluster.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: cluster.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: Some(vec![owner]),
        ..Default::default()
    }
}

/// The `INFLOW_*` environment that points a process at the cluster's
/// object store (every role, and the backup Jobs).
pub fn store_env(cluster: &InflowCluster) -> Vec<EnvVar> {
    let mut envs = Vec::new();
    match &cluster.spec.object_store {
        Some(ObjectStoreSpec::S3(s3)) => {
            envs.push(env("INFLOW_OBJECT_STORE", "s3"));
            envs.push(env("INFLOW_BUCKET", &s3.bucket));
            if let Some(e) = &s3.endpoint {
                envs.push(env("INFLOW_AWS_ENDPOINT", e));
                if e.starts_with("http://") {
                    envs.push(env("INFLOW_AWS_ALLOW_HTTP", "true"));
                }
            }
            if let Some(r) = &s3.region {
                envs.push(env("INFLOW_AWS_REGION", r));
            }
            if let Some(s) = &s3.credentials_secret_name {
                envs.push(secret_env(
                    "INFLOW_AWS_ACCESS_KEY_ID",
                    s,
                    "AWS_ACCESS_KEY_ID",
                ));
                envs.push(secret_env(
                    "INFLOW_AWS_SECRET_ACCESS_KEY",
                    s,
                    "AWS_SECRET_ACCESS_KEY",
                ));
            }
        }
        _ => {
            envs.push(env("INFLOW_OBJECT_STORE", "file"));
            envs.push(env("INFLOW_DATA_DIR", DATA_MOUNT));
        }
    }
    envs
}

/// The data claim's volume and its mount, for the file object store.
pub fn data_volume(cluster: &InflowCluster) -> Option<(Volume, VolumeMount)> {
    if matches!(cluster.spec.object_store, Some(ObjectStoreSpec::S3(_))) {
        return None;
    }
    Some((
        Volume {
            name: "data".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{}-data", name_of(cluster)),
                read_only: None,
            }),
            ..Default::default()
        },
        VolumeMount {
            name: "data".to_string(),
            mount_path: DATA_MOUNT.to_string(),
            ..Default::default()
        },
    ))
}

/// The image the cluster's pods run.
pub fn image(cluster: &InflowCluster) -> String {
    cluster
        .spec
        .image
        .clone()
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

/// An `EnvVar` with a value.
pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

/// An `EnvVar` from a key of a Secret.
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    }
}

/// The container of a role: its binary, flags and `INFLOW_*` environment.
pub fn container(cluster: &InflowCluster, role: Role) -> Container {
    let spec = role.spec(cluster);
    let secret = admin_secret(cluster);
    let mut args = vec![
        format!("--http-bind=0.0.0.0:{PORT}"),
        format!("--admin-token-file={TOKEN_MOUNT}/{}", secret.key()),
        // Probes and Prometheus reach these without a token.
        "--disable-authz=health,ping,metrics".to_string(),
        "--log-format=json".to_string(),
    ];
    let mut envs = vec![EnvVar {
        name: "POD_NAME".to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".to_string(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }];
    if role == Role::Ingester {
        // The pod's stable name is its node id: a replacement replays its WAL.
        args.push("--node-id=$(POD_NAME)".to_string());
    }
    let mut mounts = vec![VolumeMount {
        name: "admin-token".to_string(),
        mount_path: TOKEN_MOUNT.to_string(),
        read_only: Some(true),
        ..Default::default()
    }];
    envs.extend(store_env(cluster));
    mounts.extend(data_volume(cluster).map(|(_, m)| m));
    if on_s3(cluster) && !engine_args(cluster, role).is_empty() {
        mounts.push(VolumeMount {
            name: "plugins".to_string(),
            mount_path: PLUGINS_MOUNT.to_string(),
            ..Default::default()
        });
    }
    args.extend(engine_args(cluster, role));
    for (k, v) in &spec.env {
        envs.push(env(k, v));
    }
    args.extend(spec.args.iter().cloned());
    let probe = |path: &str, delay: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(PORT),
            ..Default::default()
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(5),
        ..Default::default()
    };
    Container {
        name: role.name().to_string(),
        image: Some(
            cluster
                .spec
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        ),
        command: Some(vec![role.binary().to_string()]),
        args: Some(args),
        env: Some(envs),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: PORT,
            ..Default::default()
        }]),
        // An ingester stops taking writes and persists its buffer before
        // its SIGTERM (`inflow-ingester drain` with the admin token).
        lifecycle: (role == Role::Ingester).then(|| Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        role.binary().to_string(),
                        "drain".to_string(),
                        format!("--token-file={TOKEN_MOUNT}/{}", secret.key()),
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        readiness_probe: Some(probe("/health", 2)),
        liveness_probe: Some(probe("/health", 10)),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

fn pod_template(cluster: &InflowCluster, role: Role) -> PodTemplateSpec {
    let secret = admin_secret(cluster);
    let mut volumes = vec![Volume {
        name: "admin-token".to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }];
    volumes.extend(data_volume(cluster).map(|(v, _)| v));
    if on_s3(cluster) && !engine_args(cluster, role).is_empty() {
        volumes.push(Volume {
            name: "plugins".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{}-plugins", name_of(cluster)),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(cluster, role)),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container(cluster, role)],
            volumes: Some(volumes),
            // An ingester persists its buffer on SIGTERM before it exits
            // (`--shutdown-persist-timeout`, 45 s), so that a pod scaled
            // away leaves no WAL; a querier finishes its running queries.
            termination_grace_period_seconds: Some(match role {
                Role::Ingester => 60,
                _ => 30,
            }),
            ..Default::default()
        }),
    }
}

fn selector(cluster: &InflowCluster, role: Role) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(cluster, role)),
        match_expressions: None,
    }
}

/// The autoscaling spec of `role`, when a HorizontalPodAutoscaler scales it.
fn hpa_scaled(cluster: &InflowCluster, role: Role) -> Option<&crate::crd::AutoscalingSpec> {
    let spec = match role {
        Role::Ingester => &cluster.spec.ingesters,
        Role::Querier => &cluster.spec.queriers,
        Role::Compactor => return None,
    };
    spec.autoscaling
        .as_ref()
        .filter(|a| a.mode == crate::crd::AutoscalingMode::Hpa)
}

/// The replicas the operator sets: none when an HPA owns the count.
fn managed_replicas(cluster: &InflowCluster, role: Role) -> Option<i32> {
    hpa_scaled(cluster, role)
        .is_none()
        .then(|| role.replicas(cluster))
}

/// The HorizontalPodAutoscalers of the roles with `autoscaling.mode: hpa`,
/// on CPU per pod (`targets.cpu` cores, default 1), with the spec's bounds
/// and stabilization windows. The second list names the roles without one
/// (an HPA of theirs left from an earlier spec is deleted).
pub fn autoscalers(cluster: &InflowCluster) -> (Vec<HorizontalPodAutoscaler>, Vec<String>) {
    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, HPAScalingRules, HorizontalPodAutoscalerBehavior,
        HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget, ResourceMetricSource,
    };
    let name = name_of(cluster);
    let (mut hpas, mut absent) = (Vec::new(), Vec::new());
    for role in [Role::Ingester, Role::Querier] {
        let object = format!("{name}-{}", role.name());
        let Some(spec) = hpa_scaled(cluster, role) else {
            absent.push(object);
            continue;
        };
        let millicores = (spec.targets.cpu.unwrap_or(1.0) * 1000.0).round() as i64;
        let window = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| humantime::parse_duration(t).ok())
                .map(|d| HPAScalingRules {
                    stabilization_window_seconds: Some(d.as_secs().min(3600) as i32),
                    ..Default::default()
                })
        };
        hpas.push(HorizontalPodAutoscaler {
            metadata: owned_meta(cluster, &object, labels(cluster, role)),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_string()),
                    kind: match role {
                        Role::Ingester => "StatefulSet",
                        _ => "Deployment",
                    }
                    .to_string(),
                    name: object.clone(),
                },
                min_replicas: Some(spec.min_replicas),
                max_replicas: spec.max_replicas,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".to_string(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".to_string(),
                        target: MetricTarget {
                            type_: "AverageValue".to_string(),
                            average_value: Some(Quantity(format!("{millicores}m"))),
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                }]),
                behavior: Some(HorizontalPodAutoscalerBehavior {
                    scale_up: window(&spec.scale_up_stabilization),
                    scale_down: window(&spec.scale_down_stabilization),
                }),
            },
            status: None,
        });
    }
    (hpas, absent)
}

/// The ingesters' StatefulSet.
pub fn ingester_statefulset(cluster: &InflowCluster) -> StatefulSet {
    let name = name_of(cluster);
    StatefulSet {
        metadata: owned_meta(
            cluster,
            &format!("{name}-ingester"),
            labels(cluster, Role::Ingester),
        ),
        spec: Some(StatefulSetSpec {
            replicas: managed_replicas(cluster, Role::Ingester),
            service_name: Some(format!("{name}-ingester-headless")),
            selector: selector(cluster, Role::Ingester),
            template: pod_template(cluster, Role::Ingester),
            ..Default::default()
        }),
        status: None,
    }
}

/// A Deployment of queriers or of the compactor.
pub fn deployment(cluster: &InflowCluster, role: Role) -> Deployment {
    let name = name_of(cluster);
    Deployment {
        metadata: owned_meta(
            cluster,
            &format!("{name}-{}", role.name()),
            labels(cluster, role),
        ),
        spec: Some(DeploymentSpec {
            replicas: match role {
                Role::Compactor => Some(Role::Compactor.replicas(cluster).min(1)),
                r => managed_replicas(cluster, r),
            },
            selector: selector(cluster, role),
            template: pod_template(cluster, role),
            ..Default::default()
        }),
        status: None,
    }
}

/// The Services: `<name>-ingester`, `<name>-querier`, and the headless one.
pub fn services(cluster: &InflowCluster) -> Vec<Service> {
    let name = name_of(cluster);
    let port = || ServicePort {
        name: Some("http".to_string()),
        port: PORT,
        target_port: Some(IntOrString::Int(PORT)),
        ..Default::default()
    };
    let service = |svc: String, role: Role, headless: bool| Service {
        metadata: owned_meta(cluster, &svc, labels(cluster, role)),
        spec: Some(ServiceSpec {
            selector: Some(labels(cluster, role)),
            ports: Some(vec![port()]),
            cluster_ip: headless.then(|| "None".to_string()),
            ..Default::default()
        }),
        status: None,
    };
    vec![
        service(format!("{name}-ingester"), Role::Ingester, false),
        service(format!("{name}-ingester-headless"), Role::Ingester, true),
        service(format!("{name}-querier"), Role::Querier, false),
    ]
}

/// One PodDisruptionBudget per scaled role: one pod down at a time.
pub fn disruption_budgets(cluster: &InflowCluster) -> Vec<PodDisruptionBudget> {
    let name = name_of(cluster);
    [Role::Ingester, Role::Querier]
        .into_iter()
        .map(|role| PodDisruptionBudget {
            metadata: owned_meta(
                cluster,
                &format!("{name}-{}", role.name()),
                labels(cluster, role),
            ),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(selector(cluster, role)),
                ..Default::default()
            }),
            status: None,
        })
        .collect()
}

/// A claim every pod reads and writes.
fn shared_claim(
    cluster: &InflowCluster,
    suffix: &str,
    size: String,
    storage_class_name: Option<String>,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: owned_meta(
            cluster,
            &format!("{}-{suffix}", name_of(cluster)),
            labels(cluster, Role::Ingester),
        ),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".to_string()]),
            storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// The claim of the file object store (none on S3).
pub fn data_claim(cluster: &InflowCluster) -> Option<PersistentVolumeClaim> {
    let file = match &cluster.spec.object_store {
        Some(ObjectStoreSpec::S3(_)) => return None,
        Some(ObjectStoreSpec::File(f)) => Some(f),
        None => None,
    };
    let size = file
        .and_then(|f| f.size.clone())
        .unwrap_or_else(|| "10Gi".to_string());
    Some(shared_claim(
        cluster,
        "data",
        size,
        file.and_then(|f| f.storage_class_name.clone()),
    ))
}

/// The plugins' claim: on S3 with the processing engine on (on the file
/// store the plugins live on the data claim).
pub fn plugins_claim(cluster: &InflowCluster) -> Option<PersistentVolumeClaim> {
    if !on_s3(cluster) || !engine_enabled(cluster) {
        return None;
    }
    let size = cluster
        .spec
        .processing_engine
        .as_ref()
        .and_then(|e| e.volume_size.clone())
        .unwrap_or_else(|| "1Gi".to_string());
    Some(shared_claim(cluster, "plugins", size, None))
}

/// A new admin token string, in Inflow's format.
pub fn generate_token() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "apiv3_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{InflowClusterSpec, S3Store};

    fn cluster(spec: InflowClusterSpec) -> InflowCluster {
        let mut c = InflowCluster::new("prod", spec);
        c.metadata.namespace = Some("db".to_string());
        c.metadata.uid = Some("u-1".to_string());
        c
    }

    #[test]
    fn the_ingesters_are_a_statefulset_whose_pod_name_is_the_node_id() {
        let c = cluster(InflowClusterSpec {
            ingesters: RoleSpec {
                replicas: Some(3),
                ..Default::default()
            },
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        });
        let sts = ingester_statefulset(&c);
        let spec = sts.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("prod-ingester-headless"));
        let pod = spec.template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        assert!(args.contains(&"--node-id=$(POD_NAME)".to_string()));
        assert_eq!(pod.termination_grace_period_seconds, Some(60));
        let hook = pod.containers[0].lifecycle.as_ref().unwrap();
        assert_eq!(
            hook.pre_stop
                .as_ref()
                .unwrap()
                .exec
                .as_ref()
                .unwrap()
                .command,
            Some(vec![
                "inflow-ingester".to_string(),
                "drain".to_string(),
                "--token-file=/etc/inflow/admin-token/token".to_string(),
            ])
        );
        assert!(args.contains(&"--admin-token-file=/etc/inflow/admin-token/token".to_string()));
        assert_eq!(
            pod.containers[0].command.as_ref().unwrap()[0],
            "inflow-ingester"
        );
        assert_eq!(sts.metadata.owner_references.unwrap()[0].uid, "u-1");
        assert!(data_claim(&c).is_some());
    }

    #[test]
    fn s3_comes_from_the_spec_and_a_secret() {
        let c = cluster(InflowClusterSpec {
            object_store: Some(ObjectStoreSpec::S3(S3Store {
                bucket: "b".to_string(),
                endpoint: Some("http://minio:9000".to_string()),
                region: Some("us-east-1".to_string()),
                credentials_secret_name: Some("s3".to_string()),
            })),
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        });
        let d = deployment(&c, Role::Querier);
        let envs = d.spec.unwrap().template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let get = |n: &str| envs.iter().find(|e| e.name == n).cloned();
        assert_eq!(
            get("INFLOW_OBJECT_STORE").unwrap().value.as_deref(),
            Some("s3")
        );
        assert_eq!(
            get("INFLOW_AWS_ALLOW_HTTP").unwrap().value.as_deref(),
            Some("true")
        );
        let key = get("INFLOW_AWS_SECRET_ACCESS_KEY")
            .unwrap()
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("s3", "AWS_SECRET_ACCESS_KEY")
        );
        assert!(data_claim(&c).is_none());
        assert_eq!(services(&c).len(), 3);
        assert!(generate_token().unwrap().starts_with("apiv3_"));
    }

    #[test]
    fn the_processing_engine_shares_one_plugin_directory() {
        let spec = |store: serde_json::Value| -> InflowClusterSpec {
            serde_json::from_value(serde_json::json!({
                "processingEngine": {"enabled": true, "packageManager": "uv"},
                "objectStore": store,
            }))
            .unwrap()
        };
        let args = |c: &InflowCluster, role: Role| container(c, role).args.unwrap();
        // On the file store: on the data claim every pod mounts.
        let file = cluster(spec(serde_json::json!({"file": {}})));
        for role in [Role::Ingester, Role::Querier] {
            let a = args(&file, role);
            assert!(
                a.contains(&"--plugin-dir=/var/lib/inflow/plugins".to_string()),
                "{a:?}"
            );
            assert!(a.contains(&"--virtual-env-location=/var/lib/inflow/python-venv".to_string()));
            assert!(a.contains(&"--package-manager=uv".to_string()));
        }
        assert!(
            !args(&file, Role::Compactor)
                .iter()
                .any(|a| a.starts_with("--plugin-dir"))
        );
        assert!(plugins_claim(&file).is_none());
        // On S3: a claim of its own.
        let s3 = cluster(spec(serde_json::json!({"s3": {"bucket": "bkt"}})));
        assert!(
            args(&s3, Role::Querier)
                .contains(&"--plugin-dir=/var/lib/inflow-plugins/plugins".to_string())
        );
        let claim = plugins_claim(&s3).unwrap();
        assert_eq!(claim.metadata.name.as_deref(), Some("prod-plugins"));
        let pod = pod_template(&s3, Role::Querier).spec.unwrap();
        assert!(pod.volumes.unwrap().iter().any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == "prod-plugins")
        }));
        // Off by default.
        let off = cluster(serde_json::from_value(serde_json::json!({})).unwrap());
        assert!(
            !args(&off, Role::Ingester)
                .iter()
                .any(|a| a.starts_with("--plugin-dir"))
        );
    }
}
