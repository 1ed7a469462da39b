//! Queries: SQL through DataFusion over the catalog's tables, served as the
//! [`services::QueryService`] the API front ends call.
//!
//! ```text
//!  SQL ─▶ SessionState (catalog "public", schema "iox", information_schema)
//!            │ table("cpu") ─▶ InflowTable: pruned Parquet files ∪ buffer chunks,
//!            │                 overlapping ones deduplicated (see provider.rs)
//!            ▼
//!        RecordBatch stream ─▶ services::QueryResults ─▶ the front end's encoder
//! ```
//!
//! Each query gets its own session over the catalog state of the moment, so a
//! query sees one consistent schema. There is no limit on the number of
//! files a query may read: pruning keeps the number it opens small.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::IntCounter;

use catalog::Catalog;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{SQLOptions, SessionConfig};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder, TaskContext};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::execute_stream;
use object_store::ObjectStore;

mod cutoff;
mod ensure;
pub mod file_cache;

mod cache_table;
mod key_runs;
mod memory;
mod plan_cache;
mod provider;
mod prune_dynamic;
mod rules;
mod system;
mod udfs;

pub use provider::DatabaseCatalog;

pub use services::{INTERNAL_DB, QueryError};

use buffer::Buffer;

/// A DataFusion error as a [`QueryError`]: planning-time errors are the
/// user's; the rest happened while running.
fn query_error(e: DataFusionError) -> QueryError {
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => QueryError::Invalid(e.strip_backtrace()),
        _ => QueryError::Execution(e.to_string()),
    }
}

/// Counts of Parquet files per table scan: read versus pruned before
/// opening. Registered with `/metrics` by the server.
#[derive(Debug, Clone)]
pub struct ScanMetrics {
    /// `inflow_query_parquet_files_scanned_total`.
    pub files_scanned: IntCounter,
    /// `inflow_query_parquet_files_pruned_total`.
    pub files_pruned: IntCounter,
    /// The in-memory Parquet file cache's counters.
    pub cache: file_cache::CacheMetrics,
    /// `inflow_query_plan_cache_hits_total`.
    pub plans_reused: IntCounter,
    /// `inflow_query_physical_plan_reuses_total`.
    pub physical_plans_reused: IntCounter,
}

impl Default for ScanMetrics {
    fn default() -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help)
                .unwrap_or_else(|e| unreachable!("metric {name} is valid: {e}"))
        };
        Self {
            files_scanned: counter(
                "inflow_query_parquet_files_scanned_total",
                "Parquet files that table scans read",
            ),
            files_pruned: counter(
                "inflow_query_parquet_files_pruned_total",
                "Parquet files that table scans skipped by time range or column statistics",
            ),
            cache: file_cache::CacheMetrics::default(),
            plans_reused: counter(
                "inflow_query_plan_cache_hits_total",
                "Queries that reused the optimised plan of the same query text over the same schema",
            ),
            physical_plans_reused: counter(
                "inflow_query_physical_plan_reuses_total",
                "Queries that ran the physical plan of the same query text again, over the same rows",
            ),
        }
    }
}

impl ScanMetrics {
    fn record(&self, scanned: u64, pruned: u64) {
        self.files_scanned.inc_by(scanned);
        self.files_pruned.inc_by(pruned);
    }
}

/// Runs queries against the catalog, the buffer and the Parquet files.
#[derive(Debug)]
pub struct QueryEngine {
    catalog: Arc<Catalog>,
    sources: provider::Sources,
    /// Built once: registering DataFusion's few hundred built-in functions
    /// per query cost more than planning a small query. Each query takes
    /// an idle session (or a clone of this one) with this configuration and
    /// its own catalog list.
    base: SessionState,
    plans: plan_cache::PlanCache,
    /// The schema of [`INTERNAL_DB`]: empty, and one `Arc` for every query,
    /// like a real database's while it does not change.
    internal: Arc<catalog::DatabaseSchema>,
    /// Sessions of finished queries, for later ones: a clone of `base`
    /// copies DataFusion's function registries (about 0.1 M instructions,
    /// 5% of a small cached query). Each query sets the catalog list and
    /// the configuration it uses afresh.
    idle: std::sync::Mutex<Vec<SessionState>>,
    /// The pool every query shares and each query's limit within it
    /// ([`memory`]); `None`: unbounded.
    memory: Option<(Arc<dyn MemoryPool>, usize)>,
}

/// Idle sessions kept at most.
const MAX_IDLE_SESSIONS: usize = 8;

impl QueryEngine {
    /// An engine over `catalog`, `buffer`, and the Parquet files on `store`
    /// (the root store: file paths in the catalog include the prefix).
    pub fn new(catalog: Arc<Catalog>, buffer: Arc<Buffer>, store: Arc<dyn ObjectStore>) -> Self {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("public", "iox");
        let runtime = Arc::new(RuntimeEnv::default());
        if let Ok(url) = ObjectStoreUrl::parse(provider::STORE_URL) {
            runtime.register_object_store(url.as_ref(), Arc::clone(&store));
        }
        let mut base = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_optimizer_rule(Arc::new(rules::SIMPLIFY_FIRST_LAST))
            .with_optimizer_rule(Arc::new(rules::LATEST_ROWS_ONLY))
            .with_physical_optimizer_rules(
                PhysicalOptimizer::new()
                    .rules
                    .into_iter()
                    .map(|rule| match rule.name() {
                        "EnsureRequirements" => Arc::new(ensure::EnsureWhenNeeded(rule)) as _,
                        _ => rule,
                    })
                    .collect(),
            )
            .with_physical_optimizer_rule(Arc::new(cutoff::PushCutoffIntoScans))
            .with_physical_optimizer_rule(Arc::new(prune_dynamic::PruneDynamicFilters))
            .build();
        base.register_udtf(
            "distinct_cache",
            Arc::new(cache_table::DistinctCacheFunction {
                caches: Arc::clone(buffer.caches()),
            }),
        );
        base.register_udtf(
            "last_cache",
            Arc::new(cache_table::LastCacheFunction {
                caches: Arc::clone(buffer.caches()),
            }),
        );
        for name in udfs::CHEAP_HASH {
            if let Some(f) = base.scalar_functions().get(name).cloned() {
                // Replaces the function under its name and aliases.
                let _ = base.register_udf(Arc::new(udfs::CheapHash::wrap(&f)));
            }
        }
        let sources = provider::Sources {
            buffer,
            catalog: Arc::clone(&catalog),
            store,
            metrics: Arc::new(ScanMetrics::default()),
            key_runs: Arc::default(),
            registry: None,
            engine_logs: None,
        };
        Self {
            catalog,
            sources,
            base,
            plans: plan_cache::PlanCache::default(),
            internal: Arc::new(catalog::DatabaseSchema::empty(INTERNAL_DB)),
            idle: std::sync::Mutex::default(),
            memory: None,
        }
    }

    /// Runs queries under a memory pool of `pool_bytes` shared by all of
    /// them, each allowed at most `per_query_bytes` of it (see [`memory`]).
    pub fn with_memory_limits(mut self, pool_bytes: usize, per_query_bytes: usize) -> Self {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(pool_bytes));
        match RuntimeEnvBuilder::from_runtime_env(self.base.runtime_env())
            .with_memory_pool(Arc::clone(&shared))
            .build_arc()
        {
            Ok(runtime) => {
                self.base = SessionStateBuilder::new_from_existing(self.base)
                    .with_runtime_env(runtime)
                    .build();
                self.memory = Some((shared, per_query_bytes.min(pool_bytes)));
            }
            Err(e) => tracing::warn!(error = %e, "queries run without a memory limit"),
        }
        self
    }

    /// Keeps up to `bytes` of Parquet files in memory for queries (see
    /// [`file_cache`]); 0 reads every file from the store.
    /// Both DataFusion's Parquet scans and the merges of overlapping files
    /// read through it.
    pub fn with_parquet_cache(mut self, bytes: usize) -> Self {
        if bytes > 0 {
            let cache: Arc<dyn ObjectStore> = Arc::new(file_cache::ParquetCache::new(
                Arc::clone(&self.sources.store),
                bytes,
                self.sources.metrics.cache.clone(),
            ));
            if let Ok(url) = ObjectStoreUrl::parse(provider::STORE_URL) {
                self.base
                    .runtime_env()
                    .register_object_store(url.as_ref(), Arc::clone(&cache));
            }
            self.sources.store = cache;
        }
        self
    }

    /// Lists the cluster's nodes in `system.nodes` from `registry`.
    pub fn with_registry(mut self, registry: cluster::Registry) -> Self {
        self.sources.registry = Some(registry);
        self
    }

    /// Shows what the processing engine's plugins logged in
    /// `system.processing_engine_logs`.
    pub fn with_engine_logs(mut self, logs: Arc<services::engine::EngineLogs>) -> Self {
        self.sources.engine_logs = Some(logs);
        self
    }

    /// File scan counters, for `/metrics`.
    pub fn scan_metrics(&self) -> Arc<ScanMetrics> {
        Arc::clone(&self.sources.metrics)
    }

    /// The catalog state of the moment and `db`'s schema in it.
    fn database(
        &self,
        db: &str,
    ) -> Result<(Arc<catalog::CatalogState>, Arc<catalog::DatabaseSchema>), QueryError> {
        let state = self.catalog.state();
        let schema = match state.db(db) {
            Some(d) => Arc::clone(d),
            None if db == INTERNAL_DB => Arc::clone(&self.internal),
            None => return Err(QueryError::DatabaseNotFound(db.to_string())),
        };
        Ok((state, schema))
    }

    /// A session over the tables of `db_schema` in catalog state `state`,
    /// with a scan log of its own.
    fn session(
        &self,
        state: Arc<catalog::CatalogState>,
        db_schema: &Arc<catalog::DatabaseSchema>,
    ) -> SessionState {
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(
            "public".to_string(),
            Arc::new(DatabaseCatalog::new(
                Arc::clone(db_schema),
                self.sources.clone(),
                state,
            )),
        );
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut session = match idle {
            Some(mut s) => {
                *s.config_mut() = self.base.config().clone();
                s
            }
            None => self.base.clone(),
        };
        session.register_catalog_list(Arc::new(catalogs));
        session
            .config_mut()
            .set_extension(Arc::new(provider::ScanLog::default()));
        session
            .config_mut()
            .set_extension(Arc::new(cache_table::CurrentDatabase(Arc::clone(
                db_schema,
            ))));
        session
    }

    /// A task context for running a plan made with `config`. Execution
    /// needs no function registry (DataFusion's `task_ctx` would copy all
    /// three).
    fn task_context(&self, config: SessionConfig) -> Arc<TaskContext> {
        let runtime = match &self.memory {
            None => Arc::clone(self.base.runtime_env()),
            Some((shared, limit)) => {
                let pool = Arc::new(memory::QueryPool::new(Arc::clone(shared), *limit));
                RuntimeEnvBuilder::from_runtime_env(self.base.runtime_env())
                    .with_memory_pool(pool)
                    .build_arc()
                    .unwrap_or_else(|_| Arc::clone(self.base.runtime_env()))
            }
        };
        Arc::new(TaskContext::new(
            None,
            self.base.session_id().to_string(),
            config,
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
            runtime,
        ))
    }

    /// Plans and starts a SQL query. `params` bind `$name` placeholders.
    /// `may_read_system` says whether the caller may read a `system` table.
    pub async fn sql(
        &self,
        db: &str,
        sql: &str,
        params: Option<&serde_json::Map<String, serde_json::Value>>,
        may_read_system: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let df = query_error;
        let (catalog_state, schema) = self.database(db)?;
        let key = plan_cache::PlanKey::new(db, sql, params);
        let cached = key.as_ref().and_then(|k| self.plans.get(k, &schema));
        if let Some(plan_cache::Cached {
            physical: Some(p), ..
        }) = &cached
            && p.scans.iter().all(|s| self.sources.unchanged(s))
        {
            // The same rows as when it was planned: run it again.
            self.sources.metrics.plans_reused.inc();
            self.sources.metrics.physical_plans_reused.inc();
            for s in p.scans.iter() {
                self.sources.metrics.record(s.files_scanned, s.files_pruned);
            }
            let mut config = self.base.config().clone();
            config.options_mut().execution.target_partitions = p.target_partitions;
            return execute_stream(p.to_run().map_err(df)?, self.task_context(config)).map_err(df);
        }
        // One session state per query, used in place (a `SessionContext`
        // and `DataFrame` would each clone it again).
        let mut state = self.session(catalog_state, &schema);
        // `now()` is the time the query starts (as `SessionContext::state`
        // sets it); without it, DataFusion fails to evaluate `now()`.
        state.mark_start_execution();
        let plan = match cached {
            Some(cached) => {
                self.sources.metrics.plans_reused.inc();
                cached.logical
            }
            None => {
                let mut plan = state.create_logical_plan(sql).await.map_err(df)?;
                // Read-only: no DDL, DML or session statements through the query API.
                SQLOptions::new()
                    .with_allow_ddl(false)
                    .with_allow_dml(false)
                    .with_allow_statements(false)
                    .verify_plan(&plan)
                    .map_err(df)?;
                if let Some(params) = params.filter(|p| !p.is_empty()) {
                    let values = params
                        .iter()
                        .map(|(k, v)| {
                            Ok((k.trim_start_matches('$').to_string(), json_to_scalar(k, v)?))
                        })
                        .collect::<Result<HashMap<String, ScalarValue>, QueryError>>()?;
                    plan = plan.with_param_values(values).map_err(df)?;
                }
                system::check_access(&plan, may_read_system)?;
                if rules::one_pass_suffices(&plan) {
                    state.config_mut().options_mut().optimizer.max_passes = 1;
                }
                let optimized = Arc::new(state.optimize(&plan).map_err(df)?);
                if let Some(key) = &key
                    && plan_cache::reusable(&plan, provider::reads_live_rows)
                {
                    self.plans
                        .insert(key.clone(), &schema, Arc::clone(&optimized));
                }
                optimized
            }
        };
        // A small scan runs on one core: splitting a few thousand rows over
        // partitions (repartitioning, two-phase aggregates, merges) costs
        // more than it saves, and leaves the other cores to other queries.
        let footers = state.runtime_env().cache_manager.get_file_metadata_cache();
        if provider::estimated_scan_work(&plan, footers.as_ref()).map_err(df)? < SMALL_SCAN_WORK {
            state.config_mut().options_mut().execution.target_partitions = 1;
        }
        let physical = Arc::clone(state.query_planner())
            .create_physical_plan(&plan, &state)
            .await
            .map_err(df)?;
        if let Some(key) = &key {
            let target_partitions = state.config().target_partitions();
            let scans = state
                .config()
                .get_extension::<provider::ScanLog>()
                .map(|l| l.take());
            let kept = scans
                .and_then(|scans| plan_cache::Physical::new(&physical, scans, target_partitions));
            self.plans.set_physical(key, &plan, kept);
        }
        let task = self.task_context(state.config().clone());
        self.recycle(state);
        execute_stream(physical, task).map_err(df)
    }

    /// Keeps a finished query's session for a later one.
    fn recycle(&self, mut state: SessionState) {
        // Drops the catalog snapshot now rather than at the next query.
        state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(state);
        }
    }
}

/// Scans estimated to read fewer values than this (buffered values; see
/// `provider::estimated_scan_work`) run in one partition: about what one
/// core aggregates in the time that setting up a parallel plan takes
/// (measured: 0.5 ms more for a 360-row single-host query over the buffer
/// with two partitions than with one; 0.3 ms more for 8 hosts, 9 K rows and
/// 12 columns).
const SMALL_SCAN_WORK: usize = 400_000;

fn json_to_scalar(name: &str, v: &serde_json::Value) -> Result<ScalarValue, QueryError> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                ScalarValue::Int64(Some(i))
            } else if let Some(u) = n.as_u64() {
                ScalarValue::UInt64(Some(u))
            } else {
                ScalarValue::Float64(n.as_f64())
            }
        }
        Value::Array(_) | Value::Object(_) => {
            return Err(QueryError::Invalid(format!(
                "query parameter '{name}' must be a string, number, boolean or null"
            )));
        }
    })
}

impl QueryEngine {
    /// Fills the caches not filled yet from their tables' rows: every cache
    /// after a restart, and those this node learns of from the catalog (a
    /// querier's, when an ingester made them).
    pub async fn fill_new_caches(&self) {
        self.sources.buffer.caches().sync(&self.catalog.state());
        let state = self.catalog.state();
        for (db_id, table_id) in self.sources.buffer.caches().unfilled() {
            let Some((db, table)) = state.db_by_id(db_id).and_then(|d| {
                d.table_by_id(table_id)
                    .map(|t| (d.name.to_string(), t.name.to_string()))
            }) else {
                continue;
            };
            if let Err(e) = services::QueryService::fill_caches(self, &db, Some(&table)).await {
                tracing::warn!(db, table, error = %e, "filling the caches failed; retrying");
            }
        }
    }

    /// Runs [`QueryEngine::fill_new_caches`] now and every second.
    pub fn spawn_cache_filler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                engine.fill_new_caches().await;
            }
        })
    }
}

#[async_trait::async_trait]
impl services::QueryService for QueryEngine {
    fn caches_changed(&self) {
        self.sources.buffer.caches().sync(&self.catalog.state());
    }

    async fn fill_caches(&self, db: &str, table: Option<&str>) -> Result<(), QueryError> {
        use futures::TryStreamExt;
        let state = self.catalog.state();
        self.sources.buffer.caches().sync(&state);
        let Some(schema) = state.db(db) else {
            return Err(QueryError::DatabaseNotFound(db.to_string()));
        };
        for t in schema.tables() {
            if table.is_some_and(|n| n != t.name.as_ref()) {
                continue;
            }
            for def in &t.last_caches {
                let cache = self
                    .sources
                    .buffer
                    .caches()
                    .last_cache(schema.id, t.id, Some(&def.name))
                    .map_err(QueryError::Invalid)?;
                let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
                let keys: Vec<String> = def.key_columns.iter().map(|k| ident(k)).collect();
                let mut columns = keys.clone();
                columns.extend(cache.value_columns().iter().map(|c| ident(c)));
                let mut sql = format!(
                    "SELECT {} FROM (SELECT {}, row_number() OVER ({} ORDER BY \"time\" DESC) AS __inflow_rank FROM {}",
                    columns.join(", "),
                    columns.join(", "),
                    if keys.is_empty() {
                        String::new()
                    } else {
                        format!("PARTITION BY {}", keys.join(", "))
                    },
                    ident(&t.name),
                );
                let conditions: Vec<String> =
                    keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
                if !conditions.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&conditions.join(" AND "));
                }
                sql.push_str(&format!(") WHERE __inflow_rank <= {}", def.count.max(1)));
                let refills = cache.refills();
                let stream = self.sql(db, &sql, None, &|_| false).await?;
                let batches: Vec<_> = stream.try_collect().await.map_err(query_error)?;
                // Oldest first, so each key ends with its newest rows. After
                // a delete while it read, nothing (the next pass fills it).
                cache.fill(refills, batches.iter().rev());
            }
            for def in &t.distinct_caches {
                let cache = self
                    .sources
                    .buffer
                    .caches()
                    .distinct_cache(schema.id, t.id, Some(&def.name))
                    .map_err(QueryError::Invalid)?;
                let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
                let columns: Vec<String> = def.columns.iter().map(|c| ident(c)).collect();
                // The most recently written combinations, as many as it keeps.
                let sql = format!(
                    "SELECT * FROM (SELECT {cols}, max(\"time\") AS __inflow_seen FROM {t} GROUP BY {cols} \
                     ORDER BY __inflow_seen DESC LIMIT {n}) ORDER BY __inflow_seen",
                    cols = columns.join(", "),
                    t = ident(&t.name),
                    n = def.max_cardinality,
                );
                let refills = cache.refills();
                let stream = self.sql(db, &sql, None, &|_| false).await?;
                let batches: Vec<_> = stream.try_collect().await.map_err(query_error)?;
                cache.fill(refills, &batches);
            }
        }
        Ok(())
    }

    async fn sql(
        &self,
        query: services::SqlQuery<'_>,
    ) -> Result<services::QueryResults, QueryError> {
        use futures::StreamExt;
        let stream = QueryEngine::sql(
            self,
            query.db,
            query.sql,
            query.params,
            query.may_read_system,
        )
        .await?;
        Ok(services::QueryResults {
            schema: stream.schema(),
            batches: stream
                .map(|r| r.map_err(|e| QueryError::Execution(e.to_string())))
                .boxed(),
        })
    }

    async fn influxql(
        &self,
        query: services::influxql::InfluxqlQuery<'_>,
    ) -> Result<services::influxql::StatementResult, QueryError> {
        influxql_query::run(self, query).await
    }
}

/// The InfluxQL planner reads schemas and runs its scans as SQL here.
#[async_trait::async_trait]
impl influxql_query::Backend for QueryEngine {
    fn database(&self, name: &str) -> Option<Arc<catalog::DatabaseSchema>> {
        self.catalog.state().db(name).cloned()
    }

    async fn sql(
        &self,
        db: &str,
        sql: &str,
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, QueryError> {
        use futures::TryStreamExt;
        let stream = QueryEngine::sql(self, db, sql, None, &|_| false).await?;
        stream
            .try_collect()
            .await
            .map_err(|e| QueryError::Execution(e.to_string()))
    }
}
