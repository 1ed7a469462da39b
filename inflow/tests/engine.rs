//! The processing engine through `inflow serve --plugin-dir`: plugin files
//! uploaded over HTTP, WAL, schedule and request triggers running real
//! Python, what plugins write read back by SQL, error behaviours, timeouts,
//! dry runs, packages installed from PyPI into the plugin venv, triggers
//! surviving a kill -9, the system tables and the metrics.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_helpers::TestServer;

/// A server with the engine on, and its plugin directory.
async fn engine_server(extra: &[&str]) -> (TestServer, tempfile::TempDir) {
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_str().unwrap().to_string();
    let mut args = vec!["--plugin-dir", dir.as_str()];
    args.extend_from_slice(extra);
    let s = TestServer::start_with(&args).await;
    let (st, body) = s
        .post_json("/api/v3/configure/database", &json!({"db": "db"}))
        .await;
    assert_eq!(st, 200, "{body}");
    (s, plugins)
}

async fn upload(s: &TestServer, name: &str, content: &str) {
    let (st, body) = s
        .post_json(
            "/api/v3/plugins/files",
            &json!({"plugin_name": name, "content": content}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

async fn create_trigger(s: &TestServer, body: Value) -> (u16, String) {
    s.post_json("/api/v3/configure/processing_engine_trigger", &body)
        .await
}

async fn trigger(s: &TestServer, name: &str, plugin: &str, spec: &str, extra: Value) {
    let mut body = json!({
        "db": "db",
        "trigger_name": name,
        "plugin_filename": plugin,
        "trigger_specification": spec,
        "disabled": false,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (st, text) = create_trigger(s, body).await;
    assert_eq!(st, 200, "{text}");
}

/// Polls `q` until its rows satisfy `done` (5 s at most).
async fn wait_rows(s: &TestServer, q: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = s.try_rows("db", q).await.unwrap_or_default();
        if done(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {q}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const DOUBLER: &str = r#"
def process_writes(influxdb3_local, table_batches, args):
    factor = float(args["factor"])
    for batch in table_batches:
        if batch["table_name"] != "cpu":
            continue
        for row in batch["rows"]:
            line = LineBuilder("cpu_scaled")
            line.tag("host", row["host"])
            line.float64_field("usage", row["usage"] * factor)
            line.int64_field("calls", 1)
            line.time_ns(row["time"])
            influxdb3_local.write(line)
        influxdb3_local.info(f"scaled {len(batch['rows'])} rows")
"#;

#[tokio::test]
async fn wal_trigger_writes_rows_that_sql_reads_back() {
    let (s, plugins) = engine_server(&[]).await;
    s.write_ok("db", "cpu,host=early usage=1 1").await;
    upload(&s, "scale.py", DOUBLER).await;
    assert!(plugins.path().join("scale.py").is_file());
    trigger(
        &s,
        "scale",
        "scale.py",
        "table:cpu",
        json!({"trigger_arguments": {"factor": 3}}),
    )
    .await;
    // A row written before the trigger existed is not sent to it; each
    // flushed batch after it is, once.
    s.write_ok("db", "cpu,host=a usage=1.5 10\ncpu,host=b usage=2 20")
        .await;
    s.write_ok("db", "mem,host=a used=1 30").await;
    s.write_ok("db", "cpu,host=a usage=4 40").await;
    let rows = wait_rows(
        &s,
        "SELECT host, usage, calls, time FROM cpu_scaled ORDER BY time",
        |r| r.len() >= 3,
    )
    .await;
    assert_eq!(
        Value::Array(rows),
        json!([
            {"host": "a", "usage": 4.5, "calls": 1, "time": "1970-01-01T00:00:00.000000010"},
            {"host": "b", "usage": 6.0, "calls": 1, "time": "1970-01-01T00:00:00.000000020"},
            {"host": "a", "usage": 12.0, "calls": 1, "time": "1970-01-01T00:00:00.000000040"},
        ])
    );
    // The plugin's own write went through the normal write path: it did
    // not trigger the table:cpu trigger again, and no row came twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = s
        .query_json("db", "SELECT count(*) AS n FROM cpu_scaled")
        .await;
    assert_eq!(n, vec![json!({"n": 3})]);

    let logs = s
        .query_json(
            "db",
            "SELECT trigger_name, log_level, log_text FROM system.processing_engine_logs \
             ORDER BY event_time",
        )
        .await;
    assert_eq!(
        logs[0],
        json!({"trigger_name": "scale", "log_level": "INFO", "log_text": "scaled 2 rows"})
    );
    let triggers = s
        .query_json(
            "db",
            "SELECT trigger_name, plugin_filename, trigger_specification, disabled, \
             trigger_arguments FROM system.processing_engine_triggers",
        )
        .await;
    assert_eq!(
        triggers,
        vec![json!({
            "trigger_name": "scale", "plugin_filename": "scale.py",
            "trigger_specification": "table:cpu", "disabled": false,
            "trigger_arguments": "{\"factor\":\"3\"}",
        })]
    );

    // Disabled, it sees nothing; enabled again, it sees new writes.
    let client = s.client();
    let q = [("db", "db"), ("trigger_name", "scale")];
    let r = client
        .post(s.url("/api/v3/configure/processing_engine_trigger/disable"))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.write_ok("db", "cpu,host=off usage=1 50").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = client
        .post(s.url("/api/v3/configure/processing_engine_trigger/enable"))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.write_ok("db", "cpu,host=on usage=1 60").await;
    let rows = wait_rows(
        &s,
        "SELECT host FROM cpu_scaled WHERE host IN ('on', 'off')",
        |r| !r.is_empty(),
    )
    .await;
    assert_eq!(rows, vec![json!({"host": "on"})]);
    assert!(
        s.metric("inflow_engine_calls_total{db=\"db\",kind=\"wal\",trigger=\"scale\"}")
            .await
            >= 3
    );
}

#[tokio::test]
async fn schedule_trigger_downsamples_every_second() {
    let (s, _plugins) = engine_server(&[]).await;
    s.write_ok(
        "db",
        "temp,room=a v=10 1000000000\ntemp,room=a v=20 2000000000\ntemp,room=b v=5 1000000000",
    )
    .await;
    upload(
        &s,
        "rollup.py",
        r#"
import datetime

def process_scheduled_call(influxdb3_local, call_time, args):
    assert isinstance(call_time, datetime.datetime), type(call_time)
    rows = influxdb3_local.query(
        "SELECT room, avg(v) AS mean FROM temp WHERE room = $room GROUP BY room",
        {"room": args["room"]},
    )
    for row in rows:
        line = LineBuilder(args["into"]).tag("room", row["room"]).float64_field("mean", row["mean"])
        influxdb3_local.write(line.time_ns(0))
    influxdb3_local.info("rolled up at", call_time.isoformat())
"#,
    )
    .await;
    trigger(
        &s,
        "rollup",
        "rollup.py",
        "every:1s",
        json!({"trigger_arguments": {"room": "a", "into": "temp_mean"}}),
    )
    .await;
    let rows = wait_rows(&s, "SELECT room, mean FROM temp_mean", |r| !r.is_empty()).await;
    assert_eq!(rows, vec![json!({"room": "a", "mean": 15.0})]);
    // It keeps running: a second call logs a second line.
    let logs = wait_rows(
        &s,
        "SELECT log_text FROM system.processing_engine_logs WHERE trigger_name = 'rollup'",
        |r| r.len() >= 2,
    )
    .await;
    assert!(
        logs[0]["log_text"]
            .as_str()
            .unwrap()
            .starts_with("rolled up at 20"),
        "{logs:?}"
    );

    // A cron trigger with a bad expression, and a spec of no known kind,
    // are refused with the reason.
    for (spec, reason) in [
        ("cron:not a cron", "cron"),
        ("sometimes", "trigger specification"),
        ("every:0s", "every"),
    ] {
        let (st, body) = create_trigger(
            &s,
            json!({"db": "db", "trigger_name": "x", "plugin_filename": "rollup.py",
                   "trigger_specification": spec}),
        )
        .await;
        assert_eq!(st, 400, "{spec}: {body}");
        assert!(body.contains(reason), "{spec}: {body}");
    }
}

const API: &str = r#"
import json

def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):
    calls = influxdb3_local.cache.get("calls", default=0) + 1
    influxdb3_local.cache.put("calls", calls, ttl=60)
    kind = query_parameters.get("kind", "dict")
    if kind == "text":
        return "hello " + query_parameters.get("name", "world")
    if kind == "status":
        return ({"error": "teapot"}, 418, {"X-Plugin": "yes"})
    if kind == "raise":
        raise RuntimeError("bad request plugin")
    count = influxdb3_local.query("SELECT count(*) AS n FROM cpu")[0]["n"]
    return {
        "calls": calls,
        "rows": count,
        "body": json.loads(request_body) if request_body else None,
        "has_auth": any(k.lower() == "authorization" for k in request_headers),
        "agent": request_headers.get("x-agent"),
    }
"#;

#[tokio::test]
async fn request_trigger_answers_with_what_the_plugin_returns() {
    let (s, _plugins) = engine_server(&[]).await;
    s.write_ok("db", "cpu,host=a usage=1 1\ncpu,host=b usage=2 2")
        .await;
    upload(&s, "api.py", API).await;
    trigger(&s, "api", "api.py", "request:tools/api", json!({})).await;

    let client = s.client();
    let r = client
        .post(s.url("/api/v3/engine/tools/api"))
        .header("x-agent", "tests")
        .body(r#"{"x": [1, 2]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"calls": 1, "rows": 2, "body": {"x": [1, 2]}, "has_auth": false, "agent": "tests"})
    );
    // The cache keeps state between calls.
    let body: Value = client
        .get(s.url("/api/v3/engine/tools/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["calls"], 2);

    let r = client
        .get(s.url("/api/v3/engine/tools/api?kind=text&name=inflow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.text().await.unwrap(), "hello inflow");

    let r = client
        .get(s.url("/api/v3/engine/tools/api?kind=status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-plugin"], "yes");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"error": "teapot"}));

    // A plugin that raises answers 500 with the error, and the server goes on.
    let r = client
        .get(s.url("/api/v3/engine/tools/api?kind=raise"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("bad request plugin"), "{text}");

    // Unknown paths are 404; a request without a token is 401.
    let r = client
        .get(s.url("/api/v3/engine/tools/none"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .anonymous_client()
        .get(s.url("/api/v3/engine/tools/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A second trigger cannot take the same path; a trigger name is unique
    // in its database.
    let (st, body) = create_trigger(
        &s,
        json!({"db": "db", "trigger_name": "api2", "plugin_filename": "api.py",
               "trigger_specification": "request:tools/api"}),
    )
    .await;
    assert_eq!(st, 409, "{body}");
    let (st, body) = create_trigger(
        &s,
        json!({"db": "db", "trigger_name": "api", "plugin_filename": "api.py",
               "trigger_specification": "request:other"}),
    )
    .await;
    assert_eq!(st, 409, "{body}");
    let (st, body) = create_trigger(
        &s,
        json!({"db": "nope", "trigger_name": "t", "plugin_filename": "api.py",
               "trigger_specification": "request:t"}),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = create_trigger(
        &s,
        json!({"db": "db", "trigger_name": "t", "plugin_filename": "missing.py",
               "trigger_specification": "request:t"}),
    )
    .await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("missing.py"), "{body}");
}

#[tokio::test]
async fn failing_plugins_follow_their_error_behavior_and_never_block_writes() {
    let (s, _plugins) = engine_server(&["--plugin-call-timeout", "1s"]).await;
    upload(
        &s,
        "fails.py",
        r#"
def process_writes(influxdb3_local, table_batches, args):
    raise ValueError("always " + args["mode"])
"#,
    )
    .await;
    // Fails on the first call of each batch, then succeeds: Retry calls
    // again with the same rows.
    upload(
        &s,
        "flaky.py",
        r#"
def process_writes(influxdb3_local, table_batches, args):
    tries = influxdb3_local.cache.get("tries", default=0) + 1
    influxdb3_local.cache.put("tries", tries)
    if tries == 1:
        raise ConnectionError("first try fails")
    for batch in table_batches:
        if batch["table_name"] == "cpu":
            for row in batch["rows"]:
                influxdb3_local.write(LineBuilder("retried").int64_field("tries", tries).time_ns(row["time"]))
"#,
    )
    .await;
    upload(
        &s,
        "loops.py",
        r#"
def process_writes(influxdb3_local, table_batches, args):
    while True:
        pass
"#,
    )
    .await;
    for (name, plugin, behavior) in [
        ("logs", "fails.py", "Log"),
        ("disables", "fails.py", "Disable"),
        ("retries", "flaky.py", "Retry"),
        ("loops", "loops.py", "Log"),
    ] {
        trigger(
            &s,
            name,
            plugin,
            "table:cpu",
            json!({"trigger_arguments": {"mode": behavior},
                   "trigger_settings": {"run_async": false, "error_behavior": behavior}}),
        )
        .await;
    }
    s.write_ok("db", "cpu,host=a usage=1 100").await;
    let rows = wait_rows(&s, "SELECT tries, time FROM retried", |r| !r.is_empty()).await;
    assert_eq!(
        rows,
        vec![json!({"tries": 2, "time": "1970-01-01T00:00:00.000000100"})]
    );
    let triggers = wait_rows(
        &s,
        "SELECT trigger_name, disabled FROM system.processing_engine_triggers \
         ORDER BY trigger_name",
        |r| r.iter().any(|t| t["disabled"] == true),
    )
    .await;
    assert_eq!(
        triggers,
        vec![
            json!({"trigger_name": "disables", "disabled": true}),
            json!({"trigger_name": "logs", "disabled": false}),
            json!({"trigger_name": "loops", "disabled": false}),
            json!({"trigger_name": "retries", "disabled": false}),
        ]
    );
    // The looping plugin is stopped by the timeout; meanwhile, and after,
    // writes are acknowledged as usual.
    for i in 0..5 {
        s.write_ok("db", &format!("mem,host=a used={i} {i}")).await;
    }
    let logs = wait_rows(
        &s,
        "SELECT trigger_name, log_text FROM system.processing_engine_logs \
         WHERE log_level = 'ERROR' ORDER BY event_time",
        |r| r.iter().any(|l| l["trigger_name"] == "loops"),
    )
    .await;
    let text_of = |t: &str| {
        logs.iter()
            .filter(|l| l["trigger_name"] == t)
            .map(|l| l["log_text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let failed = text_of("logs");
    assert!(failed.contains("Traceback"), "{failed}");
    assert!(failed.contains("fails.py\", line 3"), "{failed}");
    assert!(failed.contains("ValueError: always Log"), "{failed}");
    assert!(text_of("disables").contains("disabled"), "{logs:?}");
    assert!(text_of("loops").contains("TimeoutError"), "{logs:?}");
    assert!(
        s.metric("inflow_engine_errors_total{db=\"db\",kind=\"wal\",trigger=\"logs\"}")
            .await
            >= 1
    );
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM mem").await,
        vec![json!({"n": 5})]
    );
}

#[tokio::test]
async fn dry_runs_return_logs_and_writes_without_writing() {
    let (s, _plugins) = engine_server(&[]).await;
    upload(&s, "scale.py", DOUBLER).await;
    let (st, body) = s
        .post_json(
            "/api/v3/plugin_test/wal",
            &json!({
                "filename": "scale.py",
                "database": "db",
                "input_lp": "cpu,host=a usage=2 5\ncpu,host=b usage=1 6",
                "input_arguments": {"factor": "10"},
            }),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        out,
        json!({
            "log_lines": ["INFO: scaled 2 rows"],
            "database_writes": {"db": [
                "cpu_scaled,host=a usage=20.0,calls=1i 5",
                "cpu_scaled,host=b usage=10.0,calls=1i 6",
            ]},
            "errors": [],
        })
    );
    // Nothing was written, not even the input.
    let r = s.query("db", "SELECT * FROM cpu_scaled", "json").await;
    assert_ne!(r.status(), 200);

    upload(
        &s,
        "tick.py",
        r#"
def process_scheduled_call(influxdb3_local, call_time, args):
    influxdb3_local.warn("tick", args.get("n"))
    influxdb3_local.write_to_db("other", LineBuilder("ticks").string_field("at", call_time.isoformat()).time_ns(7))
    raise KeyError("after the write")
"#,
    )
    .await;
    let (st, body) = s
        .post_json(
            "/api/v3/plugin_test/schedule",
            &json!({"filename": "tick.py", "database": "db", "schedule": "every:10s",
                    "input_arguments": {"n": "1"}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(out["log_lines"], json!(["WARN: tick 1"]), "{out}");
    let at = out["trigger_time"].as_str().unwrap();
    let line = out["database_writes"]["other"][0].as_str().unwrap();
    assert!(line.starts_with("ticks at=\"20"), "{line}");
    assert!(line.ends_with("\" 7"), "{line}");
    assert!(at.starts_with("20"), "{at}");
    let errors = out["errors"].as_array().unwrap();
    assert!(
        errors[0].as_str().unwrap().contains("KeyError"),
        "{errors:?}"
    );

    // A line that does not parse is reported among the errors, and the
    // plugin runs on the others.
    let (st, body) = s
        .post_json(
            "/api/v3/plugin_test/wal",
            &json!({"filename": "scale.py", "database": "db",
                    "input_lp": "cpu,host=a usage= 1\ncpu,host=c usage=1 2",
                    "input_arguments": {"factor": "1"}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        out["database_writes"],
        json!({"db": ["cpu_scaled,host=c usage=1.0,calls=1i 2"]})
    );
    assert!(
        out["errors"][0].as_str().unwrap().starts_with("line 1: "),
        "{out}"
    );

    // Bad input: a missing plugin, a bad schedule.
    for (path, body, status) in [
        (
            "/api/v3/plugin_test/wal",
            json!({"filename": "none.py", "database": "db", "input_lp": "m v=1"}),
            404,
        ),
        (
            "/api/v3/plugin_test/schedule",
            json!({"filename": "tick.py", "database": "db", "schedule": "every:never"}),
            400,
        ),
    ] {
        let (st, text) = s.post_json(path, &body).await;
        assert_eq!(st, status, "{body}: {text}");
    }
}

#[tokio::test]
async fn plugin_files_stay_inside_the_plugin_dir() {
    let (s, plugins) = engine_server(&[]).await;
    upload(
        &s,
        "lib_plugin/__init__.py",
        "from .helpers import greet\n\ndef process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    return greet()\n",
    )
    .await;
    upload(
        &s,
        "lib_plugin/helpers.py",
        "def greet():\n    return 'v1'\n",
    )
    .await;
    trigger(&s, "lib", "lib_plugin", "request:lib", json!({})).await;
    let get = || async {
        let r = s
            .client()
            .get(s.url("/api/v3/engine/lib"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(get().await, (200, "v1".to_string()));

    // PUT /api/v3/plugins/directory replaces all of the trigger's files
    // (one not given is gone); the next call runs the new code.
    upload(&s, "lib_plugin/stale.py", "x = 1\n").await;
    let r = s
        .client()
        .put(s.url("/api/v3/plugins/directory"))
        .json(&json!({"plugin_name": "lib", "files": [
            {"relative_path": "__init__.py", "content": "from .helpers import greet\n\ndef process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    return greet()\n"},
            {"relative_path": "helpers.py", "content": "def greet():\n    return 'v2'\n"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(get().await, (200, "v2".to_string()));
    assert!(!plugins.path().join("lib_plugin/stale.py").exists());

    // Single-file plugins are replaced by trigger name through PUT.
    upload(&s, "one.py", "def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    return 'one'\n").await;
    trigger(&s, "one", "one.py", "request:one", json!({})).await;
    let r = s
        .client()
        .put(s.url("/api/v3/plugins/files"))
        .json(&json!({"plugin_name": "one", "content": "def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    return 'two'\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client()
        .get(s.url("/api/v3/engine/one"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "two");
    let r = s
        .client()
        .put(s.url("/api/v3/plugins/files"))
        .json(&json!({"plugin_name": "nobody", "content": "x = 1\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // No path leaves the plugin directory.
    let outside = plugins.path().parent().unwrap().join("escaped.py");
    for name in [
        "../escaped.py",
        "a/../../escaped.py",
        outside.to_str().unwrap(),
        "",
    ] {
        let (st, body) = s
            .post_json(
                "/api/v3/plugins/files",
                &json!({"plugin_name": name, "content": "x = 1\n"}),
            )
            .await;
        assert_eq!(st, 400, "{name}: {body}");
    }
    assert!(!outside.exists());
    let (st, body) = create_trigger(
        &s,
        json!({"db": "db", "trigger_name": "t", "plugin_filename": "../x.py",
               "trigger_specification": "request:t"}),
    )
    .await;
    assert_eq!(st, 400, "{body}");

    // Admin only.
    let r = s
        .anonymous_client()
        .post(s.url("/api/v3/plugins/files"))
        .json(&json!({"plugin_name": "a.py", "content": "x = 1\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_server_without_plugin_dir_refuses_engine_endpoints() {
    let s = TestServer::start().await;
    for (path, body) in [
        (
            "/api/v3/configure/processing_engine_trigger",
            json!({"db": "db", "trigger_name": "t", "plugin_filename": "a.py",
                   "trigger_specification": "all_tables"}),
        ),
        (
            "/api/v3/plugins/files",
            json!({"plugin_name": "a.py", "content": "x = 1\n"}),
        ),
        (
            "/api/v3/plugin_test/wal",
            json!({"filename": "a.py", "database": "db", "input_lp": "m v=1"}),
        ),
        (
            "/api/v3/configure/plugin_environment/install_packages",
            json!({"packages": ["iso8601"]}),
        ),
    ] {
        let (st, text) = s.post_json(path, &body).await;
        assert_eq!(st, 400, "{path}: {text}");
        assert!(text.contains("--plugin-dir"), "{path}: {text}");
    }
    let r = s
        .client()
        .get(s.url("/api/v3/engine/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Writes and queries work as ever.
    s.write_ok("db", "m v=1 1").await;
    assert_eq!(
        s.query_json("db", "SELECT v FROM m").await,
        vec![json!({"v": 1.0})]
    );
}

#[tokio::test]
async fn triggers_survive_a_kill_and_a_restart() {
    let (mut s, _plugins) = engine_server(&[]).await;
    upload(&s, "scale.py", DOUBLER).await;
    trigger(
        &s,
        "scale",
        "scale.py",
        "table:cpu",
        json!({"trigger_arguments": {"factor": "2"}}),
    )
    .await;
    trigger(
        &s,
        "off",
        "scale.py",
        "table:cpu",
        json!({"disabled": true}),
    )
    .await;
    s.restart().await;
    // The trigger runs again after the restart, with its arguments; the
    // disabled one stays disabled.
    s.write_ok("db", "cpu,host=a usage=2 1").await;
    let rows = wait_rows(&s, "SELECT usage FROM cpu_scaled", |r| !r.is_empty()).await;
    assert_eq!(rows, vec![json!({"usage": 4.0})]);
    let triggers = s
        .query_json(
            "db",
            "SELECT trigger_name, disabled FROM system.processing_engine_triggers \
             ORDER BY trigger_name",
        )
        .await;
    assert_eq!(
        triggers,
        vec![
            json!({"trigger_name": "off", "disabled": true}),
            json!({"trigger_name": "scale", "disabled": false}),
        ]
    );
    // An enabled trigger is deleted only when disabled or forced.
    let (st, body) = (
        s.delete_status(
            "/api/v3/configure/processing_engine_trigger",
            &[("db", "db"), ("trigger_name", "scale")],
        )
        .await,
        (),
    );
    assert_eq!(st, 400, "{body:?}");
    let st = s
        .delete_status(
            "/api/v3/configure/processing_engine_trigger",
            &[("db", "db"), ("trigger_name", "scale"), ("force", "true")],
        )
        .await;
    assert_eq!(st, 200);
    let st = s
        .delete_status(
            "/api/v3/configure/processing_engine_trigger",
            &[("db", "db"), ("trigger_name", "off")],
        )
        .await;
    assert_eq!(st, 200);
    let st = s
        .delete_status(
            "/api/v3/configure/processing_engine_trigger",
            &[("db", "db"), ("trigger_name", "off")],
        )
        .await;
    assert_eq!(st, 404);
    s.restart().await;
    assert!(
        s.query_json("db", "SELECT * FROM system.processing_engine_triggers")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn packages_install_into_the_plugin_venv() {
    let venv = tempfile::tempdir().unwrap();
    let venv_path = venv.path().join("venv");
    let (s, _plugins) =
        engine_server(&["--virtual-env-location", venv_path.to_str().unwrap()]).await;
    upload(
        &s,
        "dates.py",
        "def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    import iso8601\n    return {\"year\": iso8601.parse_date(query_parameters[\"at\"]).year}\n",
    )
    .await;
    trigger(&s, "dates", "dates.py", "request:dates", json!({})).await;
    let r = s
        .client()
        .get(s.url("/api/v3/engine/dates?at=2024-05-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "iso8601 is not installed yet");
    assert!(r.text().await.unwrap().contains("iso8601"));

    let (st, body) = s
        .post_json(
            "/api/v3/configure/plugin_environment/install_packages",
            &json!({"packages": ["iso8601==2.1.0"]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(venv_path.join("bin").join("python").exists());
    let r = s
        .client()
        .get(s.url("/api/v3/engine/dates?at=2024-05-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"year": 2024}));

    // A requirements file under the plugin directory installs the same way.
    upload(&s, "requirements.txt", "tomli_w==1.0.0\n").await;
    upload(
        &s,
        "toml.py",
        "def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    import tomli_w\n    return tomli_w.dumps({\"a\": 1})\n",
    )
    .await;
    trigger(&s, "toml", "toml.py", "request:toml", json!({})).await;
    let (st, body) = s
        .post_json(
            "/api/v3/configure/plugin_environment/install_requirements",
            &json!({"requirements_location": "requirements.txt"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let r = s
        .client()
        .get(s.url("/api/v3/engine/toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "a = 1\n");
    let (st, body) = s
        .post_json(
            "/api/v3/configure/plugin_environment/install_requirements",
            &json!({"requirements_location": "missing.txt"}),
        )
        .await;
    assert_eq!(st, 404, "{body}");

    // A package that does not exist fails with pip's reason.
    let (st, body) = s
        .post_json(
            "/api/v3/configure/plugin_environment/install_packages",
            &json!({"packages": ["no-such-package-inflow-test-0"]}),
        )
        .await;
    assert_eq!(st, 500, "{body}");
    assert!(body.contains("no-such-package-inflow-test-0"), "{body}");
}

#[tokio::test]
async fn a_disabled_package_manager_refuses_installs() {
    let (s, _plugins) = engine_server(&["--package-manager", "disabled"]).await;
    let (st, body) = s
        .post_json(
            "/api/v3/configure/plugin_environment/install_packages",
            &json!({"packages": ["iso8601"]}),
        )
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("disabled"), "{body}");
}

/// The rows of `q` on a querier (which does not get the test client's
/// token), or none while the query fails.
async fn select(querier: &TestServer, token: &str, q: &str) -> Vec<Value> {
    let r = querier
        .client()
        .get(querier.url("/api/v3/query_sql"))
        .bearer_auth(token)
        .query(&[("db", "db"), ("q", q)])
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Vec::new();
    }
    r.json::<Vec<Value>>().await.unwrap()
}

/// In a split cluster the ingester runs the WAL trigger (once, though the
/// querier shares the plugin directory), and the querier runs the request
/// trigger it is asked for; what that plugin writes goes through an
/// ingester's write path, and the querier reads it back.
#[tokio::test]
async fn a_split_cluster_runs_wal_triggers_on_the_ingester_and_requests_on_the_querier() {
    let cluster = test_helpers::TestCluster::new();
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_str().unwrap();
    let venv = plugins.path().join(".venv");
    let venv = venv.to_str().unwrap();
    let ingester = cluster
        .start(
            "inflow-ingester",
            "ing-0",
            &["--plugin-dir", dir, "--virtual-env-location", venv],
        )
        .await;
    let (st, body) = ingester
        .post_json("/api/v3/configure/database", &json!({"db": "db"}))
        .await;
    assert_eq!(st, 200, "{body}");
    upload(&ingester, "scale.py", DOUBLER).await;
    upload(
        &ingester,
        "note.py",
        r#"
def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):
    influxdb3_local.write(LineBuilder("notes").tag("by", "plugin").string_field("text", request_body.decode()).time_ns(1))
    return {"scaled": influxdb3_local.query("SELECT count(*) AS n FROM cpu_scaled")[0]["n"]}
"#,
    )
    .await;
    trigger(
        &ingester,
        "scale",
        "scale.py",
        "table:cpu",
        json!({"trigger_arguments": {"factor": "2"}}),
    )
    .await;
    trigger(&ingester, "note", "note.py", "request:note", json!({})).await;

    let token_file = ingester.temp_dir().path().join("admin-token");
    let token = ingester.admin_token().unwrap().to_string();
    let querier = cluster
        .start(
            "inflow-querier",
            "q-0",
            &[
                "--plugin-dir",
                dir,
                "--virtual-env-location",
                venv,
                "--admin-token-file",
                token_file.to_str().unwrap(),
                "--replication-interval",
                "50ms",
            ],
        )
        .await;
    ingester
        .write_ok("db", "cpu,host=a usage=1 10\ncpu,host=b usage=2 20")
        .await;
    let authed = |r: reqwest::RequestBuilder| r.bearer_auth(&token);
    let rows = || {
        select(
            &querier,
            &token,
            "SELECT host, usage FROM cpu_scaled ORDER BY host",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while rows().await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the scaled rows never reached the querier"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        rows().await,
        vec![
            json!({"host": "a", "usage": 2.0}),
            json!({"host": "b", "usage": 4.0}),
        ]
    );

    let r = authed(querier.client().post(querier.url("/api/v3/engine/note")))
        .body("from the querier")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"scaled": 2}));
    // The request ran on the querier, which counts it; the ingester did
    // not run it.
    let metrics = authed(querier.client().get(querier.url("/metrics")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"inflow_engine_calls_total{db="db",kind="request",trigger="note"} 1"#),
        "{metrics}"
    );
    // The plugin's row went through the ingester, back to the querier.
    let deadline = Instant::now() + Duration::from_secs(5);
    let notes = loop {
        let notes = select(&querier, &token, "SELECT by, text FROM notes").await;
        if !notes.is_empty() {
            break notes;
        }
        assert!(Instant::now() < deadline, "the plugin's row never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        notes,
        vec![json!({"by": "plugin", "text": "from the querier"})]
    );
    // The querier shares the plugin directory but runs no WAL trigger: each
    // row was scaled once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows().await.len(), 2);

    // A package installed through the ingester into the shared environment
    // is importable by the querier's plugins, which started before it existed.
    upload(
        &ingester,
        "dates.py",
        "def process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    import iso8601\n    return {\"year\": iso8601.parse_date(\"2031-01-02T00:00:00Z\").year}\n",
    )
    .await;
    trigger(&ingester, "dates", "dates.py", "request:dates", json!({})).await;
    let (st, body) = ingester
        .post_json(
            "/api/v3/configure/plugin_environment/install_packages",
            &json!({"packages": ["iso8601==2.1.0"]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let r = authed(querier.client().get(querier.url("/api/v3/engine/dates")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"year": 2031}));
}

/// How many times `trigger` ran as a schedule on `s`, from its /metrics.
async fn schedule_calls(s: &TestServer, trigger: &str) -> u64 {
    let series =
        format!("inflow_engine_calls_total{{db=\"db\",kind=\"schedule\",trigger=\"{trigger}\"}}");
    s.try_metric(&series).await.unwrap_or(0)
}

/// A schedule trigger that names no node runs on one ingester of several,
/// the first running one by node id; when it dies, the next takes over.
#[tokio::test]
async fn one_ingester_of_several_runs_a_schedule() {
    let cluster = test_helpers::TestCluster::new();
    let plugins = tempfile::tempdir().unwrap();
    let dir = plugins.path().to_str().unwrap();
    let mut first = cluster
        .start("inflow-ingester", "ing-a", &["--plugin-dir", dir])
        .await;
    let second = cluster
        .start("inflow-ingester", "ing-b", &["--plugin-dir", dir])
        .await;
    let (st, body) = first
        .post_json("/api/v3/configure/database", &json!({"db": "db"}))
        .await;
    assert_eq!(st, 200, "{body}");
    upload(
        &first,
        "tick.py",
        "def process_scheduled_call(influxdb3_local, call_time, args):\n    influxdb3_local.info('tick')\n",
    )
    .await;
    trigger(&first, "tick", "tick.py", "every:1s", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while schedule_calls(&first, "tick").await < 2 {
        assert!(Instant::now() < deadline, "ing-a never ran the schedule");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(schedule_calls(&second, "tick").await, 0);

    first.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while schedule_calls(&second, "tick").await < 1 {
        assert!(
            Instant::now() < deadline,
            "ing-b never took the schedule over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a plugin sees and what a dry run reports, as InfluxDB 3 Core's own
/// tests state them: a row's keys are its tags, then its fields, each in the
/// order the table got them, then `time`; `influxdb3_local` has exactly
/// Core's attributes; lines a plugin writes are checked against the
/// catalog like a write, and a conflict is among the errors.
#[tokio::test]
async fn dry_runs_check_writes_and_show_rows_as_influxdb3_does() {
    let (s, _plugins) = engine_server(&[]).await;
    s.write_ok("foodb", "cpu,host=A f1=10i 100").await;
    upload(
        &s,
        "surface.py",
        r#"
def process_writes(influxdb3_local, table_batches, args=None):
    for batch in table_batches:
        for row in batch["rows"]:
            influxdb3_local.info("row: " + str(row))
    allowed = {"info", "warn", "error", "query", "write", "cache", "write_to_db", "write_sync", "write_sync_to_db"}
    attrs = {name for name in dir(influxdb3_local) if not name.startswith("__")}
    influxdb3_local.info("extras", sorted(attrs - allowed), "missing", sorted(allowed - attrs))
    influxdb3_local.write_to_db("foodb", LineBuilder("cpu").tag("host", "A").int64_field("f1", 10).uint64_field("f2", 20).bool_field("f3", True))
    influxdb3_local.write_to_db("foodb", LineBuilder("cpu").tag("host", "A").string_field("f1", "not_an_int"))
"#,
    )
    .await;
    let (st, body) = s
        .post_json(
            "/api/v3/plugin_test/wal",
            &json!({"filename": "surface.py", "database": "db",
                    "input_lp": "cpu,host=A,region=west usage=1i,system=23.2 100\nmem,host=B user=43.1 120"}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        out["log_lines"],
        json!([
            "INFO: row: {'host': 'A', 'region': 'west', 'usage': 1, 'system': 23.2, 'time': 100}",
            "INFO: row: {'host': 'B', 'user': 43.1, 'time': 120}",
            "INFO: extras [] missing []",
        ])
    );
    assert_eq!(
        out["database_writes"]["foodb"],
        json!([
            "cpu,host=A f1=10i,f2=20u,f3=t",
            "cpu,host=A f1=\"not_an_int\""
        ])
    );
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].as_str().unwrap().contains("'f1'"), "{errors:?}");

    // A live WAL trigger's rows come in the table's column order too.
    upload(
        &s,
        "rows.py",
        "def process_writes(influxdb3_local, table_batches, args=None):\n    for b in table_batches:\n        for r in b['rows']:\n            influxdb3_local.info(str(list(r)))\n",
    )
    .await;
    trigger(&s, "rows", "rows.py", "table:cpu", json!({})).await;
    s.write_ok("db", "cpu,host=a,zone=z zz=1,aa=2i 1").await;
    s.write_ok("db", "cpu,az=b,host=a mm=1,zz=2 2").await;
    let logs = wait_rows(
        &s,
        "SELECT log_text FROM system.processing_engine_logs WHERE trigger_name = 'rows' \
         ORDER BY event_time",
        |r| r.len() >= 2,
    )
    .await;
    assert_eq!(
        logs,
        vec![
            json!({"log_text": "['host', 'zone', 'zz', 'aa', 'time']"}),
            json!({"log_text": "['host', 'az', 'zz', 'mm', 'time']"}),
        ]
    );
}

/// A plugin blocked outside Python code (a long sleep, which a TimeoutError
/// cannot interrupt) is given up after its timeout and a grace period: the
/// request answers 500, and the server answers the next request at once.
#[tokio::test]
async fn a_plugin_blocked_outside_python_is_abandoned_after_its_timeout() {
    let (s, _plugins) = engine_server(&["--plugin-call-timeout", "1s"]).await;
    upload(
        &s,
        "stuck.py",
        "import time\n\ndef process_request(influxdb3_local, query_parameters, request_headers, request_body, args):\n    if query_parameters.get('sleep'):\n        time.sleep(60)\n    return 'awake'\n",
    )
    .await;
    trigger(&s, "stuck", "stuck.py", "request:stuck", json!({})).await;
    let started = Instant::now();
    let r = s
        .client()
        .get(s.url("/api/v3/engine/stuck?sleep=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("TimeoutError"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let r = s
        .client()
        .get(s.url("/api/v3/engine/stuck"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "awake");
    s.write_ok("db", "m v=1 1").await;
}
