//! `inflow-compactor`: the cluster's compactor node.

use clap::Parser;
use server::CommonArgs;

/// Enforces retention, carries out hard deletes and deletes unreferenced
/// files; serves health and metrics.
#[derive(Debug, Parser)]
#[command(name = "inflow-compactor", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    maintenance: server::MaintenanceArgs,
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
    let (store, catalog) = c.open_catalog(false).await?;
    let listener = c.bind().await?;
    let node = c
        .join_cluster(&store, &catalog, &[server::Role::Compact], &listener)
        .await?;
    let role = compactor::CompactorRole::start(
        &node,
        &catalog,
        compactor::Maintenance::new(
            std::sync::Arc::clone(&catalog),
            store,
            compactor::MaintenanceConfig {
                interval: cli.maintenance.retention_check_interval,
                gc_grace: cli.maintenance.gc_grace_period,
                compaction_max_rows: cli.maintenance.compaction_max_rows,
            },
        ),
    );
    let served = c
        .serve_http(
            listener,
            &node,
            catalog,
            None,
            None,
            None,
            http_api::Metrics::new(),
            None,
        )
        .await;
    role.stop().await;
    if served.is_ok() {
        node.leave().await;
    }
    served?;
    Ok(())
}
