//! Split roles as a cluster on the local file store: node-id leases, the
//! node registry, compactor failover, queriers that only read the catalog,
//! and metrics scraped by a real Prometheus. The scenarios shared with the
//! S3 tests are in `scenarios/`.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

mod scenarios;

use std::time::{Duration, Instant};

use scenarios::{TAIL, eventually};
use test_helpers::{TestCluster, TestServer};

/// Each shared scenario as a test on a fresh local file store.
macro_rules! on_the_file_store {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            scenarios::$name(&TestCluster::new()).await;
        }
    )*};
}

scenarios::every_scenario!(on_the_file_store);

/// A second live process with a node id already held refuses to start,
/// naming the holder, well before the lease timeout; the holder keeps
/// working. The same for two `inflow serve` on one data directory.
#[tokio::test]
async fn a_second_process_with_one_node_id_refuses_to_start() {
    let cluster = TestCluster::new();
    let first = cluster.start("inflow-ingester", "ing-0", &[]).await;
    let started = Instant::now();
    let err = cluster
        .try_start("inflow-ingester", "ing-0", &[])
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused promptly"
    );
    assert!(
        err.contains("node id ing-0") && err.contains("held by a live process"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "at {}",
            first.url("").trim_start_matches("http://")
        )),
        "names the holder: {err}"
    );
    first.write_ok("db", "m v=1 1").await;

    let serve = TestServer::start().await;
    let err = TestServer::try_start("inflow", &["serve"], &[], serve.temp_dir())
        .await
        .unwrap_err();
    assert!(
        err.contains("node id inflow-0") && err.contains("held by a live process"),
        "{err}"
    );
    serve.write_ok("db", "m v=1 1").await;
}

/// Every role's metrics, scraped by a real Prometheus and read back
/// through its HTTP API: process metrics, buffer bytes, persists and
/// compactions, the catalog sequence, replication per ingester, and
/// object-store requests by kind and outcome.
#[tokio::test]
async fn every_role_is_scraped_by_prometheus() {
    let cluster = TestCluster::new();
    let open = ["--disable-authz", "metrics"];
    // Persists after every third WAL file: seven writes leave two files to
    // compact and one WAL file the querier certainly applies.
    let ingester = cluster
        .start(
            "inflow-ingester",
            "ing-0",
            &[&open[..], &["--wal-snapshot-size", "3"]].concat(),
        )
        .await;
    let querier = cluster
        .start("inflow-querier", "q-0", &[&open[..], TAIL].concat())
        .await;
    let compactor = cluster
        .start(
            "inflow-compactor",
            "c-0",
            &[&open[..], &["--retention-check-interval", "100ms"]].concat(),
        )
        .await;
    for i in 0..7u64 {
        ingester
            .write_ok("db", &format!("m,h=h{} v={i}i {}", i % 2, i + 1))
            .await;
    }
    let host = |s: &TestServer| s.url("").trim_start_matches("http://").to_string();
    let prometheus = test_helpers::Prometheus::start(&[
        ("ingester", host(&ingester)),
        ("querier", host(&querier)),
        ("compactor", host(&compactor)),
    ])
    .await;
    let value = |q: &'static str| {
        let p = &prometheus;
        async move { p.query(q).await.first().map(|(_, v)| *v) }
    };
    // On all three processes.
    for q in [
        "count(process_resident_memory_bytes > 0)",
        "count(process_open_fds > 0)",
        "count(process_cpu_seconds_total)",
        "count(inflow_catalog_sequence > 0)",
    ] {
        eventually(20, q, || async {
            (value(q).await == Some(3.0)).then_some(())
        })
        .await;
    }
    for q in [
        r#"inflow_persists_total{job="ingester",result="ok"}"#,
        r#"inflow_persisted_rows_total{job="ingester"}"#,
        r#"inflow_replication_wal_files_total{job="querier",node="ing-0"}"#,
        r#"inflow_object_store_requests_total{job="ingester",op="put_conditional",outcome="ok"}"#,
        r#"inflow_object_store_requests_total{job="querier",op="list",outcome="ok"}"#,
        r#"inflow_compactions_total{job="compactor",result="ok"}"#,
        r#"inflow_compacted_files_total{job="compactor"}"#,
        r#"inflow_node_lease_epoch{job="querier",node="q-0"}"#,
    ] {
        eventually(30, q, || async {
            value(q).await.filter(|v| *v > 0.0).map(|_| ())
        })
        .await;
    }
    // Present even when zero: the buffer and the replication lag.
    eventually(10, "buffer and lag gauges", || async {
        let buffer = prometheus
            .query(r#"inflow_buffer_bytes{job="querier"}"#)
            .await;
        let lag = prometheus
            .query(r#"inflow_replication_lag_seconds{job="querier",node="ing-0"}"#)
            .await;
        (!buffer.is_empty() && !lag.is_empty()).then_some(())
    })
    .await;
}

/// Scaling ingesters down under continuous writes: the ingester that goes
/// gets SIGTERM (what Kubernetes sends a pod it stops), answers what it
/// accepted, persists its buffer to Parquet and leaves no WAL behind; every
/// acknowledged row is queryable afterwards, and none twice.
#[tokio::test]
async fn an_ingester_scaled_down_under_writes_loses_no_acknowledged_row() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let cluster = TestCluster::new();
    let stays = cluster.start("inflow-ingester", "ing-a", &[]).await;
    let goes = cluster.start("inflow-ingester", "ing-b", &[]).await;
    let (st, body) = stays
        .post_json(
            "/api/v3/configure/database",
            &serde_json::json!({"db": "db"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let acked: Arc<Mutex<BTreeSet<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = |name: &'static str, url: String, client: reqwest::Client| {
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = client
                    .post(format!("{url}/api/v3/write_lp"))
                    .query(&[("db", "db"), ("precision", "nanosecond")])
                    .body(format!("m,w={name} n={n}i {n}"))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 204) {
                    acked.lock().unwrap().insert((name.to_string(), n));
                }
            }
        })
    };
    let a = writer("a", stays.url(""), stays.client().clone());
    let b = writer("b", goes.url(""), goes.client().clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    // ing-b goes while its writer still writes.
    let mut goes = goes;
    goes.terminate();
    let status = goes
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("ing-b exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::join!(a, b);
    let acked = acked.lock().unwrap().clone();
    let from_b = acked.iter().filter(|(w, _)| w == "b").count();
    assert!(from_b > 10, "ing-b acknowledged only {from_b} writes");

    // ing-b left no WAL file: its rows are in Parquet files.
    assert!(
        cluster.objects("wal/ing-b").await.is_empty(),
        "{:?}",
        cluster.objects("wal/ing-b").await
    );
    // A querier started afterwards answers every acknowledged row once.
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = querier
            .try_rows("db", "SELECT w, n FROM m ORDER BY w, n")
            .await
            .unwrap_or_default();
        if rows.len() >= acked.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seen: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["w"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let unique: BTreeSet<(String, u64)> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a row came twice");
    let missing: Vec<_> = acked.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not queryable: {missing:?}"
    );
}

/// An ingester killed with its buffer unpersisted, whose node id never
/// comes back (a scale-down that went wrong): a running ingester adopts its
/// WAL once its heartbeat has been silent for `--adopt-orphan-wal-after`
/// (takes its node lease, replays, persists, deletes), so its acknowledged
/// rows reach Parquet; the node id is free again afterwards.
#[tokio::test]
async fn a_dead_ingesters_wal_is_adopted_by_another() {
    let cluster = TestCluster::new();
    let adopt = [
        "--adopt-orphan-wal-after",
        "1s",
        "--orphan-wal-check-interval",
        "200ms",
    ];
    let _stays = cluster.start("inflow-ingester", "ing-a", &adopt).await;
    let mut dies = cluster.start("inflow-ingester", "ing-b", &[]).await;
    for i in 1..=20 {
        dies.write_ok("db", &format!("m,w=b n={i}i {i}")).await;
    }
    assert!(!cluster.objects("wal/ing-b").await.is_empty());
    dies.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cluster.objects("wal/ing-b").await.is_empty() {
        assert!(Instant::now() < deadline, "ing-b's WAL was not adopted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its rows are in Parquet now, once each.
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = querier
            .try_rows("db", "SELECT count(*) AS n, count(DISTINCT n) AS d FROM m")
            .await
            .unwrap_or_default();
        if rows == vec![serde_json::json!({"n": 20, "d": 20})] {
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let files = querier
        .query_json(
            "db",
            "SELECT sum(row_count) AS rows FROM system.parquet_files WHERE table_name = 'm'",
        )
        .await;
    assert_eq!(files, vec![serde_json::json!({"rows": 20})]);
    // The lease was let go: a process with the node id starts at once, with
    // nothing left to replay.
    let back = cluster.start("inflow-ingester", "ing-b", &[]).await;
    back.write_ok("db", "m,w=b n=21i 21").await;
}

/// The ingester pod's preStop hook, `inflow-ingester drain`, run as the
/// kubelet runs it: the node stops taking writes (503, and `/health` 503 so
/// the Service drops it), persists its buffer and deletes its WAL; the
/// SIGTERM after it finds nothing left to do.
#[tokio::test]
async fn the_prestop_drain_persists_and_refuses_new_writes() {
    let cluster = TestCluster::new();
    let mut ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    for i in 1..=10 {
        ingester.write_ok("db", &format!("m n={i}i {i}")).await;
    }
    assert!(!cluster.objects("wal/ing-0").await.is_empty());
    let token_file = ingester.temp_dir().path().join("admin-token");
    let out = std::process::Command::new(test_helpers::bin_path("inflow-ingester"))
        .args(["drain", "--url", &ingester.url(""), "--token-file"])
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"persisted":true}"#
    );
    assert!(cluster.objects("wal/ing-0").await.is_empty());
    let health = ingester
        .client()
        .get(ingester.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let r = ingester.write_lp("db", "m n=11i 11").await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("stopping"));
    // Without the token the hook is refused.
    let out = std::process::Command::new(test_helpers::bin_path("inflow-ingester"))
        .args(["drain", "--url", &ingester.url("")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    ingester.terminate();
    let status = ingester.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert!(status.success(), "{status:?}");
    // The ten rows are in Parquet.
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    let rows = querier
        .query_json(
            "db",
            "SELECT sum(row_count) AS rows FROM system.parquet_files WHERE table_name = 'm'",
        )
        .await;
    assert_eq!(rows, vec![serde_json::json!({"rows": 10})]);
}

/// A querier stopped (SIGTERM) while it answers a query finishes that
/// answer before it exits, and takes no new request meanwhile.
#[tokio::test]
async fn a_stopped_querier_finishes_its_running_queries() {
    let cluster = TestCluster::new();
    let ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    ingester.write_ok("db", "m v=1 1").await;
    let mut querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    let client = querier.client().clone();
    let url = querier.url("/api/v3/query_sql");
    let slow = tokio::spawn(async move {
        client
            .get(url)
            .query(&[
                ("db", "db"),
                (
                    "q",
                    "SELECT count(*) AS n FROM generate_series(1, 600000) t, m",
                ),
            ])
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !slow.is_finished(),
        "the query was not slow enough to overlap"
    );
    querier.terminate();
    let answer = slow.await.unwrap();
    assert_eq!(answer.status(), 200);
    let rows: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(rows, serde_json::json!([{"n": 600000}]));
    let status = querier.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert!(status.success(), "{status:?}");
}
