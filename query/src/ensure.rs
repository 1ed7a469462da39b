//! DataFusion's `EnsureRequirements`, skipped for small plans that already
//! meet every requirement.
//!
//! The rule walks the plan several times (join keys, distribution, sorting,
//! order-preserving variants, sort pushdown, partial sorts) and rebuilds
//! nodes as it goes: 13% of a single-host query's instructions over Parquet
//! (0.55 M of 4.3 M, callgrind). A small scan plans on one partition
//! (`SMALL_SCAN_WORK`), where the initial plan usually has what each
//! operator needs (its input's ordering and distribution): then the rule
//! would add nothing, and it is not run. Otherwise, and for any plan with a
//! join, it runs as always.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{ChildSatisfactionOptions, ExecutionPlan, ExecutionPlanProperties};

/// Runs the wrapped rule (`EnsureRequirements`) unless the plan is on one
/// partition and already meets every requirement.
#[derive(Debug)]
pub(crate) struct EnsureWhenNeeded(pub(crate) Arc<dyn PhysicalOptimizerRule + Send + Sync>);

impl PhysicalOptimizerRule for EnsureWhenNeeded {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.target_partitions == 1 && meets_requirements(&plan)? {
            return Ok(plan);
        }
        self.0.optimize(plan, config)
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn schema_check(&self) -> bool {
        self.0.schema_check()
    }
}

/// Whether every node's inputs have the ordering and distribution it
/// requires of them. A node with several inputs other than a union (a
/// join, whose inputs must also be partitioned alike) never does here.
fn meets_requirements(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let children = plan.children();
    if children.len() > 1 && plan.name() != "UnionExec" {
        return Ok(false);
    }
    let distributions = plan.input_distribution_requirements();
    for ((i, child), ordering) in children
        .into_iter()
        .enumerate()
        .zip(plan.required_input_ordering())
    {
        if let Some(ordering) = ordering
            && !child
                .equivalence_properties()
                .ordering_satisfy_requirement(ordering.into_single())?
        {
            return Ok(false);
        }
        if !distributions
            .child_satisfaction(i, child.as_ref(), ChildSatisfactionOptions::new())?
            .is_satisfied()
        {
            return Ok(false);
        }
        if !meets_requirements(child)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_optimizer::ensure_requirements::EnsureRequirements;
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::sorts::sort::SortExec;

    /// `SortExec` (one output partition) over a scan of `partitions`.
    fn sorted_scan(partitions: usize) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![3, 1, 2]))],
        )
        .unwrap();
        let scan = DataSourceExec::from_data_source(
            MemorySourceConfig::try_new(&vec![vec![batch]; partitions], Arc::clone(&schema), None)
                .unwrap(),
        );
        let ordering = LexOrdering::new(vec![PhysicalSortExpr::new_default(
            col("v", &schema).unwrap(),
        )])
        .unwrap();
        Arc::new(SortExec::new(ordering, scan))
    }

    #[test]
    fn runs_the_rule_only_where_a_requirement_is_unmet() {
        let rule = EnsureWhenNeeded(Arc::new(EnsureRequirements::new()));
        let mut config = ConfigOptions::new();
        config.execution.target_partitions = 1;
        // One partition: the sort has what it needs; the plan is kept.
        let one = sorted_scan(1);
        assert!(meets_requirements(&one).unwrap());
        assert!(Arc::ptr_eq(
            &rule.optimize(Arc::clone(&one), &config).unwrap(),
            &one
        ));
        // Two partitions into a sort of one: the rule merges them first.
        let two = sorted_scan(2);
        assert!(!meets_requirements(&two).unwrap());
        let fixed = rule.optimize(two, &config).unwrap();
        let shown = displayable(fixed.as_ref()).indent(false).to_string();
        assert!(
            shown.contains("SortPreservingMergeExec") || shown.contains("CoalescePartitionsExec"),
            "{shown}"
        );
        assert!(meets_requirements(&fixed).unwrap(), "{shown}");
    }
}
