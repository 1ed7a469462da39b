//! /ping, /health, /metrics and the headers every response carries.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use test_helpers::TestServer;

#[tokio::test]
async fn ping_get_post_and_head() {
    let s = TestServer::start().await;
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = s
            .client()
            .request(method.clone(), s.url("/ping"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.headers()["x-influxdb-version"], "3.8.0");
        assert_eq!(r.headers()["x-influxdb-build"], "Enterprise");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["version"], "3.8.0");
        assert!(body["revision"].as_str().unwrap().starts_with("inflow-"));
        assert_eq!(body["process_id"].as_str().unwrap().len(), 36);
    }
    // Request-Id and X-Request-Id: one time-ordered (v7) UUID, as Core's.
    let r = s.client().get(s.url("/ping")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["request-id"].to_str().unwrap(), id);
    assert_eq!(
        uuid::Uuid::parse_str(&id).unwrap().get_version_num(),
        7,
        "{id}"
    );
    let next = s.client().get(s.url("/ping")).send().await.unwrap();
    assert_ne!(
        next.headers()["x-request-id"].to_str().unwrap(),
        id,
        "one id per request"
    );
    let r = s.client().head(s.url("/ping")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn health_and_cluster_uuid() {
    let s = TestServer::start().await;
    let mut uuid = None;
    for path in ["/health", "/api/v1/health"] {
        let r = s.client().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let u = r.headers()["cluster-uuid"].to_str().unwrap().to_string();
        assert_eq!(u.len(), 36);
        assert_eq!(r.text().await.unwrap(), "OK");
        uuid.get_or_insert(u.clone());
        assert_eq!(uuid.as_deref(), Some(u.as_str()));
    }
    // Error responses carry it too.
    let r = s.client().get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["cluster-uuid"].to_str().unwrap(),
        uuid.as_deref().unwrap()
    );
}

#[tokio::test]
async fn cluster_uuid_survives_restart() {
    let mut s = TestServer::start().await;
    let before = s
        .client()
        .get(s.url("/health"))
        .send()
        .await
        .unwrap()
        .headers()["cluster-uuid"]
        .clone();
    s.restart().await;
    let after = s
        .client()
        .get(s.url("/health"))
        .send()
        .await
        .unwrap()
        .headers()["cluster-uuid"]
        .clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn metrics_count_writes_queries_and_flushes() {
    let s = TestServer::start().await;
    s.write_ok("db", "cpu,host=a usage=1 1\ncpu,host=b usage=2 2")
        .await;
    let r = s.write_lp("db", "cpu,host=c usage=oops 3").await;
    assert_eq!(r.status(), 400);
    s.query_json("db", "SELECT * FROM cpu").await;
    let r = s.query("db", "SELEC nonsense", "json").await;
    assert_eq!(r.status(), 400);
    let r = s.client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("\n# EOF\n"), "Core's end marker");
    let value = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(value("inflow_write_lines_total"), 2.0, "{text}");
    assert_eq!(value("inflow_write_lines_rejected_total"), 1.0, "{text}");
    assert!(value("inflow_write_bytes_total") > 40.0, "{text}");
    assert_eq!(
        value("inflow_write_requests_total{api=\"v3\",status=\"204\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value("inflow_write_requests_total{api=\"v3\",status=\"400\"}"),
        1.0,
        "{text}"
    );
    assert!(
        value("inflow_write_duration_seconds_count") >= 2.0,
        "{text}"
    );
    assert_eq!(value("inflow_query_requests_total"), 2.0, "{text}");
    assert_eq!(value("inflow_query_errors_total"), 1.0, "{text}");
    assert!(
        value("inflow_query_duration_seconds_count") >= 2.0,
        "{text}"
    );
    assert!(
        value("inflow_wal_flushes_total{result=\"ok\"}") >= 1.0,
        "{text}"
    );
    assert!(
        value("inflow_wal_flush_duration_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(value("inflow_wal_flush_bytes_total") > 0.0, "{text}");
}

#[tokio::test]
async fn help_lists_every_flag_with_env() {
    let out = std::process::Command::new(test_helpers::bin_path("inflow"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--node-id",
        "--object-store",
        "--data-dir",
        "--bucket",
        "--aws-endpoint",
        "--aws-access-key-id",
        "--aws-secret-access-key",
        "--aws-region",
        "--aws-allow-http",
        "--http-bind",
        "--without-auth",
        "--wal-flush-interval",
        "--max-http-request-size",
        "--log-filter",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(
        help.contains("INFLOW_NODE_ID") && help.contains("INFLOW_WAL_FLUSH_INTERVAL"),
        "{help}"
    );
}

#[tokio::test]
async fn without_auth_and_memory_store_are_accepted() {
    let s = TestServer::start_with(&["--without-auth", "--object-store", "memory"]).await;
    s.write_ok("db", "m f=1 1").await;
    assert_eq!(s.query_json("db", "SELECT f FROM m").await.len(), 1);
}

/// CORS as InfluxDB 3 Core: a preflight is 204 without a token and allows
/// everything; successful responses allow any origin, errors do not.
#[tokio::test]
async fn cors_preflight_and_allow_origin() {
    let s = TestServer::start().await;
    let r = s
        .anonymous_client()
        .request(
            reqwest::Method::OPTIONS,
            s.url("/api/v3/query_sql?db=db&q=SELECT%201"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "*"),
        ("access-control-allow-headers", "*"),
        ("access-control-max-age", "86400"),
    ] {
        assert_eq!(r.headers()[name], value, "{name}");
    }
    let ok = s.client().get(s.url("/health")).send().await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "*");
    let unauthorized = s
        .anonymous_client()
        .get(s.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(
        unauthorized
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
