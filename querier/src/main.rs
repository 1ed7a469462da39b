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
    let engine = Arc::new(
        query::QueryEngine::new(Arc::clone(&catalog), buffer, store)
            .with_parquet_cache(cli.query.parquet_cache_bytes())
            .with_registry(node.registry().clone()),
    );
    engine.spawn_cache_filler();
    c.serve_http(
        listener,
        &node,
        catalog,
        None,
        Some(engine),
        None,
        http_api::Metrics::new(),
        None,
    )
    .await?;
    node.leave().await;
    Ok(())
}
