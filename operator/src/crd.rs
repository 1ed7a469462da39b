//! The custom resources of group `inflow.dev`, version `v1alpha1`, and
//! their OpenAPI schemas (generated from these types: `inflow-operator crd`).
//!
//! Validation lives in the schemas where the API server can apply it
//! (patterns, enums, minimums), so a bad spec is refused at `kubectl apply`;
//! what a schema cannot say is checked by the reconcilers and reported in
//! the status conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret, in the resource's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key in it (default `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretKeyRef {
    /// The key, or `token`.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("token")
    }
}

/// An Inflow cluster: ingesters, queriers and a compactor on one object
/// store, or an external server the operator manages databases and tokens on.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "InflowCluster",
    namespaced,
    status = "InflowClusterStatus",
    shortname = "inflow",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InflowClusterSpec {
    /// The image of every role (default: the operator's own version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Ingesters (a StatefulSet: the pod name is the node id, so a
    /// replaced pod replays its own WAL).
    #[serde(default)]
    pub ingesters: RoleSpec,
    /// Queriers (a Deployment).
    #[serde(default)]
    pub queriers: RoleSpec,
    /// The compactor (one replica; `replicas: 0` turns it off).
    #[serde(default)]
    pub compactor: RoleSpec,
    /// Where the catalog, WAL and Parquet files live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreSpec>,
    /// The admin token: read from this Secret, or generated once into
    /// `<name>-admin-token` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_secret_ref: Option<SecretKeyRef>,
    /// A server the operator did not deploy: no workloads; `Database` and
    /// `Token` resources of this cluster go to its API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
    /// The processing engine (Python plugins, `Trigger` resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_engine: Option<ProcessingEngineSpec>,
    /// Bootstrap the store from a backup: before any pod starts, a Job runs
    /// `inflow restore` into the (empty) store; done once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreSpec>,
}

/// A backup to bootstrap a cluster from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// Where the backups are (as a `Backup`'s target).
    pub target: BackupTarget,
    /// The backup (a `Backup`'s `status.backupId`; default: the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// How a cluster's restore went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    /// The Job that restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The backup restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Its catalog sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_seq: Option<u64>,
    /// Parquet files restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Bytes restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How packages are installed into the plugins' virtual environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    /// pip.
    #[default]
    Pip,
    /// uv.
    Uv,
    /// No installs.
    Disabled,
}

/// The processing engine of a deployed cluster: ingesters run WAL and
/// schedule triggers, queriers request triggers; every pod shares one plugin
/// directory and virtual environment (on the file store's claim, or on a
/// claim of their own on S3), so a plugin uploaded to one pod is every pod's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingEngineSpec {
    /// Run it.
    #[serde(default)]
    pub enabled: bool,
    /// How packages are installed (default pip).
    #[serde(default)]
    pub package_manager: PackageManager,
    /// The size of the plugins' claim on S3 (default `1Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<String>,
}

/// One role's workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// Pods (default: 1 each for ingesters and queriers, 1 compactor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Extra command-line flags for the role's binary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables (`INFLOW_*` flags among them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Scale the role on its measured load (ingesters and queriers); then
    /// `replicas` is only the starting count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// Who scales a role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalingMode {
    /// The operator, on the targets below (what HPA does, on Inflow's own metrics).
    #[default]
    Operator,
    /// A HorizontalPodAutoscaler on CPU (`targets.cpu`), for users who prefer it.
    Hpa,
}

/// The load one pod should carry; each target given is a metric the
/// decision considers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingTargets {
    /// CPU cores per pod (`process_cpu_seconds_total` per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.01))]
    pub cpu: Option<f64>,
    /// Lines of line protocol accepted per second per pod (`inflow_write_lines_total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub write_lines_per_second_per_pod: Option<f64>,
    /// Queries running at once per pod (`inflow_queries_in_flight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1))]
    pub queries_in_flight_per_pod: Option<f64>,
    /// The 99th percentile of query latency, in ms (`inflow_query_duration_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub query_p99_ms: Option<f64>,
}

/// Where the pods' load is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// The Prometheus server (`http://prometheus:9090`): its query API.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// The label matchers selecting the role's pods' series (default:
    /// `namespace="NS",pod=~"CLUSTER-ROLE-.*"`, as Kubernetes service
    /// discovery labels them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The window of the rates (default `1m`; at least four scrape intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub rate_window: Option<String>,
}

/// How a role scales. The API server checks `minReplicas <= maxReplicas`
/// (a CEL rule in the schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.minReplicas <= self.maxReplicas",
    "message": "minReplicas must not exceed maxReplicas"
}]))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// `operator` (default) or `hpa`.
    #[serde(default)]
    pub mode: AutoscalingMode,
    /// The fewest pods.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// The most pods.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// The load per pod to keep.
    #[serde(default)]
    pub targets: AutoscalingTargets,
    /// How long a higher count must be asked for before scaling up (default `0s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub scale_up_stabilization: Option<String>,
    /// How long a lower count must be asked for before scaling down (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub scale_down_stabilization: Option<String>,
    /// A load within this fraction of the target changes nothing (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tolerance: Option<f64>,
    /// Read the load from Prometheus rather than from the pods' `/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

/// The object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ObjectStoreSpec {
    /// A volume (a PersistentVolumeClaim) shared by every pod.
    File(FileStore),
    /// An S3 bucket.
    S3(S3Store),
}

/// A file object store on a PersistentVolumeClaim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileStore {
    /// The claim's size (default `10Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// The storage class (default: the cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// An S3 bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Store {
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// The endpoint URL (default AWS's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
}

/// A server with the InfluxDB 3 API that the operator did not deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSpec {
    /// Its base URL.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: String,
    /// Its admin token.
    pub admin_token_secret_ref: SecretKeyRef,
}

/// What the operator observed of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InflowClusterStatus {
    /// `Pending`, `Ready` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready pods per role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ready_replicas: BTreeMap<String, i32>,
    /// Ready, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last autoscaling decision per role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub autoscaling: BTreeMap<String, ScalingStatus>,
    /// The bootstrap from `restoreFrom`, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
}

/// The last autoscaling decision of a role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStatus {
    /// The pods the role runs now.
    pub replicas: i32,
    /// The count the metrics asked for, before the stabilization windows.
    pub recommended: i32,
    /// The metric that decided (the one asking for the most pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Its value per pod, and its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The target of `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Why the count is what it is.
    pub reason: String,
    /// When the count last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// When this decision was made, in seconds since the epoch (one a second
    /// at most: the status patch of a decision wakes the reconcile again).
    #[serde(default)]
    pub decided_at: i64,
    /// The recommendations within the longer stabilization window (kept
    /// here, so that a new operator leader keeps the windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<Recommendation>,
}

/// One past recommendation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// When, in seconds since the epoch.
    pub at: i64,
    /// The count the metrics asked for.
    pub replicas: i32,
}

/// What happens to the database when its resource is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// The database stays.
    #[default]
    Retain,
    /// The database is deleted.
    Delete,
}

/// A database of an `InflowCluster`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "Database",
    namespaced,
    status = "DatabaseStatus",
    shortname = "idb",
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".status.databaseName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The `InflowCluster` (in this namespace) the database lives on.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// The database name (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}(/[a-zA-Z0-9][a-zA-Z0-9_-]*)?$"))]
    pub name: Option<String>,
    /// Rows older than this are deleted (`30d`, `none`; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(none|([0-9]+(ns|us|µs|ms|s|m|h|d|w|y))+)$"))]
    pub retention_period: Option<String>,
    /// On deleting the resource: keep the database (`Retain`, the default) or delete it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What the operator observed of a database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// The database's name on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (with the API's error as the message when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A resource a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// Databases.
    Db,
    /// System tables.
    System,
}

/// An action a token may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenAction {
    /// Queries.
    Read,
    /// Writes.
    Write,
}

/// One permission of a token, as the configure API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// `db` or `system`.
    pub resource_type: ResourceType,
    /// Database names (or `*`); for `system`, table names.
    #[schemars(length(min = 1))]
    pub resource_names: Vec<String>,
    /// `read`, `write`.
    #[schemars(length(min = 1))]
    pub actions: Vec<TokenAction>,
}

/// A resource token of an `InflowCluster`, its string kept in a Secret.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "Token",
    namespaced,
    status = "TokenStatus",
    shortname = "itoken",
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    /// The `InflowCluster` (in this namespace) the token is for.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// What the token may do.
    #[schemars(length(min = 1))]
    pub permissions: Vec<Permission>,
    /// How long the token lives (`30d`; default: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ns|us|µs|ms|s|m|h|d|w|y))+$"))]
    pub expiry: Option<String>,
    /// The Secret the token is written to (key `token`), in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Change this (any value) to replace the token with a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<String>,
}

/// What the operator observed of a token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    /// The token's name on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    /// The spec (permissions, expiry, rotate) the current token was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (with the API's error as the message when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// What a trigger does when its plugin fails (the API's `error_behavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ErrorBehavior {
    /// Log the error and go on.
    #[default]
    Log,
    /// Call the plugin again with the same input.
    Retry,
    /// Disable the trigger.
    Disable,
}

/// A key of a ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// The ConfigMap, in the resource's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key holding the plugin's source.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// A trigger's plugin: a file under the server's `--plugin-dir`, uploaded
/// from the spec when a source is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    /// Its path under the plugin directory (`scale.py`, `alerts/notify.py`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$"))]
    pub filename: String,
    /// Its Python source, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its Python source, from a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
}

/// A processing engine trigger of an `InflowCluster`: a Python plugin run
/// on writes, on a schedule, or on HTTP requests.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "Trigger",
    namespaced,
    status = "TriggerStatus",
    shortname = "itrigger",
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".spec.database"}"#,
    printcolumn = r#"{"name":"Spec","type":"string","jsonPath":".spec.specification"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    /// The `InflowCluster` (in this namespace) the trigger runs on.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// The database whose writes (or on whose behalf) it runs.
    #[schemars(regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}(/[a-zA-Z0-9][a-zA-Z0-9_-]*)?$"))]
    pub database: String,
    /// The trigger's name on the server (default: the resource's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub name: Option<String>,
    /// When it runs: `table:NAME`, `all_tables`, `every:DURATION`,
    /// `cron:SEC MIN HOUR DOM MON DOW`, or `request:PATH`.
    #[schemars(regex(pattern = r"^(table:.+|all_tables|every:.+|cron:.+|request:.+)$"))]
    pub specification: String,
    /// The plugin.
    pub plugin: PluginSpec,
    /// Passed to the plugin as `args`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, String>,
    /// Not run until set to false.
    #[serde(default)]
    pub disabled: bool,
    /// Calls do not wait for each other.
    #[serde(default)]
    pub run_async: bool,
    /// What a failed call does.
    #[serde(default)]
    pub error_behavior: ErrorBehavior,
    /// The node that runs a WAL or schedule trigger (default: the cluster chooses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// What the operator observed of a trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// The trigger's name on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_name: Option<String>,
    /// A hash of the plugin source last uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_hash: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (with the API's error as the message when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Every CRD, as YAML documents (what `inflow-operator crd` prints and
/// `crds/` holds).
/// Where backups go: an S3 prefix, or a directory on a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupTarget {
    /// `s3://bucket/prefix`, or a directory under `/backups` (with
    /// `claimName`), e.g. `file:///backups/nightly`. Backups into one place
    /// share its Parquet files: each copies only what is new.
    #[schemars(regex(pattern = r"^(s3://[^/]+(/.*)?|file:///backups(/.*)?)$"))]
    pub url: String,
    /// The S3 endpoint URL (default AWS's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for
    /// the target bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    /// A PersistentVolumeClaim mounted at `/backups`, for a `file://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
}

/// A backup of an `InflowCluster`'s object store, made once by a Job
/// running `inflow backup` while the cluster runs.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    shortname = "ibackup",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Sequence","type":"integer","jsonPath":".status.catalogSeq"}"#,
    printcolumn = r#"{"name":"Bytes","type":"integer","jsonPath":".status.totalBytes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The `InflowCluster` (in this namespace) to back up.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// Where the backup goes.
    pub target: BackupTarget,
}

/// What the operator observed of a backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The Job that makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The backup's id in the target (`inflow restore --backup-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// The catalog sequence number it is consistent at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_seq: Option<u64>,
    /// Bytes of everything it references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// Bytes it copied (the rest was in the target already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_bytes: Option<u64>,
    /// Parquet files it references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// WAL files it copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_files: Option<u64>,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When its Job finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Ready (Succeeded), with the Job's error as the message when it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Backups of an `InflowCluster` on a schedule, the newest `keep` kept.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inflow.dev",
    version = "v1alpha1",
    kind = "BackupSchedule",
    namespaced,
    status = "BackupScheduleStatus",
    shortname = "ibackupschedule",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Last","type":"date","jsonPath":".status.lastScheduleTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleSpec {
    /// The `InflowCluster` (in this namespace) to back up.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// When, as a CronJob's schedule: `MIN HOUR DOM MON DOW` in UTC
    /// (`0 3 * * *`: every day at 03:00).
    #[schemars(length(min = 9))]
    pub schedule: String,
    /// Where the backups go.
    pub target: BackupTarget,
    /// How many finished `Backup` resources to keep (default 7); older
    /// ones are deleted (their files stay in the target).
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1))]
    pub keep: u32,
    /// No new backups while true.
    #[serde(default)]
    pub suspend: bool,
}

fn default_keep() -> u32 {
    7
}

/// What the operator observed of a backup schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleStatus {
    /// When the last backup was started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// The last `Backup` it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<String>,
    /// When the next one is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// Ready, with the schedule's error when it cannot be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

pub fn all_crds_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    let mut out = String::new();
    for crd in [
        InflowCluster::crd(),
        Database::crd(),
        Token::crd(),
        Trigger::crd(),
        Backup::crd(),
        BackupSchedule::crd(),
    ] {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
