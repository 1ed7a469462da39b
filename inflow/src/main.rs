//! `inflow`: the command line. `inflow serve` runs every role in one process.
//!
//! ```text
//!  inflow serve
//!    ├─ catalog      (object store: --data-dir by default)
//!    ├─ ingester     WAL replay, then writes ─▶ WAL ─▶ buffer ─▶ Parquet (persist)
//!    ├─ query engine reads the same buffer and the Parquet files, so a write is
//!    │               visible once acknowledged
//!    ├─ compactor    retention, hard deletes, garbage collection
//!    ├─ engine       Python plugins on WAL flushes, schedules and requests
//!    │               (with --plugin-dir)
//!    └─ HTTP on --http-bind (default 0.0.0.0:8181)
//! ```

use std::sync::Arc;

use clap::{Parser, Subcommand};

mod backup;
mod client;
use server::CommonArgs;

/// Inflow: a time-series database that speaks the InfluxDB 3 APIs.
#[derive(Debug, Parser)]
#[command(name = "inflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role (ingester, querier, compactor) in one process. By default
    /// all data lives under ./.inflow on the local disk.
    Serve(Box<ServeArgs>),
    /// Create resources on a server (tokens, databases, tables).
    #[command(subcommand)]
    Create(client::CreateCommand),
    /// Delete resources on a server (tokens, databases).
    #[command(subcommand)]
    Delete(client::DeleteCommand),
    /// List resources on a server (tokens, databases).
    #[command(subcommand)]
    Show(client::ShowCommand),
    /// Copy a consistent backup of the store (catalog, Parquet files and
    /// the WAL they do not cover) to a directory or an S3 prefix, while the
    /// cluster runs. Incremental: files already there are not copied again.
    Backup(Box<backup::BackupArgs>),
    /// Make a new store from a backup (the target must be empty); then
    /// `inflow serve` or a cluster on it answers as the backed-up one did.
    Restore(Box<backup::RestoreArgs>),
}

/// The flags of `inflow serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    persist: server::IngestArgs,
    #[command(flatten)]
    maintenance: server::MaintenanceArgs,
    #[command(flatten)]
    query: server::QueryArgs,
    #[command(flatten)]
    engine: server::EngineArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Create(c) => client::create(c).await,
        Command::Delete(c) => client::delete(c).await,
        Command::Show(c) => client::show(c).await,
        Command::Backup(a) => backup::backup(*a).await,
        Command::Restore(a) => backup::restore(*a).await,
    };
    if let Err(e) = result {
        eprintln!("inflow: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    use server::Role;
    let c = &args.common;
    c.init_logging()?;
    let (store, catalog) = c.open_catalog(false).await?;
    c.install_admin_token(&catalog).await?;
    let listener = c.bind().await?;
    let node = c
        .join_cluster(
            &store,
            &catalog,
            &[Role::Ingest, Role::Query, Role::Compact],
            &listener,
        )
        .await?;
    let metrics = http_api::Metrics::new();
    let buffer = Arc::new(buffer::Buffer::with_chunk_duration(
        args.persist.gen1_duration,
    ));
    let config = ingester::IngesterConfig::from_args(c, &args.persist, Arc::clone(&store), &node);
    let writer = ingester::Ingester::start(
        config,
        Arc::clone(&catalog),
        Arc::clone(&buffer),
        server::wal_observer(&metrics),
    )
    .await?;
    let plugin_logs = Arc::new(services::engine::EngineLogs::default());
    let query_engine = Arc::new(
        query::QueryEngine::new(Arc::clone(&catalog), buffer, Arc::clone(&store))
            .with_parquet_cache(args.query.parquet_cache_bytes())
            .with_memory_limits(args.query.memory_limits().0, args.query.memory_limits().1)
            .with_registry(node.registry().clone())
            .with_engine_logs(Arc::clone(&plugin_logs)),
    );
    // The WAL replay refilled the caches with the buffered rows; the
    // persisted ones (and caches of other nodes) come from a query.
    query_engine.spawn_cache_filler();
    let processing_engine = match args.engine.venv_location(c) {
        None => None,
        Some(venv) => {
            let config = engine::EngineConfig {
                plugin_dir: args.engine.plugin_dir.clone().unwrap_or_default(),
                venv,
                package_manager: args.engine.package_manager.parse()?,
                call_timeout: args.engine.plugin_call_timeout,
                node_id: node.id().to_string(),
                runs_triggers: true,
                registry: None,
            };
            let processing = engine::ProcessingEngine::launch(
                config,
                Arc::clone(&catalog),
                Some(Arc::clone(&query_engine) as Arc<dyn services::QueryService>),
                Some(Arc::clone(&writer) as Arc<dyn services::WriteService>),
                plugin_logs,
            )?;
            for collector in processing.collectors() {
                metrics.register(collector);
            }
            writer.set_flush_listener(Arc::clone(&processing) as _);
            Some(processing as Arc<dyn services::engine::EngineService>)
        }
    };
    // The same lease as inflow-compactor's: one of them compacts at a time.
    let compactor = compactor::CompactorRole::start(
        &node,
        &catalog,
        compactor::Maintenance::new(
            Arc::clone(&catalog),
            store,
            compactor::MaintenanceConfig {
                interval: args.maintenance.retention_check_interval,
                gc_grace: args.maintenance.gc_grace_period,
                compaction_max_rows: args.maintenance.compaction_max_rows,
            },
        ),
    );
    let served = c
        .serve_http(
            listener,
            &node,
            catalog,
            Some(writer),
            Some(query_engine),
            processing_engine,
            metrics,
            Some(&args.persist),
        )
        .await;
    compactor.stop().await;
    if served.is_ok() {
        node.leave().await;
    }
    served?;
    Ok(())
}
