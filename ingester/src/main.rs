//! `inflow-ingester`: a write-only node.

use std::sync::Arc;

use clap::Parser;
use server::CommonArgs;

/// Accepts line protocol writes and logs them to the WAL on the object store.
#[derive(Debug, Parser)]
#[command(name = "inflow-ingester", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    persist: server::IngestArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
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
    let config = ingester::IngesterConfig::from_args(c, &cli.persist, store, &node);
    let writer = ingester::Ingester::start(
        config,
        Arc::clone(&catalog),
        buffer,
        server::wal_observer(&metrics),
    )
    .await?;
    c.serve_http(
        listener,
        &node,
        catalog,
        Some(writer),
        None,
        None,
        metrics,
        Some(&cli.persist),
    )
    .await?;
    node.leave().await;
    Ok(())
}
