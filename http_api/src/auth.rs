//! Authentication and authorization.
//!
//! ```text
//!  request ─▶ credentials (scheme depends on the API family)
//!               v3: Authorization: Bearer T
//!               v2: Bearer T | Token T
//!               v1: Bearer T | Token T | Basic base64(any:T) | ?u=any&p=T
//!          ─▶ SHA-512(T) ─▶ catalog token (constant-time compare) ─▶ expired?
//!          ─▶ permission for what the endpoint needs ─▶ handler
//! ```
//!
//! A missing, unknown, expired or malformed credential is 401; a valid token
//! without the permission is 403. Tokens live in the catalog, so every pod
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
pub(crate) enum Need<'a> {
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
pub(crate) type Caller = Option<Arc<TokenInfo>>;

fn unauthorized(reason: &str) -> ApiError {
    ApiError::Unauthorized(reason.to_string())
}

/// Finds the token string in a request of `family`.
fn credential(family: Family, headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("malformed Authorization header"))?
            .trim();
        let (scheme, rest) = value
            .split_once(' ')
            .ok_or_else(|| unauthorized("malformed Authorization header: expected 'Bearer <token>'"))?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(unauthorized("malformed Authorization header: the token is empty"));
        }
        let scheme = scheme.to_ascii_lowercase();
        return match (scheme.as_str(), family) {
            ("bearer", _) => Ok(Some(rest.to_string())),
            ("token", Family::V1 | Family::V2) => Ok(Some(rest.to_string())),
            ("basic", Family::V1) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
                // The username is ignored; the password is the token.
                let (_, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| unauthorized("malformed Basic credentials: expected user:token"))?;
                if password.is_empty() {
                    return Err(unauthorized("malformed Basic credentials: the token is empty"));
                }
                Ok(Some(password.to_string()))
            }
            _ => Err(unauthorized(&format!(
                "the '{scheme}' authorization scheme is not accepted on this endpoint; use 'Bearer <token>'"
            ))),
        };
    }
    if family == Family::V1 {
        if let Some(q) = query {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
            if let Some((_, p)) = pairs.into_iter().find(|(k, _)| k == "p") {
                if !p.is_empty() {
                    return Ok(Some(p));
                }
            }
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
pub(crate) fn authorize(
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
    let token = credential(family, headers, query)?.ok_or_else(|| unauthorized("no token given"))?;
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
pub(crate) fn may_read_system(caller: &Caller, table: &str) -> bool {
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

    #[test]
    fn schemes_per_family() {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("anyone:tok"));
        assert_eq!(credential(Family::V3, &h("Bearer tok"), None).unwrap().as_deref(), Some("tok"));
        assert_eq!(credential(Family::V3, &h("bearer tok"), None).unwrap().as_deref(), Some("tok"));
        assert!(credential(Family::V3, &h("Token tok"), None).is_err());
        assert!(credential(Family::V3, &h(&basic), None).is_err());
        assert_eq!(credential(Family::V2, &h("Token tok"), None).unwrap().as_deref(), Some("tok"));
        assert!(credential(Family::V2, &h(&basic), None).is_err());
        assert_eq!(credential(Family::V1, &h(&basic), None).unwrap().as_deref(), Some("tok"));
        assert_eq!(credential(Family::V1, &HeaderMap::new(), Some("db=x&u=me&p=tok")).unwrap().as_deref(), Some("tok"));
        assert_eq!(credential(Family::V2, &HeaderMap::new(), Some("p=tok")).unwrap(), None);
        for bad in ["Bearer", "Bearer ", "Basic !!!", "Basic Zm9v", "Nonsense"] {
            assert!(matches!(credential(Family::V1, &h(bad), None), Err(ApiError::Unauthorized(_))), "{bad}");
        }
    }
}
