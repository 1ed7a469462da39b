//! Every endpoint of the router (`http_api::endpoints()`, the list the
//! router is built from, so a new route is covered the day it lands) is
//! called without a token (401), with a token that lacks what it needs
//! (403, or for InfluxQL's `/query` the statement's "error authorizing
//! query", as a statement error), and, where a database permission is
//! enough, with one that has it (neither).

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use http_api::{Access, Endpoint};
use reqwest::Method;
use serde_json::{Value, json};
use test_helpers::TestServer;

/// A resource token with read and write on `db` only.
async fn token_for(s: &TestServer, name: &str, db: &str) -> String {
    let (status, body) = s
        .post_json(
            "/api/v3/enterprise/configure/token",
            &json!({"token_name": name, "permissions": [
                {"resource_type": "db", "resource_names": [db], "actions": ["read", "write"]}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// A request to `e` naming database `mine` (and a table, cache, trigger
/// or plugin where the endpoint takes one), with `token` if any.
fn request(s: &TestServer, e: &Endpoint, token: Option<&str>) -> reqwest::RequestBuilder {
    let path = e.path.replace("{*path}", "probe");
    let method = Method::from_bytes(e.method.as_str().as_bytes()).unwrap();
    let query: &[(&str, &str)] = match (e.access, path.as_str()) {
        (Access::Write, _) => &[("db", "mine"), ("bucket", "mine")],
        (Access::Read | Access::Statements, p) if p.contains("influxql") || p == "/query" => {
            &[("db", "mine"), ("q", "SELECT * FROM cpu")]
        }
        (Access::Read, _) => &[("db", "mine"), ("q", "SELECT * FROM cpu")],
        _ => &[("db", "mine"), ("table", "cpu"), ("name", "probe")],
    };
    let mut req = s
        .anonymous_client()
        .request(method.clone(), s.url(&path))
        .query(query);
    if method != Method::GET && method != Method::DELETE {
        req = match e.access {
            Access::Write if path == "/api/v2/delete" => req.json(&json!({
                "start": "1970-01-01T00:00:00Z", "stop": "2100-01-01T00:00:00Z"
            })),
            Access::Write => req.body("cpu,host=a usage=1"),
            _ => req.json(&json!({
                "db": "mine", "q": "SELECT * FROM cpu", "table": "cpu", "name": "probe",
                "token_name": "probe", "trigger_name": "probe",
                "permissions": [{"resource_type": "db", "resource_names": ["mine"], "actions": ["read"]}],
            })),
        };
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req
}

#[tokio::test]
async fn every_endpoint_needs_a_token_with_its_permission() {
    let s = TestServer::start().await;
    s.write_ok("mine", "cpu,host=a usage=1 1").await;
    let elsewhere = token_for(&s, "elsewhere", "other").await;
    let mine = token_for(&s, "mine", "mine").await;
    let endpoints = http_api::endpoints();
    assert!(endpoints.len() > 40, "{} endpoints", endpoints.len());
    let mut failures = Vec::new();
    for e in &endpoints {
        let name = format!("{} {}", e.method, e.path);
        let r = request(&s, e, None).send().await.unwrap();
        if r.status() != 401 {
            failures.push(format!("{name} without a token: {}", r.status()));
        }
        let r = request(&s, e, Some(&elsewhere)).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        match e.access {
            Access::Server | Access::AnyToken => {
                if status == 401 || status == 403 {
                    failures.push(format!("{name} with a valid token: {status} {body}"));
                }
            }
            Access::Statements => {
                if status != 200 || !body.contains("error authorizing query") {
                    failures.push(format!(
                        "{name} without read on the database: {status} {body}"
                    ));
                }
            }
            Access::Read | Access::Write | Access::Admin | Access::FirstAdmin => {
                if status != 403 {
                    failures.push(format!("{name} without the permission: {status} {body}"));
                }
            }
        }
        if matches!(e.access, Access::Read | Access::Write | Access::Statements) {
            let r = request(&s, e, Some(&mine)).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if status == 401 || status == 403 || body.contains("error authorizing query") {
                failures.push(format!("{name} with the permission: {status} {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
