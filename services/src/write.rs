//! The write service: what a front end hands the write path, and what it
//! gets back.

use async_trait::async_trait;
use bytes::Bytes;
use line_protocol::Precision;

/// How many line errors a response reports at most.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// A rejected line, as reported to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedLine {
    /// The 1-based line number in the request body.
    pub line_number: usize,
    /// The line as sent (lossy UTF-8).
    pub original_line: String,
    /// Why it was rejected.
    pub error_message: String,
    /// Rejected because a configured limit was reached (HTTP 422).
    pub limit: bool,
}

impl RejectedLine {
    /// A rejected line; `raw` is the line as sent.
    pub fn new(line_number: usize, raw: &[u8], error_message: String, limit: bool) -> Self {
        Self {
            line_number,
            original_line: String::from_utf8_lossy(raw).into_owned(),
            error_message,
            limit,
        }
    }
}

/// How many databases, tables per database and columns per table the
/// catalog may hold (`--max-databases`, `--max-tables-per-database`,
/// `--max-columns-per-table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Live databases.
    pub max_databases: usize,
    /// Live tables in one database.
    pub max_tables_per_database: usize,
    /// Columns in one table, `time` included.
    pub max_columns_per_table: usize,
}

impl Limits {
    /// No limits (replay: the lines were accepted once already).
    pub const UNLIMITED: Limits = Limits {
        max_databases: usize::MAX,
        max_tables_per_database: usize::MAX,
        max_columns_per_table: usize::MAX,
    };
}

/// A write request, after HTTP parsing and decompression.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The database (created if missing).
    pub db: String,
    /// Line protocol.
    pub body: Bytes,
    /// The timestamps' unit.
    pub precision: Precision,
    /// Write the good lines when some are bad.
    pub accept_partial: bool,
    /// Acknowledge before the WAL flush.
    pub no_sync: bool,
}

/// What a write did.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    /// Lines written.
    pub lines_written: usize,
    /// Lines rejected (a partial write when not empty).
    pub rejected: Vec<RejectedLine>,
}

/// Why a write wrote nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The database name breaks the naming rule.
    #[error("{0}")]
    InvalidDatabaseName(String),
    /// Lines were rejected and nothing was written.
    #[error("write of line protocol failed")]
    Rejected(Vec<RejectedLine>),
    /// The object store is failing; the client should retry.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// Accepts line protocol writes. Implemented by the ingester.
#[async_trait]
pub trait WriteService: Send + Sync + std::fmt::Debug + 'static {
    /// Validates, logs and buffers a write.
    async fn write_lp(&self, req: WriteRequest) -> Result<WriteOutcome, WriteError>;

    /// The catalog changed through this process (a delete): drop buffered
    /// rows it voids, at once.
    fn catalog_changed(&self) {}

    /// Predicate deletes were committed to the catalog through this
    /// process: mark them in this node's WAL (the rows before the marker
    /// are deleted) and wait until that is durable. Nothing to do for a
    /// write path that keeps no buffer.
    async fn apply_deletes(&self) -> Result<(), WriteError> {
        Ok(())
    }

    /// Persists everything written so far and waits for it, at most
    /// `max_wait` (a node about to stop); whether it finished. Nothing to do
    /// for a write path that keeps no buffer.
    async fn drain(&self, _max_wait: std::time::Duration) -> bool {
        true
    }
}
