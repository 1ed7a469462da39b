//! `inflow-querier`: a query-only node.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use server::CommonArgs;

/// Serves SQL queries over the data the ingesters write.
#[derive(Debug, Parser)]
#[command(name = "inflow-querier", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    query: server::QueryArgs,
    #[command(flatten)]
    engine: server::EngineArgs,
    /// How often the ingesters' WAL files are read into this querier.
    #[arg(long, env = "INFLOW_REPLICATION_INTERVAL", default_value = "250ms", value_parser = server::parse_duration)]
    replication_interval: Duration,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("inflow-querier: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    cli.common.init_logging()?;
    let c = &cli.common;
    let (store, catalog) = c.open_catalog(true).await?;
    let listener = c.bind().await?;
    let node = c
        .join_cluster(&store, &catalog, &[server::Role::Query], &listener)
        .await?;
    let buffer = Arc::new(buffer::Buffer::new());
    let mut tailer = querier::WalTailer::new(
        Arc::clone(&store),
        cli.common.prefix(),
        Arc::clone(&catalog),
        Arc::clone(&buffer),
    );
    tailer.poll().await?;
    tailer.spawn(cli.replication_interval);
    let plugin_logs = Arc::new(services::engine::EngineLogs::default());
    let query_engine = Arc::new(
        query::QueryEngine::new(Arc::clone(&catalog), buffer, Arc::clone(&store))
            .with_parquet_cache(cli.query.parquet_cache_bytes())
            .with_memory_limits(cli.query.memory_limits().0, cli.query.memory_limits().1)
            .with_registry(node.registry().clone())
            .with_engine_logs(Arc::clone(&plugin_logs)),
    );
    query_engine.spawn_cache_filler();
    let metrics = http_api::Metrics::new();
    // A querier runs the request triggers it is asked for; what their
    // plugins write goes to a running ingester.
    let processing = match cli.engine.venv_location(c) {
        None => None,
        Some(venv) => {
            let token = match &c.admin_token_file {
                Some(path) => Some(server::read_token_file(path)?),
                None => None,
            };
            let writer = server::remote_write::RemoteWriter::new(node.registry().clone(), token);
            let config = engine::EngineConfig {
                plugin_dir: cli.engine.plugin_dir.clone().unwrap_or_default(),
                venv,
                package_manager: cli.engine.package_manager.parse()?,
                call_timeout: cli.engine.plugin_call_timeout,
                node_id: node.id().to_string(),
                runs_triggers: false,
                registry: None,
            };
            let processing = engine::ProcessingEngine::launch(
                config,
                Arc::clone(&catalog),
                Some(Arc::clone(&query_engine) as Arc<dyn services::QueryService>),
                Some(Arc::new(writer) as Arc<dyn services::WriteService>),
                plugin_logs,
            )?;
            for collector in processing.collectors() {
                metrics.register(collector);
            }
            Some(processing as Arc<dyn services::engine::EngineService>)
        }
    };
    c.serve_http(
        listener,
        &node,
        catalog,
        None,
        Some(query_engine),
        processing,
        metrics,
        None,
    )
    .await?;
    node.leave().await;
    Ok(())
}
