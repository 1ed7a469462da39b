//! The embedded interpreter: one CPython per process, started on first
//! use, with the Python half of the engine (`plugin_api.py`) loaded into
//! it. Plugins run on tokio's blocking pool, never on the runtime's
//! workers; a call past its timeout gets `TimeoutError` raised in its
//! thread (which stops Python code, though not a C call that never
//! returns to the interpreter).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::host::Host;

/// The Python half of the engine.
const PLUGIN_API: &str = include_str!("plugin_api.py");

/// The interpreter's engine module, once started.
static MODULE: OnceLock<Result<Py<PyModule>, String>> = OnceLock::new();

/// The engine module, starting Python the first time (with the packages of
/// `venv` importable, when it exists).
pub(crate) fn module(venv: &Path) -> Result<&'static Py<PyModule>, String> {
    MODULE
        .get_or_init(|| {
            Python::initialize();
            Python::attach(|py| {
                let code = CString::new(PLUGIN_API).map_err(|e| e.to_string())?;
                let m = PyModule::from_code(py, &code, c"inflow_engine.py", c"inflow_engine")
                    .map_err(|e| format!("loading the engine's Python module: {e}"))?;
                py.import("sys")
                    .and_then(|sys| sys.getattr("modules"))
                    .and_then(|mods| mods.set_item("inflow_engine", &m))
                    .map_err(|e| e.to_string())?;
                m.call_method1("add_site_packages", (venv.to_string_lossy().as_ref(),))
                    .map_err(|e| format!("adding the plugin environment: {e}"))?;
                Ok(m.unbind())
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes the site-packages of `venv` importable (after an install created it).
pub(crate) fn add_site_packages(venv: &Path) -> Result<(), String> {
    let m = module(venv)?;
    Python::attach(|py| {
        m.bind(py)
            .call_method1("add_site_packages", (venv.to_string_lossy().as_ref(),))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// What a plugin is called with.
#[derive(Debug, Clone)]
pub(crate) enum CallInput {
    /// `process_writes(local, table_batches, args)`: per table, its name
    /// and rows.
    Writes(Vec<(String, Vec<RecordBatch>)>),
    /// `process_scheduled_call(local, call_time, args)`: the scheduled time
    /// in seconds since the epoch.
    Schedule(i64),
    /// `process_request(local, query_parameters, request_headers,
    /// request_body, args)`.
    Request {
        query: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
        body: bytes::Bytes,
    },
}

impl CallInput {
    fn entry(&self) -> &'static str {
        match self {
            CallInput::Writes(_) => "process_writes",
            CallInput::Schedule(_) => "process_scheduled_call",
            CallInput::Request { .. } => "process_request",
        }
    }
}

/// One plugin call.
#[derive(Debug)]
pub(crate) struct Call {
    /// The plugin file or directory.
    pub(crate) path: PathBuf,
    /// The cache namespace (the trigger, or a dry run's cache name).
    pub(crate) namespace: String,
    /// The database the plugin sees as its own.
    pub(crate) db: String,
    /// The trigger's arguments.
    pub(crate) args: Option<BTreeMap<String, String>>,
    /// What it is called with.
    pub(crate) input: CallInput,
}

/// What a call returned.
#[derive(Debug)]
pub(crate) enum Returned {
    /// `process_writes` or `process_scheduled_call` returned.
    Done,
    /// `process_request` answered.
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// The thread running a call, while it runs (read and cleared under the
/// interpreter's lock, so a timeout never hits the next call on the thread).
type Running = Arc<Mutex<Option<std::os::raw::c_ulong>>>;

/// Runs `call` on the blocking pool with `host`, stopping it after
/// `timeout`. The error is the plugin's traceback or why it could not run.
pub(crate) async fn run(
    venv: PathBuf,
    host: Host,
    call: Call,
    timeout: Duration,
) -> Result<Returned, String> {
    let running: Running = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));
    let in_call = Arc::clone(&running);
    let done = Arc::clone(&finished);
    let task = tokio::task::spawn_blocking(move || {
        let result = run_blocking(&venv, host, call, &in_call);
        done.store(true, Ordering::Release);
        result
    });
    // Past the timeout the watchdog raises TimeoutError in the call's
    // thread, and again every `RETRY` until the call has ended: a call
    // that only started after its deadline (its thread waited that long
    // for the interpreter's lock on a loaded machine) is stopped too, where
    // one attempt found no call yet and the plugin then ran forever. It
    // outlives an abandoned call (below), to stop it once it is back in
    // Python code.
    tokio::spawn(async move {
        const RETRY: Duration = Duration::from_millis(100);
        tokio::time::sleep(timeout).await;
        while !finished.load(Ordering::Acquire) {
            // Taking the interpreter's lock can wait for the plugin's
            // thread to let go of it: off the runtime's workers.
            let running = Arc::clone(&running);
            let _ = tokio::task::spawn_blocking(move || interrupt(&running, timeout)).await;
            tokio::time::sleep(RETRY).await;
        }
    });
    // A plugin blocked outside Python (a sleep, a socket read) sees the
    // TimeoutError only once it returns to Python code: past a grace
    // period the call is given up, its thread left to finish on its own
    // (what it would have written is dropped with it).
    let grace = Duration::from_secs(2);
    let result = match tokio::time::timeout(timeout + grace, task).await {
        Ok(joined) => joined.map_err(|e| format!("the plugin's thread failed: {e}")),
        Err(_) => Err(format!(
            "TimeoutError: the plugin ran past its timeout ({}) blocked outside Python code; \
             the call was abandoned",
            humantime::format_duration(timeout)
        )),
    };
    result?
}

fn interrupt(running: &Running, timeout: Duration) {
    Python::attach(|py| {
        let guard = running.lock().unwrap_or_else(|p| p.into_inner());
        let Some(thread) = *guard else {
            return;
        };
        let message = format!(
            "the plugin ran past its timeout ({})",
            humantime::format_duration(timeout)
        );
        let exc = pyo3::exceptions::PyTimeoutError::new_err(message).into_value(py);
        // SAFETY: the interpreter's lock is held; `thread` is the id of a
        // thread that is inside a plugin call (it clears it, under the
        // lock, before it leaves), and the exception object is alive for
        // the duration of the call, which takes its own reference.
        unsafe {
            pyo3::ffi::PyThreadState_SetAsyncExc(thread as _, exc.as_ptr());
        }
        drop(guard);
    });
}

fn run_blocking(
    venv: &Path,
    host: Host,
    call: Call,
    running: &Running,
) -> Result<Returned, String> {
    let module = module(venv)?;
    Python::attach(|py| {
        let entry = call.input.entry();
        let input = input_to_py(py, &call.input).map_err(|e| e.to_string())?;
        let args = match &call.args {
            Some(map) => {
                let d = PyDict::new(py);
                for (k, v) in map {
                    d.set_item(k, v).map_err(|e| e.to_string())?;
                }
                d.into_any()
            }
            None => py.None().into_bound(py),
        };
        let mut all = input;
        all.push(args);
        let args = PyTuple::new(py, all).map_err(|e| e.to_string())?;
        let host = Bound::new(py, host).map_err(|e| e.to_string())?;
        // SAFETY: reading the current thread's id has no preconditions.
        let thread = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
        *running.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        let outcome = module.bind(py).call_method1(
            "invoke",
            (
                host,
                call.namespace.as_str(),
                call.path.to_string_lossy().as_ref(),
                entry,
                call.db.as_str(),
                args,
            ),
        );
        *running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        // A timeout that fired just as the call ended is still pending:
        // running a no-op lets it out here, not in the next call.
        let _ = py.run(c"pass", None, None);
        let outcome = outcome.map_err(|e| e.to_string())?;
        let (ok, result) = outcome
            .extract::<(bool, Bound<'_, PyAny>)>()
            .map_err(|e| format!("the engine's call returned: {e}"))?;
        if !ok {
            return Err(result.extract::<String>().unwrap_or_else(|e| e.to_string()));
        }
        if !matches!(call.input, CallInput::Request { .. }) {
            return Ok(Returned::Done);
        }
        let (status, headers, body): (u16, BTreeMap<String, String>, Vec<u8>) = result
            .extract()
            .map_err(|e| format!("the plugin's response: {e}"))?;
        Ok(Returned::Response {
            status,
            headers: headers.into_iter().collect(),
            body,
        })
    })
}

fn input_to_py<'py>(py: Python<'py>, input: &CallInput) -> PyResult<Vec<Bound<'py, PyAny>>> {
    Ok(match input {
        CallInput::Writes(tables) => {
            let list = PyList::empty(py);
            for (name, batches) in tables {
                let d = PyDict::new(py);
                d.set_item("table_name", name)?;
                d.set_item("rows", rows_to_py(py, batches, false)?)?;
                list.append(d)?;
            }
            vec![list.into_any()]
        }
        CallInput::Schedule(secs) => {
            // As InfluxDB 3 gives it: a naive datetime in the server's time zone.
            let datetime = py.import("datetime")?.getattr("datetime")?;
            vec![datetime.call_method1("fromtimestamp", (*secs,))?]
        }
        CallInput::Request {
            query,
            headers,
            body,
        } => {
            let q = PyDict::new(py);
            for (k, v) in query {
                q.set_item(k, v)?;
            }
            let h = PyDict::new(py);
            for (k, v) in headers {
                h.set_item(k, v)?;
            }
            vec![
                q.into_any(),
                h.into_any(),
                PyBytes::new(py, body).into_any(),
            ]
        }
    })
}

/// Rows as a list of dicts, column name to value; `with_nulls` keeps null
/// values as `None` (query results), otherwise they are left out (WAL rows,
/// as InfluxDB 3 gives them). Timestamps are nanoseconds since the epoch.
pub(crate) fn rows_to_py<'py>(
    py: Python<'py>,
    batches: &[RecordBatch],
    with_nulls: bool,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for batch in batches {
        let schema = batch.schema();
        let names: Vec<Bound<'py, PyAny>> = schema
            .fields()
            .iter()
            .map(|f| pyo3::types::PyString::new(py, f.name()).into_any())
            .collect();
        for row in 0..batch.num_rows() {
            let d = PyDict::new(py);
            for (name, column) in names.iter().zip(batch.columns()) {
                if column.is_null(row) {
                    if with_nulls {
                        d.set_item(name, py.None())?;
                    }
                    continue;
                }
                d.set_item(name, value_to_py(py, column.as_ref(), row)?)?;
            }
            list.append(d)?;
        }
    }
    Ok(list)
}

fn value_to_py<'py>(py: Python<'py>, a: &dyn Array, i: usize) -> PyResult<Bound<'py, PyAny>> {
    use arrow::datatypes::*;
    macro_rules! prim {
        ($t:ty) => {
            Ok(a.as_primitive::<$t>()
                .value(i)
                .into_pyobject(py)?
                .into_any())
        };
    }
    match a.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Boolean => Ok(a
            .as_boolean()
            .value(i)
            .into_pyobject(py)?
            .to_owned()
            .into_any()),
        DataType::Utf8 => Ok(a.as_string::<i32>().value(i).into_pyobject(py)?.into_any()),
        DataType::LargeUtf8 => Ok(a.as_string::<i64>().value(i).into_pyobject(py)?.into_any()),
        DataType::Utf8View => Ok(a.as_string_view().value(i).into_pyobject(py)?.into_any()),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            let scale: i64 = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            Ok(v.saturating_mul(scale).into_pyobject(py)?.into_any())
        }
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let key = d.normalized_keys()[i];
            value_to_py(py, d.values().as_ref(), key)
        }
        _ => {
            // Anything else as Arrow displays it.
            let text = arrow::util::display::array_value_to_string(a, i)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            Ok(text.into_pyobject(py)?.into_any())
        }
    }
}
