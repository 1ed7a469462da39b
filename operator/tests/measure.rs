//! The operator's load reading against a real server: `measure::from_pods`
//! scrapes a real `inflow serve`'s `/metrics` twice and turns the counters
//! into the per-pod load the autoscaling decision uses; a pod that does
//! not answer is `None`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use operator::measure::{PodTarget, Sampler, from_pods};
use test_helpers::TestServer;

#[tokio::test]
async fn the_load_of_a_real_server_is_read_from_its_metrics() {
    let s = TestServer::start_with(&["--disable-authz", "metrics"]).await;
    let http = reqwest::Client::new();
    let sampler = Sampler::default();
    let pods = vec![
        PodTarget {
            name: "inflow-0".into(),
            address: s.url("").trim_start_matches("http://").to_string(),
        },
        PodTarget {
            name: "gone".into(),
            address: "127.0.0.1:9".into(),
        },
    ];
    let first = from_pods(&http, &sampler, &pods).await;
    let load = first[0].unwrap();
    assert_eq!(load.queries_in_flight, Some(0.0));
    assert_eq!(
        load.write_lines_per_second, None,
        "one scrape gives no rate"
    );
    assert_eq!(first[1], None, "a pod that does not answer has no load");

    // 2,000 lines and 20 queries between the two scrapes.
    for i in 0..20 {
        let lines: String = (0..100)
            .map(|j| format!("cpu,host=h{j} usage={i}.5 {}\n", i * 100 + j + 1))
            .collect();
        s.write_ok("db", &lines).await;
        s.query_json("db", "SELECT count(*) FROM cpu").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = from_pods(&http, &sampler, &pods).await;
    let load = second[0].unwrap();
    let rate = load.write_lines_per_second.unwrap();
    assert!(rate > 100.0, "{rate} lines/s");
    // The process collector counts CPU in whole seconds: a rate, maybe 0
    // over half a second.
    assert!(load.cpu.unwrap() >= 0.0, "{load:?}");
    let p99 = load.query_p99_ms.unwrap();
    assert!(p99 > 0.0 && p99 < 10_000.0, "{p99} ms");
}
