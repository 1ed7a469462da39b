//! The engine with real CPython: dry runs (what a plugin logs and would
//! write), the rows it is handed, a raising and a looping plugin, the cache
//! across calls, and paths that leave the plugin directory.

use super::*;

async fn engine(timeout: Duration) -> (ProcessingEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let catalog = Catalog::load(store, object_store::path::Path::default())
        .await
        .unwrap();
    let config = EngineConfig {
        plugin_dir: dir.path().join("plugins"),
        venv: dir.path().join("venv"),
        package_manager: PackageManager::Pip,
        call_timeout: timeout,
        node_id: "n".into(),
        runs_triggers: true,
        registry: None,
    };
    let engine =
        ProcessingEngine::new(config, catalog, None, None, Arc::new(EngineLogs::default()))
            .unwrap();
    (engine, dir)
}

fn wal_test(filename: &str, lp: &str, cache: Option<&str>) -> WalTestRequest {
    WalTestRequest {
        filename: filename.into(),
        database: "db".into(),
        input_lp: lp.into(),
        input_arguments: Some(BTreeMap::from([("factor".to_string(), "2".to_string())])),
        cache_name: cache.map(String::from),
    }
}

/// Writes `filename` with `source` into the plugin directory and dry-runs
/// it on one line of line protocol.
async fn write_and_test(engine: &ProcessingEngine, filename: &str, source: &str) -> TestOutcome {
    engine.write_plugin_file(filename, source).await.unwrap();
    engine
        .test_wal(wal_test(filename, "cpu v=1 1", None))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_dry_run_reports_logs_and_writes() {
    let (engine, _dir) = engine(Duration::from_secs(10)).await;
    engine
        .write_plugin_file(
            "double.py",
            r#"
def process_writes(influxdb3_local, table_batches, args):
    factor = int(args["factor"])
    for batch in table_batches:
        influxdb3_local.info("table", batch["table_name"], "rows", len(batch["rows"]))
        for row in batch["rows"]:
            line = LineBuilder("doubled").tag("host", row["host"]).float64_field("v", row["v"] * factor)
            line.int64_field("n", row.get("n", -1)).time_ns(row["time"])
            influxdb3_local.write_to_db("other", line)
    influxdb3_local.warn("done")
"#,
        )
        .await
        .unwrap();
    let out = engine
        .test_wal(wal_test(
            "double.py",
            "cpu,host=a v=1.5 10\ncpu,host=b v=2,n=3i 20\nnot line protocol\n",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(
        out.log_lines,
        vec![
            "INFO: table cpu rows 2".to_string(),
            "WARN: done".to_string()
        ]
    );
    assert_eq!(
        out.database_writes.get("other").unwrap(),
        &vec![
            "doubled,host=a v=3.0,n=-1i 10".to_string(),
            "doubled,host=b v=4.0,n=3i 20".to_string()
        ]
    );
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert!(out.errors[0].starts_with("line 3:"), "{:?}", out.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raising_plugin_reports_its_traceback() {
    let (engine, _dir) = engine(Duration::from_secs(10)).await;
    let out = write_and_test(&engine, "raise.py", "def process_writes(influxdb3_local, table_batches, args):\n    raise ValueError('bad input')\n").await;
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].contains("Traceback"), "{}", out.errors[0]);
    assert!(
        out.errors[0].contains("ValueError: bad input"),
        "{}",
        out.errors[0]
    );
    // A plugin without the entry point says so.
    engine
        .write_plugin_file("empty.py", "x = 1\n")
        .await
        .unwrap();
    let out = engine
        .test_wal(wal_test("empty.py", "cpu v=1 1", None))
        .await
        .unwrap();
    assert!(
        out.errors[0].contains("has no function process_writes()"),
        "{:?}",
        out.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_is_stopped_at_its_timeout() {
    let (engine, _dir) = engine(Duration::from_millis(300)).await;
    let started = Instant::now();
    let out = write_and_test(&engine, "loop.py", "def process_writes(influxdb3_local, table_batches, args):\n    while True:\n        pass\n").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(out.errors[0].contains("TimeoutError"), "{:?}", out.errors);
    // The interpreter is fine afterwards.
    let out = write_and_test(&engine, "ok.py", "def process_writes(influxdb3_local, table_batches, args):\n    influxdb3_local.info('fine')\n").await;
    assert_eq!(out.log_lines, vec!["INFO: fine".to_string()]);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
}

/// A call whose thread only gets the interpreter's lock after its deadline
/// (here another thread holds it; on a loaded machine, the other calls) is
/// still stopped: the watchdog tries again until the call has ended. With
/// one attempt it found no call yet, and the plugin ran on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_starts_after_its_deadline_is_still_stopped() {
    let (engine, _dir) = engine(Duration::from_millis(300)).await;
    engine
        .write_plugin_file(
            "spin.py",
            "import time\n\ndef process_writes(influxdb3_local, table_batches, args):\n    \
             end = time.monotonic() + 8\n    while time.monotonic() < end:\n        pass\n",
        )
        .await
        .unwrap();
    // The interpreter and the engine's module are loaded.
    let out = write_and_test(
        &engine,
        "ok.py",
        "def process_writes(influxdb3_local, table_batches, args):\n    pass\n",
    )
    .await;
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let (held, holding) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        pyo3::Python::attach(|_py| {
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(700));
        })
    });
    holding.recv().unwrap();
    let started = Instant::now();
    let out = engine
        .test_wal(wal_test("spin.py", "cpu v=1 1", None))
        .await
        .unwrap();
    holder.join().unwrap();
    assert!(out.errors[0].contains("TimeoutError"), "{:?}", out.errors);
    assert!(
        !out.errors[0].contains("abandoned"),
        "stopped only by giving up on it after {:?}: {:?}",
        started.elapsed(),
        out.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_values_across_calls_until_their_ttl() {
    let (engine, _dir) = engine(Duration::from_secs(10)).await;
    engine
        .write_plugin_file(
            "count.py",
            r#"
def process_writes(influxdb3_local, table_batches, args):
    n = influxdb3_local.cache.get("n", default=0) + 1
    influxdb3_local.cache.put("n", n)
    influxdb3_local.cache.put("short", n, ttl=0.05)
    shared = influxdb3_local.cache.get("shared", default=0, use_global=True) + 10
    influxdb3_local.cache.put("shared", shared, use_global=True)
    influxdb3_local.info(n, shared, influxdb3_local.cache.get("short"))
"#,
        )
        .await
        .unwrap();
    let run = |cache: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .test_wal(wal_test("count.py", "cpu v=1 1", Some(cache)))
                .await
                .unwrap()
                .log_lines
        }
    };
    assert_eq!(run("a").await, vec!["INFO: 1 10 1"]);
    assert_eq!(run("a").await, vec!["INFO: 2 20 2"]);
    // Another cache name is another trigger's cache; the global one is shared.
    assert_eq!(run("b").await, vec!["INFO: 1 30 1"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = engine
        .test_wal(wal_test("count.py", "cpu v=1 1", Some("a")))
        .await
        .unwrap();
    assert_eq!(out.log_lines, vec!["INFO: 3 40 3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_dry_run_gets_its_next_firing() {
    let (engine, _dir) = engine(Duration::from_secs(10)).await;
    engine
        .write_plugin_file(
            "tick.py",
            "def process_scheduled_call(influxdb3_local, call_time, args):\n    influxdb3_local.info(call_time.second % 10)\n",
        )
        .await
        .unwrap();
    let out = engine
        .test_schedule(ScheduleTestRequest {
            filename: "tick.py".into(),
            database: "db".into(),
            schedule: Some("every:10s".into()),
            input_arguments: None,
            cache_name: None,
        })
        .await
        .unwrap();
    assert_eq!(out.log_lines, vec!["INFO: 0"], "{:?}", out.errors);
    assert!(out.trigger_time.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_cannot_leave_the_plugin_directory() {
    let (engine, dir) = engine(Duration::from_secs(10)).await;
    for bad in ["../escape.py", "a/../../escape.py", "/etc/passwd", ""] {
        let e = engine.write_plugin_file(bad, "x = 1").await.unwrap_err();
        assert!(matches!(e, EngineError::Invalid(_)), "{bad}: {e}");
        assert!(engine.check_plugin(bad).is_err(), "{bad}");
    }
    assert!(!dir.path().join("escape.py").exists());
    // A link out of the directory is refused too.
    std::os::unix::fs::symlink("/etc", dir.path().join("plugins/etc")).unwrap();
    assert!(matches!(
        engine.check_plugin("etc/passwd"),
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        engine.check_plugin("missing.py"),
        Err(EngineError::NotFound(_))
    ));
    engine
        .write_plugin_file("sub/ok.py", "x = 1")
        .await
        .unwrap();
    assert_eq!(engine.check_plugin("sub/ok.py").unwrap(), "sub/ok.py");
}
