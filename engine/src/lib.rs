//! The processing engine: users' Python plugins run next to the data, as
//! InfluxDB 3 runs them.
//!
//! ```text
//!  catalog triggers ──sync (1 s, or at once after a change here)──▶ one task per
//!    enabled WAL or schedule trigger this node runs
//!  ingester WAL flush (durable) ─▶ FlushListener ─▶ each WAL trigger's queue
//!    ─▶ process_writes(influxdb3_local, table_batches, args), in order
//!  every:/cron: timer ─▶ process_scheduled_call(influxdb3_local, call_time, args)
//!  GET/POST /api/v3/engine/PATH ─▶ process_request(...) ─▶ the HTTP answer
//!  a call ─▶ the blocking pool ─▶ CPython (python.rs) ─▶ influxdb3_local (host.rs):
//!    logs ─▶ server log + system.processing_engine_logs; query ─▶ QueryService;
//!    write() lines ─▶ WriteService when the call returns
//! ```
//!
//! A failed call (an exception, a timeout) is logged with its traceback
//! and then handled as its trigger says: `Log` goes on, `Retry` calls again
//! with the same input (backing off), `Disable` disables the trigger in the
//! catalog. Nothing a plugin does stops the server or blocks writes: WAL
//! flushes reach a trigger through its own queue.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use catalog::{Catalog, CatalogOp, ErrorBehavior, TriggerDef};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use services::engine::{
    EngineError, EngineLogLine, EngineLogs, EngineService, FlushListener, PluginFile,
    PluginRequest, PluginResponse, ScheduleTestRequest, TestOutcome, WalTestRequest,
};
use services::{QueryService, WriteRequest, WriteService};
use tokio::sync::mpsc;

mod env;
mod host;
mod python;
pub mod spec;

pub use env::PackageManager;
use host::{Collected, Host, Services};
use python::{Call, CallInput, Returned};
use spec::TriggerSpec;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `--plugin-dir`: plugin files, and the root of every plugin path.
    pub plugin_dir: PathBuf,
    /// `--virtual-env-location`: the environment packages are installed
    /// into (made on the first install).
    pub venv: PathBuf,
    /// `--package-manager`.
    pub package_manager: PackageManager,
    /// `--plugin-call-timeout`: a call running longer is stopped.
    pub call_timeout: Duration,
    /// This node's id (a trigger naming another node runs there).
    pub node_id: String,
    /// Whether this node runs WAL and schedule triggers (the ingesters do;
    /// every node runs the request triggers it is asked for).
    pub runs_triggers: bool,
    /// The cluster's nodes, when this is one ingester of several: a
    /// schedule trigger that names no node runs on one of them only, the
    /// running ingester first by node id. `None`: this node runs them.
    pub registry: Option<cluster::Registry>,
}

/// The engine's metrics, per trigger (`db/name`) and kind.
#[derive(Debug, Clone)]
struct EngineMetrics {
    calls: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
}

impl EngineMetrics {
    fn new() -> Self {
        let labels = &["db", "trigger", "kind"];
        Self {
            calls: IntCounterVec::new(
                Opts::new("inflow_engine_calls_total", "Plugin calls, by trigger"),
                labels,
            )
            .expect("valid metric"),
            errors: IntCounterVec::new(
                Opts::new(
                    "inflow_engine_errors_total",
                    "Plugin calls that failed (raised, timed out), by trigger",
                ),
                labels,
            )
            .expect("valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "inflow_engine_call_duration_seconds",
                    "How long plugin calls took, by trigger",
                )
                .buckets(vec![0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0, 60.0]),
                labels,
            )
            .expect("valid metric"),
        }
    }
}

/// A WAL flush of one database, shared by the triggers that see it.
#[derive(Debug)]
struct Flush {
    tables: Vec<(u32, RecordBatch)>,
}

/// Where a database's flushes go: a WAL trigger's queue.
#[derive(Debug)]
struct WalRoute {
    db_id: u32,
    key: (u32, String),
    queue: mpsc::UnboundedSender<Arc<Flush>>,
}

/// A trigger this node runs.
#[derive(Debug)]
struct Running {
    def: TriggerDef,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    catalog: Arc<Catalog>,
    services: Services,
    metrics: EngineMetrics,
    running: Mutex<HashMap<(u32, String), Running>>,
    routes: RwLock<Vec<WalRoute>>,
    changed: tokio::sync::Notify,
    installs: tokio::sync::Mutex<()>,
    /// This node runs the schedule triggers that name no node.
    leads_schedules: std::sync::atomic::AtomicBool,
}

/// The processing engine of one node.
#[derive(Debug, Clone)]
pub struct ProcessingEngine {
    inner: Arc<Inner>,
}

impl ProcessingEngine {
    /// An engine over `catalog`, calling the node's services; it runs
    /// triggers once [`ProcessingEngine::start`] is called. Creates the
    /// plugin directory if it is missing.
    pub fn new(
        config: EngineConfig,
        catalog: Arc<Catalog>,
        query: Option<Arc<dyn QueryService>>,
        writer: Option<Arc<dyn WriteService>>,
        logs: Arc<EngineLogs>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&config.plugin_dir).map_err(|e| {
            format!(
                "--plugin-dir {}: cannot create it: {e}",
                config.plugin_dir.display()
            )
        })?;
        let plugin_dir = config
            .plugin_dir
            .canonicalize()
            .map_err(|e| format!("--plugin-dir {}: {e}", config.plugin_dir.display()))?;
        let config = EngineConfig {
            plugin_dir,
            ..config
        };
        let registry_absent = config.registry.is_none();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                catalog,
                services: Services {
                    query,
                    writer,
                    logs,
                    runtime: tokio::runtime::Handle::current(),
                },
                metrics: EngineMetrics::new(),
                running: Mutex::default(),
                routes: RwLock::default(),
                changed: tokio::sync::Notify::new(),
                installs: tokio::sync::Mutex::new(()),
                leads_schedules: std::sync::atomic::AtomicBool::new(registry_absent),
            }),
        })
    }

    /// [`ProcessingEngine::new`] then [`ProcessingEngine::start`]: the
    /// engine of a server, running.
    pub fn launch(
        config: EngineConfig,
        catalog: Arc<Catalog>,
        query: Option<Arc<dyn QueryService>>,
        writer: Option<Arc<dyn WriteService>>,
        logs: Arc<EngineLogs>,
    ) -> Result<Arc<Self>, String> {
        let engine = Arc::new(Self::new(config, catalog, query, writer, logs)?);
        engine.start()?;
        Ok(engine)
    }

    /// The engine's metrics, to register with the node's.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        let m = &self.inner.metrics;
        vec![
            Box::new(m.calls.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.duration.clone()),
        ]
    }

    /// Starts the interpreter and keeps this node's triggers running as the
    /// catalog defines them.
    pub fn start(&self) -> Result<(), String> {
        python::module(&self.inner.config.venv)?;
        // The triggers run before the server answers its first write.
        self.inner.sync();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            loop {
                inner.elect_schedule_runner().await;
                inner.sync();
                tokio::select! {
                    _ = inner.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(())
    }
}

impl Inner {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, String), Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the triggers the catalog enables for this node and stops the
    /// others (a changed definition restarts its task).
    /// Whether this node runs the schedule triggers that name no node:
    /// with a registry, when it is the first running ingester by node id
    /// (a dead one's lease goes unresponsive, and the next takes over).
    async fn elect_schedule_runner(&self) {
        let Some(registry) = &self.config.registry else {
            return;
        };
        match registry.nodes().await {
            Ok(nodes) => {
                let first = nodes
                    .iter()
                    .filter(|n| {
                        n.state == cluster::NodeState::Running
                            && n.holder.roles.iter().any(|r| r == "ingest")
                    })
                    .map(|n| n.holder.node_id.as_str())
                    .min();
                let leads = first == Some(self.config.node_id.as_str());
                let before = self
                    .leads_schedules
                    .swap(leads, std::sync::atomic::Ordering::Relaxed);
                if before != leads {
                    tracing::info!(leads, "this node runs the schedule triggers: {leads}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the node registry"),
        }
    }

    fn sync(self: &Arc<Self>) {
        let state = self.catalog.state();
        let mut wanted: HashMap<(u32, String), (String, TriggerDef, TriggerSpec)> = HashMap::new();
        if self.config.runs_triggers {
            for db in state.databases() {
                for def in db.triggers.values() {
                    if def.disabled
                        || def
                            .node_id
                            .as_ref()
                            .is_some_and(|n| *n != self.config.node_id)
                    {
                        continue;
                    }
                    let Ok(spec) = TriggerSpec::parse(&def.specification) else {
                        continue;
                    };
                    let runs_schedule = def.node_id.is_some()
                        || self
                            .leads_schedules
                            .load(std::sync::atomic::Ordering::Relaxed);
                    if spec.is_wal() || (spec.is_schedule() && runs_schedule) {
                        wanted.insert(
                            (db.id, def.name.clone()),
                            (db.name.to_string(), def.clone(), spec),
                        );
                    }
                }
            }
        }
        let mut running = self.running();
        let stale: Vec<(u32, String)> = running
            .iter()
            .filter(|(k, r)| wanted.get(*k).is_none_or(|(_, def, _)| *def != r.def))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(r) = running.remove(&key) {
                r.task.abort();
                tracing::info!(db_id = key.0, trigger = %key.1, "trigger stopped");
            }
            self.routes
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|route| route.key != key);
        }
        for (key, (db, def, spec)) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let trigger = TriggerRun {
                inner: Arc::clone(self),
                db_id: key.0,
                db,
                def: def.clone(),
            };
            let task = if spec.is_wal() {
                let (tx, rx) = mpsc::unbounded_channel();
                self.routes
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(WalRoute {
                        db_id: key.0,
                        key: key.clone(),
                        queue: tx,
                    });
                tokio::spawn(trigger.run_wal(spec, rx))
            } else {
                tokio::spawn(trigger.run_schedule(spec))
            };
            tracing::info!(db_id = key.0, trigger = %key.1, spec = %def.specification, "trigger started");
            running.insert(key, Running { def, task });
        }
    }

    /// The plugin path of `filename`: relative to the plugin directory and
    /// inside it (an absolute path must be inside it too).
    fn plugin_path(&self, filename: &str) -> Result<PathBuf, EngineError> {
        let relative = relative_inside(&self.config.plugin_dir, filename)?;
        let path = self.config.plugin_dir.join(&relative);
        if !path.exists() {
            return Err(EngineError::NotFound(format!(
                "plugin not found: {filename} (in the plugin directory {})",
                self.config.plugin_dir.display()
            )));
        }
        // A symbolic link may not lead out of the directory either.
        let real = path
            .canonicalize()
            .map_err(|e| EngineError::Failed(format!("{filename}: {e}")))?;
        if !real.starts_with(&self.config.plugin_dir) {
            return Err(EngineError::Invalid(format!(
                "plugin path '{filename}' leads outside the plugin directory"
            )));
        }
        Ok(real)
    }

    /// Runs one call and, unless it is a dry run, writes what it wrote.
    /// Returns what it returned and collected, or the error text.
    async fn call(
        &self,
        trigger: &str,
        call: Call,
        dry_run: bool,
        kind: &'static str,
    ) -> (Result<Returned, String>, Collected) {
        let db = call.db.clone();
        let collected = Arc::new(Mutex::new(Collected::default()));
        let host = Host::new(
            self.services.clone(),
            &db,
            trigger,
            dry_run,
            Arc::clone(&collected),
        );
        let labels = [db.as_str(), trigger, kind];
        let started = Instant::now();
        let result = python::run(
            self.config.venv.clone(),
            host,
            call,
            self.config.call_timeout,
        )
        .await;
        if !dry_run {
            self.metrics.calls.with_label_values(&labels).inc();
            self.metrics
                .duration
                .with_label_values(&labels)
                .observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                self.metrics.errors.with_label_values(&labels).inc();
            }
        }
        let mut collected =
            std::mem::take(&mut *collected.lock().unwrap_or_else(|p| p.into_inner()));
        if !dry_run && result.is_ok() {
            for (target, lines) in std::mem::take(&mut collected.writes) {
                self.write_lines(&db, trigger, &target, lines).await;
            }
        }
        (result, collected)
    }

    /// Writes a plugin's lines through the node's write path.
    async fn write_lines(&self, db: &str, trigger: &str, target: &str, lines: Vec<String>) {
        let Some(writer) = &self.services.writer else {
            self.log(
                db,
                trigger,
                "ERROR",
                format!("the plugin wrote to {target}, but this node does not accept writes"),
            );
            return;
        };
        let request = WriteRequest {
            db: target.to_string(),
            body: bytes::Bytes::from(lines.join("\n")),
            precision: line_protocol::Precision::Nanosecond,
            accept_partial: true,
            no_sync: false,
        };
        match writer.write_lp(request).await {
            Ok(outcome) => {
                for r in outcome.rejected {
                    self.log(
                        db,
                        trigger,
                        "ERROR",
                        format!(
                            "a line written to {target} was rejected: {} ({})",
                            r.error_message, r.original_line
                        ),
                    );
                }
            }
            Err(services::WriteError::Rejected(lines)) => {
                for r in lines {
                    self.log(
                        db,
                        trigger,
                        "ERROR",
                        format!(
                            "a line written to {target} was rejected: {} ({})",
                            r.error_message, r.original_line
                        ),
                    );
                }
            }
            Err(e) => self.log(
                db,
                trigger,
                "ERROR",
                format!("writing to {target} failed: {e}"),
            ),
        }
    }

    fn log(&self, db: &str, trigger: &str, level: &'static str, text: String) {
        match level {
            "ERROR" => tracing::error!(%trigger, %db, "{text}"),
            _ => tracing::info!(%trigger, %db, "{text}"),
        }
        self.services.logs.push(EngineLogLine {
            time_ns: catalog::now_ns(),
            db: db.to_string(),
            trigger: trigger.to_string(),
            level,
            text,
        });
    }

    /// Disables a trigger in the catalog (its error behaviour is `Disable`).
    async fn disable(&self, db_id: u32, name: &str) {
        let result = self
            .catalog
            .update(|s| {
                Ok(match s.db_by_id(db_id).and_then(|d| d.triggers.get(name)) {
                    Some(t) if !t.disabled => vec![CatalogOp::SetTriggerDisabled {
                        db_id,
                        name: name.to_string(),
                        disabled: true,
                    }],
                    _ => vec![],
                })
            })
            .await;
        if let Err(e) = result {
            tracing::error!(trigger = %name, error = %e, "could not disable the trigger");
        }
        self.changed.notify_one();
    }

    /// The tables of `flush` a trigger on `table` (all when `None`) sees,
    /// by name.
    fn tables_of(
        &self,
        db_id: u32,
        flush: &Flush,
        table: Option<&str>,
    ) -> Vec<(String, Vec<RecordBatch>)> {
        let state = self.catalog.state();
        let Some(db) = state.db_by_id(db_id) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<RecordBatch>)> = Vec::new();
        for (table_id, batch) in &flush.tables {
            let Some(t) = db.table_by_id(*table_id) else {
                continue;
            };
            if table.is_some_and(|name| name != t.name.as_ref()) {
                continue;
            }
            let batch = in_table_order(t, batch);
            match out.iter_mut().find(|(n, _)| n.as_str() == t.name.as_ref()) {
                Some((_, batches)) => batches.push(batch),
                None => out.push((t.name.to_string(), vec![batch])),
            }
        }
        out
    }
}

/// `batch` with its columns in the order InfluxDB 3 gives a row's keys:
/// tags, then fields, each in the order the table got them, then `time`.
fn in_table_order(table: &catalog::TableSchema, batch: &RecordBatch) -> RecordBatch {
    let schema = batch.schema();
    let mut defs: Vec<&catalog::ColumnDef> = table.columns().iter().collect();
    defs.sort_by_key(|c| {
        let rank = match c.kind {
            catalog::ColumnKind::Tag => 0,
            catalog::ColumnKind::Field(_) => 1,
            catalog::ColumnKind::Time => 2,
        };
        (rank, c.id)
    });
    let mut order: Vec<usize> = defs
        .iter()
        .filter_map(|c| schema.index_of(&c.name).ok())
        .collect();
    for i in 0..schema.fields().len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    batch.project(&order).unwrap_or_else(|_| batch.clone())
}

/// One running WAL or schedule trigger.
#[derive(Debug, Clone)]
struct TriggerRun {
    inner: Arc<Inner>,
    db_id: u32,
    db: String,
    def: TriggerDef,
}

impl TriggerRun {
    fn call(&self, input: CallInput) -> Result<Call, String> {
        let path = self
            .inner
            .plugin_path(&self.def.plugin_filename)
            .map_err(|e| e.to_string())?;
        Ok(Call {
            path,
            namespace: format!("trigger:{}:{}", self.db_id, self.def.name),
            db: self.db.clone(),
            args: self.def.arguments.clone(),
            input,
        })
    }

    /// Calls the plugin with `input`, as the trigger's error behaviour says.
    async fn fire(self, input: CallInput, kind: &'static str) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let result = match self.call(input.clone()) {
                Ok(call) => self.inner.call(&self.def.name, call, false, kind).await.0,
                Err(e) => Err(e),
            };
            let Err(error) = result else {
                return;
            };
            self.inner.log(
                &self.db,
                &self.def.name,
                "ERROR",
                format!("the plugin {} failed: {error}", self.def.plugin_filename),
            );
            match self.def.error_behavior {
                ErrorBehavior::Log => return,
                ErrorBehavior::Disable => {
                    self.inner.log(
                        &self.db,
                        &self.def.name,
                        "ERROR",
                        "the trigger is disabled after an error (error_behavior Disable)"
                            .to_string(),
                    );
                    self.inner.disable(self.db_id, &self.def.name).await;
                    return;
                }
                ErrorBehavior::Retry => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn run_wal(self, spec: TriggerSpec, mut queue: mpsc::UnboundedReceiver<Arc<Flush>>) {
        while let Some(flush) = queue.recv().await {
            let tables = self.inner.tables_of(self.db_id, &flush, spec.table());
            if tables.is_empty() {
                continue;
            }
            let fire = self.clone().fire(CallInput::Writes(tables), "wal");
            if self.def.run_async {
                tokio::spawn(fire);
            } else {
                fire.await;
            }
        }
    }

    async fn run_schedule(self, spec: TriggerSpec) {
        let mut after = chrono::Utc::now();
        loop {
            let Some(next) = spec.next_after(after) else {
                self.inner.log(
                    &self.db,
                    &self.def.name,
                    "ERROR",
                    format!("the schedule {} never fires again", self.def.specification),
                );
                return;
            };
            let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            let fire = self
                .clone()
                .fire(CallInput::Schedule(next.timestamp()), "schedule");
            if self.def.run_async {
                tokio::spawn(fire);
            } else {
                fire.await;
            }
            // A call that ran past later firings skips them.
            after = next.max(chrono::Utc::now());
        }
    }
}

impl FlushListener for ProcessingEngine {
    fn flushed(&self, db_id: u32, tables: &[(u32, RecordBatch)]) {
        let routes = self.inner.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut flush: Option<Arc<Flush>> = None;
        for route in routes.iter().filter(|r| r.db_id == db_id) {
            let flush = flush.get_or_insert_with(|| {
                Arc::new(Flush {
                    tables: tables.to_vec(),
                })
            });
            // A closed queue is a trigger being stopped.
            let _ = route.queue.send(Arc::clone(flush));
        }
    }
}

/// `path` as a relative path inside `root`: no `..`, and an absolute path
/// only under `root`.
fn relative_inside(root: &Path, path: &str) -> Result<PathBuf, EngineError> {
    let bad = || {
        EngineError::Invalid(format!(
            "plugin path '{path}' is not inside the plugin directory"
        ))
    };
    if path.is_empty() {
        return Err(EngineError::Invalid("the plugin path is empty".into()));
    }
    if path.starts_with("gh:") {
        return Err(EngineError::Invalid(format!(
            "plugin path '{path}': plugins from GitHub (gh:) are not fetched; upload the file with POST /api/v3/plugins/files"
        )));
    }
    let p = Path::new(path);
    let p = if p.is_absolute() {
        p.strip_prefix(root).map_err(|_| bad())?
    } else {
        p
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn parse_lines(input_lp: &str) -> (Vec<(String, Vec<RecordBatch>)>, Vec<String>) {
    env::lines_to_tables(input_lp, catalog::now_ns())
}

#[async_trait]
impl EngineService for ProcessingEngine {
    fn check_plugin(&self, filename: &str) -> Result<String, EngineError> {
        self.inner.plugin_path(filename)?;
        Ok(relative_inside(&self.inner.config.plugin_dir, filename)?
            .to_string_lossy()
            .into_owned())
    }

    fn check_spec(&self, spec: &str) -> Result<(), EngineError> {
        TriggerSpec::parse(spec)
            .map(|_| ())
            .map_err(EngineError::Invalid)
    }

    fn triggers_changed(&self) {
        // At once, so that a write acknowledged after the change's answer
        // reaches a new trigger (and not a disabled one).
        self.inner.sync();
    }

    async fn request(&self, request: PluginRequest) -> Result<PluginResponse, EngineError> {
        let state = self.inner.catalog.state();
        let found = state.databases().find_map(|db| {
            db.triggers.values().find_map(|t| {
                let spec = TriggerSpec::parse(&t.specification).ok()?;
                (spec.request_path() == Some(request.path.as_str()))
                    .then(|| (db.id, db.name.to_string(), t.clone()))
            })
        });
        let Some((db_id, db, def)) = found else {
            return Err(EngineError::NotFound(format!(
                "no request trigger is bound to /api/v3/engine/{}",
                request.path
            )));
        };
        if def.disabled {
            return Err(EngineError::NotFound(format!(
                "the trigger {} of /api/v3/engine/{} is disabled",
                def.name, request.path
            )));
        }
        let call = Call {
            path: self.inner.plugin_path(&def.plugin_filename)?,
            namespace: format!("trigger:{db_id}:{}", def.name),
            db: db.clone(),
            args: def.arguments.clone(),
            input: CallInput::Request {
                query: request.query,
                headers: request.headers,
                body: request.body,
            },
        };
        let (result, _) = self.inner.call(&def.name, call, false, "request").await;
        match result {
            Ok(Returned::Response {
                status,
                headers,
                body,
            }) => Ok(PluginResponse {
                status,
                headers,
                body: body.into(),
            }),
            Ok(Returned::Done) => Ok(PluginResponse {
                status: 204,
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            }),
            Err(e) => {
                self.inner.log(
                    &db,
                    &def.name,
                    "ERROR",
                    format!("the plugin {} failed: {e}", def.plugin_filename),
                );
                if def.error_behavior == ErrorBehavior::Disable {
                    self.inner.disable(db_id, &def.name).await;
                }
                Err(EngineError::Failed(format!("the plugin failed: {e}")))
            }
        }
    }

    async fn test_wal(&self, request: WalTestRequest) -> Result<TestOutcome, EngineError> {
        let (tables, errors) = parse_lines(&request.input_lp);
        let plugin = DryRun {
            filename: &request.filename,
            cache_name: request.cache_name.as_deref(),
            database: &request.database,
            args: request.input_arguments.clone(),
        };
        self.inner
            .dry_run(plugin, CallInput::Writes(tables), "wal", None, errors)
            .await
    }

    async fn test_schedule(
        &self,
        request: ScheduleTestRequest,
    ) -> Result<TestOutcome, EngineError> {
        let now = chrono::Utc::now();
        let time = match request.schedule.as_deref() {
            Some(s) => {
                let spec = TriggerSpec::parse(s)
                    .or_else(|_| TriggerSpec::parse(&format!("cron:{s}")))
                    .map_err(EngineError::Invalid)?;
                if !spec.is_schedule() {
                    return Err(EngineError::Invalid(format!(
                        "'{s}' is not a schedule (every:DURATION or cron:EXPRESSION)"
                    )));
                }
                spec.next_after(now).unwrap_or(now)
            }
            None => now,
        };
        let plugin = DryRun {
            filename: &request.filename,
            cache_name: request.cache_name.as_deref(),
            database: &request.database,
            args: request.input_arguments.clone(),
        };
        let input = CallInput::Schedule(time.timestamp());
        self.inner
            .dry_run(
                plugin,
                input,
                "schedule",
                Some(time.to_rfc3339()),
                Vec::new(),
            )
            .await
    }

    async fn write_plugin_file(&self, relative: &str, content: &str) -> Result<(), EngineError> {
        let relative = relative_inside(&self.inner.config.plugin_dir, relative)?;
        let path = self.inner.config.plugin_dir.join(relative);
        env::write_file(&self.inner.config.plugin_dir, &path, content)
    }

    async fn write_plugin_directory(
        &self,
        relative: &str,
        files: &[PluginFile],
    ) -> Result<(), EngineError> {
        let relative = relative_inside(&self.inner.config.plugin_dir, relative)?;
        let dir = self.inner.config.plugin_dir.join(relative);
        let mut planned = Vec::with_capacity(files.len());
        for f in files {
            let inside = relative_inside(&dir, &f.relative_path)?;
            planned.push((dir.join(inside), f.content.as_str()));
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| EngineError::Failed(format!("{}: {e}", dir.display())))?;
        }
        for (path, content) in planned {
            env::write_file(&self.inner.config.plugin_dir, &path, content)?;
        }
        Ok(())
    }

    async fn install_packages(&self, packages: &[String]) -> Result<(), EngineError> {
        let _one_at_a_time = self.inner.installs.lock().await;
        env::install(
            &self.inner.config,
            env::Install::Packages(packages.to_vec()),
        )
        .await
    }

    async fn install_requirements(&self, location: &str) -> Result<(), EngineError> {
        let path = if Path::new(location).is_absolute() {
            PathBuf::from(location)
        } else {
            self.inner
                .config
                .plugin_dir
                .join(relative_inside(&self.inner.config.plugin_dir, location)?)
        };
        if !path.is_file() {
            return Err(EngineError::NotFound(format!(
                "requirements file not found: {}",
                path.display()
            )));
        }
        let _one_at_a_time = self.inner.installs.lock().await;
        env::install(&self.inner.config, env::Install::Requirements(path)).await
    }
}

/// The plugin of a dry run, and what it is called with.
struct DryRun<'a> {
    filename: &'a str,
    /// Its cache namespace (default: the file's).
    cache_name: Option<&'a str>,
    database: &'a str,
    args: Option<BTreeMap<String, String>>,
}

impl Inner {
    /// Calls a plugin without writing, and reports what it did.
    async fn dry_run(
        &self,
        plugin: DryRun<'_>,
        input: CallInput,
        kind: &'static str,
        trigger_time: Option<String>,
        mut errors: Vec<String>,
    ) -> Result<TestOutcome, EngineError> {
        let call = Call {
            path: self.plugin_path(plugin.filename)?,
            namespace: format!("test:{}", plugin.cache_name.unwrap_or(plugin.filename)),
            db: plugin.database.to_string(),
            args: plugin.args,
            input,
        };
        let (result, collected) = self.call("test", call, true, kind).await;
        Ok(outcome(
            &self.catalog,
            trigger_time,
            result,
            collected,
            &mut errors,
        ))
    }
}

/// A dry run's answer. The lines the plugin would write are checked as a
/// write would check them (the database name, the line syntax, the types
/// of the columns the catalog has), and what fails is among the errors.
fn outcome(
    catalog: &Catalog,
    trigger_time: Option<String>,
    result: Result<Returned, String>,
    collected: Collected,
    errors: &mut Vec<String>,
) -> TestOutcome {
    if let Err(e) = result {
        errors.push(e);
    }
    let state = catalog.state();
    let mut database_writes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (db, lines) in collected.writes {
        if let Err(e) = catalog::validate_db_name(&db) {
            errors.push(format!("writing to {db}: {e}"));
        } else if db == services::INTERNAL_DB {
            errors.push(format!(
                "writing to {db}: plugins cannot write to the _internal database"
            ));
        } else {
            let body = lines.join("\n");
            let mut parsed =
                validation::parse(body.as_bytes(), line_protocol::Precision::Nanosecond);
            validation::schema_check(&state, &db, &mut parsed, &services::Limits::UNLIMITED);
            for r in &parsed.rejected {
                errors.push(format!(
                    "writing to {db}: {}: {}",
                    r.error_message, r.original_line
                ));
            }
        }
        database_writes.insert(db, lines);
    }
    TestOutcome {
        trigger_time,
        log_lines: collected.log_lines,
        database_writes,
        errors: std::mem::take(errors),
    }
}

#[cfg(test)]
mod tests;
