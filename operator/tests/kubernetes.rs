//! The operator on a real control plane (etcd and kube-apiserver built from
//! their Go modules), managing databases and tokens on a real `inflow serve`
//! that it did not deploy (`spec.external`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{eventually, install_crds, json_of, operator};
use serde_json::Value;
use test_helpers::TestServer;
use test_helpers::kube::ControlPlane;

async fn databases(inflow: &TestServer) -> Vec<Value> {
    let r = inflow
        .client()
        .get(inflow.url("/api/v3/configure/database"))
        .query(&[("format", "json")])
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

async fn write_status(inflow: &TestServer, token: &str, db: &str) -> u16 {
    inflow
        .anonymous_client()
        .post(inflow.url("/api/v3/write_lp"))
        .bearer_auth(token)
        .query(&[("db", db)])
        .body("m v=1")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn secret_token(plane: &ControlPlane, name: &str) -> Option<String> {
    use base64::Engine;
    let (ok, out, _) = plane.kubectl(&["get", "secret", name, "-o", "jsonpath={.data.token}"]);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out.trim())
        .ok()?;
    (ok && !bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_and_tokens_on_an_external_inflow() {
    let plane = ControlPlane::start();
    install_crds(&plane);

    // The schema refuses bad specs before any reconcile.
    let bad = "apiVersion: inflow.dev/v1alpha1\nkind: Database\nmetadata: {name: bad}\n\
               spec: {clusterRef: prod, name: \"no spaces\", deletionPolicy: Sometimes}\n";
    std::fs::write(plane.dir().join("bad.yaml"), bad).unwrap();
    let (ok, _, err) = plane.kubectl(&[
        "apply",
        "-f",
        plane.dir().join("bad.yaml").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("spec.name") && err.contains("deletionPolicy"),
        "{err}"
    );

    let inflow = TestServer::start().await;
    let admin = inflow.admin_token().unwrap().to_string();
    let (ok, _, err) = plane.kubectl(&[
        "create",
        "secret",
        "generic",
        "inflow-admin",
        &format!("--from-literal=token={admin}"),
    ]);
    assert!(ok, "{err}");
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {{name: prod}}\n\
         spec:\n  external:\n    url: {}\n    adminTokenSecretRef: {{name: inflow-admin}}\n",
        inflow.url("")
    ));
    let op = operator(&plane, "first");
    let phase = eventually("the cluster's phase", || async {
        let v = json_of(&plane, &["get", "inflowcluster", "prod"]);
        v["status"]["phase"].as_str().map(str::to_string)
    })
    .await;
    assert_eq!(phase, "Ready");
    // A deployed cluster: its workloads, Services, budgets and admin token Secret.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {name: deployed}\n\
         spec: {image: inflow:test, ingesters: {replicas: 2}, queriers: {replicas: 3, args: [--log-filter=debug]}}\n",
    );
    let phase = eventually("the deployed cluster's phase", || async {
        let v = json_of(&plane, &["get", "inflowcluster", "deployed"]);
        v["status"]["phase"].as_str().map(str::to_string)
    })
    .await;
    // No kubelet runs here: the pods never become ready.
    assert_eq!(phase, "Progressing");
    let sts = json_of(&plane, &["get", "statefulset", "deployed-ingester"]);
    assert_eq!(sts["spec"]["replicas"], 2);
    assert_eq!(sts["spec"]["serviceName"], "deployed-ingester-headless");
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "inflow:test");
    assert_eq!(container["command"][0], "inflow-ingester");
    assert!(
        container["args"]
            .to_string()
            .contains("--node-id=$(POD_NAME)")
    );
    assert_eq!(
        sts["metadata"]["ownerReferences"][0]["kind"],
        "InflowCluster"
    );
    let queriers = json_of(&plane, &["get", "deployment", "deployed-querier"]);
    assert_eq!(queriers["spec"]["replicas"], 3);
    assert!(
        queriers["spec"]["template"]["spec"]["containers"][0]["args"]
            .to_string()
            .contains("--log-filter=debug")
    );
    assert_eq!(
        json_of(&plane, &["get", "deployment", "deployed-compactor"])["spec"]["replicas"],
        1
    );
    for svc in [
        "deployed-ingester",
        "deployed-ingester-headless",
        "deployed-querier",
    ] {
        assert_eq!(
            json_of(&plane, &["get", "service", svc])["spec"]["ports"][0]["port"],
            8181
        );
    }
    assert_eq!(
        json_of(&plane, &["get", "service", "deployed-ingester-headless"])["spec"]["clusterIP"],
        "None"
    );
    assert_eq!(
        json_of(&plane, &["get", "pdb", "deployed-querier"])["spec"]["maxUnavailable"],
        1
    );
    assert_eq!(
        json_of(&plane, &["get", "pvc", "deployed-data"])["spec"]["accessModes"][0],
        "ReadWriteMany"
    );
    let admin_token = secret_token(&plane, "deployed-admin-token").unwrap();
    assert!(admin_token.starts_with("apiv3_"));
    // A spec edit rolls the workloads; the admin token stays.
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "inflowcluster",
        "deployed",
        "--type=merge",
        "-p",
        r#"{"spec":{"ingesters":{"replicas":4},"image":"inflow:next"}}"#,
    ]);
    assert!(ok, "{err}");
    eventually("the edit applied", || async {
        let sts = json_of(&plane, &["get", "statefulset", "deployed-ingester"]);
        (sts["spec"]["replicas"] == 4
            && sts["spec"]["template"]["spec"]["containers"][0]["image"] == "inflow:next")
            .then_some(())
    })
    .await;
    assert_eq!(
        secret_token(&plane, "deployed-admin-token").as_deref(),
        Some(admin_token.as_str())
    );

    // A Database makes a database, with its retention.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Database\nmetadata: {name: metrics}\n\
         spec: {clusterRef: prod, retentionPeriod: 30d, deletionPolicy: Delete}\n",
    );
    eventually("the database", || async {
        databases(&inflow)
            .await
            .into_iter()
            .find(|d| d["iox::database"] == "metrics" && !d["retention_period"].is_null())
    })
    .await;
    let status = eventually("Ready", || async {
        let v = json_of(&plane, &["get", "database", "metrics"]);
        (v["status"]["conditions"][0]["status"] == "True").then_some(v)
    })
    .await;
    assert_eq!(status["status"]["databaseName"], "metrics");
    assert!(
        status["metadata"]["finalizers"]
            .to_string()
            .contains("inflow.dev/database")
    );

    // Dropped behind the operator's back: it comes back within the resync.
    let r = inflow
        .client()
        .delete(inflow.url("/api/v3/configure/database"))
        .query(&[("db", "metrics")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the database back", || async {
        databases(&inflow)
            .await
            .into_iter()
            .find(|d| d["iox::database"] == "metrics")
    })
    .await;

    // A Token: its string in the Secret, allowed on its database only.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Token\nmetadata: {name: writer}\n\
         spec:\n  clusterRef: prod\n  secretName: writer-token\n  permissions:\n\
         \x20 - {resourceType: db, resourceNames: [metrics], actions: [read, write]}\n",
    );
    let token = eventually("the token Secret", || async {
        secret_token(&plane, "writer-token")
    })
    .await;
    assert!(token.starts_with("apiv3_"), "{token}");
    assert_eq!(write_status(&inflow, &token, "metrics").await, 204);
    assert_eq!(write_status(&inflow, &token, "other").await, 403);

    // A restarted operator (a new leader after the lease expires) keeps the token.
    drop(op);
    let op = operator(&plane, "second");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        secret_token(&plane, "writer-token").as_deref(),
        Some(token.as_str())
    );

    // Rotation replaces it; the old string stops working.
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "token",
        "writer",
        "--type=merge",
        "-p",
        r#"{"spec":{"rotate":"1"}}"#,
    ]);
    assert!(ok, "{err}");
    let rotated = eventually("a new token", || async {
        secret_token(&plane, "writer-token").filter(|t| *t != token)
    })
    .await;
    assert_eq!(write_status(&inflow, &rotated, "metrics").await, 204);
    assert_eq!(write_status(&inflow, &token, "metrics").await, 401);

    // A Database of a cluster that does not exist reports why.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Database\nmetadata: {name: orphan}\nspec: {clusterRef: nope}\n",
    );
    let reason = eventually("the orphan's condition", || async {
        let v = json_of(&plane, &["get", "database", "orphan"]);
        v["status"]["conditions"][0]["reason"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    assert_eq!(reason, "ClusterUnavailable");

    // What happened is in the objects' Events (`kubectl describe`).
    let reasons = |kind: &'static str, name: &'static str| {
        let events = json_of(&plane, &["get", "events.events.k8s.io"]);
        events["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|e| e["regarding"]["kind"] == kind && e["regarding"]["name"] == name)
                    .map(|e| {
                        format!(
                            "{}/{}",
                            e["type"].as_str().unwrap_or(""),
                            e["reason"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let db_events = eventually("the database's events", || async {
        let r = reasons("Database", "metrics");
        (r.contains(&"Normal/Created".to_string())).then_some(r)
    })
    .await;
    assert!(
        db_events.contains(&"Normal/Created".to_string()),
        "{db_events:?}"
    );
    let token_events = reasons("Token", "writer");
    assert!(
        token_events
            .iter()
            .filter(|r| *r == "Normal/Issued")
            .count()
            >= 1,
        "{token_events:?}"
    );
    let orphan = eventually("the orphan's warning", || async {
        let r = reasons("Database", "orphan");
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(orphan, vec!["Warning/ClusterUnavailable".to_string()]);

    // Deleting the resources deletes the token and (policy Delete) the database.
    let (ok, _, err) = plane.kubectl(&["delete", "token", "writer", "--timeout=30s"]);
    assert!(ok, "{err}");
    assert_eq!(write_status(&inflow, &rotated, "metrics").await, 401);
    let (ok, _, err) = plane.kubectl(&["delete", "database", "metrics", "--timeout=30s"]);
    assert!(ok, "{err}");
    assert!(
        !databases(&inflow)
            .await
            .iter()
            .any(|d| d["iox::database"] == "metrics")
    );
    drop(op);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployed_cluster_becomes_ready_on_fake_nodes() {
    let plane = ControlPlane::start_with_nodes();
    install_crds(&plane);
    let _op = operator(&plane, "only");
    // S3: no volume claim to bind, so the pods schedule on the fake node.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {name: fleet}\n\
         spec:\n  ingesters: {replicas: 2}\n  queriers: {replicas: 1}\n\
         \x20 objectStore: {s3: {bucket: inflow, endpoint: \"http://s3:9000\"}}\n",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let v = json_of(&plane, &["get", "inflowcluster", "fleet"]);
        if v["status"]["phase"] == "Ready" {
            break v["status"].clone();
        }
        if Instant::now() > deadline {
            let (_, pods, _) =
                plane.kubectl(&["get", "nodes,pods,statefulsets,deployments", "-o", "wide"]);
            panic!(
                "the cluster is not Ready: {}\n{pods}\nscheduler:\n{}\nkwok:\n{}\ncontroller-manager:\n{}",
                v["status"],
                plane.log("scheduler.log"),
                plane.log("kwok.log"),
                plane.log("controller-manager.log")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(status["readyReplicas"]["ingester"], 2);
    assert_eq!(status["readyReplicas"]["querier"], 1);
    assert_eq!(status["readyReplicas"]["compactor"], 1);
    assert_eq!(status["conditions"][0]["status"], "True");
    // The ingester pods are named as their node ids, fleet-ingester-0 and -1.
    let pods = json_of(
        &plane,
        &["get", "pods", "-l", "app.kubernetes.io/component=ingester"],
    );
    let mut names: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["fleet-ingester-0", "fleet-ingester-1"]);
    // Scaling the queriers: Progressing, then Ready with the new count.
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "inflowcluster",
        "fleet",
        "--type=merge",
        "-p",
        r#"{"spec":{"queriers":{"replicas":3}}}"#,
    ]);
    assert!(ok, "{err}");
    eventually("three ready queriers", || async {
        let v = json_of(&plane, &["get", "inflowcluster", "fleet"]);
        (v["status"]["phase"] == "Ready" && v["status"]["readyReplicas"]["querier"] == 3)
            .then_some(())
    })
    .await;
}

/// The rows of `q` in database `db` of `inflow`.
async fn rows(inflow: &TestServer, db: &str, q: &str) -> Vec<Value> {
    let r = inflow
        .client()
        .get(inflow.url("/api/v3/query_sql"))
        .query(&[("db", db), ("q", q), ("format", "json")])
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Vec::new();
    }
    r.json().await.unwrap_or_default()
}

async fn server_triggers(inflow: &TestServer) -> Vec<Value> {
    rows(
        inflow,
        "metrics",
        "SELECT trigger_name, plugin_filename, trigger_specification, disabled, trigger_arguments \
         FROM system.processing_engine_triggers ORDER BY trigger_name",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_on_an_external_inflow() {
    let plane = ControlPlane::start();
    install_crds(&plane);

    // The schema refuses a specification of no known kind.
    let bad = "apiVersion: inflow.dev/v1alpha1\nkind: Trigger\nmetadata: {name: bad}\n\
               spec: {clusterRef: prod, database: metrics, specification: sometimes, \
               plugin: {filename: a.py}}\n";
    std::fs::write(plane.dir().join("bad.yaml"), bad).unwrap();
    let (ok, _, err) = plane.kubectl(&[
        "apply",
        "-f",
        plane.dir().join("bad.yaml").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("spec.specification"), "{err}");

    let plugins = tempfile::tempdir().unwrap();
    let inflow = TestServer::start_with(&["--plugin-dir", plugins.path().to_str().unwrap()]).await;
    inflow.write_ok("metrics", "cpu,host=a usage=1 1").await;
    let admin = inflow.admin_token().unwrap().to_string();
    let (ok, _, err) = plane.kubectl(&[
        "create",
        "secret",
        "generic",
        "inflow-admin",
        &format!("--from-literal=token={admin}"),
    ]);
    assert!(ok, "{err}");
    plane.apply(&format!(
        "apiVersion: inflow.dev/v1alpha1\nkind: InflowCluster\nmetadata: {{name: prod}}\n\
         spec:\n  external:\n    url: {}\n    adminTokenSecretRef: {{name: inflow-admin}}\n",
        inflow.url("")
    ));
    // The plugin's source in a ConfigMap.
    let source = "def process_writes(influxdb3_local, table_batches, args):\n\
                  \x20   for b in table_batches:\n\
                  \x20       for r in b['rows']:\n\
                  \x20           influxdb3_local.write(LineBuilder(args['into']).float64_field('usage', r['usage']).time_ns(r['time']))\n";
    let (ok, _, err) = plane.kubectl(&[
        "create",
        "configmap",
        "plugins",
        &format!("--from-literal=copy.py={source}"),
    ]);
    assert!(ok, "{err}");
    let _op = operator(&plane, "only");
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Trigger\nmetadata: {name: copy}\n\
         spec:\n  clusterRef: prod\n  database: metrics\n  specification: table:cpu\n\
         \x20 arguments: {into: cpu_copy}\n\
         \x20 plugin: {filename: copy.py, configMapRef: {name: plugins, key: copy.py}}\n",
    );
    let status = eventually("the trigger Ready", || async {
        let v = json_of(&plane, &["get", "trigger", "copy"]);
        (v["status"]["conditions"][0]["status"] == "True").then_some(v)
    })
    .await;
    assert_eq!(status["status"]["triggerName"], "copy");
    assert!(
        status["metadata"]["finalizers"]
            .to_string()
            .contains("inflow.dev/trigger")
    );
    assert_eq!(
        std::fs::read_to_string(plugins.path().join("copy.py")).unwrap(),
        source
    );
    assert_eq!(
        server_triggers(&inflow).await,
        vec![serde_json::json!({
            "trigger_name": "copy", "plugin_filename": "copy.py",
            "trigger_specification": "table:cpu", "disabled": false,
            "trigger_arguments": "{\"into\":\"cpu_copy\"}",
        })]
    );
    // It runs: a write to cpu is copied.
    inflow.write_ok("metrics", "cpu,host=a usage=7 100").await;
    eventually("the copied row", || async {
        let r = rows(&inflow, "metrics", "SELECT usage FROM cpu_copy").await;
        (r == vec![serde_json::json!({"usage": 7.0})]).then_some(())
    })
    .await;

    // Deleted behind the operator's back: it comes back within the resync.
    let r = inflow
        .client()
        .delete(inflow.url("/api/v3/configure/processing_engine_trigger"))
        .query(&[
            ("db", "metrics"),
            ("trigger_name", "copy"),
            ("force", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the trigger back", || async {
        (server_triggers(&inflow).await.len() == 1).then_some(())
    })
    .await;

    // Disabled from the spec; a changed argument replaces the trigger.
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "trigger",
        "copy",
        "--type=merge",
        "-p",
        r#"{"spec":{"disabled":true}}"#,
    ]);
    assert!(ok, "{err}");
    eventually("the trigger disabled", || async {
        (server_triggers(&inflow).await.first()?["disabled"] == true).then_some(())
    })
    .await;
    let (ok, _, err) = plane.kubectl(&[
        "patch",
        "trigger",
        "copy",
        "--type=merge",
        "-p",
        r#"{"spec":{"disabled":false,"arguments":{"into":"cpu_again"}}}"#,
    ]);
    assert!(ok, "{err}");
    eventually("the new arguments", || async {
        let t = server_triggers(&inflow).await;
        let t = t.first()?;
        (t["disabled"] == false && t["trigger_arguments"] == "{\"into\":\"cpu_again\"}")
            .then_some(())
    })
    .await;

    // An inline source, on a request path.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Trigger\nmetadata: {name: hello}\n\
         spec:\n  clusterRef: prod\n  database: metrics\n  specification: request:hello\n\
         \x20 plugin:\n    filename: hello.py\n    source: |\n\
         \x20     def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n\
         \x20         return {'hello': query_parameters.get('name')}\n",
    );
    let body = eventually("the request trigger", || async {
        let r = inflow
            .client()
            .get(inflow.url("/api/v3/engine/hello?name=k8s"))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        r.json::<Value>().await.ok()
    })
    .await;
    assert_eq!(body, serde_json::json!({"hello": "k8s"}));

    // A missing ConfigMap is reported in the condition.
    plane.apply(
        "apiVersion: inflow.dev/v1alpha1\nkind: Trigger\nmetadata: {name: lost}\n\
         spec:\n  clusterRef: prod\n  database: metrics\n  specification: all_tables\n\
         \x20 plugin: {filename: lost.py, configMapRef: {name: nowhere, key: lost.py}}\n",
    );
    let message = eventually("the lost trigger's condition", || async {
        let v = json_of(&plane, &["get", "trigger", "lost"]);
        v["status"]["conditions"][0]["message"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    assert!(message.contains("ConfigMap default/nowhere"), "{message}");

    // Deleting the resources deletes the triggers.
    for name in ["copy", "hello", "lost"] {
        let (ok, _, err) = plane.kubectl(&["delete", "trigger", name, "--timeout=30s"]);
        assert!(ok, "{err}");
    }
    assert!(server_triggers(&inflow).await.is_empty());
}
