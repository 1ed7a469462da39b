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
