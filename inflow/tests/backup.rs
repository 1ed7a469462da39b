//! Backup and restore: `inflow backup` while writes go on, `inflow restore`
//! into an empty store, `inflow serve` on the restored store answering as
//! the source did; incremental backups; the HTTP endpoint; a database
//! restored under another name; on the local disk and on S3 (moto).

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use test_helpers::{MotoServer, TestCluster, TestServer, run_cli_env};

/// `inflow <command> <args> <the cluster's store flags>`; stdout, or a
/// panic with stderr.
fn cli(command: &str, args: &[&str], cluster: &TestCluster, env: &[(String, String)]) -> String {
    let flags = cluster.cli_store_flags();
    let mut all: Vec<&str> = vec![command];
    all.extend_from_slice(args);
    all.extend(flags.iter().map(String::as_str));
    all.extend(["--log-filter", "warn"]);
    let (ok, out, err) = run_cli_env(&all, env);
    assert!(ok, "inflow {all:?} failed:\n{err}");
    out
}

/// The queries whose answers a restore must keep.
const QUERIES: &[&str] = &[
    "SELECT w, count(*) AS n, sum(v) AS s, min(time) AS first, max(time) AS last FROM m GROUP BY w ORDER BY w",
    "SELECT * FROM m ORDER BY time, w",
    "SELECT host, usage FROM cpu ORDER BY time, host",
    "SELECT table_name, count(*) AS n FROM information_schema.columns GROUP BY table_name ORDER BY table_name",
];

async fn answers(s: &TestServer) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(s.query_json("db", q).await);
    }
    out
}

/// The whole story on one kind of store: `source`, `restored` and
/// `quiet` are clusters on empty stores, `to` where backups go (with `env`
/// for the CLI).
/// With `split`, the source is an ingester and a querier that tails it
/// (the writes go to the one, the source's answers come from the other);
/// a restored store runs as `inflow serve` either way.
async fn backup_and_restore(
    source: &TestCluster,
    restored: &TestCluster,
    quiet: &TestCluster,
    to: &str,
    env: &[(String, String)],
    split: bool,
) {
    let serve = if split {
        source
            .start("inflow-ingester", "ing-0", &["--wal-snapshot-size", "3"])
            .await
    } else {
        source
            .start("inflow", "inflow-0", &["--wal-snapshot-size", "3"])
            .await
    };
    let querier = if split {
        Some(
            source
                .start("inflow-querier", "q-0", &["--replication-interval", "20ms"])
                .await,
        )
    } else {
        None
    };
    let answering = querier.as_ref().unwrap_or(&serve);
    serve
        .write_ok(
            "db",
            "cpu,host=a usage=1.5 1\ncpu,host=b usage=2.5 1\ncpu,host=a usage=3.5 2",
        )
        .await;
    // Numbered points, continuously; every acknowledged one is recorded.
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, url) = (serve.client().clone(), serve.url("/api/v3/write_lp"));
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .query(&[("db", "db"), ("precision", "nanosecond")])
                    .body(format!("m,w=w{} v={i}i {}", i % 4, 1000 + i))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 204) {
                    acked.lock().unwrap().push(i);
                }
                i += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    assert!(!before.is_empty(), "the writer got nothing acknowledged");
    let out = tokio::task::spawn_blocking({
        let (to, env) = (to.to_string(), env.to_vec());
        let flags = source.cli_store_flags();
        move || {
            let mut all = vec!["backup", "--to", &to, "--log-filter", "warn"];
            all.extend(flags.iter().map(String::as_str));
            run_cli_env(&all, &env)
        }
    })
    .await
    .unwrap();
    assert!(out.0, "backup under writes failed:\n{}", out.2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    // Restored: every write acknowledged before the backup began, once.
    cli("restore", &["--from", to], restored, env);
    let copy = restored.start("inflow", "inflow-0", &[]).await;
    let rows = copy.query_json("db", "SELECT v FROM m").await;
    let got: Vec<u64> = rows.iter().map(|r| r["v"].as_u64().unwrap()).collect();
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), distinct.len(), "no point twice");
    let missing: Vec<_> = before.difference(&distinct).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, missing: {missing:?}"
    );
    let all: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    assert!(distinct.is_subset(&all), "only acknowledged points");

    // A restore into a store that is not empty is refused.
    let flags = restored.cli_store_flags();
    let mut args = vec!["restore", "--from", to];
    args.extend(flags.iter().map(String::as_str));
    let (ok, _, err) = run_cli_env(&args, env);
    assert!(!ok && err.contains("not empty"), "{err}");

    // Quiet now: a second backup copies only what is new, and its restore
    // answers every query exactly as the source does.
    let second = cli("backup", &["--to", to], source, env);
    let copied: u64 = second
        .split("copied ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let total: u64 = second
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(copied < total, "incremental: {second}");
    cli("restore", &["--from", to], quiet, env);
    let quiet_copy = quiet.start("inflow", "inflow-0", &[]).await;
    // (A querier answers once it has tailed the last writes.)
    let want = answers(&quiet_copy).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = answers(answering).await;
        if got == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restored store answers {want:?}, the source {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(copy);
}

/// [`backup_and_restore`] on the local disk, with split roles or not.
async fn backup_and_restore_on_disk(split_roles: bool) {
    let backups = tempfile::tempdir().unwrap();
    let to = backups.path().join("b").display().to_string();
    backup_and_restore(
        &TestCluster::new(),
        &TestCluster::new(),
        &TestCluster::new(),
        &to,
        &[],
        split_roles,
    )
    .await;
}

#[tokio::test]
async fn a_backup_under_writes_restores_on_disk() {
    backup_and_restore_on_disk(false).await;
}

/// The same with split roles: a backup of an ingester's store while it
/// takes writes holds every write it acknowledged before the backup, and
/// the restore answers as the querier does.
#[tokio::test]
async fn a_backup_of_split_roles_under_writes_restores() {
    backup_and_restore_on_disk(true).await;
}

#[tokio::test]
async fn a_backup_under_writes_restores_on_moto() {
    let moto = MotoServer::start().await;
    let s3 = moto.endpoint();
    for b in ["source", "restored", "quiet", "backups"] {
        s3.create_bucket(b).await;
    }
    let mut env = s3.credentials();
    env.push(("AWS_ENDPOINT".into(), s3.url()));
    backup_and_restore(
        &TestCluster::on_s3(&s3, "source"),
        &TestCluster::on_s3(&s3, "restored"),
        &TestCluster::on_s3(&s3, "quiet"),
        "s3://backups/inflow/nightly",
        &env,
        false,
    )
    .await;
}

/// POST /api/v3/enterprise/configure/backup: admin only, incremental, and
/// its backup restores one database under another name.
#[tokio::test]
async fn the_backup_endpoint_and_a_renamed_database() {
    let s = TestServer::start_with(&["--wal-snapshot-size", "1"]).await;
    s.write_ok("db", "cpu,host=a usage=1 1\ncpu,host=b usage=2 2")
        .await;
    s.write_ok("other", "x v=1i 1").await;
    // A predicate delete outstanding at the backup holds in the restore.
    let r = s
        .client()
        .post(s.url("/query"))
        .form(&[("db", "db"), ("q", "DELETE FROM cpu WHERE host = 'b'")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.write_ok("db", "cpu,host=c usage=3 3").await;
    // Every row in Parquet first: a persist between the two backups would
    // give the second a new file to copy.
    s.wait_persisted("db", "cpu", 3).await;
    s.wait_persisted("other", "x", 1).await;
    let backups = tempfile::tempdir().unwrap();
    let to = backups.path().display().to_string();
    let (status, body) = s
        .post_json("/api/v3/enterprise/configure/backup", &json!({"to": to}))
        .await;
    assert_eq!(status, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert!(first["copied_files"].as_u64().unwrap() >= 1, "{first}");
    // Nothing new: only the WAL files (if any) are copied again.
    let (_, body) = s
        .post_json("/api/v3/enterprise/configure/backup", &json!({"to": to}))
        .await;
    let second: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["copied_files"], second["wal_files"], "{second}");
    assert_ne!(first["backup_id"], second["backup_id"]);
    // Admin only; a clear 400 for a bad body.
    let r = s
        .anonymous_client()
        .post(s.url("/api/v3/enterprise/configure/backup"))
        .json(&json!({"to": to}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, body) = s
        .post_json("/api/v3/enterprise/configure/backup", &json!({"dir": to}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("missing field `to`"), "{body}");

    let restored = TestCluster::new();
    cli(
        "restore",
        &["--from", &to, "--database", "db", "--as", "copy"],
        &restored,
        &[],
    );
    let copy = restored.start("inflow", "inflow-0", &[]).await;
    assert_eq!(
        copy.query_json("copy", "SELECT host, usage FROM cpu ORDER BY time")
            .await,
        s.query_json("db", "SELECT host, usage FROM cpu ORDER BY time")
            .await
    );
    let dbs = copy
        .query_json(
            "copy",
            "SELECT database_name FROM system.databases ORDER BY database_name",
        )
        .await;
    let names: Vec<&str> = dbs
        .iter()
        .filter_map(|d| d["database_name"].as_str())
        .collect();
    assert!(
        names.contains(&"copy") && !names.contains(&"db") && !names.contains(&"other"),
        "{names:?}"
    );
}
