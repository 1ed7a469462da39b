use super::*;
use arrow::util::pretty::pretty_format_batches;
use catalog::CatalogState;

use crate::test_writes::{catalog, write};

fn cache(state: &CatalogState, def: LastCacheDef) -> LastCache {
    let db = state.db("db").unwrap();
    LastCache::new(db, db.table("cpu").unwrap(), def)
}

fn def(keys: &[&str], values: Option<&[&str]>, count: usize) -> LastCacheDef {
    LastCacheDef {
        name: "c".into(),
        key_columns: keys.iter().map(|s| s.to_string()).collect(),
        value_columns: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        count,
        ttl_secs: 3600,
    }
}

fn feed(c: &LastCache, batch: &validation::WriteBatch) {
    for (_, rows) in &batch.tables {
        c.push_batch(rows);
    }
}

fn show(c: &LastCache, filters: &[KeyFilter]) -> String {
    pretty_format_batches(&[c.record_batch(filters).unwrap()])
        .unwrap()
        .to_string()
}

fn host(value: &str, negated: bool) -> KeyFilter {
    KeyFilter {
        column: "host".into(),
        values: vec![KeyValue::Str(value.into())],
        negated,
    }
}

#[tokio::test]
async fn newest_rows_per_key_with_count_and_merges() {
    let cat = catalog().await;
    let (state, first) = write(
        &cat,
        "cpu,host=a,region=us usage=1,n=1i 10\n\
         cpu,host=a,region=us usage=2 20\n\
         cpu,host=b,region=eu usage=3 15\n\
         cpu,host=a,region=us usage=0.5 5\n\
         cpu,region=us usage=9 30",
    )
    .await;
    let c = cache(&state, def(&["host"], Some(&["usage", "n"]), 2));
    feed(&c, &first);
    // Newest first, two per host; the row without a host is not cached;
    // the oldest row of a did not fit.
    let out = show(&c, &[]);
    assert_eq!(
        out,
        "+------+-------+---+-------------------------------+\n\
         | host | usage | n | time                          |\n\
         +------+-------+---+-------------------------------+\n\
         | a    | 2.0   |   | 1970-01-01T00:00:00.000000020 |\n\
         | a    | 1.0   | 1 | 1970-01-01T00:00:00.000000010 |\n\
         | b    | 3.0   |   | 1970-01-01T00:00:00.000000015 |\n\
         +------+-------+---+-------------------------------+",
        "{out}"
    );
    // A later write at the same time is the same point: its fields win.
    let (_, second) = write(
        &cat,
        "cpu,host=a,region=us n=7i 20\ncpu,host=b,region=eu usage=4 40",
    )
    .await;
    feed(&c, &second);
    let out = show(&c, &[host("a", false)]);
    assert!(
        out.contains("| a    | 2.0   | 7 | 1970-01-01T00:00:00.000000020 |"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 6, "{out}");
    let out = show(&c, &[host("a", true)]);
    assert!(
        out.contains("| b    | 4.0   |   | 1970-01-01T00:00:00.000000040 |"),
        "{out}"
    );
    assert!(out.contains("| b    | 3.0   |"), "{out}");
    assert!(!out.contains("| a "), "{out}");
    assert_eq!(c.series(), 2);
}

#[tokio::test]
async fn every_other_column_by_default_and_new_fields_join() {
    let cat = catalog().await;
    let (state, first) = write(&cat, "cpu,host=a,region=us usage=1 10").await;
    let c = cache(&state, def(&["host", "region"], None, 1));
    feed(&c, &first);
    let (_, second) = write(&cat, "cpu,host=a,region=us usage=2,temp=40i 20").await;
    feed(&c, &second);
    // The table's columns in their order, then the new field.
    assert_eq!(c.value_columns(), vec!["usage", "time", "temp"]);
    let out = show(&c, &[]);
    assert!(
        out.contains("| a    | us     | 2.0   | 1970-01-01T00:00:00.000000020 | 40   |"),
        "{out}"
    );
}

#[tokio::test]
async fn rows_expire_after_the_ttl() {
    let cat = catalog().await;
    let (state, first) = write(&cat, "cpu,host=a usage=1 10").await;
    let mut d = def(&["host"], None, 1);
    d.ttl_secs = 0;
    let c = cache(&state, d);
    feed(&c, &first);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.record_batch(&[]).unwrap().num_rows(), 0);
    c.remove_expired();
    assert_eq!(c.series(), 0);
    // The storage was rebuilt without the empty keys; new rows still land.
    let (_, again) = write(&cat, "cpu,host=b usage=2 20").await;
    feed(&c, &again);
    assert_eq!(c.series(), 1);
}

#[tokio::test]
async fn keys_left_after_others_expire_keep_their_rows() {
    let cat = catalog().await;
    let (state, first) = write(
        &cat,
        "cpu,host=a usage=1 10
cpu,host=b usage=2 20",
    )
    .await;
    let mut d = def(&["host"], None, 3);
    d.ttl_secs = 1;
    let c = cache(&state, d);
    feed(&c, &first);
    std::thread::sleep(Duration::from_millis(1100));
    let (_, second) = write(
        &cat,
        "cpu,host=c usage=3 30
cpu,host=c usage=4 40",
    )
    .await;
    feed(&c, &second);
    c.remove_expired();
    assert_eq!(c.series(), 1);
    let out = show(&c, &[]);
    assert!(
        out.contains("| c    | 4.0   |") && out.contains("| c    | 3.0   |"),
        "{out}"
    );
    assert!(!out.contains("| a ") && !out.contains("| b "), "{out}");
    let (_, third) = write(&cat, "cpu,host=c usage=5 35").await;
    feed(&c, &third);
    let b = c.record_batch(&[host("c", false)]).unwrap();
    let usage = b
        .column_by_name("usage")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap();
    assert_eq!(usage.values().to_vec(), vec![4.0, 5.0, 3.0]);
}

/// Rows a fill read before the cache was emptied for a refill (a delete
/// came while it queried the table) are dropped, and it stays unfilled;
/// a fill that read after it is kept.
#[tokio::test]
async fn a_fill_read_before_a_refill_is_dropped() {
    let cat = catalog().await;
    let (state, rows) = write(&cat, "cpu,host=a usage=1 10\ncpu,host=b usage=2 20").await;
    let c = cache(&state, def(&["host"], Some(&["usage"]), 1));
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
