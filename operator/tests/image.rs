//! The image scripts/image.sh assembles (an OCI layout, no Docker daemon):
//! unpacked, each binary answers `--version` from the image's own root file
//! system, run as the image's user, and `inflow serve --plugin-dir` runs a
//! Python plugin with the image's own Python.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn every_binary_runs_from_the_image_as_its_user() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = tempfile::tempdir().unwrap();
    let built = Command::new("bash")
        .arg(format!("{root}/scripts/image.sh"))
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let layout = out.path().join("oci");
    let bundle = out.path().join("unpacked");
    let unpacked = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:inflow", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        unpacked.status.success(),
        "{}",
        String::from_utf8_lossy(&unpacked.stderr)
    );
    // The image's configuration: user, command, port.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 10001);
    assert_eq!(config["process"]["args"][0], "inflow");
    assert_eq!(config["process"]["args"][1], "serve");
    let rootfs = bundle.join("rootfs");
    for bin in [
        "inflow",
        "inflow-ingester",
        "inflow-querier",
        "inflow-compactor",
        "inflow-operator",
    ] {
        let run = Command::new("chroot")
            .arg("--userspec=10001:10001")
            .arg(&rootfs)
            .arg(format!("/usr/local/bin/{bin}"))
            .arg("--version")
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(String::from_utf8_lossy(&run.stdout).starts_with(&format!("{bin} 0.1.0")));
    }

    // The processing engine: a plugin's dry run with the image's Python.
    for dir in ["tmp/plugins", "tmp/data"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
        Command::new("chown")
            .arg("10001:10001")
            .arg(rootfs.join(dir))
            .status()
            .unwrap();
    }
    let mut server = Command::new("chroot")
        .arg("--userspec=10001:10001")
        .arg(&rootfs)
        .args([
            "/usr/local/bin/inflow",
            "serve",
            "--without-auth",
            "--http-bind",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/data",
            "--plugin-dir",
            "/tmp/plugins",
            "--log-filter",
            "warn",
            // A chroot has no /proc to take a share of the memory from.
            "--buffer-mem-limit",
            "256MiB",
            "--parquet-mem-cache-size",
            "64MiB",
            "--exec-mem-pool-bytes",
            "256MiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30));
    let answer = addr.map(|addr| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let http = reqwest::Client::new();
            let upload = http
                .post(format!("http://{addr}/api/v3/plugins/files"))
                .json(&serde_json::json!({
                    "plugin_name": "echo.py",
                    "content": "import json, sys\n\ndef process_writes(influxdb3_local, table_batches, args):\n    influxdb3_local.info(sys.version_info[0], json.dumps([b['table_name'] for b in table_batches]))\n",
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(upload.status(), 200);
            http.post(format!("http://{addr}/api/v3/plugin_test/wal"))
                .json(&serde_json::json!({
                    "filename": "echo.py", "database": "db", "input_lp": "cpu v=1 1",
                }))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    });
    let _ = server.kill();
    let _ = server.wait();
    let answer = answer.expect("inflow serve did not start in the image");
    assert_eq!(
        answer["log_lines"],
        serde_json::json!(["INFO: 3 [\"cpu\"]"]),
        "{answer}"
    );
}
