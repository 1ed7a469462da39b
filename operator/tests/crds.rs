//! `crds/` (and the chart's `crds/`) hold what `inflow-operator crd`
//! prints: regenerate with
//! `cargo run --bin inflow-operator -- crd > crds/inflow.dev.yaml` and copy it to
//! `charts/inflow/crds/`.

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
    let chart = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/inflow/crds/inflow.dev.yaml"
    );
    assert!(
        std::fs::read_to_string(chart).unwrap_or_default() == generated,
        "charts/inflow/crds/inflow.dev.yaml is stale: copy crds/inflow.dev.yaml there"
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
