//! The InfluxDB 3 management API the reconcilers call: databases, tokens
//! and processing engine triggers on an Inflow cluster's ingester Service,
//! or on an external server.

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

/// A trigger as the server lists it (`system.processing_engine_triggers`),
/// or as a reconciler wants it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TriggerInfo {
    /// Its name.
    pub name: String,
    /// Its plugin file.
    pub plugin_filename: String,
    /// When it runs.
    pub specification: String,
    /// Its arguments.
    pub arguments: std::collections::BTreeMap<String, String>,
    /// Disabled.
    pub disabled: bool,
    /// Calls do not wait for each other.
    pub run_async: bool,
    /// `Log`, `Retry` or `Disable`.
    pub error_behavior: String,
    /// The node it runs on, if named.
    pub node_id: Option<String>,
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

    /// The triggers of database `db`.
    pub async fn triggers(&self, db: &str) -> Result<Vec<TriggerInfo>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            trigger_name: String,
            plugin_filename: String,
            trigger_specification: String,
            disabled: bool,
            #[serde(default)]
            trigger_arguments: Option<String>,
            #[serde(default)]
            run_async: bool,
            #[serde(default)]
            error_behavior: Option<String>,
            #[serde(default)]
            node_id: Option<String>,
        }
        let body = self
            .send(
                self.http
                    .get(format!("{}/api/v3/query_sql", self.base))
                    .query(&[
                        ("db", db),
                        ("format", "json"),
                        ("q", "SELECT * FROM system.processing_engine_triggers"),
                    ]),
            )
            .await?;
        let rows: Vec<Row> = serde_json::from_str(&body).map_err(|e| ApiError::Status {
            status: 200,
            message: format!("unexpected trigger list: {e}"),
        })?;
        Ok(rows
            .into_iter()
            .map(|r| TriggerInfo {
                name: r.trigger_name,
                plugin_filename: r.plugin_filename,
                specification: r.trigger_specification,
                arguments: r
                    .trigger_arguments
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
                disabled: r.disabled,
                run_async: r.run_async,
                error_behavior: capitalized(r.error_behavior.as_deref().unwrap_or("log")),
                node_id: r.node_id,
            })
            .collect())
    }

    /// Uploads a plugin file (created or replaced).
    pub async fn upload_plugin(&self, filename: &str, content: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .post(format!("{}/api/v3/plugins/files", self.base))
                .json(&json!({"plugin_name": filename, "content": content})),
        )
        .await
        .map(|_| ())
    }

    /// Creates a trigger in `db`.
    pub async fn create_trigger(&self, db: &str, t: &TriggerInfo) -> Result<(), ApiError> {
        let mut body = json!({
            "db": db,
            "trigger_name": t.name,
            "plugin_filename": t.plugin_filename,
            "trigger_specification": t.specification,
            "trigger_arguments": t.arguments,
            "disabled": t.disabled,
            "trigger_settings": {"run_async": t.run_async, "error_behavior": t.error_behavior},
        });
        if let Some(node) = &t.node_id {
            body["node_spec"] = json!({"node_id": node});
        }
        self.send(
            self.http
                .post(format!(
                    "{}/api/v3/configure/processing_engine_trigger",
                    self.base
                ))
                .json(&body),
        )
        .await
        .map(|_| ())
    }

    /// Deletes a trigger, running or not; one already gone is no error.
    pub async fn delete_trigger(&self, db: &str, name: &str) -> Result<(), ApiError> {
        match self
            .send(
                self.http
                    .delete(format!(
                        "{}/api/v3/configure/processing_engine_trigger",
                        self.base
                    ))
                    .query(&[("db", db), ("trigger_name", name), ("force", "true")]),
            )
            .await
        {
            Err(e) if e.is(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Enables or disables a trigger.
    pub async fn set_trigger_disabled(
        &self,
        db: &str,
        name: &str,
        disabled: bool,
    ) -> Result<(), ApiError> {
        let action = if disabled { "disable" } else { "enable" };
        self.send(
            self.http
                .post(format!(
                    "{}/api/v3/configure/processing_engine_trigger/{action}",
                    self.base
                ))
                .query(&[("db", db), ("trigger_name", name)]),
        )
        .await
        .map(|_| ())
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

/// `log` as the API's `Log`.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
