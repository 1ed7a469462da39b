//! The Helm chart through the real `helm` (built from its Go module by
//! scripts/build-tools.sh): lint, template with the default and a full
//! values file, a bad values file refused by the schema, and an install on
//! a real API server.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use test_helpers::kube::{ControlPlane, HELM_VERSION, tool};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/inflow");
const FULL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/full-values.yaml");

fn helm(args: &[&str], kubeconfig: Option<&std::path::Path>) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tool("helm", HELM_VERSION));
    cmd.args(args)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"));
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lint_template_and_schema() {
    let (ok, out, err) = helm(&["lint", CHART], None);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = helm(&["lint", CHART, "-f", FULL], None);
    assert!(ok, "{out}{err}");

    let (ok, default, err) = helm(&["template", "inflow", CHART], None);
    assert!(ok, "{err}");
    for kind in [
        "kind: Deployment",
        "kind: ServiceAccount",
        "kind: ClusterRole",
        "kind: ClusterRoleBinding",
    ] {
        assert!(default.contains(kind), "default render lacks {kind}");
    }
    assert!(
        !default.contains("kind: InflowCluster"),
        "no cluster by default"
    );
    assert!(default.contains("image: ghcr.io/inflow-dev/inflow:0.1.0"));

    let (ok, full, err) = helm(&["template", "inflow", CHART, "-f", FULL], None);
    assert!(ok, "{err}");
    assert!(full.contains("kind: InflowCluster") && full.contains("kind: ServiceMonitor"));
    assert!(full.contains("--namespace=data") && full.contains("replicas: 2"));
    assert!(full.contains("bucket: inflow") && full.contains("name: inflow-admin"));

    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "operator:\n  replicas: -1\n  colour: blue\n").unwrap();
    let (ok, _, err) = helm(
        &[
            "template",
            "inflow",
            CHART,
            "-f",
            bad.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok, "the schema must refuse it");
    assert!(err.contains("replicas") && err.contains("colour"), "{err}");
}

#[test]
fn install_on_a_real_api_server() {
    let plane = ControlPlane::start();
    let (ok, out, err) = helm(
        &[
            "install",
            "inflow",
            CHART,
            "--namespace",
            "default",
            "--set",
            "cluster.enabled=true",
            "--wait=false",
        ],
        Some(&plane.kubeconfig),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("inflow-operator"), "NOTES: {out}");
    // The API server accepted the chart's objects: CRDs, RBAC, the operator, the cluster.
    for (kind, name) in [
        ("crd", "inflowclusters.inflow.dev"),
        ("deployment", "inflow-operator"),
        ("serviceaccount", "inflow-operator"),
        ("clusterrole", "inflow-operator"),
        ("clusterrolebinding", "inflow-operator"),
        ("service", "inflow-operator-metrics"),
        ("inflowcluster", "inflow"),
    ] {
        let (ok, _, err) = plane.kubectl(&["get", kind, name]);
        assert!(ok, "{kind}/{name}: {err}");
    }
    let (ok, out, err) = helm(&["list", "--namespace", "default"], Some(&plane.kubeconfig));
    assert!(ok && out.contains("deployed"), "{out}{err}");
}

/// The `helm test` hook's own script, taken from the rendered chart and
/// run with `sh` against a real split cluster (an ingester and a querier
/// tailing its WAL): it must pass there, and fail with a wrong token. (No
/// kubelet runs here, so `helm test` itself would only see kwok pretend.)
#[tokio::test]
async fn test_hook_writes_and_reads_back_on_a_real_cluster() {
    let (ok, rendered, err) = helm(
        &[
            "template",
            "inflow",
            CHART,
            "--set",
            "cluster.enabled=true",
            "--show-only",
            "templates/tests/write-read.yaml",
        ],
        None,
    );
    assert!(ok, "{err}");
    let pod: serde_yaml::Value = serde_yaml::from_str(&rendered).unwrap();
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["command"][0], "sh");
    let script = container["args"][0].as_str().unwrap().to_string();
    let env = container["env"].as_sequence().unwrap();
    let value_of = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("the hook sets no {name}"))
            .clone()
    };
    assert_eq!(
        value_of("INGESTER_URL")["value"],
        "http://inflow-ingester:8181"
    );
    assert_eq!(
        value_of("QUERIER_URL")["value"],
        "http://inflow-querier:8181"
    );
    assert_eq!(
        value_of("TOKEN")["valueFrom"]["secretKeyRef"]["name"],
        "inflow-admin-token"
    );

    let cluster = test_helpers::TestCluster::new();
    let ingester = cluster.start("inflow-ingester", "ingester-0", &[]).await;
    let querier = cluster
        .start(
            "inflow-querier",
            "querier-0",
            &["--replication-interval", "20ms"],
        )
        .await;
    let token = ingester.admin_token().unwrap().to_string();
    let run = |token: String| {
        let script = script.clone();
        let (ingester_url, querier_url) = (ingester.url(""), querier.url(""));
        tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .args(["-ec", &script])
                .env("INGESTER_URL", ingester_url)
                .env("QUERIER_URL", querier_url)
                .env("TOKEN", token)
                .env("HOSTNAME", "inflow-write-read")
                .output()
                .unwrap()
        })
    };
    let out = run(token.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "the hook failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = querier
        .query_json("helm_test", "SELECT pod, ok FROM helm_test")
        .await;
    assert_eq!(
        rows,
        vec![serde_json::json!({"pod": "inflow-write-read", "ok": 1})]
    );

    let out = run("apiv3_wrong".to_string()).await.unwrap();
    assert!(!out.status.success(), "a wrong token must fail the hook");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
