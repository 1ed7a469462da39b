//! Logical rewrites of our own, run after DataFusion's optimizer rules.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::{AggregateFunction, Alias};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Projection, cast};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

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
#[derive(Debug, Default)]
pub(crate) struct SimplifyFirstLast;

impl OptimizerRule for SimplifyFirstLast {
    fn name(&self) -> &str {
        "inflow_simplify_first_last"
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
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(Transformed::no(plan));
        };
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
                    cast(c, field.data_type().clone())
                        .alias_qualified(qualifier.cloned(), field.name())
                }
            })
            .collect::<Vec<_>>();
        let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(new)))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
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
    if let DataType::Dictionary(_, value) = params.args[0].get_type(schema)? {
        if matches!(value.as_ref(), DataType::Utf8 | DataType::LargeUtf8) {
            params.args[0] = cast(params.args[0].clone(), value.as_ref().clone());
            changed = true;
        }
    }
    Ok(changed.then(|| {
        Expr::AggregateFunction(AggregateFunction {
            func: Arc::clone(func),
            params,
        })
    }))
}
