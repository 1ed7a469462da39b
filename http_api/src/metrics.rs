//! Prometheus metrics, all prefixed `inflow_`.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The process's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Write requests by API family and status code.
    pub write_requests: IntCounterVec,
    /// Lines accepted.
    pub write_lines: IntCounter,
    /// Lines rejected.
    pub write_lines_rejected: IntCounter,
    /// Request body bytes received on write endpoints (after decompression).
    pub write_bytes: IntCounter,
    /// Write request latency.
    pub write_duration: HistogramVec,
    /// Queries by API and outcome.
    pub queries: IntCounterVec,
    /// Query errors by API.
    pub query_errors: IntCounterVec,
    /// Query latency until the last byte.
    pub query_duration: HistogramVec,
    /// WAL flushes by result.
    pub wal_flushes: IntCounterVec,
    /// WAL flush (PUT) latency.
    pub wal_flush_duration: Histogram,
    /// WAL bytes written.
    pub wal_flush_bytes: IntCounter,
    /// Write requests per WAL flush.
    pub wal_flush_entries: Histogram,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable_metric(name, e));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let hist_vec = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels)
                .unwrap_or_else(|e| unreachable_metric(name, e));
            let _ = registry.register(Box::new(h.clone()));
            h
        };
        let hist = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .unwrap_or_else(|e| unreachable_metric(name, e));
            let _ = registry.register(Box::new(h.clone()));
            h
        };
        Self {
            write_requests: counter_vec(
                "inflow_write_requests_total",
                "Write requests by API family and HTTP status",
                &["api", "status"],
            ),
            write_lines: counter("inflow_write_lines_total", "Lines of line protocol accepted"),
            write_lines_rejected: counter("inflow_write_lines_rejected_total", "Lines of line protocol rejected"),
            write_bytes: counter("inflow_write_bytes_total", "Line protocol bytes received, after decompression"),
            write_duration: hist_vec(
                "inflow_write_duration_seconds",
                "Write request latency, including the WAL flush",
                &["api"],
            ),
            queries: counter_vec("inflow_query_requests_total", "Queries by API", &["api"]),
            query_errors: counter_vec("inflow_query_errors_total", "Failed queries by API", &["api"]),
            query_duration: hist_vec(
                "inflow_query_duration_seconds",
                "Query latency until the last result byte",
                &["api"],
            ),
            wal_flushes: counter_vec("inflow_wal_flushes_total", "WAL flushes by result", &["result"]),
            wal_flush_duration: hist(
                "inflow_wal_flush_duration_seconds",
                "WAL flush (object store PUT) latency",
                LATENCY_BUCKETS.to_vec(),
            ),
            wal_flush_bytes: counter("inflow_wal_flush_bytes_total", "Bytes written to WAL files"),
            wal_flush_entries: hist(
                "inflow_wal_flush_entries",
                "Write requests committed per WAL flush",
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            ),
            registry,
        }
    }

    /// A WAL flush observer that records into these metrics.
    pub fn wal_observer(&self) -> wal::FlushObserver {
        let m = self.clone();
        Box::new(move |s: &wal::FlushStats| {
            m.wal_flushes
                .with_label_values(&[if s.ok { "ok" } else { "error" }])
                .inc();
            m.wal_flush_duration.observe(s.duration.as_secs_f64());
            m.wal_flush_entries.observe(s.entries as f64);
            if s.ok {
                m.wal_flush_bytes.inc_by(s.bytes as u64);
            }
        })
    }

    /// Records a finished query.
    pub fn observe_query(&self, api: &str, elapsed: Duration, ok: bool) {
        self.queries.with_label_values(&[api]).inc();
        if !ok {
            self.query_errors.with_label_values(&[api]).inc();
        }
        self.query_duration
            .with_label_values(&[api])
            .observe(elapsed.as_secs_f64());
    }

    /// Adds the query engine's file scan counters.
    pub fn register_scan(&self, scan: &query::ScanMetrics) {
        let _ = self.registry.register(Box::new(scan.files_scanned.clone()));
        let _ = self.registry.register(Box::new(scan.files_pruned.clone()));
        let _ = self.registry.register(Box::new(scan.cache.hits.clone()));
        let _ = self.registry.register(Box::new(scan.cache.misses.clone()));
        let _ = self.registry.register(Box::new(scan.cache.bytes.clone()));
        let _ = self.registry.register(Box::new(scan.plans_reused.clone()));
        let _ = self.registry.register(Box::new(scan.physical_plans_reused.clone()));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which
        // registration already rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn unreachable_metric(name: &str, e: prometheus::Error) -> ! {
    // Metric names and labels are constants; this only fires on a typo.
    panic!("invalid metric definition {name}: {e}")
}
