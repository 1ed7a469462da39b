//! The node API: POST `/api/v3/enterprise/configure/node/stop`, and POST
//! `/api/v3/enterprise/configure/node/drain` (this node, before it stops).
//!
//! Marks a node stopped in the node registry, once its process is gone: a
//! replacement may then take its node id at once instead of waiting out the
//! lease timeout. A process that still runs stops at its next heartbeat.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, Family};
use crate::write::read_body;

#[derive(Debug, Deserialize)]
struct StopNodeRequest {
    node_id: String,
}

/// 200 once the node is marked stopped, 404 if no such node registered.
pub(crate) async fn stop_node(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        crate::configure::admin(&state, &headers, q.as_deref())?;
        let bytes = read_body(body, &headers, state.body_limits).await?;
        let req: StopNodeRequest = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::BadRequest(format!(
                "invalid JSON request body: {e}; expected {{\"node_id\": \"...\"}}"
            ))
        })?;
        match state.node.registry.stop(&req.node_id).await {
            Ok(Some(_)) => {
                tracing::info!(node_id = %req.node_id, "node marked stopped");
                Ok(StatusCode::OK.into_response())
            }
            Ok(None) => Err(ApiError::NotFound(format!(
                "node '{}' not found",
                req.node_id
            ))),
            Err(e) => Err(ApiError::Unavailable(format!(
                "could not mark node '{}' stopped: {e}",
                req.node_id
            ))),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.respond(Family::V3))
}

/// POST `/api/v3/enterprise/configure/node/drain` (admin): this node stops
/// taking writes (503, and `/health` answers 503 so the Service drops it),
/// waits for the writes it is answering, then persists its whole buffer
/// and deletes its WAL. What a pod's preStop hook calls
/// (`inflow-ingester drain`), so that the SIGTERM after it finds nothing
/// left to do. 200 `{"persisted": true}`, or `false` past 45 s.
pub(crate) async fn drain_node(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    use std::sync::atomic::Ordering;
    let result = async {
        crate::configure::admin(&state, &headers, q.as_deref())?;
        let Some(writer) = state.writer.as_ref() else {
            return Err(ApiError::NotFound(
                "this node does not accept writes".into(),
            ));
        };
        state.stopping.store(true, Ordering::Release);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
        while state.writes_in_flight.load(Ordering::Acquire) > 0
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let persisted = writer.drain(left).await;
        tracing::info!(persisted, "node drained for a stop");
        Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({"persisted": persisted})),
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.respond(Family::V3))
}
