//! The write validator: request bodies checked against a catalog that has
//! tables with every field type. Any body is validated without a panic,
//! and the one-pass path the ingester takes when the catalog knows every
//! column gives exactly what the two-phase path gives (the same rows, the
//! same rejected lines with the same messages). When a body needs new
//! columns, the two-phase path changes a catalog and builds against it.
//!
//! Input: one byte picking the precision, then the body.
#![no_main]

use std::sync::{Arc, OnceLock};

use catalog::{Catalog, CatalogState};
use libfuzzer_sys::fuzz_target;
use line_protocol::Precision;
use object_store::memory::InMemory;
use object_store::path::Path;
use validation::{Limits, RejectedLine};

const PRECISIONS: [Precision; 7] = [
    Precision::Auto,
    Precision::Nanosecond,
    Precision::Microsecond,
    Precision::Millisecond,
    Precision::Second,
    Precision::Minute,
    Precision::Hour,
];

/// The tables every input starts from.
const PRELUDE: &str = "cpu,host=a,region=eu usage=1,count=2i,name=\"x\",ok=true,big=1u 1\n\
                       mem,host=a free=1i,used=0.5 1\n";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// A catalog holding database `db` with the prelude's tables.
async fn catalog() -> Arc<Catalog> {
    let cat = Catalog::load(Arc::new(InMemory::new()), Path::default())
        .await
        .expect("an in-memory catalog");
    let mut parsed = validation::parse(PRELUDE.as_bytes(), Precision::Nanosecond);
    let change = validation::schema_check(&cat.state(), "db", &mut parsed, &Limits::UNLIMITED);
    cat.ensure(&change).await.expect("the prelude's columns");
    cat
}

fn base() -> &'static Arc<CatalogState> {
    static STATE: OnceLock<Arc<CatalogState>> = OnceLock::new();
    STATE.get_or_init(|| runtime().block_on(async { catalog().await.state() }))
}

fn rejected(mut lines: Vec<RejectedLine>) -> Vec<(usize, String, bool)> {
    lines.sort_by_key(|l| l.line_number);
    lines
        .into_iter()
        .map(|l| (l.line_number, l.error_message, l.limit))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let precision = PRECISIONS[usize::from(pick) % PRECISIONS.len()];
    let state = base();
    let known = validation::parse_and_build_known(state, "db", body, precision, 7)
        .expect("db exists");
    let mut parsed = validation::parse(body, precision);
    let change = validation::schema_check(state, "db", &mut parsed, &Limits::UNLIMITED);
    match known {
        Some((fast, fast_rejected)) => {
            assert!(
                change.tables.is_empty(),
                "the one-pass path took a body that needs {change:?}"
            );
            let slow = validation::build(state, "db", &mut parsed, 7).expect("db exists");
            assert_eq!(rejected(fast_rejected), rejected(parsed.rejected));
            assert_eq!(fast.batch.rows, slow.batch.rows);
            // The same batch per table; the order of the tables may differ
            // (each batch goes to its own table's buffer).
            let (mut fast_tables, mut slow_tables) =
                (fast.batch.tables.clone(), slow.batch.tables.clone());
            fast_tables.sort_by_key(|(id, _)| *id);
            slow_tables.sort_by_key(|(id, _)| *id);
            assert_eq!(fast_tables, slow_tables);
            // What each path sends to the WAL replays to the same lines
            // (one may keep comments, blank lines and trailing spaces the other
            // drops).
            let wal_lines = |b: &validation::Built| {
                let text = b.accepted.clone().unwrap_or_else(|| body.to_vec());
                let parsed = validation::parse(&text, precision);
                assert!(parsed.rejected.is_empty(), "the WAL gets only good lines");
                parsed
                    .good
                    .iter()
                    .map(|g| format!("{:?}", line_protocol::parse_line(g.raw)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(wal_lines(&fast), wal_lines(&slow));
        }
        None => {
            if parsed.good.is_empty() {
                return;
            }
            runtime().block_on(async {
                let cat = catalog().await;
                let state = cat.ensure(&change).await.expect("an in-memory catalog");
                let (good, refused) = (parsed.good.len(), parsed.rejected.len());
                let built = validation::build(&state, "db", &mut parsed, 7).expect("db exists");
                assert_eq!(built.batch.rows + parsed.rejected.len() - refused, good);
            });
        }
    }
});
