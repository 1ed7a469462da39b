//! `/api/v3/query_sql`: formats, parameters, errors, schema and dedup.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use arrow::datatypes::{DataType, TimeUnit};
use serde_json::{Value, json};
use test_helpers::TestServer;

async fn server_with_cpu() -> TestServer {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a,region=us usage=1.5,count=1i 1000000000\n\
         cpu,host=b,region=eu usage=2.5,count=2i 2000000000\n\
         cpu,host=a,region=us usage=3.5,count=3i 3000000000",
    )
    .await;
    s
}

#[tokio::test]
async fn every_format() {
    let s = server_with_cpu().await;
    let q = "SELECT host, usage, time FROM cpu ORDER BY time";

    let r = s.query("db", q, "json").await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!([
            {"host": "a", "usage": 1.5, "time": "1970-01-01T00:00:01"},
            {"host": "b", "usage": 2.5, "time": "1970-01-01T00:00:02"},
            {"host": "a", "usage": 3.5, "time": "1970-01-01T00:00:03"}
        ])
    );

    for f in ["jsonl", "json_lines"] {
        let r = s.query("db", q, f).await;
        assert_eq!(r.headers()["content-type"], "application/jsonl");
        let text = r.text().await.unwrap();
        assert_eq!(
            text,
            "{\"host\":\"a\",\"usage\":1.5,\"time\":\"1970-01-01T00:00:01\"}\n\
             {\"host\":\"b\",\"usage\":2.5,\"time\":\"1970-01-01T00:00:02\"}\n\
             {\"host\":\"a\",\"usage\":3.5,\"time\":\"1970-01-01T00:00:03\"}\n"
        );
    }

    let r = s.query("db", q, "csv").await;
    assert_eq!(r.headers()["content-type"], "text/csv");
    assert_eq!(
        r.text().await.unwrap(),
        "host,usage,time\na,1.5,1970-01-01T00:00:01\nb,2.5,1970-01-01T00:00:02\na,3.5,1970-01-01T00:00:03\n"
    );

    let pretty = s.query_pretty("db", q).await;
    assert_eq!(
        pretty,
        "+------+-------+---------------------+\n\
         | host | usage | time                |\n\
         +------+-------+---------------------+\n\
         | a    | 1.5   | 1970-01-01T00:00:01 |\n\
         | b    | 2.5   | 1970-01-01T00:00:02 |\n\
         | a    | 3.5   | 1970-01-01T00:00:03 |\n\
         +------+-------+---------------------+"
    );

    let r = s
        .query("db", "SELECT * FROM cpu ORDER BY time", "parquet")
        .await;
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let bytes = r.bytes().await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    // Columns of SELECT * are sorted by name, as in InfluxDB 3.
    assert_eq!(names, ["count", "host", "region", "time", "usage"]);
    assert_eq!(
        schema.field_with_name("host").unwrap().data_type(),
        &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    );
    assert_eq!(
        schema.field_with_name("time").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, None)
    );
    assert_eq!(
        schema.field_with_name("count").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);

    let r = s.query("db", q, "xml").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn accept_header_picks_the_format() {
    let s = server_with_cpu().await;
    for (accept, ctype) in [
        ("text/csv", "text/csv"),
        ("application/jsonl", "application/jsonl"),
        ("text/plain", "text/plain; charset=utf-8"),
        (
            "application/vnd.apache.parquet",
            "application/vnd.apache.parquet",
        ),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
    ] {
        let r = s
            .client()
            .get(s.url("/api/v3/query_sql"))
            .query(&[("db", "db"), ("q", "SELECT 1")])
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], ctype, "{accept}");
    }
}

#[tokio::test]
async fn post_json_and_form_with_params() {
    let s = server_with_cpu().await;
    let r = s
        .client()
        .post(s.url("/api/v3/query_sql"))
        .json(&json!({"db": "db", "q": "SELECT usage FROM cpu WHERE host = $host AND usage > $min ORDER BY time", "format": "json", "params": {"host": "a", "min": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([{"usage": 3.5}]));

    let r = s
        .client()
        .post(s.url("/api/v3/query_sql"))
        .form(&[
            ("db", "db"),
            ("q", "SELECT count(*) AS n FROM cpu WHERE host = $host"),
            ("params", "{\"host\":\"b\"}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([{"n": 1}]));

    // A JSON body labelled as a form (`curl -d`) is JSON, as InfluxDB 3 Core reads it.
    let r = s
        .client()
        .post(s.url("/api/v3/query_sql"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#" {"db": "db", "q": "SELECT count(*) AS n FROM cpu"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([{"n": 3}]));

    let r = s
        .client()
        .get(s.url("/api/v3/query_sql"))
        .query(&[
            ("db", "db"),
            ("q", "SELECT count(*) AS n FROM cpu WHERE count >= $c"),
            ("params", "{\"c\": 2}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!([{"n": 2}]));

    let r = s
        .client()
        .get(s.url("/api/v3/query_sql"))
        .query(&[("db", "db"), ("q", "SELECT 1"), ("params", "[1,2]")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn errors() {
    let s = server_with_cpu().await;
    let r = s.query("db", "SELEKT * FROM cpu", "json").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("SELEKT"), "{v}");

    let r = s.query("db", "SELECT nope FROM cpu", "json").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");

    let r = s.query("db", "SELECT * FROM missing_table", "json").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("missing_table"));

    let r = s.query("nodb", "SELECT 1", "json").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "database not found: nodb");

    let r = s
        .client()
        .get(s.url("/api/v3/query_sql"))
        .query(&[("q", "SELECT 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client()
        .get(s.url("/api/v3/query_sql"))
        .query(&[("db", "db")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The query API is read-only.
    for q in [
        "CREATE TABLE x (a INT)",
        "INSERT INTO cpu (usage) VALUES (1)",
        "DROP TABLE cpu",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let r = s.query("db", q, "json").await;
        assert_eq!(r.status(), 400, "{q}");
    }
}

#[tokio::test]
async fn show_tables_columns_and_information_schema() {
    let s = server_with_cpu().await;
    s.write_ok("db", "mem,host=a free=1i 1").await;
    let rows = s.query_json("db", "SHOW TABLES").await;
    let iox: Vec<_> = rows
        .iter()
        .filter(|r| r["table_schema"] == "iox")
        .map(|r| r["table_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(iox, ["cpu", "mem"]);
    assert!(rows.iter().all(|r| r["table_catalog"] == "public"));

    let rows = s.query_json("db", "SHOW COLUMNS FROM cpu").await;
    let cols: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["column_name"].as_str().unwrap().to_string(),
                r["data_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cols,
        [
            ("count".to_string(), "Int64".to_string()),
            ("host".to_string(), "Dictionary(Int32, Utf8)".to_string()),
            ("region".to_string(), "Dictionary(Int32, Utf8)".to_string()),
            ("time".to_string(), "Timestamp(ns)".to_string()),
            ("usage".to_string(), "Float64".to_string()),
        ]
    );
    let rows = s
        .query_json("db", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox' ORDER BY table_name")
        .await;
    assert_eq!(
        rows,
        vec![json!({"table_name": "cpu"}), json!({"table_name": "mem"})]
    );
}

#[tokio::test]
async fn dedup_later_writes_win_field_by_field() {
    let s = TestServer::start().await;
    s.write_ok("db", "m,host=a f1=1,f2=1 100\nm,host=b f1=9 100")
        .await;
    s.write_ok("db", "m,host=a f1=2 100").await;
    s.write_ok("db", "m,host=a f2=3,f3=\"x\" 100\nm,host=a f1=5 200")
        .await;
    let rows = s
        .query_json(
            "db",
            "SELECT host, f1, f2, f3, CAST(time AS BIGINT) AS t FROM m ORDER BY host, time",
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"host": "a", "f1": 2.0, "f2": 3.0, "f3": "x", "t": 100}),
            json!({"host": "a", "f1": 5.0, "t": 200}),
            json!({"host": "b", "f1": 9.0, "t": 100}),
        ]
    );
    // A series without a tag is distinct from one with it.
    s.write_ok("db", "m f1=7 100").await;
    assert_eq!(
        s.query_json("db", "SELECT f1 FROM m WHERE CAST(time AS BIGINT) = 100")
            .await
            .len(),
        3
    );
}

/// Results up to 1 MiB go out whole with a `content-length`; larger ones
/// stream (chunked), and either way the document stays valid.
#[tokio::test]
async fn results_stream_in_batches() {
    let s = TestServer::start().await;
    let body: String = (0..100_000)
        .map(|i| format!("m,h=h{} v={i} {i}\n", i % 7))
        .collect();
    s.write_ok("db", &body).await;
    // More rows than one DataFusion batch (8192) and more than 1 MiB of
    // JSON: the array must stay valid across the streamed chunks.
    let r = s.query("db", "SELECT v FROM m", "json").await;
    assert_eq!(
        r.headers()
            .get("transfer-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("chunked")
    );
    assert!(r.headers().get("content-length").is_none());
    let rows: Vec<Value> = r.json().await.unwrap();
    let mut values: Vec<i64> = rows
        .iter()
        .map(|r| r["v"].as_f64().unwrap() as i64)
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..100_000).collect::<Vec<i64>>());
    // Several batches but under 1 MiB: sent whole.
    let r = s.query("db", "SELECT v FROM m", "csv").await;
    let length: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(r.headers().get("transfer-encoding").is_none());
    let text = r.text().await.unwrap();
    assert_eq!(text.len(), length);
    assert_eq!(text.lines().count(), 100_001);
    assert_eq!(text.lines().filter(|l| *l == "v").count(), 1);
    let r = s
        .query("db", "SELECT v FROM m WHERE v < 3 ORDER BY v", "json")
        .await;
    assert_eq!(r.headers()["content-length"], "31");
    assert_eq!(
        r.text().await.unwrap(),
        r#"[{"v":0.0},{"v":1.0},{"v":2.0}]"#
    );
    let r = s.query("db", "SELECT v FROM m WHERE v < 0", "json").await;
    assert_eq!(r.text().await.unwrap(), "[]");
}

/// The last point of every series (`DISTINCT ON`), and `first_value` /
/// `last_value` of tags, which run on decoded strings: same rows, and the
/// tags still come out dictionary-encoded.
#[tokio::test]
async fn last_point_per_series_keeps_tag_types() {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a,region=us usage=1.5 1000000000\n\
         cpu,host=b,region=eu usage=2.5 2000000000\n\
         cpu,host=a,region=ap usage=3.5 3000000000\n\
         cpu,host=b usage=4.5 1500000000",
    )
    .await;
    let q = "SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(
        v,
        json!([
            {"host": "a", "region": "ap", "time": "1970-01-01T00:00:03", "usage": 3.5},
            {"host": "b", "region": "eu", "time": "1970-01-01T00:00:02", "usage": 2.5}
        ])
    );
    // The grouping key is dropped from each aggregate's ordering.
    let plan = s.query_pretty("db", &format!("EXPLAIN {q}")).await;
    assert!(
        plan.contains("ORDER BY [cpu.time DESC NULLS FIRST] AS first_value(cpu.usage)"),
        "{plan}"
    );
    let types: Value = s
        .query(
            "db",
            &format!(
                "SELECT arrow_typeof(host) AS h, arrow_typeof(region) AS r FROM ({q}) LIMIT 1"
            ),
            "json",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        types,
        json!([{"h": "Dictionary(Int32, Utf8)", "r": "Dictionary(Int32, Utf8)"}])
    );
    let q = "SELECT host, last_value(region ORDER BY time) AS last, first_value(region ORDER BY time) AS first \
             FROM cpu GROUP BY host ORDER BY host";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"host": "a", "last": "ap", "first": "us"}, {"host": "b", "last": "eu"}])
    );
    let plan = s.query_pretty("db", &format!("EXPLAIN {q}")).await;
    assert!(plan.contains("CAST(cpu.region AS Utf8)"), "{plan}");

    // Only rows at or after the smallest per-series latest time reach the
    // aggregates; the answers are the same, with a WHERE clause too.
    let plan = s
        .query_pretty(
            "db",
            "EXPLAIN SELECT DISTINCT ON (host) * FROM cpu ORDER BY host, time DESC",
        )
        .await;
    assert!(plan.contains("__inflow_cutoff"), "{plan}");
    let q = "SELECT DISTINCT ON (host) host, region, usage FROM cpu WHERE time < '1970-01-01T00:00:02.5Z' \
             ORDER BY host, time DESC";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"host": "a", "region": "us", "usage": 1.5}, {"host": "b", "region": "eu", "usage": 2.5}])
    );
    // The earliest row per host, the same way.
    let q =
        "SELECT host, first_value(usage ORDER BY time) AS u FROM cpu GROUP BY host ORDER BY host";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(v, json!([{"host": "a", "u": 1.5}, {"host": "b", "u": 4.5}]));
    // A latest row with a null field still wins (no IGNORE NULLS).
    s.write_ok("db", "cpu,host=a,region=ap other=1 4000000000")
        .await;
    let q =
        "SELECT host, last_value(usage ORDER BY time) AS u FROM cpu GROUP BY host ORDER BY host";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(v, json!([{"host": "a"}, {"host": "b", "u": 2.5}]));
    // Keys after the time only break ties: still the latest rows only.
    let q = "SELECT host, last_value(usage ORDER BY time, usage NULLS FIRST) AS u FROM cpu \
             GROUP BY host ORDER BY host";
    let v: Value = s.query("db", q, "json").await.json().await.unwrap();
    assert_eq!(v, json!([{"host": "a"}, {"host": "b", "u": 2.5}]));
    let plan = s.query_pretty("db", &format!("EXPLAIN {q}")).await;
    assert!(plan.contains("__inflow_cutoff"), "{plan}");
}

/// Tag equalities select buffered rows before the filter runs (the first
/// key tag by binary search, others by dictionary key); answers are
/// unchanged, nulls included.
#[tokio::test]
async fn tag_equalities_on_buffered_rows() {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a,region=us usage=1 1000000000\n\
         cpu,host=b,region=eu usage=2 2000000000\n\
         cpu,region=us usage=3 3000000000\n\
         cpu,host=c usage=4 4000000000\n\
         cpu,host=a,region=eu usage=5 5000000000",
    )
    .await;
    let usages = |q: &'static str| {
        let s = &s;
        async move {
            let v: Value = s.query("db", q, "json").await.json().await.unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| r["usage"].as_f64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE host = 'a' ORDER BY time").await,
        vec![1.0, 5.0]
    );
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE host IN ('a', 'c') AND region = 'eu' ORDER BY time")
            .await,
        vec![5.0]
    );
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE region = 'us' ORDER BY time").await,
        vec![1.0, 3.0]
    );
    assert!(
        usages("SELECT usage FROM cpu WHERE host = 'zzz'")
            .await
            .is_empty()
    );
    // Values out of order, repeated, missing, and sorting before every
    // stored one (the first key tag is found by binary search).
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE host IN ('c', 'a', 'a', '0', 'bb') ORDER BY time")
            .await,
        vec![1.0, 4.0, 5.0]
    );
    assert!(
        usages("SELECT usage FROM cpu WHERE host = ''")
            .await
            .is_empty()
    );
    // Many values, most of them absent.
    assert_eq!(
        usages(
            "SELECT usage FROM cpu WHERE host IN ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j') ORDER BY time"
        )
        .await,
        vec![1.0, 2.0, 4.0, 5.0]
    );
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE host = 'b' OR usage > 3 ORDER BY time").await,
        vec![2.0, 4.0, 5.0]
    );
    assert_eq!(
        usages("SELECT usage FROM cpu WHERE host <> 'a' ORDER BY time").await,
        vec![2.0, 4.0]
    );
    // The scan keeps only the projected columns and the matched tags.
    assert_eq!(
        s.query_json("db", "SELECT region, max(usage) AS m FROM cpu WHERE host IN ('a', 'c') GROUP BY region ORDER BY region").await,
        vec![json!({"region": "eu", "m": 5.0}), json!({"region": "us", "m": 1.0}), json!({"m": 4.0})]
    );
    // The first key tag's selected rows carry a dictionary of just their values.
    assert_eq!(
        s.query_json("db", "SELECT host, count(*) AS n, sum(usage) AS u FROM cpu WHERE host IN ('c', 'a', 'zz') GROUP BY host ORDER BY host DESC").await,
        vec![json!({"host": "c", "n": 1, "u": 4.0}), json!({"host": "a", "n": 2, "u": 6.0})]
    );
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM cpu WHERE region = 'us'")
            .await,
        vec![json!({"n": 2})]
    );
}

/// A scan estimated at a few thousand rows plans on one partition (no
/// repartitioning, no merges); a large one is spread over the cores. The
/// answers are the same either way.
#[tokio::test]
async fn small_scans_plan_on_one_partition() {
    let s = TestServer::start().await;
    // 120,000 buffered rows: 120 hosts, 1,000 seconds, three fields.
    let body: String = (0..120_000i64)
        .map(|i| {
            format!(
                "cpu,host=h{} v={i},w=1,x=2 {}\n",
                i % 120,
                (i / 120) * 1_000_000_000
            )
        })
        .collect();
    s.write_ok("db", &body).await;
    let small = "SELECT host, max(v) AS v FROM cpu WHERE host = 'h1' GROUP BY host";
    let large = "SELECT host, max(v) AS v, max(w) AS w, max(x) AS x FROM cpu GROUP BY host ORDER BY host LIMIT 2";
    assert_eq!(
        s.query_json("db", small).await,
        vec![json!({"host": "h1", "v": 119_881.0})]
    );
    assert_eq!(
        s.query_json("db", large).await,
        vec![
            json!({"host": "h0", "v": 119_880.0, "w": 1.0, "x": 2.0}),
            json!({"host": "h1", "v": 119_881.0, "w": 1.0, "x": 2.0})
        ]
    );
    let plan = s.query_pretty("db", &format!("EXPLAIN {small}")).await;
    assert!(!plan.contains("RepartitionExec"), "{plan}");
    // The host's few rows of each of the two chunks are one batch.
    assert!(plan.contains("partition_sizes=[1]"), "{plan}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        let plan = s.query_pretty("db", &format!("EXPLAIN {large}")).await;
        assert!(plan.contains("RepartitionExec"), "{plan}");
    }
}

/// `now()` is the time each query starts: it moves between queries and
/// works in the usual dashboard filter.
#[tokio::test]
async fn now_is_each_querys_start_time() {
    let s = TestServer::start().await;
    s.write_ok("db", "m v=1").await;
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64
    };
    let q = "SELECT CAST(now() AS BIGINT) AS n, count(*) AS c FROM m WHERE time > now() - INTERVAL '1 hour'";
    let (before, first) = (wall(), s.query_json("db", q).await);
    assert_eq!(first[0]["c"], json!(1), "{first:?}");
    let n1 = first[0]["n"].as_i64().unwrap();
    assert!(
        n1 >= before - 1_000_000_000 && n1 <= wall() + 1_000_000_000,
        "{n1} vs {before}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let n2 = s.query_json("db", q).await[0]["n"].as_i64().unwrap();
    assert!(n2 > n1, "{n2} <= {n1}");
}

/// A query past `--query-mem-limit` fails with a clear error naming the
/// flag; the server, a small query and writes carry on. The same query
/// runs when the limit allows it.
#[tokio::test]
async fn a_query_past_its_memory_limit_fails_alone() {
    let lp: String = (0..20_000)
        .map(|i| format!("cpu,host=h{i:05} usage={i} {}\n", 1_000 + i))
        .collect();
    let big =
        "SELECT host, count(*) AS n, array_agg(usage) AS u FROM cpu GROUP BY host ORDER BY host";
    let s = TestServer::start_with(&["--query-mem-limit", "256KiB"]).await;
    s.write_ok("db", &lp).await;
    let r = s.query("db", big, "json").await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("Resources exhausted") && body.contains("--query-mem-limit"),
        "{body}"
    );
    let rows = s.query_json("db", "SELECT count(*) AS n FROM cpu").await;
    assert_eq!(rows[0]["n"], 20_000);
    s.write_ok("db", "cpu,host=late usage=1 1").await;

    let roomy = TestServer::start_with(&["--query-mem-limit", "512MiB"]).await;
    roomy.write_ok("db", &lp).await;
    let rows = roomy.query_json("db", big).await;
    assert_eq!(rows.len(), 20_000);
    assert_eq!(rows[7]["host"], "h00007");
}
