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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalog::DatabaseSchema;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};

/// Plans kept at most; the cache starts over when full.
const MAX_PLANS: usize = 512;
/// Longer query texts are not kept.
const MAX_SQL_LEN: usize = 16 * 1024;

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
    pub(crate) fn new(db: &str, sql: &str, params: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<Self> {
        if sql.len() > MAX_SQL_LEN {
            return None;
        }
        Some(Self {
            db: db.to_string(),
            sql: sql.to_string(),
            params: params.filter(|p| !p.is_empty()).map(|p| serde_json::Value::Object(p.clone()).to_string()),
        })
    }
}

#[derive(Debug)]
struct Entry {
    schema: Arc<DatabaseSchema>,
    plan: Arc<LogicalPlan>,
}

/// Optimised plans by query (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    plans: Mutex<HashMap<PlanKey, Entry>>,
}

impl PlanCache {
    /// The plan of `key`, if it was made over `schema`.
    pub(crate) fn get(&self, key: &PlanKey, schema: &Arc<DatabaseSchema>) -> Option<Arc<LogicalPlan>> {
        let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        plans
            .get(key)
            .filter(|e| Arc::ptr_eq(&e.schema, schema))
            .map(|e| Arc::clone(&e.plan))
    }

    /// Keeps `plan`, made over `schema`, for `key`.
    pub(crate) fn insert(&self, key: PlanKey, schema: &Arc<DatabaseSchema>, plan: Arc<LogicalPlan>) {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= MAX_PLANS && !plans.contains_key(&key) {
            plans.clear();
        }
        plans.insert(key, Entry { schema: Arc::clone(schema), plan });
    }
}

/// Whether the optimised form of `plan` (as planned from SQL, before
/// optimisation) answers like a fresh plan whenever the schema is the same:
/// its scans read Inflow tables only, and its functions are immutable.
pub(crate) fn reusable(plan: &LogicalPlan, is_live_table: impl Fn(&dyn datafusion::catalog::TableProvider) -> bool) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            ok = source_as_provider(&scan.source).is_ok_and(|p| is_live_table(p.as_ref()));
        }
        if ok {
            let _ = node.apply_expressions(|e| {
                ok = !e.exists(|e| Ok(!immutable(e))).unwrap_or(true);
                Ok(if ok { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
            });
        }
        Ok(if ok { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
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

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT, b VARCHAR)").await.unwrap();
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn stable_and_volatile_functions_and_other_tables_are_not_reused() {
        let any = |_: &dyn datafusion::catalog::TableProvider| true;
        let none = |_: &dyn datafusion::catalog::TableProvider| false;
        assert!(reusable(&plan("SELECT max(a), upper(b) FROM t WHERE a > 1 GROUP BY b").await, any));
        assert!(reusable(&plan("SELECT 1").await, none));
        assert!(!reusable(&plan("SELECT a FROM t").await, none));
        assert!(!reusable(&plan("SELECT now()").await, any));
        assert!(!reusable(&plan("SELECT a FROM t WHERE a < (SELECT max(a) FROM t WHERE b < to_char(now(), '%Y'))").await, any));
        assert!(!reusable(&plan("SELECT random() FROM t").await, any));
        assert!(!reusable(&plan("SELECT a FROM t WHERE a = $1").await, any));
    }

    #[test]
    fn plans_belong_to_one_schema() {
        let cache = PlanCache::default();
        let s1 = Arc::new(DatabaseSchema::empty("db"));
        let s2 = Arc::new(DatabaseSchema::empty("db"));
        let key = PlanKey::new("db", "SELECT 1", None).unwrap();
        let p = Arc::new(LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
            produce_one_row: true,
            schema: Arc::new(datafusion::common::DFSchema::empty()),
        }));
        cache.insert(key.clone(), &s1, Arc::clone(&p));
        assert!(cache.get(&key, &s1).is_some());
        assert!(cache.get(&key, &s2).is_none());
        assert!(cache.get(&PlanKey::new("db", "SELECT 2", None).unwrap(), &s1).is_none());
        let mut params = serde_json::Map::new();
        params.insert("a".into(), serde_json::json!(1));
        assert!(cache.get(&PlanKey::new("db", "SELECT 1", Some(&params)).unwrap(), &s1).is_none());
        assert!(PlanKey::new("db", &"x".repeat(MAX_SQL_LEN + 1), None).is_none());
    }
}
