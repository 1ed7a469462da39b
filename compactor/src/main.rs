//! `inflow-compactor`: the cluster's compactor node.

use clap::Parser;
use server_common::CommonArgs;

/// Follows the catalog and serves health and metrics; compaction, retention
/// and garbage collection land with Parquet persistence.
#[derive(Debug, Parser)]
#[command(name = "inflow-compactor", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("inflow-compactor: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let c = &cli.common;
    c.init_logging()?;
    let (_store, catalog) = c.open_catalog().await?;
    let auth = c.auth_settings()?;
    let state = http_api::AppState {
        catalog,
        writer: None,
        query: None,
        metrics: http_api::Metrics::new(),
        max_request_size: c.max_http_request_size,
        process_id: uuid::Uuid::new_v4(),
        auth,
    };
    let listener = c.bind().await?;
    http_api::serve(listener, http_api::router(state), server_common::shutdown_signal()).await?;
    Ok(())
}
