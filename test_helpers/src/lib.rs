//! Test harness: start the real Inflow binaries on port 0 and talk to them
//! over HTTP, as a user would.
//!
//! ```ignore
//! let server = TestServer::start().await;          // inflow serve, temp dir, 10ms WAL flush
//! server.write_lp("db", "cpu,host=a usage=1 1").await;
//! let rows = server.query_json("db", "SELECT * FROM cpu").await;
//! server.kill();                                   // SIGKILL, like kill -9
//! server.restart().await;                          // same data dir
//! ```

#![allow(clippy::unwrap_used)]

pub mod faults;
pub mod kube;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The path of a workspace binary, built next to the test executables.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found; build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

/// A running `inflow serve` (or role binary) with its own temp data dir.
#[derive(Debug)]
pub struct TestServer {
    binary: String,
    args: Vec<String>,
    dir: Arc<tempfile::TempDir>,
    child: Option<Child>,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    client: reqwest::Client,
    token: Option<String>,
    env: Vec<(String, String)>,
}

impl TestServer {
    /// `inflow serve` with a fresh data dir.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// `inflow serve` with extra flags.
    pub async fn start_with(extra: &[&str]) -> Self {
        Self::try_start(
            "inflow",
            &["serve"],
            extra,
            Arc::new(tempfile::tempdir().unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("server failed to start:\n{e}"))
    }

    /// `inflow serve` with auth on but no admin token yet (no token file).
    pub async fn start_without_admin_token() -> Self {
        Self::try_start_opts(
            "inflow",
            &["serve"],
            &[],
            Arc::new(tempfile::tempdir().unwrap()),
            false,
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("server failed to start:\n{e}"))
    }

    /// Starts `binary` with `sub` then the test defaults then `extra`, on
    /// `dir`. Unless `extra` has `--without-auth`, an admin token is
    /// installed through `--admin-token-file` and [`TestServer::client`]
    /// sends it. Returns the server's stderr if it exits before listening.
    pub async fn try_start(
        binary: &str,
        sub: &[&str],
        extra: &[&str],
        dir: Arc<tempfile::TempDir>,
    ) -> Result<Self, String> {
        Self::try_start_opts(binary, sub, extra, dir, true, &[]).await
    }

    /// [`TestServer::try_start`] with environment variables for the process
    /// (kept for restarts).
    pub async fn try_start_env(
        binary: &str,
        sub: &[&str],
        extra: &[&str],
        dir: Arc<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::try_start_opts(binary, sub, extra, dir, true, env).await
    }

    async fn try_start_opts(
        binary: &str,
        sub: &[&str],
        extra: &[&str],
        dir: Arc<tempfile::TempDir>,
        with_admin: bool,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
        // Test defaults, unless `extra` sets the flag itself.
        let defaults = [
            ("--http-bind", "127.0.0.1:0"),
            ("--wal-flush-interval", "10ms"),
            ("--catalog-sync-interval", "50ms"),
            ("--node-heartbeat-interval", "100ms"),
            ("--node-lease-timeout", "1s"),
            ("--log-filter", "warn"),
        ];
        for (flag, value) in defaults {
            if !extra.contains(&flag) {
                args.push(flag.to_string());
                args.push(value.to_string());
            }
        }
        args.push("--data-dir".to_string());
        args.push(dir.path().join("data").display().to_string());
        let own_file = extra.contains(&"--without-auth") || extra.contains(&"--admin-token-file");
        let token = (with_admin && !own_file).then(|| {
            // The same file (and token) for every process on this dir.
            let path = dir.path().join("admin-token");
            if !path.exists() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                std::fs::write(
                    &path,
                    format!("apiv3_test-admin-{nanos}-{}", std::process::id()),
                )
                .unwrap();
            }
            if binary != "inflow-querier" && binary != "inflow-compactor" {
                args.push("--admin-token-file".into());
                args.push(path.display().to_string());
            }
            std::fs::read_to_string(&path).unwrap()
        });
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = &token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        let mut s = Self {
            binary: binary.to_string(),
            args,
            dir,
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            stderr: Arc::new(Mutex::new(String::new())),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .default_headers(headers)
                .build()
                .unwrap(),
            token,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn().await?;
        Ok(s)
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(bin_path(&self.binary))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::clone(&self.stderr);
        log.lock().unwrap().clear();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
        match addr {
            Ok(a) => {
                self.addr = a.parse().unwrap();
                self.child = Some(child);
                Ok(())
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Let the stderr thread drain.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(format!(
                    "exit status {status:?}\n{}",
                    self.stderr.lock().unwrap()
                ))
            }
        }
    }

    /// The server's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The data directory (the object store root with --object-store file).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The shared temp dir, to start another process on the same data.
    pub fn temp_dir(&self) -> Arc<tempfile::TempDir> {
        Arc::clone(&self.dir)
    }

    /// An HTTP client that sends the admin token (when auth is on).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// An HTTP client that sends no credentials.
    pub fn anonymous_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server process's resident memory in bytes (Linux), while it runs.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid()?)
    }

    /// The admin token the default client sends, if auth is on.
    pub fn admin_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM (what Kubernetes sends a pod it stops); see
    /// [`TestServer::wait_exit`].
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
    }

    /// Sets an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Removes every environment variable set with [`TestServer::set_env`].
    pub fn clear_env(&mut self) {
        self.env.clear();
    }

    /// Replaces the extra flags' value `flag` (e.g. `--wal-snapshot-size`)
    /// for the next (re)start, or appends the flag.
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.args.len() => self.args[i + 1] = value.to_string(),
            _ => {
                self.args.push(flag.to_string());
                self.args.push(value.to_string());
            }
        }
    }

    /// Waits up to `timeout` for the process to exit on its own; returns
    /// its exit status, or `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the same command again on the same data dir.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn()
            .await
            .unwrap_or_else(|e| panic!("server failed to restart:\n{e}"));
    }

    /// Starts again, expecting failure; returns the server's stderr.
    pub async fn restart_expect_failure(&mut self) -> String {
        self.kill();
        match self.spawn().await {
            Ok(()) => panic!("server started but was expected to fail"),
            Err(e) => e,
        }
    }

    /// POST line protocol to `/api/v3/write_lp?db=DB&precision=nanosecond`
    /// (tests use small timestamps, which `auto` would read as seconds).
    pub async fn write_lp(&self, db: &str, lp: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v3/write_lp"))
            .query(&[("db", db), ("precision", "nanosecond")])
            .body(lp.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Writes and asserts 204.
    pub async fn write_ok(&self, db: &str, lp: &str) {
        let r = self.write_lp(db, lp).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 204, "write failed: {body}");
    }

    /// GET `/api/v3/query_sql` with `format`.
    pub async fn query(&self, db: &str, q: &str, format: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/v3/query_sql"))
            .query(&[("db", db), ("q", q), ("format", format)])
            .send()
            .await
            .unwrap()
    }

    /// Runs a query and returns its JSON rows, asserting 200.
    pub async fn query_json(&self, db: &str, q: &str) -> Vec<serde_json::Value> {
        let r = self.query(db, q, "json").await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "query failed: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON {e}: {body}"))
    }

    /// Runs a query and returns its JSON rows, or `None` if it did not
    /// answer 200 (for polling until data arrives).
    pub async fn try_rows(&self, db: &str, q: &str) -> Option<Vec<serde_json::Value>> {
        let r = self.query(db, q, "json").await;
        if r.status() != 200 {
            return None;
        }
        r.json().await.ok()
    }

    /// Waits (up to 30 s) until `rows` rows of `db`'s `table` are in
    /// Parquet files (`system.parquet_files`).
    pub async fn wait_persisted(&self, db: &str, table: &str, rows: u64) {
        let q = format!(
            "SELECT sum(row_count) AS n FROM system.parquet_files WHERE table_name = '{table}'"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let n = self
                .try_rows(db, &q)
                .await
                .and_then(|r| r.first().and_then(|row| row["n"].as_u64()));
            if n == Some(rows) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{db}.{table}: {n:?} rows persisted, waiting for {rows}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` as JSON to `path`: the status and the response body.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, String) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// DELETE `path` with `query`: the status.
    pub async fn delete_status(&self, path: &str, query: &[(&str, &str)]) -> u16 {
        self.client
            .delete(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The value of a counter or gauge on `/metrics`: `name` is the series
    /// as exposed (labels included), panicking if it is not there.
    pub async fn metric(&self, name: &str) -> u64 {
        self.try_metric(name)
            .await
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// [`TestServer::metric`], or `None` while the series does not exist.
    pub async fn try_metric(&self, name: &str) -> Option<u64> {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    }

    /// Runs a query and returns the pretty table, asserting 200.
    pub async fn query_pretty(&self, db: &str, q: &str) -> String {
        let r = self.query(db, q, "pretty").await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "query failed: {body}");
        body.trim_end().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the `inflow` CLI with `args`, and `INFLOW_TOKEN` set to `token` (or
/// unset). Returns whether it succeeded, its stdout and its stderr.
pub fn run_cli(args: &[&str], token: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(bin_path("inflow"));
    cmd.args(args).env_remove("INFLOW_TOKEN");
    if let Some(t) = token {
        cmd.env("INFLOW_TOKEN", t);
    }
    let out = cmd.output().expect("the inflow binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the `inflow` CLI with `args` and the extra environment `env`.
/// Returns whether it succeeded, its stdout and its stderr.
pub fn run_cli_env(args: &[&str], env: &[(String, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin_path("inflow"));
    cmd.args(args).env_remove("INFLOW_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the inflow binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Several real processes on one object store (a temp dir), started role by
/// role, so a multi-process scenario reads as steps:
///
/// ```ignore
/// let mut cluster = TestCluster::new();
/// let ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
/// let querier = cluster.start("inflow-querier", "q-0", &["--replication-interval", "20ms"]).await;
/// ingester.write_ok("db", "m v=1 1").await;
/// ```
#[derive(Debug)]
pub struct TestCluster {
    dir: Arc<tempfile::TempDir>,
    /// The S3 bucket, when the cluster runs on S3.
    s3: Option<(S3Endpoint, String)>,
    /// Flags every process gets (the object store's).
    store_flags: Vec<String>,
    /// Environment every process gets (S3 credentials).
    env: Vec<(String, String)>,
}

impl Default for TestCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCluster {
    /// An empty store: no process yet.
    pub fn new() -> Self {
        Self {
            dir: Arc::new(tempfile::tempdir().unwrap()),
            s3: None,
            store_flags: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A cluster on bucket `bucket` of an S3 server, with credentials from
    /// the standard AWS environment (not flags).
    pub fn on_s3(s3: &S3Endpoint, bucket: &str) -> Self {
        let mut c = Self::new();
        c.store_flags = [
            "--object-store",
            "s3",
            "--bucket",
            bucket,
            "--aws-endpoint",
            &s3.url(),
            "--aws-allow-http",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        c.env = s3.credentials();
        c.s3 = Some((s3.clone(), bucket.to_string()));
        c
    }

    /// The cluster's object store, as the processes see it.
    pub fn store(&self) -> Arc<dyn object_store::ObjectStore> {
        match &self.s3 {
            Some((s3, bucket)) => s3.store(bucket),
            None => {
                std::fs::create_dir_all(self.data_dir()).unwrap();
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(self.data_dir()).unwrap(),
                )
            }
        }
    }

    /// Paths of the objects under `prefix` on the store.
    pub async fn objects(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let prefix = object_store::path::Path::from(prefix);
        let metas: Vec<_> = self
            .store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .unwrap_or_default();
        metas.into_iter().map(|m| m.location.to_string()).collect()
    }

    /// Starts `binary` (`inflow-ingester`, `inflow-querier`,
    /// `inflow-compactor`, or `inflow` for `inflow serve`) as node `node_id`
    /// with `extra` flags, panicking if it fails.
    pub async fn start(&self, binary: &str, node_id: &str, extra: &[&str]) -> TestServer {
        self.try_start(binary, node_id, extra)
            .await
            .unwrap_or_else(|e| panic!("{binary} {node_id} failed to start:\n{e}"))
    }

    /// Starts a process; its stderr if it exits before listening.
    pub async fn try_start(
        &self,
        binary: &str,
        node_id: &str,
        extra: &[&str],
    ) -> Result<TestServer, String> {
        let sub: &[&str] = if binary == "inflow" { &["serve"] } else { &[] };
        let mut args = vec!["--node-id", node_id];
        args.extend(self.store_flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        TestServer::try_start_env(binary, sub, &args, Arc::clone(&self.dir), &env).await
    }

    /// The flags that point `inflow` CLI commands (`backup`, `restore`) at
    /// this cluster's store.
    pub fn cli_store_flags(&self) -> Vec<String> {
        if self.s3.is_some() {
            self.store_flags.clone()
        } else {
            vec![
                "--data-dir".to_string(),
                self.data_dir().display().to_string(),
            ]
        }
    }

    /// The environment every process of the cluster gets (S3 credentials).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The object store's root directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The node id holding the cluster's compactor lease now (the holder of
    /// its latest claim), read from the store.
    pub async fn compactor_holder(&self) -> Option<String> {
        use object_store::ObjectStoreExt;
        let mut claims: Vec<String> = self
            .objects("catalog/leases/compactor")
            .await
            .into_iter()
            .filter(|p| p.ends_with(".claim"))
            .collect();
        claims.sort();
        let bytes = self
            .store()
            .get(&object_store::path::Path::from(claims.last()?.as_str()))
            .await
            .ok()?
            .bytes()
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v["holder"]["node_id"].as_str().map(str::to_string)
    }

    /// The catalog transactions on the store.
    pub async fn catalog_log_files(&self) -> usize {
        self.objects("catalog/log").await.len()
    }
}

/// The resident memory of process `pid` in bytes (Linux's `VmRSS`).
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Where an S3 server answers and with which keys.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    url: String,
    access_key: String,
    secret_key: String,
}

impl S3Endpoint {
    /// The endpoint URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The standard AWS environment for it. The instance metadata endpoint
    /// points at a closed loopback port, so a process that misses the keys
    /// fails at once instead of reaching for a metadata service.
    pub fn credentials(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An `object_store` client for bucket `bucket`.
    pub fn store(&self, bucket: &str) -> Arc<dyn object_store::ObjectStore> {
        Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.url)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(&self.access_key)
                .with_secret_access_key(&self.secret_key)
                .build()
                .unwrap(),
        )
    }

    /// Creates bucket `name` (a signed request, through the test venv's
    /// boto3, which moto brings).
    pub async fn create_bucket(&self, name: &str) {
        let script = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='{}', aws_secret_access_key='{}', region_name='us-east-1').create_bucket(Bucket='{name}')",
            self.url, self.access_key, self.secret_key
        );
        let out = Command::new(venv().join("bin/python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The test venv: `$INFLOW_VENV`, else `$HOME/.cache/inflow-venv`.
fn venv() -> PathBuf {
    std::env::var("INFLOW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/inflow-venv")
        })
}

/// A free port for a helper server that binds it itself, below Linux's
/// ephemeral range (32768 and up): a port taken with port 0 and released
/// could be handed to another test's port-0 bind before the helper binds it.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..1000 {
        let n = seed.wrapping_add(NEXT.fetch_add(7919, Ordering::Relaxed));
        let port = 20_000 + (n % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}

/// A real S3 server for tests: `moto_server` from the test venv (PyPI
/// `moto[server]`), on a free loopback port, killed on drop. The binary is
/// `$INFLOW_MOTO_SERVER`, else `$INFLOW_VENV/bin/moto_server`, else
/// `$HOME/.cache/inflow-venv/bin/moto_server` (scripts/test.sh installs it).
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts the server and waits until it answers.
    pub async fn start() -> Self {
        let bin = std::env::var("INFLOW_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| venv().join("bin/moto_server"));
        assert!(
            bin.exists(),
            "{} not found: run scripts/test.sh, which installs moto[server]",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Self { child, port };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(s.endpoint().url()).send().await.is_ok() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on port {port}");
    }

    /// Its endpoint (moto takes any keys).
    pub fn endpoint(&self) -> S3Endpoint {
        S3Endpoint {
            url: format!("http://127.0.0.1:{}", self.port),
            access_key: "testing".into(),
            secret_key: "testing".into(),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus (Debian's `prometheus`) scraping `targets` every
/// 100 ms, with its TSDB in a temp dir, on a free loopback port; killed on
/// drop. Read back through its HTTP API with [`Prometheus::query`].
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with one scrape job per `(job, host:port)`.
    pub async fn start(targets: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from(
            "global:\n  scrape_interval: 100ms\n  scrape_timeout: 90ms\nscrape_configs:\n",
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/test.sh installs Debian's package)");
        let p = Self {
            child,
            port,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("prometheus did not become ready");
    }

    /// Its base URL (the query API is under `/api/v1`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The instant vector of a PromQL query: each result's labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&[("query", promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "success", "{promql}: {r}");
        r["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["metric"].clone(),
                    x["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Ceph RADOS Gateway (Debian's `radosgw`) on a one-node Ceph
/// cluster of its own: a monitor and one in-memory OSD (`memstore`), no
/// cephx, in a temp dir, on free loopback ports; every daemon in the
/// foreground, killed on drop. Takes about 15 s to start.
#[derive(Debug)]
pub struct RadosGw {
    daemons: Vec<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RadosGw {
    /// Starts the monitor, the OSD and the gateway, and creates a user. A
    /// one-node cluster that does not come up within a minute (seen once
    /// on a loaded machine: the OSD refused by its monitor) is replaced by
    /// a fresh one, up to three times.
    pub async fn start() -> Self {
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            match Self::try_start_once(Duration::from_secs(60)).await {
                Ok(s) => return s,
                Err(e) => {
                    eprintln!("radosgw attempt {attempt} failed: {e}");
                    failures.push(e);
                }
            }
        }
        panic!(
            "radosgw did not start in three attempts:\n{}",
            failures.join("\n")
        );
    }

    async fn try_start_once(wait: Duration) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["run", "log", "osd", "mon", "rgw"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (mon_port, port) = (free_port(), free_port());
        let fsid = format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), port);
        let conf = d.join("ceph.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\nfsid = {fsid}\nmon host = v1:127.0.0.1:{mon_port}\n\
                 auth cluster required = none\nauth service required = none\nauth client required = none\n\
                 osd pool default size = 1\nosd pool default min size = 1\nosd pool default pg num = 8\n\
                 osd pool default pgp num = 8\nosd crush chooseleaf type = 0\nmon allow pool size one = true\n\
                 mon data avail warn = 1\nmon data avail crit = 0\n\
                 run dir = {d}/run\nlog file = {d}/log/$name.log\nadmin socket = {d}/run/$name.asok\n\
                 osd objectstore = memstore\nmemstore device bytes = 1073741824\nosd data = {d}/osd\n\
                 mon data = {d}/mon\nms bind ipv4 = true\nms bind ipv6 = false\n\
                 [client.rgw]\nrgw frontends = beast endpoint=127.0.0.1:{port}\nrgw data = {d}/rgw\n",
                d = d.display()
            ),
        )
        .unwrap();
        let conf = conf.display().to_string();
        let run = |cmd: &str, args: &[&str]| {
            let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
                panic!(
                    "{cmd}: {e} (scripts/test.sh installs Debian's radosgw, ceph-mon and ceph-osd)"
                )
            });
            if !out.status.success() {
                return Err(format!(
                    "{cmd} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let monmap = d.join("monmap").display().to_string();
        run(
            "monmaptool",
            &[
                "--create",
                "--add",
                "a",
                &format!("v1:127.0.0.1:{mon_port}"),
                "--fsid",
                &fsid,
                &monmap,
            ],
        )?;
        run(
            "ceph-mon",
            &["--mkfs", "-i", "a", "--monmap", &monmap, "-c", &conf],
        )?;
        let daemon = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut daemons = vec![daemon("ceph-mon", &["-f", "-i", "a", "-c", &conf])];
        let osd_uuid = format!(
            "{:08x}-1111-4000-8000-{:012x}",
            std::process::id(),
            mon_port
        );
        // From here on the daemons stop with `s`, whatever fails.
        let logs = d.join("log");
        let mut s = Self {
            daemons: Vec::new(),
            port,
            _dir: dir,
        };
        s.daemons.append(&mut daemons);
        // A monitor that has just started can refuse commands for a moment
        // ("problem getting command descriptions from mon"): retried.
        let osd_create = [
            "-c",
            &conf,
            "--connect-timeout",
            "30",
            "osd",
            "create",
            &osd_uuid,
            "0",
        ];
        let asked = std::time::Instant::now();
        while let Err(e) = run("ceph", &osd_create) {
            if asked.elapsed() > Duration::from_secs(20) {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        run(
            "ceph-osd",
            &["-i", "0", "--mkfs", "--osd-uuid", &osd_uuid, "-c", &conf],
        )?;
        s.daemons
            .push(daemon("ceph-osd", &["-f", "-i", "0", "-c", &conf]));
        s.daemons
            .push(daemon("radosgw", &["-f", "-n", "client.rgw", "-c", &conf]));
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/");
        // Creating its pools takes the gateway seconds alone, and longer on
        // a machine busy with the rest of the suite.
        let deadline = std::time::Instant::now() + wait;
        while !client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if std::time::Instant::now() > deadline {
                let mut tails = String::new();
                for name in ["mon.a", "osd.0", "client.rgw"] {
                    let text = std::fs::read_to_string(logs.join(format!("{name}.log")))
                        .unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    tails.push_str(&format!(
                        "--- {name}.log (last lines)\n{}\n",
                        lines[lines.len().saturating_sub(15)..].join("\n")
                    ));
                }
                return Err(format!(
                    "radosgw did not answer on port {port} within {wait:?}\n{tails}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        run(
            "radosgw-admin",
            &[
                "-c",
                &conf,
                "-n",
                "client.rgw",
                "user",
                "create",
                "--uid",
                "inflow",
                "--display-name",
                "inflow",
                "--access-key",
                "inflow-access",
                "--secret",
                "inflow-secret",
            ],
        )?;
        Ok(s)
    }

    /// Its endpoint.
    pub fn endpoint(&self) -> S3Endpoint {
        S3Endpoint {
            url: format!("http://127.0.0.1:{}", self.port),
            access_key: "inflow-access".into(),
            secret_key: "inflow-secret".into(),
        }
    }
}

impl Drop for RadosGw {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}
