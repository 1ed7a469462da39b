//! The `system` schema: tables about the server itself, built from the
//! catalog state at query time. Tables about the whole server (`tokens`)
//! need system read permission or an admin token ([`check_access`]);
//! tables about the queried database (`parquet_files`) need only read
//! permission on it, like its other tables.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use catalog::{CatalogState, DatabaseSchema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;

use crate::QueryError;

/// The schema name.
pub(crate) const SYSTEM_SCHEMA: &str = "system";

const TABLES: &[&str] = &[
    "databases",
    "deletes",
    "distinct_caches",
    "file_index",
    "last_caches",
    "nodes",
    "parquet_files",
    "processing_engine_logs",
    "processing_engine_triggers",
    "tables",
    "tokens",
];

/// Tables about the whole server rather than the queried database.
const SERVER_TABLES: &[&str] = &["databases", "nodes", "tokens"];

#[derive(Debug)]
pub(crate) struct SystemTables {
    state: Arc<CatalogState>,
    db: Arc<DatabaseSchema>,
    registry: Option<cluster::Registry>,
    caches: Arc<caches::Caches>,
    engine_logs: Option<Arc<services::engine::EngineLogs>>,
}

impl SystemTables {
    pub(crate) fn new(
        state: Arc<CatalogState>,
        db: Arc<DatabaseSchema>,
        registry: Option<cluster::Registry>,
        caches: Arc<caches::Caches>,
        engine_logs: Option<Arc<services::engine::EngineLogs>>,
    ) -> Self {
        Self {
            state,
            db,
            registry,
            caches,
            engine_logs,
        }
    }

    /// `system.processing_engine_triggers`: the queried database's triggers,
    /// with InfluxDB 3's columns (`trigger_name`, `plugin_filename`,
    /// `trigger_specification`, `disabled`) and Inflow's
    /// (`trigger_arguments` as JSON, `run_async`, `error_behavior`, `node_id`).
    fn processing_engine_triggers(&self) -> Result<MemTable, DataFusionError> {
        let triggers: Vec<&catalog::TriggerDef> = self.db.triggers.values().collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("trigger_name", DataType::Utf8, false),
            Field::new("plugin_filename", DataType::Utf8, false),
            Field::new("trigger_specification", DataType::Utf8, false),
            Field::new("disabled", DataType::Boolean, false),
            Field::new("trigger_arguments", DataType::Utf8, true),
            Field::new("run_async", DataType::Boolean, false),
            Field::new("error_behavior", DataType::Utf8, false),
            Field::new("node_id", DataType::Utf8, true),
        ]));
        let arguments = triggers.iter().map(|t| {
            t.arguments
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok())
        });
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                triggers.iter().map(|t| t.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                triggers.iter().map(|t| t.plugin_filename.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                triggers.iter().map(|t| t.specification.as_str()),
            )),
            Arc::new(BooleanArray::from_iter(
                triggers.iter().map(|t| Some(t.disabled)),
            )),
            Arc::new(StringArray::from_iter(arguments)),
            Arc::new(BooleanArray::from_iter(
                triggers.iter().map(|t| Some(t.run_async)),
            )),
            Arc::new(StringArray::from_iter_values(triggers.iter().map(
                |t| match t.error_behavior {
                    catalog::ErrorBehavior::Log => "log",
                    catalog::ErrorBehavior::Retry => "retry",
                    catalog::ErrorBehavior::Disable => "disable",
                },
            ))),
            Arc::new(StringArray::from_iter(
                triggers.iter().map(|t| t.node_id.as_deref()),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.processing_engine_logs`: what this node's plugins logged
    /// (the newest lines), with InfluxDB 3's columns (`event_time`,
    /// `trigger_name`, `log_level`, `log_text`). A database sees its own
    /// triggers' lines; `_internal` sees every database's.
    fn processing_engine_logs(&self) -> Result<MemTable, DataFusionError> {
        let db = (self.db.name.as_ref() != crate::INTERNAL_DB).then_some(self.db.name.as_ref());
        let lines = self
            .engine_logs
            .as_ref()
            .map(|l| l.lines(db))
            .unwrap_or_default();
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("trigger_name", DataType::Utf8, false),
            Field::new("log_level", DataType::Utf8, false),
            Field::new("log_text", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(
                lines.iter().map(|l| l.time_ns),
            )),
            Arc::new(StringArray::from_iter_values(
                lines.iter().map(|l| l.trigger.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(lines.iter().map(|l| l.level))),
            Arc::new(StringArray::from_iter_values(
                lines.iter().map(|l| l.text.as_str()),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.distinct_caches`: the queried database's distinct value
    /// caches, with InfluxDB 3's columns (`table`, `name`, `column_names`,
    /// `max_cardinality`, `max_age_seconds`) and Inflow's `cardinality`
    /// (combinations held now).
    fn distinct_caches(&self) -> Result<MemTable, DataFusionError> {
        use arrow::array::{ListBuilder, StringBuilder};
        let defs: Vec<(&catalog::TableSchema, &catalog::DistinctCacheDef)> = self
            .db
            .tables()
            .flat_map(|t| t.distinct_caches.iter().map(move |c| (t.as_ref(), c)))
            .collect();
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("table", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("column_names", DataType::List(Arc::clone(&item)), false),
            Field::new("max_cardinality", DataType::UInt64, false),
            Field::new("max_age_seconds", DataType::UInt64, false),
            Field::new("cardinality", DataType::UInt64, false),
        ]));
        let mut names = ListBuilder::new(StringBuilder::new()).with_field(item);
        for (_, d) in &defs {
            for c in &d.columns {
                names.values().append_value(c);
            }
            names.append(true);
        }
        let held = defs.iter().map(|(t, d)| {
            self.caches
                .distinct_caches_of(self.db.id, t.id)
                .iter()
                .find(|c| c.def().name == d.name)
                .map_or(0, |c| c.len() as u64)
        });
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                defs.iter().map(|(t, _)| t.name.as_ref()),
            )),
            Arc::new(StringArray::from_iter_values(
                defs.iter().map(|(_, d)| d.name.as_str()),
            )),
            Arc::new(names.finish()),
            Arc::new(UInt64Array::from_iter_values(
                defs.iter().map(|(_, d)| d.max_cardinality as u64),
            )),
            Arc::new(UInt64Array::from_iter_values(
                defs.iter().map(|(_, d)| d.max_age_secs),
            )),
            Arc::new(UInt64Array::from_iter_values(held)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.file_index`: the queried database's file indexes: the table
    /// (null: every table), the indexed columns, and how many of the
    /// tables' files record all of them so far (`indexed_files`) of all
    /// (`files`).
    fn file_index(&self) -> Result<MemTable, DataFusionError> {
        use arrow::array::{ListBuilder, StringBuilder};
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, true),
            Field::new("column_names", DataType::List(Arc::clone(&item)), false),
            Field::new("indexed_files", DataType::UInt64, false),
            Field::new("files", DataType::UInt64, false),
        ]));
        let mut names = ListBuilder::new(StringBuilder::new()).with_field(item);
        let mut tables = Vec::new();
        let (mut indexed, mut totals) = (Vec::new(), Vec::new());
        for def in &self.db.file_indexes {
            for c in &def.columns {
                names.values().append_value(c);
            }
            names.append(true);
            tables.push(def.table.clone());
            let (mut done, mut all) = (0u64, 0u64);
            for t in self.db.tables() {
                if def.table.as_deref().is_some_and(|n| n != t.name.as_ref()) {
                    continue;
                }
                for f in self
                    .state
                    .table_files(self.db.id, t.id)
                    .into_iter()
                    .flat_map(|f| f.values())
                {
                    all += 1;
                    if def
                        .columns
                        .iter()
                        .all(|c| f.value_index.contains_key(c.as_str()) || t.column(c).is_none())
                    {
                        done += 1;
                    }
                }
            }
            indexed.push(done);
            totals.push(all);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(tables)),
            Arc::new(names.finish()),
            Arc::new(UInt64Array::from(indexed)),
            Arc::new(UInt64Array::from(totals)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.last_caches`: the queried database's last value caches, with
    /// InfluxDB 3's columns (`table`, `name`, `key_column_names`,
    /// `value_column_names` (null: every other column), `count`, `ttl` in
    /// seconds) and Inflow's `series` (keys holding rows now).
    fn last_caches(&self) -> Result<MemTable, DataFusionError> {
        use arrow::array::{ListBuilder, StringBuilder};
        let defs: Vec<(&str, &catalog::LastCacheDef)> = self
            .db
            .tables()
            .flat_map(|t| t.last_caches.iter().map(move |c| (t.name.as_ref(), c)))
            .collect();
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let list = DataType::List(Arc::clone(&item));
        let schema = Arc::new(Schema::new(vec![
            Field::new("table", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("key_column_names", list.clone(), false),
            Field::new("value_column_names", list, true),
            Field::new("count", DataType::UInt64, false),
            Field::new("ttl", DataType::UInt64, false),
            Field::new("series", DataType::UInt64, false),
        ]));
        let mut keys = ListBuilder::new(StringBuilder::new()).with_field(Arc::clone(&item));
        let mut values = ListBuilder::new(StringBuilder::new()).with_field(item);
        for (_, d) in &defs {
            for k in &d.key_columns {
                keys.values().append_value(k);
            }
            keys.append(true);
            match &d.value_columns {
                Some(v) => {
                    for c in v {
                        values.values().append_value(c);
                    }
                    values.append(true);
                }
                None => values.append(false),
            }
        }
        let live = self.caches.last_caches();
        let series = defs.iter().map(|(t, d)| {
            live.iter()
                .find(|(db, _, c)| {
                    *db == self.db.id && c.table_name() == *t && c.def().name == d.name
                })
                .map_or(0, |(_, _, c)| c.series() as u64)
        });
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(defs.iter().map(|(t, _)| *t))),
            Arc::new(StringArray::from_iter_values(
                defs.iter().map(|(_, d)| d.name.as_str()),
            )),
            Arc::new(keys.finish()),
            Arc::new(values.finish()),
            Arc::new(UInt64Array::from_iter_values(
                defs.iter().map(|(_, d)| d.count as u64),
            )),
            Arc::new(UInt64Array::from_iter_values(
                defs.iter().map(|(_, d)| d.ttl_secs),
            )),
            Arc::new(UInt64Array::from_iter_values(series)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.nodes`: every process registered on the object store, with
    /// InfluxDB 3's columns (`node_id`, `node_catalog_id`, `instance_id`,
    /// `mode`, `core_count`, `state`, `updated_at`, `cli_params`) and
    /// Inflow's (`address`, `pid`, `hostname`, `started_at`, `epoch`).
    async fn nodes(&self) -> Result<MemTable, DataFusionError> {
        let nodes = match &self.registry {
            Some(r) => r
                .nodes()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            None => Vec::new(),
        };
        let ms = DataType::Timestamp(TimeUnit::Millisecond, None);
        let mode_item = Arc::new(Field::new("item", DataType::Utf8, true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("node_id", DataType::Utf8, false),
            Field::new("node_catalog_id", DataType::UInt32, false),
            Field::new("instance_id", DataType::Utf8, false),
            Field::new("mode", DataType::List(Arc::clone(&mode_item)), false),
            Field::new("core_count", DataType::UInt64, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("updated_at", ms.clone(), true),
            Field::new("cli_params", DataType::Utf8, true),
            Field::new("address", DataType::Utf8, false),
            Field::new("pid", DataType::UInt32, false),
            Field::new("hostname", DataType::Utf8, false),
            Field::new("started_at", ms, false),
            Field::new("epoch", DataType::UInt64, false),
        ]));
        let mut modes = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new())
            .with_field(mode_item);
        for n in &nodes {
            for role in &n.holder.roles {
                modes.values().append_value(role);
            }
            modes.append(true);
        }
        let ms_of = |ns: i64| ns.div_euclid(1_000_000);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                nodes.iter().map(|n| n.holder.node_id.as_str()),
            )),
            // Inflow keeps no numeric node ids; the position in node-id order.
            Arc::new(arrow::array::UInt32Array::from_iter_values(
                (0..nodes.len() as u32).map(|i| i + 1),
            )),
            Arc::new(StringArray::from_iter_values(
                nodes.iter().map(|n| n.holder.instance_id.to_string()),
            )),
            Arc::new(modes.finish()),
            Arc::new(UInt64Array::from_iter_values(
                nodes.iter().map(|n| n.holder.core_count),
            )),
            Arc::new(StringArray::from_iter_values(
                nodes.iter().map(|n| n.state.as_str()),
            )),
            Arc::new(TimestampMillisecondArray::from_iter(nodes.iter().map(
                |n| Some(ms_of(n.heartbeat_at_ns.unwrap_or(n.claimed_at_ns))),
            ))),
            Arc::new(StringArray::from_iter(nodes.iter().map(|_| None::<&str>))),
            Arc::new(StringArray::from_iter_values(
                nodes.iter().map(|n| n.holder.address.as_str()),
            )),
            Arc::new(arrow::array::UInt32Array::from_iter_values(
                nodes.iter().map(|n| n.holder.pid),
            )),
            Arc::new(StringArray::from_iter_values(
                nodes.iter().map(|n| n.holder.hostname.as_str()),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                nodes.iter().map(|n| ms_of(n.holder.started_at_ns)),
            )),
            Arc::new(UInt64Array::from_iter_values(nodes.iter().map(|n| n.epoch))),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.databases`: every database with its id, retention and
    /// deleted state (soft-deleted ones under their new names).
    fn databases(&self) -> Result<MemTable, DataFusionError> {
        let dbs: Vec<_> = self.state.all_databases().collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("database_name", DataType::Utf8, false),
            Field::new("database_id", DataType::UInt64, false),
            Field::new("retention_period", DataType::Utf8, true),
            Field::new("deleted", DataType::Boolean, false),
            Field::new(
                "hard_delete_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                dbs.iter().map(|d| d.name.as_ref()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                dbs.iter().map(|d| u64::from(d.id)),
            )),
            Arc::new(StringArray::from_iter(
                dbs.iter()
                    .map(|d| d.retention_ns.map(catalog::format_retention)),
            )),
            Arc::new(BooleanArray::from_iter(
                dbs.iter().map(|d| Some(d.deleted.is_some())),
            )),
            Arc::new(TimestampNanosecondArray::from_iter(
                dbs.iter()
                    .map(|d| d.deleted.as_ref().and_then(|x| x.hard_delete_at_ns)),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.tables`: the queried database's tables with their ids,
    /// retention (their own, else the database's) and deleted state.
    fn tables(&self) -> Result<MemTable, DataFusionError> {
        let tables: Vec<_> = self.db.all_tables().collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("table_id", DataType::UInt64, false),
            Field::new("column_count", DataType::UInt64, false),
            Field::new("retention_period", DataType::Utf8, true),
            Field::new("deleted", DataType::Boolean, false),
            Field::new(
                "hard_delete_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                tables.iter().map(|t| t.name.as_ref()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                tables.iter().map(|t| u64::from(t.id)),
            )),
            Arc::new(UInt64Array::from_iter_values(
                tables.iter().map(|t| t.columns().len() as u64),
            )),
            Arc::new(StringArray::from_iter(tables.iter().map(|t| {
                self.db.retention_for(t).map(catalog::format_retention)
            }))),
            Arc::new(BooleanArray::from_iter(
                tables.iter().map(|t| Some(t.deleted.is_some())),
            )),
            Arc::new(TimestampNanosecondArray::from_iter(
                tables
                    .iter()
                    .map(|t| t.deleted.as_ref().and_then(|x| x.hard_delete_at_ns)),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.parquet_files`: the database's persisted files, as InfluxDB 3
    /// shows them (times in nanoseconds since the epoch).
    fn parquet_files(&self) -> Result<MemTable, DataFusionError> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("size_bytes", DataType::UInt64, false),
            Field::new("row_count", DataType::UInt64, false),
            Field::new("min_time", DataType::Int64, false),
            Field::new("max_time", DataType::Int64, false),
        ]));
        let mut files = Vec::new();
        for (table_id, table_files) in self.state.database_files(self.db.id) {
            let name = self
                .db
                .table_by_id(table_id)
                .map_or_else(|| table_id.to_string(), |t| t.name.to_string());
            files.extend(table_files.values().map(|f| (name.clone(), Arc::clone(f))));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|(n, _)| n.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                files.iter().map(|(_, f)| f.path.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                files.iter().map(|(_, f)| f.size_bytes),
            )),
            Arc::new(UInt64Array::from_iter_values(
                files.iter().map(|(_, f)| f.row_count),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|(_, f)| f.min_time),
            )),
            Arc::new(Int64Array::from_iter_values(
                files.iter().map(|(_, f)| f.max_time),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.deletes`: the queried database's outstanding predicate
    /// deletes (tombstones), with the number of files each still applies
    /// to when read; the compactor rewrites those, then drops the tombstone.
    fn deletes(&self) -> Result<MemTable, DataFusionError> {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("delete_id", DataType::UInt64, false),
            Field::new("min_time", ts.clone(), false),
            Field::new("max_time", ts.clone(), false),
            Field::new("predicate", DataType::Utf8, false),
            Field::new("created_at", ts, false),
            Field::new("pending_files", DataType::UInt64, false),
        ]));
        let mut rows = Vec::new();
        for t in self.db.tables() {
            let files = self.state.table_files(self.db.id, t.id);
            for x in &t.tombstones {
                let pending = files.map_or(0, |f| {
                    f.values()
                        .filter(|f| f.pending_tombstones(t).any(|p| p.id == x.id))
                        .count() as u64
                });
                let predicate = x
                    .predicate
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" AND ");
                rows.push((t.name.to_string(), x.clone(), predicate, pending));
            }
        }
        let ts_array =
            |v: Vec<i64>| Arc::new(arrow::array::TimestampNanosecondArray::from(v)) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1.id))),
            ts_array(rows.iter().map(|r| r.1.min_time).collect()),
            ts_array(rows.iter().map(|r| r.1.max_time).collect()),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.2.as_str()),
            )),
            ts_array(rows.iter().map(|r| r.1.created_ns).collect()),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }

    /// `system.tokens`: every token's name, permissions and times; never the
    /// secret or its hash.
    fn tokens(&self) -> Result<MemTable, DataFusionError> {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("token_id", DataType::UInt64, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("admin", DataType::Boolean, false),
            Field::new("permissions", DataType::Utf8, false),
            Field::new("created_at", ts.clone(), false),
            Field::new("expiry", ts, true),
        ]));
        let tokens: Vec<_> = self.state.tokens().collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(tokens.iter().map(|t| t.id))),
            Arc::new(StringArray::from_iter_values(
                tokens.iter().map(|t| t.name.as_ref()),
            )),
            Arc::new(BooleanArray::from_iter(
                tokens.iter().map(|t| Some(t.admin)),
            )),
            Arc::new(StringArray::from_iter_values(tokens.iter().map(|t| {
                if t.admin {
                    "*".to_string()
                } else {
                    t.permissions
                        .iter()
                        .map(|p| p.describe())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            }))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                tokens.iter().map(|t| t.created_at_ms),
            )),
            Arc::new(TimestampMillisecondArray::from_iter(
                tokens.iter().map(|t| t.expiry_ms),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])
    }
}

#[async_trait]
impl SchemaProvider for SystemTables {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(match name {
            "tokens" => Some(Arc::new(self.tokens()?)),
            "parquet_files" => Some(Arc::new(self.parquet_files()?)),
            "deletes" => Some(Arc::new(self.deletes()?)),
            "databases" => Some(Arc::new(self.databases()?)),
            "nodes" => Some(Arc::new(self.nodes().await?)),
            "tables" => Some(Arc::new(self.tables()?)),
            "last_caches" => Some(Arc::new(self.last_caches()?)),
            "distinct_caches" => Some(Arc::new(self.distinct_caches()?)),
            "file_index" => Some(Arc::new(self.file_index()?)),
            "processing_engine_triggers" => Some(Arc::new(self.processing_engine_triggers()?)),
            "processing_engine_logs" => Some(Arc::new(self.processing_engine_logs()?)),
            _ => None,
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

/// Refuses a plan that scans a system table the caller may not read.
pub(crate) fn check_access(
    plan: &LogicalPlan,
    may_read: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(), QueryError> {
    let mut denied: Option<String> = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = scan.table_name.table();
            if scan.table_name.schema() == Some(SYSTEM_SCHEMA)
                && SERVER_TABLES.contains(&table)
                && !may_read(table)
            {
                denied = Some(scan.table_name.table().to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match denied {
        Some(t) => Err(QueryError::Forbidden(format!(
            "reading system.{t} needs system read permission or an admin token"
        ))),
        None => Ok(()),
    }
}
