//! The reconcilers' error paths against a scripted Kubernetes API (a tower
//! service in place of the API server's connection), in addition to the
//! real API server of `kubernetes.rs`: a 409 on a server-side apply, a 500,
//! an API server that cannot be reached, and an Inflow server that cannot
//! be reached. Each must end in an error the controller requeues with a
//! growing backoff, a Degraded / not-Ready status with the reason, and a
//! Warning event; none may panic.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use operator::crd::{Database, InflowCluster};
use operator::metrics::Metrics;
use operator::reconcile::{self, Context, Error};
use serde_json::{Value, json};

/// One request the fake API server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

/// A Kubernetes client whose API server is `route`: (method, path) →
/// (status, body). Every request is recorded.
fn scripted(
    route: impl Fn(&Method, &str) -> (u16, Value) + Send + Sync + 'static,
) -> (kube::Client, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let route = Arc::new(route);
    let service = tower::service_fn(move |req: Request<Body>| {
        let log = Arc::clone(&log);
        let route = Arc::clone(&route);
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_string();
            let (status, answer) = route(&parts.method, &path);
            log.lock().unwrap().push(Seen {
                method: parts.method,
                path,
                body,
            });
            let response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    (kube::Client::new(service, "data"), seen)
}

/// The API server's error body.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn context(client: kube::Client) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        Duration::from_secs(30),
        Metrics::new().unwrap(),
    ))
}

fn deployed_cluster() -> InflowCluster {
    serde_json::from_value(json!({
        "apiVersion": "inflow.dev/v1alpha1", "kind": "InflowCluster",
        "metadata": {"name": "metrics", "namespace": "data", "uid": "u-1", "generation": 3},
        "spec": {"objectStore": {"s3": {"bucket": "b"}}}
    }))
    .unwrap()
}

fn admin_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "metrics-admin-token", "namespace": "data"},
           "data": {"token": "YXBpdjNfYWRtaW4="}})
}

/// The status the reconcile wrote (its last status patch).
fn written_status(seen: &[Seen], kind_path: &str) -> Value {
    seen.iter()
        .rev()
        .find(|s| {
            s.method == Method::PATCH && s.path.ends_with("/status") && s.path.contains(kind_path)
        })
        .map(|s| s.body["status"].clone())
        .unwrap_or_else(|| panic!("no status patch on {kind_path}: {seen:#?}"))
}

fn warning_events(seen: &[Seen]) -> Vec<Value> {
    seen.iter()
        .filter(|s| s.method == Method::POST && s.path.ends_with("/events"))
        .map(|s| s.body.clone())
        .filter(|e| e["type"] == "Warning")
        .collect()
}

#[tokio::test]
async fn a_conflict_on_apply_degrades_the_cluster_and_backs_off() {
    let (client, seen) = scripted(|method, path| match (method.as_str(), path) {
        ("GET", "/api/v1/namespaces/data/secrets/metrics-admin-token") => (200, admin_secret()),
        ("PATCH", "/apis/apps/v1/namespaces/data/statefulsets/metrics-ingester") => (
            409,
            status(
                409,
                "Conflict",
                "Apply failed with 1 conflict: conflict with \"kubectl\"",
            ),
        ),
        ("PATCH", p) if p.ends_with("/status") => {
            (200, serde_json::to_value(deployed_cluster()).unwrap())
        }
        ("POST", p) if p.ends_with("/events") => (201, json!({})),
        _ => (404, status(404, "NotFound", "not scripted")),
    });
    let ctx = context(client);
    let cluster = Arc::new(deployed_cluster());
    let err = reconcile::reconcile_cluster(Arc::clone(&cluster), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Kube(kube::Error::Api(s)) if s.code == 409),
        "{err:?}"
    );

    let seen = seen.lock().unwrap().clone();
    let status = written_status(&seen, "inflowclusters/metrics");
    assert_eq!(status["phase"], "Degraded");
    assert_eq!(status["observedGeneration"], 3);
    let ready = &status["conditions"][0];
    assert_eq!(ready["type"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "KubernetesError");
    assert!(
        ready["message"].as_str().unwrap().contains("conflict"),
        "{ready}"
    );
    let warnings = warning_events(&seen);
    assert_eq!(warnings.len(), 1, "{seen:#?}");
    assert_eq!(warnings[0]["reason"], "KubernetesError");
    assert_eq!(warnings[0]["regarding"]["name"], "metrics");
    assert_eq!(warnings[0]["reportingController"], "inflow-operator");
    // Nothing after the failed apply was attempted.
    assert!(
        !seen.iter().any(|s| s.path.contains("/deployments/")),
        "{seen:#?}"
    );

    // The backoff grows with each consecutive failure, and starts over after a success.
    let key = reconcile::object_key(&*cluster);
    let delays: Vec<u64> = (0..4).map(|_| ctx.failed(&key, &err).as_secs()).collect();
    assert_eq!(delays, vec![5, 10, 20, 40]);
    ctx.succeeded(&key);
    assert_eq!(ctx.failed(&key, &err), Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_error_reading_the_secret_degrades_the_cluster() {
    let (client, seen) = scripted(|method, path| match (method.as_str(), path) {
        ("GET", p) if p.contains("/secrets/") => (
            500,
            status(500, "InternalError", "etcdserver: request timed out"),
        ),
        ("PATCH", p) if p.ends_with("/status") => {
            (200, serde_json::to_value(deployed_cluster()).unwrap())
        }
        ("POST", p) if p.ends_with("/events") => (201, json!({})),
        _ => (404, status(404, "NotFound", "not scripted")),
    });
    let ctx = context(client);
    let err = reconcile::reconcile_cluster(Arc::new(deployed_cluster()), ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Kube(kube::Error::Api(s)) if s.code == 500),
        "{err:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let status = written_status(&seen, "inflowclusters/metrics");
    assert_eq!(status["phase"], "Degraded");
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("etcdserver: request timed out")
    );
    // No workload was applied, and no token Secret made, on a failed read.
    assert!(
        !seen
            .iter()
            .any(|s| s.method == Method::POST && s.path.contains("/secrets")
                || s.path.contains("/statefulsets/")),
        "{seen:#?}"
    );
    assert_eq!(warning_events(&seen).len(), 1);
}

fn database_on(cluster: &str) -> Database {
    serde_json::from_value(json!({
        "apiVersion": "inflow.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": "sensors", "namespace": "data", "uid": "u-2", "generation": 1,
                     "finalizers": ["inflow.dev/database"]},
        "spec": {"clusterRef": cluster, "retentionPeriod": "30d"}
    }))
    .unwrap()
}

#[tokio::test]
async fn an_unreachable_inflow_server_is_reported_and_retried_later() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let external = json!({
        "apiVersion": "inflow.dev/v1alpha1", "kind": "InflowCluster",
        "metadata": {"name": "elsewhere", "namespace": "data"},
        "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "admin"}}}
    });
    let (client, seen) = scripted(move |method, path| match (method.as_str(), path) {
        ("GET", "/apis/inflow.dev/v1alpha1/namespaces/data/inflowclusters/elsewhere") => {
            (200, external.clone())
        }
        ("GET", "/api/v1/namespaces/data/secrets/admin") => (200, admin_secret()),
        ("PATCH", p) if p.ends_with("/status") => {
            (200, serde_json::to_value(database_on("elsewhere")).unwrap())
        }
        ("POST", p) if p.ends_with("/events") => (201, json!({})),
        _ => (404, status(404, "NotFound", "not scripted")),
    });
    let ctx = context(client);
    let db = Arc::new(database_on("elsewhere"));
    let err = reconcile::reconcile_database(Arc::clone(&db), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api(operator::api::ApiError::Unreachable(_))),
        "{err:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let status = written_status(&seen, "databases/sensors");
    assert_eq!(status["databaseName"], "sensors");
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "Unreachable");
    assert_eq!(warning_events(&seen)[0]["reason"], "Unreachable");
    // A server that cannot be reached is retried later than a refused request.
    let key = reconcile::object_key(&*db);
    assert_eq!(ctx.failed(&key, &err), Duration::from_secs(20));
    assert_eq!(ctx.failed(&key, &err), Duration::from_secs(40));
}

#[tokio::test]
async fn a_missing_cluster_is_a_condition_not_a_panic() {
    let (client, seen) = scripted(|method, path| match (method.as_str(), path) {
        ("PATCH", p) if p.ends_with("/status") => {
            (200, serde_json::to_value(database_on("nowhere")).unwrap())
        }
        ("POST", p) if p.ends_with("/events") => (201, json!({})),
        _ => (
            404,
            status(404, "NotFound", "inflowclusters \"nowhere\" not found"),
        ),
    });
    let err = reconcile::reconcile_database(Arc::new(database_on("nowhere")), context(client))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Cluster(m) if m.contains("data/nowhere not found")),
        "{err:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let status = written_status(&seen, "databases/sensors");
    assert_eq!(status["conditions"][0]["reason"], "ClusterUnavailable");
}

#[tokio::test]
async fn an_unreachable_api_server_fails_the_reconcile_cleanly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: http::Uri = format!("http://{}", closed.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(closed);
    let mut config = kube::Config::new(url);
    config.default_namespace = "data".to_string();
    config.connect_timeout = Some(Duration::from_secs(2));
    let client = kube::Client::try_from(config).unwrap();
    let ctx = context(client);
    let err = reconcile::reconcile_cluster(Arc::new(deployed_cluster()), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Kube(_)), "{err:?}");
    let metrics = ctx.metrics.render();
    assert!(
        metrics.contains("inflow_operator_reconcile_errors_total{kind=\"InflowCluster\"} 1"),
        "{metrics}"
    );
}
