//! The three write endpoints: `/api/v3/write_lp`, `/api/v2/write` and `/write`.
//!
//! They differ only in parameter names, precision spellings, the
//! `accept_partial` default and the error body; all of them end in
//! [`WriteService::write_lp`].

use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_input::{BodyError, WriteApi, WriteTarget};

use crate::error::{ApiError, Family};
use crate::{AppState, BodyLimits};
use services::{WriteError, WriteRequest};

pub(crate) async fn write_v3(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(state, Family::V3, q, headers, body).await
}

pub(crate) async fn write_v2(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(state, Family::V2, q, headers, body).await
}

pub(crate) async fn write_v1(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    write(state, Family::V1, q, headers, body).await
}

async fn write(
    state: AppState,
    family: Family,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let api = match family {
        Family::V1 => "v1",
        Family::V2 => "v2",
        Family::V3 => "v3",
    };
    let started = Instant::now();
    let result = if state.stopping.load(std::sync::atomic::Ordering::Acquire) {
        Err(ApiError::Unavailable(
            "this ingester is stopping: write to another one".into(),
        ))
    } else {
        state
            .writes_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let r = handle(&state, family, query, headers, body).await;
        state
            .writes_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        r
    };
    let resp = match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.respond(family),
    };
    let m = &state.metrics;
    m.write_requests
        .with_label_values(&[api, resp.status().as_str()])
        .inc();
    m.write_duration
        .with_label_values(&[api])
        .observe(started.elapsed().as_secs_f64());
    resp
}

async fn handle(
    state: &AppState,
    family: Family,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    let Some(writer) = state.writer.as_ref() else {
        return Err(ApiError::NotFound(
            "this node does not accept writes".into(),
        ));
    };
    let api = match family {
        Family::V1 => WriteApi::V1,
        Family::V2 => WriteApi::V2,
        Family::V3 => WriteApi::V3,
    };
    let target = WriteTarget::from_query(api, query.as_deref()).map_err(ApiError::BadRequest)?;
    crate::auth::authorize(
        &state.auth,
        &state.catalog,
        family,
        &headers,
        query.as_deref(),
        crate::auth::Need::Write(&target.db),
    )?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let Some(_reserved) = state.write_budget.try_reserve(
        declared
            .unwrap_or(state.body_limits.max_bytes)
            .min(state.body_limits.max_bytes),
    ) else {
        // Read and dropped, chunk by chunk, so the client gets to read the
        // 429 (a client still sending its body into a closed connection
        // sees only a broken pipe) and can reuse the connection.
        discard_body(body, state.body_limits).await;
        return Err(ApiError::Busy(format!(
            "too many writes in flight (--max-write-bytes-in-flight is {} bytes); retry after a second",
            state.write_budget.bytes()
        )));
    };
    let body = read_body(body, &headers, state.body_limits).await?;
    state.metrics.write_bytes.inc_by(body.len() as u64);
    let outcome = writer
        .write_lp(WriteRequest {
            db: target.db,
            body,
            precision: target.precision,
            accept_partial: target.accept_partial,
            no_sync: target.no_sync,
        })
        .await;
    match outcome {
        Ok(o) => {
            state.metrics.write_lines.inc_by(o.lines_written as u64);
            state
                .metrics
                .write_lines_rejected
                .inc_by(o.rejected.len() as u64);
            if o.rejected.is_empty() {
                Ok(())
            } else {
                Err(ApiError::Lines {
                    partial: true,
                    rejected: o.rejected,
                })
            }
        }
        Err(WriteError::Rejected(rejected)) => {
            state
                .metrics
                .write_lines_rejected
                .inc_by(rejected.len() as u64);
            Err(ApiError::Lines {
                partial: false,
                rejected,
            })
        }
        Err(WriteError::InvalidDatabaseName(m)) => Err(ApiError::BadRequest(m)),
        Err(WriteError::Unavailable(m)) => Err(ApiError::Unavailable(m)),
        Err(WriteError::Internal(m)) => Err(ApiError::Internal(m)),
    }
}

/// Reads `body` to its end (at most the largest body, within the read
/// timeout) and drops it as it arrives.
async fn discard_body(body: Body, limits: BodyLimits) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    let _ = tokio::time::timeout(limits.read_timeout, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > limits.max_bytes {
                break;
            }
        }
    })
    .await;
}

/// Reads the body, refusing more than `limit` bytes before and after
/// decompression, so neither a large body nor a gzip bomb gets through.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limits: BodyLimits,
) -> Result<Bytes, ApiError> {
    let BodyLimits {
        max_bytes: limit,
        read_timeout,
    } = limits;
    let too_large = || {
        ApiError::TooLarge(format!(
            "request body is larger than the maximum of {limit} bytes; split the batch or raise --max-http-request-size"
        ))
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let read = tokio::time::timeout(read_timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ApiError::Timeout(format!(
                "the request body did not arrive within {} ms (--http-body-read-timeout)",
                read_timeout.as_millis()
            ))
        })?;
    let raw = read.map_err(|e| {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::BadRequest(format!("failed to read the request body: {e}"))
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    http_input::decode_body(raw, encoding, limit).map_err(|e| match e {
        BodyError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
        BodyError::InvalidGzip(_) => ApiError::BadRequest(e.to_string()),
        BodyError::UnsupportedEncoding(_) => ApiError::UnsupportedEncoding(e.to_string()),
    })
}
