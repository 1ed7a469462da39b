//! The image scripts/image.sh assembles (an OCI layout, no Docker daemon):
//! unpacked, each binary answers `--version` from the image's own root file
//! system, run as the image's user.

#![allow(clippy::unwrap_used)]

use std::process::Command;

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
}
