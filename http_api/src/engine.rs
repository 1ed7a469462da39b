//! The processing engine's API, as InfluxDB 3 has it:
//!
//! - POST/DELETE `/api/v3/configure/processing_engine_trigger` (a JSON body
//!   or the query string), POST `.../enable` and `.../disable`: catalog
//!   transactions on the database; 200 with an empty body, 404 for an
//!   unknown database, trigger or plugin, 409 for a name in use, 400 for a
//!   bad specification;
//! - GET/POST `/api/v3/engine/{path}`: the request trigger's answer;
//! - POST `/api/v3/plugin_test/wal` and `.../schedule`: dry runs;
//! - POST/PUT `/api/v3/plugins/files`, PUT `/api/v3/plugins/directory`
//!   (admin only), POST `/api/v3/configure/plugin_environment/install_packages`
//!   and `.../install_requirements`.
//!
//! A server started without `--plugin-dir` answers all of them (but the
//! trigger deletes and disables, which need no plugin) with 400 and says so.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog::{CatalogError, CatalogOp, ErrorBehavior, TriggerDef};
use serde::Deserialize;
use services::engine::{
    EngineError, EngineService, PluginFile, PluginRequest, ScheduleTestRequest, WalTestRequest,
};

use crate::AppState;
use crate::auth::{Need, authorize};
use crate::configure::{admin, db_not_found, json_body, respond};
use crate::error::{ApiError, Family, catalog_error};
use crate::write::read_body;

fn engine(state: &AppState) -> Result<&dyn EngineService, ApiError> {
    state.engine.as_deref().ok_or_else(|| {
        ApiError::BadRequest(
            "the processing engine is not enabled: start the server with --plugin-dir".into(),
        )
    })
}

pub(crate) fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Invalid(m) => ApiError::BadRequest(m),
        EngineError::NotFound(m) => ApiError::NotFound(m),
        EngineError::Forbidden(m) => ApiError::Forbidden(m),
        EngineError::Failed(m) => ApiError::Internal(m),
    }
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

fn json(value: &impl serde::Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// A request's parameters: from the query string when there is one (as
/// Core reads them), otherwise from the JSON body.
async fn params<T: serde::de::DeserializeOwned>(
    state: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    match q.filter(|q| !q.is_empty()) {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}"))),
        None => json_body(body, headers, state.body_limits).await,
    }
}

#[derive(Debug, Deserialize)]
struct TriggerSettings {
    #[serde(default)]
    run_async: bool,
    #[serde(default)]
    error_behavior: ErrorBehavior,
}

#[derive(Debug, Deserialize)]
struct NodeSpec {
    #[serde(default)]
    node_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CreateTrigger {
    db: String,
    #[serde(default)]
    plugin_filename: Option<String>,
    /// Core 3.5's name for `plugin_filename`.
    #[serde(default)]
    path: Option<String>,
    trigger_name: String,
    trigger_specification: String,
    #[serde(default)]
    trigger_settings: Option<TriggerSettings>,
    #[serde(default)]
    trigger_arguments: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    node_spec: Option<NodeSpec>,
}

/// Trigger arguments are strings to the plugin; numbers and booleans
/// given in JSON become their text.
fn arguments(
    args: Option<BTreeMap<String, serde_json::Value>>,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    args.map(|m| {
        m.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Number(n) => Ok((k, n.to_string())),
                serde_json::Value::Bool(b) => Ok((k, b.to_string())),
                other => Err(ApiError::BadRequest(format!(
                    "trigger argument '{k}' must be a string, not {other}"
                ))),
            })
            .collect()
    })
    .transpose()
}

/// POST /api/v3/configure/processing_engine_trigger
pub(crate) async fn create_trigger(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: CreateTrigger = json_body(body, &headers, state.body_limits).await?;
            let engine = engine(&state)?;
            let Some(filename) = req.plugin_filename.clone().or(req.path.clone()) else {
                return Err(ApiError::BadRequest(
                    "give the plugin in 'plugin_filename'".into(),
                ));
            };
            if req.trigger_name.is_empty() {
                return Err(ApiError::BadRequest("the trigger name is empty".into()));
            }
            engine
                .check_spec(&req.trigger_specification)
                .map_err(engine_error)?;
            let request_path = req.trigger_specification.strip_prefix("request:");
            let plugin_filename = engine.check_plugin(&filename).map_err(engine_error)?;
            let settings = req.trigger_settings.unwrap_or(TriggerSettings {
                run_async: false,
                error_behavior: ErrorBehavior::Log,
            });
            let def = TriggerDef {
                name: req.trigger_name.clone(),
                plugin_filename,
                specification: req.trigger_specification.clone(),
                arguments: arguments(req.trigger_arguments)?,
                run_async: settings.run_async,
                error_behavior: settings.error_behavior,
                disabled: req.disabled,
                node_id: req.node_spec.and_then(|n| n.node_id),
            };
            state
                .catalog
                .update(|s| {
                    let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                    if d.triggers.contains_key(&def.name) {
                        return Err(CatalogError::AlreadyExists(format!(
                            "a trigger named '{}' already exists in database {}",
                            def.name, req.db
                        )));
                    }
                    if let Some(path) = request_path {
                        for other in s.databases() {
                            for t in other.triggers.values() {
                                if t.specification.strip_prefix("request:") == Some(path) {
                                    return Err(CatalogError::AlreadyExists(format!(
                                        "the request path '{path}' is taken by trigger {} in database {}",
                                        t.name, other.name
                                    )));
                                }
                            }
                        }
                    }
                    Ok(vec![CatalogOp::CreateTrigger {
                        db_id: d.id,
                        trigger: def.clone(),
                    }])
                })
                .await
                .map_err(catalog_error)?;
            engine.triggers_changed();
            Ok(ok())
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct TriggerId {
    db: String,
    trigger_name: String,
    #[serde(default)]
    force: bool,
}

fn trigger_not_found(db: &str, name: &str) -> CatalogError {
    CatalogError::NotFound(format!("trigger not found: {name} in database {db}"))
}

/// DELETE /api/v3/configure/processing_engine_trigger
pub(crate) async fn delete_trigger(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: TriggerId = params(&state, q.as_deref(), &headers, body).await?;
            state
                .catalog
                .update(|s| {
                    let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                    let t = d
                        .triggers
                        .get(&req.trigger_name)
                        .ok_or_else(|| trigger_not_found(&req.db, &req.trigger_name))?;
                    if !t.disabled && !req.force {
                        // Core's words: an enabled trigger is deleted with
                        // force (or disabled first).
                        return Err(CatalogError::Invalid(format!(
                            "Cannot delete running plugin {}. Disable it first or use --force.",
                            req.trigger_name
                        )));
                    }
                    Ok(vec![CatalogOp::DeleteTrigger {
                        db_id: d.id,
                        name: req.trigger_name.clone(),
                    }])
                })
                .await
                .map_err(catalog_error)?;
            if let Some(e) = &state.engine {
                e.triggers_changed();
            }
            Ok(ok())
        }
        .await,
    )
}

async fn set_disabled(
    state: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
    disabled: bool,
) -> Response {
    respond(
        async {
            admin(state, headers, q)?;
            let req: TriggerId = serde_urlencoded::from_str(q.unwrap_or(""))
                .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
            if !disabled {
                engine(state)?;
            }
            state
                .catalog
                .update(|s| {
                    let d = s.db(&req.db).ok_or_else(|| db_not_found(&req.db))?;
                    let t = d
                        .triggers
                        .get(&req.trigger_name)
                        .ok_or_else(|| trigger_not_found(&req.db, &req.trigger_name))?;
                    // Already so: nothing to do, and still 200 (as Core).
                    Ok(if t.disabled == disabled {
                        vec![]
                    } else {
                        vec![CatalogOp::SetTriggerDisabled {
                            db_id: d.id,
                            name: req.trigger_name.clone(),
                            disabled,
                        }]
                    })
                })
                .await
                .map_err(catalog_error)?;
            if let Some(e) = &state.engine {
                e.triggers_changed();
            }
            Ok(ok())
        }
        .await,
    )
}

/// POST /api/v3/configure/processing_engine_trigger/enable
pub(crate) async fn enable_trigger(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    set_disabled(&state, q.as_deref(), &headers, false).await
}

/// POST /api/v3/configure/processing_engine_trigger/disable
pub(crate) async fn disable_trigger(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    set_disabled(&state, q.as_deref(), &headers, true).await
}

/// GET/POST /api/v3/engine/{path}
pub(crate) async fn request_trigger(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            authorize(
                &state.auth,
                &state.catalog,
                Family::V3,
                &headers,
                q.as_deref(),
                Need::AnyToken,
            )?;
            let engine = engine(&state)?;
            let query: HashMap<String, String> =
                serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
                    .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
            // The plugin never sees the caller's credentials.
            let plugin_headers = headers
                .iter()
                .filter(|(k, _)| *k != header::AUTHORIZATION)
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = read_body(body, &headers, state.body_limits).await?;
            let answer = engine
                .request(PluginRequest {
                    path,
                    query: query.into_iter().collect(),
                    headers: plugin_headers,
                    body,
                })
                .await
                .map_err(engine_error)?;
            let status = StatusCode::from_u16(answer.status).map_err(|_| {
                ApiError::Internal(format!(
                    "the plugin answered with status {}, which is not an HTTP status",
                    answer.status
                ))
            })?;
            let mut resp = (status, answer.body).into_response();
            for (k, v) in answer.headers {
                match (
                    HeaderName::try_from(k.as_str()),
                    HeaderValue::try_from(v.as_str()),
                ) {
                    (Ok(k), Ok(v)) => {
                        resp.headers_mut().insert(k, v);
                    }
                    _ => tracing::warn!(header = %k, "a request plugin's header is not valid HTTP"),
                }
            }
            Ok(resp)
        }
        .await,
    )
}

/// POST /api/v3/plugin_test/wal
pub(crate) async fn test_wal(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: WalTestRequest = json_body(body, &headers, state.body_limits).await?;
            let out = engine(&state)?.test_wal(req).await.map_err(engine_error)?;
            json(&out)
        }
        .await,
    )
}

/// POST /api/v3/plugin_test/schedule
pub(crate) async fn test_schedule(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: ScheduleTestRequest = json_body(body, &headers, state.body_limits).await?;
            let out = engine(&state)?
                .test_schedule(req)
                .await
                .map_err(engine_error)?;
            json(&out)
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct PluginFileRequest {
    plugin_name: String,
    content: String,
}

/// POST /api/v3/plugins/files: a new plugin file named `plugin_name`.
pub(crate) async fn create_plugin_file(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: PluginFileRequest = json_body(body, &headers, state.body_limits).await?;
            engine(&state)?
                .write_plugin_file(&req.plugin_name, &req.content)
                .await
                .map_err(engine_error)?;
            Ok(ok())
        }
        .await,
    )
}

/// The plugin file of the trigger named `name` (in any database).
fn trigger_plugin(state: &AppState, name: &str) -> Result<String, ApiError> {
    state
        .catalog
        .state()
        .databases()
        .find_map(|d| d.triggers.get(name).map(|t| t.plugin_filename.clone()))
        .ok_or_else(|| {
            ApiError::NotFound(format!("plugin not found: no trigger is named '{name}'"))
        })
}

/// PUT /api/v3/plugins/files: replaces the plugin file of the trigger
/// named `plugin_name`.
pub(crate) async fn update_plugin_file(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: PluginFileRequest = json_body(body, &headers, state.body_limits).await?;
            let engine = engine(&state)?;
            let file = trigger_plugin(&state, &req.plugin_name)?;
            engine
                .write_plugin_file(&file, &req.content)
                .await
                .map_err(engine_error)?;
            Ok(ok())
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct PluginDirectoryRequest {
    plugin_name: String,
    files: Vec<PluginFile>,
}

/// PUT /api/v3/plugins/directory: replaces every file of the multi-file
/// plugin of the trigger named `plugin_name`.
pub(crate) async fn update_plugin_directory(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: PluginDirectoryRequest = json_body(body, &headers, state.body_limits).await?;
            let engine = engine(&state)?;
            let dir = trigger_plugin(&state, &req.plugin_name)?;
            if req.files.is_empty() {
                return Err(ApiError::BadRequest("no files given".into()));
            }
            engine
                .write_plugin_directory(&dir, &req.files)
                .await
                .map_err(engine_error)?;
            Ok(ok())
        }
        .await,
    )
}

/// What to install into the plugins' environment: the packages of
/// `install_packages`, or the file of `install_requirements`.
#[derive(Debug, Deserialize)]
struct Install {
    #[serde(default)]
    packages: Option<Vec<String>>,
    #[serde(default)]
    requirements_location: Option<String>,
}

async fn install(state: AppState, q: Option<String>, headers: HeaderMap, body: Body) -> Response {
    respond(
        async {
            admin(&state, &headers, q.as_deref())?;
            let req: Install = params(&state, q.as_deref(), &headers, body).await?;
            let engine = engine(&state)?;
            match (req.packages, req.requirements_location) {
                (Some(packages), _) => engine.install_packages(&packages).await,
                (None, Some(location)) => engine.install_requirements(&location).await,
                (None, None) => {
                    return Err(ApiError::BadRequest(
                        "give 'packages' or 'requirements_location'".into(),
                    ));
                }
            }
            .map_err(engine_error)?;
            Ok(ok())
        }
        .await,
    )
}

/// POST /api/v3/configure/plugin_environment/install_packages
pub(crate) async fn install_packages(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    install(state, q, headers, body).await
}

/// POST /api/v3/configure/plugin_environment/install_requirements
pub(crate) async fn install_requirements(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    install(state, q, headers, body).await
}
