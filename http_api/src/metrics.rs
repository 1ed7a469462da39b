//! Prometheus metrics, all prefixed `inflow_`.
//!
//! Two registries: [`Metrics`] holds the HTTP-level metrics of one server,
//! and the process-wide [`cluster_metrics`] the role metrics every part of
//! a process records into (buffer, persist, compaction, replication, object
//! store, catalog), which `/metrics` shows too. The `prometheus` crate's
//! process collector adds CPU, memory and open file descriptors
//! (`process_*`).

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
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
    /// Queries running now (see [`Metrics::query_in_flight`]).
    pub queries_in_flight: prometheus::IntGauge,
    /// WAL flushes by result.
    pub wal_flushes: IntCounterVec,
    /// WAL flush (PUT) latency.
    pub wal_flush_duration: Histogram,
    /// WAL bytes written.
    pub wal_flush_bytes: IntCounter,
    /// Write requests per WAL flush.
    pub wal_flush_entries: Histogram,
    /// Run before each scrape (gauges read from their source).
    scrape_hooks: ScrapeHooks,
}

type Hook = Box<dyn Fn() + Send + Sync>;

#[derive(Clone, Default)]
struct ScrapeHooks(Arc<Mutex<Vec<Hook>>>);

impl std::fmt::Debug for ScrapeHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeHooks")
    }
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
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
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
            write_lines: counter(
                "inflow_write_lines_total",
                "Lines of line protocol accepted",
            ),
            write_lines_rejected: counter(
                "inflow_write_lines_rejected_total",
                "Lines of line protocol rejected",
            ),
            write_bytes: counter(
                "inflow_write_bytes_total",
                "Line protocol bytes received, after decompression",
            ),
            write_duration: hist_vec(
                "inflow_write_duration_seconds",
                "Write request latency, including the WAL flush",
                &["api"],
            ),
            queries: counter_vec("inflow_query_requests_total", "Queries by API", &["api"]),
            query_errors: counter_vec(
                "inflow_query_errors_total",
                "Failed queries by API",
                &["api"],
            ),
            query_duration: hist_vec(
                "inflow_query_duration_seconds",
                "Query latency until the last result byte",
                &["api"],
            ),
            queries_in_flight: {
                let g = prometheus::IntGauge::new(
                    "inflow_queries_in_flight",
                    "Queries running now, on every API (what autoscaling reads)",
                )
                .unwrap_or_else(|e| unreachable_metric("inflow_queries_in_flight", e));
                let _ = registry.register(Box::new(g.clone()));
                g
            },
            wal_flushes: counter_vec(
                "inflow_wal_flushes_total",
                "WAL flushes by result",
                &["result"],
            ),
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
            scrape_hooks: ScrapeHooks::default(),
        }
        .with_process_collector()
    }

    #[cfg(target_os = "linux")]
    fn with_process_collector(self) -> Self {
        let _ = self.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        self
    }

    #[cfg(not(target_os = "linux"))]
    fn with_process_collector(self) -> Self {
        self
    }

    /// Runs `hook` before each scrape, to set gauges read from elsewhere.
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.scrape_hooks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(hook));
    }

    /// Counts a query in `inflow_queries_in_flight` until the guard is
    /// dropped (when its last result byte is sent, or it fails).
    pub fn query_in_flight(&self) -> InFlight {
        self.queries_in_flight.inc();
        InFlight(self.queries_in_flight.clone())
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

    /// Adds collectors owned elsewhere (the query engine's scan counters)
    /// to this server's metrics. A collector registered twice is ignored.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        let _ = self.registry.register(collector);
    }

    /// The Prometheus text exposition: this server's metrics and the
    /// process's [`cluster_metrics`].
    pub fn render(&self) -> String {
        for hook in self
            .scrape_hooks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            hook();
        }
        let mut families = self.registry.gather();
        families.extend(cluster_metrics().registry.gather());
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which
        // registration already rules out.
        let _ = TextEncoder::new().encode(&families, &mut out);
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

/// The role metrics of this process, recorded where the work happens.
#[derive(Debug)]
pub struct ClusterMetrics {
    registry: Registry,
    /// Bytes held by the in-memory buffer (ingester: unpersisted rows;
    /// querier: rows tailed from the WAL).
    pub buffer_bytes: IntGauge,
    /// Persists of the buffer to Parquet, by result (`ok`, `error`).
    pub persists: IntCounterVec,
    /// Persist duration, from the seal to the WAL cleanup.
    pub persist_duration: Histogram,
    /// Parquet files persisted.
    pub persisted_files: IntCounter,
    /// Rows written to Parquet by persists.
    pub persisted_rows: IntCounter,
    /// Compactions (one merged file each), by result.
    pub compactions: IntCounterVec,
    /// Compaction duration, per merged file.
    pub compaction_duration: Histogram,
    /// Rows compaction read from its input files.
    pub compaction_rows: IntCounter,
    /// Files compaction merged away.
    pub compacted_files: IntCounter,
    /// Per ingester node: how long ago the newest WAL file a querier applied
    /// was written (0 when caught up).
    pub replication_lag_seconds: prometheus::GaugeVec,
    /// Per ingester node: WAL files a querier applied.
    pub replication_files: IntCounterVec,
    /// Object store requests by operation and outcome.
    pub object_store_requests: IntCounterVec,
    /// Object store request latency by operation.
    pub object_store_duration: HistogramVec,
    /// The catalog's last applied transaction.
    pub catalog_sequence: IntGauge,
    /// The epoch of this process's node-id lease.
    pub node_lease_epoch: IntGaugeVec,
}

/// The process's [`ClusterMetrics`].
pub fn cluster_metrics() -> &'static ClusterMetrics {
    static METRICS: LazyLock<ClusterMetrics> = LazyLock::new(ClusterMetrics::new);
    &METRICS
}

impl ClusterMetrics {
    fn new() -> Self {
        let registry = Registry::new();
        fn add<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
            let _ = registry.register(Box::new(c.clone()));
            c
        }
        let opts = |name: &str, help: &str| Opts::new(name, help);
        let hopts = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
        };
        fn ok<T>(r: prometheus::Result<T>, name: &str) -> T {
            r.unwrap_or_else(|e| unreachable_metric(name, e))
        }
        Self {
            buffer_bytes: add(
                &registry,
                ok(
                    IntGauge::with_opts(opts(
                        "inflow_buffer_bytes",
                        "Bytes held by the in-memory buffer",
                    )),
                    "inflow_buffer_bytes",
                ),
            ),
            persists: add(
                &registry,
                ok(
                    IntCounterVec::new(
                        opts(
                            "inflow_persists_total",
                            "Persists of the buffer to Parquet by result",
                        ),
                        &["result"],
                    ),
                    "inflow_persists_total",
                ),
            ),
            persist_duration: add(
                &registry,
                ok(
                    Histogram::with_opts(hopts(
                        "inflow_persist_duration_seconds",
                        "Persist duration, seal to WAL cleanup",
                    )),
                    "inflow_persist_duration_seconds",
                ),
            ),
            persisted_files: add(
                &registry,
                ok(
                    IntCounter::with_opts(opts(
                        "inflow_persisted_files_total",
                        "Parquet files written by persists",
                    )),
                    "inflow_persisted_files_total",
                ),
            ),
            persisted_rows: add(
                &registry,
                ok(
                    IntCounter::with_opts(opts(
                        "inflow_persisted_rows_total",
                        "Rows written to Parquet by persists",
                    )),
                    "inflow_persisted_rows_total",
                ),
            ),
            compactions: add(
                &registry,
                ok(
                    IntCounterVec::new(
                        opts(
                            "inflow_compactions_total",
                            "Compactions (merged files) by result",
                        ),
                        &["result"],
                    ),
                    "inflow_compactions_total",
                ),
            ),
            compaction_duration: add(
                &registry,
                ok(
                    Histogram::with_opts(hopts(
                        "inflow_compaction_duration_seconds",
                        "Duration of one compaction",
                    )),
                    "inflow_compaction_duration_seconds",
                ),
            ),
            compaction_rows: add(
                &registry,
                ok(
                    IntCounter::with_opts(opts(
                        "inflow_compaction_rows_total",
                        "Rows read by compactions",
                    )),
                    "inflow_compaction_rows_total",
                ),
            ),
            compacted_files: add(
                &registry,
                ok(
                    IntCounter::with_opts(opts(
                        "inflow_compacted_files_total",
                        "Files merged away by compactions",
                    )),
                    "inflow_compacted_files_total",
                ),
            ),
            replication_lag_seconds: add(
                &registry,
                ok(
                    prometheus::GaugeVec::new(
                        opts(
                            "inflow_replication_lag_seconds",
                            "Age of the newest WAL file a querier applied, per ingester node (0 when caught up)",
                        ),
                        &["node"],
                    ),
                    "inflow_replication_lag_seconds",
                ),
            ),
            replication_files: add(
                &registry,
                ok(
                    IntCounterVec::new(
                        opts(
                            "inflow_replication_wal_files_total",
                            "WAL files a querier applied, per ingester node",
                        ),
                        &["node"],
                    ),
                    "inflow_replication_wal_files_total",
                ),
            ),
            object_store_requests: add(
                &registry,
                ok(
                    IntCounterVec::new(
                        opts(
                            "inflow_object_store_requests_total",
                            "Object store requests by operation and outcome",
                        ),
                        &["op", "outcome"],
                    ),
                    "inflow_object_store_requests_total",
                ),
            ),
            object_store_duration: add(
                &registry,
                ok(
                    HistogramVec::new(
                        hopts(
                            "inflow_object_store_request_duration_seconds",
                            "Object store request latency by operation",
                        ),
                        &["op"],
                    ),
                    "inflow_object_store_request_duration_seconds",
                ),
            ),
            catalog_sequence: add(
                &registry,
                ok(
                    IntGauge::with_opts(opts(
                        "inflow_catalog_sequence",
                        "The catalog's last applied transaction",
                    )),
                    "inflow_catalog_sequence",
                ),
            ),
            node_lease_epoch: add(
                &registry,
                ok(
                    IntGaugeVec::new(
                        opts(
                            "inflow_node_lease_epoch",
                            "The epoch of this process's node-id lease",
                        ),
                        &["node"],
                    ),
                    "inflow_node_lease_epoch",
                ),
            ),
            registry,
        }
    }
}

/// A running query, counted in `inflow_queries_in_flight` while it lives.
#[derive(Debug)]
pub struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
