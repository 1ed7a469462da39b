//! InfluxQL `EXPLAIN [ANALYZE] SELECT`: the statement runs as it would,
//! the SQL it sends per measurement is recorded, and each is answered with
//! DataFusion's physical plan (with `ANALYZE`, the plan with its metrics
//! from running it), in InfluxDB 1.x's shape: one series, one column
//! (`QUERY PLAN`, or `EXPLAIN ANALYZE`), a line per row, a blank row
//! between measurements. The lines are Inflow's own (InfluxDB's name its
//! shards and TSM blocks).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use catalog::DatabaseSchema;
use influxql::SelectStatement;
use services::QueryError;
use services::influxql::{Row, Series, StatementResult, Value};

use crate::{Backend, Context};

/// A backend that records every SQL query it is given.
struct Recording<'a> {
    inner: &'a dyn Backend,
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Backend for Recording<'_> {
    fn database(&self, name: &str) -> Option<Arc<DatabaseSchema>> {
        self.inner.database(name)
    }

    async fn sql(&self, db: &str, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((db.to_string(), sql.to_string()));
        self.inner.sql(db, sql).await
    }
}

/// The `plan` lines of an `EXPLAIN` answer whose `plan_type` is `kind`.
fn plan_lines(batches: &[RecordBatch], kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let (Some(types), Some(plans)) = (b.column_by_name("plan_type"), b.column_by_name("plan"))
        else {
            continue;
        };
        let (Some(types), Some(plans)) =
            (types.as_string_opt::<i32>(), plans.as_string_opt::<i32>())
        else {
            continue;
        };
        for i in 0..b.num_rows() {
            if types.is_valid(i) && types.value(i) == kind && plans.is_valid(i) {
                out.extend(plans.value(i).lines().map(|l| l.trim_end().to_string()));
            }
        }
    }
    out
}

pub(crate) async fn run(
    ctx: &Context<'_>,
    analyze: bool,
    select: &SelectStatement,
) -> Result<StatementResult, QueryError> {
    let recording = Recording {
        inner: ctx.backend,
        seen: Mutex::new(Vec::new()),
    };
    let inner = Context {
        backend: &recording,
        db: ctx.db,
        rp: ctx.rp,
        params: ctx.params,
        now_ns: ctx.now_ns,
    };
    let started = Instant::now();
    crate::select::run(&inner, select).await?;
    let elapsed = started.elapsed();
    let seen = std::mem::take(&mut *recording.seen.lock().unwrap_or_else(|p| p.into_inner()));
    let expression = select
        .fields
        .iter()
        .map(|f| f.expr.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut lines: Vec<String> = Vec::new();
    if analyze {
        lines.push(".".into());
        lines.push("└── select".into());
        lines.push(format!("    ├── total_time: {elapsed:?}"));
        lines.push(format!("    ├── expression: {expression}"));
        lines.push(format!("    └── sql_queries: {}", seen.len()));
    }
    for (i, (db, sql)) in seen.iter().enumerate() {
        if i > 0 || analyze {
            lines.push(String::new());
        }
        if !analyze {
            lines.push(format!("EXPRESSION: {expression}"));
        }
        lines.push(format!("DATABASE: {db}"));
        lines.push(format!("SQL: {sql}"));
        let (prefix, kind) = if analyze {
            ("EXPLAIN ANALYZE", "Plan with Metrics")
        } else {
            ("EXPLAIN", "physical_plan")
        };
        let plan = ctx.backend.sql(db, &format!("{prefix} {sql}")).await?;
        lines.extend(plan_lines(&plan, kind));
    }
    if seen.is_empty() {
        lines.push(format!("EXPRESSION: {expression}"));
        lines.push("NO DATA: no measurement of the statement holds the fields it selects".into());
    }
    Ok(StatementResult {
        series: vec![Series {
            name: None,
            tags: None,
            columns: vec![
                if analyze {
                    "EXPLAIN ANALYZE"
                } else {
                    "QUERY PLAN"
                }
                .to_string(),
            ],
            rows: lines
                .into_iter()
                .map(|l| Row {
                    time: 0,
                    values: vec![Value::String(l)],
                })
                .collect(),
            has_time: false,
        }],
        timezone: None,
    })
}
