use super::*;
use arrow::util::pretty::pretty_format_batches;
use catalog::CatalogState;

use crate::test_writes::{catalog, write};

fn cache(state: &CatalogState, columns: &[&str], max_cardinality: usize) -> DistinctCache {
    let db = state.db("db").unwrap();
    DistinctCache::new(
        db.table("cpu").unwrap(),
        DistinctCacheDef {
            name: "d".into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            max_cardinality,
            max_age_secs: 3600,
        },
    )
}

fn feed(c: &DistinctCache, batch: &validation::WriteBatch) {
    for (_, rows) in &batch.tables {
        c.push_batch(rows);
    }
}

fn show(c: &DistinctCache, filters: &[ValueFilter]) -> String {
    pretty_format_batches(&[c.record_batch(filters).unwrap()])
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn combinations_in_hierarchy_order_with_nulls_and_filters() {
    let cat = catalog().await;
    let (state, rows) = write(
        &cat,
        "cpu,host=b,region=eu u=1 1\ncpu,host=a,region=us u=1 2\ncpu,host=a,region=us u=2 3\n\
         cpu,host=c u=1 4\ncpu u=5 5\ncpu,host=d,region=eu u=1 6",
    )
    .await;
    let c = cache(&state, &["region", "host"], 100);
    feed(&c, &rows);
    assert_eq!(c.len(), 4);
    let out = show(&c, &[]);
    assert_eq!(
        out,
        "+--------+------+\n\
         | region | host |\n\
         +--------+------+\n\
         |        | c    |\n\
         | eu     | b    |\n\
         | eu     | d    |\n\
         | us     | a    |\n\
         +--------+------+",
        "{out}"
    );
    let eu = ValueFilter {
        column: "region".into(),
        values: vec![Arc::from("eu")],
        negated: false,
    };
    assert_eq!(
        c.record_batch(std::slice::from_ref(&eu))
            .unwrap()
            .num_rows(),
        2
    );
    let not_eu = ValueFilter {
        negated: true,
        ..eu
    };
    let out = show(&c, &[not_eu]);
    assert!(
        out.contains("| us     | a    |") && !out.contains("eu"),
        "{out}"
    );
}

#[tokio::test]
async fn the_least_recently_seen_go_past_the_cardinality() {
    let cat = catalog().await;
    let (state, first) = write(&cat, "cpu,host=a u=1 1\ncpu,host=b u=1 2").await;
    let c = cache(&state, &["host"], 2);
    feed(&c, &first);
    std::thread::sleep(Duration::from_millis(2));
    let (_, second) = write(&cat, "cpu,host=a u=1 3").await;
    feed(&c, &second);
    std::thread::sleep(Duration::from_millis(2));
    let (_, third) = write(&cat, "cpu,host=c u=1 4").await;
    feed(&c, &third);
    assert_eq!(c.len(), 2);
    let out = show(&c, &[]);
    assert!(
        out.contains("| a    |") && out.contains("| c    |"),
        "{out}"
    );
    assert!(!out.contains("| b    |"), "{out}");
}

/// As for the last value cache: a fill read before a refill is dropped.
#[tokio::test]
async fn a_fill_read_before_a_refill_is_dropped() {
    let cat = catalog().await;
    let (state, rows) = write(&cat, "cpu,host=a u=1 1\ncpu,host=b u=1 2").await;
    let c = cache(&state, &["host"], 100);
    let read_at = c.refills();
    c.empty_for_refill();
    let batches: Vec<_> = rows.tables.iter().map(|(_, b)| b).collect();
    assert!(!c.fill(read_at, batches.iter().copied()));
    assert!(!c.is_filled());
    assert_eq!(c.record_batch(&[]).unwrap().num_rows(), 0);
    assert!(c.fill(c.refills(), batches.iter().copied()));
    assert!(c.is_filled());
    assert_eq!(c.record_batch(&[]).unwrap().num_rows(), 2);
}
