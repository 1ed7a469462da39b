//! `distinct_cache('table'[, 'name'])`: a table function over a distinct
//! value cache of the queried database (see the `caches` crate), as
//! InfluxDB 3 has it. `=`, `IN`, `!=` and `NOT IN` on its columns with
//! string literals are applied while the cache walks its levels.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use caches::{Caches, DistinctCache, ValueFilter};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::last_cache::cache_args;

/// The `distinct_cache` table function.
#[derive(Debug)]
pub(crate) struct DistinctCacheFunction {
    pub(crate) caches: Arc<Caches>,
}

impl TableFunctionImpl for DistinctCacheFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let (db_id, table_id, name) = cache_args("distinct_cache", &args)?;
        let cache = self
            .caches
            .distinct_cache(db_id, table_id, name.as_deref())
            .map_err(|e| DataFusionError::Plan(format!("distinct_cache: {e}")))?;
        Ok(Arc::new(DistinctCacheTable {
            schema: cache.schema(),
            cache,
        }))
    }
}

#[derive(Debug)]
struct DistinctCacheTable {
    cache: Arc<DistinctCache>,
    schema: SchemaRef,
}

fn string_of(v: &ScalarValue) -> Option<Arc<str>> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(Arc::from(s.as_str())),
        ScalarValue::Dictionary(_, inner) => string_of(inner),
        _ => None,
    }
}

impl DistinctCacheTable {
    fn value_filter(&self, e: &Expr) -> Option<ValueFilter> {
        let (column, values, negated) = match e {
            Expr::BinaryExpr(b) if matches!(b.op, Operator::Eq | Operator::NotEq) => {
                let (col, lit) = match (b.left.as_ref(), b.right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _))
                    | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
                    _ => return None,
                };
                (
                    col.name.clone(),
                    vec![string_of(lit)?],
                    b.op == Operator::NotEq,
                )
            }
            Expr::InList(l) => {
                let Expr::Column(c) = l.expr.as_ref() else {
                    return None;
                };
                let values = l
                    .list
                    .iter()
                    .map(|v| match v {
                        Expr::Literal(v, _) => string_of(v),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                (c.name.clone(), values, l.negated)
            }
            _ => return None,
        };
        self.cache
            .def()
            .columns
            .contains(&column)
            .then_some(ValueFilter {
                column,
                values,
                negated,
            })
    }
}

#[async_trait]
impl TableProvider for DistinctCacheTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.value_filter(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let filters: Vec<ValueFilter> = filters
            .iter()
            .filter_map(|f| self.value_filter(f))
            .collect();
        let batch = self.cache.record_batch(&filters)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}
