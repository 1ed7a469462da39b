//! Writes for the caches' unit tests: line protocol validated against an
//! in-memory catalog, as the write path does, into the rows a cache is fed.

use std::sync::Arc;

use catalog::{Catalog, CatalogState};
use line_protocol::Precision;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use validation::{build, parse, schema_check};

/// An empty catalog on an in-memory store.
pub(crate) async fn catalog() -> Arc<Catalog> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    Catalog::load(store, Path::default()).await.unwrap()
}

/// Validates `body` into database `db` (growing the catalog) and returns
/// the state and the write's rows.
pub(crate) async fn write(
    cat: &Catalog,
    body: &str,
) -> (Arc<CatalogState>, validation::WriteBatch) {
    let mut parsed = parse(body.as_bytes(), Precision::Nanosecond);
    let change = schema_check(
        &cat.state(),
        "db",
        &mut parsed,
        &validation::Limits::UNLIMITED,
    );
    let state = cat.ensure(&change).await.unwrap();
    let built = build(&state, "db", &mut parsed, 999).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    (state, built.batch)
}
