//! InfluxDB 1.x's `/query`: auth, management statements, retention
//! policies, parameters, and the same answers over the buffer and over
//! Parquet. (The semantics are proven against InfluxDB 1.6 itself by
//! tests/clients/test_influxql_oracle.py.)

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use test_helpers::TestServer;

async fn influxql(s: &TestServer, db: &str, q: &str) -> (u16, Value) {
    let r = s
        .client()
        .get(s.url("/query"))
        .query(&[("db", db), ("q", q)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// POSTs a statement as a form, as clients that change things do.
async fn post_influxql(s: &TestServer, db: &str, q: &str) -> Value {
    let r = s
        .client()
        .post(s.url("/query"))
        .form(&[("db", db), ("q", q)])
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

#[tokio::test]
async fn auth_parse_errors_and_statement_errors() {
    let s = TestServer::start().await;
    s.write_ok("db", "cpu,host=a usage=1.5 1000000000").await;
    let token = s.admin_token().unwrap().to_string();
    let anon = s.anonymous_client();

    // No token: 401 with Core's body; v1's ways of sending one all work.
    let r = anon
        .get(s.url("/query"))
        .query(&[("db", "db"), ("q", "SHOW MEASUREMENTS")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "the request was not authenticated"})
    );
    let want = json!({"results": [{"statement_id": 0, "series": [
        {"name": "measurements", "columns": ["name"], "values": [["cpu"]]}]}]});
    let by_p = anon
        .get(s.url("/query"))
        .query(&[
            ("db", "db"),
            ("q", "SHOW MEASUREMENTS"),
            ("u", "me"),
            ("p", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(by_p.json::<Value>().await.unwrap(), want);
    let by_basic = anon
        .post(s.url("/query"))
        .basic_auth("me", Some(&token))
        .form(&[("db", "db"), ("q", "SHOW MEASUREMENTS")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_basic.json::<Value>().await.unwrap(), want);
    let by_body = anon
        .post(s.url("/query?db=db"))
        .header("authorization", format!("Token {token}"))
        .header("content-type", "application/vnd.influxql")
        .body("SHOW MEASUREMENTS")
        .send()
        .await
        .unwrap();
    assert_eq!(by_body.json::<Value>().await.unwrap(), want);

    // A parse error is 400 for the whole request; a statement's error is in its result.
    let (status, body) = influxql(&s, "db", "SELECT * FROM").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "error parsing query: found EOF, expected identifier at line 1, char 15"})
    );
    let (status, body) = influxql(
        &s,
        "db",
        "SELECT usage FROM cpu; SELECT * FROM cpu WHERE time > 'x'",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["results"][0]["series"][0]["values"],
        json!([["1970-01-01T00:00:01Z", 1.5]])
    );
    assert_eq!(body["results"][1]["statement_id"], 1);
    assert!(
        body["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("invalid time literal")
    );
    let (_, body) = influxql(&s, "nope", "SELECT usage FROM cpu").await;
    assert_eq!(
        body,
        json!({"results": [{"statement_id": 0, "error": "database not found: nope"}]})
    );
    let (_, body) = influxql(&s, "db", "GRANT ALL TO bob").await;
    assert_eq!(
        body["results"][0]["error"],
        "GRANT ALL is not supported by Inflow"
    );

    // A token for one database reads it and not another.
    let r = s
        .client()
        .post(s.url("/api/v3/enterprise/configure/token"))
        .json(&json!({"token_name": "reader", "permissions": [
            {"resource_type": "db", "resource_names": ["db"], "actions": ["read"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let reader = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.write_ok("other", "m v=1 1").await;
    let ask = async |db: &str, q: &str| -> Value {
        let r = anon
            .get(s.url("/query"))
            .bearer_auth(&reader)
            .query(&[("db", db), ("q", q)])
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    };
    let error_of = |v: &Value| {
        v["results"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let ok = ask("db", "SELECT usage FROM cpu").await;
    assert!(ok["results"][0]["series"].is_array());
    assert!(
        error_of(&ask("other", "SELECT v FROM m").await).starts_with("error authorizing query")
    );
    let dbs = ask("", "SHOW DATABASES").await;
    assert_eq!(dbs["results"][0]["series"][0]["values"], json!([["db"]]));
    assert!(error_of(&ask("", "DROP DATABASE db").await).starts_with("error authorizing query"));
}

#[tokio::test]
async fn management_statements_and_retention_policies() {
    let s = TestServer::start().await;
    // Telegraf's start-up statement; twice is fine, as in InfluxDB.
    for _ in 0..2 {
        let r = post_influxql(&s, "", "CREATE DATABASE \"telegraf\"").await;
        assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    }
    // In a GET, it works and warns, as InfluxDB 1.x does.
    let (_, r) = influxql(&s, "", "CREATE DATABASE other").await;
    assert_eq!(
        r["results"][0]["messages"][0]["text"],
        "deprecated use of 'CREATE DATABASE other' in a read only context, please use a POST request instead"
    );
    let (_, r) = influxql(&s, "", "SHOW DATABASES").await;
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["other"], ["telegraf"]])
    );

    // A write with a retention policy lands in `db/rp`; queries name it with rp= or db.rp.m.
    let r = s
        .client()
        .post(s.url("/write"))
        .query(&[("db", "telegraf"), ("rp", "week")])
        .body("cpu,host=a usage=9 1000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    s.write_ok("telegraf", "cpu,host=a usage=1 1000000000")
        .await;
    let (_, r) = influxql(&s, "telegraf", "SELECT usage FROM telegraf.week.cpu").await;
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["1970-01-01T00:00:01Z", 9]])
    );
    let r: Value = s
        .client()
        .get(s.url("/query"))
        .query(&[
            ("db", "telegraf"),
            ("rp", "week"),
            ("q", "SELECT usage FROM cpu"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["1970-01-01T00:00:01Z", 9]])
    );
    let (_, r) = influxql(&s, "telegraf", "SELECT usage FROM cpu").await;
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["1970-01-01T00:00:01Z", 1]])
    );
    let (_, r) = influxql(&s, "telegraf", "SHOW RETENTION POLICIES").await;
    assert_eq!(
        r["results"][0]["series"][0],
        json!({"columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
               "values": [["autogen", "0s", "168h0m0s", 1, true], ["week", "0s", "168h0m0s", 1, false]]})
    );

    // DROP MEASUREMENT and DROP DATABASE go through the catalog's deletes.
    let r = post_influxql(&s, "telegraf", "DROP MEASUREMENT cpu").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    let (_, r) = influxql(&s, "telegraf", "SHOW MEASUREMENTS").await;
    assert_eq!(r, json!({"results": [{"statement_id": 0}]}));
    post_influxql(&s, "", "DROP DATABASE other").await;
    let (_, r) = influxql(&s, "", "SHOW DATABASES").await;
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["telegraf"]])
    );
}

#[tokio::test]
async fn parameters_and_the_same_answers_over_parquet() {
    // Every WAL file persisted at once: the second run reads Parquet.
    let mut s = TestServer::start_with(&["--wal-snapshot-size", "1"]).await;
    let mut lp = String::new();
    for i in 0..60 {
        for host in ["a", "b"] {
            lp.push_str(&format!(
                "cpu,host={host} usage={}.5,n={i}i {}\n",
                i % 7,
                i * 10_000_000_000i64
            ));
        }
    }
    s.write_ok("db", &lp).await;
    let statements = [
        "SELECT mean(usage), max(n) FROM cpu WHERE time >= 0 AND time < 600s GROUP BY time(1m), host",
        "SELECT last(usage), n FROM cpu WHERE time >= 0 AND time < 600s GROUP BY host",
        "SELECT count(usage) FROM cpu WHERE time >= 0 AND time < 600s AND host = 'b' GROUP BY time(2m) fill(none)",
        "SHOW TAG VALUES WITH KEY = host",
    ];
    let mut before = Vec::new();
    for q in statements {
        let (status, body) = influxql(&s, "db", q).await;
        assert_eq!(status, 200);
        assert!(body["results"][0]["series"].is_array(), "{q}: {body}");
        before.push(body);
    }
    s.restart().await;
    for (q, want) in statements.iter().zip(&before) {
        assert_eq!(&influxql(&s, "db", q).await.1, want, "{q}");
    }
    // Bind parameters, from a JSON `params` as InfluxDB 3 takes them.
    let r: Value = s
        .client()
        .get(s.url("/query"))
        .query(&[
            ("db", "db"),
            (
                "q",
                "SELECT count(usage) FROM cpu WHERE host = $host AND n >= $min",
            ),
            ("params", r#"{"host": "a", "min": 50}"#),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        json!([["1970-01-01T00:00:00Z", 10]])
    );
}

/// `EXPLAIN` answers as InfluxDB 1.x shapes it (one series, one `QUERY
/// PLAN` column, a line per row) with Inflow's plan: the SQL per
/// measurement and DataFusion's physical plan; `EXPLAIN ANALYZE` runs it
/// and adds the metrics.
#[tokio::test]
async fn explain_shows_the_sql_and_the_plan() {
    let s = TestServer::start().await;
    s.write_ok(
        "db",
        "cpu,host=a v=1 1000000000\ncpu,host=b v=2 2000000000\nmem,host=a v=3 1000000000",
    )
    .await;
    let (status, r) = influxql(
        &s,
        "db",
        "EXPLAIN SELECT mean(v) FROM cpu, mem WHERE host = 'a'",
    )
    .await;
    assert_eq!(status, 200);
    let series = &r["results"][0]["series"][0];
    assert_eq!(series["columns"], json!(["QUERY PLAN"]));
    assert!(series.get("name").is_none(), "{series}");
    let lines: Vec<&str> = series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_str().unwrap())
        .collect();
    assert_eq!(lines[0], "EXPRESSION: mean(v)");
    let sql: Vec<&&str> = lines.iter().filter(|l| l.starts_with("SQL: ")).collect();
    assert_eq!(sql.len(), 2, "one per measurement: {lines:?}");
    assert!(
        sql[0].contains("\"cpu\"") && sql[1].contains("\"mem\""),
        "{sql:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Exec")),
        "a physical plan: {lines:?}"
    );
    assert!(
        lines.contains(&""),
        "a blank row between measurements: {lines:?}"
    );

    let (status, r) = influxql(&s, "db", "EXPLAIN ANALYZE SELECT max(v) FROM cpu").await;
    assert_eq!(status, 200);
    let series = &r["results"][0]["series"][0];
    assert_eq!(series["columns"], json!(["EXPLAIN ANALYZE"]));
    let lines: Vec<&str> = series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_str().unwrap())
        .collect();
    assert_eq!(&lines[..2], &[".", "└── select"]);
    assert!(
        lines.iter().any(|l| l.contains("metrics=")),
        "metrics: {lines:?}"
    );
    // A statement error stays one.
    let (status, r) = influxql(
        &s,
        "db",
        "EXPLAIN SELECT mean(v) FROM cpu WHERE time > 'yesterday'",
    )
    .await;
    assert_eq!(status, 200);
    assert!(r["results"][0]["error"].is_string(), "{r}");
}
