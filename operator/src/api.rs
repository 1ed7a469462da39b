//! The InfluxDB 3 management API the reconcilers call: databases and
//! tokens on an Inflow cluster's ingester Service, or on an external server.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::crd::Permission;

/// Why a call failed; the message goes into the resource's conditions.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body's `error` (or the body).
        message: String,
    },
    /// The server could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

impl ApiError {
    /// Whether the status is `status`.
    pub fn is(&self, status: u16) -> bool {
        matches!(self, ApiError::Status { status: s, .. } if *s == status)
    }

    /// A short reason for a condition.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Status { status: 400, .. } => "Invalid",
            ApiError::Status {
                status: 401 | 403, ..
            } => "Unauthorized",
            ApiError::Status { status: 409, .. } => "Conflict",
            ApiError::Status { .. } => "ApiError",
            ApiError::Unreachable(_) => "Unreachable",
        }
    }
}

/// A database as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Its name.
    pub name: String,
    /// Its retention period (`30d`), none when unset.
    pub retention: Option<String>,
}

/// A client of one server, with its admin token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client of the server at `base` (its root URL).
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, ApiError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        if status >= 400 {
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .or_else(|| v.get("message"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or(body);
            return Err(ApiError::Status { status, message });
        }
        Ok(body)
    }

    /// The server's databases.
    pub async fn databases(&self) -> Result<Vec<DatabaseInfo>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "iox::database")]
            name: String,
            #[serde(default)]
            retention_period: Option<String>,
        }
        let body = self
            .send(
                self.http
                    .get(format!("{}/api/v3/configure/database", self.base))
                    .query(&[("format", "json")]),
            )
            .await?;
        let rows: Vec<Row> = serde_json::from_str(&body).map_err(|e| ApiError::Status {
            status: 200,
            message: format!("unexpected database list: {e}"),
        })?;
        Ok(rows
            .into_iter()
            .map(|r| DatabaseInfo {
                name: r.name,
                retention: r.retention_period,
            })
            .collect())
    }

    /// Creates a database.
    pub async fn create_database(
        &self,
        name: &str,
        retention: Option<&str>,
    ) -> Result<(), ApiError> {
        let mut body = json!({"db": name});
        if let Some(r) = retention.filter(|r| *r != "none") {
            body["retention_period"] = json!(r);
        }
        self.send(
            self.http
                .post(format!("{}/api/v3/configure/database", self.base))
                .json(&body),
        )
        .await
        .map(|_| ())
    }

    /// Sets (or, with `none`, clears) a database's retention period.
    pub async fn set_retention(&self, name: &str, retention: Option<&str>) -> Result<(), ApiError> {
        let period = retention.filter(|r| *r != "none").unwrap_or("");
        self.send(
            self.http
                .put(format!("{}/api/v3/configure/database", self.base))
                .json(&json!({"db": name, "retention_period": period})),
        )
        .await
        .map(|_| ())
    }

    /// Deletes a database (a soft delete, hard after the server's default delay).
    pub async fn delete_database(&self, name: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .delete(format!("{}/api/v3/configure/database", self.base))
                .query(&[("db", name), ("hard_delete_at", "default")]),
        )
        .await
        .map(|_| ())
    }

    /// Creates a resource token; returns its string.
    pub async fn create_token(
        &self,
        name: &str,
        permissions: &[Permission],
        expiry_secs: Option<u64>,
    ) -> Result<String, ApiError> {
        let permissions: Vec<Value> = permissions
            .iter()
            .map(|p| {
                json!({
                    "resource_type": p.resource_type,
                    "resource_names": p.resource_names,
                    "actions": p.actions,
                })
            })
            .collect();
        let mut body = json!({"token_name": name, "permissions": permissions});
        if let Some(s) = expiry_secs {
            body["expiry_secs"] = json!(s);
        }
        let text = self
            .send(
                self.http
                    .post(format!("{}/api/v3/enterprise/configure/token", self.base))
                    .json(&body),
            )
            .await?;
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| ApiError::Status {
                status: 200,
                message: "the token response has no token".to_string(),
            })
    }

    /// Deletes a token by name; one already gone is no error.
    pub async fn delete_token(&self, name: &str) -> Result<(), ApiError> {
        match self
            .send(
                self.http
                    .delete(format!("{}/api/v3/configure/token", self.base))
                    .query(&[("token_name", name)]),
            )
            .await
        {
            Err(e) if e.is(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Whether the server answers `/health` with the admin token.
    pub async fn health(&self) -> Result<(), ApiError> {
        self.send(self.http.get(format!("{}/health", self.base)))
            .await
            .map(|_| ())
    }

    /// The names of the tokens that exist and have not expired.
    pub async fn live_tokens(&self) -> Result<Vec<String>, ApiError> {
        let body = self
            .send(
                self.http
                    .get(format!("{}/api/v3/query_sql", self.base))
                    .query(&[
                        ("db", "_internal"),
                        ("format", "json"),
                        (
                            "q",
                            "SELECT name FROM system.tokens WHERE expiry IS NULL OR expiry > now()",
                        ),
                    ]),
            )
            .await?;
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        Ok(rows
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect())
    }
}
