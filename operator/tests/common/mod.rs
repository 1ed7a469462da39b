//! What the operator's control-plane tests share: a running
//! `inflow-operator` and `kubectl get -o json`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_helpers::kube::ControlPlane;

/// The CRDs as committed.
pub(crate) const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/inflow.dev.yaml");

/// A child process killed when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `inflow-operator run` (resync 1 s) against the control plane as
/// `identity`; returns once it leads.
pub(crate) fn operator(plane: &ControlPlane, identity: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inflow-operator"))
        .args([
            "run",
            "--metrics-bind",
            "127.0.0.1:0",
            "--resync",
            "1s",
            "--identity",
            identity,
        ])
        .env("KUBECONFIG", &plane.kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("leader as ") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the operator did not take the leader lease");
    Running(child)
}

/// `kubectl get ARGS -o json`, asserting it succeeds.
pub(crate) fn json_of(plane: &ControlPlane, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, out, err) = plane.kubectl(&all);
    assert!(ok, "kubectl {args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Polls `check` until it returns `Some`, or fails after 60 s with `what`.
#[allow(dead_code)]
pub(crate) async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(60), check).await
}

/// [`eventually`] with another deadline.
#[allow(dead_code)]
pub(crate) async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies the CRDs and waits until the API server serves every one.
#[allow(dead_code)]
pub(crate) fn install_crds(plane: &ControlPlane) {
    let (ok, _, err) = plane.kubectl(&["apply", "-f", CRDS]);
    assert!(ok, "{err}");
    let (ok, _, err) = plane.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        "crd/inflowclusters.inflow.dev",
        "crd/databases.inflow.dev",
        "crd/tokens.inflow.dev",
        "crd/triggers.inflow.dev",
        "crd/backups.inflow.dev",
        "crd/backupschedules.inflow.dev",
    ]);
    assert!(ok, "{err}");
}
