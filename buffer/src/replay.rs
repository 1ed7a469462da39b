//! Rebuilding buffered rows from WAL entries: the ingester's start-up replay
//! and the querier's WAL tailing use this same path, so both see exactly what
//! was acknowledged.

use catalog::{Catalog, CatalogError};
use line_protocol::Precision;
use wal::WalEntry;

use crate::Buffer;
use crate::validate::{self, BuildError};

/// Why an entry could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The entry's precision code is unknown (a newer format).
    #[error("unknown precision code {0}")]
    Precision(u8),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The rows could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Parses, validates and applies one WAL entry; returns the rows applied.
pub async fn apply_wal_entry(catalog: &Catalog, buffer: &Buffer, seq: u64, entry: &WalEntry) -> Result<usize, ReplayError> {
    let precision = Precision::from_code(entry.precision).ok_or(ReplayError::Precision(entry.precision))?;
    let state = catalog.state();
    let (built, rejected) =
        match validate::parse_and_build_known(&state, &entry.db, &entry.lines, precision, entry.default_time_ns)? {
            Some(x) => x,
            None => {
                // The writer committed these columns before logging; a reader
                // whose catalog lags catches up here.
                let mut parsed = validate::parse(&entry.lines, precision);
                let change = validate::schema_check(&state, &entry.db, &mut parsed);
                let state = catalog.ensure(&change).await?;
                let built = validate::build(&state, &entry.db, &mut parsed, entry.default_time_ns)?;
                (built, parsed.rejected)
            }
        };
    if !rejected.is_empty() {
        // Lines were valid when written, and column types never change.
        tracing::warn!(seq, rejected = rejected.len(), first = ?rejected.first(), "WAL lines no longer validate");
    }
    let rows = built.batch.rows;
    buffer.apply(seq, built.batch);
    Ok(rows)
}
