//! `Backup` and `BackupSchedule` on a real control plane (kube-apiserver,
//! kube-controller-manager's Job controller, the scheduler and kwok's fake
//! node) for an `InflowCluster` on S3 (moto), with a real `inflow serve` on
//! that bucket. kwok runs no containers, so the test is the kubelet of the
//! backup Jobs' pods: it runs each pod's own command and environment (its
//! Secrets resolved) with the real `inflow` binary, then reports the
//! outcome in the pod's status, termination message included, as a kubelet
//! does. The backup made that way restores into another bucket and answers
//! as the source does.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{eventually, install_crds, json_of, operator};
use serde_json::{Value, json};
use test_helpers::kube::ControlPlane;
use test_helpers::{MotoServer, S3Endpoint, TestCluster, run_cli_env};

fn keys_secret(plane: &ControlPlane, name: &str, s3: &S3Endpoint) {
    let creds = s3.credentials();
    let get = |k: &str| creds.iter().find(|(n, _)| n == k).unwrap().1.clone();
    plane.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData:\n  \
         AWS_ACCESS_KEY_ID: {}\n  AWS_SECRET_ACCESS_KEY: {}\n",
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY")
    ));
}

/// The value of a Secret's key.
fn secret_value(plane: &ControlPlane, name: &str, key: &str) -> String {
    use base64::Engine;
    let (ok, out, err) = plane.kubectl(&[
        "get",
        "secret",
        name,
        "-o",
        &format!("jsonpath={{.data.{key}}}"),
    ]);
    assert!(ok, "{err}");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(out.trim())
            .unwrap(),
    )
    .unwrap()
}

/// The pods of a Job that have not finished.
fn running_pods(plane: &ControlPlane, job: &str) -> Vec<Value> {
    let pods = json_of(plane, &["get", "pods", "-l", &format!("job-name={job}")]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .cloned()
        .collect()
}

/// Runs `pod`'s container as a kubelet would (its command, arguments and
/// environment, Secrets resolved; the termination log a temp file), then
/// writes the outcome to the pod's status. Returns whether it succeeded and
/// the termination message.
fn run_as_kubelet(plane: &ControlPlane, pod: &Value) -> (bool, String) {
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["inflow"]));
    let log = tempfile::NamedTempFile::new().unwrap();
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("/dev/termination-log", log.path().to_str().unwrap())
        })
        .collect();
    let mut env: Vec<(String, String)> =
        vec![("AWS_METADATA_ENDPOINT".into(), "http://127.0.0.1:9".into())];
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = match e["value"].as_str() {
            Some(v) => v.to_string(),
            None => {
                let r = &e["valueFrom"]["secretKeyRef"];
                secret_value(
                    plane,
                    r["name"].as_str().unwrap(),
                    r["key"].as_str().unwrap(),
                )
            }
        };
        env.push((name, value));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, stderr) = run_cli_env(&args, &env);
    let message = if ok {
        std::fs::read_to_string(log.path()).unwrap()
    } else {
        // FallbackToLogsOnError: the end of the log.
        stderr.lines().rev().take(10).collect::<Vec<_>>().join("\n")
    };
    let now = "2026-01-01T00:00:00Z";
    let status = json!({"status": {
        "phase": if ok { "Succeeded" } else { "Failed" },
        "containerStatuses": [{
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "started": false,
            "state": {"terminated": {
                "exitCode": if ok { 0 } else { 1 },
                "reason": if ok { "Completed" } else { "Error" },
                "message": message,
                "startedAt": now,
                "finishedAt": now,
            }},
        }],
    }});
    let (patched, _, err) = plane.kubectl(&[
        "patch",
        "pod",
        pod["metadata"]["name"].as_str().unwrap(),
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    assert!(patched, "{err}");
    (ok, message)
}

#[tokio::test]
async fn backups_run_as_jobs_and_restore() {
    let moto = MotoServer::start().await;
    let s3 = moto.endpoint();
    for b in ["data", "backups", "restored"] {
        s3.create_bucket(b).await;
    }
    // The cluster's store, written by a real server.
    let source = TestCluster::on_s3(&s3, "data");
    let serve = source
        .start("inflow", "inflow-0", &["--wal-snapshot-size", "2"])
        .await;
    for i in 0..6 {
        serve
            .write_ok("db", &format!("cpu,host=h{} usage={i}.5 {}", i % 2, i + 1))
            .await;
    }
    let q = "SELECT host, usage, time FROM cpu ORDER BY time";
    let want = serve.query_json("db", q).await;

    let plane = ControlPlane::start_with_nodes();
    install_crds(&plane);
    let _op = operator(&plane, "only");
    keys_secret(&plane, "data-keys", &s3);
    keys_secret(&plane, "backup-keys", &s3);
    let url = s3.url();
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {{name: prod}}\n\
         spec:\n  objectStore: {{s3: {{bucket: data, endpoint: \"{url}\", credentialsSecretName: data-keys}}}}\n"
    ));
    let target = format!(
        "{{url: \"s3://backups/prod\", endpoint: \"{url}\", credentialsSecretName: backup-keys}}"
    );
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: Backup\nmetadata: {{name: first}}\n\
         spec: {{clusterRef: prod, target: {target}}}\n"
    ));
    // The Job's pod, run for real.
    let pod = eventually("the backup Job's pod running", || async {
        running_pods(&plane, "first-backup").into_iter().next()
    })
    .await;
    let (ok, summary) = run_as_kubelet(&plane, &pod);
    assert!(ok, "the Job's command failed: {summary}");
    let summary: Value = serde_json::from_str(&summary).unwrap();
    let status = eventually("the Backup Succeeded", || async {
        let b = json_of(&plane, &["get", "backup", "first"]);
        (b["status"]["phase"] == "Succeeded").then(|| b["status"].clone())
    })
    .await;
    assert_eq!(status["backupId"], summary["backupId"]);
    assert_eq!(status["catalogSeq"], summary["catalogSeq"]);
    assert_eq!(status["totalBytes"], summary["totalBytes"]);
    assert!(status["files"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(status["jobName"], "first-backup");
    assert_eq!(status["conditions"][0]["status"], "True");

    // A cluster bootstrapped from that backup: its restore Job runs before
    // any of its workloads exist, then they are made, and a server on the
    // restored store answers as the source.
    keys_secret(&plane, "restored-keys", &s3);
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {{name: copy}}\n\
         spec:\n  objectStore: {{s3: {{bucket: restored, endpoint: \"{url}\", credentialsSecretName: restored-keys}}}}\n\
         \x20 restoreFrom: {{backupId: \"{}\", target: {target}}}\n",
        status["backupId"].as_str().unwrap()
    ));
    let pod = eventually("the restore Job's pod running", || async {
        running_pods(&plane, "copy-restore").into_iter().next()
    })
    .await;
    let c = json_of(&plane, &["get", "inflowcluster", "copy"]);
    assert_eq!(c["status"]["phase"], "Restoring", "{}", c["status"]);
    let (none, _, _) = plane.kubectl(&["get", "statefulset", "copy-ingester"]);
    assert!(!none, "no ingester before the restore finished");
    let (ok, summary) = run_as_kubelet(&plane, &pod);
    assert!(ok, "the restore Job's command failed: {summary}");
    let restore = eventually("the cluster restored and deployed", || async {
        let c = json_of(&plane, &["get", "inflowcluster", "copy"]);
        let (made, _, _) = plane.kubectl(&["get", "statefulset", "copy-ingester"]);
        (c["status"]["restore"]["phase"] == "Succeeded" && made)
            .then(|| c["status"]["restore"].clone())
    })
    .await;
    assert_eq!(restore["backupId"], status["backupId"]);
    assert_eq!(restore["catalogSeq"], status["catalogSeq"]);
    let restored = TestCluster::on_s3(&s3, "restored");
    let copy = restored.start("inflow", "inflow-0", &[]).await;
    assert_eq!(copy.query_json("db", q).await, want);

    // A backup whose target cannot be written fails, with the error.
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: Backup\nmetadata: {{name: broken}}\n\
         spec: {{clusterRef: prod, target: {{url: \"s3://no-such-bucket/x\", endpoint: \"{url}\", credentialsSecretName: backup-keys}}}}\n"
    ));
    let failed = eventually("the broken Backup Failed", || async {
        for pod in running_pods(&plane, "broken-backup") {
            let (ok, _) = run_as_kubelet(&plane, &pod);
            assert!(!ok, "a backup to a missing bucket succeeded");
        }
        let b = json_of(&plane, &["get", "backup", "broken"]);
        (b["status"]["phase"] == "Failed").then(|| b["status"].clone())
    })
    .await;
    let message = failed["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("no-such-bucket") || message.contains("NoSuchBucket"),
        "{message}"
    );

    // A schedule: due at once (its last run two minutes back), it makes a
    // Backup owned by it, and keeps the newest `keep` finished ones.
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: BackupSchedule\nmetadata: {{name: nightly}}\n\
         spec: {{clusterRef: prod, schedule: \"* * * * *\", keep: 1, suspend: true, target: {target}}}\n"
    ));
    let two_minutes_ago =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(120))
            .to_string();
    eventually("the schedule's status", || async {
        let s = json_of(&plane, &["get", "backupschedule", "nightly"]);
        s["status"]["conditions"][0]["reason"]
            .as_str()
            .is_some_and(|r| r == "Suspended")
            .then_some(())
    })
    .await;
    // The two finished backups count as the schedule's (oldest first).
    for done in ["first", "broken"] {
        let (ok, _, err) = plane.kubectl(&[
            "label",
            "backup",
            done,
            "inflow.dev/backup-schedule=nightly",
        ]);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "backupschedule",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({"status": {"lastScheduleTime": two_minutes_ago}}).to_string(),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "backupschedule",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    assert!(ok, "{err}");
    // The due time missed while suspended runs on the resume, at once (a
    // reconcile between the status patch and the resume leaves it due).
    let made = eventually("a scheduled Backup", || async {
        let s = json_of(&plane, &["get", "backupschedule", "nightly"]);
        s["status"]["lastBackup"]
            .as_str()
            .filter(|b| b.starts_with("nightly-"))
            .map(str::to_string)
    })
    .await;
    let patched_minute = chrono::DateTime::parse_from_rfc3339(&two_minutes_ago)
        .expect("rfc3339")
        .format("%Y%m%d%H%M")
        .to_string();
    assert!(
        made.as_str() > format!("nightly-{patched_minute}").as_str(),
        "{made} is not after {patched_minute}"
    );
    let b = json_of(&plane, &["get", "backup", &made]);
    assert_eq!(
        b["metadata"]["ownerReferences"][0]["kind"],
        "BackupSchedule"
    );
    assert_eq!(b["spec"]["clusterRef"], "prod");
    // keep: 1 — of the two finished ones, the older goes (its Job with it).
    eventually("the oldest finished backup deleted", || async {
        let (_, gone, _) = plane.kubectl(&["get", "backup", "first", "-o", "name"]);
        let (_, kept, _) = plane.kubectl(&["get", "backup", "broken", "-o", "name"]);
        (gone.trim().is_empty() && !kept.trim().is_empty()).then_some(())
    })
    .await;
    let s = json_of(&plane, &["get", "backupschedule", "nightly"]);
    assert!(s["status"]["nextScheduleTime"].is_string(), "{s}");
}
