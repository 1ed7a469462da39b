//! What a plugin call reaches through `influxdb3_local`: the host object
//! the Python half calls to log, query and write. Queries and synchronous
//! writes go through the node's query and write services, as an HTTP
//! request would; `write()` lines are collected and written when the call
//! returns (or, in a dry run, reported instead).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use services::engine::{EngineLogLine, EngineLogs};
use services::{INTERNAL_DB, QueryService, SqlQuery, WriteRequest, WriteService};

/// The services a call may use.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) query: Option<Arc<dyn QueryService>>,
    pub(crate) writer: Option<Arc<dyn WriteService>>,
    pub(crate) logs: Arc<EngineLogs>,
    pub(crate) runtime: tokio::runtime::Handle,
}

/// What one call logged and wrote.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// `LEVEL: text`, in order.
    pub(crate) log_lines: Vec<String>,
    /// Lines of `write()`/`write_to_db()`, per database.
    pub(crate) writes: BTreeMap<String, Vec<String>>,
}

/// The host object of one call.
#[pyclass]
pub(crate) struct Host {
    services: Services,
    db: String,
    trigger: String,
    /// A dry run writes nothing, synchronous writes included.
    dry_run: bool,
    collected: Arc<Mutex<Collected>>,
}

impl Host {
    /// A host for a call of `trigger` on `db`; what it collects lands in
    /// `collected`.
    pub(crate) fn new(
        services: Services,
        db: &str,
        trigger: &str,
        dry_run: bool,
        collected: Arc<Mutex<Collected>>,
    ) -> Self {
        Self {
            services,
            db: db.to_string(),
            trigger: trigger.to_string(),
            dry_run,
            collected,
        }
    }

    fn collected(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.collected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a line in the engine's log and the server's.
    pub(crate) fn log_line(&self, level: &'static str, text: String) {
        match level {
            "ERROR" => tracing::error!(trigger = %self.trigger, db = %self.db, "{text}"),
            "WARN" => tracing::warn!(trigger = %self.trigger, db = %self.db, "{text}"),
            _ => tracing::info!(trigger = %self.trigger, db = %self.db, "{text}"),
        }
        self.collected().log_lines.push(format!("{level}: {text}"));
        if !self.dry_run {
            self.services.logs.push(EngineLogLine {
                time_ns: catalog::now_ns(),
                db: self.db.clone(),
                trigger: self.trigger.clone(),
                level,
                text,
            });
        }
    }
}

fn check_target(db: &str) -> PyResult<()> {
    if db == INTERNAL_DB {
        return Err(PyException::new_err(
            "plugins cannot write to the _internal database",
        ));
    }
    catalog::validate_db_name(db).map_err(PyValueError::new_err)
}

#[pymethods]
impl Host {
    fn log(&self, py: Python<'_>, level: &str, text: String) {
        let level = match level {
            "ERROR" => "ERROR",
            "WARN" => "WARN",
            _ => "INFO",
        };
        py.detach(|| self.log_line(level, text));
    }

    /// `influxdb3_local.query()`: the rows as dicts.
    #[pyo3(signature = (db, sql, params=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        db: String,
        sql: String,
        params: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let Some(service) = self.services.query.clone() else {
            return Err(PyException::new_err("this node does not answer queries"));
        };
        let params: Option<services::Params> = match params {
            Some(p) => Some(
                serde_json::from_str(&p)
                    .map_err(|e| PyValueError::new_err(format!("query parameters: {e}")))?,
            ),
            None => None,
        };
        let runtime = self.services.runtime.clone();
        let batches = py.detach(|| {
            runtime.block_on(async {
                let results = service
                    .sql(SqlQuery {
                        db: &db,
                        sql: &sql,
                        params: params.as_ref(),
                        may_read_system: &|_| true,
                    })
                    .await?;
                results.batches.try_collect::<Vec<_>>().await
            })
        });
        let batches = batches
            .map_err(|e| PyException::new_err(format!("query failed: {e} (database: {db})")))?;
        crate::python::rows_to_py(py, &batches, true)
    }

    /// `influxdb3_local.write()` and `write_to_db()`: written after the call.
    fn write(&self, db: String, line: String) -> PyResult<()> {
        // A dry run reports a bad target among its errors instead.
        if !self.dry_run {
            check_target(&db)?;
        }
        self.collected().writes.entry(db).or_default().push(line);
        Ok(())
    }

    /// `influxdb3_local.write_sync()` and `write_sync_to_db()`: written now.
    fn write_sync(&self, py: Python<'_>, db: String, line: String, no_sync: bool) -> PyResult<()> {
        if self.dry_run {
            self.collected().writes.entry(db).or_default().push(line);
            return Ok(());
        }
        check_target(&db)?;
        let Some(writer) = self.services.writer.clone() else {
            return Err(PyException::new_err("this node does not accept writes"));
        };
        let runtime = self.services.runtime.clone();
        let target = db.clone();
        py.detach(|| {
            runtime.block_on(writer.write_lp(WriteRequest {
                db: target,
                body: bytes::Bytes::from(line),
                precision: line_protocol::Precision::Nanosecond,
                accept_partial: false,
                no_sync,
            }))
        })
        .map(|_| ())
        .map_err(|e| PyException::new_err(format!("error writing line protocol to {db}: {e}")))
    }
}
