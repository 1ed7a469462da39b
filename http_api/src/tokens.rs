//! The token API: admin, regenerate, named admin, resource tokens, delete.
//!
//! Every response that creates a token carries the token string; it is the
//! only time it is shown. The catalog keeps the SHA-512.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::tokens::{ADMIN_TOKEN_NAME, generate_token, hash_token};
use catalog::{CatalogError, CatalogOp, CatalogState, Permission, TokenInfo};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Need, authorize, now_ms};
use crate::error::{ApiError, Family, catalog_error};
use crate::write::read_body;
use crate::{AppState, BodyLimits};

/// RFC 3339 with milliseconds, as InfluxDB 3 shows token times.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn created(info: &TokenInfo, token: &str) -> Response {
    let mut body = json!({
        "id": info.id,
        "name": info.name.as_ref(),
        "token": token,
        "hash": hex::encode(&info.hash),
        "created_at": rfc3339_ms(info.created_at_ms),
        "expiry": info.expiry_ms.map(rfc3339_ms),
    });
    if !info.admin {
        body["permissions"] = json!(info.permissions);
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Creates a token named `name`; with `replace`, an existing token of that
/// name is revoked in the same transaction.
async fn create(
    state: &AppState,
    name: &str,
    admin: bool,
    permissions: Vec<Permission>,
    expiry_secs: Option<u64>,
    replace: bool,
) -> Result<Response, ApiError> {
    let token = generate_token()
        .map_err(|e| ApiError::Internal(format!("no randomness for a token: {e}")))?;
    let hash = hash_token(&token);
    let created_at_ms = now_ms();
    let expiry_ms = match expiry_secs {
        None => None,
        Some(s) => {
            let ms = i64::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .and_then(|ms| ms.checked_add(created_at_ms))
                .ok_or_else(|| ApiError::BadRequest(format!("expiry_secs {s} is too large")))?;
            Some(ms)
        }
    };
    let name: Arc<str> = Arc::from(name);
    let plan = |s: &CatalogState| {
        let mut ops = Vec::new();
        match s.token_by_name(&name) {
            Some(old) if replace => ops.push(CatalogOp::DeleteToken { id: old.id }),
            Some(_) => {
                return Err(CatalogError::AlreadyExists(format!(
                    "a token named '{name}' already exists"
                )));
            }
            None if replace => {
                return Err(CatalogError::NotFound(format!(
                    "there is no token named '{name}'; create one with POST /api/v3/configure/token/admin"
                )));
            }
            None => {}
        }
        ops.push(CatalogOp::CreateToken {
            token: TokenInfo {
                id: s.next_token_id(),
                name: Arc::clone(&name),
                hash: hash.clone(),
                created_at_ms,
                expiry_ms,
                admin,
                permissions: permissions.clone(),
            },
        });
        Ok(ops)
    };
    let new_state = state.catalog.update(plan).await.map_err(catalog_error)?;
    let info = new_state
        .token_by_name(&name)
        .ok_or_else(|| ApiError::Internal("token vanished after creation".into()))?;
    Ok(created(info, &token))
}

fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| e.respond(Family::V3))
}

/// POST /api/v3/configure/token/admin: the first admin token needs no auth;
/// once one exists the endpoint needs an admin token, and refuses (409) to
/// hand out a second one.
pub(crate) async fn create_admin(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(async {
        if state.catalog.state().token_by_name(ADMIN_TOKEN_NAME).is_some() {
            authorize(&state.auth, &state.catalog, Family::V3, &headers, q.as_deref(), Need::Admin)?;
            return Err(ApiError::Conflict(
                "an admin token already exists; regenerate it with POST /api/v3/configure/token/admin/regenerate".into(),
            ));
        }
        create(&state, ADMIN_TOKEN_NAME, true, vec![], None, false).await
    }.await)
}

/// POST /api/v3/configure/token/admin/regenerate: a new operator token; the old one stops working.
pub(crate) async fn regenerate_admin(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            authorize(
                &state.auth,
                &state.catalog,
                Family::V3,
                &headers,
                q.as_deref(),
                Need::Admin,
            )?;
            create(&state, ADMIN_TOKEN_NAME, true, vec![], None, true).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct NamedAdmin {
    token_name: String,
    expiry_secs: Option<u64>,
}

/// POST /api/v3/configure/token/named_admin.
pub(crate) async fn create_named_admin(
    State(state): State<AppState>,
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
                Need::Admin,
            )?;
            let req: NamedAdmin = json_body(body, &headers, state.body_limits).await?;
            check_name(&req.token_name)?;
            create(
                &state,
                &req.token_name,
                true,
                vec![],
                req.expiry_secs,
                false,
            )
            .await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct ResourceToken {
    token_name: String,
    permissions: Vec<Permission>,
    expiry_secs: Option<u64>,
}

/// POST /api/v3/enterprise/configure/token: a token with fine-grained permissions.
pub(crate) async fn create_resource(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        authorize(&state.auth, &state.catalog, Family::V3, &headers, q.as_deref(), Need::Admin)?;
        let req: ResourceToken = json_body(body, &headers, state.body_limits).await?;
        check_name(&req.token_name)?;
        if req.permissions.is_empty() {
            return Err(ApiError::BadRequest("a resource token needs at least one permission".into()));
        }
        for p in &req.permissions {
            if p.resource_names.is_empty() || p.actions.is_empty() {
                return Err(ApiError::BadRequest(
                    "each permission needs resource_names (names or \"*\") and actions (read, write)".into(),
                ));
            }
        }
        create(&state, &req.token_name, false, req.permissions, req.expiry_secs, false).await
    }.await)
}

/// DELETE /api/v3/configure/token?token_name=NAME.
pub(crate) async fn delete(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(async {
        authorize(&state.auth, &state.catalog, Family::V3, &headers, q.as_deref(), Need::Admin)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
        let name = pairs
            .into_iter()
            .find(|(k, _)| k == "token_name")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::BadRequest("missing query parameter 'token_name'".into()))?;
        if name == ADMIN_TOKEN_NAME {
            return Err(ApiError::NotAllowed(format!(
                "the operator token '{ADMIN_TOKEN_NAME}' can't be deleted; regenerate it instead"
            )));
        }
        state
            .catalog
            .update(|s| match s.token_by_name(&name) {
                Some(t) => Ok(vec![CatalogOp::DeleteToken { id: t.id }]),
                None => Err(CatalogError::NotFound(format!("token '{name}' not found"))),
            })
            .await
            .map_err(catalog_error)?;
        Ok(StatusCode::OK.into_response())
    }.await)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "token_name must be 1 to 256 printable characters".into(),
        ));
    }
    Ok(())
}

async fn json_body<T: serde::de::DeserializeOwned>(
    body: Body,
    headers: &HeaderMap,
    limit: BodyLimits,
) -> Result<T, ApiError> {
    let bytes = read_body(body, headers, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON request body: {e}")))
}
