//! The cluster scenarios on real S3 servers, `moto_server` (PyPI
//! `moto[server]`) and Ceph's RADOS Gateway (Debian's `radosgw` on a
//! one-node cluster), with credentials from the standard AWS environment:
//! conditional creates have exactly one winner, `inflow serve` keeps every
//! acknowledged write across a SIGKILL, and split roles share one bucket.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog::{Catalog, ColumnKind, FieldType, SchemaChange, TableChange};
use object_store::path::Path;
use serde_json::json;
use test_helpers::{MotoServer, RadosGw, S3Endpoint, TestCluster};

mod scenarios;

/// A cluster on a fresh bucket of `s3`.
async fn on_bucket(s3: &S3Endpoint, bucket: &str) -> TestCluster {
    s3.create_bucket(bucket).await;
    TestCluster::on_s3(s3, bucket)
}

#[tokio::test]
async fn conditional_creates_have_one_winner_on_moto() {
    let moto = MotoServer::start().await;
    conditional_creates_have_one_winner(&moto.endpoint()).await;
}

#[tokio::test]
async fn inflow_serve_on_moto_keeps_every_acknowledged_write() {
    let moto = MotoServer::start().await;
    inflow_serve_keeps_every_acknowledged_write(&moto.endpoint()).await;
}

#[tokio::test]
async fn split_roles_share_one_moto_bucket() {
    let moto = MotoServer::start().await;
    split_roles_share_one_bucket(&moto.endpoint()).await;
}

/// Each shared scenario as a test on its own moto server.
macro_rules! on_moto {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let moto = MotoServer::start().await;
                scenarios::$name(&on_bucket(&moto.endpoint(), "scenario").await).await;
            }
        )*
        /// The same scenarios, for one server (Ceph's takes seconds to start).
        const SCENARIOS: &[fn(TestCluster) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>] =
            &[$(|c| Box::pin(async move { scenarios::$name(&c).await })),*];
    };
}

scenarios::every_scenario!(on_moto);

/// Every scenario on one real Ceph RGW (it takes seconds to start).
#[tokio::test]
async fn every_scenario_on_ceph_rgw() {
    let rgw = RadosGw::start().await;
    let s3 = rgw.endpoint();
    conditional_creates_have_one_winner(&s3).await;
    inflow_serve_keeps_every_acknowledged_write(&s3).await;
    split_roles_share_one_bucket(&s3).await;
    for (i, scenario) in SCENARIOS.iter().enumerate() {
        scenario(on_bucket(&s3, &format!("scenario-{i}")).await).await;
    }
}

/// Eight processes race for one lease and eight catalogs for the next
/// transactions on S3: one lease winner, and every catalog change lands
/// exactly once, in one sequence.
async fn conditional_creates_have_one_winner(s3: &S3Endpoint) {
    s3.create_bucket("race").await;
    let timing = cluster::LeaseTiming {
        heartbeat: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
    };
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = s3.store("race");
            tokio::spawn(async move {
                let holder = cluster::Holder {
                    instance_id: uuid::Uuid::new_v4(),
                    node_id: format!("n{i}"),
                    roles: vec!["ingest".into()],
                    address: format!("127.0.0.1:{i}"),
                    started_at_ns: 0,
                    pid: i,
                    hostname: "test".into(),
                    core_count: 1,
                };
                cluster::Lease::acquire(
                    store,
                    &Path::default(),
                    "node-x",
                    holder,
                    timing,
                    cluster::Contention::Refuse,
                    None,
                )
                .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Ok(lease) = t.await.unwrap() {
            winners.push(lease);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one lease holder");

    let catalogs =
        futures::future::join_all((0..8).map(|_| Catalog::load(s3.store("race"), Path::default())))
            .await;
    let catalogs: Vec<Arc<Catalog>> = catalogs.into_iter().map(Result::unwrap).collect();
    let uuids: std::collections::HashSet<_> = catalogs.iter().map(|c| c.uuid()).collect();
    assert_eq!(uuids.len(), 1, "one catalog UUID");
    let changes = catalogs.iter().enumerate().map(|(i, c)| {
        let c = Arc::clone(c);
        async move {
            // Table t{i} with column v typed by i: the shared table `m`'s
            // column has one winner.
            let kind = if i % 2 == 0 {
                FieldType::Float
            } else {
                FieldType::Integer
            };
            c.ensure(&SchemaChange {
                db: "db".into(),
                tables: vec![
                    TableChange {
                        name: format!("t{i}"),
                        columns: vec![("v".into(), ColumnKind::Field(FieldType::Float))],
                    },
                    TableChange {
                        name: "m".into(),
                        columns: vec![("v".into(), ColumnKind::Field(kind))],
                    },
                ],
            })
            .await
        }
    });
    for r in futures::future::join_all(changes).await {
        r.unwrap();
    }
    let fresh = Catalog::load(s3.store("race"), Path::default())
        .await
        .unwrap();
    let state = fresh.state();
    let db = state.db("db").unwrap();
    for i in 0..8 {
        assert!(db.table(&format!("t{i}")).is_some(), "t{i} landed");
    }
    assert_eq!(
        db.table("m").unwrap().columns().len(),
        2,
        "m has v (one winner) and time"
    );
}

/// `inflow serve` on S3: acknowledged writes survive SIGKILL, across a
/// persist to Parquet on the bucket; a second process with the node id
/// refuses to start.
async fn inflow_serve_keeps_every_acknowledged_write(s3: &S3Endpoint) {
    s3.create_bucket("serve").await;
    let cluster = TestCluster::on_s3(s3, "serve");
    let mut server = cluster
        .start("inflow", "inflow-0", &["--wal-snapshot-size", "3"])
        .await;
    for i in 0..10 {
        server
            .write_ok("db", &format!("m,h=h{i} v={i} {}", i + 1))
            .await;
    }
    let err = cluster
        .try_start("inflow", "inflow-0", &[])
        .await
        .unwrap_err();
    assert!(err.contains("held by a live process"), "{err}");
    server.kill();
    let started = Instant::now();
    server.restart().await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited out the lease"
    );
    let got = server
        .try_rows("db", "SELECT count(*) AS n, sum(v) AS s FROM m")
        .await
        .unwrap();
    assert_eq!(got, vec![json!({"n": 10, "s": 45.0})]);
    let files = server
        .try_rows("db", "SELECT count(*) AS n FROM system.parquet_files")
        .await
        .unwrap();
    assert!(
        files[0]["n"].as_u64().unwrap() >= 1,
        "persisted to the bucket: {files:?}"
    );
}

/// An ingester, a querier and a compactor on one bucket: the querier sees
/// the writes and `system.nodes` lists all three.
async fn split_roles_share_one_bucket(s3: &S3Endpoint) {
    s3.create_bucket("split").await;
    let cluster = TestCluster::on_s3(s3, "split");
    let ingester = cluster
        .start("inflow-ingester", "ing-0", &["--wal-snapshot-size", "2"])
        .await;
    let querier = cluster
        .start("inflow-querier", "q-0", &["--replication-interval", "20ms"])
        .await;
    let _compactor = cluster.start("inflow-compactor", "c-0", &[]).await;
    for i in 0..6 {
        ingester
            .write_ok("db", &format!("m,h=h{i} v={i} {}", i + 1))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = querier.try_rows("db", "SELECT count(*) AS n FROM m").await
            && r == vec![json!({"n": 6})]
        {
            break;
        }
        assert!(Instant::now() < deadline, "the querier never saw the rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nodes = querier
        .try_rows(
            "_internal",
            "SELECT node_id, state FROM system.nodes ORDER BY node_id",
        )
        .await
        .unwrap();
    assert_eq!(
        nodes,
        vec![
            json!({"node_id": "c-0", "state": "running"}),
            json!({"node_id": "ing-0", "state": "running"}),
            json!({"node_id": "q-0", "state": "running"}),
        ]
    );
}
