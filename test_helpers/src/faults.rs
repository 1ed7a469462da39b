//! A fault-injecting proxy in front of a real S3 server (moto, Ceph RGW):
//! the server under test talks S3 to the proxy, which forwards each
//! request, or answers 503 instead, stalls it past the client's timeout,
//! or stores a PUT and then reports a failure. Faults change while the
//! server runs, so a test sees it ride out an outage and recover.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::S3Endpoint;

/// What the proxy does to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Answer every request 503 (the store is down).
    Down,
    /// Answer this percentage of requests 503, forward the rest.
    Flaky(u64),
    /// Hold every request this long before forwarding it.
    Slow(Duration),
    /// Forward PUTs (the object is stored), then answer this percentage
    /// of them 500.
    StoredThenFail(u64),
}

#[derive(Debug)]
struct Shared {
    target: String,
    fault: Mutex<Fault>,
    injected: AtomicU64,
    forwarded: AtomicU64,
    counter: AtomicU64,
    client: reqwest::Client,
}

/// The proxy; stops on drop.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    url: String,
    target: S3Endpoint,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy in front of `target`, forwarding everything until told otherwise.
    pub async fn start(target: &S3Endpoint) -> Self {
        let shared = Arc::new(Shared {
            target: target.url(),
            fault: Mutex::new(Fault::None),
            injected: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            shared,
            url,
            target: target.clone(),
            task,
        }
    }

    /// The endpoint to give the server: the proxy, with the target's keys.
    pub fn endpoint(&self) -> S3Endpoint {
        S3Endpoint {
            url: self.url.clone(),
            ..self.target.clone()
        }
    }

    /// Changes what happens to the next requests.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Requests answered with a fault so far (a stored-then-failed PUT counts).
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::Relaxed)
    }

    /// Requests forwarded to the target so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn s3_error(status: StatusCode, code: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test's fault proxy</Message></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let fault = *shared.fault.lock().unwrap();
    // A fixed sequence (Knuth's multiplicative hash of a counter), so a
    // run's faults do not depend on a random seed.
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let roll = n.wrapping_mul(2_654_435_761) % 100;
    match fault {
        Fault::Down => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            return s3_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable");
        }
        Fault::Flaky(percent) if roll < percent => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            return s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown");
        }
        Fault::Slow(d) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(d).await;
        }
        _ => {}
    }
    let is_put = req.method() == axum::http::Method::PUT;
    let response = forward(&shared, req).await;
    if let Fault::StoredThenFail(percent) = fault
        && is_put
        && roll < percent
    {
        shared.injected.fetch_add(1, Ordering::Relaxed);
        return s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    }
    response
}

/// Headers that describe one hop, not the request.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for h in ["host", "content-length", "transfer-encoding", "connection"] {
        out.remove(h);
    }
    out
}

async fn forward(shared: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, usize::MAX).await else {
        return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody");
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let sent = shared
        .client
        .request(parts.method, format!("{}{path}", shared.target))
        .headers(end_to_end(&parts.headers))
        .body(body)
        .send()
        .await;
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let Ok(r) = sent else {
        return s3_error(StatusCode::BAD_GATEWAY, "ProxyError");
    };
    let status = r.status();
    let headers = end_to_end(r.headers());
    let bytes = r.bytes().await.unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
