//! The file index through `inflow serve`: POST/DELETE
//! `/api/v3/enterprise/configure/file_index` and their errors, new files
//! recording their values, the compactor indexing the files persisted
//! before, `system.file_index`, and queries skipping the files that cannot
//! match (counted by `inflow_query_parquet_files_*_total`), with the same
//! answers.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seconds `from..to`, one file each: hosts `a`, `z` (so every file's tag
/// range spans every host) and `h{i}`.
fn lines(from: i64, to: i64) -> String {
    (from..to)
        .flat_map(|i| {
            ["a".to_string(), "z".to_string(), format!("h{i:02}")]
                .into_iter()
                .map(move |h| format!("m,host={h},dc=x v={i}i {}\n", i * 1_000_000_000))
        })
        .collect()
}

async fn post(s: &TestServer, body: Value) -> (u16, String) {
    s.post_json("/api/v3/enterprise/configure/file_index", &body)
        .await
}

/// Files scanned and pruned by `q`, and its answer.
async fn scan(s: &TestServer, q: &str) -> (u64, u64, Vec<Value>) {
    let scanned = s.metric("inflow_query_parquet_files_scanned_total").await;
    let pruned = s.metric("inflow_query_parquet_files_pruned_total").await;
    let rows = s.query_json("db", q).await;
    (
        s.metric("inflow_query_parquet_files_scanned_total").await - scanned,
        s.metric("inflow_query_parquet_files_pruned_total").await - pruned,
        rows,
    )
}

#[tokio::test]
async fn queries_skip_the_files_an_index_rules_out() {
    let s = TestServer::start_with(&[
        "--wal-snapshot-size",
        "1",
        "--gen1-duration",
        "1s",
        "--compaction-max-rows",
        "0",
        "--retention-check-interval",
        "100ms",
    ])
    .await;
    const N: i64 = 40;
    s.write_ok("db", &lines(0, N / 2)).await;
    let files = |n: usize| {
        let s = &s;
        async move || {
            let f = s
                .query_json("db", "SELECT count(*) AS n FROM system.parquet_files")
                .await;
            (f[0]["n"].as_u64() == Some(n as u64)).then_some(())
        }
    };
    eventually("the first files", files(N as usize / 2)).await;

    // Without an index, the tag ranges of every file hold h07.
    let (scanned, _, rows) = scan(&s, "SELECT count(*) AS n FROM m WHERE host = 'h07'").await;
    assert_eq!(rows, vec![json!({"n": 1})]);
    assert_eq!(scanned, N as u64 / 2);

    // Bad input.
    let (st, body) = post(&s, json!({"db": "nope", "columns": ["host"]})).await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = post(
        &s,
        json!({"db": "db", "table": "nope", "columns": ["host"]}),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = post(&s, json!({"db": "db", "table": "m", "columns": ["v"]})).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("only tag columns"), "{body}");
    let (st, body) = post(&s, json!({"db": "db", "table": "m", "columns": []})).await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = post(&s, json!({"db": "db", "table": "m", "columns": ["zone"]})).await;
    assert_eq!(st, 400, "{body}");

    // The index; then more files, which record their values at once.
    let (st, body) = post(&s, json!({"db": "db", "table": "m", "columns": ["host"]})).await;
    assert_eq!(st, 201, "{body}");
    s.write_ok("db", &lines(N / 2, N)).await;
    eventually("every file", files(N as usize)).await;
    // The compactor indexes the files written before the index.
    let index = eventually("the older files indexed", async || {
        let v = s.query_json("db", "SELECT * FROM system.file_index").await;
        (v[0]["indexed_files"] == json!(N)).then_some(v)
    })
    .await;
    assert_eq!(
        index,
        vec![json!({"table_name": "m", "column_names": ["host"], "indexed_files": N, "files": N})]
    );

    // Equality and IN open only the files that hold the values.
    for (q, n, opened) in [
        ("SELECT count(*) AS n FROM m WHERE host = 'h07'", 1, 1),
        ("SELECT count(*) AS n FROM m WHERE host = 'h33'", 1, 1),
        (
            "SELECT count(*) AS n FROM m WHERE host IN ('h03', 'h33', 'h99')",
            2,
            2,
        ),
        ("SELECT count(*) AS n FROM m WHERE host = 'nowhere'", 0, 0),
        ("SELECT count(*) AS n FROM m WHERE host = 'a'", N, N),
    ] {
        let (scanned, pruned, rows) = scan(&s, q).await;
        assert_eq!(rows, vec![json!({"n": n})], "{q}");
        assert_eq!(scanned, opened as u64, "{q}");
        assert_eq!(pruned, (N - opened) as u64, "{q}");
    }
    let v = s
        .query_json(
            "db",
            "SELECT host, v FROM m WHERE host IN ('h05', 'h25') ORDER BY v",
        )
        .await;
    assert_eq!(
        v,
        vec![
            json!({"host": "h05", "v": 5}),
            json!({"host": "h25", "v": 25})
        ]
    );

    // A database-wide index, and deletes (the files keep their values).
    let (st, body) = post(&s, json!({"db": "db", "columns": ["dc"]})).await;
    assert_eq!(st, 201, "{body}");
    let v = s
        .query_json(
            "db",
            "SELECT table_name, column_names FROM system.file_index ORDER BY table_name",
        )
        .await;
    assert_eq!(
        v,
        vec![
            json!({"table_name": "m", "column_names": ["host"]}),
            json!({"column_names": ["dc"]}),
        ]
    );
    let del = |q: &'static [(&'static str, &'static str)]| {
        s.delete_status("/api/v3/enterprise/configure/file_index", q)
    };
    assert_eq!(del(&[("db", "db"), ("table", "m")]).await, 200);
    assert_eq!(del(&[("db", "db"), ("table", "m")]).await, 404);
    assert_eq!(del(&[("db", "db")]).await, 200);
    let v = s.query_json("db", "SELECT * FROM system.file_index").await;
    assert!(v.is_empty(), "{v:?}");

    // A table's index goes with the table.
    let (st, body) = post(&s, json!({"db": "db", "table": "m", "columns": ["host"]})).await;
    assert_eq!(st, 201, "{body}");
    let r = s
        .client()
        .delete(s.url("/api/v3/configure/table"))
        .query(&[("db", "db"), ("table", "m")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = s.query_json("db", "SELECT * FROM system.file_index").await;
    assert!(v.is_empty(), "{v:?}");
}
