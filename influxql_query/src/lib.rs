//! Runs InfluxQL statements over Inflow's tables, with InfluxDB 1.x's
//! semantics.
//!
//! ```text
//!  Statement ─▶ select::run ── per measurement: SQL (time range, columns,
//!     │                        the WHERE clause as a predicate) ─▶ Backend
//!     │                      ◀─ rows ─▶ series by GROUP BY tags
//!     │                        ─▶ windows, aggregates, selectors, fill,
//!     │                           transformations, LIMIT/SLIMIT
//!     └▶ show::run ── the catalog's schema, and SQL for tag values
//! ```
//!
//! The scan and the predicate run in DataFusion (pruning files, pushing
//! the filter into the buffer and Parquet scans); the InfluxQL semantics
//! that SQL cannot say directly (selector times and rows, `fill`, windows
//! aligned to the epoch, `derivative`, `top` per tag) run here over the
//! rows of each series. What Inflow cannot do is an error, never a wrong
//! answer.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use catalog::DatabaseSchema;
use influxql::Statement;
use services::QueryError;
use services::influxql::{InfluxqlQuery, StatementResult};

mod delete;
mod eval;
mod explain;
mod functions;
mod rows;
mod select;
mod show;
mod sql;
mod time;

pub use delete::{DeleteCondition, delete_condition};

/// What the planner needs from the query engine.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The schema of a database that exists.
    fn database(&self, name: &str) -> Option<Arc<DatabaseSchema>>;
    /// Runs a SQL query over a database and collects its batches.
    async fn sql(&self, db: &str, sql: &str) -> Result<Vec<RecordBatch>, QueryError>;
}

/// A statement error, as InfluxDB words it in the result.
pub(crate) fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::Invalid(message.into())
}

/// Runs one statement that reads data.
pub async fn run(
    backend: &dyn Backend,
    query: InfluxqlQuery<'_>,
) -> Result<StatementResult, QueryError> {
    let ctx = Context {
        backend,
        db: query.db,
        rp: query.rp,
        params: query.params,
        now_ns: query.now_ns,
    };
    match query.statement {
        Statement::Select(s) => select::run(&ctx, s).await,
        Statement::Explain { analyze, select } => explain::run(&ctx, *analyze, select).await,
        Statement::ShowMeasurements(s) => show::measurements(&ctx, s).await,
        Statement::ShowTagKeys(s) => show::tag_keys(&ctx, s).await,
        Statement::ShowFieldKeys(s) => show::field_keys(&ctx, s).await,
        Statement::ShowTagValues(s) => show::tag_values(&ctx, s).await,
        Statement::ShowSeries(s) => show::show_series(&ctx, s).await,
        Statement::ShowCardinality(s) => show::cardinality(&ctx, s).await,
        other => Err(invalid(format!(
            "statement is not a query: {}",
            statement_kind(other)
        ))),
    }
}

fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::ShowDatabases => "SHOW DATABASES",
        Statement::ShowRetentionPolicies { .. } => "SHOW RETENTION POLICIES",
        Statement::CreateDatabase { .. } => "CREATE DATABASE",
        Statement::DropDatabase { .. } => "DROP DATABASE",
        Statement::DropMeasurement { .. } => "DROP MEASUREMENT",
        Statement::Delete { .. } => "DELETE",
        _ => "statement",
    }
}

/// What every statement of a request shares.
pub(crate) struct Context<'a> {
    pub(crate) backend: &'a dyn Backend,
    pub(crate) db: Option<&'a str>,
    pub(crate) rp: Option<&'a str>,
    pub(crate) params: Option<&'a services::Params>,
    pub(crate) now_ns: i64,
}

impl Context<'_> {
    /// The Inflow database a statement reads: `db` (or the request's), with
    /// a retention policy other than the default written to `db/rp`, as
    /// the v1 write API does.
    pub(crate) fn database_name(
        &self,
        db: Option<&str>,
        rp: Option<&str>,
    ) -> Result<String, QueryError> {
        let db = db
            .or(self.db)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| invalid("database name required"))?;
        let rp = rp.or(self.rp).filter(|r| !r.is_empty() && *r != "autogen");
        Ok(match rp {
            Some(rp) => format!("{db}/{rp}"),
            None => db.to_string(),
        })
    }

    /// The schema of a database, or InfluxDB's error.
    pub(crate) fn schema(&self, name: &str) -> Result<Arc<DatabaseSchema>, QueryError> {
        self.backend
            .database(name)
            .ok_or_else(|| invalid(format!("database not found: {name}")))
    }
}
