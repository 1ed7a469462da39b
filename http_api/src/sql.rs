//! `/api/v3/query_sql`: GET with a query string, POST with JSON or a form.
//!
//! Results are computed before the status line is sent until they end or
//! pass 1 MiB, so planning errors and early execution errors get a proper
//! status code and small results go out whole (with a `content-length`);
//! past that, the results stream batch by batch.

use std::time::Instant;

use crate::format::{Encoder, QueryFormat};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http_input::SqlParams;
use services::{INTERNAL_DB, QueryError, SqlQuery};

use crate::error::{ApiError, Family};
use crate::write::read_body;
use crate::{AppState, BodyLimits};

pub(crate) async fn query_sql(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let in_flight = state.metrics.query_in_flight();
    match run(&state, method, raw, &headers, body, started, in_flight).await {
        Ok(resp) => resp,
        Err(e) => {
            state.metrics.observe_query("sql", started.elapsed(), false);
            e.respond(Family::V3)
        }
    }
}

async fn params(
    method: &Method,
    raw: Option<String>,
    headers: &HeaderMap,
    body: Body,
    limit: BodyLimits,
) -> Result<SqlParams, ApiError> {
    let bytes = if method == Method::POST {
        read_body(body, headers, limit).await?
    } else {
        Bytes::new()
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    SqlParams::from_request(raw.as_deref(), Some((&bytes, ctype))).map_err(ApiError::BadRequest)
}

async fn run(
    state: &AppState,
    method: Method,
    raw: Option<String>,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
    in_flight: crate::metrics::InFlight,
) -> Result<Response, ApiError> {
    let Some(engine) = state.query.as_ref() else {
        return Err(ApiError::NotFound(
            "this node does not serve queries".into(),
        ));
    };
    let p = params(&method, raw, headers, body, state.body_limits).await?;
    let db =
        p.db.filter(|d| !d.is_empty())
            .ok_or_else(|| ApiError::BadRequest("missing parameter 'db'".into()))?;
    let q =
        p.q.filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ApiError::BadRequest("missing parameter 'q' (the query)".into()))?;
    let need = if db == INTERNAL_DB {
        crate::auth::Need::AnyToken
    } else {
        crate::auth::Need::Read(&db)
    };
    let caller =
        crate::auth::authorize(&state.auth, &state.catalog, Family::V3, headers, None, need)?;
    let format = query_format(p.format.as_deref(), headers)?;
    let bind = match p.params {
        None => None,
        Some(serde_json::Value::Object(m)) => Some(m),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(serde_json::Value::String(s)) => match serde_json::from_str(&s) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => {
                return Err(ApiError::BadRequest(
                    "invalid 'params': expected a JSON object such as {\"host\": \"a\"}".into(),
                ));
            }
        },
        Some(_) => {
            return Err(ApiError::BadRequest(
                "invalid 'params': expected a JSON object such as {\"host\": \"a\"}".into(),
            ));
        }
    };
    let may_read = |table: &str| crate::auth::may_read_system(&caller, table);
    let results = engine
        .sql(SqlQuery {
            db: &db,
            sql: &q,
            params: bind.as_ref(),
            may_read_system: &may_read,
        })
        .await
        .map_err(query_error)?;
    let mut encoder = Encoder::new(format, results.schema);
    let mut stream = results.batches;
    // Results are encoded before the status line until they end or pass
    // `WHOLE_RESPONSE_BYTES`: an early execution error still gets a proper
    // status code, and a small result goes out whole, with a
    // `content-length`, in one write. A larger one streams the rest.
    let mut head = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(b)) => {
                encoder
                    .batch_into(&b, &mut head)
                    .map_err(|e| ApiError::Internal(format!("encoding results: {e}")))?;
                if head.len() > WHOLE_RESPONSE_BYTES {
                    break;
                }
            }
            Some(Err(e)) => return Err(query_error(e)),
            None => {
                encoder
                    .finish_into(&mut head)
                    .map_err(|e| ApiError::Internal(format!("encoding results: {e}")))?;
                state.metrics.observe_query("sql", started.elapsed(), true);
                return Ok(respond(format, Body::from(head)));
            }
        }
    }
    let metrics = state.metrics.clone();
    // The query counts as running until its stream (which holds the
    // guard) is dropped.
    let rest = futures::stream::unfold(
        (
            stream,
            encoder,
            false,
            Some(bytes::Bytes::from(head)),
            in_flight,
        ),
        move |(mut stream, mut encoder, done, first, in_flight)| {
            let metrics = metrics.clone();
            async move {
                if let Some(f) = first {
                    return Some((
                        Ok::<_, std::io::Error>(f),
                        (stream, encoder, done, None, in_flight),
                    ));
                }
                if done {
                    return None;
                }
                match stream.next().await {
                    Some(Ok(b)) => match encoder.batch(&b) {
                        Ok(bytes) => Some((Ok(bytes), (stream, encoder, false, None, in_flight))),
                        Err(e) => {
                            metrics.observe_query("sql", started.elapsed(), false);
                            Some((
                                Err(std::io::Error::other(e)),
                                (stream, encoder, true, None, in_flight),
                            ))
                        }
                    },
                    Some(Err(e)) => {
                        // Headers are gone; ending the body early is all we can do.
                        tracing::error!(error = %e, "query failed while streaming results");
                        metrics.observe_query("sql", started.elapsed(), false);
                        Some((
                            Err(std::io::Error::other(e)),
                            (stream, encoder, true, None, in_flight),
                        ))
                    }
                    None => {
                        metrics.observe_query("sql", started.elapsed(), true);
                        match encoder.finish() {
                            Ok(bytes) => {
                                Some((Ok(bytes), (stream, encoder, true, None, in_flight)))
                            }
                            Err(e) => Some((
                                Err(std::io::Error::other(e)),
                                (stream, encoder, true, None, in_flight),
                            )),
                        }
                    }
                }
            }
        },
    );
    Ok(respond(format, Body::from_stream(rest)))
}

/// The output format: the `format` parameter, else `Accept`, else JSON.
pub(crate) fn query_format(
    param: Option<&str>,
    headers: &HeaderMap,
) -> Result<QueryFormat, ApiError> {
    match param {
        Some(f) => QueryFormat::from_param(f).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid format '{f}': use json, jsonl, json_lines, csv, pretty or parquet"
            ))
        }),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(QueryFormat::from_accept)
            .unwrap_or(QueryFormat::Json)),
    }
}

/// Results up to this size are sent whole, with a `content-length`; past
/// it, the rest streams (chunked) as it is computed.
const WHOLE_RESPONSE_BYTES: usize = 1 << 20;

fn respond(format: QueryFormat, body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::DatabaseNotFound(_) => ApiError::NotFound(e.to_string()),
        QueryError::Invalid(m) => ApiError::BadRequest(m),
        QueryError::Forbidden(m) => ApiError::Forbidden(m),
        QueryError::Execution(_) => ApiError::Internal(e.to_string()),
    }
}
