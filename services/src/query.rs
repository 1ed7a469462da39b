//! The query service: SQL now; InfluxQL and Flight call the same trait.

use std::fmt;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::stream::BoxStream;

/// A database that always exists and holds only the `system` tables, for
/// queries such as `SELECT * FROM system.tokens` (as in InfluxDB 3).
pub const INTERNAL_DB: &str = "_internal";

/// JSON values bound to a query's `$name` placeholders.
pub type Params = serde_json::Map<String, serde_json::Value>;

/// One SQL query, as a front end received it.
pub struct SqlQuery<'a> {
    /// The database queried.
    pub db: &'a str,
    /// The statement.
    pub sql: &'a str,
    /// Values for `$name` placeholders.
    pub params: Option<&'a Params>,
    /// Whether the caller may read a `system` table (by name).
    pub may_read_system: &'a (dyn Fn(&str) -> bool + Sync),
}

impl fmt::Debug for SqlQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlQuery")
            .field("db", &self.db)
            .field("sql", &self.sql)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A running query's results: the schema, known before the first batch,
/// and the batches as they are produced.
pub struct QueryResults {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// The batches; an error ends the query.
    pub batches: BoxStream<'static, Result<RecordBatch, QueryError>>,
}

impl fmt::Debug for QueryResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryResults")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Why a query failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The database does not exist.
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    /// The query is invalid: parse, plan or parameter errors.
    #[error("{0}")]
    Invalid(String),
    /// The query reads system tables the caller may not read.
    #[error("{0}")]
    Forbidden(String),
    /// The query failed while running.
    #[error("query execution failed: {0}")]
    Execution(String),
}

/// Runs queries. Implemented by the query engine.
#[async_trait]
pub trait QueryService: Send + Sync + fmt::Debug + 'static {
    /// Plans and starts a SQL query.
    async fn sql(&self, query: SqlQuery<'_>) -> Result<QueryResults, QueryError>;

    /// Runs one InfluxQL statement that reads data (`SELECT`, `SHOW ...`).
    /// The error is the statement's: InfluxDB reports it in the result.
    async fn influxql(
        &self,
        query: crate::influxql::InfluxqlQuery<'_>,
    ) -> Result<crate::influxql::StatementResult, QueryError>;

    /// Brings this node's caches to the catalog's definitions and fills the
    /// caches of `db` (those of `table` only, when given) from the table's
    /// rows, buffered and persisted: each last value cache with the newest
    /// rows per key, each distinct value cache with the most recently
    /// written combinations.
    async fn fill_caches(&self, _db: &str, _table: Option<&str>) -> Result<(), QueryError> {
        Ok(())
    }

    /// Brings this node's caches to the catalog's definitions at once (a
    /// cache deleted through this node stops answering before the next
    /// sync).
    fn caches_changed(&self) {}
}
