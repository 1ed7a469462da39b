//! Tokens, the four auth schemes on each API family, permissions, expiry,
//! regeneration, the bootstrap file and cross-server visibility.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use test_helpers::TestServer;

fn basic(token: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{token}"))
    )
}

/// Creates a resource token through the API with the admin client.
async fn resource_token(
    s: &TestServer,
    name: &str,
    permissions: Value,
    expiry_secs: Option<u64>,
) -> String {
    let r = s
        .client()
        .post(s.url("/api/v3/enterprise/configure/token"))
        .json(&json!({"token_name": name, "permissions": permissions, "expiry_secs": expiry_secs}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// Sends a write on `api` with `auth` = (header, query) and returns the status and body.
async fn write(
    s: &TestServer,
    api: &str,
    db: &str,
    header: Option<String>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let (path, key) = match api {
        "v1" => ("/write", "db"),
        "v2" => ("/api/v2/write", "bucket"),
        _ => ("/api/v3/write_lp", "db"),
    };
    let mut req = s
        .anonymous_client()
        .post(s.url(path))
        .query(&[(key, db)])
        .query(query)
        .body("m v=1 1");
    if let Some(h) = header {
        req = req.header("authorization", h);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

async fn query_status(s: &TestServer, db: &str, q: &str, token: Option<&str>) -> (u16, String) {
    let mut req = s
        .anonymous_client()
        .get(s.url("/api/v3/query_sql"))
        .query(&[("db", db), ("q", q)]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn every_scheme_on_every_family() {
    let s = TestServer::start().await;
    let t = s.admin_token().unwrap().to_string();
    // Accepted.
    for (api, header, query) in [
        ("v3", Some(format!("Bearer {t}")), vec![]),
        ("v3", Some(format!("Token {t}")), vec![]),
        ("v3", Some(basic(&t)), vec![]),
        ("v2", Some(format!("Bearer {t}")), vec![]),
        ("v2", Some(basic(&t)), vec![]),
        ("v2", Some(format!("Token {t}")), vec![]),
        ("v1", Some(format!("Bearer {t}")), vec![]),
        ("v1", Some(format!("Token {t}")), vec![]),
        ("v1", Some(basic(&t)), vec![]),
        ("v1", None, vec![("u", "anyone"), ("p", t.as_str())]),
    ] {
        let (status, body) = write(&s, api, "db", header.clone(), &query).await;
        assert_eq!(status, 204, "{api} {header:?} {query:?}: {body}");
    }
    // Refused with 401 and InfluxDB 3 Core's one body on every family
    // (Core authenticates before it routes).
    let refused = json!({"error": "the request was not authenticated"});
    for (api, header, query) in [
        ("v3", None, vec![]),
        ("v3", None, vec![("p", t.as_str())]),
        ("v3", Some("Bearer apiv3_wrong".to_string()), vec![]),
        ("v2", None, vec![]),
        ("v2", None, vec![("p", t.as_str())]),
        ("v2", Some("Token nope".to_string()), vec![]),
        ("v1", None, vec![]),
        ("v1", Some(basic("nope")), vec![]),
        ("v1", None, vec![("u", "x"), ("p", "nope")]),
    ] {
        let (status, got) = write(&s, api, "db", header.clone(), &query).await;
        assert_eq!(
            (status, &got),
            (401, &refused),
            "{api} {header:?} {query:?}"
        );
    }
    // Queries need a token too.
    assert_eq!(query_status(&s, "db", "SELECT 1", None).await.0, 401);
    assert_eq!(query_status(&s, "db", "SELECT 1", Some(&t)).await.0, 200);
}

/// A header that is not `<scheme> <token>` with scheme Bearer, Token or
/// Basic is 400 with InfluxDB 3 Core's body, on every family; never a 500.
#[tokio::test]
async fn malformed_headers_are_400_with_cores_body() {
    let s = TestServer::start().await;
    let malformed = json!({"error": "Authorization header was malformed, the request was not in the form of 'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"});
    for h in [
        "Bearer",
        "Basic %%%",
        "Basic Zm9v",
        "NoSpace",
        "Token",
        "Digest abc",
        "Bearer two words",
    ] {
        for api in ["v1", "v2", "v3"] {
            let (status, body) = write(&s, api, "db", Some(h.to_string()), &[]).await;
            assert_eq!((status, &body), (400, &malformed), "{api} {h}");
        }
    }
    let r = s
        .anonymous_client()
        .get(s.url("/api/v3/query_sql?db=db&q=SELECT%201"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap(), malformed);
}

#[tokio::test]
async fn permissions_read_write_and_system() {
    let s = TestServer::start().await;
    s.write_ok("a", "m v=1 1").await;
    s.write_ok("b", "m v=1 1").await;
    let read_a = resource_token(
        &s,
        "read-a",
        json!([{"resource_type": "db", "resource_names": ["a"], "actions": ["read"]}]),
        None,
    )
    .await;
    let write_all = resource_token(
        &s,
        "write-all",
        json!([{"resource_type": "db", "resource_names": ["*"], "actions": ["write"]}]),
        None,
    )
    .await;
    let rw_b = resource_token(
        &s,
        "rw-b",
        json!([{"resource_type": "db", "resource_names": ["b"], "actions": ["read", "write"]}]),
        None,
    )
    .await;
    let sys = resource_token(
        &s,
        "sys",
        json!([{"resource_type": "system", "resource_names": ["*"], "actions": ["read"]}]),
        None,
    )
    .await;

    let bearer = |t: &str| Some(format!("Bearer {t}"));
    // Writes.
    assert_eq!(write(&s, "v3", "a", bearer(&read_a), &[]).await.0, 403);
    assert_eq!(write(&s, "v3", "a", bearer(&write_all), &[]).await.0, 204);
    assert_eq!(
        write(&s, "v3", "new-db", bearer(&write_all), &[]).await.0,
        204
    );
    assert_eq!(write(&s, "v3", "b", bearer(&rw_b), &[]).await.0, 204);
    assert_eq!(write(&s, "v3", "a", bearer(&rw_b), &[]).await.0, 403);
    assert_eq!(write(&s, "v3", "a", bearer(&sys), &[]).await.0, 403);
    let (status, body) = write(&s, "v2", "a", Some(format!("Token {read_a}")), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "forbidden");
    // Reads.
    assert_eq!(
        query_status(&s, "a", "SELECT * FROM m", Some(&read_a))
            .await
            .0,
        200
    );
    assert_eq!(
        query_status(&s, "b", "SELECT * FROM m", Some(&read_a))
            .await
            .0,
        403
    );
    assert_eq!(
        query_status(&s, "a", "SELECT * FROM m", Some(&write_all))
            .await
            .0,
        403
    );
    assert_eq!(
        query_status(&s, "b", "SELECT * FROM m", Some(&rw_b))
            .await
            .0,
        200
    );
    // System tables need system read or admin, even with db read.
    let (status, body) = query_status(&s, "a", "SELECT * FROM system.tokens", Some(&read_a)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("system read"), "{body}");
    let (status, body) = query_status(
        &s,
        "_internal",
        "SELECT name FROM system.tokens ORDER BY name",
        Some(&sys),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = query_status(&s, "a", "SELECT name FROM system.tokens", Some(&sys)).await;
    assert_eq!(status, 403, "system read grants no read on database a");
    // Configure endpoints need admin.
    for t in [&read_a, &write_all, &sys] {
        let r = s
            .anonymous_client()
            .post(s.url("/api/v3/configure/token/named_admin"))
            .bearer_auth(t)
            .json(&json!({"token_name": "sneaky"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
}

#[tokio::test]
async fn system_tokens_never_shows_secrets() {
    let s = TestServer::start().await;
    let t = resource_token(
        &s,
        "reader",
        json!([{"resource_type": "db", "resource_names": ["a", "b"], "actions": ["read"]}]),
        Some(3600),
    )
    .await;
    let rows = s
        .query_json("_internal", "SELECT * FROM system.tokens ORDER BY token_id")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "_admin");
    assert_eq!(rows[0]["admin"], true);
    assert_eq!(rows[1]["name"], "reader");
    assert_eq!(rows[1]["permissions"], "db:a,b:read");
    assert!(rows[1]["expiry"].is_string());
    let text = serde_json::to_string(&rows).unwrap();
    let admin = s.admin_token().unwrap();
    assert!(!text.contains(&t[6..20]) && !text.contains(admin));
    let keys: Vec<_> = rows[1].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "admin",
            "created_at",
            "expiry",
            "name",
            "permissions",
            "token_id"
        ]
    );
}

#[tokio::test]
async fn admin_token_lifecycle() {
    let s = TestServer::start_without_admin_token().await;
    let anon = s.anonymous_client();
    // Open only while no admin token exists.
    let r = anon
        .post(s.url("/api/v3/configure/token/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let admin = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["name"], "_admin");
    assert!(admin.starts_with("apiv3_") && admin.len() == 92, "{admin}");
    assert_eq!(v["hash"].as_str().unwrap().len(), 128);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["expiry"], Value::Null);
    assert!(v["id"].is_u64());

    let r = anon
        .post(s.url("/api/v3/configure/token/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = anon
        .post(s.url("/api/v3/configure/token/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Named admins, duplicates refused.
    let r = anon
        .post(s.url("/api/v3/configure/token/named_admin"))
        .bearer_auth(&admin)
        .json(&json!({"token_name": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ops: Value = r.json().await.unwrap();
    let ops = ops["token"].as_str().unwrap().to_string();
    let r = anon
        .post(s.url("/api/v3/configure/token/named_admin"))
        .bearer_auth(&ops)
        .json(&json!({"token_name": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Regeneration revokes the old operator token.
    let r = anon
        .post(s.url("/api/v3/configure/token/admin/regenerate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let new_admin = v["token"].as_str().unwrap().to_string();
    assert_ne!(new_admin, admin);
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some(&admin))
            .await
            .0,
        401
    );
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some(&new_admin))
            .await
            .0,
        200
    );
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some(&ops))
            .await
            .0,
        200
    );

    // Delete: 200, then the token is gone; unknown names are 404.
    let r = anon
        .delete(s.url("/api/v3/configure/token?token_name=ops"))
        .bearer_auth(&new_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some(&ops))
            .await
            .0,
        401
    );
    let r = anon
        .delete(s.url("/api/v3/configure/token?token_name=ops"))
        .bearer_auth(&new_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = anon
        .delete(s.url("/api/v3/configure/token"))
        .bearer_auth(&new_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The operator token can't be deleted: 405, as InfluxDB 3 Core.
    let r = anon
        .delete(s.url("/api/v3/configure/token?token_name=_admin"))
        .bearer_auth(&new_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Bad requests.
    let r = anon
        .post(s.url("/api/v3/enterprise/configure/token"))
        .bearer_auth(&new_admin)
        .json(&json!({"token_name": "x", "permissions": [{"resource_type": "table", "resource_names": ["*"], "actions": ["read"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = anon
        .post(s.url("/api/v3/enterprise/configure/token"))
        .bearer_auth(&new_admin)
        .json(&json!({"token_name": "x", "permissions": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let s = TestServer::start().await;
    let t = resource_token(
        &s,
        "short",
        json!([{"resource_type": "db", "resource_names": ["*"], "actions": ["read", "write"]}]),
        Some(1),
    )
    .await;
    assert_eq!(
        write(&s, "v3", "db", Some(format!("Bearer {t}")), &[])
            .await
            .0,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = write(&s, "v3", "db", Some(format!("Bearer {t}")), &[]).await;
    // Core's one 401 body; the reason (expired) is only logged.
    assert_eq!(
        (status, body),
        (401, json!({"error": "the request was not authenticated"}))
    );
}

#[tokio::test]
async fn server_endpoints_need_auth_unless_disabled() {
    let s = TestServer::start().await;
    let anon = s.anonymous_client();
    for path in ["/health", "/ping", "/metrics", "/api/v1/health"] {
        assert_eq!(
            anon.get(s.url(path)).send().await.unwrap().status(),
            401,
            "{path}"
        );
        assert_eq!(
            s.client().get(s.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let s = TestServer::start_with(&["--disable-authz", "health,ping,metrics"]).await;
    let anon = s.anonymous_client();
    for path in ["/health", "/ping", "/metrics"] {
        assert_eq!(
            anon.get(s.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    assert_eq!(query_status(&s, "_internal", "SELECT 1", None).await.0, 401);
    let s = TestServer::start_with(&["--disable-authz", "ping"]).await;
    let anon = s.anonymous_client();
    assert_eq!(anon.get(s.url("/ping")).send().await.unwrap().status(), 200);
    assert_eq!(
        anon.get(s.url("/health")).send().await.unwrap().status(),
        401
    );
    let err = TestServer::try_start(
        "inflow",
        &["serve"],
        &["--disable-authz", "writes"],
        Arc::new(tempfile::tempdir().unwrap()),
    )
    .await
    .unwrap_err();
    assert!(err.contains("unknown endpoint 'writes'"), "{err}");
}

#[tokio::test]
async fn without_auth_everything_is_open() {
    let s = TestServer::start_with(&["--without-auth"]).await;
    assert!(s.admin_token().is_none());
    let anon = s.anonymous_client();
    assert_eq!(write(&s, "v2", "db", None, &[]).await.0, 204);
    assert_eq!(
        anon.get(s.url("/metrics")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        query_status(&s, "_internal", "SELECT count(*) FROM system.tokens", None)
            .await
            .0,
        200
    );
    // As InfluxDB 3 Core: the token API is disabled without auth.
    let r = anon
        .post(s.url("/api/v3/configure/token/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "endpoint disabled, started without auth"})
    );
}

#[tokio::test]
async fn admin_token_file_bootstrap() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let file = dir.path().join("secret.json");
    std::fs::write(&file, "{\"token\": \"apiv3_from-a-secret\"}\n").unwrap();
    let f = file.display().to_string();
    let s = TestServer::try_start(
        "inflow",
        &["serve"],
        &["--admin-token-file", &f],
        Arc::clone(&dir),
    )
    .await
    .unwrap();
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some("apiv3_from-a-secret"))
            .await
            .0,
        200
    );
    drop(s);
    // A rotated secret replaces the old admin token.
    std::fs::write(&file, "apiv3_rotated\n").unwrap();
    let s = TestServer::try_start(
        "inflow",
        &["serve"],
        &["--admin-token-file", &f],
        Arc::clone(&dir),
    )
    .await
    .unwrap();
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some("apiv3_rotated"))
            .await
            .0,
        200
    );
    assert_eq!(
        query_status(&s, "_internal", "SELECT 1", Some("apiv3_from-a-secret"))
            .await
            .0,
        401
    );
    drop(s);
    // Missing and malformed files stop start-up with a clear message.
    let missing = dir.path().join("nope").display().to_string();
    let err = TestServer::try_start(
        "inflow",
        &["serve"],
        &["--admin-token-file", &missing],
        Arc::clone(&dir),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("--admin-token-file") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(&file, "{\"tok\": 1}").unwrap();
    let err = TestServer::try_start(
        "inflow",
        &["serve"],
        &["--admin-token-file", &f],
        Arc::clone(&dir),
    )
    .await
    .unwrap_err();
    assert!(err.contains("no string field \"token\""), "{err}");
    std::fs::write(&file, "two tokens").unwrap();
    let err = TestServer::try_start("inflow", &["serve"], &["--admin-token-file", &f], dir)
        .await
        .unwrap_err();
    assert!(err.contains("whitespace"), "{err}");
}

#[tokio::test]
async fn a_token_created_on_one_server_works_on_another() {
    let a = TestServer::start().await;
    let dir = a.temp_dir();
    let b = TestServer::try_start("inflow", &["serve"], &["--node-id", "second"], dir)
        .await
        .unwrap();
    let t = resource_token(
        &a,
        "shared",
        json!([{"resource_type": "db", "resource_names": ["*"], "actions": ["write"]}]),
        None,
    )
    .await;
    let mut status = 0;
    for _ in 0..100 {
        status = write(&b, "v3", "db", Some(format!("Bearer {t}")), &[])
            .await
            .0;
        if status == 204 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 204, "server b never saw the token");
}

fn cli(args: &[&str], token: Option<&str>) -> (bool, String, String) {
    test_helpers::run_cli(args, token)
}

#[tokio::test]
async fn cli_creates_lists_and_deletes_tokens() {
    let s = TestServer::start_without_admin_token().await;
    let host = s.url("");
    let (ok, out, err) = tokio::task::spawn_blocking({
        let host = host.clone();
        move || cli(&["create", "token", "--admin", "--host", &host], None)
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let admin = out
        .lines()
        .find_map(|l| l.strip_prefix("Token: "))
        .unwrap()
        .to_string();
    assert!(admin.starts_with("apiv3_"));

    let (ok, out, err) = tokio::task::spawn_blocking({
        let (host, admin) = (host.clone(), admin.clone());
        move || {
            cli(
                &[
                    "create",
                    "token",
                    "--name",
                    "writer",
                    "--permission",
                    "db:sensors:read,write",
                    "--host",
                    &host,
                    "--format",
                    "json",
                ],
                Some(&admin),
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let writer = v["token"].as_str().unwrap().to_string();
    assert_eq!(
        write(&s, "v3", "sensors", Some(format!("Bearer {writer}")), &[])
            .await
            .0,
        204
    );
    assert_eq!(
        write(&s, "v3", "other", Some(format!("Bearer {writer}")), &[])
            .await
            .0,
        403
    );

    let (ok, out, err) = tokio::task::spawn_blocking({
        let (host, admin) = (host.clone(), admin.clone());
        move || {
            cli(
                &["show", "tokens", "--host", &host, "--format", "json"],
                Some(&admin),
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["_admin", "writer"]);
    assert_eq!(rows[1]["permissions"], "db:sensors:read,write");

    let (ok, out, err) = tokio::task::spawn_blocking({
        let (host, admin) = (host.clone(), admin.clone());
        move || {
            cli(
                &["delete", "token", "writer", "--host", &host],
                Some(&admin),
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("deleted"));
    assert_eq!(
        write(&s, "v3", "sensors", Some(format!("Bearer {writer}")), &[])
            .await
            .0,
        401
    );

    // Errors are reported, with a failing exit code.
    let (ok, _, err) = tokio::task::spawn_blocking({
        let host = host.clone();
        move || cli(&["show", "tokens", "--host", &host], Some("apiv3_wrong"))
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        cli(
            &[
                "create",
                "token",
                "--name",
                "x",
                "--permission",
                "db:x:fly",
                "--host",
                &host,
            ],
            Some(&admin),
        )
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("invalid --permission"), "{err}");
}
