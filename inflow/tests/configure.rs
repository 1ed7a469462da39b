//! The management API: databases and tables, retention, deletes, limits.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use test_helpers::TestServer;

/// Persist after every WAL file; run retention and garbage collection
/// every 50 ms with no grace period.
const PERSIST_AND_COLLECT_AT_ONCE: &[&str] = &[
    "--wal-snapshot-size",
    "1",
    "--retention-check-interval",
    "50ms",
    "--gc-grace-period",
    "0s",
];

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

async fn status(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn list(s: &TestServer, show_deleted: bool) -> Vec<Value> {
    let url = s.url(&format!(
        "/api/v3/configure/database?format=json&show_deleted={show_deleted}"
    ));
    let r = s.client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["iox::database"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `f` until it returns true, for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn parquet_files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                parquet_files_under(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[tokio::test]
async fn database_lifecycle_and_status_codes() {
    let mut s = TestServer::start().await;
    let c = s.client().clone();
    let db_url = s.url("/api/v3/configure/database");

    // Every configure endpoint needs a token (401) and an admin one (403).
    let anon = s.anonymous_client();
    let endpoints: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::GET, format!("{db_url}?format=json")),
        (reqwest::Method::POST, db_url.clone()),
        (reqwest::Method::PUT, db_url.clone()),
        (reqwest::Method::DELETE, format!("{db_url}?db=x")),
        (
            reqwest::Method::POST,
            s.url("/api/v3/configure/database/retention_period?db=x&duration=1d"),
        ),
        (
            reqwest::Method::DELETE,
            s.url("/api/v3/configure/database/retention_period?db=x"),
        ),
        (reqwest::Method::POST, s.url("/api/v3/configure/table")),
        (reqwest::Method::PUT, s.url("/api/v3/configure/table")),
        (
            reqwest::Method::DELETE,
            s.url("/api/v3/configure/table?db=x&table=y"),
        ),
        (
            reqwest::Method::POST,
            s.url("/api/v3/enterprise/configure/table/retention_period?db=x&table=y&duration=1d"),
        ),
        (
            reqwest::Method::DELETE,
            s.url("/api/v3/enterprise/configure/table/retention_period?db=x&table=y"),
        ),
    ];
    for (m, url) in &endpoints {
        assert_eq!(
            status(anon.request(m.clone(), url)).await.0,
            401,
            "{m} {url}"
        );
    }
    let r = c
        .post(s.url("/api/v3/enterprise/configure/token"))
        .json(&json!({"token_name": "reader", "permissions": [{"resource_type": "db", "resource_names": ["*"], "actions": ["read", "write"]}]}))
        .send()
        .await
        .unwrap();
    let reader: Value = r.json().await.unwrap();
    let reader = reader["token"].as_str().unwrap().to_string();
    for (m, url) in endpoints.iter().skip(1) {
        assert_eq!(
            status(anon.request(m.clone(), url).bearer_auth(&reader))
                .await
                .0,
            403,
            "{m} {url}"
        );
    }

    // GET needs format.
    let (code, body) = status(c.get(&db_url)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("format"), "{body}");
    assert_eq!(status(c.get(format!("{db_url}?format=xml"))).await.0, 400);
    // Auth: no token is 401.
    assert_eq!(
        status(s.anonymous_client().get(format!("{db_url}?format=json")))
            .await
            .0,
        401
    );

    // POST: 200, 409 on a duplicate, 400 on a bad name or retention.
    assert_eq!(
        status(
            c.post(&db_url)
                .json(&json!({"db": "metrics", "retention_period": "7d"}))
        )
        .await
        .0,
        200
    );
    let (code, body) = status(c.post(&db_url).json(&json!({"db": "metrics"}))).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        status(c.post(&db_url).json(&json!({"db": "bad.name"})))
            .await
            .0,
        400
    );
    assert_eq!(
        status(c.post(&db_url).json(&json!({"db": "-x"}))).await.0,
        400
    );
    assert_eq!(
        status(
            c.post(&db_url)
                .json(&json!({"db": "ok", "retention_period": "soon"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(status(c.post(&db_url).body("{not json")).await.0, 400);
    for r in ["30m", "1d", "1y"] {
        let name = format!("r{}", r.replace(char::is_alphabetic, ""));
        let name = format!("{name}-{}", r.chars().last().unwrap());
        assert_eq!(
            status(
                c.post(&db_url)
                    .json(&json!({"db": name, "retention_period": r}))
            )
            .await
            .0,
            200,
            "{r}"
        );
    }

    let rows = list(&s, false).await;
    assert!(names(&rows).contains(&"_internal".to_string()));
    let metrics = rows
        .iter()
        .find(|r| r["iox::database"] == "metrics")
        .unwrap();
    assert_eq!(metrics["retention_period"], "7d");
    assert!(
        rows.iter()
            .any(|r| r["iox::database"] == "r30-m" && r["retention_period"] == "30m")
    );
    assert!(
        rows.iter()
            .any(|r| r["iox::database"] == "r1-y" && r["retention_period"] == "8766h")
    );
    for f in ["csv", "jsonl", "pretty", "parquet"] {
        assert_eq!(
            status(c.get(format!("{db_url}?format={f}"))).await.0,
            200,
            "{f}"
        );
    }

    // PUT updates the retention; DELETE .../retention_period removes it.
    assert_eq!(
        status(
            c.put(&db_url)
                .json(&json!({"db": "metrics", "retention_period": "30d"}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        status(
            c.put(&db_url)
                .json(&json!({"db": "nope", "retention_period": "30d"}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        status(
            c.put(&db_url)
                .json(&json!({"db": "metrics", "retention_period": "x"}))
        )
        .await
        .0,
        400
    );
    let rows = list(&s, false).await;
    assert_eq!(
        rows.iter()
            .find(|r| r["iox::database"] == "metrics")
            .unwrap()["retention_period"],
        "30d"
    );
    let ret_url = s.url("/api/v3/configure/database/retention_period");
    // InfluxDB 3 Core's POST .../retention_period?db=&duration= sets it too.
    assert_eq!(
        status(c.post(format!("{ret_url}?db=metrics&duration=12h")))
            .await
            .0,
        204
    );
    assert_eq!(
        status(c.post(format!("{ret_url}?db=metrics&duration=soon")))
            .await
            .0,
        400
    );
    assert_eq!(
        status(c.post(format!("{ret_url}?db=nope&duration=12h")))
            .await
            .0,
        404
    );
    let rows = list(&s, false).await;
    assert_eq!(
        rows.iter()
            .find(|r| r["iox::database"] == "metrics")
            .unwrap()["retention_period"],
        "12h"
    );
    assert_eq!(
        status(c.delete(format!("{ret_url}?db=metrics"))).await.0,
        204
    );
    assert_eq!(status(c.delete(format!("{ret_url}?db=nope"))).await.0, 404);
    let rows = list(&s, false).await;
    assert!(
        rows.iter()
            .find(|r| r["iox::database"] == "metrics")
            .unwrap()
            .get("retention_period")
            .is_none_or(Value::is_null)
    );

    // Soft delete: gone from queries and listings, name free, listed as deleted.
    s.write_ok("metrics", "cpu,host=a v=1 1\ncpu,host=b v=2 2")
        .await;
    assert_eq!(status(c.delete(format!("{db_url}?db=nope"))).await.0, 404);
    assert_eq!(
        status(c.delete(format!("{db_url}?db=metrics&hard_delete_at=tomorrow")))
            .await
            .0,
        400
    );
    assert_eq!(
        status(c.delete(format!("{db_url}?db=metrics&data_only=maybe")))
            .await
            .0,
        400
    );
    assert_eq!(
        status(c.delete(format!("{db_url}?db=metrics"))).await.0,
        200
    );
    assert_eq!(
        s.query("metrics", "SELECT * FROM cpu", "json")
            .await
            .status(),
        404
    );
    assert!(!names(&list(&s, false).await).contains(&"metrics".to_string()));
    let deleted = list(&s, true).await;
    let gone = deleted
        .iter()
        .find(|r| r["iox::database"].as_str().unwrap().starts_with("metrics-"))
        .unwrap_or_else(|| panic!("{deleted:?}"));
    assert_eq!(gone["deleted"], true);
    let new_name = gone["iox::database"].as_str().unwrap().to_string();
    assert_eq!(
        new_name.len(),
        "metrics-20250101T000000".len(),
        "{new_name}"
    );

    // The name is free: a new database starts empty.
    assert_eq!(
        status(c.post(&db_url).json(&json!({"db": "metrics"})))
            .await
            .0,
        200
    );
    s.write_ok("metrics", "cpu,host=c v=3 3").await;
    let q = "SELECT host FROM cpu ORDER BY host";
    assert_eq!(s.query_json("metrics", q).await, vec![json!({"host": "c"})]);
    // kill -9: the WAL holds the old database's lines; they stay deleted.
    s.kill();
    s.restart().await;
    assert_eq!(s.query_json("metrics", q).await, vec![json!({"host": "c"})]);
    assert!(
        list(&s, true)
            .await
            .iter()
            .any(|r| r["iox::database"] == new_name.as_str() && r["deleted"] == true)
    );

    // system.databases shows ids, retention and deleted state.
    let sys = s
        .query_json(
            "_internal",
            "SELECT database_name, deleted FROM system.databases ORDER BY database_id",
        )
        .await;
    assert!(
        sys.contains(&json!({"database_name": new_name, "deleted": true})),
        "{sys:?}"
    );
    assert!(
        sys.contains(&json!({"database_name": "metrics", "deleted": false})),
        "{sys:?}"
    );
}

#[tokio::test]
async fn hard_delete_removes_every_file() {
    let s = TestServer::start_with(PERSIST_AND_COLLECT_AT_ONCE).await;
    let c = s.client().clone();
    s.write_ok("doomed", "m,t=a v=1 1\nm,t=b v=2 2").await;
    s.write_ok("kept", "m,t=a v=1 1").await;
    let data = s.data_dir().join("data");
    eventually("files of both databases", || async {
        parquet_files_under(&data) >= 2
    })
    .await;
    let ids: Vec<Value> = s
        .query_json(
            "_internal",
            "SELECT database_name, database_id FROM system.databases ORDER BY database_id",
        )
        .await;
    let id_of = |n: &str| {
        ids.iter().find(|r| r["database_name"] == n).unwrap()["database_id"]
            .as_u64()
            .unwrap()
    };
    let doomed_dir = data.join(id_of("doomed").to_string());
    assert!(parquet_files_under(&doomed_dir) >= 1);

    let url = s.url("/api/v3/configure/database?db=doomed&hard_delete_at=now");
    assert_eq!(status(c.delete(url)).await.0, 200);
    eventually("the files to be deleted", || async {
        parquet_files_under(&doomed_dir) == 0
    })
    .await;
    assert!(
        !names(&list(&s, true).await)
            .iter()
            .any(|n| n.starts_with("doomed")),
        "hard-deleted: not even listed as deleted"
    );
    // The other database is untouched.
    assert_eq!(
        s.query_json("kept", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 1})]
    );
    assert!(parquet_files_under(&data.join(id_of("kept").to_string())) >= 1);

    // A table's hard delete removes its files and leaves its neighbours.
    s.write_ok("kept", "gone,t=a v=1 1").await;
    eventually("the table's file", || async {
        s.query_json(
            "kept",
            "SELECT table_name FROM system.parquet_files WHERE table_name = 'gone'",
        )
        .await
        .len()
            == 1
    })
    .await;
    let before = parquet_files_under(&data.join(id_of("kept").to_string()));
    let url = s.url("/api/v3/configure/table?db=kept&table=gone&hard_delete_at=now");
    assert_eq!(status(c.delete(url)).await.0, 200);
    eventually("the table's file to be deleted", || async {
        parquet_files_under(&data.join(id_of("kept").to_string())) == before - 1
    })
    .await;
    assert!(
        s.query_json("kept", "SELECT table_name FROM system.tables")
            .await
            .iter()
            .all(|t| t["table_name"] != "gone")
    );
    assert_eq!(
        s.query_json("kept", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 1})]
    );

    // A hard delete scheduled in the future only soft-deletes for now.
    s.write_ok("later", "m v=1 1").await;
    let url = s.url("/api/v3/configure/database?db=later&hard_delete_at=2099-01-01T00:00:00Z");
    assert_eq!(status(c.delete(url)).await.0, 200);
    let sys = s
        .query_json(
            "_internal",
            "SELECT database_name, deleted, hard_delete_time FROM system.databases",
        )
        .await;
    let later = sys
        .iter()
        .find(|r| r["database_name"].as_str().unwrap().starts_with("later-"))
        .unwrap();
    assert_eq!(later["deleted"], true);
    assert_eq!(later["hard_delete_time"], "2099-01-01T00:00:00");
    // `default` is accepted too.
    s.write_ok("dflt", "m v=1 1").await;
    assert_eq!(
        status(c.delete(s.url("/api/v3/configure/database?db=dflt&hard_delete_at=default")))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn data_only_deletes_rows_and_keeps_the_schema() {
    let mut s = TestServer::start_with(&[
        "--retention-check-interval",
        "50ms",
        "--gc-grace-period",
        "0s",
    ])
    .await;
    let c = s.client().clone();
    s.write_ok("db", "cpu,host=a v=1 1\nmem,host=a free=2i 1")
        .await;
    let url = s.url("/api/v3/configure/database?db=db&data_only=true");
    assert_eq!(status(c.delete(url)).await.0, 200);
    // At once, including buffered rows; the tables and columns remain.
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM cpu").await,
        vec![json!({"n": 0})]
    );
    let cols = s.query_json("db", "SELECT column_name FROM information_schema.columns WHERE table_name = 'mem' ORDER BY column_name").await;
    assert_eq!(
        cols,
        vec![
            json!({"column_name": "free"}),
            json!({"column_name": "host"}),
            json!({"column_name": "time"})
        ]
    );
    s.write_ok("db", "cpu,host=b v=5 2").await;
    // kill -9: the deleted rows are in the WAL but stay deleted.
    s.kill();
    s.restart().await;
    assert_eq!(
        s.query_json("db", "SELECT host, v FROM cpu").await,
        vec![json!({"host": "b", "v": 5.0})]
    );
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM mem").await,
        vec![json!({"n": 0})]
    );

    // remove_tables goes further: the tables are gone, the database stays.
    let url = s.url("/api/v3/configure/database?db=db&data_only=true&remove_tables=true");
    assert_eq!(status(c.delete(url)).await.0, 200);
    let r = s.query("db", "SELECT * FROM cpu", "json").await;
    assert_eq!(r.status(), 400, "the table is gone");
    assert!(names(&list(&s, false).await).contains(&"db".to_string()));
    s.write_ok("db", "cpu,host=c v=7 3").await;
    assert_eq!(
        s.query_json("db", "SELECT host FROM cpu").await,
        vec![json!({"host": "c"})]
    );
}

#[tokio::test]
async fn table_lifecycle_and_status_codes() {
    let mut s = TestServer::start().await;
    let c = s.client().clone();
    let t_url = s.url("/api/v3/configure/table");
    let db_url = s.url("/api/v3/configure/database");
    assert_eq!(
        status(c.post(&db_url).json(&json!({"db": "db"}))).await.0,
        200
    );
    let spec = json!({
        "db": "db", "table": "weather", "tags": ["city", "station"],
        "fields": [{"name": "temp", "type": "float64"}, {"name": "count", "type": "int64"},
                   {"name": "hits", "type": "uint64"}, {"name": "note", "type": "utf8"}, {"name": "ok", "type": "bool"}],
    });
    assert_eq!(status(c.post(&t_url).json(&spec)).await.0, 200);
    assert_eq!(status(c.post(&t_url).json(&spec)).await.0, 400, "exists");
    let mut no_db = spec.clone();
    no_db["db"] = json!("nope");
    assert_eq!(status(c.post(&t_url).json(&no_db)).await.0, 404);
    let bad_type = json!({"db": "db", "table": "t2", "tags": [], "fields": [{"name": "f", "type": "decimal"}]});
    assert_eq!(status(c.post(&t_url).json(&bad_type)).await.0, 400);
    let dup = json!({"db": "db", "table": "t2", "tags": ["a"], "fields": [{"name": "a", "type": "bool"}]});
    assert_eq!(status(c.post(&t_url).json(&dup)).await.0, 400);
    assert_eq!(
        status(c.post(&t_url).json(&json!({"db": "db", "table": "t3"})))
            .await
            .0,
        400,
        "tags and fields are required"
    );

    // The schema is in force: a conflicting write fails, a matching one works.
    let r = s.write_lp("db", "weather,city=oslo temp=1i 1").await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("expected float field, got integer field")
    );
    s.write_ok(
        "db",
        "weather,city=oslo temp=1.5,count=2i,hits=3u,note=\"x\",ok=true 1",
    )
    .await;
    let cols = s
        .query_json("db", "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'weather' ORDER BY column_name")
        .await;
    assert_eq!(cols.len(), 8, "{cols:?}");
    assert!(
        cols.contains(&json!({"column_name": "hits", "data_type": "UInt64"})),
        "{cols:?}"
    );

    // PUT sets the table's retention; system.tables shows it.
    assert_eq!(
        status(
            c.put(&t_url)
                .json(&json!({"db": "db", "table": "weather", "retention_period": "2d"}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        status(
            c.put(&t_url)
                .json(&json!({"db": "db", "table": "nope", "retention_period": "2d"}))
        )
        .await
        .0,
        404
    );
    let sys = s
        .query_json(
            "db",
            "SELECT table_name, retention_period, deleted FROM system.tables",
        )
        .await;
    assert_eq!(
        sys,
        vec![json!({"table_name": "weather", "retention_period": "2d", "deleted": false})]
    );

    // The enterprise per-table retention endpoint: 204, 400, 404.
    let r_url = s.url("/api/v3/enterprise/configure/table/retention_period");
    assert_eq!(
        status(c.post(format!("{r_url}?db=db&table=weather&duration=36h")))
            .await
            .0,
        204
    );
    assert_eq!(
        status(c.post(format!("{r_url}?db=db&table=weather&duration=later")))
            .await
            .0,
        400
    );
    assert_eq!(
        status(c.post(format!("{r_url}?db=db&table=nope&duration=1d")))
            .await
            .0,
        404
    );
    assert_eq!(
        status(c.post(format!("{r_url}?db=nope&table=weather&duration=1d")))
            .await
            .0,
        404
    );
    let sys = s
        .query_json("db", "SELECT retention_period FROM system.tables")
        .await;
    assert_eq!(sys, vec![json!({"retention_period": "36h"})]);
    assert_eq!(
        status(c.delete(format!("{r_url}?db=db&table=weather")))
            .await
            .0,
        204
    );
    assert_eq!(
        status(c.delete(format!("{r_url}?db=db&table=nope")))
            .await
            .0,
        404
    );
    let sys = s
        .query_json("db", "SELECT retention_period FROM system.tables")
        .await;
    assert_eq!(sys, vec![json!({})], "no retention: null");

    // Soft delete of a table: gone, name free, listed as deleted.
    assert_eq!(
        status(c.delete(format!("{t_url}?db=db&table=nope")))
            .await
            .0,
        404
    );
    assert_eq!(status(c.delete(format!("{t_url}?db=db"))).await.0, 400);
    assert_eq!(
        status(c.delete(format!("{t_url}?db=db&table=weather")))
            .await
            .0,
        200
    );
    assert_eq!(
        s.query("db", "SELECT * FROM weather", "json")
            .await
            .status(),
        400
    );
    let tables = s.query_json("db", "SHOW TABLES").await;
    assert!(
        !tables.iter().any(|t| t["table_name"] == "weather"),
        "{tables:?}"
    );
    s.write_ok("db", "weather,city=rome temp=20i 2").await;
    assert_eq!(
        s.query_json("db", "SELECT city, temp FROM weather").await,
        vec![json!({"city": "rome", "temp": 20})]
    );
    s.kill();
    s.restart().await;
    assert_eq!(
        s.query_json("db", "SELECT city, temp FROM weather").await,
        vec![json!({"city": "rome", "temp": 20})]
    );
    let sys = s
        .query_json(
            "db",
            "SELECT table_name, deleted FROM system.tables ORDER BY table_id",
        )
        .await;
    assert_eq!(sys.len(), 2);
    assert!(
        sys[0]["table_name"]
            .as_str()
            .unwrap()
            .starts_with("weather-")
            && sys[0]["deleted"] == true,
        "{sys:?}"
    );

    // data_only on a table (the port changed with the restart).
    let t_url = s.url("/api/v3/configure/table");
    assert_eq!(
        status(c.delete(format!("{t_url}?db=db&table=weather&data_only=true")))
            .await
            .0,
        200
    );
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM weather")
            .await,
        vec![json!({"n": 0})]
    );
}

#[tokio::test]
async fn retention_is_enforced_on_writes_queries_and_files() {
    let s = TestServer::start_with(PERSIST_AND_COLLECT_AT_ONCE).await;
    let c = s.client().clone();
    let db_url = s.url("/api/v3/configure/database");
    assert_eq!(
        status(
            c.post(&db_url)
                .json(&json!({"db": "short", "retention_period": "1h"}))
        )
        .await
        .0,
        200
    );
    let now = now_ns();
    let old = now - 2 * 3_600_000_000_000;
    // A point older than the retention is rejected, with a message.
    let r = s
        .write_lp("short", &format!("m,t=a v=1 {old}\nm,t=b v=2 {now}"))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "partial write of line protocol occurred");
    assert_eq!(body["data"][0]["line_number"], 1);
    assert!(
        body["data"][0]["error_message"]
            .as_str()
            .unwrap()
            .contains("retention"),
        "{body}"
    );
    assert_eq!(
        s.query_json("short", "SELECT t FROM m").await,
        vec![json!({"t": "b"})]
    );

    // A 2 s table retention: rows fall out of queries on time, buffered or
    // persisted, and the expired files are deleted from the store.
    assert_eq!(
        status(c.post(&db_url).json(&json!({"db": "tiny"}))).await.0,
        200
    );
    let t_url = s.url("/api/v3/configure/table");
    let spec = json!({"db": "tiny", "table": "m", "tags": ["t"], "fields": [{"name": "v", "type": "float64"}], "retention_period": "2s"});
    assert_eq!(status(c.post(&t_url).json(&spec)).await.0, 200);
    let now = now_ns();
    s.write_ok("tiny", &format!("m,t=a v=1 {now}\nm,t=b v=2 {}", now + 1))
        .await;
    s.write_ok("tiny", &format!("other v=1 {now}")).await;
    assert_eq!(
        s.query_json("tiny", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 2})]
    );
    let tiny_files = || async {
        s.query_json("tiny", "SELECT table_name FROM system.parquet_files")
            .await
    };
    eventually("the files to persist", || async {
        tiny_files().await.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        s.query_json("tiny", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 0})]
    );
    assert_eq!(
        s.query_json("tiny", "SELECT count(*) AS n FROM other")
            .await,
        vec![json!({"n": 1})],
        "no retention on 'other'"
    );
    eventually("the expired file to leave the catalog", || async {
        tiny_files().await == vec![json!({"table_name": "other"})]
    })
    .await;
    let data = s.data_dir().join("data");
    eventually("the expired object to be deleted", || async {
        parquet_files_under(&data) == 2
    })
    .await;
}

#[tokio::test]
async fn limits_reject_lines_with_422() {
    let s = TestServer::start_with(&[
        "--max-databases",
        "2",
        "--max-tables-per-database",
        "2",
        "--max-columns-per-table",
        "4",
    ])
    .await;
    s.write_ok("one", "a v=1 1").await;
    s.write_ok("two", "a v=1 1").await;
    let r = s.write_lp("three", "a v=1 1").await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "line protocol parsing error");
    assert!(
        body["data"]["error_message"]
            .as_str()
            .unwrap()
            .contains("--max-databases"),
        "{body}"
    );
    let r = s
        .client()
        .post(s.url("/api/v3/configure/database"))
        .json(&json!({"db": "three"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Tables: the third table's line fails, the others land (partial write).
    let r = s.write_lp("one", "b v=1 1\nc v=1 1").await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "partial write of line protocol occurred");
    assert_eq!(body["data"][0]["line_number"], 2);
    assert!(
        body["data"][0]["error_message"]
            .as_str()
            .unwrap()
            .contains("--max-tables-per-database"),
        "{body}"
    );

    // Columns: time + t + v + w is 4; one more is refused.
    s.write_ok("two", "a,t=x v=1,w=2 2").await;
    let r = s.write_lp("two", "a,t=x v=1,w=2,z=3 3").await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["data"]["error_message"]
            .as_str()
            .unwrap()
            .contains("--max-columns-per-table"),
        "{body}"
    );
    // v2 reports it too, with its own body.
    let r = s
        .client()
        .post(s.url("/api/v2/write?bucket=two&precision=ns"))
        .body("a,t=x v=1,w=2,y=3 3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

fn cli(args: &[&str], token: &str) -> (bool, String, String) {
    test_helpers::run_cli(args, Some(token))
}

#[tokio::test]
async fn cli_manages_databases_and_tables() {
    let s = TestServer::start().await;
    let host = s.url("");
    let token = s.admin_token().unwrap().to_string();
    let run = |args: Vec<&str>| {
        let mut a = args;
        a.extend(["--host", host.as_str()]);
        let token = token.clone();
        let a: Vec<String> = a.into_iter().map(str::to_string).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                cli(&a.iter().map(String::as_str).collect::<Vec<_>>(), &token)
            })
            .await
            .unwrap()
        }
    };
    let (ok, out, err) = run(vec![
        "create",
        "database",
        "sensors",
        "--retention-period",
        "30d",
    ])
    .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(vec!["create", "database", "sensors"]).await;
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, out, err) = run(vec![
        "create",
        "table",
        "air",
        "--database",
        "sensors",
        "--tags",
        "room,floor",
        "--fields",
        "temp:float64,count:int64",
    ])
    .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(vec![
        "create", "table", "bad", "-d", "sensors", "--fields", "temp",
    ])
    .await;
    assert!(!ok && err.contains("NAME:TYPE"), "{err}");
    let (ok, out, err) = run(vec!["show", "databases", "--format", "json"]).await;
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        rows.contains(&json!({"iox::database": "sensors", "retention_period": "30d"})),
        "{rows:?}"
    );
    let cols = s
        .query_json("sensors", "SELECT column_name FROM information_schema.columns WHERE table_name = 'air' ORDER BY column_name")
        .await;
    assert_eq!(cols.len(), 5, "{cols:?}");
    let (ok, out, err) = run(vec!["delete", "database", "sensors"]).await;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run(vec!["show", "databases"]).await;
    assert!(ok && !out.contains("sensors"), "{out}");
    let (ok, out, _) = run(vec![
        "show",
        "databases",
        "--show-deleted",
        "--format",
        "csv",
    ])
    .await;
    assert!(
        ok && out.contains("sensors-") && out.contains("true"),
        "{out}"
    );
    let (ok, _, err) = run(vec!["delete", "database", "sensors"]).await;
    assert!(!ok && err.contains("404"), "{err}");
}
