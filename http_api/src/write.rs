//! The three write endpoints: `/api/v3/write_lp`, `/api/v2/write` and `/write`.
//!
//! They differ only in parameter names, precision spellings, the
//! `accept_partial` default and the error body; all of them end in
//! [`WriteService::write_lp`].

use std::io::Read;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use line_protocol::Precision;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, Family};
use services::{WriteError, WriteRequest};

#[derive(Debug, Default, Deserialize)]
struct WriteParams {
    db: Option<String>,
    bucket: Option<String>,
    rp: Option<String>,
    precision: Option<String>,
    accept_partial: Option<bool>,
    no_sync: Option<bool>,
}

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
    let params: WriteParams = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))?;
    let db = match family {
        Family::V2 => params.bucket.or(params.db),
        _ => params.db,
    }
    .filter(|d| !d.is_empty())
    .ok_or_else(|| {
        ApiError::BadRequest(match family {
            Family::V2 => "missing query parameter 'bucket' (the database to write to)".into(),
            _ => "missing query parameter 'db' (the database to write to)".into(),
        })
    })?;
    let db = if family == Family::V1 {
        v1_database(db, params.rp.as_deref())?
    } else {
        db
    };
    crate::auth::authorize(
        &state.auth,
        &state.catalog,
        family,
        &headers,
        query.as_deref(),
        crate::auth::Need::Write(&db),
    )?;
    let precision = match (family, params.precision.as_deref()) {
        (Family::V3, None) => Precision::Auto,
        (_, None) => Precision::Nanosecond,
        (Family::V3, Some(p)) => Precision::parse_v3(p).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid precision '{p}': use auto, nanosecond, microsecond, millisecond or second"
            ))
        })?,
        (Family::V2, Some(p)) => Precision::parse_v2(p).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid precision '{p}': use ns, us, ms or s"))
        })?,
        (Family::V1, Some(p)) => Precision::parse_v1(p).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid precision '{p}': use n, ns, u, us, µ, ms, s, m or h"
            ))
        })?,
    };
    let accept_partial = params.accept_partial.unwrap_or(family == Family::V3);
    let body = read_body(body, &headers, state.max_request_size).await?;
    state.metrics.write_bytes.inc_by(body.len() as u64);
    let outcome = writer
        .write_lp(WriteRequest {
            db,
            body,
            precision,
            accept_partial,
            no_sync: params.no_sync.unwrap_or(false),
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

/// Reads the body, refusing more than `limit` bytes before and after
/// decompression, so neither a large body nor a gzip bomb gets through.
/// The database a v1 write goes to, as InfluxDB 3 Core names it: `db`,
/// or `db/rp` for a retention policy other than the default (`autogen` or
/// none). A `/` in either is refused, since `db/rp` would be ambiguous.
fn v1_database(db: String, rp: Option<&str>) -> Result<String, ApiError> {
    if db.contains('/') || rp.is_some_and(|rp| rp.contains('/')) {
        return Err(ApiError::BadRequest(
            "the database and retention policy of a v1 write must not contain '/'; give the retention policy as 'rp'"
                .into(),
        ));
    }
    Ok(match rp {
        None | Some("" | "''" | "autogen") => db,
        Some(rp) => format!("{db}/{rp}"),
    })
}

pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
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
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
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
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(raw),
        Some("gzip" | "x-gzip") => {
            // MultiGzDecoder reads every member of a concatenated gzip stream.
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("invalid gzip request body: {e}")))?;
            if out.len() > limit {
                return Err(too_large());
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::UnsupportedEncoding(format!(
            "unsupported Content-Encoding '{other}': send the body uncompressed or with gzip"
        ))),
    }
}
