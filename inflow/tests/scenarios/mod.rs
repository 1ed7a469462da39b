//! The cluster scenarios, each a function over a [`TestCluster`], so the
//! same steps run on the local file store (`cluster.rs`) and on S3
//! servers (`s3.rs`). Real role binaries, 100 ms heartbeats, a 1 s lease
//! timeout.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_helpers::TestCluster;

/// Calls macro `$run` with the name of every scenario, so each store's
/// test file runs them all.
macro_rules! every_scenario {
    ($run:ident) => {
        $run!(
            a_killed_ingester_is_replaced_and_no_acknowledged_write_is_lost,
            the_standby_compactor_takes_over_within_the_lease_timeout,
            system_nodes_and_node_stop,
            queriers_only_read_the_catalog,
            writes_over_two_ingesters_reach_both_queriers,
            compaction_under_queries,
            a_late_querier_warms_from_the_object_store_alone,
            predicate_deletes_across_roles,
        );
    };
}
pub(crate) use every_scenario;

pub(crate) const TAIL: &[&str] = &["--replication-interval", "20ms"];

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Continuous writes to an ingester that is killed with SIGKILL; its
/// replacement (same node id) waits out the lease, replays the WAL, and
/// takes more writes. Every acknowledged row is on both queriers exactly
/// once. Persists run throughout (`--wal-snapshot-size 4`).
pub(crate) async fn a_killed_ingester_is_replaced_and_no_acknowledged_write_is_lost(
    cluster: &TestCluster,
) {
    let ingest_flags = ["--wal-snapshot-size", "4"];
    let mut ingester = cluster
        .start("inflow-ingester", "ing-0", &ingest_flags)
        .await;
    let queriers = [
        cluster.start("inflow-querier", "q-0", TAIL).await,
        cluster.start("inflow-querier", "q-1", TAIL).await,
    ];
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    // Writers hammer the first ingester until it dies.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (client, url, acked) = (
            ingester.client().clone(),
            ingester.url("/api/v3/write_lp"),
            Arc::clone(&acked),
        );
        writers.push(tokio::spawn(async move {
            for i in 0..10_000u64 {
                let id = w * 1_000_000 + i;
                let sent = client
                    .post(&url)
                    .query(&[("db", "db"), ("precision", "nanosecond")])
                    .body(format!("m,id={id} v={id}i {}", id + 1))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 204 => acked.lock().unwrap().push(id),
                    Ok(r) => panic!(
                        "write failed: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    ),
                    Err(_) => return, // the ingester is gone
                }
            }
        }));
    }
    eventually(10, "some acknowledged writes", || async {
        (acked.lock().unwrap().len() >= 40).then_some(())
    })
    .await;
    ingester.kill();
    for w in writers {
        w.await.unwrap();
    }
    let before = acked.lock().unwrap().len();
    ingester.restart().await;
    for i in 0..20u64 {
        let id = 9_000_000 + i;
        ingester
            .write_ok("db", &format!("m,id={id} v={id}i {}", id + 1))
            .await;
        acked.lock().unwrap().push(id);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(before >= 40, "{before}");
    for q in &queriers {
        let got = eventually(20, "every acknowledged row on the querier", || async {
            let got = q
                .try_rows("db", "SELECT id, count(*) AS n FROM m GROUP BY id")
                .await?;
            let counts: HashMap<String, u64> = got
                .iter()
                .map(|r| {
                    (
                        r["id"].as_str().unwrap().to_string(),
                        r["n"].as_u64().unwrap(),
                    )
                })
                .collect();
            acked
                .iter()
                .all(|id| counts.contains_key(&id.to_string()))
                .then_some(counts)
        })
        .await;
        assert!(got.values().all(|n| *n == 1), "every row exactly once");
    }
}

/// Two compactors: one holds the compactor lease, the other stands by and
/// takes over within the lease timeout once the first is killed.
pub(crate) async fn the_standby_compactor_takes_over_within_the_lease_timeout(
    cluster: &TestCluster,
) {
    let _ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    let mut a = cluster.start("inflow-compactor", "c-0", &[]).await;
    let _b = cluster.start("inflow-compactor", "c-1", &[]).await;
    let first = eventually(10, "a compactor", || async {
        cluster.compactor_holder().await
    })
    .await;
    assert_eq!(first, "c-0", "the first compactor is active");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cluster.compactor_holder().await.as_deref(),
        Some("c-0"),
        "the standby waits while c-0 lives"
    );
    a.kill();
    let killed = Instant::now();
    eventually(10, "the standby to take over", || async {
        (cluster.compactor_holder().await.as_deref() == Some("c-1")).then_some(())
    })
    .await;
    let took = killed.elapsed();
    // The lease timeout is 1 s; a standby polls every half heartbeat.
    assert!(
        took < Duration::from_millis(2_500),
        "took over after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "not before the timeout: {took:?}"
    );
}

/// `system.nodes` lists every process with its roles and state; a node
/// marked stopped through the API frees its id at once.
pub(crate) async fn system_nodes_and_node_stop(cluster: &TestCluster) {
    let ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    // A long lease: without the stop, a restart would wait 30 s.
    let mut q0 = cluster
        .start("inflow-querier", "q-0", &["--node-lease-timeout", "30s"])
        .await;
    let _c0 = cluster.start("inflow-compactor", "c-0", &[]).await;
    let q = "SELECT node_id, mode, state, address FROM system.nodes ORDER BY node_id";
    let nodes = eventually(10, "system.nodes", || async {
        q0.try_rows("_internal", q).await
    })
    .await;
    let view: Vec<(String, Value, String)> = nodes
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap().to_string(),
                n["mode"].clone(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            ("c-0".into(), json!(["compact"]), "running".into()),
            ("ing-0".into(), json!(["ingest"]), "running".into()),
            ("q-0".into(), json!(["query"]), "running".into()),
        ]
    );
    assert_eq!(
        nodes[1]["address"],
        json!(ingester.url("").trim_start_matches("http://"))
    );
    // Without a token: 401.
    let r = ingester
        .anonymous_client()
        .get(q0.url("/api/v3/query_sql"))
        .query(&[("db", "_internal"), ("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    q0.kill();
    let stop = |id: &str| {
        ingester
            .client()
            .post(ingester.url("/api/v3/enterprise/configure/node/stop"))
            .json(&json!({"node_id": id}))
            .send()
    };
    assert_eq!(stop("q-0").await.unwrap().status(), 200);
    let r = stop("nobody").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "node 'nobody' not found"})
    );
    let r = ingester
        .client()
        .post(ingester.url("/api/v3/enterprise/configure/node/stop"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let started = Instant::now();
    q0.restart().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stopped node's id is free at once"
    );
    let q1 = cluster.start("inflow-querier", "q-1", &[]).await;
    let nodes = q1
        .try_rows(
            "_internal",
            "SELECT node_id, state, epoch FROM system.nodes WHERE node_id = 'q-0'",
        )
        .await
        .unwrap();
    assert_eq!(
        nodes,
        vec![json!({"node_id": "q-0", "state": "running", "epoch": 2})]
    );
}

/// A querier started on an empty store writes no catalog transaction, and
/// refuses writes and catalog changes with 421; once an ingester runs, it
/// follows the catalog and the WAL.
pub(crate) async fn queriers_only_read_the_catalog(cluster: &TestCluster) {
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    assert_eq!(
        cluster.catalog_log_files().await,
        0,
        "the querier created no catalog"
    );
    let r = querier
        .client()
        .post(querier.url("/api/v3/configure/database"))
        .json(&json!({"db": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    let msg = r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("no ingester is running"), "{msg}");
    let r = querier
        .client()
        .post(querier.url("/api/v2/write"))
        .query(&[("bucket", "db")])
        .body("m v=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid");
    assert_eq!(cluster.catalog_log_files().await, 0);

    let ingester = cluster.start("inflow-ingester", "ing-0", &[]).await;
    ingester.write_ok("db", "m,h=a v=1 1").await;
    ingester.write_ok("db", "m,h=a v=2,w=3i 2\nn x=1 3").await;
    let got = eventually(10, "the rows on the querier", || async {
        let r = querier
            .try_rows("db", "SELECT h, v, w FROM m ORDER BY time")
            .await?;
        (r.len() == 2).then_some(r)
    })
    .await;
    assert_eq!(
        got,
        vec![
            json!({"h": "a", "v": 1.0}),
            json!({"h": "a", "v": 2.0, "w": 3})
        ]
    );
    let r = querier
        .client()
        .post(querier.url("/api/v3/configure/database"))
        .json(&json!({"db": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    let msg = r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("send them to an ingester: ing-0 at"), "{msg}");
}

/// Writes spread over two ingesters are visible on both queriers. The lag
/// from acknowledgement to visibility is printed (benchmarks measure it;
/// tests only bound it).
pub(crate) async fn writes_over_two_ingesters_reach_both_queriers(cluster: &TestCluster) {
    let ingesters = [
        cluster.start("inflow-ingester", "ing-0", &[]).await,
        cluster.start("inflow-ingester", "ing-1", &[]).await,
    ];
    let queriers = [
        cluster.start("inflow-querier", "q-0", TAIL).await,
        cluster.start("inflow-querier", "q-1", TAIL).await,
    ];
    for i in 0..20u64 {
        let ingester = &ingesters[(i % 2) as usize];
        ingester
            .write_ok("db", &format!("m,i={i},via=ing-{} v={i}i {}", i % 2, i + 1))
            .await;
    }
    let acked = Instant::now();
    for q in &queriers {
        let got = eventually(20, "both ingesters' rows", || async {
            let r = q
                .try_rows(
                    "db",
                    "SELECT via, count(*) AS n, sum(v) AS s FROM m GROUP BY via ORDER BY via",
                )
                .await?;
            (r.len() == 2 && r.iter().all(|x| x["n"] == 10)).then_some(r)
        })
        .await;
        eprintln!(
            "visible on a querier {:?} after the last acknowledgement",
            acked.elapsed()
        );
        assert_eq!(
            got,
            vec![
                json!({"via": "ing-0", "n": 10, "s": 90}),
                json!({"via": "ing-1", "n": 10, "s": 100})
            ]
        );
    }
}

/// Compaction runs while a querier answers the same query over and over:
/// the file count falls, every answer is the same, and no query fails on a
/// file compaction removed (removed files outlive the grace period of the
/// queries that planned with them).
pub(crate) async fn compaction_under_queries(cluster: &TestCluster) {
    let ingester = cluster
        .start("inflow-ingester", "ing-0", &["--wal-snapshot-size", "1"])
        .await;
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    for i in 0..12u64 {
        ingester
            .write_ok("db", &format!("m,h=h{} v={i}i {}", i % 3, i + 1))
            .await;
    }
    // Every row persisted, in several files (how many depends on how fast
    // the store takes each persist: on S3 a persist may cover several WAL
    // files).
    let count = "SELECT count(*) AS n, sum(row_count) AS r FROM system.parquet_files";
    let before = eventually(20, "every row persisted in several files", || async {
        let r = querier.try_rows("db", count).await?;
        let (n, rows) = (r[0]["n"].as_u64()?, r[0]["r"].as_u64()?);
        (n >= 2 && rows == 12).then_some(n)
    })
    .await;
    let q = "SELECT h, count(*) AS n, sum(v) AS s FROM m GROUP BY h ORDER BY h";
    let want = eventually(10, "all rows", || async {
        let r = querier.try_rows("db", q).await?;
        (r.iter().map(|x| x["n"].as_u64().unwrap_or(0)).sum::<u64>() == 12).then_some(r)
    })
    .await;
    let _compactor = cluster
        .start(
            "inflow-compactor",
            "c-0",
            &[
                "--retention-check-interval",
                "100ms",
                "--gc-grace-period",
                "2s",
            ],
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answers = 0;
    loop {
        let r = querier.query("db", q, "json").await;
        assert_eq!(
            r.status(),
            200,
            "no query fails during compaction: {}",
            r.text().await.unwrap()
        );
        assert_eq!(
            r.json::<Vec<Value>>().await.unwrap(),
            want,
            "the same answer during compaction"
        );
        answers += 1;
        let now = querier.try_rows("db", count).await.unwrap()[0]["n"]
            .as_u64()
            .unwrap();
        if now < before && answers > 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "compaction never reduced the {before} files"
        );
    }
}

/// A querier started after the ingester is gone warms from the object
/// store alone: the Parquet files and the WAL files not yet persisted.
pub(crate) async fn a_late_querier_warms_from_the_object_store_alone(cluster: &TestCluster) {
    let mut ingester = cluster
        .start("inflow-ingester", "ing-0", &["--wal-snapshot-size", "3"])
        .await;
    for i in 0..8u64 {
        ingester
            .write_ok("db", &format!("m,h=h{i} v={i}i {}", i + 1))
            .await;
    }
    // Some rows in Parquet, the rest only in WAL files.
    let files = eventually(10, "a persist", || async {
        let n = cluster.objects("data").await.len();
        (n > 0).then_some(n)
    })
    .await;
    assert!(files > 0);
    ingester.kill();
    let querier = cluster.start("inflow-querier", "q-late", TAIL).await;
    let got = eventually(10, "every row", || async {
        let r = querier
            .try_rows("db", "SELECT count(*) AS n, sum(v) AS s FROM m")
            .await?;
        (r[0]["n"] == 8).then_some(r)
    })
    .await;
    assert_eq!(got, vec![json!({"n": 8, "s": 28})]);
}

/// A predicate delete sent to an ingester of a split cluster: the rows it
/// matches leave the querier's answers (files and tailed WAL alike), a
/// write of the same series and time after it stays, the compactor
/// rewrites the files and drops the tombstone, and a `kill -9` of the
/// ingester changes nothing.
pub(crate) async fn predicate_deletes_across_roles(cluster: &TestCluster) {
    let mut ingester = cluster
        .start("inflow-ingester", "ing-0", &["--wal-snapshot-size", "2"])
        .await;
    let querier = cluster.start("inflow-querier", "q-0", TAIL).await;
    for t in 1..=8u64 {
        let host = if t % 2 == 0 { "a" } else { "b" };
        ingester
            .write_ok(
                "db",
                &format!("cpu,host={host} v={t}i {t}\nmem,host={host} v={t}i {t}"),
            )
            .await;
    }
    let rows = "SELECT host, v, time FROM cpu ORDER BY time";
    eventually(20, "every row on the querier, some in files", || async {
        let files = querier
            .try_rows("db", "SELECT count(*) AS n FROM system.parquet_files")
            .await?;
        let r = querier.try_rows("db", rows).await?;
        (r.len() == 8 && files[0]["n"].as_u64()? >= 1).then_some(())
    })
    .await;
    // host=a from 1 ns to 6 ns: rows at 2, 4, 6 (persisted or not).
    let r = ingester
        .client()
        .post(ingester.url("/api/v2/delete"))
        .query(&[("bucket", "db")])
        .json(&json!({
            "start": "1970-01-01T00:00:00.000000001Z",
            "stop": "1970-01-01T00:00:00.000000006Z",
            "predicate": "_measurement=\"cpu\" AND host=\"a\"",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let values = |r: &[Value]| -> Vec<u64> { r.iter().filter_map(|x| x["v"].as_u64()).collect() };
    eventually(20, "the deleted rows gone from the querier", || async {
        let r = querier.try_rows("db", rows).await?;
        (values(&r) == [1, 3, 5, 7, 8]).then_some(())
    })
    .await;
    // A write after the delete, in its range, stays; mem was not touched.
    ingester.write_ok("db", "cpu,host=a v=40i 4").await;
    for t in 9..=12u64 {
        ingester
            .write_ok("db", &format!("cpu,host=b v={t}i {t}"))
            .await;
    }
    let want: Vec<u64> = vec![1, 3, 40, 5, 7, 8, 9, 10, 11, 12];
    eventually(20, "the later write on the querier", || async {
        let r = querier.try_rows("db", rows).await?;
        (values(&r) == want).then_some(())
    })
    .await;
    let mem = querier
        .query_json("db", "SELECT count(*) AS n FROM mem")
        .await;
    assert_eq!(mem[0]["n"], 8);
    // The compactor rewrites the files the delete still applies to, then
    // drops the tombstone once the ingester's marker is persisted.
    let _compactor = cluster
        .start(
            "inflow-compactor",
            "c-0",
            &["--retention-check-interval", "100ms"],
        )
        .await;
    eventually(30, "the tombstone dropped", || async {
        let d = querier
            .try_rows("db", "SELECT delete_id FROM system.deletes")
            .await?;
        d.is_empty().then_some(())
    })
    .await;
    let r = querier.query_json("db", rows).await;
    assert_eq!(values(&r), want, "the same rows after the rewrite");
    ingester.kill();
    ingester.restart().await;
    ingester.write_ok("db", "cpu,host=b v=13i 13").await;
    let mut after = want.clone();
    after.push(13);
    eventually(20, "the same rows after a kill -9", || async {
        let r = querier.try_rows("db", rows).await?;
        (values(&r) == after).then_some(())
    })
    .await;
}
