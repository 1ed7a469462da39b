//! The operator's own metrics (`/metrics`) and health (`/healthz`).

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Reconciles, failures and durations per kind.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    durations: HistogramVec,
}

impl Metrics {
    /// The metrics, registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new("inflow_operator_reconciles_total", "Reconciles, per kind"),
            &["kind"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "inflow_operator_reconcile_errors_total",
                "Reconciles that failed (and were requeued with backoff), per kind",
            ),
            &["kind"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "inflow_operator_reconcile_duration_seconds",
                "How long reconciles took, per kind",
            )
            .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            &["kind"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            failures,
            durations,
        })
    }

    /// Records one reconcile of `kind`.
    pub fn observe(&self, kind: &str, elapsed: Duration, ok: bool) {
        self.reconciles.with_label_values(&[kind]).inc();
        if !ok {
            self.failures.with_label_values(&[kind]).inc();
        }
        self.durations
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
