//! The cache table functions, as InfluxDB 3 has them, over the caches of
//! the queried database (see the `caches` crate):
//! `last_cache('table'[, 'name'])` and `distinct_cache('table'[, 'name'])`.
//! Conditions `=`, `IN`, `!=` and `NOT IN` on a cache's key columns with
//! literals of their type are applied while the cache walks its keys;
//! anything else DataFusion applies to the rows it returns. Their plans are
//! never reused (the plan cache keeps only plans over Inflow's tables).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use caches::last::KeyValue;
use caches::{Caches, DistinctCache, KeyFilter, LastCache, ValueFilter};
use catalog::{ColumnKind, DatabaseSchema, FieldType};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// The queried database, for table functions (set on every query's session).
#[derive(Debug)]
pub(crate) struct CurrentDatabase(pub(crate) Arc<DatabaseSchema>);

fn string_arg(function: &str, e: &Expr, what: &str) -> Result<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Ok(s.clone()),
        other => plan_err!("{function}: the {what} must be a string literal, not {other}"),
    }
}

/// The arguments of `function('table'[, 'name'])` in the queried database:
/// the database id, the table id and the name.
fn cache_args(function: &str, args: &TableFunctionArgs) -> Result<(u32, u32, Option<String>)> {
    let exprs = args.exprs();
    if exprs.is_empty() || exprs.len() > 2 {
        return plan_err!("{function} takes a table name and optionally a cache name");
    }
    let table = string_arg(function, &exprs[0], "table name")?;
    let name = exprs
        .get(1)
        .map(|e| string_arg(function, e, "cache name"))
        .transpose()?;
    let Some(db) = args.session().config().get_extension::<CurrentDatabase>() else {
        return plan_err!("{function}: no database");
    };
    let Some(t) = db.0.table(&table) else {
        return plan_err!("{function}: table '{table}' not found");
    };
    Ok((db.0.id, t.id, name))
}

/// `column = lit`, `column != lit`, `column [NOT] IN (lit, ...)`: the
/// column, the literals and whether negated.
fn column_condition(e: &Expr) -> Option<(String, Vec<&ScalarValue>, bool)> {
    match e {
        Expr::BinaryExpr(b) if matches!(b.op, Operator::Eq | Operator::NotEq) => {
            match (b.left.as_ref(), b.right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                    Some((c.name.clone(), vec![v], b.op == Operator::NotEq))
                }
                _ => None,
            }
        }
        Expr::InList(l) => {
            let Expr::Column(c) = l.expr.as_ref() else {
                return None;
            };
            let values = l
                .list
                .iter()
                .map(|v| match v {
                    Expr::Literal(v, _) => Some(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some((c.name.clone(), values, l.negated))
        }
        _ => None,
    }
}

/// A cache seen as a table: the conditions it applies itself, and its rows.
trait CacheSource: std::fmt::Debug + Send + Sync + 'static {
    type Filter;
    fn filter(&self, e: &Expr) -> Option<Self::Filter>;
    fn batch(&self, filters: &[Self::Filter]) -> Result<RecordBatch>;
}

impl CacheSource for Arc<LastCache> {
    type Filter = KeyFilter;

    fn filter(&self, e: &Expr) -> Option<KeyFilter> {
        let (column, values, negated) = column_condition(e)?;
        let (_, kind) = self.key_columns().find(|(n, _)| *n == column)?;
        let values = values
            .into_iter()
            .map(|v| key_value(kind, v))
            .collect::<Option<Vec<_>>>()?;
        Some(KeyFilter {
            column,
            values,
            negated,
        })
    }

    fn batch(&self, filters: &[KeyFilter]) -> Result<RecordBatch> {
        Ok(self.record_batch(filters)?)
    }
}

impl CacheSource for Arc<DistinctCache> {
    type Filter = ValueFilter;

    fn filter(&self, e: &Expr) -> Option<ValueFilter> {
        let (column, values, negated) = column_condition(e)?;
        let values = values
            .into_iter()
            .map(string_of)
            .collect::<Option<Vec<_>>>()?;
        self.def().columns.contains(&column).then_some(ValueFilter {
            column,
            values,
            negated,
        })
    }

    fn batch(&self, filters: &[ValueFilter]) -> Result<RecordBatch> {
        Ok(self.record_batch(filters)?)
    }
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

/// A literal as a value of a key column of `kind`, if it is one exactly.
fn key_value(kind: ColumnKind, v: &ScalarValue) -> Option<KeyValue> {
    let as_i128 = |v: &ScalarValue| -> Option<i128> {
        Some(match v {
            ScalarValue::Int8(Some(x)) => i128::from(*x),
            ScalarValue::Int16(Some(x)) => i128::from(*x),
            ScalarValue::Int32(Some(x)) => i128::from(*x),
            ScalarValue::Int64(Some(x)) => i128::from(*x),
            ScalarValue::UInt8(Some(x)) => i128::from(*x),
            ScalarValue::UInt16(Some(x)) => i128::from(*x),
            ScalarValue::UInt32(Some(x)) => i128::from(*x),
            ScalarValue::UInt64(Some(x)) => i128::from(*x),
            _ => return None,
        })
    };
    match kind {
        ColumnKind::Tag | ColumnKind::Field(FieldType::String) => match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(KeyValue::Str(Arc::from(s.as_str()))),
            ScalarValue::Dictionary(_, inner) => key_value(kind, inner),
            _ => None,
        },
        ColumnKind::Field(FieldType::Integer) => as_i128(v)
            .and_then(|x| i64::try_from(x).ok())
            .map(KeyValue::Int),
        ColumnKind::Field(FieldType::UInteger) => as_i128(v)
            .and_then(|x| u64::try_from(x).ok())
            .map(KeyValue::UInt),
        ColumnKind::Field(FieldType::Boolean) => match v {
            ScalarValue::Boolean(Some(b)) => Some(KeyValue::Bool(*b)),
            _ => None,
        },
        _ => None,
    }
}

/// A cache as a table, with the schema it had when the query was planned.
#[derive(Debug)]
struct CacheTable<S> {
    source: S,
    schema: SchemaRef,
}

#[async_trait]
impl<S: CacheSource> TableProvider for CacheTable<S> {
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
            .map(|f| match self.source.filter(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let filters: Vec<S::Filter> = filters
            .iter()
            .filter_map(|f| self.source.filter(f))
            .collect();
        let batch = self.source.batch(&filters)?;
        // New fields may have joined since planning: keep the planned columns.
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    DataFusionError::Execution(format!("cache column {} is gone", f.name()))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        // In batches of the session's size (slices, no copies): a large
        // answer then streams to the client while the rest is encoded,
        // where one batch of every row was encoded whole before the first
        // byte went out.
        let size = state.config().batch_size().max(1);
        let batches = (0..batch.num_rows())
            .step_by(size)
            .map(|offset| batch.slice(offset, size.min(batch.num_rows() - offset)))
            .collect::<Vec<_>>();
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

/// `last_cache('table'[, 'name'])`.
#[derive(Debug)]
pub(crate) struct LastCacheFunction {
    pub(crate) caches: Arc<Caches>,
}

impl TableFunctionImpl for LastCacheFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let (db_id, table_id, name) = cache_args("last_cache", &args)?;
        let cache = self
            .caches
            .last_cache(db_id, table_id, name.as_deref())
            .map_err(|e| DataFusionError::Plan(format!("last_cache: {e}")))?;
        Ok(Arc::new(CacheTable {
            schema: cache.schema(),
            source: cache,
        }))
    }
}

/// `distinct_cache('table'[, 'name'])`.
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
        Ok(Arc::new(CacheTable {
            schema: cache.schema(),
            source: cache,
        }))
    }
}
