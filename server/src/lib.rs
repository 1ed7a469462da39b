//! Builds and runs an Inflow server process, whatever its roles: the flags
//! (each also an `INFLOW_*` environment variable), the object store they
//! select, the catalog, the node's place in the cluster, the HTTP API with
//! the write and query services plugged in, logging, the shutdown signal and
//! the memory allocator. Each binary (`inflow serve`, `inflow-ingester`,
//! `inflow-querier`, `inflow-compactor`) assembles itself from these.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

pub mod durable;
pub mod metered;
pub mod remote_write;
use object_store::ObjectStore;
use object_store::path::Path;

/// Every server allocates with jemalloc rather than glibc's allocator: a
/// query allocates and frees thousands of small plan and array objects, and
/// with glibc `malloc`/`free` were a quarter of a single-host query's
/// instructions. Defined here, the one crate every server binary links.
/// Measured in `docs/performance.md` (queries 11–15% faster, ingest unchanged).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Where durable state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectStoreKind {
    /// The local file system under --data-dir.
    File,
    /// Process memory; everything is lost on exit (tests).
    Memory,
    /// An S3-compatible store: --bucket and the --aws-* flags.
    S3,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Full,
    /// One JSON object per line.
    Json,
}

/// Flags shared by `inflow serve` and the role binaries.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// This node's id. It names the node's WAL directory, so a replacement pod
    /// that takes the same id replays the same WAL; one live process holds
    /// an id at a time (a lease on the object store). Default: inflow-0 for
    /// `inflow serve` and `inflow-ingester`, querier-HOSTNAME and
    /// compactor-HOSTNAME for the other roles.
    #[arg(long, env = "INFLOW_NODE_ID")]
    pub node_id: Option<String>,

    /// The address other processes and `system.nodes` show for this node's
    /// HTTP API (host:port). Default: the bound address, with the host name
    /// when bound to all interfaces.
    #[arg(long, env = "INFLOW_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// How often this process renews the lease on its node id (and, on the
    /// active compactor, the compactor lease): one LIST and one PUT each.
    #[arg(long, env = "INFLOW_NODE_HEARTBEAT_INTERVAL", default_value = "3s", value_parser = parse_duration)]
    pub node_heartbeat_interval: Duration,

    /// How long a process that stopped renewing keeps its node id: a
    /// replacement takes the id over after watching its heartbeat stay
    /// unchanged this long (at once after a clean shutdown or a node stop).
    /// A holder stops acknowledging writes after half of it without a renewal.
    #[arg(long, env = "INFLOW_NODE_LEASE_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub node_lease_timeout: Duration,

    /// Where the catalog, WAL and Parquet files live.
    #[arg(long, env = "INFLOW_OBJECT_STORE", value_enum, default_value = "file")]
    pub object_store: ObjectStoreKind,

    /// Directory for --object-store file.
    #[arg(long, env = "INFLOW_DATA_DIR", default_value = "./.inflow")]
    pub data_dir: PathBuf,

    /// Optional prefix for every object, so clusters can share a bucket.
    #[arg(long, env = "INFLOW_OBJECT_STORE_PREFIX")]
    pub object_store_prefix: Option<String>,

    /// S3 bucket, for --object-store s3.
    #[arg(long, env = "INFLOW_BUCKET")]
    pub bucket: Option<String>,

    /// S3 endpoint URL, for S3-compatible stores (MinIO, Ceph RGW, moto).
    #[arg(long, env = "INFLOW_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,

    /// S3 access key id. Without it, the standard AWS chain applies:
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, web
    /// identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, as EKS IRSA
    /// sets them), the container credentials endpoint, then the instance
    /// metadata service.
    #[arg(long, env = "INFLOW_AWS_ACCESS_KEY_ID")]
    pub aws_access_key_id: Option<String>,

    /// S3 secret access key.
    #[arg(long, env = "INFLOW_AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// S3 region (default: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, env = "INFLOW_AWS_REGION")]
    pub aws_region: Option<String>,

    /// Allow plain-HTTP S3 endpoints.
    #[arg(long, env = "INFLOW_AWS_ALLOW_HTTP", default_value_t = false)]
    pub aws_allow_http: bool,

    /// How many times a failed S3 request (a 5xx, a timeout, a dropped
    /// connection) is retried, with exponential backoff, before the error
    /// reaches the caller (a write gets 503 with Retry-After).
    #[arg(long, env = "INFLOW_OBJECT_STORE_MAX_RETRIES", default_value_t = 10)]
    pub object_store_max_retries: usize,

    /// The longest an S3 request is retried for, from its first attempt.
    /// Writes wait for it while the store is down, so it is short next to
    /// clients' timeouts.
    #[arg(long, env = "INFLOW_OBJECT_STORE_RETRY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub object_store_retry_timeout: Duration,

    /// The longest one S3 request attempt may take.
    #[arg(long, env = "INFLOW_OBJECT_STORE_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub object_store_request_timeout: Duration,

    /// Address for HTTP (and, later, gRPC on the same port). Port 0 picks a free
    /// port, which is logged and printed as `listening on ADDR`.
    #[arg(long, env = "INFLOW_HTTP_BIND", default_value = "0.0.0.0:8181")]
    pub http_bind: String,

    /// Run without authentication: every request is allowed.
    #[arg(long, env = "INFLOW_WITHOUT_AUTH", default_value_t = false)]
    pub without_auth: bool,

    /// A file holding the admin token (the bare token string, or JSON
    /// {"token": "..."}), installed as the operator token `_admin` at start,
    /// so a Kubernetes Secret can provide it. Only its hash is stored.
    #[arg(long, env = "INFLOW_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Endpoints to serve without a token, comma-separated: health, ping, metrics.
    #[arg(long, env = "INFLOW_DISABLE_AUTHZ", value_delimiter = ',')]
    pub disable_authz: Vec<String>,

    /// How often the WAL is flushed to the object store. Writes are
    /// acknowledged after the flush that holds them.
    #[arg(long, env = "INFLOW_WAL_FLUSH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub wal_flush_interval: Duration,

    /// How often other pods' catalog changes are read.
    #[arg(long, env = "INFLOW_CATALOG_SYNC_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub catalog_sync_interval: Duration,

    /// Largest accepted request body, before and after decompression
    /// (e.g. 10MiB, 512KB, 1048576).
    #[arg(long, env = "INFLOW_MAX_HTTP_REQUEST_SIZE", default_value = "10MiB", value_parser = parse_size)]
    pub max_http_request_size: usize,

    /// Write bodies held at once (being read, parsed or waiting for the
    /// WAL): a write past it gets 429 with Retry-After at once. Default:
    /// half of --buffer-mem-limit, and at least one largest request.
    #[arg(long, env = "INFLOW_MAX_WRITE_BYTES_IN_FLIGHT", value_parser = parse_mem_limit)]
    pub max_write_bytes_in_flight: Option<usize>,

    /// A connection that has not sent a request's headers within this is
    /// closed (a client that opens connections and stalls holds nothing).
    #[arg(long, env = "INFLOW_HTTP_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_header_read_timeout: Duration,

    /// A request body still arriving after this is answered 408.
    #[arg(long, env = "INFLOW_HTTP_BODY_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_body_read_timeout: Duration,

    /// Log filter, in tracing's EnvFilter syntax (e.g. info, inflow=debug).
    #[arg(long, env = "INFLOW_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "INFLOW_LOG_FORMAT", value_enum, default_value = "full")]
    pub log_format: LogFormat,
}

/// Flags of the nodes that accept writes and persist the buffer to Parquet
/// (`inflow serve` and `inflow-ingester`).
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// The time span of one buffer chunk, and so of one Parquet file: rows
    /// are grouped by `time` into chunks of this length.
    #[arg(long, env = "INFLOW_GEN1_DURATION", default_value = "10m", value_parser = parse_duration)]
    pub gen1_duration: Duration,

    /// Flush the WAL before the interval ends once this much line protocol
    /// is queued (e.g. 8MiB), so a heavy load is not held to one flush per
    /// interval. Acknowledgements still wait for the flush.
    #[arg(long, env = "INFLOW_WAL_MAX_BATCH_SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub wal_max_batch_size: usize,

    /// Persist the buffer to Parquet after this many WAL files.
    #[arg(long, env = "INFLOW_WAL_SNAPSHOT_SIZE", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub wal_snapshot_size: u64,

    /// Persist the buffer to Parquet when it holds more than this: a size
    /// (256MiB, 2GB) or a percentage of the machine's memory (10%).
    #[arg(long, env = "INFLOW_BUFFER_MEM_LIMIT", default_value = "10%", value_parser = parse_mem_limit)]
    pub buffer_mem_limit: usize,

    /// Most databases the catalog may hold; a write that would create one
    /// more gets 422.
    #[arg(long, env = "INFLOW_MAX_DATABASES", default_value_t = 1000)]
    pub max_databases: usize,

    /// Most tables a database may hold; a write that would create one more
    /// gets 422.
    #[arg(long, env = "INFLOW_MAX_TABLES_PER_DATABASE", default_value_t = 10_000)]
    pub max_tables_per_database: usize,

    /// Most columns (tags, fields and time) a table may have; a write that
    /// would add one more gets 422.
    #[arg(long, env = "INFLOW_MAX_COLUMNS_PER_TABLE", default_value_t = 1000)]
    pub max_columns_per_table: usize,

    /// How long after a delete with `hard_delete_at=default` the data is
    /// removed for good.
    #[arg(long, env = "INFLOW_HARD_DELETE_DEFAULT_DURATION", default_value = "72h", value_parser = parse_duration)]
    pub hard_delete_default_duration: Duration,
}

/// Flags of the nodes that answer queries (`inflow serve` and
/// `inflow-querier`).
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Memory for the in-memory cache of Parquet files that queries read: a
    /// size (512MiB, 2GB) or a percentage of the machine's memory (20%).
    #[arg(long, env = "INFLOW_PARQUET_MEM_CACHE_SIZE", default_value = "20%", value_parser = parse_mem_limit)]
    pub parquet_mem_cache_size: usize,

    /// Read every Parquet file from the object store, with no in-memory cache.
    #[arg(long, env = "INFLOW_DISABLE_PARQUET_MEM_CACHE")]
    pub disable_parquet_mem_cache: bool,

    /// Memory that running queries share for their aggregations, sorts and
    /// joins: a size (4GiB) or a percentage of the machine's memory (20%).
    /// A query that needs more than is left fails with "Resources
    /// exhausted"; the process never runs out.
    #[arg(long, env = "INFLOW_EXEC_MEM_POOL_BYTES", default_value = "20%", value_parser = parse_mem_limit)]
    pub exec_mem_pool_bytes: usize,

    /// The most of that memory one query may use (default: all of it), so
    /// one large query fails alone instead of starving the others.
    #[arg(long, env = "INFLOW_QUERY_MEM_LIMIT", value_parser = parse_mem_limit)]
    pub query_mem_limit: Option<usize>,
}

impl QueryArgs {
    /// The shared query memory pool and each query's limit, in bytes.
    pub fn memory_limits(&self) -> (usize, usize) {
        let pool = self.exec_mem_pool_bytes;
        (pool, self.query_mem_limit.unwrap_or(pool).min(pool))
    }

    /// The cache's capacity in bytes (0 when disabled).
    pub fn parquet_cache_bytes(&self) -> usize {
        if self.disable_parquet_mem_cache {
            0
        } else {
            self.parquet_mem_cache_size
        }
    }
}

/// Flags of the processing engine (`inflow serve`; the engine runs only
/// when `--plugin-dir` is given).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Where plugin files are, and where uploaded ones go; enables the
    /// processing engine.
    #[arg(long, env = "INFLOW_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// The Python virtual environment plugins' packages are installed into
    /// (default: `python-venv` under the data directory, or under the plugin
    /// directory when the object store is not the local disk).
    #[arg(long, env = "INFLOW_VIRTUAL_ENV_LOCATION")]
    pub virtual_env_location: Option<PathBuf>,

    /// How packages are installed: pip, uv, or disabled (no installs).
    #[arg(long, env = "INFLOW_PACKAGE_MANAGER", default_value = "pip",
          value_parser = ["pip", "uv", "disabled"])]
    pub package_manager: String,

    /// A plugin call running longer than this is stopped with TimeoutError.
    #[arg(long, env = "INFLOW_PLUGIN_CALL_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub plugin_call_timeout: Duration,
}

impl EngineArgs {
    /// `--virtual-env-location`, or its default: `python-venv` under the
    /// data directory for the local object store, else under the plugin
    /// directory.
    pub fn venv_location(&self, common: &CommonArgs) -> Option<PathBuf> {
        let plugin_dir = self.plugin_dir.as_ref()?;
        Some(match (&self.virtual_env_location, common.object_store) {
            (Some(v), _) => v.clone(),
            (None, ObjectStoreKind::File) => common.data_dir.join("python-venv"),
            (None, _) => plugin_dir.join(".python-venv"),
        })
    }
}

/// Flags of the node that runs retention, hard deletes and garbage
/// collection (`inflow serve` and `inflow-compactor`).
#[derive(Debug, Clone, Args)]
pub struct MaintenanceArgs {
    /// How often retention, scheduled hard deletes and garbage collection run.
    #[arg(long, env = "INFLOW_RETENTION_CHECK_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub retention_check_interval: Duration,

    /// How long a Parquet file that no catalog entry references stays on the
    /// object store before it is deleted, so running queries can finish.
    #[arg(long, env = "INFLOW_GC_GRACE_PERIOD", default_value = "5m", value_parser = parse_duration)]
    pub gc_grace_period: Duration,

    /// The most rows one compaction merges into one file (and holds in
    /// memory while it does). Files of half as many rows or more are not
    /// merged again. 0 turns compaction off.
    #[arg(long, env = "INFLOW_COMPACTION_MAX_ROWS", default_value_t = 1_000_000)]
    pub compaction_max_rows: u64,
}

impl IngestArgs {
    /// The catalog size limits these flags set.
    pub fn limits(&self) -> services::Limits {
        services::Limits {
            max_databases: self.max_databases,
            max_tables_per_database: self.max_tables_per_database,
            max_columns_per_table: self.max_columns_per_table,
        }
    }
}

/// Environment variable that makes the process abort at one step of
/// persistence or compaction, for the crash tests and
/// `scripts/crash-loop.sh`: `after-parquet-write`, `after-catalog-commit`,
/// `after-wal-delete` (the ingester's persist), `after-compacted-write`,
/// `after-compaction-commit` (the compactor's merge).
pub const CRASH_POINT_ENV: &str = "INFLOW_TEST_CRASH_POINT";

/// Aborts the process here when [`CRASH_POINT_ENV`] names `name`.
pub fn crash_point(name: &str) {
    if std::env::var(CRASH_POINT_ENV).is_ok_and(|v| v == name) {
        tracing::error!(point = name, "aborting at test crash point");
        std::process::abort();
    }
}

/// Parses a memory limit: a size (see [`parse_size`]) or a percentage of the
/// machine's memory (or of the cgroup's limit, when that is lower).
pub fn parse_mem_limit(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let pct: f64 = p
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| *v > 0.0 && *v <= 100.0)
            .ok_or_else(|| {
                format!("invalid percentage '{s}': expected a number in (0, 100] followed by %")
            })?;
        let total = total_memory().ok_or_else(|| {
            format!("cannot read the machine's memory to resolve '{s}'; give a size such as 1GiB instead")
        })?;
        return Ok((total as f64 * pct / 100.0) as usize);
    }
    parse_size(t)
}

/// The memory this process may use: the machine's, or its cgroup's limit.
fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let machine = kb * 1024;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    Some(cgroup.map_or(machine, |c| c.min(machine)))
}

/// A start-up failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A flag combination is wrong.
    #[error("{0}")]
    Config(String),
    /// The object store could not be set up.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Another process took this node's lease over: this one must stop.
    #[error("stopping: {0}")]
    LeaseLost(String),
    /// A local directory could not be created.
    #[error("creating data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CommonArgs {
    /// Builds the object store the flags describe, counting its requests
    /// ([`metered::MeteredStore`]).
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>, StartupError> {
        Ok(Arc::new(metered::MeteredStore::new(
            self.unmetered_store()?,
        )))
    }

    fn unmetered_store(&self) -> Result<Arc<dyn ObjectStore>, StartupError> {
        Ok(match self.object_store {
            ObjectStoreKind::Memory => Arc::new(object_store::memory::InMemory::new()),
            ObjectStoreKind::File => {
                std::fs::create_dir_all(&self.data_dir).map_err(|source| {
                    StartupError::DataDir {
                        path: self.data_dir.clone(),
                        source,
                    }
                })?;
                // Fsynced, so an acknowledged write survives a power loss.
                Arc::new(durable::DurableLocalStore::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&self.data_dir)?,
                ))
            }
            ObjectStoreKind::S3 => {
                let bucket = self.bucket.as_deref().ok_or_else(|| {
                    StartupError::Config(
                        "--object-store s3 needs --bucket (or INFLOW_BUCKET)".into(),
                    )
                })?;
                // The standard AWS environment first (AWS_* variables; web
                // identity and instance credentials when no keys are given),
                // then the flags, which win.
                use object_store::aws::AmazonS3ConfigKey;
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                // Timeouts through the config keys, which keep the client
                // options the environment set.
                let timeout = |d: Duration| format!("{}ms", d.as_millis());
                b = b
                    .with_retry(object_store::RetryConfig {
                        backoff: object_store::BackoffConfig::default(),
                        max_retries: self.object_store_max_retries,
                        retry_timeout: self.object_store_retry_timeout,
                    })
                    .with_config(
                        AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout),
                        timeout(self.object_store_request_timeout),
                    )
                    .with_config(
                        AmazonS3ConfigKey::Client(object_store::ClientConfigKey::ConnectTimeout),
                        timeout(
                            self.object_store_request_timeout
                                .min(Duration::from_secs(5)),
                        ),
                    );
                if let Some(r) = &self.aws_region {
                    b = b.with_region(r);
                }
                if self.aws_allow_http {
                    b = b.with_allow_http(true);
                }
                if let Some(e) = &self.aws_endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = &self.aws_access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(s) = &self.aws_secret_access_key {
                    b = b.with_secret_access_key(s);
                }
                Arc::new(b.build()?)
            }
        })
    }

    /// The object-store prefix as a path.
    pub fn prefix(&self) -> Path {
        self.object_store_prefix
            .as_deref()
            .map(Path::from)
            .unwrap_or_default()
    }

    /// Installs the tracing subscriber.
    pub fn init_logging(&self) -> Result<(), StartupError> {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_filter).map_err(|e| {
            StartupError::Config(format!("invalid --log-filter '{}': {e}", self.log_filter))
        })?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let result = match self.log_format {
            LogFormat::Full => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        // Already installed (in-process tests): keep the first.
        let _ = result;
        Ok(())
    }
}

/// Parses a duration such as `10ms`, `1s` or `5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration '{s}': {e} (examples: 10ms, 1s, 5m)"))
}

/// Parses a size: plain bytes, or with a unit B, KB, MB, GB (powers of 1000)
/// or KiB, MiB, GiB (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid size '{s}': expected a number with an optional unit, like 10MiB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size unit '{other}' in '{s}': use B, KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("512KB").unwrap(), 512_000);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("").is_err());
    }
}

/// Reads a token file: the bare token, or JSON `{"token": "..."}`.
pub fn read_token_file(path: &std::path::Path) -> Result<String, StartupError> {
    let bad =
        |why: String| StartupError::Config(format!("--admin-token-file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let text = text.trim();
    let token = if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("it looks like JSON but does not parse: {e}")))?;
        v.get("token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| bad("the JSON has no string field \"token\"".into()))?
            .trim()
            .to_string()
    } else {
        text.to_string()
    };
    if token.is_empty() {
        return Err(bad("it holds no token".into()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "the token contains whitespace; the file must hold one token".into(),
        ));
    }
    Ok(token)
}

impl CommonArgs {
    /// The auth settings the flags describe.
    pub fn auth_settings(&self) -> Result<http_api::AuthSettings, StartupError> {
        let mut open = std::collections::HashSet::new();
        for e in &self.disable_authz {
            let e = e.trim();
            if e.is_empty() {
                continue;
            }
            if !http_api::auth::OPENABLE.contains(&e) {
                return Err(StartupError::Config(format!(
                    "--disable-authz: unknown endpoint '{e}'; use any of health, ping, metrics"
                )));
            }
            open.insert(e.to_string());
        }
        Ok(http_api::AuthSettings {
            enabled: !self.without_auth,
            open,
        })
    }

    /// Installs the token in --admin-token-file, if given, as `_admin`. A
    /// different existing `_admin` token is replaced (the file is the source of truth).
    pub async fn install_admin_token(
        &self,
        catalog: &catalog::Catalog,
    ) -> Result<(), StartupError> {
        let Some(path) = &self.admin_token_file else {
            return Ok(());
        };
        let token = read_token_file(path)?;
        let hash = catalog::tokens::hash_token(&token);
        let name: Arc<str> = Arc::from(catalog::tokens::ADMIN_TOKEN_NAME);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        catalog
            .update(|s| {
                let mut ops = Vec::new();
                if let Some(old) = s.token_by_name(&name) {
                    if catalog::tokens::hashes_equal(&old.hash, &hash) {
                        return Ok(ops);
                    }
                    ops.push(catalog::CatalogOp::DeleteToken { id: old.id });
                }
                ops.push(catalog::CatalogOp::CreateToken {
                    token: catalog::TokenInfo {
                        id: s.next_token_id(),
                        name: Arc::clone(&name),
                        hash: hash.clone(),
                        created_at_ms: now_ms,
                        expiry_ms: None,
                        admin: true,
                        permissions: vec![],
                    },
                });
                Ok(ops)
            })
            .await
            .map_err(|e| {
                StartupError::Config(format!(
                    "installing the admin token from {}: {e}",
                    path.display()
                ))
            })?;
        tracing::info!(file = %path.display(), "admin token installed from file");
        Ok(())
    }

    /// Serves the HTTP API with what this node provides (a write path, a
    /// query engine, or neither) on `listener` until SIGINT or SIGTERM, or
    /// until the node's lease is lost (an error: the process must stop).
    #[allow(clippy::too_many_arguments)]
    pub async fn serve_http(
        &self,
        listener: tokio::net::TcpListener,
        node: &Node,
        catalog: Arc<catalog::Catalog>,
        writer: Option<Arc<dyn services::WriteService>>,
        query: Option<Arc<query::QueryEngine>>,
        engine: Option<Arc<dyn services::engine::EngineService>>,
        metrics: http_api::Metrics,
        ingest: Option<&IngestArgs>,
    ) -> Result<(), StartupError> {
        if let Some(q) = &query {
            let scan = q.scan_metrics();
            for c in [
                &scan.files_scanned,
                &scan.files_pruned,
                &scan.cache.hits,
                &scan.cache.misses,
                &scan.plans_reused,
                &scan.physical_plans_reused,
            ] {
                metrics.register(Box::new(c.clone()));
            }
            metrics.register(Box::new(scan.cache.bytes.clone()));
        }
        let state = http_api::AppState {
            catalog,
            writer,
            query: query.map(|q| q as Arc<dyn services::QueryService>),
            engine,
            metrics,
            body_limits: http_api::BodyLimits {
                max_bytes: self.max_http_request_size,
                read_timeout: self.http_body_read_timeout,
            },
            write_budget: http_api::WriteBudget::new(
                self.max_write_bytes_in_flight
                    .unwrap_or_else(|| ingest.map_or(0, |i| i.buffer_mem_limit / 2))
                    .max(self.max_http_request_size),
            ),
            process_id: uuid::Uuid::new_v4(),
            auth: self.auth_settings()?,
            limits: ingest.map_or(services::Limits::UNLIMITED, IngestArgs::limits),
            hard_delete_default_ns: ingest.map_or(http_api::HARD_DELETE_DEFAULT_NS, |i| {
                i64::try_from(i.hard_delete_default_duration.as_nanos()).unwrap_or(i64::MAX)
            }),
            node: http_api::NodeContext {
                id: node.id().to_string(),
                roles: node
                    .roles()
                    .iter()
                    .map(|r| r.as_str().to_string())
                    .collect(),
                registry: node.registry().clone(),
            },
            stopping: Arc::default(),
            writes_in_flight: Arc::default(),
        };
        let (scrape_catalog, scrape_lease, node_id) = (
            Arc::clone(&state.catalog),
            Arc::clone(node.lease()),
            node.id().to_string(),
        );
        state.metrics.on_scrape(move || {
            let m = http_api::cluster_metrics();
            m.catalog_sequence
                .set(i64::try_from(scrape_catalog.state().seq).unwrap_or(i64::MAX));
            m.node_lease_epoch
                .with_label_values(&[node_id.as_str()])
                .set(i64::try_from(scrape_lease.epoch()).unwrap_or(i64::MAX));
        });
        let addr = listener
            .local_addr()
            .map_err(|e| StartupError::Config(format!("listener address: {e}")))?;
        tracing::info!(%addr, node_id = node.id(), "listening");
        println!("listening on {addr}");
        let lost: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let shutdown = {
            let lost = Arc::clone(&lost);
            let lease = Arc::clone(node.lease());
            async move {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    why = lease.lost() => {
                        *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    }
                }
            }
        };
        // Arrow Flight and Flight SQL share the port: gRPC (HTTP/2) requests
        // go to their own routes.
        let router = http_api::router(state.clone()).merge(flight::router(state));
        http_api::serve(listener, router, shutdown, self.http_header_read_timeout)
            .await
            .map_err(|e| StartupError::Config(format!("HTTP server: {e}")))?;
        if let Some(why) = lost.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(StartupError::LeaseLost(why));
        }
        Ok(())
    }

    /// Binds the HTTP listener. `serve_http` prints `listening on ADDR` on
    /// stdout once the node is ready (tests and scripts read the port from
    /// it when --http-bind uses port 0).
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, StartupError> {
        tokio::net::TcpListener::bind(&self.http_bind)
            .await
            .map_err(|e| {
                StartupError::Config(format!(
                    "cannot listen on --http-bind {}: {e}",
                    self.http_bind
                ))
            })
    }

    /// The lease timing the flags set.
    pub fn lease_timing(&self) -> cluster::LeaseTiming {
        cluster::LeaseTiming {
            heartbeat: self.node_heartbeat_interval,
            timeout: self.node_lease_timeout,
        }
    }

    /// This process's node id: `--node-id`, or the default of its roles.
    pub fn resolved_node_id(&self, roles: &[Role]) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        if roles.contains(&Role::Ingest) {
            return "inflow-0".to_string();
        }
        let role = if roles.contains(&Role::Query) {
            "querier"
        } else {
            "compactor"
        };
        format!("{role}-{}", hostname_for_id())
    }

    /// Joins the cluster: takes the lease on this process's node id, waiting
    /// while a former holder's lease lapses, and failing while a live
    /// process holds it. A process that writes the catalog records each
    /// epoch it takes there, which fences its persists.
    pub async fn join_cluster(
        &self,
        store: &Arc<dyn ObjectStore>,
        catalog: &Arc<catalog::Catalog>,
        roles: &[Role],
        listener: &tokio::net::TcpListener,
    ) -> Result<Node, StartupError> {
        let id = self.resolved_node_id(roles);
        cluster::validate_node_id(&id).map_err(StartupError::Config)?;
        let bound = listener
            .local_addr()
            .map_err(|e| StartupError::Config(format!("listener address: {e}")))?;
        let address = match &self.advertise_address {
            Some(a) => a.clone(),
            None if bound.ip().is_unspecified() => format!("{}:{}", hostname(), bound.port()),
            None => bound.to_string(),
        };
        let holder = cluster::Holder {
            instance_id: uuid::Uuid::new_v4(),
            node_id: id.clone(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            address,
            started_at_ns: catalog::now_ns(),
            pid: std::process::id(),
            hostname: hostname(),
            core_count: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        };
        let timing = self.lease_timing();
        let name = cluster::node_lease_name(&id);
        let hook = fence_hook(catalog, &name, &holder);
        let lease = cluster::Lease::acquire(
            Arc::clone(store),
            &self.prefix(),
            &name,
            holder.clone(),
            timing,
            cluster::Contention::Refuse,
            hook,
        )
        .await
        .map_err(|e| StartupError::Config(format!("node id {id}: {e}")))?;
        tracing::info!(node_id = %id, epoch = lease.epoch(), address = %holder.address, "joined the cluster");
        Ok(Node {
            id,
            roles: roles.to_vec(),
            holder,
            lease,
            registry: cluster::Registry::new(Arc::clone(store), self.prefix(), timing),
            store: Arc::clone(store),
            prefix: self.prefix(),
            timing,
        })
    }

    /// Opens the object store and loads the catalog (read-only on a
    /// querier, which never changes it), and keeps the catalog in step with
    /// other pods every --catalog-sync-interval.
    pub async fn open_catalog(
        &self,
        read_only: bool,
    ) -> Result<(Arc<dyn ObjectStore>, Arc<catalog::Catalog>), StartupError> {
        let store = self.object_store()?;
        let load = if read_only {
            catalog::Catalog::load_read_only(Arc::clone(&store), self.prefix()).await
        } else {
            catalog::Catalog::load(Arc::clone(&store), self.prefix()).await
        };
        let catalog =
            load.map_err(|e| StartupError::Config(format!("loading the catalog: {e}")))?;
        tracing::info!(uuid = %catalog.uuid(), seq = catalog.state().seq, "catalog loaded");
        let sync = Arc::clone(&catalog);
        let every = self.catalog_sync_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = sync.sync().await {
                    tracing::warn!(error = %e, "catalog sync failed; retrying");
                }
            }
        });
        Ok((store, catalog))
    }
}

/// What a process does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts writes, serves the configure API, persists (`inflow-ingester`).
    Ingest,
    /// Answers queries (`inflow-querier`).
    Query,
    /// Retention, hard deletes, compaction, garbage collection (`inflow-compactor`).
    Compact,
}

impl Role {
    /// The name `system.nodes` shows (InfluxDB 3's mode names).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Query => "query",
            Role::Compact => "compact",
        }
    }
}

/// This process's membership in the cluster: its node id and the lease
/// that makes it the id's only live process.
#[derive(Debug)]
pub struct Node {
    id: String,
    roles: Vec<Role>,
    holder: cluster::Holder,
    lease: Arc<cluster::Lease>,
    registry: cluster::Registry,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    timing: cluster::LeaseTiming,
}

impl Node {
    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the process does.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The lease on the node id.
    pub fn lease(&self) -> &Arc<cluster::Lease> {
        &self.lease
    }

    /// The cluster's node registry.
    pub fn registry(&self) -> &cluster::Registry {
        &self.registry
    }

    /// Lets go of the node id on a clean shutdown, so a replacement need
    /// not wait for the lease timeout.
    pub async fn leave(&self) {
        self.lease.release().await;
    }

    /// The identity this process holds leases under.
    pub fn holder(&self) -> &cluster::Holder {
        &self.holder
    }

    /// The store the leases live on.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object-store prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The lease timing.
    pub fn timing(&self) -> cluster::LeaseTiming {
        self.timing
    }

    /// The hook that records each epoch of `lease` this process takes in
    /// `catalog` (none for a read-only catalog).
    pub fn fence_hook(
        &self,
        catalog: &Arc<catalog::Catalog>,
        lease: &str,
    ) -> Option<cluster::lease::EpochHook> {
        fence_hook(catalog, lease, &self.holder)
    }
}

/// Records each epoch of `lease` that `holder` takes in `catalog`, for a
/// process that writes the catalog (none for a read-only one).
pub fn fence_hook(
    catalog: &Arc<catalog::Catalog>,
    lease: &str,
    holder: &cluster::Holder,
) -> Option<cluster::lease::EpochHook> {
    if catalog.is_read_only() {
        return None;
    }
    let (catalog, lease, instance_id, roles) = (
        Arc::clone(catalog),
        lease.to_string(),
        holder.instance_id,
        holder.roles.clone(),
    );
    Some(Arc::new(move |epoch| {
        let (catalog, lease, roles) = (Arc::clone(&catalog), lease.clone(), roles.clone());
        Box::pin(async move {
            catalog
                .take_lease(&lease, epoch, instance_id, &roles)
                .await
                .map_err(|e| e.to_string())
        })
    }))
}

/// The machine's host name (the pod name on Kubernetes).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The host name as node-id characters.
fn hostname_for_id() -> String {
    hostname()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect()
}

/// A WAL flush observer that records flushes into `metrics`.
pub fn wal_observer(metrics: &http_api::Metrics) -> wal::FlushObserver {
    let m = metrics.clone();
    Box::new(move |s: &wal::FlushStats| {
        m.wal_flushes
            .with_label_values(&[if s.ok { "ok" } else { "error" }])
            .inc();
        m.wal_flush_duration.observe(s.duration.as_secs_f64());
        m.wal_flush_entries.observe(s.entries as f64);
        if s.ok {
            m.wal_flush_bytes.inc_by(s.bytes as u64);
        }
    })
}
