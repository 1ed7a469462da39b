//! `inflow-ingester`: a write-only node.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use server::CommonArgs;

/// Accepts line protocol writes and logs them to the WAL on the object store.
#[derive(Debug, Parser)]
#[command(name = "inflow-ingester", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    persist: server::IngestArgs,
    #[command(flatten)]
    engine: server::EngineArgs,
    /// On SIGTERM, how long to wait for the buffer to be persisted before
    /// exiting (the pod's termination grace period must be longer).
    #[arg(long, env = "INFLOW_SHUTDOWN_PERSIST_TIMEOUT", default_value = "45s", value_parser = server::parse_duration)]
    shutdown_persist_timeout: std::time::Duration,
    /// Adopt the WAL of an ingester whose heartbeat has been silent this
    /// long (it died without persisting): replay, persist and delete it
    /// under its node id. 0 turns adoption off.
    #[arg(long, env = "INFLOW_ADOPT_ORPHAN_WAL_AFTER", default_value = "60s", value_parser = server::parse_duration)]
    adopt_orphan_wal_after: std::time::Duration,
    /// How often to look for such WAL.
    #[arg(long, env = "INFLOW_ORPHAN_WAL_CHECK_INTERVAL", default_value = "10s", value_parser = server::parse_duration)]
    orphan_wal_check_interval: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask the ingester running at `--url` to stop taking writes and persist
    /// its buffer, and wait for it: a pod's preStop hook.
    Drain {
        /// The ingester.
        #[arg(long, default_value = "http://127.0.0.1:8181")]
        url: String,
        /// The admin token (a file as `--admin-token-file` takes).
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
    },
}

/// `inflow-ingester drain`: POST /api/v3/enterprise/configure/node/drain.
async fn drain(
    url: &str,
    token_file: Option<&std::path::Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut request = reqwest::Client::new().post(format!(
        "{}/api/v3/enterprise/configure/node/drain",
        url.trim_end_matches('/')
    ));
    if let Some(path) = token_file {
        request = request.bearer_auth(server::read_token_file(path)?);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        return Err(format!("{status}: {body}").into());
    }
    println!("{body}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Some(Command::Drain { url, token_file }) = &cli.command {
        if let Err(e) = drain(url, token_file.as_deref()).await {
            eprintln!("inflow-ingester drain: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run(cli).await {
        eprintln!("inflow-ingester: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let c = &cli.common;
    c.init_logging()?;
    let (store, catalog) = c.open_catalog(false).await?;
    c.install_admin_token(&catalog).await?;
    let listener = c.bind().await?;
    let node = c
        .join_cluster(&store, &catalog, &[server::Role::Ingest], &listener)
        .await?;
    let metrics = http_api::Metrics::new();
    let buffer = Arc::new(buffer::Buffer::with_chunk_duration(
        cli.persist.gen1_duration,
    ));
    let config = ingester::IngesterConfig::from_args(c, &cli.persist, Arc::clone(&store), &node);
    if !cli.adopt_orphan_wal_after.is_zero() {
        ingester::adopt::spawn(
            config.clone(),
            &node,
            Arc::clone(&catalog),
            ingester::adopt::AdoptConfig {
                interval: cli.orphan_wal_check_interval,
                after: cli.adopt_orphan_wal_after,
                chunk: cli.persist.gen1_duration,
            },
        );
    }
    let writer = ingester::Ingester::start(
        config,
        Arc::clone(&catalog),
        Arc::clone(&buffer),
        server::wal_observer(&metrics),
    )
    .await?;
    // The ingester runs the WAL and schedule triggers. Their plugins query
    // this node's buffer and the persisted files.
    let processing = match cli.engine.venv_location(c) {
        None => None,
        Some(venv) => {
            let logs = Arc::new(services::engine::EngineLogs::default());
            let queries = Arc::new(
                query::QueryEngine::new(Arc::clone(&catalog), buffer, store)
                    .with_registry(node.registry().clone())
                    .with_engine_logs(Arc::clone(&logs)),
            );
            let config = engine::EngineConfig {
                plugin_dir: cli.engine.plugin_dir.clone().unwrap_or_default(),
                venv,
                package_manager: cli.engine.package_manager.parse()?,
                call_timeout: cli.engine.plugin_call_timeout,
                node_id: node.id().to_string(),
                runs_triggers: true,
                registry: Some(node.registry().clone()),
            };
            let processing = engine::ProcessingEngine::launch(
                config,
                Arc::clone(&catalog),
                Some(queries as Arc<dyn services::QueryService>),
                Some(Arc::clone(&writer) as Arc<dyn services::WriteService>),
                logs,
            )?;
            for collector in processing.collectors() {
                metrics.register(collector);
            }
            writer.set_flush_listener(Arc::clone(&processing) as _);
            Some(processing as Arc<dyn services::engine::EngineService>)
        }
    };
    c.serve_http(
        listener,
        &node,
        catalog,
        Some(Arc::clone(&writer) as Arc<dyn services::WriteService>),
        None,
        processing,
        metrics,
        Some(&cli.persist),
    )
    .await?;
    // Stopped (SIGTERM, as Kubernetes stops a pod): every write was
    // answered; persist them all, so that a node scaled away leaves no WAL.
    writer.drain(cli.shutdown_persist_timeout).await;
    node.leave().await;
    Ok(())
}
