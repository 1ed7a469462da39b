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
    c.serve_http(catalog, None, None, http_api::Metrics::new()).await?;
    Ok(())
}
