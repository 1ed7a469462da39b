//! Tokens: how they are made, stored and checked.
//!
//! A token string is `apiv3_` followed by URL-safe base64 (no padding) of 64
//! random bytes. It is shown once, when created; the catalog keeps only its
//! SHA-512, so a leaked catalog leaks no usable token.

use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// The name of the operator (first admin) token.
pub const ADMIN_TOKEN_NAME: &str = "_admin";

/// The token prefix.
pub const TOKEN_PREFIX: &str = "apiv3_";

/// A new random token string.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The SHA-512 of a token string: what the catalog stores.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha512::digest(token.as_bytes()).to_vec()
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// What a permission applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// Databases, by name.
    Db,
    /// System tables and server information.
    System,
}

/// An action a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Queries.
    Read,
    /// Writes.
    Write,
}

/// One grant of a resource token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Db or system.
    pub resource_type: ResourceType,
    /// Names, or `*` for all.
    pub resource_names: Vec<String>,
    /// Read and/or write.
    pub actions: Vec<Action>,
}

impl Permission {
    /// Whether this grant allows `action` on `name` of `kind`.
    pub fn allows(&self, kind: ResourceType, name: &str, action: Action) -> bool {
        self.resource_type == kind
            && self.actions.contains(&action)
            && self.resource_names.iter().any(|n| n == "*" || n == name)
    }

    /// `db:name1,name2:read,write`, as the CLI and `system.tokens` show it.
    pub fn describe(&self) -> String {
        let kind = match self.resource_type {
            ResourceType::Db => "db",
            ResourceType::System => "system",
        };
        let actions: Vec<&str> = self
            .actions
            .iter()
            .map(|a| match a {
                Action::Read => "read",
                Action::Write => "write",
            })
            .collect();
        format!(
            "{kind}:{}:{}",
            self.resource_names.join(","),
            actions.join(",")
        )
    }
}

/// A token as the catalog keeps it (no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Unique id.
    pub id: u64,
    /// Unique name.
    pub name: Arc<str>,
    /// SHA-512 of the token string, hex in the catalog files.
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Expiry, milliseconds since the epoch; `None` never expires.
    pub expiry_ms: Option<i64>,
    /// Admin tokens may do everything.
    pub admin: bool,
    /// Grants of a resource token (empty for admin tokens).
    pub permissions: Vec<Permission>,
}

impl TokenInfo {
    /// Whether the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expiry_ms.is_some_and(|e| e <= now_ms)
    }

    /// Whether the token allows `action` on `name` of `kind`.
    pub fn allows(&self, kind: ResourceType, name: &str, action: Action) -> bool {
        self.admin
            || self
                .permissions
                .iter()
                .any(|p| p.allows(kind, name, action))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format_and_hash() {
        let t = generate_token().unwrap();
        assert!(t.starts_with("apiv3_"));
        // 64 bytes in unpadded base64 are 86 characters.
        assert_eq!(t.len(), 6 + 86);
        assert!(
            t[6..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(t, generate_token().unwrap());
        let h = hash_token(&t);
        assert_eq!(h.len(), 64);
        assert!(hashes_equal(&h, &hash_token(&t)));
        assert!(!hashes_equal(&h, &hash_token("apiv3_other")));
    }

    #[test]
    fn permissions() {
        let p = Permission {
            resource_type: ResourceType::Db,
            resource_names: vec!["a".into(), "b".into()],
            actions: vec![Action::Read],
        };
        assert!(p.allows(ResourceType::Db, "a", Action::Read));
        assert!(!p.allows(ResourceType::Db, "a", Action::Write));
        assert!(!p.allows(ResourceType::Db, "c", Action::Read));
        assert!(!p.allows(ResourceType::System, "a", Action::Read));
        let star = Permission {
            resource_names: vec!["*".into()],
            ..p.clone()
        };
        assert!(star.allows(ResourceType::Db, "anything", Action::Read));
        assert_eq!(p.describe(), "db:a,b:read");
    }
}
