//! Writes of a node without a write path of its own: the line protocol a
//! querier's request plugins write goes to a running ingester's
//! `/api/v3/write_lp`, found in the node registry, so it takes the normal
//! write path (WAL, buffer, WAL triggers) there.

use async_trait::async_trait;
use line_protocol::Precision;
use services::{RejectedLine, WriteError, WriteOutcome, WriteRequest, WriteService};

/// A [`WriteService`] that forwards to the cluster's ingesters.
#[derive(Debug, Clone)]
pub struct RemoteWriter {
    registry: cluster::Registry,
    client: reqwest::Client,
    /// Sent as a bearer token (the cluster's admin token file, when auth
    /// is on).
    token: Option<String>,
}

impl RemoteWriter {
    /// Forwards to the running ingesters of `registry`, authenticating
    /// with `token`.
    pub fn new(registry: cluster::Registry, token: Option<String>) -> Self {
        Self {
            registry,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            token,
        }
    }

    async fn ingesters(&self) -> Result<Vec<String>, WriteError> {
        let nodes = self
            .registry
            .nodes()
            .await
            .map_err(|e| WriteError::Unavailable(format!("reading the node registry: {e}")))?;
        let addresses: Vec<String> = nodes
            .into_iter()
            .filter(|n| {
                n.state == cluster::NodeState::Running
                    && n.holder.roles.iter().any(|r| r == "ingest")
            })
            .map(|n| n.holder.address)
            .collect();
        if addresses.is_empty() {
            return Err(WriteError::Unavailable(
                "no ingester is running to take the write".into(),
            ));
        }
        Ok(addresses)
    }
}

fn precision_name(p: Precision) -> Result<&'static str, WriteError> {
    Ok(match p {
        Precision::Auto => "auto",
        Precision::Nanosecond => "nanosecond",
        Precision::Microsecond => "microsecond",
        Precision::Millisecond => "millisecond",
        Precision::Second => "second",
        Precision::Minute | Precision::Hour => {
            return Err(WriteError::Internal(
                "minute and hour precision cannot be forwarded to /api/v3/write_lp".into(),
            ));
        }
    })
}

/// The line errors of a v3 write error body (`{"error", "data": [...]}`).
fn rejected_lines(body: &str) -> Vec<RejectedLine> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(data) = value.get("data").and_then(|d| d.as_array()) else {
        return Vec::new();
    };
    data.iter()
        .map(|d| RejectedLine {
            line_number: d
                .get("line_number")
                .and_then(|n| n.as_u64())
                .map_or(0, |n| n as usize),
            original_line: d
                .get("original_line")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string(),
            error_message: d
                .get("error_message")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string(),
            limit: false,
        })
        .collect()
}

#[async_trait]
impl WriteService for RemoteWriter {
    async fn write_lp(&self, req: WriteRequest) -> Result<WriteOutcome, WriteError> {
        let precision = precision_name(req.precision)?;
        let lines = req
            .body
            .split(|b| *b == b'\n')
            .filter(|l| {
                let t = l.trim_ascii();
                !t.is_empty() && !t.starts_with(b"#")
            })
            .count();
        let mut last_error = String::new();
        for address in self.ingesters().await? {
            let mut request = self
                .client
                .post(format!("http://{address}/api/v3/write_lp"))
                .query(&[
                    ("db", req.db.as_str()),
                    ("precision", precision),
                    (
                        "accept_partial",
                        if req.accept_partial { "true" } else { "false" },
                    ),
                    ("no_sync", if req.no_sync { "true" } else { "false" }),
                ])
                .body(req.body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = format!("{address}: {e}");
                    continue;
                }
            };
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok(WriteOutcome {
                    lines_written: lines,
                    rejected: Vec::new(),
                });
            }
            if status.is_server_error() {
                last_error = format!("{address}: {status}: {body}");
                continue;
            }
            let rejected = rejected_lines(&body);
            if req.accept_partial && !rejected.is_empty() && rejected.len() < lines {
                return Ok(WriteOutcome {
                    lines_written: lines - rejected.len(),
                    rejected,
                });
            }
            if !rejected.is_empty() {
                return Err(WriteError::Rejected(rejected));
            }
            return Err(WriteError::Internal(format!(
                "the ingester at {address} refused the write: {status}: {body}"
            )));
        }
        Err(WriteError::Unavailable(format!(
            "no ingester took the write: {last_error}"
        )))
    }
}
