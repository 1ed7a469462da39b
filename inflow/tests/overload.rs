//! Overload and hostile clients: far more writers than the server takes,
//! connections that never finish their headers, bodies sent a byte a
//! second. The server answers 429 or 503 with Retry-After instead of
//! making clients time out, its memory stays bounded, it cuts slow clients
//! off, and it serves normally once the load stops.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use test_helpers::{TestServer, rss_of};

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn ten_times_the_writers_get_429_or_503_and_memory_stays_bounded() {
    let mut s = TestServer::start_with(&[
        "--buffer-mem-limit",
        "32MiB",
        "--max-write-bytes-in-flight",
        "4MiB",
        "--max-http-request-size",
        "4MiB",
    ])
    .await;
    // The memory the server holds, not what jemalloc keeps of what it
    // freed: by default it returns dirty pages over 10 s, which is most of
    // this test (docs/reliability.md has both figures).
    s.set_env("_RJEM_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:100");
    s.restart().await;
    s.write_ok("db", "m,w=0 v=0i 1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = s.rss_bytes().unwrap();
    // 40 writers of 2 MiB bodies: 80 MiB at once against a 4 MiB budget.
    let body = Arc::new(
        (0..50_000)
            .map(|i| {
                format!(
                    "m,w=w{} v={i}i,pad=\"{}\" {}\n",
                    i % 50,
                    "x".repeat(20),
                    i + 10
                )
            })
            .collect::<String>(),
    );
    assert!(body.len() as u64 > 2 * MIB);
    let peak = Arc::new(AtomicU64::new(idle));
    let sampler = {
        let peak = Arc::clone(&peak);
        let pid = s.pid().unwrap();
        tokio::spawn(async move {
            loop {
                if let Some(rss) = rss_of(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let client = s.client().clone();
            let url = s.url("/api/v3/write_lp?db=db");
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
                let mut slowest = Duration::ZERO;
                let mut without_retry_after = 0;
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(4) {
                    let sent = Instant::now();
                    let r = client
                        .post(&url)
                        .body(body.as_str().to_string())
                        .send()
                        .await
                        .unwrap();
                    slowest = slowest.max(sent.elapsed());
                    let status = r.status().as_u16();
                    if status != 204 && r.headers().get("retry-after").is_none() {
                        without_retry_after += 1;
                    }
                    *seen.entry(status).or_default() += 1;
                    if status != 204 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                (seen, slowest, without_retry_after)
            })
        })
        .collect();
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (s, slow, missing) = t.await.unwrap();
        assert_eq!(missing, 0, "every refusal says Retry-After");
        for (k, v) in s {
            *seen.entry(k).or_default() += v;
        }
        slowest = slowest.max(slow);
    }
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "statuses {seen:?}, slowest {slowest:?}, RSS idle {} MiB, peak {} MiB",
        idle / MIB,
        peak / MIB
    );
    assert!(seen.keys().all(|k| [204, 429, 503].contains(k)), "{seen:?}");
    assert!(
        seen.get(&204).is_some_and(|n| *n > 0),
        "some writes go through: {seen:?}"
    );
    assert!(
        seen.get(&429).is_some_and(|n| *n > 0),
        "the budget refuses some: {seen:?}"
    );
    assert!(
        slowest < Duration::from_secs(10),
        "no write waits for a client timeout: {slowest:?}"
    );
    assert!(
        peak < idle + 3 * 32 * MIB,
        "peak RSS {peak} with idle {idle}"
    );
    // The load over, writes and queries go through at once.
    s.write_ok("db", "m,w=after v=1i 5").await;
    let rows = s
        .query_json("db", "SELECT count(*) AS n FROM m WHERE w = 'after'")
        .await;
    assert_eq!(rows[0]["n"], 1);
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(mut tcp: TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(within, tcp.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let s = TestServer::start_with(&[
        "--without-auth",
        "--http-header-read-timeout",
        "1s",
        "--http-body-read-timeout",
        "2s",
    ])
    .await;
    let addr = s
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // Headers that never end.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"POST /api/v3/write_lp?db=db HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(tcp);
    }
    let started = Instant::now();
    for tcp in stalled {
        read_to_close(tcp, Duration::from_secs(5))
            .await
            .expect("the server closes a connection whose headers never end");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // A body of 100 bytes sent a byte a second.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        b"POST /api/v3/write_lp?db=db HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if tcp.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        tcp
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    trickle.abort();
    let _ = trickle.await;
    // Meanwhile and after, everyone else is served.
    s.write_ok("db", "m v=1i 1").await;
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM m").await[0]["n"],
        1
    );
}

#[tokio::test]
async fn a_trickled_body_gets_408() {
    let s = TestServer::start_with(&["--without-auth", "--http-body-read-timeout", "1s"]).await;
    let addr = s
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        b"POST /api/v3/write_lp?db=db HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nm v=1",
    )
    .await
    .unwrap();
    let answer = read_to_close(tcp, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--http-body-read-timeout"), "{answer}");
}
