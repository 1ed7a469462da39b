//! The HTTP API shared by every role: routes, request parsing, error bodies
//! and metrics.
//!
//! ```text
//!  hyper ─▶ axum Router ─▶ middleware (request id, log, cluster-uuid header)
//!             ├─ /api/v3/write_lp, /api/v2/write, /write ─▶ WriteService (ingester)
//!             ├─ /api/v3/query_sql ───────────────────────▶ QueryService (query engine)
//!             └─ /ping, /health, /api/v1/health, /metrics
//! ```
//!
//! Roles plug in what they serve: the ingester a [`WriteService`], the
//! querier a [`QueryService`] (both traits of the `services` crate, so this
//! crate knows neither the write path's nor the query engine's internals);
//! `inflow serve` provides both. Errors
//! become responses in one place, [`error::ApiError::respond`].

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use catalog::Catalog;
use services::{QueryService, WriteService};
use tokio::net::TcpListener;
use uuid::Uuid;

pub mod auth;
mod backups;
mod caches;
mod configure;
mod deletes;
mod engine;
pub mod error;
pub mod format;
pub mod influxql;
mod metrics;
mod nodes;
mod sql;
mod tokens;
mod write;

pub use auth::AuthSettings;
pub use configure::HARD_DELETE_DEFAULT_NS;
pub use error::{ApiError, Family};
pub use metrics::{ClusterMetrics, InFlight, Metrics, cluster_metrics};

/// The version reported by `/ping`: the InfluxDB 3 API version Inflow speaks.
pub const API_VERSION: &str = "3.8.0";
/// The build reported by `/ping`'s `x-influxdb-build`. Inflow implements the
/// Enterprise API surface.
pub const API_BUILD: &str = "Enterprise";

/// Everything a request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The catalog (for the cluster UUID, and the management API).
    pub catalog: Arc<Catalog>,
    /// The write path, on nodes that accept writes.
    pub writer: Option<Arc<dyn WriteService>>,
    /// The query engine, on nodes that serve queries.
    pub query: Option<Arc<dyn QueryService>>,
    /// The processing engine, when the server was started with `--plugin-dir`.
    pub engine: Option<Arc<dyn services::engine::EngineService>>,
    /// Metrics.
    pub metrics: Metrics,
    /// `--max-http-request-size` and `--http-body-read-timeout`.
    pub body_limits: BodyLimits,
    /// Write bodies being read or applied now, against
    /// `--max-write-bytes-in-flight`: past it, writes get 429.
    pub write_budget: WriteBudget,
    /// Reported by `/ping`.
    pub process_id: Uuid,
    /// Authentication settings.
    pub auth: AuthSettings,
    /// Catalog size limits (`--max-databases` and friends).
    pub limits: services::Limits,
    /// What `hard_delete_at=default` means: this long after the delete.
    pub hard_delete_default_ns: i64,
    /// This process in the cluster.
    pub node: NodeContext,
    /// Set by POST `/api/v3/enterprise/configure/node/drain` (a pod's
    /// preStop hook): `/health` answers 503 and writes are refused.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Write requests being answered now.
    pub writes_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// How large a request body may be, and how long it may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `--max-http-request-size`, before and after decompression.
    pub max_bytes: usize,
    /// `--http-body-read-timeout`: a body still arriving after this is 408.
    pub read_timeout: std::time::Duration,
}

/// The write bodies the server holds at once (`--max-write-bytes-in-flight`):
/// a write reserves its body's size (its `Content-Length`, else the
/// largest body) before reading it, and holds it until it is answered; a
/// write that does not fit is refused at once with 429 and Retry-After,
/// so ten times more writers than the server can take wait on their side,
/// not in its memory.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    kib: Arc<tokio::sync::Semaphore>,
    total_kib: u32,
}

impl WriteBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX / 2).max(1);
        Self {
            kib: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Reserves `bytes` (at most the whole budget), or `None` if that much
    /// is not free now.
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        Arc::clone(&self.kib).try_acquire_many_owned(kib).ok()
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> usize {
        self.total_kib as usize * 1024
    }
}

/// This process's node id and roles, and the cluster's node registry.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// `--node-id`.
    pub id: String,
    /// `ingest`, `query`, `compact`.
    pub roles: Vec<String>,
    /// Every node of the cluster.
    pub registry: cluster::Registry,
}

impl NodeContext {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What an endpoint asks of the caller's token when auth is on. Each
/// handler checks it; `tests/endpoints.rs` of the `inflow` crate calls
/// every endpoint of [`endpoints`] without a token and with one that
/// lacks the permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any valid token, unless `--disable-authz` opens the endpoint
    /// (health, ping, metrics).
    Server,
    /// Any valid token.
    AnyToken,
    /// Read on the database the request names.
    Read,
    /// Write on the database the request names.
    Write,
    /// Each statement's own permission (InfluxDB 1.x's `/query`): read
    /// for a `SELECT` on the database, admin to create or drop one.
    Statements,
    /// An admin token.
    Admin,
    /// None while no admin token exists (creating the first one), an
    /// admin token after.
    FirstAdmin,
}

/// One method of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    /// As the router has it (`{*path}` for a wildcard).
    pub path: &'static str,
    pub access: Access,
}

/// Every endpoint with its handler: the router is made of exactly these.
fn table() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    use axum::routing::{delete, put};
    vec![
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/write_lp",
                access: Access::Write,
            },
            post(write::write_v3),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v2/write",
                access: Access::Write,
            },
            post(write::write_v2),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/write",
                access: Access::Write,
            },
            post(write::write_v1),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v2/delete",
                access: Access::Write,
            },
            post(deletes::delete_v2),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/backup",
                access: Access::Admin,
            },
            post(backups::create_backup),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/api/v3/query_sql",
                access: Access::Read,
            },
            get(sql::query_sql),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/query_sql",
                access: Access::Read,
            },
            post(sql::query_sql),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/api/v3/query_influxql",
                access: Access::Read,
            },
            get(influxql::query_influxql),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/query_influxql",
                access: Access::Read,
            },
            post(influxql::query_influxql),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/query",
                access: Access::Statements,
            },
            get(influxql::query_v1),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/query",
                access: Access::Statements,
            },
            post(influxql::query_v1),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/token/admin",
                access: Access::FirstAdmin,
            },
            post(tokens::create_admin),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/token/admin/regenerate",
                access: Access::Admin,
            },
            post(tokens::regenerate_admin),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/token/named_admin",
                access: Access::Admin,
            },
            post(tokens::create_named_admin),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/token",
                access: Access::Admin,
            },
            post(tokens::create_resource),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/token",
                access: Access::Admin,
            },
            delete(tokens::delete),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/api/v3/configure/database",
                access: Access::AnyToken,
            },
            get(configure::list_databases),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/database",
                access: Access::Admin,
            },
            post(configure::create_database),
        ),
        (
            Endpoint {
                method: Method::PUT,
                path: "/api/v3/configure/database",
                access: Access::Admin,
            },
            put(configure::update_database),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/database",
                access: Access::Admin,
            },
            delete(configure::delete_database),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/database/retention_period",
                access: Access::Admin,
            },
            post(configure::set_database_retention),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/database/retention_period",
                access: Access::Admin,
            },
            delete(configure::delete_database_retention),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/table",
                access: Access::Admin,
            },
            post(configure::create_table),
        ),
        (
            Endpoint {
                method: Method::PUT,
                path: "/api/v3/configure/table",
                access: Access::Admin,
            },
            put(configure::update_table),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/table",
                access: Access::Admin,
            },
            delete(configure::delete_table),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/table/retention_period",
                access: Access::Admin,
            },
            post(configure::set_table_retention_period),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/enterprise/configure/table/retention_period",
                access: Access::Admin,
            },
            delete(configure::clear_table_retention_period),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/node/stop",
                access: Access::Admin,
            },
            post(nodes::stop_node),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/node/drain",
                access: Access::Admin,
            },
            post(nodes::drain_node),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/enterprise/configure/file_index",
                access: Access::Admin,
            },
            post(configure::set_file_index),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/enterprise/configure/file_index",
                access: Access::Admin,
            },
            delete(configure::delete_file_index),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/distinct_cache",
                access: Access::Admin,
            },
            post(caches::create_distinct_cache),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/distinct_cache",
                access: Access::Admin,
            },
            delete(caches::delete_distinct_cache),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/last_cache",
                access: Access::Admin,
            },
            post(caches::create_last_cache),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/last_cache",
                access: Access::Admin,
            },
            delete(caches::delete_last_cache),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/processing_engine_trigger",
                access: Access::Admin,
            },
            post(engine::create_trigger),
        ),
        (
            Endpoint {
                method: Method::DELETE,
                path: "/api/v3/configure/processing_engine_trigger",
                access: Access::Admin,
            },
            delete(engine::delete_trigger),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/processing_engine_trigger/enable",
                access: Access::Admin,
            },
            post(engine::enable_trigger),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/processing_engine_trigger/disable",
                access: Access::Admin,
            },
            post(engine::disable_trigger),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/plugin_environment/install_packages",
                access: Access::Admin,
            },
            post(engine::install_packages),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/configure/plugin_environment/install_requirements",
                access: Access::Admin,
            },
            post(engine::install_requirements),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/api/v3/engine/{*path}",
                access: Access::AnyToken,
            },
            get(engine::request_trigger),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/engine/{*path}",
                access: Access::AnyToken,
            },
            post(engine::request_trigger),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/plugin_test/wal",
                access: Access::Admin,
            },
            post(engine::test_wal),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/plugin_test/schedule",
                access: Access::Admin,
            },
            post(engine::test_schedule),
        ),
        (
            Endpoint {
                method: Method::POST,
                path: "/api/v3/plugins/files",
                access: Access::Admin,
            },
            post(engine::create_plugin_file),
        ),
        (
            Endpoint {
                method: Method::PUT,
                path: "/api/v3/plugins/files",
                access: Access::Admin,
            },
            put(engine::update_plugin_file),
        ),
        (
            Endpoint {
                method: Method::PUT,
                path: "/api/v3/plugins/directory",
                access: Access::Admin,
            },
            put(engine::update_plugin_directory),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/ping",
                access: Access::Server,
            },
            any(ping),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/health",
                access: Access::Server,
            },
            get(health),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/api/v1/health",
                access: Access::Server,
            },
            get(health),
        ),
        (
            Endpoint {
                method: Method::GET,
                path: "/metrics",
                access: Access::Server,
            },
            get(metrics_handler),
        ),
    ]
}

/// Every endpoint the router serves (`/ping` also answers POST).
pub fn endpoints() -> Vec<Endpoint> {
    table().into_iter().map(|(e, _)| e).collect()
}

/// The routes of every role. Endpoints whose service is absent answer 404.
pub fn router(state: AppState) -> Router {
    table()
        .into_iter()
        .fold(Router::new(), |router, (endpoint, handler)| {
            router.route(endpoint.path, handler)
        })
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            role_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// the requests in progress finish. HTTP/1 and HTTP/2 (gRPC for Flight)
/// on one port; a connection that does not send a request's headers
/// within `header_read_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    header_read_timeout: std::time::Duration,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving
                    // the connections we have, and try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // TCP_NODELAY: a streamed response is several writes, and Nagle's
        // algorithm would hold the last one until the client's delayed ACK
        // (about 40 ms per query on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Adds `cluster-uuid`, `request-id` and `x-request-id` to every response and logs the request.
/// CORS as InfluxDB 3 Core: a preflight (`OPTIONS`, before auth) is 204 and
/// allows everything, and a successful response carries
/// `Access-Control-Allow-Origin: *`, so browsers can query directly.
async fn common_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // A time-ordered UUID, as InfluxDB 3 Core's `/ping` (and InfluxDB 1.x)
    // gives it; Inflow sends it on every response and logs it.
    let id = uuid::Uuid::now_v7();
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        for (name, value) in [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "*"),
            ("access-control-allow-headers", "*"),
            ("access-control-max-age", "86400"),
        ] {
            h.insert(name, HeaderValue::from_static(value));
        }
        if let Ok(v) = HeaderValue::from_str(&state.catalog.uuid().to_string()) {
            h.insert("cluster-uuid", v);
        }
        return resp;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let span = tracing::debug_span!("request", request_id = %id, %method, %path);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    let status = resp.status();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if status.is_server_error() {
        tracing::warn!(request_id = %id, %method, %path, status = status.as_u16(), elapsed_ms, "request failed");
    } else {
        tracing::debug!(request_id = %id, %method, %path, status = status.as_u16(), elapsed_ms, "request");
    }
    let headers = resp.headers_mut();
    if status.as_u16() < 400 {
        headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    }
    if let Ok(v) = HeaderValue::from_str(&state.catalog.uuid().to_string()) {
        headers.insert("cluster-uuid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&id.hyphenated().to_string()) {
        headers.insert("request-id", v.clone());
        headers.insert("x-request-id", v);
    }
    resp
}

/// The role an endpoint needs: writes and the configure and token API
/// (which change the catalog) need an ingester, queries a querier; the
/// server endpoints and node stop are served by every role.
fn role_for(path: &str) -> Option<&'static str> {
    match path {
        "/api/v3/write_lp" | "/api/v2/write" | "/write" => Some("ingest"),
        "/api/v3/enterprise/configure/node/stop" => None,
        p if p.starts_with("/api/v3/configure")
            || p.starts_with("/api/v3/enterprise/configure") =>
        {
            Some("ingest")
        }
        p if p.starts_with("/api/v3/query") || p == "/query" => Some("query"),
        _ => None,
    }
}

/// Answers a request this node's roles do not serve with 421 Misdirected
/// Request, naming the nodes that do serve it.
async fn role_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !state.auth.enabled && path.starts_with("/api/v3/configure/token") {
        // As InfluxDB 3 Core: without auth there are no tokens to manage.
        return ApiError::NotAllowed("endpoint disabled, started without auth".into())
            .respond(Family::V3);
    }
    let Some(role) = role_for(path) else {
        return next.run(req).await;
    };
    if state.node.has(role) {
        return next.run(req).await;
    }
    let family = if path.starts_with("/api/v2/") {
        Family::V2
    } else if path == "/write" || path == "/query" {
        Family::V1
    } else {
        Family::V3
    };
    let (what, kind) = match role {
        "ingest" => ("writes and catalog changes", "an ingester"),
        _ => ("queries", "a querier"),
    };
    let running = state.node.registry.running(role).await;
    let targets = if running.is_empty() {
        format!(
            "no {} is running in this cluster now",
            &kind[kind.find(' ').map_or(0, |i| i + 1)..]
        )
    } else {
        running.join(", ")
    };
    ApiError::WrongNode(format!(
        "node {} ({}) does not serve {what}; send them to {kind}: {targets}",
        state.node.id,
        state.node.roles.join(", ")
    ))
    .respond(family)
}

/// Server endpoints need a valid token unless `--disable-authz` opens them.
/// They accept every scheme, since v1, v2 and v3 clients all call them.
fn check_server_endpoint(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Box<Response>> {
    if state.auth.open.contains(name) {
        return Ok(());
    }
    auth::authorize(
        &state.auth,
        &state.catalog,
        Family::V1,
        headers,
        query,
        auth::Need::AnyToken,
    )
    .map(|_| ())
    .map_err(|e| Box::new(e.respond(Family::V3)))
}

/// GET and POST answer with the version; HEAD is 404, as InfluxDB 3 does.
async fn ping(
    State(state): State<AppState>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::POST {
        return not_found().await;
    }
    if let Err(r) = check_server_endpoint(&state, "ping", &headers, q.as_deref()) {
        return *r;
    }
    let body = serde_json::json!({
        "version": API_VERSION,
        "revision": concat!("inflow-", env!("CARGO_PKG_VERSION")),
        "process_id": state.process_id.to_string(),
    });
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert("x-influxdb-version", HeaderValue::from_static(API_VERSION));
    h.insert("x-influxdb-build", HeaderValue::from_static(API_BUILD));
    resp
}

async fn health(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_server_endpoint(&state, "health", &headers, q.as_deref()) {
        return *r;
    }
    if state.stopping.load(std::sync::atomic::Ordering::Acquire) {
        // Draining for a stop: out of the Service's endpoints.
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping").into_response();
    }
    "OK".into_response()
}

async fn metrics_handler(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_server_endpoint(&state, "metrics", &headers, q.as_deref()) {
        return *r;
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        // The OpenMetrics end marker InfluxDB 3 Core ends its text with; the
        // Prometheus text parser reads it as a comment.
        state.metrics.render() + "# EOF\n",
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not found"})),
    )
        .into_response()
}
