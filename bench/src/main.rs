//! `inflow-bench`: load generator and query runner for comparing Inflow with
//! other time-series databases on the same data, in the same run.
//!
//! ```text
//!  inflow-bench write --url U --api v1|v2|v3 --hosts 100 --duration 1h ...   → lines/s, p50/p99
//!  inflow-bench query --url U --lang sql|influxql --queries all --repeat 10  → median/p95 per query
//!  inflow-bench check-influxql --a U --b U                                  → the InfluxQL answers equal?
//!  inflow-bench visibility --ingester U --querier U --count 200              → write-to-visible p50/p99
//!  inflow-bench counter --url U/metrics --name M --seconds 10                → a counter's rate
//! ```
//!
//! Each command prints a human summary on stderr and one JSON object per
//! result on stdout, for `bench/compare.sh` to turn into a table.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

mod data;
mod queries;

use data::DataSpec;

#[derive(Debug, Parser)]
#[command(name = "inflow-bench", about = "Load generator and query runner")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write TSBS-style cpu data and report throughput and latency.
    Write(WriteArgs),
    /// Run TSBS-style queries and report median and p95 latency.
    Query(QueryArgs),
    /// Send each query's InfluxQL to two servers' `/query` and compare the
    /// answers (floats within 1e-9 relative); exits 1 when one differs.
    CheckInfluxql(CheckArgs),
    /// Write single points to an ingester and time from each request until
    /// a querier answers with it: the write-to-visible latency of split roles.
    Visibility(VisibilityArgs),
    /// Read a Prometheus counter (summed over its labels) from a /metrics
    /// URL twice, `--seconds` apart, and report its rate.
    Counter(CounterArgs),
    /// Run one SQL query `--repeat` times (after a warm-up run) through
    /// `/api/v3/query_sql` and report its median and p95 and the rows.
    Sql(SqlArgs),
}

#[derive(Debug, Clone, Args)]
struct SqlArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8181")]
    url: String,
    /// Database.
    #[arg(long, default_value = "bench")]
    db: String,
    /// A name for the report.
    #[arg(long)]
    name: String,
    /// The query.
    #[arg(long)]
    q: String,
    /// Runs (after one warm-up run).
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

#[derive(Debug, Clone, Args)]
struct VisibilityArgs {
    /// The ingester's base URL.
    #[arg(long)]
    ingester: String,
    /// The querier's base URL.
    #[arg(long)]
    querier: String,
    /// Points to write, one at a time.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Pause between points.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pause: Duration,
    /// Bearer token for both, if auth is on.
    #[arg(long)]
    token: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct CounterArgs {
    /// The /metrics URL.
    #[arg(long)]
    url: String,
    /// The counter's name (its samples are summed over labels).
    #[arg(long)]
    name: String,
    /// How long to wait between the two reads.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Debug, Clone, Args)]
struct DataArgs {
    /// Hosts (series).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Time between a host's points.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Time span of the data.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// First timestamp, seconds since the epoch (TSBS's default day).
    #[arg(long, default_value_t = 1_451_606_400)]
    start: i64,
    /// One new series per line (an `instance` tag that never repeats).
    #[arg(long)]
    high_cardinality: bool,
}

impl DataArgs {
    fn spec(&self) -> DataSpec {
        let interval_s = self.interval.as_secs().max(1);
        DataSpec {
            hosts: self.hosts,
            interval_s,
            points: (self.duration.as_secs() / interval_s) as usize,
            start_s: self.start,
            high_cardinality: self.high_cardinality,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Api {
    /// `/write?db=` (InfluxDB 1.x, VictoriaMetrics, Inflow).
    V1,
    /// `/api/v2/write?bucket=`.
    V2,
    /// `/api/v3/write_lp?db=`.
    V3,
}

#[derive(Debug, Args)]
struct WriteArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8181")]
    url: String,
    /// Write endpoint style.
    #[arg(long, value_enum, default_value = "v3")]
    api: Api,
    /// Database (bucket).
    #[arg(long, default_value = "bench")]
    db: String,
    /// Token, sent as `Authorization: Bearer`.
    #[arg(long, env = "INFLOW_TOKEN")]
    token: Option<String>,
    /// Lines per request.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// gzip each request body.
    #[arg(long)]
    gzip: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    /// SQL on `/api/v3/query_sql`.
    Sql,
    /// InfluxQL on `/query` (v1).
    Influxql,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The reference server (InfluxDB 1.x).
    #[arg(long)]
    a: String,
    /// The server checked.
    #[arg(long)]
    b: String,
    /// Database.
    #[arg(long, default_value = "bench")]
    db: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8181")]
    url: String,
    /// Query language.
    #[arg(long, value_enum, default_value = "sql")]
    lang: Lang,
    /// Database.
    #[arg(long, default_value = "bench")]
    db: String,
    /// Token, sent as `Authorization: Bearer`.
    #[arg(long, env = "INFLOW_TOKEN")]
    token: Option<String>,
    /// Comma-separated query names, or `all`.
    #[arg(long, default_value = "all")]
    queries: String,
    /// Runs per query (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    #[command(flatten)]
    data: DataArgs,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_else(|e| fail(&format!("HTTP client: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("inflow-bench: {msg}");
    std::process::exit(1)
}

async fn write(args: WriteArgs) {
    let spec = args.data.spec();
    let mut bodies = spec.batches(args.batch.max(1));
    let raw_bytes: usize = bodies.iter().map(Vec::len).sum();
    if args.gzip {
        bodies = bodies
            .into_iter()
            .map(|b| {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&b)
                    .unwrap_or_else(|e| fail(&format!("gzip: {e}")));
                e.finish().unwrap_or_else(|e| fail(&format!("gzip: {e}")))
            })
            .collect();
    }
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new(bodies.into_iter().map(bytes::Bytes::from).collect());
    let url = match args.api {
        Api::V1 => format!("{}/write?db={}", args.url, args.db),
        Api::V2 => format!(
            "{}/api/v2/write?bucket={}&org=bench&precision=ns",
            args.url, args.db
        ),
        Api::V3 => format!(
            "{}/api/v3/write_lp?db={}&precision=nanosecond",
            args.url, args.db
        ),
    };
    let next = Arc::new(AtomicUsize::new(0));
    let client = client();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections.max(1) {
        let (bodies, next, client, url, token, gzip) = (
            Arc::clone(&bodies),
            Arc::clone(&next),
            client.clone(),
            url.clone(),
            args.token.clone(),
            args.gzip,
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let mut req = client.post(&url).body(body.clone());
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                let t0 = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(t0.elapsed().as_secs_f64() * 1e3)
                    }
                    Ok(r) => {
                        let status = r.status();
                        errors.push(format!("{status}: {}", r.text().await.unwrap_or_default()));
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w.await.unwrap_or_else(|e| fail(&format!("worker: {e}")));
        latencies.extend(l);
        errors.extend(e);
    }
    let secs = started.elapsed().as_secs_f64();
    if !errors.is_empty() {
        fail(&format!(
            "{} requests failed; first: {}",
            errors.len(),
            errors[0]
        ));
    }
    latencies.sort_by(f64::total_cmp);
    let lines = spec.lines();
    let result = serde_json::json!({
        "kind": "write",
        "api": format!("{:?}", args.api).to_lowercase(),
        "lines": lines,
        "bytes": raw_bytes,
        "requests": bodies.len(),
        "seconds": secs,
        "lines_per_sec": lines as f64 / secs,
        "values_per_sec": (lines * data::FIELDS.len()) as f64 / secs,
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
    });
    eprintln!(
        "wrote {lines} lines ({raw_bytes} bytes) in {secs:.2}s: {:.0} lines/s, {:.0} values/s, p50 {:.1} ms, p99 {:.1} ms",
        lines as f64 / secs,
        (lines * 10) as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!("{result}");
}

async fn query(args: QueryArgs) {
    let spec = args.data.spec();
    let all = queries::all(&spec);
    let wanted: Vec<&queries::Query> = if args.queries == "all" {
        all.iter().collect()
    } else {
        let names: Vec<&str> = args.queries.split(',').map(str::trim).collect();
        for n in &names {
            if !all.iter().any(|q| q.name == *n) {
                fail(&format!(
                    "unknown query '{n}'; known: {}",
                    all.iter().map(|q| q.name).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        all.iter().filter(|q| names.contains(&q.name)).collect()
    };
    let client = client();
    for q in wanted {
        let text = match args.lang {
            Lang::Sql => &q.sql,
            Lang::Influxql => &q.influxql,
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for run in 0..=args.repeat {
            let req = match args.lang {
                Lang::Sql => client
                    .get(format!("{}/api/v3/query_sql", args.url))
                    .query(&[
                        ("db", args.db.as_str()),
                        ("q", text.as_str()),
                        ("format", "json"),
                    ]),
                Lang::Influxql => client.get(format!("{}/query", args.url)).query(&[
                    ("db", args.db.as_str()),
                    ("q", text.as_str()),
                    ("epoch", "ns"),
                ]),
            };
            let req = match &args.token {
                Some(t) => req.bearer_auth(t),
                None => req,
            };
            let t0 = Instant::now();
            let r = req
                .send()
                .await
                .unwrap_or_else(|e| fail(&format!("{}: {e}", q.name)));
            let status = r.status();
            let body = r
                .text()
                .await
                .unwrap_or_else(|e| fail(&format!("{}: {e}", q.name)));
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if !status.is_success() || body.contains("\"error\"") {
                fail(&format!("{} failed ({status}): {body}", q.name));
            }
            if run == 0 {
                rows = count_rows(args.lang, &body);
                continue; // warm-up
            }
            times.push(ms);
        }
        times.sort_by(f64::total_cmp);
        let (median, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        eprintln!(
            "{:<24} median {median:>8.2} ms   p95 {p95:>8.2} ms   rows {rows}",
            q.name
        );
        println!(
            "{}",
            serde_json::json!({"kind": "query", "name": q.name, "lang": format!("{:?}", args.lang).to_lowercase(),
                "median_ms": median, "p95_ms": p95, "rows": rows, "runs": times.len()})
        );
    }
}

/// Whether two JSON answers are equal, floats within 1e-9 relative.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

async fn check_influxql(args: CheckArgs) {
    let spec = args.data.spec();
    let client = client();
    let mut all_equal = true;
    for q in queries::all(&spec) {
        let mut answers = Vec::new();
        for url in [&args.a, &args.b] {
            let r = client
                .get(format!("{url}/query"))
                .query(&[
                    ("db", args.db.as_str()),
                    ("q", q.influxql.as_str()),
                    ("epoch", "ns"),
                ])
                .send()
                .await
                .unwrap_or_else(|e| fail(&format!("{}: {e}", q.name)));
            let body = r
                .text()
                .await
                .unwrap_or_else(|e| fail(&format!("{}: {e}", q.name)));
            answers.push(serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default());
        }
        let equal = same_json(&answers[0], &answers[1]);
        all_equal &= equal;
        let rows = count_rows(Lang::Influxql, &answers[1].to_string());
        eprintln!(
            "{:<24} {} ({rows} rows)",
            q.name,
            if equal { "equal" } else { "DIFFERENT" }
        );
        if !equal {
            eprintln!(
                "  a: {:.2000}\n  b: {:.2000}",
                answers[0].to_string(),
                answers[1].to_string()
            );
        }
        println!(
            "{}",
            serde_json::json!({"kind": "check", "name": q.name, "equal": equal, "rows": rows})
        );
    }
    if !all_equal {
        std::process::exit(1);
    }
}

/// Result rows, to check that the systems return comparable answers.
fn count_rows(lang: Lang, body: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match lang {
        Lang::Sql => v.as_array().map_or(0, Vec::len),
        Lang::Influxql => v["results"][0]["series"].as_array().map_or(0, |s| {
            s.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        }),
    }
}

/// Times each point from sending its write to the ingester until the
/// querier returns it (and, apart, until the 204).
async fn visibility(args: VisibilityArgs) {
    let http = client();
    let auth = |r: reqwest::RequestBuilder| match &args.token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let run = std::process::id();
    let (mut lags, mut acks) = (
        Vec::with_capacity(args.count),
        Vec::with_capacity(args.count),
    );
    for i in 0..args.count {
        let line = format!("visibility,run=r{run},seq=s{i} v={i}i");
        let sent = Instant::now();
        let r = auth(http.post(format!("{}/api/v3/write_lp", args.ingester)))
            .query(&[("db", "bench")])
            .body(line)
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("write: {e}")));
        if r.status().as_u16() != 204 {
            fail(&format!("write answered {}", r.status()));
        }
        let acked = Instant::now();
        acks.push((acked - sent).as_secs_f64() * 1e3);
        let q =
            format!("SELECT count(*) AS n FROM visibility WHERE run = 'r{run}' AND seq = 's{i}'");
        loop {
            let r = auth(http.get(format!("{}/api/v3/query_sql", args.querier)))
                .query(&[("db", "bench"), ("q", q.as_str()), ("format", "json")])
                .send()
                .await
                .unwrap_or_else(|e| fail(&format!("query: {e}")));
            let ok = r.status().is_success();
            let body = r.text().await.unwrap_or_default();
            if ok && body.contains("\"n\":1") {
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                fail(&format!("point {i} not visible after 60 s: {body}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(sent.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(args.pause).await;
    }
    lags.sort_by(f64::total_cmp);
    acks.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN),
    );
    let (ack50, ack99) = (percentile(&acks, 0.5), percentile(&acks, 0.99));
    eprintln!(
        "write-to-visible (request sent to row returned) over {} points: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; the 204 alone: p50 {ack50:.1} ms, p99 {ack99:.1} ms",
        lags.len()
    );
    println!(
        "{}",
        serde_json::json!({"kind": "visibility", "points": lags.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max, "ack_p50_ms": ack50, "ack_p99_ms": ack99})
    );
}

/// Sums a counter's samples in a Prometheus text exposition.
fn counter_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn counter(args: CounterArgs) {
    let http = client();
    let read = || async {
        let body = http
            .get(&args.url)
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("metrics: {e}")))
            .text()
            .await
            .unwrap_or_default();
        counter_value(&body, &args.name)
    };
    let (first, started) = (read().await, Instant::now());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let second = read().await;
    let rate = (second - first) / started.elapsed().as_secs_f64();
    eprintln!("{}: {rate:.2}/s over {} s", args.name, args.seconds);
    println!(
        "{}",
        serde_json::json!({"kind": "counter", "name": args.name, "per_second": rate, "total": second})
    );
}

async fn sql(args: SqlArgs) {
    let http = client();
    let url = format!("{}/api/v3/query_sql", args.url.trim_end_matches('/'));
    let run = || async {
        let started = Instant::now();
        let r = http
            .get(&url)
            .query(&[
                ("db", args.db.as_str()),
                ("q", args.q.as_str()),
                ("format", "jsonl"),
            ])
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("{}: {e}", args.name)));
        let status = r.status();
        let body = r
            .bytes()
            .await
            .unwrap_or_else(|e| fail(&format!("{}: {e}", args.name)));
        if !status.is_success() {
            fail(&format!(
                "{}: {status}: {}",
                args.name,
                String::from_utf8_lossy(&body)
            ));
        }
        // The clock stops when the whole answer is in: counting its rows
        // (a walk over 7 MB for 100,000 rows) is the benchmark's own work.
        let elapsed = started.elapsed();
        let rows = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        (elapsed.as_secs_f64() * 1e3, rows)
    };
    let (_, rows) = run().await;
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat.max(1) {
        times.push(run().await.0);
    }
    times.sort_by(f64::total_cmp);
    let (median, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
    println!(
        "{:<40} median {median:>8.3} ms   p95 {p95:>8.3} ms   rows {rows}",
        args.name
    );
    println!(
        "{}",
        serde_json::json!({"kind": "sql", "name": args.name, "median_ms": median, "p95_ms": p95, "rows": rows, "runs": times.len()})
    );
}

fn main() {
    // Loads use every core (many connections at once). Queries go one at a
    // time, so their client runs on one thread: a multi-threaded client
    // hands each answer from its connection task to the waiting request on
    // another thread, which added its own wake-ups to every timing.
    let runtime = match Cli::parse().command {
        Command::Write(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(write(a))),
        Command::CheckInfluxql(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(check_influxql(a))),
        Command::Query(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(query(a))),
        Command::Visibility(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(visibility(a))),
        Command::Counter(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(counter(a))),
        Command::Sql(a) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| r.block_on(sql(a))),
    };
    if let Err(e) = runtime {
        fail(&format!("tokio runtime: {e}"));
    }
}
