//! DataFusion's statistics pruning, back on for Parquet scans that get a
//! dynamic filter.
//!
//! A table scan whose filters are all time ranges and tag values prunes
//! row groups and pages itself (an access plan per file, see
//! `provider::access_plan`) and turns DataFusion's own pruning off. A
//! filter pushed into the scan during physical planning — the cut-off of
//! `LATEST_ROWS_ONLY`, a `TopK`'s or a join's dynamic filter — is only known
//! while the query runs, and only DataFusion's pruning can use it, so this
//! rule, run last, turns that pruning back on wherever the scan's predicate
//! holds one.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::provider::with_statistics_pruning;

/// Turns statistics pruning on for Parquet scans with a dynamic filter.
#[derive(Debug, Default)]
pub(crate) struct PruneDynamicFilters;

impl PhysicalOptimizerRule for PruneDynamicFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
                return Ok(Transformed::no(node));
            };
            let Some(source) = config.file_source().downcast_ref::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let dynamic = match FileSource::filter(source) {
                Some(p) => {
                    p.exists(|e| Ok(e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some()))?
                }
                None => false,
            };
            let Some(pruning) = dynamic.then(|| with_statistics_pruning(source)).flatten() else {
                return Ok(Transformed::no(node));
            };
            let config = FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(pruning))
                .build();
            Ok(Transformed::yes(
                Arc::new(scan.clone().with_data_source(Arc::new(config))) as Arc<dyn ExecutionPlan>,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inflow_prune_dynamic_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
