//! Errors of the HTTP API and their bodies, in one place.
//!
//! The same failure looks different on each API family, because clients parse
//! these bodies:
//! - v3 and v1: `{"error": "...", "data": [...]}` (`data` only for line errors);
//! - v2: `{"code": "invalid", "message": "...", "line": N}`.
//!
//! Failures InfluxDB 3 Core answers before routing (a missing or unknown
//! credential, a malformed `Authorization` header) have one body for every
//! family, as there.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use services::{MAX_REPORTED_ERRORS, RejectedLine};

/// The body of every 401, as InfluxDB 3 Core words it.
pub const UNAUTHENTICATED: &str = "the request was not authenticated";

/// Which API family a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/write`, `/query`.
    V1,
    /// `/api/v2/...`.
    V2,
    /// `/api/v3/...` and the server endpoints.
    V3,
}

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid token without the permission.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 405: the operation is not allowed here (deleting the operator
    /// token; the token API of a server started without auth), as Core.
    #[error("{0}")]
    NotAllowed(String),
    /// 413: the body is over `--max-http-request-size`.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a content encoding we can't read.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// 400: some or all lines were rejected. InfluxDB 3 Core's words: a
    /// partial write lists every rejected line; a write that wrote nothing
    /// (`accept_partial=false`, or every line bad) reports the first.
    #[error("{}", if *partial { "partial write of line protocol occurred" } else { "line protocol parsing error" })]
    Lines {
        /// Whether the good lines were written.
        partial: bool,
        /// The rejected lines, in line order.
        rejected: Vec<RejectedLine>,
    },
    /// 421: this node's role does not serve the request (a write sent to a
    /// querier); the message names the nodes that do.
    #[error("{0}")]
    WrongNode(String),
    /// 400: the `Authorization` header is not `<scheme> <token>` with a
    /// scheme of Bearer, Token or Basic (InfluxDB 3 Core's message).
    #[error(
        "Authorization header was malformed, the request was not in the form of 'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"
    )]
    MalformedAuth,
    /// 500.
    #[error("{0}")]
    Internal(String),
    /// 503: a dependency (object store) is failing; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 429: more writes are in flight than the server takes at once;
    /// retry later.
    #[error("{0}")]
    Busy(String),
    /// 408: the body did not arrive within `--http-body-read-timeout`.
    #[error("{0}")]
    Timeout(String),
}

/// The status a catalog failure maps to: 409, 404, 400, 503 or 500.
pub(crate) fn catalog_error(e: catalog::CatalogError) -> ApiError {
    use catalog::CatalogError;
    match e {
        CatalogError::AlreadyExists(m) => ApiError::Conflict(m),
        CatalogError::NotFound(m) => ApiError::NotFound(m),
        CatalogError::Invalid(m) => ApiError::BadRequest(m),
        CatalogError::ObjectStore(_)
        | CatalogError::TooMuchContention(_)
        | CatalogError::LeaseLost { .. } => ApiError::Unavailable(e.to_string()),
        CatalogError::ReadOnly => ApiError::WrongNode(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Lines { rejected, .. } if rejected.iter().any(|r| r.limit) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BadRequest(_) | ApiError::Lines { .. } | ApiError::MalformedAuth => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::WrongNode(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The v2 error code for this failure.
    fn v2_code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_)
            | ApiError::Lines { .. }
            | ApiError::UnsupportedEncoding(_)
            | ApiError::MalformedAuth => "invalid",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not found",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotAllowed(_) => "method not allowed",
            ApiError::TooLarge(_) => "request too large",
            ApiError::WrongNode(_) => "invalid",
            ApiError::Internal(_) => "internal error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy(_) => "too many requests",
            ApiError::Timeout(_) => "request timeout",
        }
    }

    /// The response for a request of `family`.
    pub fn respond(self, family: Family) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        if let ApiError::Unauthorized(reason) = &self {
            tracing::debug!(reason, "unauthorized request");
        }
        let mut resp = match (family, &self) {
            // InfluxDB 3 Core authenticates before routing, so every family
            // gets its one body; the reason is only logged.
            (_, ApiError::Unauthorized(_)) => {
                (status, Json(json!({"error": UNAUTHENTICATED}))).into_response()
            }
            // Core answers a malformed header before routing, with one body
            // for every API family.
            (_, ApiError::MalformedAuth) => {
                (status, Json(json!({"error": self.to_string()}))).into_response()
            }
            (Family::V2, ApiError::Lines { rejected, partial }) => {
                let first = rejected.first();
                let more = rejected.len().saturating_sub(1);
                // Core's v2 message for a rejected write is its write buffer's
                // "write buffer error: parsing for line protocol failed";
                // Inflow adds the first line's error and the count.
                let mut message = if *partial {
                    self.to_string()
                } else {
                    "write buffer error: parsing for line protocol failed".to_string()
                };
                if let Some(r) = first {
                    message.push_str(&format!(": line {}: {}", r.line_number, r.error_message));
                }
                if more > 0 {
                    message.push_str(&format!(" (and {more} more rejected lines)"));
                }
                let mut body = json!({"code": self.v2_code(), "message": message});
                if let Some(r) = first {
                    body["line"] = json!(r.line_number);
                }
                (status, Json(body)).into_response()
            }
            (Family::V2, _) => (
                status,
                Json(json!({"code": self.v2_code(), "message": self.to_string()})),
            )
                .into_response(),
            (
                _,
                ApiError::Lines {
                    rejected,
                    partial: false,
                },
            ) => {
                let data = rejected.first().map(|r| {
                    json!({
                        "original_line": r.original_line,
                        "line_number": r.line_number,
                        "error_message": r.error_message,
                    })
                });
                (
                    status,
                    Json(json!({"error": self.to_string(), "data": data})),
                )
                    .into_response()
            }
            (_, ApiError::Lines { rejected, .. }) => {
                let data: Vec<_> = rejected
                    .iter()
                    .take(MAX_REPORTED_ERRORS)
                    .map(|r| {
                        json!({
                            "original_line": r.original_line,
                            "line_number": r.line_number,
                            "error_message": r.error_message,
                        })
                    })
                    .collect();
                (
                    status,
                    Json(json!({"error": self.to_string(), "data": data})),
                )
                    .into_response()
            }
            _ => (status, Json(json!({"error": self.to_string()}))).into_response(),
        };
        if matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
        ) || matches!(self, ApiError::MalformedAuth)
        {
            // These are answered before the body is read; the unread rest makes
            // the connection unusable. Say so, or a pooling client would send its
            // next request into a closed socket.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}
