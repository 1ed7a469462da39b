//! Rebuilding buffered rows from WAL files: the ingester's start-up replay
//! and the querier's WAL tailing run this same loop, so both see exactly
//! what was acknowledged.
//!
//! ```text
//!  wal/{node}/ ─list─▶ files after `after`, in order ─read─▶ entries
//!              ─apply_wal_entry()─▶ validation ─▶ Buffer::apply(seq, rows)
//! ```

use catalog::{Catalog, CatalogError};
use line_protocol::Precision;
use wal::{WalEntry, WalError, WalLocation};

use crate::Buffer;
use validation::BuildError;

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
    /// A read-only catalog (a querier's) does not know columns the entry
    /// uses yet; the entry is applied once the catalog has caught up.
    #[error(
        "the catalog does not know the columns of database {0} this WAL entry uses yet; retrying after the next catalog sync"
    )]
    CatalogBehind(String),
    /// A delete marker that cannot be read.
    #[error("{0}")]
    BadMarker(String),
    /// A read-only catalog does not know the tombstones a delete marker
    /// names yet.
    #[error(
        "the catalog does not know tombstone {0} this WAL delete marker names yet; retrying after the next catalog sync"
    )]
    TombstonesBehind(u64),
}

/// Why reading a node's WAL stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalReadError {
    /// Listing or reading a file failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// An entry of a file could not be applied.
    #[error("replaying WAL file {seq}: {source}")]
    Entry {
        /// The WAL file.
        seq: u64,
        /// What failed.
        source: ReplayError,
    },
}

/// What [`apply_files_after`] found and applied.
#[derive(Debug, Default)]
pub struct WalProgress {
    /// Every file listed, by sequence number, with when it was written
    /// (epoch milliseconds), applied or not.
    pub listed: Vec<(u64, i64)>,
    /// Files applied.
    pub files: usize,
    /// Rows applied.
    pub rows: usize,
    /// The last file applied.
    pub last_applied: Option<u64>,
    /// When the newest file applied was written (epoch milliseconds).
    pub newest_written_ms: Option<i64>,
}

/// Applies every WAL file at `location` numbered after `after`, in order,
/// to `buffer`, calling `applied(seq)` after each file. A failure stops at
/// the file that failed; the files before it stay applied, so a caller that
/// records `applied` retries from there. The one list-read-apply loop of
/// the ingester's replay and the querier's tailing.
pub async fn apply_files_after(
    location: &WalLocation,
    after: u64,
    catalog: &Catalog,
    buffer: &Buffer,
    mut applied: impl FnMut(u64),
) -> Result<WalProgress, WalReadError> {
    let mut progress = WalProgress {
        listed: location.list_with_times().await?,
        ..WalProgress::default()
    };
    // The caches the catalog defines exist before the rows that feed them.
    if progress.listed.iter().any(|&(seq, _)| seq > after) {
        buffer.caches().sync(&catalog.state());
    }
    for &(seq, written_ms) in &progress.listed {
        if seq <= after {
            continue;
        }
        let file = location.read(seq).await?;
        for entry in &file.entries {
            progress.rows += apply_wal_entry(catalog, buffer, seq, entry)
                .await
                .map_err(|source| WalReadError::Entry { seq, source })?;
        }
        progress.files += 1;
        progress.last_applied = Some(seq);
        progress.newest_written_ms = Some(written_ms);
        applied(seq);
    }
    Ok(progress)
}

/// Parses, validates and applies one WAL entry; returns the rows applied.
pub async fn apply_wal_entry(
    catalog: &Catalog,
    buffer: &Buffer,
    seq: u64,
    entry: &WalEntry,
) -> Result<usize, ReplayError> {
    if let Some(through) = entry.marked_deletes() {
        let through = through.map_err(ReplayError::BadMarker)?;
        apply_delete_marker(catalog, buffer, seq, through).await?;
        return Ok(0);
    }
    let precision =
        Precision::from_code(entry.precision).ok_or(ReplayError::Precision(entry.precision))?;
    let state = catalog.state();
    // Lines a later delete voided are skipped, so replay never brings back
    // (or re-creates) what was deleted.
    if state.wal_db_voided(&entry.db, entry.default_time_ns) {
        return Ok(0);
    }
    let kept;
    let lines: &[u8] = match state.db(&entry.db) {
        Some(db) if db.wal_cutoffs.values().any(|c| entry.default_time_ns <= *c) => {
            kept = voided_lines_removed(&entry.lines, |table| {
                db.wal_voided(table, entry.default_time_ns)
            });
            &kept
        }
        _ => &entry.lines,
    };
    if lines.is_empty() {
        return Ok(0);
    }
    let (built, rejected) = match validation::parse_and_build_known(
        &state,
        &entry.db,
        lines,
        precision,
        entry.default_time_ns,
    )? {
        Some(x) => x,
        None => {
            // The writer committed these columns before logging; a reader
            // whose catalog lags catches up here. A querier only reads
            // the catalog: it syncs, and retries later if still behind.
            let mut parsed = validation::parse(lines, precision);
            let change = validation::schema_check(
                &state,
                &entry.db,
                &mut parsed,
                &validation::Limits::UNLIMITED,
            );
            let state = if catalog.is_read_only() {
                let state = catalog.sync().await?;
                let mut again = validation::parse(lines, precision);
                let still = validation::schema_check(
                    &state,
                    &entry.db,
                    &mut again,
                    &validation::Limits::UNLIMITED,
                );
                if !still.tables.is_empty() || state.db(&entry.db).is_none() {
                    return Err(ReplayError::CatalogBehind(entry.db.clone()));
                }
                state
            } else {
                catalog.ensure(&change).await?
            };
            let built = validation::build(&state, &entry.db, &mut parsed, entry.default_time_ns)?;
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

/// Applies a WAL delete marker: the tombstones up to `through` that the
/// catalog still has (a dropped one needs nothing: no row before it is
/// left). A read-only catalog that has not seen them yet syncs first.
pub async fn apply_delete_marker(
    catalog: &Catalog,
    buffer: &Buffer,
    seq: u64,
    through: u64,
) -> Result<(), ReplayError> {
    let mut state = catalog.state();
    let mut through = through;
    if state.last_tombstone_id() < through {
        state = catalog.sync().await?;
        if state.last_tombstone_id() < through {
            if catalog.is_read_only() {
                return Err(ReplayError::TombstonesBehind(through));
            }
            // A writer's catalog is the newest there is: the marker names
            // deletes made after this catalog was taken (a restore of a
            // backup whose WAL went on past its catalog). They are not part
            // of it, and the rows before the marker stay.
            tracing::warn!(
                seq,
                through,
                known = state.last_tombstone_id(),
                "a WAL delete marker names deletes the catalog does not have; they are not applied"
            );
            through = state.last_tombstone_id();
        }
    }
    let marker = validation::DeleteMarker {
        through,
        tombstones: state.tombstones_between(buffer.deletes_applied(), through),
    };
    buffer.apply(seq, validation::WriteBatch::delete_marker(marker));
    Ok(())
}

/// The lines whose table is not voided, joined by `\n`. Lines that don't
/// parse are kept: the normal path reports them.
fn voided_lines_removed(lines: &[u8], voided: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len());
    for (_, raw) in line_protocol::split_lines(lines) {
        let drop = line_protocol::parse_line(raw).is_ok_and(|l| voided(&l.measurement));
        if !drop {
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(raw);
        }
    }
    out
}
