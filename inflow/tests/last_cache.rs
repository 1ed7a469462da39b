//! The last value cache through `inflow serve`'s HTTP API: create (201, the
//! same again 204, other settings 409), bad input (400, 404), the SQL table
//! function with key predicates against the plain SQL answer, new writes,
//! `system.last_caches`, TTL, delete, and a kill -9 and restart.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn rows(s: &TestServer, q: &str) -> Value {
    Value::Array(s.query_json("db", q).await)
}

async fn create(s: &TestServer, body: Value) -> (u16, String) {
    s.post_json("/api/v3/configure/last_cache", &body).await
}

const DATA: &str = "cpu,host=a,region=us usage=1,temp=10i 1000000000\n\
                    cpu,host=a,region=us usage=2,temp=11i 2000000000\n\
                    cpu,host=a,region=us usage=3,temp=12i 3000000000\n\
                    cpu,host=b,region=eu usage=4,temp=20i 1500000000\n\
                    cpu,host=c,region=eu usage=5,temp=30i 2500000000\n\
                    cpu,host=c,region=eu usage=6,temp=31i 3500000000";

#[tokio::test]
async fn create_query_delete_and_errors() {
    let s = TestServer::start().await;
    s.write_ok("db", DATA).await;

    // Bad input: 404s, then 400s, each with its reason.
    let (st, body) = create(&s, json!({"db": "nope", "table": "cpu"})).await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("database not found: nope"), "{body}");
    let (st, body) = create(&s, json!({"db": "db", "table": "nope"})).await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("table not found: nope"), "{body}");
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "key_columns": ["zone"]}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("invalid key column provided: zone"), "{body}");
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "key_columns": ["usage"]}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("only uint64, int64, bool, tag, and string"),
        "{body}"
    );
    for count in [0, 11] {
        let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "count": count})).await;
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("from 1 to 10"), "{body}");
    }
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "value_columns": ["nope"]}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("invalid value column provided: nope"),
        "{body}"
    );
    let (st, body) = create(&s, json!({"db": "db"})).await;
    assert_eq!(st, 400, "{body}");

    // Created, with the defaults: the series key, every other column.
    let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "count": 2})).await;
    assert_eq!(st, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["name"], "cpu_host_region_last_cache");
    assert_eq!(created["key_columns"], json!(["host", "region"]));
    assert_eq!(created["count"], 2);
    assert_eq!(created["ttl"], 14400);
    // The same again: 204; other settings under that name: 409.
    let (st, _) = create(&s, json!({"db": "db", "table": "cpu", "count": 2})).await;
    assert_eq!(st, 204);
    let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "count": 3})).await;
    assert_eq!(st, 409, "{body}");

    // Filled from the rows written before it: the SQL answer per key.
    let cached = rows(
        &s,
        "SELECT host, region, usage, temp, time FROM last_cache('cpu') ORDER BY host, time DESC",
    )
    .await;
    let plain = rows(
        &s,
        "SELECT host, region, usage, temp, time FROM (SELECT *, row_number() OVER \
         (PARTITION BY host, region ORDER BY time DESC) AS n FROM cpu) WHERE n <= 2 \
         ORDER BY host, time DESC",
    )
    .await;
    assert_eq!(cached, plain);
    assert_eq!(cached.as_array().unwrap().len(), 5);

    // Key predicates, and a condition on a value.
    let v = rows(
        &s,
        "SELECT host, usage FROM last_cache('cpu') WHERE host = 'a'",
    )
    .await;
    assert_eq!(
        v,
        json!([{"host": "a", "usage": 3.0}, {"host": "a", "usage": 2.0}])
    );
    let v = rows(
        &s,
        "SELECT host, usage FROM last_cache('cpu') WHERE host IN ('b', 'c') AND usage > 4.5 ORDER BY usage",
    )
    .await;
    assert_eq!(
        v,
        json!([{"host": "c", "usage": 5.0}, {"host": "c", "usage": 6.0}])
    );
    let v = rows(
        &s,
        "SELECT count(*) AS n FROM last_cache('cpu') WHERE host != 'a'",
    )
    .await;
    assert_eq!(v, json!([{"n": 3}]));

    // New writes are there at once.
    s.write_ok(
        "db",
        "cpu,host=b,region=eu usage=7,temp=21i 4000000000\ncpu,host=d,region=ap usage=8 4000000000",
    )
    .await;
    let v = rows(
        &s,
        "SELECT host, usage FROM last_cache('cpu', 'cpu_host_region_last_cache') WHERE host IN ('b', 'd')",
    )
    .await;
    assert_eq!(
        v,
        json!([{"host": "b", "usage": 7.0}, {"host": "b", "usage": 4.0}, {"host": "d", "usage": 8.0}])
    );

    // A second cache on explicit columns; then the table has two, so
    // last_cache('cpu') must name one.
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "name": "by_region", "key_columns": ["region"], "value_columns": ["usage"], "ttl": 60}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let v = rows(
        &s,
        "SELECT * FROM last_cache('cpu', 'by_region') ORDER BY region",
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"region": "ap", "usage": 8.0, "time": "1970-01-01T00:00:04"},
            {"region": "eu", "usage": 7.0, "time": "1970-01-01T00:00:04"},
            {"region": "us", "usage": 3.0, "time": "1970-01-01T00:00:03"}
        ])
    );
    let r = s
        .query("db", "SELECT * FROM last_cache('cpu')", "json")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("several last caches"));
    let v = rows(&s, "SELECT \"table\", name, key_column_names, value_column_names, count, ttl, series FROM system.last_caches ORDER BY name").await;
    assert_eq!(
        v,
        json!([
            {"table": "cpu", "name": "by_region", "key_column_names": ["region"], "value_column_names": ["usage"], "count": 1, "ttl": 60, "series": 3},
            {"table": "cpu", "name": "cpu_host_region_last_cache", "key_column_names": ["host", "region"], "count": 2, "ttl": 14400, "series": 4}
        ])
    );

    // Delete: 200, then 404.
    let del = |name: &'static str| {
        let s = &s;
        async move {
            let q = [("db", "db"), ("table", "cpu"), ("name", name)];
            s.delete_status("/api/v3/configure/last_cache", &q).await
        }
    };
    assert_eq!(del("by_region").await, 200);
    assert_eq!(del("by_region").await, 404);
    let r = s
        .query("db", "SELECT * FROM last_cache('cpu', 'by_region')", "json")
        .await;
    assert_eq!(r.status(), 400);
    let v = rows(&s, "SELECT count(*) AS n FROM last_cache('cpu')").await;
    assert_eq!(v, json!([{"n": 7}]));

    // Deleting the table's data empties its cache too; the cache stays.
    let st = s
        .delete_status(
            "/api/v3/configure/table",
            &[("db", "db"), ("table", "cpu"), ("data_only", "true")],
        )
        .await;
    assert_eq!(st, 200);
    let v = rows(&s, "SELECT count(*) AS n FROM last_cache('cpu')").await;
    assert_eq!(v, json!([{"n": 0}]));
    s.write_ok("db", "cpu,host=a,region=us usage=1 9000000000")
        .await;
    let v = rows(&s, "SELECT host, usage FROM last_cache('cpu')").await;
    assert_eq!(v, json!([{"host": "a", "usage": 1.0}]));
}

#[tokio::test]
async fn rows_expire_after_the_ttl() {
    let s = TestServer::start().await;
    s.write_ok("db", DATA).await;
    let (st, body) = create(&s, json!({"db": "db", "table": "cpu", "ttl": 1})).await;
    assert_eq!(st, 201, "{body}");
    let v = rows(&s, "SELECT count(*) AS n FROM last_cache('cpu')").await;
    assert_eq!(v, json!([{"n": 3}]));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let v = rows(&s, "SELECT count(*) AS n FROM last_cache('cpu')").await;
    assert_eq!(v, json!([{"n": 0}]));

    // The cache goes with its table: a new table of the name has none.
    let r = s
        .client()
        .delete(s.url("/api/v3/configure/table"))
        .query(&[("db", "db"), ("table", "cpu")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.write_ok("db", "cpu,host=a usage=1 1").await;
    let r = s
        .query("db", "SELECT * FROM last_cache('cpu')", "json")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("no last cache"));
    assert_eq!(
        rows(&s, "SELECT * FROM system.last_caches").await,
        json!([])
    );
}

#[tokio::test]
async fn a_kill_and_restart_keeps_the_cache() {
    let mut s = TestServer::start().await;
    s.write_ok("db", DATA).await;
    let (st, body) = create(
        &s,
        json!({"db": "db", "table": "cpu", "key_columns": ["host"]}),
    )
    .await;
    assert_eq!(st, 201, "{body}");
    s.write_ok("db", "cpu,host=a,region=us usage=9 5000000000")
        .await;
    let before = rows(
        &s,
        "SELECT host, usage, time FROM last_cache('cpu') ORDER BY host",
    )
    .await;
    s.kill();
    s.restart().await;
    let mut after = Value::Null;
    for _ in 0..50 {
        after = rows(
            &s,
            "SELECT host, usage, time FROM last_cache('cpu') ORDER BY host",
        )
        .await;
        if after == before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(after, before);
    assert_eq!(
        before,
        json!([
            {"host": "a", "usage": 9.0, "time": "1970-01-01T00:00:05"},
            {"host": "b", "usage": 4.0, "time": "1970-01-01T00:00:01.500"},
            {"host": "c", "usage": 6.0, "time": "1970-01-01T00:00:03.500"}
        ])
    );
}

/// In a split cluster the querier learns of a cache made on the ingester
/// from the catalog, fills it from the rows it already holds, and keeps it
/// current from the WAL it tails.
#[tokio::test]
async fn a_querier_builds_the_caches_an_ingester_defines() {
    let cluster = test_helpers::TestCluster::new();
    let ingester = cluster.start("inflow-ingester", "ingester-0", &[]).await;
    let querier = cluster
        .start(
            "inflow-querier",
            "querier-0",
            &["--replication-interval", "20ms"],
        )
        .await;
    ingester.write_ok("db", DATA).await;
    let (st, body) = ingester
        .post_json(
            "/api/v3/configure/last_cache",
            &json!({"db": "db", "table": "cpu", "key_columns": ["host"]}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = ingester
        .post_json(
            "/api/v3/configure/distinct_cache",
            &json!({"db": "db", "table": "cpu", "columns": ["region"]}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let wait = |q: &'static str, want: Value| {
        let querier = &querier;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let got = querier.try_rows("db", q).await.map(Value::Array);
                if got.as_ref() == Some(&want) {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{q}: {got:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    wait(
        "SELECT host, usage FROM last_cache('cpu') ORDER BY host",
        json!([{"host": "a", "usage": 3.0}, {"host": "b", "usage": 4.0}, {"host": "c", "usage": 6.0}]),
    )
    .await;
    wait(
        "SELECT region FROM distinct_cache('cpu') ORDER BY region",
        json!([{"region": "eu"}, {"region": "us"}]),
    )
    .await;
    ingester
        .write_ok("db", "cpu,host=b,region=ap usage=9 9000000000")
        .await;
    wait(
        "SELECT host, usage FROM last_cache('cpu') WHERE host = 'b'",
        json!([{"host": "b", "usage": 9.0}]),
    )
    .await;
    wait(
        "SELECT region FROM distinct_cache('cpu') ORDER BY region",
        json!([{"region": "ap"}, {"region": "eu"}, {"region": "us"}]),
    )
    .await;
}
