//! The processing engine service: what the HTTP API asks of the engine
//! (request triggers, dry runs, plugin files and packages), the hook that
//! hands it every durable WAL flush, and the log its plugins write.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;

/// Why the engine could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The request is invalid (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// No such plugin or trigger (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Refused by configuration (HTTP 403), e.g. `--package-manager disabled`.
    #[error("{0}")]
    Forbidden(String),
    /// The plugin or the environment failed (HTTP 500).
    #[error("{0}")]
    Failed(String),
}

/// An HTTP request for a request trigger (`/api/v3/engine/{path}`).
#[derive(Debug, Clone)]
pub struct PluginRequest {
    /// The path after `/api/v3/engine/`.
    pub path: String,
    /// The query string's parameters.
    pub query: BTreeMap<String, String>,
    /// The headers, without `Authorization`.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Bytes,
}

/// What a request plugin answered.
#[derive(Debug, Clone)]
pub struct PluginResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers (`Content-Type` among them).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// A dry run of a WAL plugin (`POST /api/v3/plugin_test/wal`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct WalTestRequest {
    /// The plugin, relative to `--plugin-dir`.
    pub filename: String,
    /// The database the plugin sees as its own.
    pub database: String,
    /// The writes it is called with.
    pub input_lp: String,
    /// Its `args`.
    #[serde(default)]
    pub input_arguments: Option<BTreeMap<String, String>>,
    /// Names the cache the run uses (runs with the same name share it).
    #[serde(default)]
    pub cache_name: Option<String>,
}

/// A dry run of a schedule plugin (`POST /api/v3/plugin_test/schedule`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ScheduleTestRequest {
    /// The plugin, relative to `--plugin-dir`.
    pub filename: String,
    /// The database the plugin sees as its own.
    pub database: String,
    /// `every:DURATION` or `cron:EXPR`: the call time is its next firing.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Its `args`.
    #[serde(default)]
    pub input_arguments: Option<BTreeMap<String, String>>,
    /// Names the cache the run uses (runs with the same name share it).
    #[serde(default)]
    pub cache_name: Option<String>,
}

/// What a dry run did, as InfluxDB 3 reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TestOutcome {
    /// The schedule test's call time (RFC 3339); absent for WAL tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_time: Option<String>,
    /// What the plugin logged, `LEVEL: text`.
    pub log_lines: Vec<String>,
    /// The lines it would have written, per database.
    pub database_writes: BTreeMap<String, Vec<String>>,
    /// Its errors (a traceback, lines that are not valid line protocol).
    pub errors: Vec<String>,
}

/// One file of a multi-file plugin (`PUT /api/v3/plugins/directory`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PluginFile {
    /// Its path inside the plugin's directory.
    pub relative_path: String,
    /// Its text.
    pub content: String,
}

/// The processing engine, as the HTTP API uses it. Implemented by the
/// `engine` crate; a server started without `--plugin-dir` has none.
#[async_trait]
pub trait EngineService: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that a trigger's plugin exists, and returns the name the
    /// catalog records for it.
    fn check_plugin(&self, filename: &str) -> Result<String, EngineError>;

    /// Checks a trigger specification (`table:NAME`, `all_tables`,
    /// `every:DURATION`, `cron:EXPRESSION`, `request:PATH`).
    fn check_spec(&self, spec: &str) -> Result<(), EngineError>;

    /// The catalog's triggers changed through this node: start and stop
    /// trigger tasks now rather than at the next sync.
    fn triggers_changed(&self);

    /// Runs the request trigger bound to `request.path`.
    async fn request(&self, request: PluginRequest) -> Result<PluginResponse, EngineError>;

    /// Dry-runs a WAL plugin.
    async fn test_wal(&self, request: WalTestRequest) -> Result<TestOutcome, EngineError>;

    /// Dry-runs a schedule plugin.
    async fn test_schedule(&self, request: ScheduleTestRequest)
    -> Result<TestOutcome, EngineError>;

    /// Writes a plugin file (`relative` under the plugin directory).
    async fn write_plugin_file(&self, relative: &str, content: &str) -> Result<(), EngineError>;

    /// Replaces every file of a plugin directory.
    async fn write_plugin_directory(
        &self,
        relative: &str,
        files: &[PluginFile],
    ) -> Result<(), EngineError>;

    /// Installs packages into the plugin environment (synchronously).
    async fn install_packages(&self, packages: &[String]) -> Result<(), EngineError>;

    /// Installs a requirements file (relative to the plugin directory, or
    /// absolute) into the plugin environment.
    async fn install_requirements(&self, location: &str) -> Result<(), EngineError>;
}

/// Receives every WAL flush of an ingester once it is durable, in order:
/// per database, its tables' rows (table ids).
pub trait FlushListener: Send + Sync + std::fmt::Debug + 'static {
    /// One flush's rows of `db_id`.
    fn flushed(&self, db_id: u32, tables: &[(u32, RecordBatch)]);
}

/// A line a plugin (or the engine, about a plugin) logged.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineLogLine {
    /// When, in nanoseconds since the epoch.
    pub time_ns: i64,
    /// The trigger's database.
    pub db: String,
    /// The trigger.
    pub trigger: String,
    /// `INFO`, `WARN` or `ERROR`.
    pub level: &'static str,
    /// The text.
    pub text: String,
}

/// The newest lines plugins logged on this node, for
/// `system.processing_engine_logs`: a bounded ring shared by the engine
/// (which writes it) and the query engine (which reads it).
#[derive(Debug)]
pub struct EngineLogs {
    lines: Mutex<VecDeque<EngineLogLine>>,
    capacity: usize,
}

impl EngineLogs {
    /// A log keeping the newest `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    /// Appends a line, dropping the oldest past the capacity.
    pub fn push(&self, line: EngineLogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() >= self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The lines of `db`'s triggers (every line when `None`), oldest first.
    pub fn lines(&self, db: Option<&str>) -> Vec<EngineLogLine> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .filter(|l| db.is_none_or(|d| l.db == d))
            .cloned()
            .collect()
    }
}

impl Default for EngineLogs {
    fn default() -> Self {
        Self::new(10_000)
    }
}
