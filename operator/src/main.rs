//! `inflow-operator`: reconciles `InflowCluster`, `Database`, `Token` and `Trigger`
//! resources (group `inflow.dev`) into Inflow's management API.
//!
//! ```text
//!  inflow-operator crd              the CRDs as YAML (crds/ holds them)
//!  inflow-operator run              leader election, then the controllers,
//!                                   /metrics and /healthz on --metrics-bind
//! ```
//!
//! Each controller is a kube-rs `Controller`: it watches its kind, calls
//! the reconciler for every change and on a timer (drift repair), and
//! requeues failures with backoff; a reconcile never panics on a bad spec,
//! it reports the reason in the resource's status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use operator::crd::{self, Database, InflowCluster, Token, Trigger};
use operator::reconcile::{self, Context};
use operator::{lease, metrics};

#[derive(Debug, Parser)]
#[command(
    name = "inflow-operator",
    version,
    about = "The Kubernetes operator of Inflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Run the controllers.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where `/metrics` and `/healthz` are served.
    #[arg(
        long,
        env = "INFLOW_OPERATOR_METRICS_BIND",
        default_value = "0.0.0.0:8080"
    )]
    metrics_bind: SocketAddr,
    /// Watch this namespace only (default: every namespace).
    #[arg(long, env = "INFLOW_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// How often a ready resource is checked again, to repair drift.
    #[arg(long, env = "INFLOW_OPERATOR_RESYNC", default_value = "30s", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// The namespace of the leader-election Lease (default: the pod's, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long the leader Lease lasts without renewal: a replica takes
    /// over this long after the leader stops renewing.
    #[arg(long, default_value_t = lease::LEASE_SECONDS, value_parser = clap::value_parser!(i32).range(2..=300))]
    lease_seconds: i32,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Crd => match crd::all_crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                0
            }
            Err(e) => {
                eprintln!("inflow-operator: {e}");
                1
            }
        },
        Command::Run(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => match rt.block_on(run(args)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("inflow-operator: {e}");
                    1
                }
            },
            Err(e) => {
                eprintln!("inflow-operator: tokio runtime: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let metrics = metrics::Metrics::new()?;
    let listener = tokio::net::TcpListener::bind(args.metrics_bind).await?;
    println!("metrics on {}", listener.local_addr()?);
    let served = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = served.clone();
                async move { m.render() }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("inflow-operator-{}", std::process::id()));
    let lease_ns = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let elector = lease::Elector::new(
        client.clone(),
        &lease_ns,
        "inflow-operator",
        &identity,
        args.lease_seconds,
    );
    elector.acquire().await;
    tracing::info!(identity, "holding the leader lease");
    println!("leader as {identity}");
    // Renew at a third of its duration; a replica that loses the lease
    // stops, so only one reconciles.
    let renewer = elector.clone();
    let every = Duration::from_secs((u64::try_from(args.lease_seconds).unwrap_or(15) / 3).max(1));
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(every).await;
            match renewer.try_acquire().await {
                Ok(true) => failures = 0,
                Ok(false) => {
                    tracing::error!("lost the leader lease; exiting");
                    std::process::exit(2);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "renewing the leader lease failed");
                    // Past the lease's duration another replica may lead.
                    if failures >= 3 {
                        std::process::exit(2);
                    }
                }
            }
        }
    });

    let ctx = Arc::new(Context::new(client.clone(), args.resync, metrics));
    let (clusters, dbs, tokens, triggers): (
        Api<InflowCluster>,
        Api<Database>,
        Api<Token>,
        Api<Trigger>,
    ) = match &args.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let (backups, schedules): (
        Api<operator::crd::Backup>,
        Api<operator::crd::BackupSchedule>,
    ) = match &args.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    tokio::join!(
        run_controller(
            backups,
            operator::backup::reconcile_backup,
            Arc::clone(&ctx)
        ),
        run_controller(
            schedules,
            operator::backup::reconcile_schedule,
            Arc::clone(&ctx)
        ),
        run_controller(clusters, reconcile::reconcile_cluster, Arc::clone(&ctx)),
        run_controller(dbs, reconcile::reconcile_database, Arc::clone(&ctx)),
        run_controller(tokens, reconcile::reconcile_token, Arc::clone(&ctx)),
        run_controller(
            triggers,
            operator::trigger::reconcile_trigger,
            Arc::clone(&ctx)
        ),
    );
    Ok(())
}

/// Runs one kind's controller until the process stops: `reconcile` on every
/// change and requeue, [`error_policy`] after a failure.
async fn run_controller<K, F, Fut>(api: Api<K>, reconcile: F, ctx: Arc<Context>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Action, reconcile::Error>> + Send + 'static,
{
    let mut reconcile = reconcile;
    Controller::new(api, watcher::Config::default())
        .run(
            move |obj: Arc<K>, ctx: Arc<Context>| {
                let key = reconcile::object_key(&*obj);
                let pending = reconcile(obj, Arc::clone(&ctx));
                async move {
                    let result = pending.await;
                    if result.is_ok() {
                        ctx.succeeded(&key);
                    }
                    result
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

/// After a failure: requeued with a backoff that grows with the object's
/// consecutive failures (see [`Context::failed`]).
fn error_policy<K: kube::Resource<DynamicType = ()>>(
    obj: Arc<K>,
    e: &reconcile::Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.failed(&reconcile::object_key(&*obj), e);
    tracing::warn!(
        kind = %K::kind(&()),
        name = obj.name_any(),
        error = %e,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}
