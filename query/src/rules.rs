//! Logical rewrites of our own, run after DataFusion's optimizer rules.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::logical_expr::expr::{AggregateFunction, Alias, NullTreatment};
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Projection, cast, col,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// A rule that rewrites `Aggregate` nodes, bottom up, with one function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AggregateRule {
    name: &'static str,
    rewrite: fn(Aggregate) -> Result<Transformed<LogicalPlan>>,
}

impl OptimizerRule for AggregateRule {
    fn name(&self) -> &str {
        self.name
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Aggregate(agg) => (self.rewrite)(agg),
            plan => Ok(Transformed::no(plan)),
        }
    }
}

/// Cheaper `first_value` and `last_value` aggregates.
///
/// `SELECT DISTINCT ON (host) * … ORDER BY host, time DESC` (the last point
/// of every series) becomes one `first_value(c ORDER BY host, time DESC)`
/// per column, grouped by `host`. DataFusion 55 evaluates each of them on
/// its own, comparing rows by every `ORDER BY` key, and it has a vectorised
/// group accumulator for plain strings but not for dictionaries (tags),
/// which it aggregates row by row through `ScalarValue`s. This rule:
/// - drops `ORDER BY` keys that are also grouping keys: they are constant
///   within a group, so they never decide which row comes first (a string
///   comparison per row and aggregate saved);
/// - aggregates a tag's decoded strings and encodes the result again, so
///   the plan's output keeps its names and types.
pub(crate) const SIMPLIFY_FIRST_LAST: AggregateRule = AggregateRule {
    name: "inflow_simplify_first_last",
    rewrite: simplify_first_last,
};

fn simplify_first_last(agg: Aggregate) -> Result<Transformed<LogicalPlan>> {
    // Grouping sets add a grouping id column; leave them alone.
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let groups = agg.group_expr.len();
    let mut changed = false;
    let mut aggr_expr = Vec::with_capacity(agg.aggr_expr.len());
    for (i, e) in agg.aggr_expr.iter().enumerate() {
        match simplified(e, agg.input.schema(), &agg.group_expr)? {
            Some(new) => {
                changed = true;
                aggr_expr.push(new.alias(agg.schema.field(groups + i).name()));
            }
            None => aggr_expr.push(e.clone()),
        }
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let new = Aggregate::try_new(Arc::clone(&agg.input), agg.group_expr.clone(), aggr_expr)?;
    let new_schema = Arc::clone(&new.schema);
    let exprs = agg
        .schema
        .iter()
        .zip(new_schema.iter())
        .map(|((qualifier, field), (new_qualifier, new_field))| {
            let c = Expr::Column(Column::from((new_qualifier, new_field)));
            if field.data_type() == new_field.data_type() {
                c
            } else {
                cast(c, field.data_type().clone()).alias_qualified(qualifier.cloned(), field.name())
            }
        })
        .collect::<Vec<_>>();
    let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(new)))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// `e` simplified, if it is `first_value` or `last_value` and either part
/// of the rule applies.
fn simplified(e: &Expr, schema: &DFSchema, group_expr: &[Expr]) -> Result<Option<Expr>> {
    let e = match e {
        Expr::Alias(Alias { expr, .. }) => expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return Ok(None);
    };
    if !matches!(func.name(), "first_value" | "last_value") || params.args.len() != 1 {
        return Ok(None);
    }
    let mut params = params.clone();
    let mut changed = false;
    // Keys that are grouping keys; at least one key stays, so ties are
    // still broken the same way.
    let kept: Vec<_> = params
        .order_by
        .iter()
        .filter(|s| !group_expr.contains(&s.expr))
        .cloned()
        .collect();
    if !kept.is_empty() && kept.len() < params.order_by.len() {
        params.order_by = kept;
        changed = true;
    }
    if let DataType::Dictionary(_, value) = params.args[0].get_type(schema)?
        && matches!(value.as_ref(), DataType::Utf8 | DataType::LargeUtf8)
    {
        params.args[0] = cast(params.args[0].clone(), value.as_ref().clone());
        changed = true;
    }
    Ok(changed.then(|| {
        Expr::AggregateFunction(AggregateFunction {
            func: Arc::clone(func),
            params,
        })
    }))
}

/// The name of the cut-off column [`LATEST_ROWS_ONLY`] adds; also how it
/// recognises a plan it already rewrote.
pub(crate) const CUTOFF: &str = "__inflow_cutoff";

/// Aggregates that keep only each group's latest (or earliest) row scan
/// only the rows that can be it.
///
/// When every aggregate of a grouped `Aggregate` is `first_value(… ORDER BY
/// t DESC, …)` or `last_value(… ORDER BY t, …)` (the last point of every series,
/// after [`SIMPLIFY_FIRST_LAST`]) on one non-null column `t`, each group's
/// winning row has `t` = the group's `max(t)`, which is at least the
/// smallest of those maxima. So a first, cheap pass computes that cut-off
/// (two columns, one `max` per group), and the aggregates only see rows
/// with `t >=` it: in time series, about one row per series instead of the
/// whole table. Rows tied at a group's maximum all pass, in their order, so
/// ties are broken as before. The earliest row works the same way with
/// `min`, `max` and `<=`.
pub(crate) const LATEST_ROWS_ONLY: AggregateRule = AggregateRule {
    name: "inflow_latest_rows_only",
    rewrite: latest_rows_only,
};

fn latest_rows_only(agg: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let Some((t, latest)) = single_extreme(&agg)? else {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    };
    let done = agg
        .input
        .exists(|p| Ok(p.schema().fields().iter().any(|f| f.name() == CUTOFF)))?;
    if done {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let input = agg.input.as_ref().clone();
    let time = Expr::Column(t);
    let (per_group, overall) = if latest {
        (max(time.clone()), min(col("__inflow_end")))
    } else {
        (min(time.clone()), max(col("__inflow_end")))
    };
    let cutoff = LogicalPlanBuilder::from(input.clone())
        .aggregate(
            agg.group_expr.clone(),
            vec![per_group.alias("__inflow_end")],
        )?
        .aggregate(Vec::<Expr>::new(), vec![overall.alias(CUTOFF)])?
        .build()?;
    let keep = if latest {
        time.gt_eq(col(CUTOFF))
    } else {
        time.lt_eq(col(CUTOFF))
    };
    let columns = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect::<Vec<_>>();
    // The one-row cut-off on the left: the join holds it and streams the
    // table past it (the other way round it held the whole table).
    let rows = LogicalPlanBuilder::from(cutoff)
        .cross_join(input)?
        .filter(keep)?
        .project(columns)?
        .build()?;
    let new = Aggregate::try_new(
        Arc::new(rows),
        agg.group_expr.clone(),
        agg.aggr_expr.clone(),
    )?;
    Ok(Transformed::yes(LogicalPlan::Aggregate(new)))
}

/// The column `t` and whether each group's latest row (`true`) or earliest
/// row is wanted, if every aggregate of `agg` picks one row by `t` alone,
/// `t` is never null, and there are grouping keys (without grouping sets).
fn single_extreme(agg: &Aggregate) -> Result<Option<(Column, bool)>> {
    if agg.group_expr.is_empty()
        || agg.aggr_expr.is_empty()
        || agg
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let mut found: Option<(Column, bool)> = None;
    for e in &agg.aggr_expr {
        let e = match e {
            Expr::Alias(Alias { expr, .. }) => expr.as_ref(),
            e => e,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
            return Ok(None);
        };
        let first = match func.name() {
            "first_value" => true,
            "last_value" => false,
            _ => return Ok(None),
        };
        // IGNORE NULLS may pick an older row for a column with nulls.
        if params.distinct
            || params.filter.is_some()
            || matches!(params.null_treatment, Some(NullTreatment::IgnoreNulls))
        {
            return Ok(None);
        }
        // Later keys only break ties among the rows at the extreme `t`.
        let Some(order) = params.order_by.first() else {
            return Ok(None);
        };
        let Expr::Column(c) = &order.expr else {
            return Ok(None);
        };
        // first_value of the descending order, or last_value of the
        // ascending one: the latest row.
        let latest = first != order.asc;
        match &found {
            Some((prev, prev_latest)) if prev != c || *prev_latest != latest => return Ok(None),
            Some(_) => {}
            None => found = Some((c.clone(), latest)),
        }
    }
    let Some((c, latest)) = found else {
        return Ok(None);
    };
    let (_, field) = agg.input.schema().qualified_field_from_column(&c)?;
    Ok((!field.is_nullable()).then_some((c, latest)))
}

/// Whether one pass of the logical optimizer leaves nothing for another:
/// the plan only filters, projects, aggregates, sorts and limits scans of
/// tables (as most dashboard queries do), with no subquery, and no
/// `first_value`/`last_value` aggregate or `DISTINCT ON` that
/// [`LATEST_ROWS_ONLY`] turns into a join. DataFusion otherwise runs every
/// rule again until the plan stops changing (a second pass over such a
/// plan changes nothing and cost a tenth of a single-host query's
/// instructions). `EXPLAIN` decides by the plan it explains.
pub(crate) fn one_pass_suffices(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut simple = true;
    let walked = plan.apply(|node| {
        let node_ok = match node {
            LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::TableScan(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Values(_) => true,
            LogicalPlan::Aggregate(agg) => !agg.aggr_expr.iter().any(|e| {
                e.exists(|e| {
                    Ok(matches!(e, Expr::AggregateFunction(f)
                        if matches!(f.func.name(), "first_value" | "last_value")))
                })
                .unwrap_or(true)
            }),
            _ => false,
        };
        let subquery = node.expressions().iter().any(|e| {
            e.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::SetComparison(_)
                ))
            })
            .unwrap_or(true)
        });
        if !node_ok || subquery {
            simple = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    walked.is_ok() && simple
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::one_pass_suffices;

    #[tokio::test]
    async fn one_pass_for_plain_plans_only() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, true),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Float64Array::from(vec![1.0])),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table(
            "m",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
        )
        .unwrap();
        let cases = [
            (
                "SELECT host, max(v) FROM m WHERE host = 'a' GROUP BY host ORDER BY host LIMIT 3",
                true,
            ),
            (
                "EXPLAIN SELECT v FROM (SELECT v FROM m) AS s WHERE v > 1",
                true,
            ),
            ("SELECT host, first_value(v) FROM m GROUP BY host", false),
            (
                "SELECT DISTINCT ON (host) host, v FROM m ORDER BY host, v DESC",
                false,
            ),
            ("SELECT a.v FROM m a JOIN m b ON a.host = b.host", false),
            ("SELECT v FROM m WHERE v > (SELECT avg(v) FROM m)", false),
            ("SELECT v FROM m UNION ALL SELECT v FROM m", false),
            ("SELECT v, row_number() OVER (ORDER BY v) FROM m", false),
        ];
        for (sql, want) in cases {
            let plan = ctx.state().create_logical_plan(sql).await.unwrap();
            assert_eq!(one_pass_suffices(&plan), want, "{sql}");
        }
    }
}
