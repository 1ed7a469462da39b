//! The buffer persists to Parquet: queries read files and buffer together,
//! restarts replay only what is not persisted, and a crash at any step of a
//! persist loses and duplicates nothing.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use test_helpers::TestServer;

/// Waits until the database has at least `n` Parquet files; returns them.
async fn wait_for_files(s: &TestServer, db: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let files = s
            .query_json(db, "SELECT table_name, path, size_bytes, row_count, min_time, max_time FROM system.parquet_files ORDER BY min_time")
            .await;
        if files.len() >= n {
            return files;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} files appeared",
            files.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wal_files(s: &TestServer) -> usize {
    std::fs::read_dir(s.data_dir().join("wal").join("inflow-0")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn persisted_files_and_buffer_answer_together() {
    let mut s = TestServer::start_with(&["--wal-snapshot-size", "2"]).await;
    s.write_ok(
        "db",
        "cpu,host=a,region=eu usage=1,idle=10 1000\ncpu,host=b,region=us usage=2,idle=20 1000",
    )
    .await;
    s.write_ok("db", "cpu,host=a,region=eu usage=3,idle=30 2000")
        .await;
    let files = wait_for_files(&s, "db", 1).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    assert_eq!(
        (f["table_name"].clone(), f["row_count"].clone()),
        (json!("cpu"), json!(3))
    );
    assert_eq!(
        (f["min_time"].clone(), f["max_time"].clone()),
        (json!(1000), json!(2000))
    );
    let path = f["path"].as_str().unwrap();
    assert!(
        path.starts_with("data/") && path.contains("/1970-01-01/") && path.ends_with(".parquet"),
        "{path}"
    );
    let on_disk = std::fs::metadata(s.data_dir().join(path)).unwrap().len();
    assert_eq!(json!(on_disk), f["size_bytes"]);
    // The WAL files the file covers are deleted.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal_files(&s) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "WAL files were not deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A later write of the same series and time wins field by field, across
    // the file and the buffer; new rows add to the file's.
    s.write_ok(
        "db",
        "cpu,host=a,region=eu usage=5 1000\ncpu,host=c,region=eu usage=7,idle=70 3000",
    )
    .await;
    let q = "SELECT host, usage, idle, time FROM cpu ORDER BY host, time";
    let expected = vec![
        json!({"host": "a", "usage": 5.0, "idle": 10.0, "time": "1970-01-01T00:00:00.000001"}),
        json!({"host": "a", "usage": 3.0, "idle": 30.0, "time": "1970-01-01T00:00:00.000002"}),
        json!({"host": "b", "usage": 2.0, "idle": 20.0, "time": "1970-01-01T00:00:00.000001"}),
        json!({"host": "c", "usage": 7.0, "idle": 70.0, "time": "1970-01-01T00:00:00.000003"}),
    ];
    assert_eq!(s.query_json("db", q).await, expected);
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM cpu").await,
        vec![json!({"n": 4})]
    );

    // kill -9: the file stays, the unpersisted WAL replays, nothing doubles.
    s.kill();
    s.restart().await;
    assert_eq!(s.query_json("db", q).await, expected);
    // The second write plus one more reaches the snapshot size again: two
    // files, and still the same answers.
    s.write_ok("db", "cpu,host=d,region=us usage=9 4000").await;
    wait_for_files(&s, "db", 2).await;
    let mut with_d = expected.clone();
    with_d.push(json!({"host": "d", "usage": 9.0, "time": "1970-01-01T00:00:00.000004"}));
    assert_eq!(s.query_json("db", q).await, with_d);
    s.kill();
    s.restart().await;
    assert_eq!(s.query_json("db", q).await, with_d);
}

/// A crash after any step of a persist: restart, and every acknowledged row
/// is there exactly once; the persist then completes.
#[tokio::test]
async fn crash_at_each_persist_step_loses_and_duplicates_nothing() {
    for point in [
        "after-parquet-write",
        "after-catalog-commit",
        "after-wal-delete",
    ] {
        let mut s = TestServer::start_with(&["--wal-snapshot-size", "3"]).await;
        s.write_ok("db", "m,t=a v=1i 10\nm,t=b v=2i 10").await;
        s.write_ok("db", "m,t=a v=3i 20").await;
        s.set_env("INFLOW_TEST_CRASH_POINT", point);
        s.restart().await;
        // The third WAL file triggers the persist, which aborts.
        s.write_ok("db", "m,t=a v=10i 10\nm,t=c v=4i 30").await;
        let status = s.wait_exit(Duration::from_secs(20)).await;
        assert!(status.is_some(), "{point}: the server did not abort");
        s.clear_env();
        s.restart().await;
        let q = "SELECT t, v, time FROM m ORDER BY t, time";
        let expected = vec![
            json!({"t": "a", "v": 10, "time": "1970-01-01T00:00:00.000000010"}),
            json!({"t": "a", "v": 3, "time": "1970-01-01T00:00:00.000000020"}),
            json!({"t": "b", "v": 2, "time": "1970-01-01T00:00:00.000000010"}),
            json!({"t": "c", "v": 4, "time": "1970-01-01T00:00:00.000000030"}),
        ];
        assert_eq!(
            s.query_json("db", q).await,
            expected,
            "{point}: right after restart"
        );
        // The replayed files (if any) persist again; answers stay the same.
        wait_for_files(&s, "db", 1).await;
        assert_eq!(
            s.query_json("db", q).await,
            expected,
            "{point}: after the persist completes"
        );
        s.kill();
        s.restart().await;
        assert_eq!(
            s.query_json("db", q).await,
            expected,
            "{point}: after another restart"
        );
        assert_eq!(wal_files(&s), 0, "{point}: persisted WAL files are deleted");
    }
}

/// No file limit: a table over 2,000 files answers correctly, and pruning
/// keeps most of them unopened.
#[tokio::test]
async fn a_table_of_two_thousand_files() {
    // Compaction off: the point is a query over this many files.
    let s = TestServer::start_with(&[
        "--wal-snapshot-size",
        "1",
        "--gen1-duration",
        "1s",
        "--compaction-max-rows",
        "0",
    ])
    .await;
    const N: i64 = 2000;
    // One line per second: one time chunk, and so one file, per line.
    let body: String = (0..N)
        .map(|i| format!("m,host=h{} v={i}i {}\n", i % 4, i * 1_000_000_000))
        .collect();
    s.write_ok("db", &body).await;
    let files = wait_for_files(&s, "db", N as usize).await;
    assert_eq!(files.len(), N as usize);

    let all = s
        .query_json("db", "SELECT count(*) AS n, sum(v) AS total FROM m")
        .await;
    assert_eq!(all, vec![json!({"n": N, "total": N * (N - 1) / 2})]);

    let scanned = s.metric("inflow_query_parquet_files_scanned_total").await;
    let pruned = s.metric("inflow_query_parquet_files_pruned_total").await;
    let range = s
        .query_json(
            "db",
            "SELECT count(*) AS n, min(v) AS lo FROM m WHERE time >= '1970-01-01T00:01:40Z' AND time < '1970-01-01T00:01:50Z'",
        )
        .await;
    assert_eq!(range, vec![json!({"n": 10, "lo": 100})]);
    assert_eq!(
        s.metric("inflow_query_parquet_files_scanned_total").await - scanned,
        10
    );
    assert_eq!(
        s.metric("inflow_query_parquet_files_pruned_total").await - pruned,
        N as u64 - 10
    );

    // Tag equality prunes by the files' tag ranges.
    let pruned = s.metric("inflow_query_parquet_files_pruned_total").await;
    let h1 = s
        .query_json("db", "SELECT count(*) AS n FROM m WHERE host = 'h1'")
        .await;
    assert_eq!(h1, vec![json!({"n": N / 4})]);
    assert_eq!(
        s.metric("inflow_query_parquet_files_pruned_total").await - pruned,
        (N - N / 4) as u64
    );
}

/// Waits until the database has exactly `n` Parquet files holding `rows`
/// rows in all.
async fn wait_for_file_count(s: &TestServer, db: &str, n: usize, rows: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let files = s
            .query_json(
                db,
                "SELECT count(*) AS n, sum(row_count) AS rows FROM system.parquet_files",
            )
            .await;
        if files == vec![json!({"n": n, "rows": rows})] {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{files:?}, waiting for {n} files of {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn parquet_objects(s: &TestServer) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .map(|e| match e.path() {
                    p if p.is_dir() => walk(&p),
                    p => usize::from(p.extension().is_some_and(|x| x == "parquet")),
                })
                .sum()
        })
    }
    walk(&s.data_dir().join("data"))
}

/// Compaction merges a table's small files into fewer, and every answer
/// stays the same: later writes still win field by field over merged
/// files, and after a restart. The merged-away objects are deleted.
#[tokio::test]
async fn compaction_merges_small_files_and_keeps_every_answer() {
    let mut s = TestServer::start_with(&[
        "--wal-snapshot-size",
        "1",
        "--gen1-duration",
        "1s",
        "--retention-check-interval",
        "100ms",
        "--gc-grace-period",
        "0s",
        "--compaction-max-rows",
        "8",
    ])
    .await;
    // 20 one-second chunks of 2 rows: 20 files, merged 4 at a time (8 rows,
    // which is not small any more) into 5.
    let body: String = (0..20i64)
        .flat_map(|t| {
            ["a", "b"].map(|h| format!("m,host={h} v={t},w={} {}\n", 100 + t, t * 1_000_000_000))
        })
        .collect();
    s.write_ok("db", &body).await;
    wait_for_file_count(&s, "db", 5, 40).await;
    // Later writes of host a: v for seconds 0-4 (5 one-row files, merged into
    // one), then w for second 2 (one file, alone for now).
    let body: String = (0..5i64)
        .map(|t| format!("m,host=a v={} {}\n", 1000 + t, t * 1_000_000_000))
        .collect();
    s.write_ok("db", &body).await;
    wait_for_file_count(&s, "db", 6, 45).await;
    s.write_ok("db", "m,host=a w=7 2000000000").await;
    wait_for_file_count(&s, "db", 7, 46).await;
    // w again for seconds 2 and 3: merged with the file before it, where the
    // later write of second 2 wins.
    s.write_ok("db", "m,host=a w=8 2000000000\nm,host=a w=9 3000000000")
        .await;
    wait_for_file_count(&s, "db", 7, 47).await;

    let q = "SELECT v, w FROM m WHERE host = 'a' AND time < '1970-01-01T00:00:06Z' ORDER BY time";
    let expected = vec![
        json!({"v": 1000.0, "w": 100.0}),
        json!({"v": 1001.0, "w": 101.0}),
        json!({"v": 1002.0, "w": 8.0}),
        json!({"v": 1003.0, "w": 9.0}),
        json!({"v": 1004.0, "w": 104.0}),
        json!({"v": 5.0, "w": 105.0}),
    ];
    let totals = "SELECT count(*) AS n, sum(v) AS v, sum(w) AS w FROM m";
    // 380 - (0+1+2+3+4) + 5010 and 2 × 2190 - 102 - 103 + 8 + 9.
    let expected_totals = vec![json!({"n": 40, "v": 5380.0, "w": 4192.0})];
    assert_eq!(s.query_json("db", q).await, expected);
    assert_eq!(s.query_json("db", totals).await, expected_totals);

    // The merged-away objects are deleted (grace period 0).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while parquet_objects(&s) != 7 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} objects on disk",
            parquet_objects(&s)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.kill();
    s.restart().await;
    assert_eq!(s.query_json("db", q).await, expected);
    assert_eq!(s.query_json("db", totals).await, expected_totals);
}

/// The last (or first) point of every series reads only the files that
/// can hold it: the run-time cut-off reaches the Parquet scan as a dynamic
/// filter, and files entirely before it (after it) are skipped.
#[tokio::test]
async fn last_point_skips_files_before_the_cutoff() {
    let s = TestServer::start_with(&[
        "--wal-snapshot-size",
        "1",
        "--gen1-duration",
        "1s",
        "--compaction-max-rows",
        "0",
    ])
    .await;
    // One file per second, 0-9: hosts a and b throughout, c until second 4,
    // d from second 5.
    let body: String = (0..10i64)
        .flat_map(|t| {
            let hosts: &[&str] = if t <= 4 {
                &["a", "b", "c"]
            } else {
                &["a", "b", "d"]
            };
            hosts
                .iter()
                .map(move |h| format!("m,host={h} v={t} {}\n", t * 1_000_000_000))
                .collect::<Vec<_>>()
        })
        .collect();
    s.write_ok("db", &body).await;
    wait_for_file_count(&s, "db", 10, 30).await;

    let latest = "SELECT DISTINCT ON (host) host, v FROM m ORDER BY host, time DESC";
    let expected =
        ["a", "b", "c", "d"].map(|h| json!({"host": h, "v": if h == "c" { 4.0 } else { 9.0 }}));
    assert_eq!(s.query_json("db", latest).await, expected);
    let earliest =
        "SELECT host, first_value(v ORDER BY time) AS v FROM m GROUP BY host ORDER BY host";
    let expected =
        ["a", "b", "c", "d"].map(|h| json!({"host": h, "v": if h == "d" { 5.0 } else { 0.0 }}));
    assert_eq!(s.query_json("db", earliest).await, expected);

    // Latest: the cut-off is c's last second, 4, so files 0-3 are skipped.
    // Earliest: it is d's first second, 5, so files 6-9 are.
    for q in [latest, earliest] {
        let plan = s.query_pretty("db", &format!("EXPLAIN ANALYZE {q}")).await;
        let scan = plan
            .lines()
            .find(|l| l.contains("DataSourceExec") && l.contains("DynamicFilter"))
            .unwrap_or_else(|| panic!("no scan with the cut-off:\n{plan}"));
        assert!(
            scan.contains("row_groups_pruned_statistics=10 total → 6 matched"),
            "{scan}"
        );
    }
}

/// A server whose table `cpu` is one Parquet file of 60,000 rows: hosts
/// h0-h119, seconds 0-499, `v` the row's number (host + 120 × second).
async fn one_file_of_120_hosts() -> TestServer {
    let s =
        TestServer::start_with(&["--wal-snapshot-size", "1", "--compaction-max-rows", "0"]).await;
    let body: String = (0..60_000i64)
        .map(|i| {
            format!(
                "cpu,host=h{} v={i} {}\n",
                i % 120,
                (i / 120) * 1_000_000_000
            )
        })
        .collect();
    s.write_ok("db", &body).await;
    wait_for_file_count(&s, "db", 1, 60_000).await;
    s
}

/// A selective query over a large file plans on one partition once the
/// file's footer is cached: its row groups and pages bound the rows the
/// scan reads. The scan evaluates each filter once.
#[tokio::test]
async fn small_parquet_scans_plan_on_one_partition() {
    let s = one_file_of_120_hosts().await;
    let small = "SELECT host, max(v) AS v FROM cpu WHERE host = 'h1' AND time >= '1970-01-01T00:00:00Z' GROUP BY host";
    let large = "SELECT host, max(v) AS v FROM cpu WHERE time >= '1970-01-01T00:00:00Z' GROUP BY host ORDER BY host LIMIT 2";
    // The first query reads the footer into the cache.
    for _ in 0..2 {
        assert_eq!(
            s.query_json("db", small).await,
            vec![json!({"host": "h1", "v": 59_881.0})]
        );
    }
    assert_eq!(
        s.query_json("db", large).await,
        vec![
            json!({"host": "h0", "v": 59_880.0}),
            json!({"host": "h1", "v": 59_881.0})
        ]
    );
    let plan = s.query_pretty("db", &format!("EXPLAIN {small}")).await;
    assert!(
        !plan.contains("RepartitionExec") && plan.contains("file_groups={1 group"),
        "{plan}"
    );
    // The scan selects exactly h1's rows, all inside the time range: the
    // filters need no evaluation.
    assert!(
        !plan.contains("predicate=") && !plan.contains("FilterExec"),
        "{plan}"
    );
    // A field comparison is evaluated in the scan, once; the time range and
    // the host are not, as the scan applies them.
    let field = "SELECT host, max(v) AS v FROM cpu WHERE host = 'h1' AND v >= 0 AND time >= '1970-01-01T00:00:00Z' GROUP BY host";
    assert_eq!(
        s.query_json("db", field).await,
        vec![json!({"host": "h1", "v": 59_881.0})]
    );
    let plan = s.query_pretty("db", &format!("EXPLAIN {field}")).await;
    let predicate = plan
        .split(", predicate=")
        .nth(1)
        .and_then(|p| p.split(", pruning_predicate=").next())
        .unwrap_or_else(|| panic!("no scan predicate:\n{plan}"));
    assert_eq!(predicate.matches("v@").count(), 1, "{predicate}");
    assert_eq!(predicate.matches("host@").count(), 0, "{predicate}");
    assert_eq!(predicate.matches("time@").count(), 0, "{predicate}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        let plan = s.query_pretty("db", &format!("EXPLAIN {large}")).await;
        assert!(plan.contains("RepartitionExec"), "{plan}");
    }
}

/// Files written before and after a table gained a column answer together,
/// also once their footers are cached (the scan then hands each file's
/// Arrow schema to the reader, from the table's fields of the file's columns).
#[tokio::test]
async fn files_of_older_schemas_answer_with_their_columns() {
    let s =
        TestServer::start_with(&["--wal-snapshot-size", "1", "--compaction-max-rows", "0"]).await;
    s.write_ok("db", "cpu,host=a v=1 1000").await;
    wait_for_files(&s, "db", 1).await;
    s.write_ok("db", "cpu,host=b,dc=x v=2,w=3i 2000000000000")
        .await;
    wait_for_files(&s, "db", 2).await;
    let want = vec![
        json!({"host": "a", "time": "1970-01-01T00:00:00.000001", "v": 1.0}),
        json!({"dc": "x", "host": "b", "time": "1970-01-01T00:33:20", "v": 2.0, "w": 3}),
    ];
    for _ in 0..3 {
        assert_eq!(
            s.query_json("db", "SELECT * FROM cpu ORDER BY time").await,
            want
        );
        assert_eq!(
            s.query_json(
                "db",
                "SELECT host, w FROM cpu WHERE host IN ('a', 'b') ORDER BY host"
            )
            .await,
            vec![json!({"host": "a"}), json!({"host": "b", "w": 3})]
        );
    }
}

/// After the first query reads a file, the querier holds the whole file in
/// memory and later queries read it from there: they answer even once the
/// file is gone from disk. `--disable-parquet-mem-cache` turns this off.
#[tokio::test]
async fn queries_read_parquet_files_from_memory_once_read() {
    let s = one_file_of_120_hosts().await;
    let files = wait_for_files(&s, "db", 1).await;
    let size = files[0]["size_bytes"].as_u64().unwrap();
    let q = "SELECT host, max(v) AS v, count(*) AS n FROM cpu WHERE host IN ('h1', 'h7') GROUP BY host ORDER BY host";
    let want = vec![
        json!({"host": "h1", "v": 59_881.0, "n": 500}),
        json!({"host": "h7", "v": 59_887.0, "n": 500}),
    ];
    assert_eq!(s.query_json("db", q).await, want);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.metric("inflow_parquet_cache_bytes").await != size {
        assert!(
            std::time::Instant::now() < deadline,
            "the file never reached the cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hits = s.metric("inflow_parquet_cache_hits_total").await;
    for path in files.iter().map(|f| f["path"].as_str().unwrap()) {
        std::fs::remove_file(s.data_dir().join(path)).unwrap();
    }
    assert_eq!(s.query_json("db", q).await, want);
    assert!(s.metric("inflow_parquet_cache_hits_total").await > hits);

    let s =
        TestServer::start_with(&["--wal-snapshot-size", "1", "--disable-parquet-mem-cache"]).await;
    s.write_ok("db", "cpu,host=a v=1 1").await;
    wait_for_files(&s, "db", 1).await;
    for _ in 0..3 {
        assert_eq!(
            s.query_json("db", "SELECT v FROM cpu").await,
            vec![json!({"v": 1.0})]
        );
    }
    assert_eq!(s.metric("inflow_parquet_cache_bytes").await, 0);
    assert_eq!(s.metric("inflow_parquet_cache_hits_total").await, 0);
    assert!(
        s.metric("inflow_parquet_cache_misses_total").await == 0,
        "no cache, so no lookups"
    );
}

/// A number from `EXPLAIN ANALYZE` metrics (`name=1.95 K`, `name=360`).
fn metric_value(line: &str, name: &str) -> f64 {
    let rest = line
        .split(&format!("{name}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    let mut parts = rest.split([',', ' ']).filter(|p| !p.is_empty());
    let n: f64 = parts
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {line}"));
    match parts.next() {
        Some("K") => n * 1e3,
        Some("M") => n * 1e6,
        _ => n,
    }
}

/// Scans read only the pages that their time range, tag values and field
/// comparisons allow, by the file statistics, with DataFusion's own pruning
/// off once the footers are cached; the answers are those of every row.
#[tokio::test]
async fn scans_read_only_the_pages_their_filters_allow() {
    let s = one_file_of_120_hosts().await;
    // Ten rows of h1, with a tag the first file lacks, in a second file.
    let body: String = (0..10i64)
        .map(|t| {
            format!(
                "cpu,host=h1,region=eu v={} {}\n",
                100_000 + t,
                (1_000 + t) * 1_000_000_000
            )
        })
        .collect();
    s.write_ok("db", &body).await;
    wait_for_file_count(&s, "db", 2, 60_010).await;

    let one_host = "SELECT count(*) AS n, max(v) AS v FROM cpu WHERE host = 'h7' \
                    AND time >= '1970-01-01T00:01:40Z' AND time < '1970-01-01T00:03:20Z'";
    let cases = [
        (one_host, json!([{"n": 100, "v": 199.0 * 120.0 + 7.0}])),
        (
            "SELECT count(*) AS n FROM cpu WHERE region = 'eu'",
            json!([{"n": 10}]),
        ),
        (
            "SELECT count(*) AS n FROM cpu WHERE region = 'eu' AND host = 'h1' AND time < '1970-01-01T00:16:45Z'",
            json!([{"n": 5}]),
        ),
        // Field comparisons prune too.
        (
            "SELECT count(*) AS n FROM cpu WHERE host IN ('h7', 'h8') AND v > 59000",
            json!([{"n": 16}]),
        ),
        (
            "SELECT count(*) AS n FROM cpu WHERE v < 0",
            json!([{"n": 0}]),
        ),
        (
            "SELECT count(*) AS n FROM cpu WHERE v >= 100005",
            json!([{"n": 5}]),
        ),
        // A filter the scan cannot prune by: DataFusion's pruning stays on.
        (
            "SELECT count(*) AS n FROM cpu WHERE host = 'h7' OR v > 59880",
            json!([{"n": 628}]),
        ),
        // A TopK's dynamic filter: likewise.
        (
            "SELECT host, v FROM cpu ORDER BY time DESC LIMIT 1",
            json!([{"host": "h1", "v": 100_009.0}]),
        ),
        (
            "SELECT count(*) AS n FROM cpu WHERE host = 'h200'",
            json!([{"n": 0}]),
        ),
    ];
    // The first run reads the footers into the cache, the second plans
    // from them.
    for _ in 0..2 {
        for (q, want) in &cases {
            assert_eq!(Value::from(s.query_json("db", q).await), *want, "{q}");
        }
    }
    let plan = s
        .query_pretty("db", &format!("EXPLAIN ANALYZE {one_host}"))
        .await;
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    // The file lists each host's rows and their even time steps
    // (`parquet_store::KEY_RUNS`): the scan reads exactly h7's 100 rows in
    // the window, not its 500 nor the 2,048-row pages that hold them, and
    // runs no filter on them.
    assert_eq!(metric_value(scan, "output_rows"), 100.0, "{scan}");
    assert!(!scan.contains("predicate="), "{scan}");
    // Hosts that sort apart (h1 < h10 < ... < h2): their rows only.
    let q = "EXPLAIN ANALYZE SELECT count(*) AS n FROM cpu WHERE host IN ('h2', 'h1', 'h99')";
    let plan = s.query_pretty("db", q).await;
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    // The file's listed rows are the answer: no filter runs on them.
    assert_eq!(metric_value(scan, "output_rows"), 1_510.0, "{scan}");
    assert!(
        !scan.contains("predicate=") && !plan.contains("FilterExec"),
        "{plan}"
    );
    assert_eq!(
        Value::from(
            s.query_json(
                "db",
                "SELECT count(*) AS n FROM cpu WHERE host IN ('h2', 'h1', 'h99')"
            )
            .await
        ),
        json!([{"n": 1_510}])
    );
    assert!(
        scan.contains("page_index_pages_pruned=0 total"),
        "DataFusion's page pruning ran: {scan}"
    );
    // A field comparison skips the first file's row groups (v < 60,000).
    let plan = s
        .query_pretty(
            "db",
            "EXPLAIN ANALYZE SELECT count(*) AS n FROM cpu WHERE v >= 100005",
        )
        .await;
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    let read =
        metric_value(scan, "pushdown_rows_matched") + metric_value(scan, "pushdown_rows_pruned");
    assert!(read <= 10.0, "{read} rows read: {scan}");
    assert!(
        scan.contains("page_index_pages_pruned=0 total"),
        "DataFusion's page pruning ran: {scan}"
    );
}

#[tokio::test]
async fn memory_limit_triggers_a_persist() {
    let s = TestServer::start_with(&["--buffer-mem-limit", "1KiB"]).await;
    let body: String = (0..200)
        .map(|i| format!("m,host=h{i} v={i}i 1\n"))
        .collect();
    s.write_ok("db", &body).await;
    wait_for_files(&s, "db", 1).await;
    assert_eq!(
        s.query_json("db", "SELECT count(*) AS n FROM m").await,
        vec![json!({"n": 200})]
    );
}

/// A separate querier follows an ingester's persists: rows move from its
/// WAL-fed buffer to the Parquet files without going missing or doubling.
#[tokio::test]
async fn querier_follows_persists() {
    let first = TestServer::start().await;
    let dir = first.temp_dir();
    drop(first);
    let ingester = TestServer::try_start(
        "inflow-ingester",
        &[],
        &["--wal-snapshot-size", "3"],
        std::sync::Arc::clone(&dir),
    )
    .await
    .unwrap();
    let querier = TestServer::try_start(
        "inflow-querier",
        &[],
        &["--replication-interval", "20ms"],
        dir,
    )
    .await
    .unwrap();
    let mut expected_total = 0i64;
    for i in 0..10i64 {
        // Each write is one WAL file; every third one triggers a persist.
        ingester
            .write_ok(
                "db",
                &format!("m,h=a v={i}i {}\nm,h=b v={}i {}", i * 10, i * 100, i * 10),
            )
            .await;
        expected_total += i + i * 100;
        // Rewriting an earlier point must not add a row.
        ingester.write_ok("db", "m,h=a v=0i 0").await;
        let want = json!([{"n": 2 * (i + 1), "total": expected_total}]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = querier
                .query("db", "SELECT count(*) AS n, sum(v) AS total FROM m", "json")
                .await;
            if r.status() == 200 && r.json::<Value>().await.unwrap() == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "querier never showed {want} after write {i}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let files = wait_for_files(&querier, "db", 3).await;
    assert!(files.len() >= 3, "{files:?}");
    // Every answer in between is a prefix of the writes: never a doubled row.
    for _ in 0..20 {
        let r: Value = querier
            .query("db", "SELECT count(*) AS n FROM m", "json")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r, json!([{"n": 20}]));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The scan applies time ranges and tag values itself (DataFusion drops
/// them from its filters): over buffered chunks, Parquet files, files that
/// overlap (merged), rows without the tag, two constraints on one tag, and
/// a `LIMIT`, the answers are those of a model of the rows.
#[tokio::test]
async fn filters_the_scan_applies_itself_answer_like_the_rows() {
    // Series (host, zone) and second -> value; later writes win.
    type Point<'a> = (Option<String>, Option<&'a str>, i64);
    let mut rows: std::collections::BTreeMap<Point, i64> = Default::default();
    let mut first = String::new();
    for i in 0..200i64 {
        first.push_str(&format!("cpu,host=h{} v={i}i {i}\n", i % 4));
        rows.insert((Some(format!("h{}", i % 4)), None, i), i);
    }
    let mut second = String::new();
    for i in 150..300i64 {
        second.push_str(&format!(
            "cpu,host=h{},zone=z v={}i {i}\n",
            i % 4,
            i + 1_000
        ));
        rows.insert((Some(format!("h{}", i % 4)), Some("z"), i), i + 1_000);
    }
    for i in 190..200i64 {
        second.push_str(&format!("cpu,host=h{} v={}i {i}\n", i % 4, i + 5_000));
        rows.insert((Some(format!("h{}", i % 4)), None, i), i + 5_000);
    }
    for i in 0..10i64 {
        second.push_str(&format!("cpu v={}i {i}\n", -i));
        rows.insert((None, None, i), -i);
    }
    let mut third = String::new();
    for i in 1_000..1_100i64 {
        third.push_str(&format!("cpu,host=h{} v={i}i {i}\n", i % 4));
        rows.insert((Some(format!("h{}", i % 4)), None, i), i);
    }
    // Two series per host whose times interleave: a host's run in a file
    // does not step evenly.
    let mut fourth = String::new();
    for i in 2_000..2_200i64 {
        let zone = if i % 3 == 0 { "y" } else { "z" };
        fourth.push_str(&format!("cpu,host=h{},zone={zone} v={i}i {i}\n", i % 4));
        rows.insert((Some(format!("h{}", i % 4)), Some(zone), i), i);
    }
    type Filter<'f> = &'f dyn Fn(&Option<String>, Option<&str>, i64) -> bool;
    let count = |f: Filter| rows.iter().filter(|((h, z, t), _)| f(h, *z, *t)).count();
    let values = |f: Filter| {
        let mut v: Vec<i64> = rows
            .iter()
            .filter(|((h, z, t), _)| f(h, *z, *t))
            .map(|(_, v)| *v)
            .collect();
        v.sort_unstable();
        v
    };
    let host = |h: &Option<String>, want: &[&str]| h.as_deref().is_some_and(|h| want.contains(&h));
    let t = |s: i64| format!("'1970-01-01T00:00:00.{:09}Z'", s);
    let cases: Vec<(String, Value)> = vec![
        (
            format!(
                "SELECT count(*) AS n FROM cpu WHERE host IN ('h1', 'h2') AND time >= {} AND time < {}",
                t(50),
                t(250)
            ),
            json!([{"n": count(&|h, _, s| host(h, &["h1", "h2"]) && (50..250).contains(&s))}]),
        ),
        (
            "SELECT v FROM cpu WHERE host = 'h1' AND host IN ('h1', 'h3') ORDER BY v".to_string(),
            Value::from(
                values(&|h, _, _| host(h, &["h1"]))
                    .into_iter()
                    .map(|v| json!({"v": v}))
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "SELECT count(*) AS n FROM cpu WHERE host = 'h1' AND host = 'h2'".to_string(),
            json!([{"n": 0}]),
        ),
        (
            format!(
                "SELECT count(*) AS n FROM cpu WHERE zone = 'z' AND host IN ('h0', 'h3', 'h9') AND time <= {}",
                t(200)
            ),
            json!([{"n": count(&|h, z, s| z == Some("z") && host(h, &["h0", "h3"]) && s <= 200)}]),
        ),
        (
            format!(
                "SELECT v FROM cpu WHERE host = 'h2' AND time > {} ORDER BY time, v LIMIT 3",
                t(185)
            ),
            {
                let mut v: Vec<(i64, i64)> = rows
                    .iter()
                    .filter(|((h, _, s), _)| host(h, &["h2"]) && *s > 185)
                    .map(|((_, _, s), v)| (*s, *v))
                    .collect();
                v.sort_unstable();
                Value::from(
                    v.into_iter()
                        .take(3)
                        .map(|(_, v)| json!({"v": v}))
                        .collect::<Vec<_>>(),
                )
            },
        ),
        (
            format!(
                "SELECT count(*) AS n FROM cpu WHERE host IN ('h1', 'h2') AND time >= {}",
                t(1_000)
            ),
            json!([{"n": count(&|h, _, s| host(h, &["h1", "h2"]) && s >= 1_000)}]),
        ),
        (
            format!(
                "SELECT max(v) AS v, count(*) AS n FROM cpu WHERE host = 'h1' AND time >= {} AND time < {}",
                t(1_010),
                t(1_050)
            ),
            json!([{"v": 1_049, "n": count(&|h, _, s| host(h, &["h1"]) && (1_010..1_050).contains(&s))}]),
        ),
        (
            format!(
                "SELECT sum(v) AS v, count(*) AS n FROM cpu WHERE host = 'h1' AND time >= {} AND time < {}",
                t(2_010),
                t(2_150)
            ),
            json!([{
                "v": values(&|h, _, s| host(h, &["h1"]) && (2_010..2_150).contains(&s)).iter().sum::<i64>(),
                "n": count(&|h, _, s| host(h, &["h1"]) && (2_010..2_150).contains(&s)),
            }]),
        ),
        (
            format!(
                "SELECT count(*) AS n FROM cpu WHERE time BETWEEN {} AND {}",
                t(5),
                t(160)
            ),
            json!([{"n": count(&|_, _, s| (5..=160).contains(&s))}]),
        ),
        // A field condition over points rewritten in a later, overlapping
        // file: it applies to the merged (latest) values only.
        (
            format!(
                "SELECT count(*) AS n FROM cpu WHERE host = 'h2' AND v < 1000 AND time >= {} AND time < {}",
                t(180),
                t(200)
            ),
            json!([{"n": rows
                .iter()
                .filter(|((h, _, s), v)| host(h, &["h2"]) && (180..200).contains(s) && **v < 1000)
                .count()}]),
        ),
        (
            "SELECT count(*) AS n, min(v) AS lo FROM cpu WHERE host = 'h3' OR host = 'h0'"
                .to_string(),
            json!([{"n": count(&|h, _, _| host(h, &["h0", "h3"])), "lo": 0}]),
        ),
    ];
    for persist in [false, true] {
        let flags: &[&str] = if persist {
            &["--wal-snapshot-size", "1", "--compaction-max-rows", "0"]
        } else {
            &[]
        };
        let s = TestServer::start_with(flags).await;
        s.write_ok("db", &first).await;
        if persist {
            wait_for_files(&s, "db", 1).await;
        }
        s.write_ok("db", &second).await;
        if persist {
            wait_for_file_count(&s, "db", 2, 200 + 150 + 10 + 10).await;
        }
        // A file of its own (no other overlaps its time range).
        s.write_ok("db", &third).await;
        if persist {
            wait_for_file_count(&s, "db", 3, 200 + 150 + 10 + 10 + 100).await;
        }
        s.write_ok("db", &fourth).await;
        if persist {
            wait_for_file_count(&s, "db", 4, 200 + 150 + 10 + 10 + 100 + 200).await;
        }
        // Twice: the second run plans from cached footers.
        for _ in 0..2 {
            for (q, want) in &cases {
                assert_eq!(
                    Value::from(s.query_json("db", q).await),
                    *want,
                    "persist={persist}: {q}"
                );
            }
        }
    }
}

async fn set_retention(s: &TestServer, db: &str, table: &str, duration: &str) {
    let url = format!(
        "/api/v3/enterprise/configure/table/retention_period?db={db}&table={table}&duration={duration}"
    );
    let r = s.client().post(s.url(&url)).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Runs `q` until it runs a kept physical plan again, checking every answer.
async fn reruns(s: &TestServer, q: &str, want: &[Value]) {
    for _ in 0..100 {
        let before = s.metric("inflow_query_physical_plan_reuses_total").await;
        assert_eq!(s.query_json("db", q).await, want);
        if s.metric("inflow_query_physical_plan_reuses_total").await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{q} never ran its physical plan again");
}

/// A repeated query runs its physical plan again while the rows its scans
/// read are the same, and plans anew when they change: new buffered rows,
/// rows moved to Parquet, a retention period. Plans with a dynamic filter
/// (a `TopK`'s) are planned each time; concurrent runs of one plan answer
/// alike.
#[tokio::test]
async fn physical_plans_run_again_only_over_the_same_rows() {
    let s = TestServer::start_with(&["--wal-snapshot-size", "2"]).await;
    let reran = || s.metric("inflow_query_physical_plan_reuses_total");
    let q = "SELECT host, max(usage) AS m, count(*) AS n FROM cpu WHERE time >= '1970-01-01T00:00:00Z' GROUP BY host ORDER BY host";
    let rows = |a: (f64, u64), b: (f64, u64)| {
        vec![
            json!({"host": "a", "m": a.0, "n": a.1}),
            json!({"host": "b", "m": b.0, "n": b.1}),
        ]
    };
    s.write_ok("db", "cpu,host=a usage=1 1000\ncpu,host=b usage=2 2000")
        .await;
    reruns(&s, q, &rows((1.0, 1), (2.0, 1))).await;

    // A new buffered row is in the very next answer.
    s.write_ok("db", "cpu,host=a usage=5 3000").await;
    assert_eq!(s.query_json("db", q).await, rows((5.0, 2), (2.0, 1)));
    reruns(&s, q, &rows((5.0, 2), (2.0, 1))).await;

    // Rows moved to Parquet (the second WAL file of a snapshot persists).
    s.write_ok("db", "cpu,host=b usage=7 4000").await;
    assert_eq!(s.query_json("db", q).await, rows((5.0, 2), (7.0, 2)));
    wait_for_files(&s, "db", 1).await;
    reruns(&s, q, &rows((5.0, 2), (7.0, 2))).await;
    s.write_ok("db", "cpu,host=a usage=9 5000").await;
    reruns(&s, q, &rows((9.0, 3), (7.0, 2))).await;

    // One plan run by many queries at once.
    let many = futures::future::join_all((0..16).map(|_| s.query_json("db", q))).await;
    assert!(
        many.iter().all(|r| *r == rows((9.0, 3), (7.0, 2))),
        "{many:?}"
    );

    // A `TopK` keeps bounds from its run in its dynamic filter.
    let top = "SELECT host, usage FROM cpu ORDER BY usage DESC LIMIT 2";
    let before = reran().await;
    for _ in 0..4 {
        assert_eq!(
            s.query_json("db", top).await,
            vec![
                json!({"host": "a", "usage": 9.0}),
                json!({"host": "b", "usage": 7.0})
            ]
        );
    }
    assert_eq!(reran().await, before);

    // Under a retention period a plan holds its cut-off time: planned each time.
    set_retention(&s, "db", "cpu", "1d").await;
    let before = reran().await;
    for _ in 0..3 {
        assert_eq!(s.query_json("db", q).await, Vec::<Value>::new());
    }
    assert_eq!(reran().await, before);
}

/// A repeated query reuses its optimised plan, and still answers like a
/// fresh one: it sees new rows, rows that moved to Parquet, new columns, a
/// new retention period and its own parameters; `now()` is not frozen.
#[tokio::test]
async fn repeated_queries_reuse_plans_and_answer_like_fresh_ones() {
    let s = TestServer::start_with(&["--wal-snapshot-size", "2"]).await;
    let reused = || s.metric("inflow_query_plan_cache_hits_total");
    s.write_ok("db", "cpu,host=a usage=1 1000\ncpu,host=b usage=2 2000")
        .await;
    let q = "SELECT host, usage FROM cpu WHERE host IN ('a', 'b') AND time >= '1970-01-01T00:00:00Z' ORDER BY time";
    let all = "SELECT * FROM cpu WHERE time >= '1970-01-01T00:00:00Z' ORDER BY time";
    let rows = |n: &[(&str, f64)]| {
        n.iter()
            .map(|(h, u)| json!({"host": h, "usage": u}))
            .collect::<Vec<_>>()
    };
    assert_eq!(s.query_json("db", q).await, rows(&[("a", 1.0), ("b", 2.0)]));
    let before = reused().await;
    assert_eq!(s.query_json("db", q).await, rows(&[("a", 1.0), ("b", 2.0)]));
    assert_eq!(reused().await, before + 1);

    // New rows in the buffer, and files persisted meanwhile.
    s.write_ok("db", "cpu,host=a usage=3 3000").await;
    s.write_ok("db", "cpu,host=b usage=4 4000").await;
    wait_for_files(&s, "db", 1).await;
    let expected = rows(&[("a", 1.0), ("b", 2.0), ("a", 3.0), ("b", 4.0)]);
    assert_eq!(s.query_json("db", q).await, expected);
    assert_eq!(reused().await, before + 2);

    // A new column: `*` expands to it (the schema changed: planned anew).
    assert_eq!(s.query_json("db", all).await.len(), 4);
    s.write_ok("db", "cpu,host=a usage=5,idle=9 5000").await;
    let now_all = s.query_json("db", all).await;
    assert_eq!(
        now_all[4],
        json!({"host": "a", "usage": 5.0, "idle": 9.0, "time": "1970-01-01T00:00:00.000005"})
    );
    assert_eq!(s.query_json("db", all).await, now_all);

    // Parameters are part of what was planned.
    let with = |host: &str| {
        s.client()
            .post(s.url("/api/v3/query_sql"))
            .json(&json!({"db": "db", "q": "SELECT usage FROM cpu WHERE host = $h ORDER BY time", "params": {"h": host}}))
            .send()
    };
    for _ in 0..2 {
        let a: Vec<Value> = with("a").await.unwrap().json().await.unwrap();
        assert_eq!(
            a,
            vec![
                json!({"usage": 1.0}),
                json!({"usage": 3.0}),
                json!({"usage": 5.0})
            ]
        );
        let b: Vec<Value> = with("b").await.unwrap().json().await.unwrap();
        assert_eq!(b, vec![json!({"usage": 2.0}), json!({"usage": 4.0})]);
    }

    // `now()` is folded into the plan: such queries are planned each time.
    let n = "SELECT count(*) AS c, CAST(now() AS BIGINT) AS n FROM cpu";
    let before = reused().await;
    let n1 = s.query_json("db", n).await[0]["n"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let n2 = s.query_json("db", n).await[0]["n"].as_i64().unwrap();
    assert!(n2 > n1, "{n2} <= {n1}");
    assert_eq!(reused().await, before);

    // A table retention period hides the 1970 rows from the next run.
    set_retention(&s, "db", "cpu", "1d").await;
    assert_eq!(s.query_json("db", q).await, Vec::<Value>::new());
}

/// A restart with more WAL than `--buffer-mem-limit` persists as it
/// replays: the files appear before the server listens, several of them
/// (one persist per limit's worth), and every row is there once.
#[tokio::test]
async fn replay_persists_as_it_goes() {
    let mut s = TestServer::start_with(&["--wal-snapshot-size", "100000"]).await;
    for b in 0..20 {
        let body: String = (0..2_000)
            .map(|i| {
                format!(
                    "m,host=h{b} v={i}i,pad=\"{}\" {}\n",
                    "x".repeat(40),
                    1_000 + i
                )
            })
            .collect();
        s.write_ok("db", &body).await;
    }
    assert!(wal_files(&s) >= 20);
    assert!(
        s.query_json("db", "SELECT * FROM system.parquet_files")
            .await
            .is_empty()
    );
    s.kill();
    s.set_flag("--buffer-mem-limit", "512KiB");
    s.restart().await;
    // Listening means replayed: no waiting for a persist that follows.
    let files = s
        .query_json("db", "SELECT path FROM system.parquet_files")
        .await;
    assert!(files.len() >= 4, "{} files: {files:?}", files.len());
    assert!(wal_files(&s) < 20, "persisted WAL files are deleted");
    assert_eq!(
        s.query_json(
            "db",
            "SELECT count(*) AS n, count(DISTINCT host) AS h FROM m"
        )
        .await,
        vec![json!({"n": 40_000, "h": 20})]
    );
}
