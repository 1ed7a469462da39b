//! Autoscaling on a real control plane (etcd, kube-apiserver, the
//! controller manager, the scheduler and kwok's fake node): a real
//! Prometheus scrapes a real local Inflow ingester under a load from
//! `inflow-bench`; the operator reads the load from Prometheus and scales
//! the ingesters' StatefulSet up within seconds, and back down once the load
//! stops. Also: the schema's CEL rule refuses min > max, and `mode: hpa`
//! emits a HorizontalPodAutoscaler that owns the count.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, install_crds, json_of, operator};

use test_helpers::kube::ControlPlane;
use test_helpers::{Prometheus, TestServer};

/// Polls `check` every 250 ms until it answers, for at most `seconds`.
fn within<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "timed out after {seconds} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn replicas(plane: &ControlPlane, kind: &str, name: &str) -> Option<i64> {
    json_of(plane, &["get", kind, name])["spec"]["replicas"].as_i64()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_scales_ingesters_on_the_load_prometheus_measures() {
    let plane = ControlPlane::start_with_nodes();
    install_crds(&plane);

    // The API server applies the schema's rule: min may not exceed max.
    let bad = "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {name: bad}\n\
               spec:\n  ingesters:\n    autoscaling: {minReplicas: 5, maxReplicas: 2}\n";
    std::fs::write(plane.dir().join("bad.yaml"), bad).unwrap();
    let (ok, _, err) = plane.kubectl(&[
        "apply",
        "-f",
        plane.dir().join("bad.yaml").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("minReplicas must not exceed maxReplicas"),
        "{err}"
    );

    // A real ingester, scraped by a real Prometheus every 100 ms.
    let inflow = TestServer::start_with(&["--disable-authz", "metrics"]).await;
    let target = inflow.url("").trim_start_matches("http://").to_string();
    let prometheus = Prometheus::start(&[("ingester", target)]).await;
    let _op = operator(&plane, "only");
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {{name: fleet}}\n\
         spec:\n  objectStore: {{s3: {{bucket: inflow, endpoint: \"http://s3:9000\"}}}}\n\
         \x20 ingesters:\n    replicas: 1\n    autoscaling:\n      minReplicas: 1\n      maxReplicas: 4\n\
         \x20     targets: {{writeLinesPerSecondPerPod: 1000}}\n\
         \x20     scaleDownStabilization: 3s\n\
         \x20     prometheus: {{url: \"{}\", selector: 'job=\"ingester\"', rateWindow: 2s}}\n\
         \x20 queriers:\n    autoscaling: {{mode: hpa, minReplicas: 2, maxReplicas: 6, targets: {{cpu: 0.5}}, scaleDownStabilization: 1m}}\n",
        prometheus.url()
    ));
    // Idle: one ingester, the decision in the status.
    let (status, _) = within(30, "the first decision", || {
        let v = json_of(&plane, &["get", "inflowcluster", "fleet"]);
        v["status"]["autoscaling"]["ingester"]["metric"]
            .as_str()
            .map(|_| v["status"]["autoscaling"]["ingester"].clone())
    });
    assert_eq!(status["replicas"], 1, "{status}");
    assert_eq!(replicas(&plane, "statefulset", "fleet-ingester"), Some(1));

    // `mode: hpa` on the queriers: an HPA on CPU owns their count.
    let hpa = json_of(&plane, &["get", "hpa", "fleet-querier"]);
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageValue"],
        "500m"
    );
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );

    // A load far above 1,000 lines/s per pod: up to the maximum.
    let mut load = Running(
        Command::new(test_helpers::bin_path("inflow-bench"))
            .args([
                "write",
                "--url",
                &inflow.url(""),
                "--batch",
                "1000",
                "--connections",
                "2",
            ])
            .args(["--hosts", "100", "--duration", "48h"])
            .env("INFLOW_TOKEN", inflow.admin_token().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while replicas(&plane, "statefulset", "fleet-ingester") != Some(4) {
        if started.elapsed() > Duration::from_secs(30) {
            let v = json_of(&plane, &["get", "inflowcluster", "fleet"]);
            let rate = prometheus.query("rate(inflow_write_lines_total[2s])").await;
            panic!(
                "not scaled up in 30 s: {}\nPrometheus: {rate:?}",
                v["status"]["autoscaling"]
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let up = started.elapsed();
    // The workload is applied before the status is written: wait for both.
    let (status, _) = within(10, "the status of the scale-up", || {
        let v = json_of(&plane, &["get", "inflowcluster", "fleet"]);
        (v["status"]["autoscaling"]["ingester"]["replicas"] == 4).then_some(v)
    });
    let ingester = &status["status"]["autoscaling"]["ingester"];
    assert_eq!(
        ingester["metric"], "writeLinesPerSecondPerPod",
        "{ingester}"
    );
    assert!(
        ingester["observed"].as_f64().unwrap() > 1000.0,
        "{ingester}"
    );
    assert!(ingester["lastScaleTime"].is_string(), "{ingester}");
    eprintln!("load step to 4 ingesters: {up:?}");

    // The load stops: back to one, after the down window.
    let _ = load.0.kill();
    let _ = load.0.wait();
    let (_, down) = within(30, "one ingester again", || {
        (replicas(&plane, "statefulset", "fleet-ingester") == Some(1)).then_some(())
    });
    eprintln!("load stop to 1 ingester: {down:?}");
    assert!(
        down >= Duration::from_secs(3),
        "the down window held {down:?}"
    );

    // Each change is an Event on the cluster.
    let scaled = |plane: &ControlPlane| -> Vec<String> {
        let events = json_of(plane, &["get", "events.events.k8s.io"]);
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["regarding"]["name"] == "fleet")
            .filter(|e| e["reason"] == "ScaledUp" || e["reason"] == "ScaledDown")
            .map(|e| {
                format!(
                    "{}: {}",
                    e["reason"].as_str().unwrap_or_default(),
                    e["note"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let started = Instant::now();
    loop {
        let notes = scaled(&plane);
        // Up from one: at once to four, or (a slower first measurement on
        // a loaded machine) in steps, whose Events fold into the first's.
        let up = notes
            .iter()
            .any(|n| n.starts_with("ScaledUp") && n.contains(": 1 -> "));
        // Down in steps (4 -> 3 -> 2 -> 1): kwok's three extra pods report
        // nothing, and a silent pod counts as at its target when scaling
        // down. Steps of one reason fold into one Event series.
        let down = notes
            .iter()
            .any(|n| n.starts_with("ScaledDown: ingester: "));
        if up && down {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the ScaledUp and ScaledDown events: {notes:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
