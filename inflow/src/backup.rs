//! `inflow backup` and `inflow restore`: a consistent copy of a cluster's
//! object store, and a new store made from one (see the `backup` crate).
//! A restore ends by persisting the restored WAL of each node, so the new
//! store holds catalog and Parquet files only and any node ids can run on
//! it.

use std::sync::Arc;
use std::time::Duration;

use server::CommonArgs;

/// How to reach an S3 backup location (over the `AWS_*` environment).
#[derive(Debug, clap::Args)]
pub(crate) struct TargetArgs {
    /// The backup location's S3 endpoint URL.
    #[arg(long, env = "INFLOW_BACKUP_AWS_ENDPOINT")]
    target_aws_endpoint: Option<String>,
    /// The backup location's S3 region.
    #[arg(long, env = "INFLOW_BACKUP_AWS_REGION")]
    target_aws_region: Option<String>,
    /// The backup location's S3 access key id.
    #[arg(long, env = "INFLOW_BACKUP_AWS_ACCESS_KEY_ID")]
    target_aws_access_key_id: Option<String>,
    /// The backup location's S3 secret access key.
    #[arg(
        long,
        env = "INFLOW_BACKUP_AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    target_aws_secret_access_key: Option<String>,
}

impl TargetArgs {
    fn open(&self, url: &str) -> Result<backup::Location, backup::BackupError> {
        backup::Location::open_with(
            url,
            &backup::S3Options {
                endpoint: self.target_aws_endpoint.clone(),
                region: self.target_aws_region.clone(),
                access_key_id: self.target_aws_access_key_id.clone(),
                secret_access_key: self.target_aws_secret_access_key.clone(),
            },
        )
    }
}

/// What `backup` and `restore` share: the summary file and the backup
/// location's credentials.
#[derive(Debug, clap::Args)]
pub(crate) struct LocationArgs {
    /// Also write the summary as JSON to this file (a Kubernetes Job's
    /// `/dev/termination-log`, which the operator reads).
    #[arg(long)]
    summary_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

impl LocationArgs {
    fn write_summary(&self, summary: serde_json::Value) -> std::io::Result<()> {
        match &self.summary_file {
            Some(path) => std::fs::write(path, summary.to_string()),
            None => Ok(()),
        }
    }
}

/// The flags of `inflow backup`.
#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// Where to write the backup: a directory, file:///dir, or
    /// s3://bucket/prefix (with the AWS_* environment: AWS_ENDPOINT,
    /// AWS_ACCESS_KEY_ID, ...). Backups into one place share its Parquet
    /// files, so each copies only what is new.
    #[arg(long)]
    to: String,
    #[command(flatten)]
    location: LocationArgs,
    /// The store to back up (the flags of `inflow serve`).
    #[command(flatten)]
    common: CommonArgs,
}

/// The flags of `inflow restore`.
#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// Where the backups are (as `inflow backup --to`).
    #[arg(long)]
    from: String,
    /// The backup to restore (default: the newest complete one).
    #[arg(long)]
    backup_id: Option<String>,
    /// Restore only this database.
    #[arg(long)]
    database: Option<String>,
    /// Under this name (with --database).
    #[arg(long = "as", value_name = "NAME")]
    rename: Option<String>,
    #[command(flatten)]
    location: LocationArgs,
    /// The store to restore into, which must be empty (the flags of
    /// `inflow serve`: --data-dir, or --object-store s3 --bucket ...).
    #[command(flatten)]
    common: CommonArgs,
}

pub(crate) async fn backup(args: BackupArgs) -> Result<(), Box<dyn std::error::Error>> {
    args.common.init_logging()?;
    let store = args.common.object_store()?;
    let target = args.location.target.open(&args.to)?;
    let m = backup::backup(&store, &args.common.prefix(), &target).await?;
    args.location.write_summary(serde_json::json!({
        "backupId": m.backup_id,
        "catalogSeq": m.catalog_seq,
        "parquetFiles": m.parquet_files.len(),
        "walFiles": m.wal_files.len(),
        "totalBytes": m.total_bytes,
        "copiedFiles": m.copied_files,
        "copiedBytes": m.copied_bytes,
        "durationMs": m.duration_ms,
    }))?;
    println!(
        "backup {} of catalog sequence {}: {} Parquet files and {} WAL files, {} bytes; copied {} files ({} bytes) in {} ms",
        m.backup_id,
        m.catalog_seq,
        m.parquet_files.len(),
        m.wal_files.len(),
        m.total_bytes,
        m.copied_files,
        m.copied_bytes,
        m.duration_ms
    );
    Ok(())
}

pub(crate) async fn restore(args: RestoreArgs) -> Result<(), Box<dyn std::error::Error>> {
    args.common.init_logging()?;
    let store = args.common.object_store()?;
    let prefix = args.common.prefix();
    let from = args.location.target.open(&args.from)?;
    let options = backup::RestoreOptions {
        backup_id: args.backup_id,
        database: args.database,
        rename: args.rename,
    };
    let report = backup::restore(&from, &store, &prefix, &options).await?;
    // The restored WAL becomes Parquet, as the node it came from would
    // have persisted it.
    let catalog = catalog::Catalog::load(Arc::clone(&store), prefix.clone()).await?;
    for node in &report.wal_nodes {
        let config = ingester::IngesterConfig {
            store: Arc::clone(&store),
            prefix: prefix.clone(),
            node_id: node.clone(),
            wal_flush_interval: Duration::from_millis(10),
            wal_max_batch_size: 8 << 20,
            persist: ingester::PersistConfig::default(),
            limits: validation::Limits::UNLIMITED,
            lease: None,
        };
        let buffer = Arc::new(buffer::Buffer::new());
        let replayed =
            ingester::Ingester::start(config, Arc::clone(&catalog), buffer, Box::new(|_| {}))
                .await?;
        if !replayed.drain(Duration::from_secs(3600)).await {
            return Err(format!("the restored WAL of node {node} could not be persisted").into());
        }
    }
    args.location.write_summary(serde_json::json!({
        "backupId": report.backup_id,
        "catalogSeq": report.catalog_seq,
        "files": report.files,
        "walFiles": report.wal_files,
        "bytes": report.bytes,
        "durationMs": report.duration_ms,
    }))?;
    println!(
        "restored backup {} (catalog sequence {}): {} Parquet files and {} WAL files, {} bytes, in {} ms",
        report.backup_id,
        report.catalog_seq,
        report.files,
        report.wal_files,
        report.bytes,
        report.duration_ms
    );
    Ok(())
}
