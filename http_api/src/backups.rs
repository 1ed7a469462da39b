//! `POST /api/v3/enterprise/configure/backup`: a backup of this server's
//! object store, as `inflow backup` makes it (see the `backup` crate),
//! answered when it is written.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::configure::admin;
use crate::error::{ApiError, Family};
use crate::write::read_body;

#[derive(Debug, Deserialize)]
struct BackupRequest {
    /// A directory, file:///dir or s3://bucket/prefix.
    to: String,
}

/// POST /api/v3/enterprise/configure/backup {"to"}: 200 with the backup's
/// summary; 400, 401, 403, 503.
pub(crate) async fn create_backup(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, q, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.respond(Family::V3),
    }
}

async fn handle(
    state: &AppState,
    q: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    admin(state, headers, q.as_deref())?;
    let body = read_body(body, headers, state.body_limits).await?;
    let req: BackupRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid request body: {e}; send {{\"to\": \"<directory or s3://bucket/prefix>\"}}"
        ))
    })?;
    let target = backup::Location::open(&req.to).map_err(|e| match e {
        backup::BackupError::Location(m) => ApiError::BadRequest(m),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let m = backup::backup(state.catalog.store(), state.catalog.prefix(), &target)
        .await
        .map_err(|e| match e {
            backup::BackupError::Store(_) | backup::BackupError::TooManyChanges(_) => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok(Json(json!({
        "backup_id": m.backup_id,
        "catalog_seq": m.catalog_seq,
        "parquet_files": m.parquet_files.len(),
        "wal_files": m.wal_files.len(),
        "total_bytes": m.total_bytes,
        "copied_files": m.copied_files,
        "copied_bytes": m.copied_bytes,
        "duration_ms": m.duration_ms,
    }))
    .into_response())
}
