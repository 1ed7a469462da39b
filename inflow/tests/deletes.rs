//! Predicate deletes on `inflow serve`: InfluxDB 2's `/api/v2/delete` and
//! InfluxQL's `DELETE`, over buffered and persisted rows, their errors,
//! restarts, and the compactor's rewrite that ends a tombstone.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delete_v2(s: &TestServer, bucket: &str, body: Value) -> (u16, String) {
    let r = s
        .client()
        .post(s.url("/api/v2/delete"))
        .query(&[("bucket", bucket), ("org", "any")])
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn influxql(s: &TestServer, db: &str, q: &str) -> Value {
    let r = s
        .client()
        .post(s.url("/query"))
        .form(&[("db", db), ("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// RFC 3339 for `t` nanoseconds (under a second) after the epoch.
fn ns(t: i64) -> String {
    format!("1970-01-01T00:00:00.{t:09}Z")
}

const ROWS: &str = "SELECT host, region, v, time FROM cpu ORDER BY time, host";

fn hosts_and_values(r: &[Value]) -> Vec<(String, i64)> {
    r.iter()
        .map(|x| {
            (
                x["host"].as_str().unwrap().to_string(),
                x["v"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Rows in files and in the buffer leave every answer at once; writes
/// after the delete stay; a kill -9 replays the WAL's delete marker; the
/// compactor rewrites the files and the tombstone goes.
#[tokio::test]
async fn deleted_rows_leave_files_and_buffer_and_stay_gone() {
    let mut s = TestServer::start_with(&["--wal-snapshot-size", "1"]).await;
    // Persisted: t = 1..=4.
    s.write_ok(
        "db",
        "cpu,host=a,region=eu v=1i 1\ncpu,host=b,region=eu v=2i 2\ncpu,host=a,region=us v=3i 3\ncpu,host=b,region=us v=4i 4",
    )
    .await;
    s.write_ok("db", "mem,host=a v=1i 1").await;
    s.wait_persisted("db", "cpu", 4).await;
    s.kill();
    // From here on nothing persists: the rest stays in the buffer and WAL.
    s.set_flag("--wal-snapshot-size", "1000");
    s.restart().await;
    s.write_ok(
        "db",
        "cpu,host=a,region=eu v=5i 5\ncpu,host=b,region=eu v=6i 6",
    )
    .await;

    // host=a from 2 to 5: the file's row at 3, the buffer's at 5.
    let (status, body) = delete_v2(
        &s,
        "db",
        json!({"start": ns(2), "stop": ns(5), "predicate": "_measurement=\"cpu\" AND host=\"a\""}),
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let want = vec![
        ("a".to_string(), 1),
        ("b".to_string(), 2),
        ("b".to_string(), 4),
        ("b".to_string(), 6),
    ];
    assert_eq!(hosts_and_values(&s.query_json("db", ROWS).await), want);
    // Every query path sees it: aggregates, InfluxQL, tag filters.
    let n = s
        .query_json("db", "SELECT count(*) AS n FROM cpu WHERE host = 'a'")
        .await;
    assert_eq!(n[0]["n"], 1);
    let q = influxql(&s, "db", "SELECT sum(v) FROM cpu WHERE host = 'a'").await;
    assert_eq!(q["results"][0]["series"][0]["values"][0][1], 1);
    let d = s
        .query_json(
            "db",
            "SELECT table_name, delete_id, predicate, pending_files FROM system.deletes",
        )
        .await;
    assert_eq!(
        d,
        vec![
            json!({"table_name": "cpu", "delete_id": 1, "predicate": "host='a'", "pending_files": 1})
        ]
    );

    // A write of a deleted point after the delete stays; so does mem.
    s.write_ok("db", "cpu,host=a,region=us v=30i 3").await;
    let mut want = want;
    want.insert(2, ("a".to_string(), 30));
    assert_eq!(hosts_and_values(&s.query_json("db", ROWS).await), want);
    assert_eq!(
        s.query_json("db", "SELECT v FROM mem").await,
        vec![json!({"v": 1})]
    );

    // InfluxQL DELETE: region=eu before 6 ns, in every table named.
    let r = influxql(&s, "db", "DELETE FROM cpu WHERE region = 'eu' AND time < 6").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    let want: Vec<(String, i64)> = vec![("a".into(), 30), ("b".into(), 4), ("b".into(), 6)];
    assert_eq!(hosts_and_values(&s.query_json("db", ROWS).await), want);

    // kill -9: replay meets the delete markers in the WAL, the files are
    // still read through the tombstones.
    s.kill();
    s.restart().await;
    assert_eq!(hosts_and_values(&s.query_json("db", ROWS).await), want);

    // Persist everything and let the compactor run: the files are
    // rewritten without the rows, and the tombstones go.
    s.kill();
    s.set_flag("--wal-snapshot-size", "1");
    s.set_flag("--retention-check-interval", "100ms");
    s.restart().await;
    s.write_ok("db", "cpu,host=c,region=eu v=7i 7").await;
    eventually("the tombstones dropped", async || {
        let d = s
            .try_rows("db", "SELECT delete_id FROM system.deletes")
            .await?;
        d.is_empty().then_some(())
    })
    .await;
    let mut want = want;
    want.push(("c".into(), 7));
    assert_eq!(hosts_and_values(&s.query_json("db", ROWS).await), want);
    let files = s
        .query_json(
            "db",
            "SELECT sum(row_count) AS n FROM system.parquet_files WHERE table_name = 'cpu'",
        )
        .await;
    assert_eq!(files[0]["n"], 4, "the files hold only the rows left");
}

/// A delete that takes every row of a file removes the file.
#[tokio::test]
async fn a_file_left_empty_is_removed() {
    let s = TestServer::start_with(&[
        "--wal-snapshot-size",
        "1",
        "--retention-check-interval",
        "100ms",
    ])
    .await;
    s.write_ok("db", "cpu,host=a v=1i 1\ncpu,host=a v=2i 2")
        .await;
    s.wait_persisted("db", "cpu", 2).await;
    let (status, body) = delete_v2(&s, "db", json!({"start": ns(0), "stop": ns(10)})).await;
    assert_eq!(status, 204, "{body}");
    assert!(s.query_json("db", "SELECT * FROM cpu").await.is_empty());
    eventually("the file removed and the tombstone dropped", async || {
        let f = s
            .try_rows("db", "SELECT count(*) AS n FROM system.parquet_files")
            .await?;
        let d = s
            .try_rows("db", "SELECT delete_id FROM system.deletes")
            .await?;
        (f[0]["n"].as_u64()? == 0 && d.is_empty()).then_some(())
    })
    .await;
}

/// Bad deletes get InfluxDB 2's error bodies, or InfluxQL's statement
/// errors, and delete nothing.
#[tokio::test]
async fn bad_deletes_are_refused() {
    let s = TestServer::start().await;
    s.write_ok("db", "cpu,host=a v=1i 1").await;
    let ok = json!({"start": ns(0), "stop": ns(10), "predicate": "host=\"a\""});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("nope", ok.clone(), 404, "database not found: nope"),
        ("db", json!({"stop": ns(10)}), 400, "start is required"),
        (
            "db",
            json!({"start": "yesterday", "stop": ns(10)}),
            400,
            "invalid RFC3339Nano for field start",
        ),
        (
            "db",
            json!({"start": ns(10), "stop": ns(0)}),
            400,
            "is after its stop",
        ),
        (
            "db",
            json!({"start": ns(0), "stop": ns(10), "predicate": "host=\"a\" OR host=\"b\""}),
            400,
            "OR is not supported",
        ),
        (
            "db",
            json!({"start": ns(0), "stop": ns(10), "predicate": "v=\"1\""}),
            400,
            "fields not supported",
        ),
        (
            "db",
            json!({"start": ns(0), "stop": ns(10), "predicate": "_field=\"v\""}),
            400,
            "deleting by _field",
        ),
        (
            "db",
            json!({"start": ns(0), "stop": ns(10), "predicate": "host=a"}),
            400,
            "must be a quoted string",
        ),
    ];
    for (bucket, body, status, text) in cases {
        let (got, answer) = delete_v2(&s, bucket, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert!(
            answer["message"].as_str().unwrap().contains(text),
            "{body}: {answer}"
        );
        assert!(answer["code"].is_string(), "{answer}");
    }
    let (got, _) = delete_v2(&s, "db", json!("not an object")).await;
    assert_eq!(got, 400);
    // Without a token, and missing the bucket.
    let r = s
        .anonymous_client()
        .post(s.url("/api/v2/delete"))
        .query(&[("bucket", "db")])
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client()
        .post(s.url("/api/v2/delete"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    for (q, text) in [
        (
            "DELETE FROM cpu WHERE v = 1",
            "fields not supported in WHERE clause during deletion",
        ),
        (
            "DELETE FROM cpu WHERE host = 1",
            "fields not supported in WHERE clause during deletion",
        ),
        (
            "DELETE FROM cpu WHERE host > 'a'",
            "DELETE supports time ranges and tag comparisons",
        ),
        (
            "DELETE FROM cpu WHERE host = 'a' OR time < 5",
            "time may not be used inside OR",
        ),
        ("DELETE FROM cpu WHERE host =~ /(/", "invalid regex"),
    ] {
        let r = influxql(&s, "db", q).await;
        let err = r["results"][0]["error"].as_str().unwrap_or_default();
        assert!(err.contains(text), "{q}: {r}");
    }
    let r = s
        .client()
        .post(s.url("/query"))
        .form(&[("q", "DELETE FROM cpu")])
        .send()
        .await
        .unwrap();
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["results"][0]["error"], "database name required");
    // Nothing was deleted.
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM cpu").await[0]["n"],
        1
    );
    // A delete from a measurement that does not exist deletes nothing.
    let r = influxql(&s, "db", "DELETE FROM nope WHERE time < 10").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    assert!(
        s.query_json("db", "SELECT * FROM system.deletes")
            .await
            .is_empty()
    );
}

/// InfluxQL's `DELETE` with regexes, `OR` and regex measurements deletes
/// what InfluxDB 1.6 deletes for the same statements (checked against it),
/// over buffered rows and over Parquet files (read through the tombstones:
/// the compactor is not given the time to rewrite them).
#[tokio::test]
async fn influxql_delete_with_regexes_and_or() {
    for persisted in [false, true] {
        let flags: &[&str] = if persisted {
            &[
                "--wal-snapshot-size",
                "1",
                "--retention-check-interval",
                "1h",
            ]
        } else {
            &["--retention-check-interval", "1h"]
        };
        let s = TestServer::start_with(flags).await;
        s.write_ok(
            "db",
            "cpu,host=a,region=eu v=1i 1\ncpu,host=b v=2i 2\ncpu,host=a v=3i 3\ncpu,host=ab v=4i 4",
        )
        .await;
        if persisted {
            s.wait_persisted("db", "cpu", 4).await;
        }
        for (q, want) in [
            (
                "DELETE FROM cpu WHERE host =~ /^a/ AND time < 2",
                vec![2, 3, 4],
            ),
            ("DELETE FROM /c.*/ WHERE time = 4", vec![2, 3]),
            (
                "DELETE FROM cpu WHERE region != 'eu' AND host !~ /a/",
                vec![3],
            ),
            ("DELETE FROM cpu WHERE host = 'x' OR region = ''", vec![]),
        ] {
            let r = influxql(&s, "db", q).await;
            assert_eq!(r, json!({"results": [{"statement_id": 0}]}), "{q}");
            let rows = s.query_json("db", "SELECT v FROM cpu ORDER BY time").await;
            let got: Vec<i64> = rows.iter().map(|x| x["v"].as_i64().unwrap()).collect();
            assert_eq!(got, want, "{q} (persisted: {persisted})");
        }
        if persisted {
            let d = s
                .query_json("db", "SELECT sum(pending_files) AS n FROM system.deletes")
                .await;
            assert!(
                d[0]["n"].as_u64().unwrap() >= 1,
                "read through tombstones: {d:?}"
            );
        }
    }
}

/// A delete on an idle server still ends: its WAL marker is persisted at
/// once (not after `--wal-snapshot-size` more files), so the compactor can
/// drop the tombstone after rewriting the files.
#[tokio::test]
async fn a_delete_on_an_idle_server_ends_its_tombstone() {
    let mut s = TestServer::start_with(&["--wal-snapshot-size", "1"]).await;
    s.write_ok("db", "cpu,host=a v=1i 1\ncpu,host=b v=2i 2")
        .await;
    s.wait_persisted("db", "cpu", 2).await;
    s.kill();
    s.set_flag("--wal-snapshot-size", "1000");
    s.set_flag("--retention-check-interval", "100ms");
    s.restart().await;
    let r = influxql(&s, "db", "DELETE FROM cpu WHERE host = 'a'").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    eventually("the tombstone dropped", async || {
        let d = s
            .try_rows("db", "SELECT delete_id FROM system.deletes")
            .await?;
        d.is_empty().then_some(())
    })
    .await;
    let rows = s.query_json("db", "SELECT host FROM cpu").await;
    assert_eq!(rows, vec![json!({"host": "b"})]);
}

/// The last and distinct value caches lose the values a delete removed:
/// they are filled again from the rows that are left.
#[tokio::test]
async fn caches_forget_deleted_values() {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a usage=1 10\ncpu,host=a usage=2 20\ncpu,host=b usage=3 30",
    )
    .await;
    let (st, body) = s
        .post_json(
            "/api/v3/configure/last_cache",
            &json!({"db": "db", "table": "cpu", "name": "last", "count": 2}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = s
        .post_json(
            "/api/v3/configure/distinct_cache",
            &json!({"db": "db", "table": "cpu", "name": "hosts", "columns": ["host"]}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let last = "SELECT host, usage FROM last_cache('cpu', 'last') ORDER BY host, usage";
    let hosts = "SELECT host FROM distinct_cache('cpu', 'hosts') ORDER BY host";
    eventually("the caches filled", async || {
        let r = s.try_rows("db", last).await?;
        (r.len() == 3).then_some(())
    })
    .await;
    // host=a at 20 goes: its last value is the one at 10 again.
    let r = influxql(&s, "db", "DELETE FROM cpu WHERE host = 'a' AND time >= 15").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    eventually(
        "the last value cache without the deleted value",
        async || {
            let r = s.try_rows("db", last).await?;
            (r == vec![
                json!({"host": "a", "usage": 1.0}),
                json!({"host": "b", "usage": 3.0}),
            ])
            .then_some(())
        },
    )
    .await;
    // Every row of host=b goes: it leaves the distinct value cache.
    let r = influxql(&s, "db", "DELETE FROM cpu WHERE host = 'b'").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    eventually("the distinct value cache without b", async || {
        let r = s.try_rows("db", hosts).await?;
        (r == vec![json!({"host": "a"})]).then_some(())
    })
    .await;
}
