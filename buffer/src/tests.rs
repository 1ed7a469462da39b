use super::*;
use arrow::compute::take;
use arrow::util::pretty::pretty_format_batches;
use catalog::Catalog;
use catalog::ColumnKind;
use line_protocol::Precision;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use validation::{build, parse, schema_check};

async fn catalog() -> Arc<Catalog> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    Catalog::load(store, Path::default()).await.unwrap()
}

/// Runs the whole validation chain and applies the rows to `buf`.
async fn write(cat: &Catalog, buf: &Buffer, body: &str) -> Vec<validation::RejectedLine> {
    let mut parsed = parse(body.as_bytes(), Precision::Nanosecond);
    let change = schema_check(
        &cat.state(),
        "db",
        &mut parsed,
        &validation::Limits::UNLIMITED,
    );
    let state = cat.ensure(&change).await.unwrap();
    let built = build(&state, "db", &mut parsed, 999).unwrap();
    buf.apply(1, built.batch);
    parsed.rejected.sort_by_key(|r| r.line_number);
    parsed.rejected
}

fn show(cat: &Catalog, buf: &Buffer, table: &str) -> String {
    let state = cat.state();
    let db = state.db("db").unwrap();
    let t = db.table(table).unwrap();
    let b = buf.snapshot(db.id, t).unwrap().unwrap();
    let sorted =
        arrow::compute::sort_to_indices(b.column_by_name("time").unwrap(), None, None).unwrap();
    let cols = b
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &sorted, None).unwrap())
        .collect();
    let b = RecordBatch::try_new(b.schema(), cols).unwrap();
    pretty_format_batches(&[b]).unwrap().to_string()
}

#[tokio::test]
async fn write_and_snapshot() {
    let cat = catalog().await;
    let buf = Buffer::new();
    let rejected = write(
        &cat,
        &buf,
        "cpu,host=a usage=1.5,n=1i 10\ncpu,host=b usage=2 20\ncpu idle=true",
    )
    .await;
    assert!(rejected.is_empty(), "{rejected:?}");
    let out = show(&cat, &buf, "cpu");
    let expected = "\
+------+------+---+-------------------------------+-------+
| host | idle | n | time                          | usage |
+------+------+---+-------------------------------+-------+
| a    |      | 1 | 1970-01-01T00:00:00.000000010 | 1.5   |
| b    |      |   | 1970-01-01T00:00:00.000000020 | 2.0   |
|      | true |   | 1970-01-01T00:00:00.000000999 |       |
+------+------+---+-------------------------------+-------+";
    // Columns are sorted by name; a line without a timestamp gets the default time.
    assert_eq!(out, expected);
}

#[tokio::test]
async fn type_conflicts_are_per_line() {
    let cat = catalog().await;
    let buf = Buffer::new();
    write(&cat, &buf, "m,t=a f=1 1").await;
    let rejected = write(
        &cat,
        &buf,
        "m f=1i 2\nm t=1 3\nm,f=x g=1 4\nm g=\"s\" 5\nm f=2 6",
    )
    .await;
    let msgs: Vec<_> = rejected
        .iter()
        .map(|r| (r.line_number, r.error_message.clone()))
        .collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[0]
            .1
            .contains("expected float field, got integer field"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].1.contains("conflicts with the existing tag 't'"),
        "{msgs:?}"
    );
    assert!(
        msgs[2].1.contains("conflicts with the existing field 'f'"),
        "{msgs:?}"
    );
    // Line 3 was rejected before its field g counted, so line 4 makes g a string.
    let state = cat.state();
    let t = state.db("db").unwrap().table("m").unwrap();
    assert_eq!(
        t.column("g").unwrap().kind,
        ColumnKind::Field(catalog::FieldType::String)
    );
    assert_eq!(buf.row_count(state.db("db").unwrap().id, t.id), 3);
}

#[tokio::test]
async fn dedup_later_write_wins_field_by_field() {
    let cat = catalog().await;
    let buf = Buffer::new();
    write(&cat, &buf, "m,t=a f=1,g=1 100\nm,t=b f=5 100").await;
    write(&cat, &buf, "m,t=a f=2 100\nm,t=a g=3 100\nm f=9 100").await;
    let out = show(&cat, &buf, "m");
    assert!(out.contains("| 2.0 | 3.0 | a |"), "{out}");
    assert!(out.contains("| 5.0 |     | b |"), "{out}");
    assert!(out.contains("| 9.0 |     |   |"), "{out}");
    assert_eq!(out.lines().count(), 3 + 4, "{out}");
}

/// A line that loses a race for a column's type is rejected by `build`;
/// the lines after it must not reuse its half-done column resolution.
#[tokio::test]
async fn build_after_a_raced_conflict_uses_the_right_columns() {
    let cat = catalog().await;
    let buf = Buffer::new();
    // Plan the columns against an empty catalog...
    let body = "m,t=a f=1,g=2 1\nm,t=b h=1 2\nm,t=c f=3,g=4 3";
    let mut parsed = parse(body.as_bytes(), Precision::Nanosecond);
    let change = schema_check(
        &cat.state(),
        "db",
        &mut parsed,
        &validation::Limits::UNLIMITED,
    );
    // ...but another writer makes `h` an integer first.
    let mut other = parse(b"m h=1i 9", Precision::Nanosecond);
    let other_change = schema_check(
        &cat.state(),
        "db",
        &mut other,
        &validation::Limits::UNLIMITED,
    );
    cat.ensure(&other_change).await.unwrap();
    let state = cat.ensure(&change).await.unwrap();
    let built = build(&state, "db", &mut parsed, 0).unwrap();
    assert_eq!(parsed.rejected.len(), 1);
    assert_eq!(parsed.rejected[0].line_number, 2);
    buf.apply(1, built.batch);
    let out = show(&cat, &buf, "m");
    assert!(out.contains("| 1.0 | 2.0 |   | a |"), "{out}");
    assert!(out.contains("| 3.0 | 4.0 |   | c |"), "{out}");
}

/// Rows land in the time chunk of their `time`; a sealed generation stays
/// readable until it is removed, and a newer generation wins in `snapshot`.
#[tokio::test]
async fn chunks_and_generations() {
    let cat = catalog().await;
    let buf = Buffer::with_chunk_duration(std::time::Duration::from_nanos(100));
    write(
        &cat,
        &buf,
        "m,t=a f=1 10\nm,t=a f=2 150\nm,t=b f=3 250\nm,t=a f=4 -5",
    )
    .await;
    let state = cat.state();
    let db = state.db("db").unwrap();
    let t = db.table("m").unwrap();
    let chunks = buf.table_chunks(db.id, t).unwrap();
    let spans: Vec<(i64, i64, i64, usize)> = chunks
        .iter()
        .map(|c| (c.chunk_time, c.min_time, c.max_time, c.batch.num_rows()))
        .collect();
    assert_eq!(
        spans,
        vec![
            (-100, -5, -5, 1),
            (0, 10, 10, 1),
            (100, 150, 150, 1),
            (200, 250, 250, 1)
        ]
    );

    let sealed = buf.seal().expect("the active generation has rows");
    assert_eq!(sealed.max_seq(), 1);
    assert!(
        buf.seal().is_none(),
        "an empty active generation is not sealed"
    );
    // A later write to a sealed chunk's series and time wins.
    write(&cat, &buf, "m,t=a f=20 150").await;
    assert_eq!(buf.table_chunks(db.id, t).unwrap().len(), 5);
    let out = show(&cat, &buf, "m");
    assert!(
        out.contains("| 20.0 | a | 1970-01-01T00:00:00.000000150 |"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4 + 4, "{out}");
    assert!(buf.memory_bytes() > 0);

    buf.remove_generation(sealed.id());
    let left = buf.table_chunks(db.id, t).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].chunk_time, 100);
}

#[tokio::test]
async fn sort_by_key_orders_tags_then_time() {
    let cat = catalog().await;
    let buf = Buffer::new();
    // Field `f` of table `table`'s rows, sorted by series key.
    let sorted_f = |table: &'static str| {
        let state = cat.state();
        let db = state.db("db").unwrap();
        let t = db.table(table).unwrap();
        let sorted = sort_by_key(&buf.snapshot(db.id, t).unwrap().unwrap(), t).unwrap();
        let f = sorted
            .column_by_name("f")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        f.values().to_vec()
    };
    write(
        &cat,
        &buf,
        "m,t=b,u=x f=1 5\nm,t=a,u=y f=2 9\nm,t=a,u=x f=3 7\nm,t=a,u=x f=4 1",
    )
    .await;
    assert_eq!(sorted_f("m"), vec![4.0, 3.0, 2.0, 1.0]);
    // Tags sort in the order the table first saw them, not by name.
    write(
        &cat,
        &buf,
        "n,u=x,t=b f=1 5\nn,u=y,t=a f=2 9\nn,u=x,t=a f=3 7",
    )
    .await;
    assert_eq!(sorted_f("n"), vec![3.0, 1.0, 2.0]);
}

/// The one-pass path, with its series and field-shape shortcuts, gives the
/// same rows and the same rejections as the two-phase path.
#[tokio::test]
async fn one_pass_matches_two_phase() {
    let cat = catalog().await;
    // Every column exists, so the one-pass path can take the whole body.
    let seed = "cpu,host=a,dc=x u=1,v=2i,s=\"q\" 1\nmem,host=a free=1i 1\ncpu,host=a\\ b u=1 1";
    write(&cat, &Buffer::new(), seed).await;
    let body = [
        "cpu,host=a,dc=x u=1,v=2i 10",
        "cpu,host=b,dc=x u=2,v=3i 10",
        "cpu,host=a,dc=x u=3,v=4i 20",   // cached series, same fields
        "cpu,host=a,dc=x v=5i,u=4 30",   // cached series, fields reordered
        "cpu,host=a,dc=x u=5,u=6 40",    // cached series, duplicate field
        "cpu,host=a,dc=x u=5,host=1 40", // cached series, field named like a tag
        "cpu,host=a,dc=x u=1i 50",       // cached series, type conflict
        "cpu,host=a,dc=x u=1,v=2i,s=3i,x= 60", // cached series, bad value after a conflict
        "cpu,host=a,dc=x u=7 70 junk",   // cached series, trailing text
        "mem,host=a free=2i 70",         // another table in between
        "cpu,host=a,dc=x u=8,v=9i,s=\"r\" 80", // cached series again, new field set
        "cpu,host=a\\ b u=9 90",         // escaped key: never cached
        "cpu,host=a\\ b u=10 100",
        "cpu,host=b,dc=x u=11 110",
        "cpu,dc=x,host=b u=12 120", // same tags, other order: another key
        "cpu,host=b,dc=x time=1 130", // reserved name
        "cpu,host=b,dc=x u=13",     // default time
    ]
    .join("\n");
    let state = cat.state();
    let (built, one_pass_rejected) = validation::parse_and_build_known(
        &state,
        "db",
        body.as_bytes(),
        Precision::Nanosecond,
        999,
    )
    .unwrap()
    .expect("every column is known");
    let one_pass = Buffer::new();
    one_pass.apply(1, built.batch);
    let two_phase = Buffer::new();
    let two_phase_rejected = write(&cat, &two_phase, &body).await;
    let msgs = |r: &[validation::RejectedLine]| {
        r.iter()
            .map(|r| (r.line_number, r.error_message.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(msgs(&one_pass_rejected), msgs(&two_phase_rejected));
    assert_eq!(
        msgs(&one_pass_rejected)
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9, 16]
    );
    assert!(
        one_pass_rejected[0]
            .error_message
            .contains("duplicate field key 'u'"),
        "{one_pass_rejected:?}"
    );
    assert!(
        one_pass_rejected[1]
            .error_message
            .contains("used as both a tag and a field"),
        "{one_pass_rejected:?}"
    );
    for table in ["cpu", "mem"] {
        assert_eq!(
            show(&cat, &one_pass, table),
            show(&cat, &two_phase, table),
            "{table}"
        );
    }
    assert!(
        built.accepted.is_some(),
        "rejected lines are left out of the WAL entry"
    );
}

/// A chunk consolidated under a table's old columns is consolidated again
/// once the table gains a column, even with no new rows in that chunk.
#[tokio::test]
async fn chunks_follow_new_columns() {
    let cat = catalog().await;
    let buf = Buffer::new();
    assert!(write(&cat, &buf, "cpu,host=a v=1 10").await.is_empty());
    assert!(show(&cat, &buf, "cpu").contains("| host | time "));
    // A new column, written into another chunk (an hour later).
    assert!(
        write(&cat, &buf, "cpu,host=a w=2i 3600000000010")
            .await
            .is_empty()
    );
    let out = show(&cat, &buf, "cpu");
    assert!(
        out.contains("| host | time                          | v   | w |"),
        "{out}"
    );
    assert!(
        out.contains("| a    | 1970-01-01T00:00:00.000000010 | 1.0 |   |"),
        "{out}"
    );
}
