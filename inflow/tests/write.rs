//! The three write endpoints: parameters, precision, partial writes, error
//! bodies, gzip and size limits.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn post(
    s: &TestServer,
    path: &str,
    query: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let r = s
        .client()
        .post(s.url(path))
        .query(query)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn every_endpoint_writes_and_creates_the_database() {
    let s = TestServer::start().await;
    assert_eq!(
        post(&s, "/api/v3/write_lp", &[("db", "a")], "m v=3 1")
            .await
            .0,
        204
    );
    assert_eq!(
        post(
            &s,
            "/api/v2/write",
            &[("bucket", "b"), ("org", "ignored")],
            "m v=2 1"
        )
        .await
        .0,
        204
    );
    assert_eq!(
        post(
            &s,
            "/write",
            &[("db", "c"), ("rp", "autogen"), ("consistency", "one")],
            "m v=1 1"
        )
        .await
        .0,
        204
    );
    for db in ["a", "b", "c"] {
        let rows = s.query_json(db, "SELECT v FROM m").await;
        assert_eq!(rows.len(), 1, "{db}");
    }
}

#[tokio::test]
async fn precision_per_endpoint() {
    let s = TestServer::start().await;
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "/api/v3/write_lp",
            "auto",
            "1700000000",
            "2023-11-14T22:13:20",
        ),
        (
            "/api/v3/write_lp",
            "auto",
            "1700000000123",
            "2023-11-14T22:13:20.123",
        ),
        (
            "/api/v3/write_lp",
            "auto",
            "1700000000123456",
            "2023-11-14T22:13:20.123456",
        ),
        (
            "/api/v3/write_lp",
            "auto",
            "1700000000123456789",
            "2023-11-14T22:13:20.123456789",
        ),
        (
            "/api/v3/write_lp",
            "second",
            "1700000001",
            "2023-11-14T22:13:21",
        ),
        (
            "/api/v3/write_lp",
            "millisecond",
            "1700000002000",
            "2023-11-14T22:13:22",
        ),
        (
            "/api/v3/write_lp",
            "microsecond",
            "1700000003000000",
            "2023-11-14T22:13:23",
        ),
        (
            "/api/v3/write_lp",
            "nanosecond",
            "1700000004000000000",
            "2023-11-14T22:13:24",
        ),
        ("/api/v2/write", "s", "1700000005", "2023-11-14T22:13:25"),
        (
            "/api/v2/write",
            "ms",
            "1700000006000",
            "2023-11-14T22:13:26",
        ),
        (
            "/api/v2/write",
            "us",
            "1700000007000000",
            "2023-11-14T22:13:27",
        ),
        (
            "/api/v2/write",
            "ns",
            "1700000008000000000",
            "2023-11-14T22:13:28",
        ),
        ("/write", "h", "472222", "2023-11-14T22:00:00"),
        ("/write", "m", "28333334", "2023-11-14T22:14:00"),
        ("/write", "s", "1700000009", "2023-11-14T22:13:29"),
        ("/write", "ms", "1700000010000", "2023-11-14T22:13:30"),
        ("/write", "u", "1700000011000000", "2023-11-14T22:13:31"),
        ("/write", "µ", "1700000012000000", "2023-11-14T22:13:32"),
        ("/write", "n", "1700000013000000000", "2023-11-14T22:13:33"),
    ];
    for (i, (path, precision, ts, want)) in cases.iter().enumerate() {
        let db_key = if *path == "/api/v2/write" {
            "bucket"
        } else {
            "db"
        };
        let line = format!("p,case={i} v=1 {ts}");
        let (status, body) =
            post(&s, path, &[(db_key, "db"), ("precision", precision)], line).await;
        assert_eq!(status, 204, "{path} {precision}: {body}");
        let rows = s
            .query_json("db", &format!("SELECT time FROM p WHERE \"case\" = '{i}'"))
            .await;
        assert_eq!(
            rows,
            vec![json!({"time": want})],
            "{path} precision={precision} ts={ts}"
        );
    }
    // Spellings of one API are refused on another.
    for (path, db_key, p) in [
        ("/api/v2/write", "bucket", "h"),
        ("/api/v3/write_lp", "db", "n"),
        ("/write", "db", "sec"),
    ] {
        let (status, body) = post(&s, path, &[(db_key, "db"), ("precision", p)], "p v=1 1").await;
        assert_eq!(status, 400, "{path} {p}: {body}");
        assert!(body.contains("invalid precision"), "{body}");
    }
}

#[tokio::test]
async fn missing_timestamp_gets_server_time() {
    let s = TestServer::start().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    s.write_ok("db", "m v=1").await;
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let rows = s
        .query_json("db", "SELECT CAST(time AS BIGINT) AS t FROM m")
        .await;
    let t = rows[0]["t"].as_i64().unwrap();
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
}

#[tokio::test]
async fn v3_partial_write_keeps_good_lines() {
    let s = TestServer::start().await;
    let body = "m,t=a v=1 1\nm,t=b v=oops 2\n\n# comment\nm,t=c v=3 3\nm v=\"str\" 4\nno_fields 5";
    let (status, text) = post(&s, "/api/v3/write_lp", &[("db", "db")], body).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "partial write of line protocol occurred");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{text}");
    assert_eq!(data[0]["line_number"], 2);
    assert_eq!(data[0]["original_line"], "m,t=b v=oops 2");
    assert!(
        data[0]["error_message"].as_str().unwrap().contains("'v'"),
        "{text}"
    );
    assert_eq!(data[1]["line_number"], 6);
    assert!(
        data[1]["error_message"]
            .as_str()
            .unwrap()
            .contains("expected float field, got string field"),
        "{text}"
    );
    assert_eq!(data[2]["line_number"], 7);
    assert!(
        data[2]["error_message"]
            .as_str()
            .unwrap()
            .contains("no fields"),
        "{text}"
    );
    let rows = s.query_json("db", "SELECT t FROM m ORDER BY t").await;
    assert_eq!(rows, vec![json!({"t": "a"}), json!({"t": "c"})]);
}

#[tokio::test]
async fn accept_partial_false_writes_nothing() {
    let s = TestServer::start().await;
    s.write_ok("db", "m v=1 1").await;
    let (status, text) = post(
        &s,
        "/api/v3/write_lp",
        &[("db", "db"), ("accept_partial", "false")],
        "m v=2 2\nm v=x 3",
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    // InfluxDB 3 Core's body: the first error, as one object.
    assert_eq!(
        v,
        json!({"error": "line protocol parsing error", "data": {"original_line": "m v=x 3", "line_number": 2, "error_message": v["data"]["error_message"]}})
    );
    assert!(
        v["data"]["error_message"]
            .as_str()
            .unwrap()
            .contains("field"),
        "{v}"
    );
    assert_eq!(s.query_json("db", "SELECT v FROM m").await.len(), 1);
    // A type conflict counts too, and no new column is created for the batch.
    let (status, _) = post(
        &s,
        "/api/v3/write_lp",
        &[("db", "db"), ("accept_partial", "false")],
        "m v=1,w=2 2\nm v=1i 3",
    )
    .await;
    assert_eq!(status, 400);
    let cols = s
        .query_json(
            "db",
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'm'",
        )
        .await;
    assert_eq!(cols.len(), 2, "{cols:?}");
}

#[tokio::test]
async fn v1_and_v2_default_to_all_or_nothing() {
    let s = TestServer::start().await;
    let (status, text) = post(&s, "/write", &[("db", "db")], "m v=1 1\nm v=bad 2").await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "line protocol parsing error");
    assert_eq!(v["data"]["line_number"], 2);
    assert_eq!(v["data"]["original_line"], "m v=bad 2");

    let (status, text) = post(
        &s,
        "/api/v2/write",
        &[("bucket", "db")],
        "m v=1 1\nm v=bad 2\nm v=also_bad 3",
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], "invalid");
    assert_eq!(v["line"], 2);
    let msg = v["message"].as_str().unwrap();
    // Core's v2 message, then the first line's error.
    assert!(
        msg.starts_with("write buffer error: parsing for line protocol failed: line 2: "),
        "{msg}"
    );
    assert!(msg.contains("1 more"), "{msg}");

    // Nothing was written; the database was not even created.
    let r = s.query("db", "SELECT * FROM m", "json").await;
    assert_eq!(r.status(), 404);

    // accept_partial=true on v1 keeps the good line.
    let (status, text) = post(
        &s,
        "/write",
        &[("db", "db"), ("accept_partial", "true")],
        "m v=1 1\nm v=bad 2",
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("partial write"), "{text}");
    assert_eq!(s.query_json("db", "SELECT v FROM m").await.len(), 1);
}

#[tokio::test]
async fn at_most_100_errors_are_reported() {
    let s = TestServer::start().await;
    // A partial write (one good line) lists its rejected lines, at most 100.
    let body: String = std::iter::once("m v=1 0\n".to_string())
        .chain((0..250).map(|i| format!("m v=bad{i}\n")))
        .collect();
    let (status, text) = post(&s, "/api/v3/write_lp", &[("db", "db")], body).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn schema_conflicts_name_the_column() {
    let s = TestServer::start().await;
    s.write_ok("db", "m,host=a v=1 1").await;
    for (line, want) in [
        ("m v=1i 2", "invalid column type for column 'v'"),
        (
            "m,v=x w=1 2",
            "tag 'v' conflicts with the existing field 'v'",
        ),
        (
            "m host=1 2",
            "field 'host' conflicts with the existing tag 'host'",
        ),
        ("m,a=1,a=2 v=1 2", "duplicate tag key 'a'"),
        ("m v=1,v=2 2", "duplicate field key 'v'"),
        ("m v=99999999999999999999i 2", "out of range"),
        ("m v=1.2.3 2", "'1.2.3'"),
        ("m v=1 99999999999999999999", "invalid timestamp"),
    ] {
        let (status, text) = post(&s, "/api/v3/write_lp", &[("db", "db")], line).await;
        assert_eq!(status, 400, "{line}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let msg = v["data"]["error_message"].as_str().unwrap();
        assert!(msg.contains(want), "{line}: {msg}");
    }
}

#[tokio::test]
async fn invalid_database_names_and_missing_params() {
    let s = TestServer::start().await;
    // InfluxDB 3 Core's rule: letters, digits, '_' and '-', a letter or
    // digit first, one '/' before a retention policy, 64 bytes at most.
    let long = "x".repeat(65);
    for db in [
        "-bad",
        "_bad",
        "has space",
        "a.b",
        "a/b/c",
        "a/",
        long.as_str(),
    ] {
        let (status, text) = post(&s, "/api/v3/write_lp", &[("db", db)], "m v=1 1").await;
        assert_eq!(status, 400, "{db}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid database name"),
            "{text}"
        );
    }
    let (status, text) = post(&s, "/api/v2/write", &[("bucket", "a.b")], "m v=1 1").await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], "invalid");
    for (path, key, db) in [
        ("/api/v3/write_lp", "db", "under_score"),
        ("/api/v2/write", "bucket", "ends-"),
        ("/api/v3/write_lp", "db", "db/rp"),
    ] {
        let (status, text) = post(&s, path, &[(key, db)], "m v=1 1").await;
        assert_eq!(status, 204, "{db}: {text}");
        assert_eq!(s.query_json(db, "SELECT v FROM m").await.len(), 1, "{db}");
    }
    let (status, text) = post(&s, "/api/v3/write_lp", &[], "m v=1 1").await;
    assert_eq!(status, 400);
    assert!(text.contains("'db'"), "{text}");
    let (status, text) = post(&s, "/api/v2/write", &[], "m v=1 1").await;
    assert_eq!(status, 400);
    assert!(text.contains("'bucket'"), "{text}");
    let (status, _) = post(
        &s,
        "/api/v3/write_lp",
        &[("db", "db"), ("accept_partial", "maybe")],
        "m v=1 1",
    )
    .await;
    assert_eq!(status, 400);
}

/// A v1 write's `rp` names the database `db/rp` as InfluxDB 3 Core does,
/// unless it is the default (`autogen` or empty); a '/' in either is 400.
#[tokio::test]
async fn v1_retention_policies_name_the_database() {
    let s = TestServer::start().await;
    for (rp, lp) in [
        (None, "m v=1 1"),
        (Some("autogen"), "m v=2 2"),
        (Some(""), "m v=3 3"),
        (Some("weekly"), "m v=4 4"),
    ] {
        let mut q = vec![("db", "telegraf")];
        q.extend(rp.map(|rp| ("rp", rp)));
        let (status, text) = post(&s, "/write", &q, lp).await;
        assert_eq!(status, 204, "{rp:?}: {text}");
    }
    let values = |rows: Vec<Value>| {
        rows.iter()
            .map(|r| r["v"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values(
            s.query_json("telegraf", "SELECT v FROM m ORDER BY time")
                .await
        ),
        [1.0, 2.0, 3.0]
    );
    assert_eq!(
        values(s.query_json("telegraf/weekly", "SELECT v FROM m").await),
        [4.0]
    );
    for q in [[("db", "a/b"), ("rp", "x")], [("db", "a"), ("rp", "x/y")]] {
        let (status, text) = post(&s, "/write", &q, "m v=1 1").await;
        assert_eq!(status, 400, "{q:?}");
        assert!(text.contains("must not contain '/'"), "{text}");
    }
}

#[tokio::test]
async fn gzip_including_multi_member() {
    let s = TestServer::start().await;
    let mut body = gzip(b"m,part=1 v=1 1\n");
    body.extend(gzip(b"m,part=2 v=2 2\n"));
    for (path, key, db) in [
        ("/api/v3/write_lp", "db", "db3"),
        ("/api/v2/write", "bucket", "db2"),
        ("/write", "db", "db1"),
    ] {
        let r = s
            .client()
            .post(s.url(path))
            .query(&[(key, db)])
            .header("content-encoding", "gzip")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}: {}", r.text().await.unwrap());
    }
    for db in ["db1", "db2", "db3"] {
        let rows = s.query_json(db, "SELECT part FROM m ORDER BY part").await;
        assert_eq!(
            rows,
            vec![json!({"part": "1"}), json!({"part": "2"})],
            "{db}"
        );
    }
    let r = s
        .client()
        .post(s.url("/api/v3/write_lp?db=db1"))
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client()
        .post(s.url("/api/v3/write_lp?db=db"))
        .header("content-encoding", "br")
        .body("m v=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn oversized_bodies_and_gzip_bombs_get_413() {
    let s = TestServer::start_with(&["--max-http-request-size", "64KiB"]).await;
    let big = "m v=1 1\n".repeat(10_000); // 80 KB
    let (status, text) = post(&s, "/api/v3/write_lp", &[("db", "db")], big.clone()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("--max-http-request-size"), "{text}");
    // Streamed without a Content-Length.
    let stream = futures_stream(big.clone().into_bytes());
    let r = s
        .client()
        .post(s.url("/api/v3/write_lp?db=db"))
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // 80 KB that compresses to a few hundred bytes.
    let bomb = gzip(big.as_bytes());
    assert!(bomb.len() < 4096);
    let r = s
        .client()
        .post(s.url("/api/v2/write?bucket=db"))
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "request too large");
    // Under the limit is fine.
    let ok = "m v=1 1\n".repeat(1000);
    assert_eq!(
        post(&s, "/api/v3/write_lp", &[("db", "db")], ok).await.0,
        204
    );
}

fn futures_stream(data: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn no_sync_acknowledges_and_data_arrives() {
    let s = TestServer::start().await;
    let (status, _) = post(
        &s,
        "/api/v3/write_lp",
        &[("db", "db"), ("no_sync", "true")],
        "m v=1 1",
    )
    .await;
    assert_eq!(status, 204);
    let mut rows = Vec::new();
    for _ in 0..100 {
        let r = s.query("db", "SELECT v FROM m", "json").await;
        if r.status() == 200 {
            rows = r.json::<Vec<Value>>().await.unwrap();
            if !rows.is_empty() {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(rows, vec![json!({"v": 1.0})]);
}

#[tokio::test]
async fn line_protocol_syntax_end_to_end() {
    let s = TestServer::start().await;
    let body = concat!(
        "# a comment\r\n",
        "my\\ table,tag\\ key=tag\\,value\\=x f\\=ield=\"quote \\\" and \\\\ backslash\",i=-5i,u=7u,b1=t,b2=FALSE,fl=1e3 10\r\n",
        "\r\n",
        "my\\ table,tag\\ key=two s=\"multi\nline\" 20\n",
    );
    s.write_ok("db", body).await;
    let rows = s
        .query_json("db", "SELECT * FROM \"my table\" ORDER BY time")
        .await;
    assert_eq!(
        rows[0],
        json!({"b1": true, "b2": false, "f=ield": "quote \" and \\ backslash", "fl": 1000.0, "i": -5, "tag key": "tag,value=x", "time": "1970-01-01T00:00:00.000000010", "u": 7})
    );
    assert_eq!(
        rows[1],
        json!({"s": "multi\nline", "tag key": "two", "time": "1970-01-01T00:00:00.000000020"})
    );
}
