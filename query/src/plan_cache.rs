//! Optimised logical plans of repeated queries.
//!
//! Dashboards, alerts and scripts send the same query text again and
//! again. Turning SQL into an optimised logical plan (parse, plan, type
//! coercion, the optimizer passes) is about 40% of a small query's work,
//! and its result depends only on the text, the parameters and the
//! database's schema. So the engine keeps the optimised plan of each
//! recent query and, when the same text comes again with the same
//! parameters and the database's schema is unchanged, plans only the
//! physical side.
//!
//! A plan is reused only when that gives the same answer as planning anew:
//! - its tables are Inflow tables, whose scans read the buffer and the file
//!   list of the moment (not `system` or `information_schema` tables, whose
//!   rows are fixed when the query is planned);
//! - every function in it is immutable: the optimizer folds `now()` and the
//!   other stable functions into constants, which would freeze them;
//! - the database's schema is the same `Arc` as when it was planned (the
//!   catalog replaces it on any change to the database: a new table or
//!   column, a retention period), which the cache holds on to so that the
//!   pointer cannot be reused.
//!
//! The physical plan is kept too, and run again (with its run-time state
//! reset, see [`reset_plan_states`]) while a fresh one would be the same:
//! a table scan fixes, when it is planned, the buffered rows and the files
//! it reads (which files, which row groups and pages), so its plan is
//! reused only while every table it scanned has the same buffered rows
//! ([`buffer::TableVersion`]) and the same file list (the catalog's `Arc`),
//! and only if:
//! - no scan applied a retention cut-off (a time fixed when planned), and
//!   every file was planned with its footer;
//! - every operator is one whose state [`reset_plan_states`] resets and
//!   none makes or reads a dynamic filter (a `TopK`'s, a join's, a
//!   min/max aggregate's), whose bounds would carry over between runs;
//! - it has been run fewer than [`MAX_PHYSICAL_RUNS`] times, counted in
//!   files opened: a Parquet scan's metrics, which nothing resets, grow
//!   with every file it opens;
//! - the buffered batches it holds are small: a kept plan holds them after
//!   the buffer has moved on, outside its memory limit (at most 32 MiB a
//!   plan and 256 MiB for all).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalog::DatabaseSchema;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, execution_plan::reset_plan_states};

use crate::provider::ScanRecord;

/// Plans kept at most; the cache starts over when full.
const MAX_PLANS: usize = 512;
/// Longer query texts are not kept.
const MAX_SQL_LEN: usize = 16 * 1024;
/// Runs of one physical plan, counted in files opened (a run that opens
/// none counts one), before it is planned anew. A Parquet scan keeps a few
/// dozen metrics per file opened, for its plan's life.
pub(crate) const MAX_PHYSICAL_RUNS: usize = 256;
/// Bytes of buffered rows that one kept physical plan, and all of them
/// together, may hold (counted as Arrow reports them: a slice counts its
/// whole buffers). A kept plan holds its scans' batches after the buffer
/// has moved on, outside the buffer's memory limit.
const MAX_PLAN_BYTES: usize = 32 << 20;
const MAX_PINNED_BYTES: usize = 256 << 20;

/// What a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    db: String,
    sql: String,
    /// The bound parameters as JSON (a JSON object's keys are sorted).
    params: Option<String>,
}

impl PlanKey {
    /// The key of a query, or `None` for a text too long to keep.
    pub(crate) fn new(
        db: &str,
        sql: &str,
        params: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Option<Self> {
        if sql.len() > MAX_SQL_LEN {
            return None;
        }
        Some(Self {
            db: db.to_string(),
            sql: sql.to_string(),
            params: params
                .filter(|p| !p.is_empty())
                .map(|p| serde_json::Value::Object(p.clone()).to_string()),
        })
    }
}

#[derive(Debug)]
struct Entry {
    schema: Arc<DatabaseSchema>,
    plan: Arc<LogicalPlan>,
    physical: Option<Physical>,
}

/// A physical plan kept for reuse, with what its scans read.
#[derive(Debug, Clone)]
pub(crate) struct Physical {
    /// Each run gets a copy with fresh state ([`Physical::to_run`]), so the
    /// query that planned it may run this one itself.
    plan: Arc<dyn ExecutionPlan>,
    pub(crate) scans: Arc<[ScanRecord]>,
    /// The partitions it was planned for.
    pub(crate) target_partitions: usize,
    /// Runs left, in files opened.
    runs_left: usize,
    /// Bytes of the batches its memory scans hold.
    bytes: usize,
}

impl Physical {
    /// Keeps `plan`, planned with `target_partitions` and whose scans read
    /// `scans`, if it can be reused (see the module docs).
    pub(crate) fn new(
        plan: &Arc<dyn ExecutionPlan>,
        scans: Vec<ScanRecord>,
        target_partitions: usize,
    ) -> Option<Self> {
        if !scans.iter().all(|s| s.fixed_rows_only) || !physical_reusable(plan) {
            return None;
        }
        let bytes = held_bytes(plan);
        if bytes > MAX_PLAN_BYTES {
            return None;
        }
        Some(Self {
            plan: Arc::clone(plan),
            scans: scans.into(),
            target_partitions,
            runs_left: MAX_PHYSICAL_RUNS,
            bytes,
        })
    }

    /// A copy of the plan to run, with its operators' state reset.
    pub(crate) fn to_run(&self) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        reset_plan_states(Arc::clone(&self.plan))
    }

    /// Files one run opens (at least 1).
    fn run_cost(&self) -> usize {
        let files: u64 = self.scans.iter().map(|s| s.files_scanned).sum();
        usize::try_from(files).unwrap_or(usize::MAX).max(1)
    }
}

/// What the cache holds for a query.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) logical: Arc<LogicalPlan>,
    /// The physical plan, if one is kept and has runs left (one is taken).
    pub(crate) physical: Option<Physical>,
}

/// Optimised plans by query (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    plans: Mutex<Plans>,
}

#[derive(Debug, Default)]
struct Plans {
    entries: HashMap<PlanKey, Entry>,
    /// The bytes the kept physical plans hold.
    pinned: usize,
}

impl Plans {
    /// Sets an entry's physical plan, keeping the byte count.
    fn set(&mut self, key: &PlanKey, physical: Option<Physical>) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        self.pinned -= e.physical.as_ref().map_or(0, |p| p.bytes);
        let adds = physical.as_ref().map_or(0, |p| p.bytes);
        e.physical = physical.filter(|_| self.pinned + adds <= MAX_PINNED_BYTES);
        self.pinned += e.physical.as_ref().map_or(0, |p| p.bytes);
    }
}

impl PlanCache {
    /// The plans of `key`, if they were made over `schema`.
    pub(crate) fn get(&self, key: &PlanKey, schema: &Arc<DatabaseSchema>) -> Option<Cached> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let e = plans
            .entries
            .get_mut(key)
            .filter(|e| Arc::ptr_eq(&e.schema, schema))?;
        let logical = Arc::clone(&e.plan);
        let physical = match e.physical.as_mut() {
            Some(p) if p.runs_left >= p.run_cost() => {
                p.runs_left -= p.run_cost();
                Some(p.clone())
            }
            Some(_) => {
                plans.set(key, None);
                None
            }
            None => None,
        };
        Some(Cached { logical, physical })
    }

    /// Keeps `plan`, made over `schema`, for `key`.
    pub(crate) fn insert(
        &self,
        key: PlanKey,
        schema: &Arc<DatabaseSchema>,
        plan: Arc<LogicalPlan>,
    ) {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.entries.len() >= MAX_PLANS && !plans.entries.contains_key(&key) {
            *plans = Plans::default();
        }
        plans.set(&key, None);
        plans.entries.insert(
            key,
            Entry {
                schema: Arc::clone(schema),
                plan,
                physical: None,
            },
        );
    }

    /// Keeps (or forgets, with `None`) the physical plan of `key`'s
    /// logical plan `logical`, if that is still the one kept.
    pub(crate) fn set_physical(
        &self,
        key: &PlanKey,
        logical: &Arc<LogicalPlan>,
        physical: Option<Physical>,
    ) {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.plan, logical))
        {
            plans.set(key, physical);
        }
    }
}

/// Bytes of the batches that `plan`'s memory scans hold.
fn held_bytes(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut bytes = 0usize;
    let _ = plan.apply(|node| {
        if let Some(mem) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|d| d.data_source().downcast_ref::<MemorySourceConfig>())
        {
            for b in mem.partitions().iter().flatten() {
                bytes = bytes.saturating_add(b.get_array_memory_size());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    bytes
}

/// Whether running a copy of `plan` reset by [`reset_plan_states`] is the
/// same as running a new plan (see the module docs).
pub(crate) fn physical_reusable(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let dynamic = |e: &Arc<dyn datafusion::physical_expr::PhysicalExpr>| {
        e.exists(|e| Ok(e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some()))
            .unwrap_or(true)
    };
    let reusable = |node: &Arc<dyn ExecutionPlan>| {
        let known = node.is::<ProjectionExec>()
            || node.is::<FilterExec>()
            || node.is::<AggregateExec>()
            // With a limit, a sort is a `TopK` (and produces a dynamic filter).
            || node.downcast_ref::<SortExec>().is_some_and(|s| s.fetch().is_none())
            || node.is::<SortPreservingMergeExec>()
            || node.is::<CoalescePartitionsExec>()
            || node.is::<RepartitionExec>()
            || node.is::<UnionExec>()
            || node.is::<GlobalLimitExec>()
            || node.is::<LocalLimitExec>()
            || node.is::<CooperativeExec>()
            || node.is::<EmptyExec>()
            || node.is::<PlaceholderRowExec>()
            || node.downcast_ref::<DataSourceExec>().is_some_and(|d| {
                let source = d.data_source();
                source.is::<MemorySourceConfig>()
                    || source
                        .downcast_ref::<FileScanConfig>()
                        .and_then(|c| c.file_source().downcast_ref::<ParquetSource>())
                        .is_some_and(|p| FileSource::filter(p).is_none_or(|f| !dynamic(&f)))
            });
        let mut reads_dynamic = false;
        let _ = node.apply_expressions(&mut |e| {
            reads_dynamic |= dynamic(e);
            Ok(if reads_dynamic {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
        known && !reads_dynamic && node.dynamic_expressions_produced().is_empty()
    };
    !plan.exists(|node| Ok(!reusable(node))).unwrap_or(true)
}

/// Whether the optimised form of `plan` (as planned from SQL, before
/// optimisation) answers like a fresh plan whenever the schema is the same:
/// its scans read Inflow tables only, and its functions are immutable.
pub(crate) fn reusable(
    plan: &LogicalPlan,
    is_live_table: impl Fn(&dyn datafusion::catalog::TableProvider) -> bool,
) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            ok = source_as_provider(&scan.source).is_ok_and(|p| is_live_table(p.as_ref()));
        }
        if ok {
            let _ = node.apply_expressions(|e| {
                ok = !e.exists(|e| Ok(!immutable(e))).unwrap_or(true);
                Ok(if ok {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            });
        }
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// Whether `e` itself gives the same value whenever its inputs are the same.
fn immutable(e: &Expr) -> bool {
    match e {
        Expr::ScalarFunction(f) => f.func.signature().volatility == Volatility::Immutable,
        Expr::AggregateFunction(f) => f.func.signature().volatility == Volatility::Immutable,
        Expr::WindowFunction(_) => true,
        Expr::ScalarVariable(..) | Expr::Placeholder(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn empty_plan() -> Arc<LogicalPlan> {
        Arc::new(LogicalPlan::EmptyRelation(
            datafusion::logical_expr::EmptyRelation {
                produce_one_row: true,
                schema: Arc::new(datafusion::common::DFSchema::empty()),
            },
        ))
    }

    fn one_row() -> Arc<dyn ExecutionPlan> {
        Arc::new(PlaceholderRowExec::new(Arc::new(
            datafusion::arrow::datatypes::Schema::empty(),
        )))
    }

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT, b VARCHAR)").await.unwrap();
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn stable_and_volatile_functions_and_other_tables_are_not_reused() {
        let any = |_: &dyn datafusion::catalog::TableProvider| true;
        let none = |_: &dyn datafusion::catalog::TableProvider| false;
        assert!(reusable(
            &plan("SELECT max(a), upper(b) FROM t WHERE a > 1 GROUP BY b").await,
            any
        ));
        assert!(reusable(&plan("SELECT 1").await, none));
        assert!(!reusable(&plan("SELECT a FROM t").await, none));
        assert!(!reusable(&plan("SELECT now()").await, any));
        assert!(!reusable(
            &plan(
                "SELECT a FROM t WHERE a < (SELECT max(a) FROM t WHERE b < to_char(now(), '%Y'))"
            )
            .await,
            any
        ));
        assert!(!reusable(&plan("SELECT random() FROM t").await, any));
        assert!(!reusable(&plan("SELECT a FROM t WHERE a = $1").await, any));
    }

    async fn physical(sql: &str) -> Arc<dyn ExecutionPlan> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT, b VARCHAR) AS VALUES (1, 'x'), (2, 'y')")
            .await
            .unwrap();
        ctx.sql("CREATE TABLE u (a INT, c INT) AS VALUES (1, 10)")
            .await
            .unwrap();
        ctx.sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn plans_with_dynamic_filters_or_unknown_operators_are_not_run_again() {
        assert!(physical_reusable(
            &physical("SELECT b, max(a) FROM t WHERE a > 1 GROUP BY b ORDER BY b").await
        ));
        assert!(physical_reusable(
            &physical("SELECT a FROM t WHERE b = 'x' LIMIT 1").await
        ));
        // A `TopK` and a join produce dynamic filters; a join keeps its build side.
        assert!(!physical_reusable(
            &physical("SELECT a FROM t ORDER BY a DESC LIMIT 1").await
        ));
        assert!(!physical_reusable(
            &physical("SELECT t.a, u.c FROM t JOIN u ON t.a = u.a").await
        ));
        assert!(!physical_reusable(
            &physical("EXPLAIN ANALYZE SELECT a FROM t").await
        ));
    }

    #[tokio::test]
    async fn plans_holding_many_buffered_bytes_are_not_kept() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::record_batch::RecordBatch;
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let ctx = SessionContext::new();
        for (name, rows) in [("small", 1_000i64), ("large", 5_000_000)] {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(0..rows))],
            )
            .unwrap();
            let table =
                datafusion::datasource::MemTable::try_new(Arc::clone(&schema), vec![vec![batch]])
                    .unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap()
            }
        };
        assert!(
            Physical::new(&plan("SELECT max(a) + 1 FROM small").await, Vec::new(), 1).is_some()
        );
        assert!(
            Physical::new(&plan("SELECT max(a) + 1 FROM large").await, Vec::new(), 1).is_none()
        );
    }

    #[test]
    fn kept_plans_hold_a_bounded_number_of_bytes() {
        let cache = PlanCache::default();
        let schema = Arc::new(DatabaseSchema::empty("db"));
        let plan: Arc<dyn ExecutionPlan> = one_row();
        let holding = |bytes: usize| {
            let mut p = Physical::new(&plan, Vec::new(), 1).unwrap();
            p.bytes = bytes;
            Some(p)
        };
        let keys: Vec<(PlanKey, Arc<LogicalPlan>)> = (0..3)
            .map(|i| {
                let key = PlanKey::new("db", &format!("SELECT {i}"), None).unwrap();
                let logical = empty_plan();
                cache.insert(key.clone(), &schema, Arc::clone(&logical));
                cache.set_physical(&key, &logical, holding(100 << 20));
                (key, logical)
            })
            .collect();
        let kept = |i: usize| cache.get(&keys[i].0, &schema).unwrap().physical.is_some();
        assert!(kept(0) && kept(1) && !kept(2), "256 MiB in all");
        // Replacing a plan gives back its bytes.
        cache.set_physical(&keys[0].0, &keys[0].1, holding(10 << 20));
        cache.set_physical(&keys[2].0, &keys[2].1, holding(100 << 20));
        assert!(kept(0) && kept(1) && kept(2));
        cache.insert(keys[1].0.clone(), &schema, Arc::clone(&keys[1].1));
        assert_eq!(cache.plans.lock().unwrap().pinned, 110 << 20);
    }

    #[test]
    fn physical_plans_run_a_bounded_number_of_times() {
        let cache = PlanCache::default();
        let schema = Arc::new(DatabaseSchema::empty("db"));
        let key = PlanKey::new("db", "SELECT 1", None).unwrap();
        let logical = empty_plan();
        cache.insert(key.clone(), &schema, Arc::clone(&logical));
        let plan: Arc<dyn ExecutionPlan> = one_row();
        cache.set_physical(&key, &logical, Physical::new(&plan, Vec::new(), 1));
        for _ in 0..MAX_PHYSICAL_RUNS {
            assert!(cache.get(&key, &schema).unwrap().physical.is_some());
        }
        let spent = cache.get(&key, &schema).unwrap();
        assert!(spent.physical.is_none());
        assert!(Arc::ptr_eq(&spent.logical, &logical));
        // Kept only for the logical plan it was made from.
        let other = Arc::new(LogicalPlan::clone(&logical));
        cache.set_physical(&key, &other, Physical::new(&plan, Vec::new(), 1));
        assert!(cache.get(&key, &schema).unwrap().physical.is_none());
    }

    #[test]
    fn plans_belong_to_one_schema() {
        let cache = PlanCache::default();
        let s1 = Arc::new(DatabaseSchema::empty("db"));
        let s2 = Arc::new(DatabaseSchema::empty("db"));
        let key = PlanKey::new("db", "SELECT 1", None).unwrap();
        let p = empty_plan();
        cache.insert(key.clone(), &s1, Arc::clone(&p));
        assert!(cache.get(&key, &s1).is_some());
        assert!(cache.get(&key, &s2).is_none());
        assert!(
            cache
                .get(&PlanKey::new("db", "SELECT 2", None).unwrap(), &s1)
                .is_none()
        );
        let mut params = serde_json::Map::new();
        params.insert("a".into(), serde_json::json!(1));
        assert!(
            cache
                .get(&PlanKey::new("db", "SELECT 1", Some(&params)).unwrap(), &s1)
                .is_none()
        );
        assert!(PlanKey::new("db", &"x".repeat(MAX_SQL_LEN + 1), None).is_none());
    }
}
