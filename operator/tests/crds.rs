//! `crds/` holds what `inflow-operator crd` prints: regenerate it with
//! `cargo run --bin inflow-operator -- crd > crds/inflow.dev.yaml`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn committed_crds_match_the_types() {
    let out = Command::new(env!("CARGO_BIN_EXE_inflow-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/inflow.dev.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "crds/inflow.dev.yaml is stale: run `cargo run --bin inflow-operator -- crd > crds/inflow.dev.yaml`"
    );
    // The schemas carry the validation the API server applies.
    for needle in [
        "name: inflowclusters.inflow.dev",
        "name: databases.inflow.dev",
        "name: tokens.inflow.dev",
        "- Retain",
        "- Delete",
        "pattern: ^https?://",
        "maximum: 1000",
    ] {
        assert!(generated.contains(needle), "the CRDs lack `{needle}`");
    }
}
