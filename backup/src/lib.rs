//! Backup and restore of a cluster's object store: the catalog at one
//! sequence number, the Parquet files it references, and the WAL files it
//! does not cover yet, with a manifest of sizes and checksums.
//!
//! ```text
//!  backup:  catalog state S (read-only) ─▶ WAL files of each node after S's persisted seq
//!           ─▶ Parquet files of S (skipped when already in the target: incremental)
//!           ─▶ catalog.json (S) ─▶ manifest.json, last: a backup without one is incomplete
//!           a file that vanished meanwhile (persisted, compacted) ─▶ again from a newer S
//!
//!  target:  {prefix}/files/{path in the store}          Parquet, shared by every backup
//!           {prefix}/backups/{id}/catalog.json
//!           {prefix}/backups/{id}/wal/{node}/{seq}.wal
//!           {prefix}/backups/{id}/manifest.json
//!
//!  restore: an empty store ◀─ files (checksums verified) ◀─ WAL ◀─ catalog checkpoint
//!           (optionally one database, under another name); the caller then
//!           persists the WAL of each node ([`RestoreReport::wal_nodes`])
//! ```
//!
//! A backup holds every write acknowledged before it began: such a write is
//! either in a file of S (its persist committed before S was read) or in a
//! WAL file S does not cover, which the backup copies (a WAL file is only
//! deleted after a persist that a newer S covers; then the backup starts
//! over). Writes and queries go on meanwhile: the backup only reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use catalog::CatalogState;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// Copies run this many at a time.
const PARALLEL_COPIES: usize = 8;

/// A backup starts over from a newer catalog state at most this many times
/// when files vanish under it.
const MAX_ATTEMPTS: usize = 5;

/// Errors of a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The object store failed.
    #[error("object store error: {0}")]
    Store(#[from] object_store::Error),
    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    /// The location is not one this build can open.
    #[error("{0}")]
    Location(String),
    /// Files kept vanishing (persists and compactions faster than the copy).
    #[error(
        "the store kept changing under the backup ({0} attempts): files it listed were persisted or compacted away before they were copied; retry, or raise --gc-grace-period"
    )]
    TooManyChanges(usize),
    /// The restore target holds objects already.
    #[error("the target store is not empty (it holds {0}); restore into an empty store or prefix")]
    TargetNotEmpty(String),
    /// No such backup, or none at all.
    #[error("{0}")]
    NotFound(String),
    /// A backup's object does not match its manifest.
    #[error("backup object {path} is corrupt: {reason}")]
    Corrupt {
        /// The object.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// A WAL file of the backup could not be rewritten.
    #[error(transparent)]
    Wal(#[from] wal::WalError),
}

/// How to reach an S3 target, when not (only) from the `AWS_*` environment.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The endpoint URL (plain HTTP allowed when it is `http://`).
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
}

/// Where backups are kept: a store and a prefix in it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix everything is under.
    pub prefix: Path,
}

impl Location {
    /// Opens `url`: a directory (`/backups`, `file:///backups`), created if
    /// missing, or `s3://bucket[/prefix]` with the standard AWS
    /// environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...; plain HTTP
    /// when the endpoint is `http://`).
    pub fn open(url: &str) -> Result<Self, BackupError> {
        Self::open_with(url, &S3Options::default())
    }

    /// [`Location::open`], with `s3` over the environment for S3.
    pub fn open_with(url: &str, s3: &S3Options) -> Result<Self, BackupError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::Location(format!("no bucket in {url}")));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            let endpoint = s3.endpoint.clone().or_else(|| {
                std::env::var("AWS_ENDPOINT")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .ok()
            });
            if let Some(e) = endpoint {
                if e.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
                b = b.with_endpoint(e);
            }
            if let Some(r) = &s3.region {
                b = b.with_region(r);
            }
            if let Some(k) = &s3.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(k) = &s3.secret_access_key {
                b = b.with_secret_access_key(k);
            }
            return Ok(Self {
                store: Arc::new(b.build()?),
                prefix: Path::from(prefix.trim_matches('/')),
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        if dir.is_empty() || url.contains("://") && !url.starts_with("file://") {
            return Err(BackupError::Location(format!(
                "cannot open {url}: give a directory, file:///dir or s3://bucket/prefix"
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::Location(format!("cannot create {dir}: {e}")))?;
        Ok(Self {
            store: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?),
            prefix: Path::default(),
        })
    }

    fn path(&self, rel: &str) -> Path {
        if self.prefix.as_ref().is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn backup_path(&self, id: &str, rel: &str) -> Path {
        self.path(&format!("backups/{id}/{rel}"))
    }

    /// The ids of the complete backups here (those with a manifest), oldest
    /// first.
    pub async fn backups(&self) -> Result<Vec<String>, BackupError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path("backups")))
            .await?;
        let mut ids = Vec::new();
        for dir in listed.common_prefixes {
            let Some(id) = dir.filename() else { continue };
            match self
                .store
                .head(&self.backup_path(id, "manifest.json"))
                .await
            {
                Ok(_) => ids.push(id.to_string()),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The manifest of backup `id`.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, BackupError> {
        let path = self.backup_path(id, "manifest.json");
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BackupError::NotFound(format!(
                    "no complete backup {id} (no {path})"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }
}

/// One object of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Its path in the source store, without the source prefix (for WAL
    /// files: `wal/{node}/{seq}.wal`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// CRC-32 (IEEE) of its bytes.
    pub crc32: u32,
}

/// What a backup holds: written last, so a backup with a manifest is
/// complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format (1).
    pub format: u32,
    /// The backup id (`YYYYMMDDTHHMMSSmmmZ-{catalog seq}`).
    pub backup_id: String,
    /// The cluster UUID.
    pub cluster_uuid: String,
    /// The catalog sequence number the backup is consistent at.
    pub catalog_seq: u64,
    /// The source store's prefix.
    pub source_prefix: String,
    /// When the backup began and ended (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// The catalog state (`catalog.json`).
    pub catalog: ObjectRecord,
    /// The Parquet files the catalog references.
    pub parquet_files: Vec<ObjectRecord>,
    /// The WAL files the catalog does not cover yet, per node.
    pub wal_files: Vec<ObjectRecord>,
    /// Bytes of everything the backup references.
    pub total_bytes: u64,
    /// Objects this backup copied (the others were in the target already).
    pub copied_files: u64,
    /// Bytes it copied.
    pub copied_bytes: u64,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Attempts (more than 1 when files vanished under an earlier one).
    pub attempts: u32,
}

/// Why one attempt stopped.
enum Attempt {
    /// A file vanished: start over from a newer catalog state.
    Changed(String),
    /// A real error.
    Failed(BackupError),
}

impl From<BackupError> for Attempt {
    fn from(e: BackupError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<object_store::Error> for Attempt {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Attempt::Changed(path),
            e => Attempt::Failed(e.into()),
        }
    }
}

/// `path` without `prefix/`.
fn relative<'p>(prefix: &Path, path: &'p str) -> &'p str {
    let p = prefix.as_ref();
    if p.is_empty() {
        return path;
    }
    path.strip_prefix(p)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(path)
}

fn join(prefix: &Path, rel: &str) -> Path {
    if prefix.as_ref().is_empty() {
        Path::from(rel)
    } else {
        Path::from(format!("{prefix}/{rel}"))
    }
}

/// Backs the store under `source_prefix` up into `target` (see the module
/// docs). Writes and queries on the source go on.
pub async fn backup(
    source: &Arc<dyn ObjectStore>,
    source_prefix: &Path,
    target: &Location,
) -> Result<Manifest, BackupError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    // What earlier backups recorded of the shared files: their checksums
    // need not be read again.
    let mut known: HashMap<String, ObjectRecord> = HashMap::new();
    for id in target.backups().await? {
        if let Ok(m) = target.manifest(&id).await {
            for f in m.parquet_files {
                known.insert(f.path.clone(), f);
            }
        }
    }
    let mut last_change = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        match backup_once(source, source_prefix, target, &known, started_at).await {
            Ok(mut m) => {
                m.attempts = attempt as u32;
                m.duration_ms = started.elapsed().as_millis() as u64;
                m.finished_at = chrono::Utc::now().to_rfc3339();
                let body = serde_json::to_vec_pretty(&m).map_err(|e| {
                    BackupError::Location(format!("cannot encode the manifest: {e}"))
                })?;
                target
                    .store
                    .put(
                        &target.backup_path(&m.backup_id, "manifest.json"),
                        PutPayload::from(body),
                    )
                    .await?;
                tracing::info!(
                    backup_id = %m.backup_id,
                    catalog_seq = m.catalog_seq,
                    files = m.parquet_files.len(),
                    wal_files = m.wal_files.len(),
                    copied_bytes = m.copied_bytes,
                    duration_ms = m.duration_ms,
                    "backup written"
                );
                return Ok(m);
            }
            Err(Attempt::Changed(path)) => {
                tracing::info!(attempt, %path, "a file vanished during the backup; starting over from a newer catalog state");
                last_change = path;
            }
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    tracing::warn!(last_change, "the backup gave up");
    Err(BackupError::TooManyChanges(MAX_ATTEMPTS))
}

async fn backup_once(
    source: &Arc<dyn ObjectStore>,
    source_prefix: &Path,
    target: &Location,
    known: &HashMap<String, ObjectRecord>,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<Manifest, Attempt> {
    let catalog = catalog::Catalog::load_read_only(Arc::clone(source), source_prefix.clone())
        .await
        .map_err(BackupError::from)?;
    let state = catalog.state();
    let mut id = format!(
        "{}-{:06}",
        started_at.format("%Y%m%dT%H%M%S%3fZ"),
        state.seq
    );
    // Two backups within a millisecond of one state get their own ids.
    let mut n = 1;
    while target
        .store
        .head(&target.backup_path(&id, "catalog.json"))
        .await
        .is_ok()
    {
        n += 1;
        id = format!(
            "{}-{:06}-{n}",
            started_at.format("%Y%m%dT%H%M%S%3fZ"),
            state.seq
        );
    }
    let mut copied = (0u64, 0u64);

    // The WAL first: its files go soonest (right after a persist).
    let mut wal_files = Vec::new();
    let wal_dir = join(source_prefix, "wal");
    let nodes = source.list_with_delimiter(Some(&wal_dir)).await?;
    let mut wanted: Vec<(String, u64)> = Vec::new();
    for node_dir in &nodes.common_prefixes {
        let Some(node) = node_dir.filename() else {
            continue;
        };
        let persisted = state.persisted_wal_seq(node);
        let location = wal::WalLocation::new(Arc::clone(source), source_prefix, node);
        for seq in location.list().await.map_err(wal_error)? {
            if seq > persisted {
                wanted.push((node.to_string(), seq));
            }
        }
    }
    let id_ref = &id;
    let results: Vec<Result<(ObjectRecord, u64), Attempt>> = futures::stream::iter(wanted)
        .map(|(node, seq)| async move {
            let rel = format!("wal/{node}/{seq:020}.wal");
            let dest = target.backup_path(id_ref, &rel);
            copy_recorded(source, &join(source_prefix, &rel), target, &dest, rel).await
        })
        .buffer_unordered(PARALLEL_COPIES)
        .collect()
        .await;
    for r in results {
        let (record, n) = r?;
        copied.0 += 1;
        copied.1 += n;
        wal_files.push(record);
    }
    wal_files.sort_by(|a, b| a.path.cmp(&b.path));

    // The Parquet files, each once in the shared `files/`.
    let files: Vec<(String, u64)> = state
        .all_files()
        .map(|f| (relative(source_prefix, &f.path).to_string(), f.size_bytes))
        .collect();
    let results: Vec<Result<(ObjectRecord, u64), Attempt>> = futures::stream::iter(files)
        .map(|(rel, size)| async move {
            let dest = target.path(&format!("files/{rel}"));
            match target.store.head(&dest).await {
                Ok(meta) if meta.size == size => {
                    if let Some(r) = known.get(&rel).filter(|r| r.size == size) {
                        return Ok((r.clone(), 0));
                    }
                    // In the target from an incomplete backup: its checksum
                    // from what is there.
                    let bytes = target.store.get(&dest).await?.bytes().await?;
                    return Ok((
                        ObjectRecord {
                            path: rel,
                            size,
                            crc32: crc32fast::hash(&bytes),
                        },
                        0,
                    ));
                }
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Attempt::Failed(e.into())),
            }
            copy_recorded(source, &join(source_prefix, &rel), target, &dest, rel).await
        })
        .buffer_unordered(PARALLEL_COPIES)
        .collect()
        .await;
    let mut parquet_files = Vec::new();
    for r in results {
        let (record, n) = r?;
        if n > 0 {
            copied.0 += 1;
            copied.1 += n;
        }
        parquet_files.push(record);
    }
    parquet_files.sort_by(|a, b| a.path.cmp(&b.path));

    let body = Bytes::from(state.to_json().map_err(BackupError::from)?);
    let catalog_record = ObjectRecord {
        path: "catalog.json".into(),
        size: body.len() as u64,
        crc32: crc32fast::hash(&body),
    };
    target
        .store
        .put(
            &target.backup_path(&id, "catalog.json"),
            PutPayload::from(body),
        )
        .await
        .map_err(|e| Attempt::Failed(e.into()))?;
    let total_bytes = catalog_record.size
        + parquet_files.iter().map(|f| f.size).sum::<u64>()
        + wal_files.iter().map(|f| f.size).sum::<u64>();
    Ok(Manifest {
        format: 1,
        backup_id: id,
        cluster_uuid: state.uuid.to_string(),
        catalog_seq: state.seq,
        source_prefix: source_prefix.to_string(),
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        catalog: catalog_record,
        parquet_files,
        wal_files,
        total_bytes,
        copied_files: copied.0,
        copied_bytes: copied.1,
        duration_ms: 0,
        attempts: 0,
    })
}

/// Copies `from` of `source` to `dest` of the target: its record (under
/// the name `rel`) and the bytes copied. A source object that is gone is
/// [`Attempt::Changed`].
async fn copy_recorded(
    source: &Arc<dyn ObjectStore>,
    from: &Path,
    target: &Location,
    dest: &Path,
    rel: String,
) -> Result<(ObjectRecord, u64), Attempt> {
    let bytes = source.get(from).await?.bytes().await?;
    let record = ObjectRecord {
        path: rel,
        size: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
    };
    let n = bytes.len() as u64;
    target
        .store
        .put(dest, PutPayload::from(bytes))
        .await
        .map_err(|e| Attempt::Failed(e.into()))?;
    Ok((record, n))
}

fn wal_error(e: wal::WalError) -> Attempt {
    match e {
        wal::WalError::ObjectStore(inner) => match inner.as_ref() {
            object_store::Error::NotFound { path, .. } => Attempt::Changed(path.clone()),
            _ => Attempt::Failed(BackupError::Wal(wal::WalError::ObjectStore(inner))),
        },
        e => Attempt::Failed(e.into()),
    }
}

/// What to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The backup; `None`: the newest complete one.
    pub backup_id: Option<String>,
    /// Only this database (with its files and WAL lines).
    pub database: Option<String>,
    /// Under this name (with `database`).
    pub rename: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    /// The backup restored.
    pub backup_id: String,
    /// Its catalog sequence number.
    pub catalog_seq: u64,
    /// Parquet files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// WAL files written.
    pub wal_files: u64,
    /// The nodes whose WAL was restored: the caller persists it (replays
    /// it as that node and writes Parquet), so the restored store holds no
    /// WAL any process must own.
    pub wal_nodes: Vec<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// Restores a backup from `from` into the empty store `dest` under
/// `dest_prefix` (see the module docs). Every object is checked against
/// the manifest's size and checksum.
pub async fn restore(
    from: &Location,
    dest: &Arc<dyn ObjectStore>,
    dest_prefix: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let mut listed = dest.list(if dest_prefix.as_ref().is_empty() {
        None
    } else {
        Some(dest_prefix)
    });
    if let Some(first) = listed.next().await {
        let first = first?;
        return Err(BackupError::TargetNotEmpty(first.location.to_string()));
    }
    drop(listed);
    let id = match &options.backup_id {
        Some(id) => id.clone(),
        None => from.backups().await?.pop().ok_or_else(|| {
            BackupError::NotFound(format!("no complete backup under {}", from.path("backups")))
        })?,
    };
    let manifest = from.manifest(&id).await?;
    let read_checked = async |path: Path, record: &ObjectRecord| -> Result<Bytes, BackupError> {
        let bytes = from.store.get(&path).await?.bytes().await?;
        if bytes.len() as u64 != record.size || crc32fast::hash(&bytes) != record.crc32 {
            return Err(BackupError::Corrupt {
                path: path.to_string(),
                reason: format!(
                    "{} bytes with CRC-32 {:08x}; the manifest says {} bytes, {:08x}",
                    bytes.len(),
                    crc32fast::hash(&bytes),
                    record.size,
                    record.crc32
                ),
            });
        }
        Ok(bytes)
    };
    let state_bytes =
        read_checked(from.backup_path(&id, "catalog.json"), &manifest.catalog).await?;
    let state = CatalogState::from_json(&state_bytes)?;
    let source_prefix = Path::from(manifest.source_prefix.as_str());
    let only = match (&options.database, &options.rename) {
        (Some(db), rename) => Some((db.as_str(), rename.as_deref().unwrap_or(db.as_str()))),
        (None, Some(_)) => {
            return Err(BackupError::Location(
                "a new name needs the database it renames (--database)".into(),
            ));
        }
        (None, None) => None,
    };
    let (restored, moved) = state.restored(&source_prefix, dest_prefix, only)?;

    let records: HashMap<&str, &ObjectRecord> = manifest
        .parquet_files
        .iter()
        .map(|r| (r.path.as_str(), r))
        .collect();
    let results: Vec<Result<u64, BackupError>> = futures::stream::iter(moved)
        .map(|(old, new)| {
            let records = &records;
            let source_prefix = &source_prefix;
            let read_checked = &read_checked;
            async move {
                let rel = relative(source_prefix, &old);
                let record = records.get(rel).ok_or_else(|| BackupError::Corrupt {
                    path: rel.to_string(),
                    reason: "the catalog references a file the manifest does not list".into(),
                })?;
                let bytes = read_checked(from.path(&format!("files/{rel}")), record).await?;
                let n = bytes.len() as u64;
                dest.put(&Path::from(new.as_str()), PutPayload::from(bytes))
                    .await?;
                Ok(n)
            }
        })
        .buffer_unordered(PARALLEL_COPIES)
        .collect()
        .await;
    let mut report = RestoreReport {
        backup_id: id.clone(),
        catalog_seq: manifest.catalog_seq,
        files: 0,
        bytes: 0,
        wal_files: 0,
        wal_nodes: Vec::new(),
        duration_ms: 0,
    };
    for r in results {
        report.bytes += r?;
        report.files += 1;
    }

    for record in &manifest.wal_files {
        let Some((node, seq)) = wal_name(&record.path) else {
            return Err(BackupError::Corrupt {
                path: record.path.clone(),
                reason: "not a WAL file name (wal/{node}/{seq}.wal)".into(),
            });
        };
        let bytes = read_checked(from.backup_path(&id, &record.path), record).await?;
        let bytes = match only {
            None => bytes,
            Some((db, new_name)) => {
                let mut file = wal::decode(&record.path, seq, bytes)?;
                file.entries
                    .retain(|e| e.marked_deletes().is_some() || e.db == db);
                for e in file.entries.iter_mut() {
                    if e.marked_deletes().is_none() {
                        e.db = new_name.to_string();
                    }
                }
                wal::encode(&file.entries)
            }
        };
        report.bytes += bytes.len() as u64;
        report.wal_files += 1;
        dest.put(&join(dest_prefix, &record.path), PutPayload::from(bytes))
            .await?;
        if !report.wal_nodes.iter().any(|n| n == node) {
            report.wal_nodes.push(node.to_string());
        }
    }
    catalog::Catalog::write_restored(dest, dest_prefix, &restored).await?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(backup_id = %id, files = report.files, wal_files = report.wal_files, bytes = report.bytes, "backup restored");
    Ok(report)
}

/// `wal/{node}/{seq:020}.wal` as (node, seq).
fn wal_name(path: &str) -> Option<(&str, u64)> {
    let rest = path.strip_prefix("wal/")?;
    let (node, file) = rest.split_once('/')?;
    let seq = file.strip_suffix(".wal")?.parse().ok()?;
    Some((node, seq))
}

/// Every object under `prefix` of `store`, for tests and reports.
pub async fn list_all(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<Vec<String>, BackupError> {
    let p = (!prefix.as_ref().is_empty()).then_some(prefix);
    Ok(store
        .list(p)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await?)
}

#[cfg(test)]
mod tests;
