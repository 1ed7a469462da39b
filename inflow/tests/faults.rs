//! Object-store faults under continuous writes: a proxy in front of moto
//! answers 503s, stalls requests past the client's timeout, and stores
//! PUTs but reports them failed. Each write either gets 204 and survives a
//! kill -9, or gets an error (503 with Retry-After, never a hang) and may
//! be retried; the server recovers when the store does, without a restart.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use test_helpers::faults::{Fault, FaultProxy};
use test_helpers::{MotoServer, TestCluster, TestServer};

const BATCH: u64 = 50;

/// What the writers saw in one phase.
#[derive(Debug, Default)]
struct Phase {
    acked: BTreeSet<u64>,
    statuses: BTreeMap<u16, usize>,
    without_retry_after: usize,
    slowest: Duration,
}

/// Two writers sending numbered points for `run`; point `n` is at time `n`.
async fn write_for(s: &TestServer, first: u64, run: Duration) -> Phase {
    let tasks: Vec<_> = (0..2u64)
        .map(|w| {
            let client = s.anonymous_client();
            let url = s.url("/api/v3/write_lp?db=db&precision=ns");
            let token = s.admin_token().map(str::to_string);
            tokio::spawn(async move {
                let mut phase = Phase::default();
                let started = Instant::now();
                let mut n = first + w * 1_000_000;
                while started.elapsed() < run {
                    let points: Vec<u64> = (n..n + BATCH).collect();
                    n += BATCH;
                    let body: String = points
                        .iter()
                        .map(|p| format!("m,w=w{w} v={p}i {p}\n"))
                        .collect();
                    let mut req = client.post(&url).body(body);
                    if let Some(t) = &token {
                        req = req.bearer_auth(t);
                    }
                    let sent = Instant::now();
                    let r = req.send().await.unwrap();
                    phase.slowest = phase.slowest.max(sent.elapsed());
                    let status = r.status().as_u16();
                    *phase.statuses.entry(status).or_default() += 1;
                    if status == 204 {
                        phase.acked.extend(points);
                    } else {
                        if r.headers().get("retry-after").is_none() {
                            phase.without_retry_after += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                phase
            })
        })
        .collect();
    let mut out = Phase::default();
    for t in tasks {
        let p = t.await.unwrap();
        out.acked.extend(p.acked);
        for (k, v) in p.statuses {
            *out.statuses.entry(k).or_default() += v;
        }
        out.without_retry_after += p.without_retry_after;
        out.slowest = out.slowest.max(p.slowest);
    }
    out
}

/// Every point of the table, by its value.
async fn present(s: &TestServer) -> Vec<u64> {
    s.query_json("db", "SELECT v FROM m ORDER BY v")
        .await
        .iter()
        .map(|r| r["v"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn writes_ride_out_object_store_faults() {
    let moto = MotoServer::start().await;
    // Created on moto itself: the helper blocks this (single-threaded)
    // runtime, which also runs the proxy.
    moto.endpoint().create_bucket("faults").await;
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let s3 = proxy.endpoint();
    let cluster = TestCluster::on_s3(&s3, "faults");
    let mut s = cluster
        .start(
            "inflow",
            "inflow-0",
            &[
                "--object-store-max-retries",
                "3",
                "--object-store-retry-timeout",
                "2s",
                "--object-store-request-timeout",
                "1s",
                "--wal-snapshot-size",
                "5",
            ],
        )
        .await;
    let mut acked = BTreeSet::new();
    let phases = [
        ("healthy", Fault::None),
        ("30% 503s", Fault::Flaky(30)),
        ("down", Fault::Down),
        (
            "stored, then 500 for half the PUTs",
            Fault::StoredThenFail(50),
        ),
        (
            "stalled past the request timeout",
            Fault::Slow(Duration::from_millis(1500)),
        ),
        ("healthy again", Fault::None),
    ];
    for (i, (name, fault)) in phases.iter().enumerate() {
        proxy.set(*fault);
        let p = write_for(&s, (i as u64 + 1) * 10_000_000, Duration::from_secs(3)).await;
        let errors: usize = p
            .statuses
            .iter()
            .filter(|(k, _)| **k != 204)
            .map(|(_, v)| v)
            .sum();
        eprintln!("{name}: {:?}, slowest {:?}", p.statuses, p.slowest);
        assert!(
            p.statuses.keys().all(|k| *k == 204 || *k == 503),
            "{name}: only 204 or 503: {:?}",
            p.statuses
        );
        assert_eq!(
            p.without_retry_after, 0,
            "{name}: every 503 says Retry-After"
        );
        assert!(
            p.slowest < Duration::from_secs(8),
            "{name}: a write waited {:?}",
            p.slowest
        );
        match fault {
            Fault::None => assert_eq!(errors, 0, "{name}: {:?}", p.statuses),
            Fault::Down | Fault::Slow(_) => assert!(p.acked.is_empty(), "{name}: {:?}", p.statuses),
            _ => assert!(
                !p.acked.is_empty(),
                "{name}: retries get writes through: {:?}",
                p.statuses
            ),
        }
        acked.extend(p.acked);
        // Every acknowledged point so far is there, once, without a restart.
        let rows = present(&s).await;
        let distinct: BTreeSet<u64> = rows.iter().copied().collect();
        assert_eq!(distinct.len(), rows.len(), "{name}: no point twice");
        assert!(
            acked.is_subset(&distinct),
            "{name}: {} acknowledged points missing",
            acked.difference(&distinct).count()
        );
    }
    assert!(proxy.injected() > 0);
    s.kill();
    s.restart().await;
    let rows = present(&s).await;
    let distinct: BTreeSet<u64> = rows.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        rows.len(),
        "no point twice after the restart"
    );
    let missing = acked.difference(&distinct).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged points lost",
        acked.len()
    );
    eprintln!(
        "faults injected {}, requests forwarded {}, acknowledged {}, present {}",
        proxy.injected(),
        proxy.forwarded(),
        acked.len(),
        rows.len()
    );
}
