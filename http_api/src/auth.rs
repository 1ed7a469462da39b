//! Authentication and authorization.
//!
//! ```text
//!  request ─▶ credentials
//!               every family: Bearer T | Token T | Basic base64(any:T)
//!               v1 also: ?u=any&p=T
//!          ─▶ SHA-512(T) ─▶ catalog token (constant-time compare) ─▶ expired?
//!          ─▶ permission for what the endpoint needs ─▶ handler
//! ```
//!
//! A missing, unknown or expired credential is 401, a header not of the
//! form `<scheme> <token>` (or of another scheme) 400, as in InfluxDB 3
//! Core; a valid token without the permission is 403. Tokens live in the catalog, so every pod
//! accepts the same tokens once it has synced.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use catalog::{Action, ResourceType, TokenInfo, tokens::hash_token};

use crate::error::{ApiError, Family};

/// Endpoints that `--disable-authz` can open.
pub const OPENABLE: &[&str] = &["health", "ping", "metrics"];

/// How this node authenticates.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `--without-auth` turns this off.
    pub enabled: bool,
    /// Endpoints opened by `--disable-authz` (health, ping, metrics).
    pub open: HashSet<String>,
}

/// What a request needs.
#[derive(Debug, Clone)]
pub enum Need<'a> {
    /// Any valid token (server endpoints).
    AnyToken,
    /// Read on a database.
    Read(&'a str),
    /// Write on a database.
    Write(&'a str),
    /// An admin token.
    Admin,
}

/// The caller: `None` when auth is off.
pub type Caller = Option<Arc<TokenInfo>>;

fn unauthorized(reason: &str) -> ApiError {
    ApiError::Unauthorized(reason.to_string())
}

/// Finds the token string in a request of `family`. The header is
/// `<scheme> <token>` with one space, as InfluxDB 3 Core reads it, and any
/// of Bearer, Token and Basic on every endpoint; anything else is
/// [`ApiError::MalformedAuth`] (400). Inflow matches the scheme without
/// regard to case, where Core wants it capitalised.
fn credential(
    family: Family,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::MalformedAuth)?;
        let mut parts = value.split(' ');
        let scheme = parts.next().unwrap_or_default().to_ascii_lowercase();
        let token = parts.next().ok_or(ApiError::MalformedAuth)?;
        if parts.next().is_some() {
            return Err(ApiError::MalformedAuth);
        }
        if token.is_empty() {
            return Err(unauthorized("the token is empty"));
        }
        return match scheme.as_str() {
            "bearer" | "token" => Ok(Some(token.to_string())),
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(ApiError::MalformedAuth)?;
                // The username is ignored; the password is the token.
                let (_, password) = decoded.split_once(':').ok_or(ApiError::MalformedAuth)?;
                if password.is_empty() {
                    return Err(unauthorized(
                        "malformed Basic credentials: the token is empty",
                    ));
                }
                Ok(Some(password.to_string()))
            }
            _ => Err(ApiError::MalformedAuth),
        };
    }
    if family == Family::V1
        && let Some(q) = query
    {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
        if let Some((_, p)) = pairs.into_iter().find(|(k, _)| k == "p")
            && !p.is_empty()
        {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Authenticates the request and checks that it may do `need`.
pub fn authorize(
    settings: &AuthSettings,
    catalog: &catalog::Catalog,
    family: Family,
    headers: &HeaderMap,
    query: Option<&str>,
    need: Need<'_>,
) -> Result<Caller, ApiError> {
    if !settings.enabled {
        return Ok(None);
    }
    let token =
        credential(family, headers, query)?.ok_or_else(|| unauthorized("no token given"))?;
    let state = catalog.state();
    let info = state
        .token_by_hash(&hash_token(&token))
        .cloned()
        .ok_or_else(|| unauthorized("unknown token"))?;
    if info.expired(now_ms()) {
        return Err(unauthorized("the token has expired"));
    }
    let allowed = match need {
        Need::AnyToken => true,
        Need::Admin => info.admin,
        Need::Read(db) => info.allows(ResourceType::Db, db, Action::Read),
        Need::Write(db) => info.allows(ResourceType::Db, db, Action::Write),
    };
    if !allowed {
        let what = match need {
            Need::AnyToken => String::new(),
            Need::Admin => "an admin token is required".to_string(),
            Need::Read(db) => format!("the token has no read permission on database '{db}'"),
            Need::Write(db) => format!("the token has no write permission on database '{db}'"),
        };
        return Err(ApiError::Forbidden(what));
    }
    Ok(Some(info))
}

/// Whether `caller` may read system table `table`.
pub fn may_read_system(caller: &Caller, table: &str) -> bool {
    match caller {
        None => true,
        Some(t) => t.allows(ResourceType::System, table, Action::Read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    /// Bearer, Token and Basic on every family; `?p=` on v1 only; a header
    /// not of the form `<scheme> <token>` is malformed (400), an empty token
    /// unauthorized (401).
    #[test]
    fn schemes_per_family() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("anyone:tok")
        );
        for family in [Family::V1, Family::V2, Family::V3] {
            for header in ["Bearer tok", "bearer tok", "Token tok", basic.as_str()] {
                assert_eq!(
                    credential(family, &h(header), None).unwrap().as_deref(),
                    Some("tok"),
                    "{family:?} {header}"
                );
            }
            for bad in [
                "Bearer",
                "Bearer tok en",
                "Basic !!!",
                "Basic Zm9v",
                "Nonsense",
                "Digest tok",
            ] {
                assert!(
                    matches!(
                        credential(family, &h(bad), None),
                        Err(ApiError::MalformedAuth)
                    ),
                    "{family:?} {bad}"
                );
            }
            assert!(matches!(
                credential(family, &h("Bearer "), None),
                Err(ApiError::Unauthorized(_))
            ));
        }
        assert_eq!(
            credential(Family::V1, &HeaderMap::new(), Some("db=x&u=me&p=tok"))
                .unwrap()
                .as_deref(),
            Some("tok")
        );
        assert_eq!(
            credential(Family::V2, &HeaderMap::new(), Some("p=tok")).unwrap(),
            None
        );
    }
}
