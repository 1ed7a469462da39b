//! The run-time cut-off of [`LATEST_ROWS_ONLY`](crate::rules::LATEST_ROWS_ONLY)
//! pushed into the table's Parquet scans.
//!
//! The logical rule joins the one-row cut-off with the table and keeps the
//! rows with `time >= cutoff`. DataFusion plans that as a nested loop join
//! that first collects the cut-off and then streams the table past it, but
//! the scan itself knows nothing of the cut-off: it decodes every row of
//! every file. This physical rule gives the scans a dynamic filter that is
//! `true` at planning time and becomes `time >= <cutoff>` once the cut-off
//! is known, before the join reads its first table row. Each Parquet file
//! opened after that is pruned by its row group and page statistics, so the
//! last point of every series reads the newest files only.
//!
//! The join still applies its own filter: the dynamic filter only skips
//! rows the join would drop anyway.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinSide, JoinType, Result, ScalarValue};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, DynamicFilterPhysicalExpr, lit};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    RecordBatchStream, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt, ready};

use crate::rules::CUTOFF;

/// Finds `LATEST_ROWS_ONLY` joins and gives their table scans the cut-off.
#[derive(Debug, Default)]
pub(crate) struct PushCutoffIntoScans;

impl PhysicalOptimizerRule for PushCutoffIntoScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((time, keep)) = cutoff_join(join) else {
                return Ok(Transformed::no(node));
            };
            let column: Arc<dyn PhysicalExpr> = Arc::new(time.clone());
            let filter = Arc::new(DynamicFilterPhysicalExpr::new(
                vec![Arc::clone(&column)],
                lit(true),
            ));
            let Some(right) = push_into_scans(join.right(), time.name(), &filter, config)? else {
                return Ok(Transformed::no(node));
            };
            let left: Arc<dyn ExecutionPlan> = Arc::new(PublishCutoffExec::new(
                Arc::clone(join.left()),
                filter,
                time,
                keep,
            ));
            #[expect(deprecated, reason = "DataFusion 55 still requires it of every plan")]
            let new = Arc::clone(&node).with_new_children(vec![left, right])?;
            // The right side is done; the left is the cut-off's own plan.
            Ok(Transformed::new(new, true, TreeNodeRecursion::Jump))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inflow_push_cutoff_into_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// If `join` is the cut-off join, the table's time column (in the right
/// side's schema) and the operator that keeps a row (`>=` for the latest
/// rows, `<=` for the earliest).
fn cutoff_join(join: &NestedLoopJoinExec) -> Option<(Column, Operator)> {
    let left = join.left();
    let left_schema = left.schema();
    if *join.join_type() != JoinType::Inner
        || left_schema.fields().len() != 1
        || left_schema.field(0).name() != CUTOFF
        || left.output_partitioning().partition_count() != 1
    {
        return None;
    }
    let filter = join.filter()?;
    let binary = filter.expression().downcast_ref::<BinaryExpr>()?;
    let side = |e: &Arc<dyn PhysicalExpr>| {
        let c = e.downcast_ref::<Column>()?;
        filter.column_indices().get(c.index())
    };
    let (l, r) = (side(binary.left())?, side(binary.right())?);
    // `time op cutoff`, or `cutoff op time` turned around.
    let (time, op) = match (l.side, r.side, binary.op()) {
        (JoinSide::Right, JoinSide::Left, op) => (l.index, *op),
        (JoinSide::Left, JoinSide::Right, op) => (r.index, op.swap()?),
        _ => return None,
    };
    if !matches!(op, Operator::GtEq | Operator::LtEq) {
        return None;
    }
    let right_schema = join.right().schema();
    let field = right_schema.fields().get(time)?;
    if field.data_type() != left_schema.field(0).data_type() {
        return None;
    }
    Some((Column::new(field.name(), time), op))
}

/// `plan` with `filter` added to the predicate of every Parquet scan that
/// feeds its `time` column straight through, or `None` if none does. It
/// descends only through operators that keep each row's time as it is, so
/// the filter drops nothing the join would keep.
fn push_into_scans(
    plan: &Arc<dyn ExecutionPlan>,
    time: &str,
    filter: &Arc<DynamicFilterPhysicalExpr>,
    config: &ConfigOptions,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        let Ok(index) = scan.schema().index_of(time) else {
            return Ok(None);
        };
        let predicate: Arc<dyn PhysicalExpr> = Arc::clone(filter) as _;
        // Columns are matched by name against the scan's table schema.
        let predicate = predicate.with_new_children(vec![Arc::new(Column::new(time, index))])?;
        let pushed = scan
            .data_source()
            .try_pushdown_filters(vec![predicate], config)?;
        return Ok(pushed.updated_node.map(|source| {
            Arc::new(scan.clone().with_data_source(source)) as Arc<dyn ExecutionPlan>
        }));
    }
    let passes_rows_through = plan.downcast_ref::<UnionExec>().is_some()
        || plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan
            .downcast_ref::<FilterExec>()
            .is_some_and(|f| f.projection().is_none());
    if !passes_rows_through {
        return Ok(None);
    }
    let mut changed = false;
    let mut children = Vec::with_capacity(plan.children().len());
    for child in plan.children() {
        // Each of these operators has its children's schema.
        match push_into_scans(child, time, filter, config)? {
            Some(new) => {
                changed = true;
                children.push(new);
            }
            None => children.push(Arc::clone(child)),
        }
    }
    if !changed {
        return Ok(None);
    }
    #[expect(deprecated, reason = "DataFusion 55 still requires it of every plan")]
    let new = Arc::clone(plan).with_new_children(children)?;
    Ok(Some(new))
}

/// Passes the one-row cut-off through and, when it has all of it,
/// publishes `time >= cutoff` (or `<=`) to the table's scans.
#[derive(Debug)]
struct PublishCutoffExec {
    input: Arc<dyn ExecutionPlan>,
    filter: Arc<DynamicFilterPhysicalExpr>,
    time: Column,
    keep: Operator,
    properties: Arc<PlanProperties>,
}

impl PublishCutoffExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        filter: Arc<DynamicFilterPhysicalExpr>,
        time: Column,
        keep: Operator,
    ) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            input,
            filter,
            time,
            keep,
            properties,
        }
    }
}

impl DisplayAs for PublishCutoffExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublishCutoffExec: {} {} {CUTOFF}",
            self.time.name(),
            self.keep
        )
    }
}

impl ExecutionPlan for PublishCutoffExec {
    fn name(&self) -> &str {
        "PublishCutoffExec"
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let filter: Arc<dyn PhysicalExpr> = Arc::clone(&self.filter) as _;
        f(&filter)
    }

    fn dynamic_expressions_produced(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        vec![Arc::clone(&self.filter) as _]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(input) = children.pop().filter(|_| children.is_empty()) else {
            return Err(datafusion::error::DataFusionError::Internal(
                "PublishCutoffExec has one child".to_string(),
            ));
        };
        Ok(Arc::new(Self::new(
            input,
            Arc::clone(&self.filter),
            self.time.clone(),
            self.keep,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(PublishStream {
            input: self.input.execute(partition, context)?,
            filter: Arc::clone(&self.filter),
            time: self.time.clone(),
            keep: self.keep,
            cutoff: None,
            published: false,
        }))
    }
}

/// The stream of [`PublishCutoffExec`]. The value is published when the
/// input ends: the join collects all of its left side before it reads the
/// table. If the stream is dropped early, the filter stays `true`.
struct PublishStream {
    input: SendableRecordBatchStream,
    filter: Arc<DynamicFilterPhysicalExpr>,
    time: Column,
    keep: Operator,
    /// The loosest cut-off seen: a row passes the join if it passes with
    /// any cut-off row (there is one).
    cutoff: Option<ScalarValue>,
    published: bool,
}

impl PublishStream {
    fn observe(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(values) = batch.columns().first() else {
            return Ok(());
        };
        for i in 0..values.len() {
            if values.is_null(i) {
                continue;
            }
            let v = ScalarValue::try_from_array(values, i)?;
            let looser = match &self.cutoff {
                None => true,
                Some(c) if self.keep == Operator::GtEq => v < *c,
                Some(c) => v > *c,
            };
            if looser {
                self.cutoff = Some(v);
            }
        }
        Ok(())
    }

    fn publish(&mut self) -> Result<()> {
        self.published = true;
        // A null cut-off (an empty table) lets no row through the join.
        let expr: Arc<dyn PhysicalExpr> = match self.cutoff.take() {
            Some(v) => Arc::new(BinaryExpr::new(
                Arc::new(self.time.clone()),
                self.keep,
                lit(v),
            )),
            None => lit(false),
        };
        self.filter.update(expr)?;
        self.filter.mark_complete();
        Ok(())
    }
}

impl Stream for PublishStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match ready!(this.input.poll_next_unpin(cx)) {
            Some(Ok(batch)) => Poll::Ready(Some(this.observe(&batch).map(|()| batch))),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None if !this.published => match this.publish() {
                Ok(()) => Poll::Ready(None),
                Err(e) => Poll::Ready(Some(Err(e))),
            },
            None => Poll::Ready(None),
        }
    }
}

impl RecordBatchStream for PublishStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
