//! Dedup against a model: points written with line protocol, built into a
//! batch the way the write path builds them, then deduplicated
//! (`table_batch::dedup`, as the buffer, persistence and compaction do),
//! equal what a map from series and time to the last value of each field
//! says, for any mix of repeated keys and missing fields.

// Helpers as well as tests unwrap: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampNanosecondType};
use catalog::{Catalog, CatalogState};
use line_protocol::Precision;
use object_store::memory::InMemory;
use proptest::prelude::*;

/// A catalog with table `m`: tag `host`, integer `a`, float `b`.
fn state() -> &'static Arc<CatalogState> {
    static STATE: OnceLock<Arc<CatalogState>> = OnceLock::new();
    STATE.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let cat = Catalog::load(Arc::new(InMemory::new()), Default::default())
                    .await
                    .unwrap();
                let mut parsed =
                    validation::parse(b"m,host=h0 a=1i,b=1.5 0", Precision::Nanosecond);
                let change = validation::schema_check(
                    &cat.state(),
                    "db",
                    &mut parsed,
                    &validation::Limits::UNLIMITED,
                );
                cat.ensure(&change).await.unwrap()
            })
    })
}

/// One point: host, time, and the fields it carries (at least one).
type Point = (u8, i64, Option<i64>, Option<i64>);

fn point() -> impl Strategy<Value = Point> {
    (
        0u8..3,
        0i64..4,
        proptest::option::of(-5i64..5),
        proptest::option::of(-5i64..5),
    )
        .prop_filter("a point has a field", |(_, _, a, b)| {
            a.is_some() || b.is_some()
        })
}

type Row = (Option<i64>, Option<f64>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn dedup_keeps_the_last_value_of_each_field(points in proptest::collection::vec(point(), 1..40)) {
        let mut body = String::new();
        let mut model: BTreeMap<(String, i64), Row> = BTreeMap::new();
        for (host, time, a, b) in &points {
            let mut fields = Vec::new();
            if let Some(a) = a {
                fields.push(format!("a={a}i"));
            }
            if let Some(b) = b {
                fields.push(format!("b={b}.5"));
            }
            body.push_str(&format!("m,host=h{host} {} {time}\n", fields.join(",")));
            let row = model.entry((format!("h{host}"), *time)).or_default();
            if a.is_some() {
                row.0 = *a;
            }
            if let Some(b) = b {
                row.1 = Some(format!("{b}.5").parse().unwrap());
            }
        }
        let state = state();
        let (built, rejected) = validation::parse_and_build_known(state, "db", body.as_bytes(), Precision::Nanosecond, 0)
            .unwrap()
            .expect("every column is known");
        prop_assert!(rejected.is_empty());
        let table = state.db("db").unwrap().table("m").unwrap();
        let (_, batch) = built.batch.tables.into_iter().next().unwrap();
        let deduped = table_batch::dedup(&batch, table).unwrap();
        let column = |name: &str| deduped.column_by_name(name).map(Arc::clone);
        let hosts = column("host").unwrap();
        let hosts = hosts.as_dictionary::<Int32Type>();
        let host_values = hosts.values().as_string::<i32>();
        let times = column("time").unwrap();
        let times = times.as_primitive::<TimestampNanosecondType>();
        let a = column("a");
        let b = column("b");
        let mut got: BTreeMap<(String, i64), Row> = BTreeMap::new();
        for i in 0..deduped.num_rows() {
            let host = host_values.value(hosts.keys().value(i) as usize).to_string();
            let a = a.as_ref().and_then(|c| {
                let c = c.as_primitive::<Int64Type>();
                c.is_valid(i).then(|| c.value(i))
            });
            let b = b.as_ref().and_then(|c| {
                let c = c.as_primitive::<Float64Type>();
                c.is_valid(i).then(|| c.value(i))
            });
            prop_assert!(got.insert((host, times.value(i)), (a, b)).is_none(), "a key twice after dedup");
        }
        prop_assert_eq!(got, model);
    }
}
