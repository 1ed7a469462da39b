//! `inflow-querier`: a query-only node.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use server_common::CommonArgs;

/// Serves SQL queries over the data the ingesters write.
#[derive(Debug, Parser)]
#[command(name = "inflow-querier", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// How often the ingesters' WAL files are read into this querier.
    #[arg(long, env = "INFLOW_REPLICATION_INTERVAL", default_value = "250ms", value_parser = server_common::parse_duration)]
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
    let (store, catalog) = cli.common.open_catalog().await?;
    let auth = cli.common.auth_settings()?;
    let buffer = Arc::new(buffer::Buffer::new());
    let mut tailer = querier::WalTailer::new(store, cli.common.prefix(), Arc::clone(&catalog), Arc::clone(&buffer));
    tailer.poll().await?;
    tailer.spawn(cli.replication_interval);
    let state = http_api::AppState {
        query: Some(Arc::new(query::QueryEngine::new(Arc::clone(&catalog), buffer))),
        catalog,
        writer: None,
        metrics: http_api::Metrics::new(),
        max_request_size: cli.common.max_http_request_size,
        process_id: uuid::Uuid::new_v4(),
        auth,
    };
    let listener = cli.common.bind().await?;
    http_api::serve(listener, http_api::router(state), server_common::shutdown_signal()).await?;
    Ok(())
}
