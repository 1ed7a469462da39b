//! Memory for running queries: one DataFusion pool shared by every query
//! (`--exec-mem-pool-bytes`, as InfluxDB 3 names it), and within it a limit
//! per query (`--query-mem-limit`), so that one large aggregation or sort
//! fails with a clear error instead of taking the process (and every other
//! query and write) down, and cannot starve the other queries of the pool.
//!
//! Operators that buffer (aggregations, sorts, joins, repartitions)
//! reserve memory before they grow; a reservation past either limit fails
//! the query with "Resources exhausted".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// One query's share of the shared pool.
#[derive(Debug)]
pub(crate) struct QueryPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    pub(crate) fn new(shared: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Self {
            shared,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool: {} of {} bytes in use",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shrink_local(shrink);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let limit = self.limit;
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(additional).filter(|n| *n <= limit)
            })
            .map_err(|used| {
                DataFusionError::ResourcesExhausted(format!(
                    "the query needs more than its memory limit of {limit} bytes ({} wanted {additional} more with {used} in use); \
                     narrow it (a shorter time range, fewer groups) or raise --query-mem-limit",
                    reservation.consumer().name()
                ))
            })?;
        if let Err(e) = self.shared.try_grow(reservation, additional) {
            self.shrink_local(additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the server's query memory (--exec-mem-pool-bytes) is in use by other queries: {e}; retry later or raise it"
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

impl QueryPool {
    /// This query's count only, never below zero whatever the caller does.
    fn shrink_local(&self, by: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(by))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_query_stops_at_its_limit_and_the_pool_at_its_own() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&shared), 600));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(Arc::clone(&shared), 600));
        let ra = MemoryConsumer::new("agg").register(&a);
        ra.try_grow(500).expect("within both limits");
        let e = ra.try_grow(200).expect_err("past the query's limit");
        assert!(e.to_string().contains("--query-mem-limit"), "{e}");
        assert_eq!((a.reserved(), shared.reserved()), (500, 500));
        let rb = MemoryConsumer::new("sort").register(&b);
        let e = rb.try_grow(600).expect_err("the pool has 500 left");
        assert!(e.to_string().contains("--exec-mem-pool-bytes"), "{e}");
        assert_eq!((b.reserved(), shared.reserved()), (0, 500));
        drop(ra);
        assert_eq!((a.reserved(), shared.reserved()), (0, 0));
        rb.try_grow(600).expect("free again");
    }
}
