//! The reconcilers of `Database` and `Token`: each brings the server's
//! state to the resource's spec, repairs drift on a timer, and reports what
//! it found in the resource's conditions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use sha2::Digest;

use crate::api;
use crate::crd::{
    Database, DatabaseStatus, DeletionPolicy, InflowCluster, InflowClusterStatus, Token,
    TokenStatus,
};
use crate::metrics::Metrics;
use crate::workloads::{self, Role};
use std::collections::BTreeMap;

/// The field manager of the operator's patches.
pub const MANAGER: &str = "inflow-operator";
const DATABASE_FINALIZER: &str = "inflow.dev/database";
const TOKEN_FINALIZER: &str = "inflow.dev/token";

/// What every reconcile needs.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// How often a ready resource is checked again (drift repair).
    pub resync: Duration,
    /// The operator's metrics.
    pub metrics: Metrics,
    /// Publishes the Kubernetes Events `kubectl describe` shows.
    recorder: Recorder,
    /// Consecutive failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Reads the pods' `/metrics` and Prometheus for autoscaling.
    pub http: reqwest::Client,
    /// The pods' previous scrapes, for rates.
    pub sampler: crate::measure::Sampler,
}

impl Context {
    /// A context for reconciles through `client`; events are reported as
    /// `inflow-operator` (instance: the pod's name, when known).
    pub fn new(client: kube::Client, resync: Duration, metrics: Metrics) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            resync,
            metrics,
            failures: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            sampler: crate::measure::Sampler::default(),
        }
    }

    /// Publishes an event on `object`; a failure to publish is only logged.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = KubeEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(error = %e, reason, "publishing an event failed");
        }
    }

    /// Records a failure of `key`; the delay before its next try, doubling
    /// with each consecutive failure (from 5 s to 5 min), sooner for errors
    /// a retry may fix at once than for a server that cannot be reached.
    pub fn failed(&self, key: &str, error: &Error) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = match error {
            Error::Api(api::ApiError::Unreachable(_)) | Error::Cluster(_) => backoff(*count + 2),
            _ => backoff(*count),
        };
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets `key`'s failures after a reconcile that succeeded.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// The key of an object in the failure counts.
pub fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    )
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed: requeued with backoff, the reason in status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The cluster the resource names is missing or not usable.
    #[error("{0}")]
    Cluster(String),
    /// The InfluxDB 3 API failed.
    #[error("{0}")]
    Api(#[from] api::ApiError),
    /// The spec is invalid in a way the schema cannot say.
    #[error("{0}")]
    Spec(String),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A short reason for a condition or an event.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesError",
            Error::Cluster(_) => "ClusterUnavailable",
            Error::Api(e) => e.reason(),
            Error::Spec(_) => "InvalidSpec",
            Error::Finalizer(_) => "FinalizerError",
        }
    }
}

/// The backoff after a failure: doubling from 5 s to 5 min by how often it failed.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << failures.min(6)).min(300))
}

pub(crate) fn ready(generation: Option<i64>, ok: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: "Ready".to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: now(),
    }
}

/// The current time as the API's `Time`.
pub fn now() -> Time {
    serde_json::from_value(json!(now_rfc3339())).unwrap_or_else(|_| Time(Default::default()))
}

/// The current time in RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes `status` as the status of `object` (a merge patch by the
/// operator's field manager).
pub(crate) async fn write_status<K>(
    ctx: &Context,
    namespace: &str,
    object: &K,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
}

/// Keeps a condition's transition time when its status did not change.
pub(crate) fn merge(previous: &[Condition], mut next: Condition) -> Vec<Condition> {
    if let Some(p) = previous.iter().find(|c| c.type_ == next.type_)
        && p.status == next.status
    {
        next.last_transition_time = p.last_transition_time.clone();
    }
    vec![next]
}

/// A client of the cluster `name` in `namespace`: its external URL, or its
/// ingester Service, with its admin token from the Secret.
pub async fn cluster_client(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<api::Client, Error> {
    let clusters: Api<InflowCluster> = Api::namespaced(client.clone(), namespace);
    let cluster = clusters
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::Cluster(format!("InflowCluster {namespace}/{name} not found")))?;
    let (url, secret_ref) = match &cluster.spec.external {
        Some(ext) => (ext.url.clone(), ext.admin_token_secret_ref.clone()),
        None => (
            format!("http://{name}-ingester.{namespace}.svc:8181"),
            cluster
                .spec
                .admin_token_secret_ref
                .clone()
                .unwrap_or(crate::crd::SecretKeyRef {
                    name: format!("{name}-admin-token"),
                    key: None,
                }),
        ),
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get_opt(&secret_ref.name).await?.ok_or_else(|| {
        Error::Cluster(format!(
            "the admin token Secret {namespace}/{} of cluster {name} does not exist",
            secret_ref.name
        ))
    })?;
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get(secret_ref.key()))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Cluster(format!(
                "the Secret {namespace}/{} has no key '{}'",
                secret_ref.name,
                secret_ref.key()
            ))
        })?;
    Ok(api::Client::new(&url, &token))
}

fn same_retention(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| match s.filter(|s| !s.is_empty() && *s != "none") {
        None => Some(None),
        Some(s) => humantime::parse_duration(s).ok().map(Some),
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Reconciles one `InflowCluster`. An external one is Ready while its
/// server answers `/health` with the admin token; a deployed one gets its
/// workloads (see `workloads`) applied, and is Ready once every role has
/// its ready replicas.
pub async fn reconcile_cluster(
    cluster: Arc<InflowCluster>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
    let name = cluster.name_any();
    // Autoscaled roles run the count decided now.
    let decisions = match &cluster.spec.external {
        Some(_) => BTreeMap::new(),
        None => crate::scaling::decide_roles(&cluster, &ctx, &namespace).await,
    };
    let scaled = crate::scaling::with_counts(&cluster, &decisions);
    // A cluster bootstrapped from a backup starts no pod before its restore
    // Job succeeded.
    let restore = match &cluster.spec.external {
        Some(_) => Ok(None),
        None => crate::backup::restore_step(&cluster, &ctx, &namespace).await,
    };
    let restoring = restore
        .as_ref()
        .ok()
        .and_then(|r| r.as_ref())
        .filter(|r| r.phase != "Succeeded")
        .cloned();
    let outcome = match (&cluster.spec.external, &restore, &restoring) {
        (_, Err(e), _) => Err(Error::Cluster(e.to_string())),
        (_, _, Some(r)) if r.phase == "Failed" => Err(Error::Cluster(format!(
            "the restore from the backup failed: {}",
            r.message.as_deref().unwrap_or("see the restore Job")
        ))),
        (_, _, Some(_)) => Ok(BTreeMap::new()),
        _ => match &cluster.spec.external {
            Some(_) => match cluster_client(&ctx.client, &namespace, &name).await {
                Ok(client) => client
                    .health()
                    .await
                    .map(|()| BTreeMap::new())
                    .map_err(Error::from),
                Err(e) => Err(e),
            },
            None => deploy(&scaled, &ctx, &namespace).await,
        },
    };
    let generation = cluster.meta().generation;
    let previous = cluster
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let (phase, condition, ready_replicas) = match outcome.as_ref() {
        Ok(_) if restoring.is_some() => (
            "Restoring",
            ready(
                generation,
                false,
                "Restoring",
                "restoring the store from the backup before the pods start",
            ),
            BTreeMap::new(),
        ),
        Ok(ready_replicas) => {
            let waiting: Vec<String> = [Role::Ingester, Role::Querier, Role::Compactor]
                .into_iter()
                .filter(|_| cluster.spec.external.is_none())
                .filter(|r| {
                    ready_replicas.get(r.name()).copied().unwrap_or(0) < wanted(&scaled, *r)
                })
                .map(|r| r.name().to_string())
                .collect();
            if waiting.is_empty() {
                let message = if cluster.spec.external.is_some() {
                    "the server answers /health".to_string()
                } else {
                    "every role has its ready replicas".to_string()
                };
                (
                    "Ready",
                    ready(generation, true, "Available", &message),
                    ready_replicas.clone(),
                )
            } else {
                let message = format!("waiting for ready pods: {}", waiting.join(", "));
                (
                    "Progressing",
                    ready(generation, false, "Progressing", &message),
                    ready_replicas.clone(),
                )
            }
        }
        Err(e) => (
            "Degraded",
            ready(generation, false, e.reason(), &e.to_string()),
            BTreeMap::new(),
        ),
    };
    let previous_phase = cluster.status.as_ref().and_then(|s| s.phase.as_deref());
    match &outcome {
        Err(e) => ctx.event(&*cluster, true, e.reason(), e.to_string()).await,
        Ok(_) if previous_phase != Some(phase) => {
            ctx.event(&*cluster, false, phase, condition.message.clone())
                .await
        }
        Ok(_) => {}
    }
    let status = InflowClusterStatus {
        phase: Some(phase.to_string()),
        observed_generation: generation,
        ready_replicas,
        conditions: merge(&previous, condition),
        autoscaling: decisions,
        restore: restore.ok().flatten(),
    };
    let patched = write_status(&ctx, &namespace, &*cluster, &status).await;
    ctx.metrics.observe(
        "InflowCluster",
        started.elapsed(),
        outcome.is_ok() && patched.is_ok(),
    );
    patched?;
    let autoscaled = [Role::Ingester, Role::Querier]
        .into_iter()
        .any(|r| crate::scaling::operator_scaled(&cluster, r).is_some());
    let period = if autoscaled {
        ctx.resync.min(crate::scaling::DECISION_PERIOD)
    } else {
        ctx.resync
    };
    if restoring.is_some() && outcome.is_ok() {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    outcome.map(|_| Action::requeue(period))
}

fn wanted(cluster: &InflowCluster, role: Role) -> i32 {
    match role {
        Role::Compactor => role.replicas(cluster).min(1),
        r => r.replicas(cluster),
    }
}

/// Applies a deployed cluster's objects; returns the ready pods per role.
async fn deploy(
    cluster: &InflowCluster,
    ctx: &Context,
    namespace: &str,
) -> Result<BTreeMap<String, i32>, Error> {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;

    let client = &ctx.client;
    // The admin token: the spec's Secret must exist; ours is made once.
    let secret_ref = workloads::admin_secret(cluster);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if secrets.get_opt(&secret_ref.name).await?.is_none() {
        if cluster.spec.admin_token_secret_ref.is_some() {
            return Err(Error::Cluster(format!(
                "the admin token Secret {namespace}/{} does not exist",
                secret_ref.name
            )));
        }
        let token = workloads::generate_token()
            .map_err(|e| Error::Cluster(format!("no randomness for the admin token: {e}")))?;
        let mut data = std::collections::BTreeMap::new();
        data.insert(secret_ref.key().to_string(), ByteString(token.into_bytes()));
        let secret = Secret {
            metadata: workloads::owned_meta(
                cluster,
                &secret_ref.name,
                workloads::labels(cluster, Role::Ingester),
            ),
            data: Some(data),
            type_: Some("Opaque".to_string()),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &secret).await?;
    }
    let apply = PatchParams::apply(MANAGER).force();
    for pvc in workloads::data_claim(cluster)
        .into_iter()
        .chain(workloads::plugins_claim(cluster))
    {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
        // A claim's spec is immutable once bound: create it, then leave it.
        if api
            .get_opt(&pvc.metadata.name.clone().unwrap_or_default())
            .await?
            .is_none()
        {
            api.create(&PostParams::default(), &pvc).await?;
        }
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let sts = workloads::ingester_statefulset(cluster);
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    let applied_sts = statefulsets
        .patch(&sts_name, &apply, &Patch::Apply(&sts))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut ready_replicas = BTreeMap::new();
    ready_replicas.insert(
        Role::Ingester.name().to_string(),
        applied_sts
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
    );
    for role in [Role::Querier, Role::Compactor] {
        let d = workloads::deployment(cluster, role);
        let d_name = d.metadata.name.clone().unwrap_or_default();
        let applied = deployments
            .patch(&d_name, &apply, &Patch::Apply(&d))
            .await?;
        ready_replicas.insert(
            role.name().to_string(),
            applied.status.and_then(|s| s.ready_replicas).unwrap_or(0),
        );
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    for svc in workloads::services(cluster) {
        let n = svc.metadata.name.clone().unwrap_or_default();
        services.patch(&n, &apply, &Patch::Apply(&svc)).await?;
    }
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), namespace);
    let (wanted_hpas, absent_hpas) = workloads::autoscalers(cluster);
    for hpa in wanted_hpas {
        let n = hpa.metadata.name.clone().unwrap_or_default();
        hpas.patch(&n, &apply, &Patch::Apply(&hpa)).await?;
    }
    for n in absent_hpas {
        if hpas.get_opt(&n).await?.is_some() {
            hpas.delete(&n, &Default::default()).await?;
        }
    }
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    for pdb in workloads::disruption_budgets(cluster) {
        let n = pdb.metadata.name.clone().unwrap_or_default();
        budgets.patch(&n, &apply, &Patch::Apply(&pdb)).await?;
    }
    Ok(ready_replicas)
}

/// Reconciles one `Database`.
pub async fn reconcile_database(db: Arc<Database>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = db.namespace().unwrap_or_else(|| "default".to_string());
    let dbs: Api<Database> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&dbs, DATABASE_FINALIZER, db, |event| async {
        match event {
            Event::Apply(db) => apply_database(&db, &ctx, &namespace).await,
            Event::Cleanup(db) => cleanup_database(&db, &ctx, &namespace).await,
        }
    })
    .await
    .map_err(finalizer_error);
    ctx.metrics
        .observe("Database", started.elapsed(), result.is_ok());
    result
}

/// The reconcile's own error out of the finalizer helper's.
pub(crate) fn finalizer_error(e: kube::runtime::finalizer::Error<Error>) -> Error {
    use kube::runtime::finalizer::Error as F;
    match e {
        F::ApplyFailed(e) | F::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    }
}

fn database_name(db: &Database) -> String {
    db.spec.name.clone().unwrap_or_else(|| db.name_any())
}

async fn apply_database(db: &Database, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let name = database_name(db);
    let outcome = async {
        let client = cluster_client(&ctx.client, namespace, &db.spec.cluster_ref).await?;
        let existing = client.databases().await?;
        let wanted = db.spec.retention_period.as_deref();
        let retention = wanted.unwrap_or("none");
        let change = match existing.iter().find(|d| d.name == name) {
            None => {
                client.create_database(&name, wanted).await?;
                Some((
                    "Created",
                    format!("database {name} created (retention {retention})"),
                ))
            }
            Some(d) if !same_retention(d.retention.as_deref(), wanted) => {
                client.set_retention(&name, wanted).await?;
                Some((
                    "RetentionChanged",
                    format!("database {name}: retention {retention}"),
                ))
            }
            Some(_) => None,
        };
        Ok::<_, Error>(change)
    }
    .await;
    match &outcome {
        Err(e) => ctx.event(db, true, e.reason(), e.to_string()).await,
        Ok(Some((reason, note))) => ctx.event(db, false, reason, note.clone()).await,
        Ok(None) => {}
    }
    let previous = db
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = db.meta().generation;
    let condition = match &outcome {
        Ok(_) => ready(
            generation,
            true,
            "Reconciled",
            &format!("database {name} is in place"),
        ),
        Err(e) => ready(generation, false, e.reason(), &e.to_string()),
    };
    let status = DatabaseStatus {
        database_name: Some(name),
        observed_generation: generation,
        conditions: merge(&previous, condition),
    };
    write_status(ctx, namespace, db, &status).await?;
    outcome.map(|_| Action::requeue(ctx.resync))
}

async fn cleanup_database(db: &Database, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    if db.spec.deletion_policy == DeletionPolicy::Delete {
        let client = cluster_client(&ctx.client, namespace, &db.spec.cluster_ref).await?;
        let name = database_name(db);
        match client.delete_database(&name).await {
            Err(e) if !e.is(404) => return Err(e.into()),
            Err(_) => {}
            Ok(()) => {
                ctx.event(db, false, "Deleted", format!("database {name} deleted"))
                    .await
            }
        }
    }
    Ok(Action::await_change())
}

/// The name of a `Token`'s token on the server.
fn token_name(token: &Token, namespace: &str) -> String {
    format!("k8s-{namespace}-{}", token.name_any())
}

/// What the current token was made for: a new one is made when it changes.
fn spec_hash(token: &Token) -> String {
    let text = serde_json::to_string(&(
        &token.spec.permissions,
        &token.spec.expiry,
        &token.spec.rotate,
    ))
    .unwrap_or_default();
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reconciles one `Token`.
pub async fn reconcile_token(token: Arc<Token>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = token.namespace().unwrap_or_else(|| "default".to_string());
    let tokens: Api<Token> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&tokens, TOKEN_FINALIZER, token, |event| async {
        match event {
            Event::Apply(t) => apply_token(&t, &ctx, &namespace).await,
            Event::Cleanup(t) => {
                let client = cluster_client(&ctx.client, &namespace, &t.spec.cluster_ref).await?;
                let name = token_name(&t, &namespace);
                client.delete_token(&name).await?;
                ctx.event(&*t, false, "Deleted", format!("token {name} deleted"))
                    .await;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(finalizer_error);
    ctx.metrics
        .observe("Token", started.elapsed(), result.is_ok());
    result
}

async fn apply_token(token: &Token, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let name = token_name(token, namespace);
    let hash = spec_hash(token);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let outcome = async {
        let expiry_secs = match &token.spec.expiry {
            Some(e) => Some(
                humantime::parse_duration(e)
                    .map_err(|err| Error::Spec(format!("expiry '{e}': {err}")))?
                    .as_secs()
                    .max(1),
            ),
            None => None,
        };
        let client = cluster_client(&ctx.client, namespace, &token.spec.cluster_ref).await?;
        let secret = secrets.get_opt(&token.spec.secret_name).await?;
        let has_string = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .is_some_and(|d| d.get("token").is_some_and(|t| !t.0.is_empty()));
        let live = client.live_tokens().await?.contains(&name);
        let made_for = token.status.as_ref().and_then(|s| s.spec_hash.as_deref());
        if has_string && live && made_for == Some(hash.as_str()) {
            return Ok(None);
        }
        let why = if made_for.is_none() {
            "first issued"
        } else if made_for != Some(hash.as_str()) {
            "the spec changed"
        } else if !live {
            "the token was deleted or expired on the server"
        } else {
            "the Secret lost it"
        };
        // A new token: its string goes into the Secret once, here.
        client.delete_token(&name).await?;
        let string = client
            .create_token(&name, &token.spec.permissions, expiry_secs)
            .await?;
        let owner = token
            .controller_owner_ref(&())
            .into_iter()
            .collect::<Vec<_>>();
        let mut data = std::collections::BTreeMap::new();
        data.insert("token".to_string(), ByteString(string.into_bytes()));
        let mut object = Secret {
            data: Some(data),
            type_: Some("Opaque".to_string()),
            ..Default::default()
        };
        object.metadata.name = Some(token.spec.secret_name.clone());
        object.metadata.namespace = Some(namespace.to_string());
        object.metadata.owner_references = Some(owner);
        match secret {
            Some(existing) => {
                object.metadata.resource_version = existing.metadata.resource_version;
                secrets
                    .replace(&token.spec.secret_name, &PostParams::default(), &object)
                    .await?;
            }
            None => {
                secrets.create(&PostParams::default(), &object).await?;
            }
        }
        Ok::<_, Error>(Some(format!(
            "token {name} issued into Secret {} ({why})",
            token.spec.secret_name
        )))
    }
    .await;
    match &outcome {
        Err(e) => ctx.event(token, true, e.reason(), e.to_string()).await,
        Ok(Some(note)) => ctx.event(token, false, "Issued", note.clone()).await,
        Ok(None) => {}
    }
    let previous = token
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = token.meta().generation;
    let (condition, made_for) = match &outcome {
        Ok(_) => (
            ready(
                generation,
                true,
                "Reconciled",
                &format!("token {name} is in Secret {}", token.spec.secret_name),
            ),
            Some(hash),
        ),
        Err(e) => (
            ready(generation, false, e.reason(), &e.to_string()),
            token.status.as_ref().and_then(|s| s.spec_hash.clone()),
        ),
    };
    let status = TokenStatus {
        token_name: Some(name),
        spec_hash: made_for,
        observed_generation: generation,
        conditions: merge(&previous, condition),
    };
    write_status(ctx, namespace, token, &status).await?;
    outcome.map(|_| Action::requeue(ctx.resync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_compares_by_duration() {
        assert!(same_retention(Some("30d"), Some("720h")));
        assert!(same_retention(None, Some("none")));
        assert!(!same_retention(Some("1d"), None));
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(10), Duration::from_secs(300));
    }
}
