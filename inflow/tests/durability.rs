//! Acknowledged writes survive kill -9; a damaged WAL stops start-up.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use test_helpers::TestServer;

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let mut s = TestServer::start().await;
    let mut handles = Vec::new();
    // Concurrent writers, so several requests share WAL files.
    for w in 0..8 {
        let client = s.client().clone();
        let url = s.url("/api/v3/write_lp?db=db");
        handles.push(tokio::spawn(async move {
            for b in 0..25 {
                let body: String = (0..20)
                    .map(|i| format!("m,w=w{w},b=b{b} v={i}i {}\n", 1000 + i))
                    .collect();
                let r = client.post(&url).body(body).send().await.unwrap();
                assert_eq!(r.status(), 204);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    s.write_ok("db2", "other,t=x f=\"s\" 5\nother g=true").await;
    s.kill();
    s.restart().await;
    let rows = s
        .query_json("db", "SELECT count(*) AS n, sum(v) AS total FROM m")
        .await;
    assert_eq!(rows, vec![json!({"n": 8 * 25 * 20, "total": 8 * 25 * 190})]);
    let rows = s
        .query_json("db2", "SELECT t, f FROM other ORDER BY time")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], json!({"t": "x", "f": "s"}));
    // Lines without a timestamp keep the time they got when written.
    let before = s
        .query_json("db2", "SELECT time FROM other ORDER BY time")
        .await;
    s.kill();
    s.restart().await;
    assert_eq!(
        s.query_json("db2", "SELECT time FROM other ORDER BY time")
            .await,
        before
    );
    // Writes continue after the replayed files, and the catalog reloaded.
    s.write_ok("db", "m,w=new v=1i 1").await;
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 4001})]
    );
    let r = s.write_lp("db", "m v=1.5 2").await;
    assert_eq!(
        r.status(),
        400,
        "the reloaded catalog still knows v is an integer"
    );
}

fn wal_files(s: &TestServer) -> Vec<std::path::PathBuf> {
    let dir = s.data_dir().join("wal").join("inflow-0");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn corrupt_wal_stops_startup_and_names_the_file() {
    let mut s = TestServer::start().await;
    s.write_ok("db", "m v=1 1").await;
    s.write_ok("db", "m v=2 2").await;
    s.kill();
    let files = wal_files(&s);
    assert!(files.len() >= 2);
    let victim = &files[0];
    let mut data = std::fs::read(victim).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(victim, &data).unwrap();
    let err = s.restart_expect_failure().await;
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "error should name {name}: {err}");
    assert!(err.contains("checksum"), "{err}");
}

#[tokio::test]
async fn truncated_wal_stops_startup() {
    let mut s = TestServer::start().await;
    s.write_ok("db", "m v=1 1").await;
    s.kill();
    let files = wal_files(&s);
    let victim = files.last().unwrap();
    let data = std::fs::read(victim).unwrap();
    std::fs::write(victim, &data[..data.len() / 2]).unwrap();
    let err = s.restart_expect_failure().await;
    assert!(
        err.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
}

#[tokio::test]
async fn role_binaries_share_the_object_store() {
    // An ingester writes; a querier on the same store sees the rows by
    // tailing the WAL.
    let ingester = TestServer::start_with(&[]).await;
    let dir: Arc<tempfile::TempDir> = ingester.temp_dir();
    drop(ingester);
    let ingester = TestServer::try_start("inflow-ingester", &[], &[], Arc::clone(&dir))
        .await
        .unwrap();
    let querier = TestServer::try_start(
        "inflow-querier",
        &[],
        &["--replication-interval", "20ms"],
        Arc::clone(&dir),
    )
    .await
    .unwrap();
    ingester.write_ok("db", "m,h=a v=1 1\nm,h=b v=2 2").await;
    let mut rows = Vec::new();
    for _ in 0..200 {
        let r = querier
            .query("db", "SELECT h, v FROM m ORDER BY h", "json")
            .await;
        if r.status() == 200 {
            rows = r.json::<Vec<serde_json::Value>>().await.unwrap();
            if rows.len() == 2 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        rows,
        vec![json!({"h": "a", "v": 1.0}), json!({"h": "b", "v": 2.0})]
    );
    // The ingester serves no queries and the querier no writes: 421, naming
    // the nodes that do.
    let r = ingester.query("db", "SELECT 1", "json").await;
    assert_eq!(r.status(), 421);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("does not serve queries") && msg.contains("querier-"),
        "{msg}"
    );
    let r = querier.write_lp("db", "m v=1 1").await;
    assert_eq!(r.status(), 421);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "inflow-0 at {}",
            ingester.url("").trim_start_matches("http://")
        )),
        "{msg}"
    );
    let compactor = TestServer::try_start("inflow-compactor", &[], &[], dir)
        .await
        .unwrap();
    let r = compactor
        .client()
        .get(compactor.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cluster-uuid"],
        querier
            .client()
            .get(querier.url("/health"))
            .send()
            .await
            .unwrap()
            .headers()["cluster-uuid"]
    );
}

/// The WAL holds exactly the accepted lines of a partial write (the body
/// itself when every line is accepted), so replay gives the same rows.
#[tokio::test]
async fn partial_writes_replay_exactly() {
    let mut s = TestServer::start().await;
    s.write_ok("db", "m,t=a v=1i 1\n# comment\n\nm,t=b v=2i 2\n")
        .await;
    let r = s
        .write_lp(
            "db",
            "m,t=c v=3i 3\r\nm,t=d v=oops 4\nm,t=e v=5i 5\nm v=\"type\" 6\nm,t=f v=6i 7",
        )
        .await;
    assert_eq!(r.status(), 400);
    let q = "SELECT t, v FROM m ORDER BY time";
    let before = s.query_json("db", q).await;
    assert_eq!(before.len(), 5, "{before:?}");
    s.kill();
    s.restart().await;
    assert_eq!(s.query_json("db", q).await, before);
}
