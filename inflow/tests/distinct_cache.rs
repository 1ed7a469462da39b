//! The distinct value cache through `inflow serve`'s HTTP API: create
//! (201, the same again 204, other settings 409), bad input (400, 404),
//! `distinct_cache()` against `SELECT DISTINCT`, new tag values, filters,
//! `system.distinct_caches`, the cardinality bound, delete, restart.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn rows(s: &TestServer, q: &str) -> Value {
    Value::Array(s.query_json("db", q).await)
}

async fn create(s: &TestServer, body: Value) -> (u16, String) {
    s.post_json("/api/v3/configure/distinct_cache", &body).await
}

const DATA: &str = "cpu,host=a,region=us usage=1,state=\"ok\" 1000000000\n\
                    cpu,host=b,region=eu usage=2,state=\"ok\" 2000000000\n\
                    cpu,host=c,region=eu usage=3,state=\"bad\" 3000000000\n\
                    cpu,host=a,region=us usage=4,state=\"ok\" 4000000000\n\
                    cpu,host=d usage=5 5000000000";

#[tokio::test]
async fn create_query_delete_and_errors() {
    let mut s = TestServer::start().await;
    s.write_ok("db", DATA).await;

    let (st, body) = create(
        &s,
        json!({"db": "nope", "table": "cpu", "columns": ["host"]}),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "nope", "columns": ["host"]}),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "columns": []})).await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "columns": ["zone"]})).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid column provided: zone"), "{body}");
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["usage"]}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("only tag and string columns"), "{body}");
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["host"], "max_cardinality": 0}),
    )
    .await;
    assert_eq!(st, 400, "{body}");

    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["region", "host"]}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["name"], "cpu_region_host_distinct_cache");
    assert_eq!(created["max_cardinality"], 100000);
    assert_eq!(created["max_age"], 86400);
    let (st, _) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["region", "host"]}),
    )
    .await;
    assert_eq!(st, 204);
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["region", "host"], "max_age": 60, "name": "cpu_region_host_distinct_cache"}),
    )
    .await;
    assert_eq!(st, 409, "{body}");

    // The same combinations as SELECT DISTINCT, filled from earlier writes.
    let q_cache = "SELECT region, host FROM distinct_cache('cpu', 'cpu_region_host_distinct_cache') ORDER BY region, host";
    let q_plain = "SELECT DISTINCT region, host FROM cpu ORDER BY region, host";
    assert_eq!(rows(&s, q_cache).await, rows(&s, q_plain).await);
    assert_eq!(rows(&s, q_cache).await.as_array().unwrap().len(), 4);

    // New tag values arrive with writes; filters on the columns.
    s.write_ok("db", "cpu,host=e,region=ap usage=1 6000000000")
        .await;
    assert_eq!(rows(&s, q_cache).await, rows(&s, q_plain).await);
    let v = rows(
        &s,
        "SELECT host FROM distinct_cache('cpu') WHERE region = 'eu' ORDER BY host",
    )
    .await;
    assert_eq!(v, json!([{"host": "b"}, {"host": "c"}]));
    let v = rows(
        &s,
        "SELECT count(*) AS n FROM distinct_cache('cpu') WHERE region NOT IN ('eu', 'us')",
    )
    .await;
    assert_eq!(v, json!([{"n": 1}]));

    // A string field, and a bound of two combinations: the two seen last.
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "name": "two", "columns": ["host"], "max_cardinality": 2}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    s.write_ok("db", "cpu,host=b,region=eu usage=1 7000000000")
        .await;
    let v = rows(
        &s,
        "SELECT host FROM distinct_cache('cpu', 'two') ORDER BY host",
    )
    .await;
    assert_eq!(v, json!([{"host": "b"}, {"host": "e"}]));
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "name": "states", "columns": ["state"]}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let v = rows(
        &s,
        "SELECT state FROM distinct_cache('cpu', 'states') WHERE state IS NOT NULL ORDER BY state",
    )
    .await;
    assert_eq!(v, json!([{"state": "bad"}, {"state": "ok"}]));

    let v = rows(
        &s,
        "SELECT \"table\", name, column_names, max_cardinality, max_age_seconds, cardinality \
         FROM system.distinct_caches ORDER BY name",
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"table": "cpu", "name": "cpu_region_host_distinct_cache", "column_names": ["region", "host"], "max_cardinality": 100000, "max_age_seconds": 86400, "cardinality": 5},
            {"table": "cpu", "name": "states", "column_names": ["state"], "max_cardinality": 100000, "max_age_seconds": 86400, "cardinality": 2},
            {"table": "cpu", "name": "two", "column_names": ["host"], "max_cardinality": 2, "max_age_seconds": 86400, "cardinality": 2}
        ])
    );

    // A kill -9 and restart: the definitions stay, the contents come back.
    let before = rows(&s, q_cache).await;
    s.kill();
    s.restart().await;
    let mut after = Value::Null;
    for _ in 0..50 {
        after = rows(&s, q_cache).await;
        if after == before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(after, before);

    // Delete: 200, then 404.
    let del = |name: &'static str| {
        let s = &s;
        async move {
            let q = [("db", "db"), ("table", "cpu"), ("name", name)];
            s.delete_status("/api/v3/configure/distinct_cache", &q)
                .await
        }
    };
    assert_eq!(del("two").await, 200);
    assert_eq!(del("two").await, 404);
    let r = s
        .query("db", "SELECT * FROM distinct_cache('cpu', 'two')", "json")
        .await;
    assert_eq!(r.status(), 400);
}

/// InfluxQL's `SHOW TAG VALUES` over all time reads a distinct value cache
/// whose hierarchy starts with the key (seen here through its bound: it
/// keeps one host); with a condition, or for another key, the table.
#[tokio::test]
async fn show_tag_values_reads_the_cache() {
    let s = TestServer::start().await;
    s.write_ok("db", DATA).await;
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "columns": ["host"], "max_cardinality": 1}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let show = |q: &'static str| {
        let s = &s;
        async move {
            let r = s
                .client()
                .get(s.url("/query"))
                .query(&[("db", "db"), ("q", q)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            v["results"][0]["series"][0]["values"].clone()
        }
    };
    assert_eq!(
        show("SHOW TAG VALUES FROM cpu WITH KEY = host").await,
        json!([["host", "d"]])
    );
    assert_eq!(
        show("SHOW TAG VALUES FROM cpu WITH KEY = host WHERE region = 'eu'").await,
        json!([["host", "b"], ["host", "c"]])
    );
    assert_eq!(
        show("SHOW TAG VALUES FROM cpu WITH KEY = region").await,
        json!([["region", "eu"], ["region", "us"]])
    );
}
