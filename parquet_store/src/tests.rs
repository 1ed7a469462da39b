use super::*;
use catalog::Catalog;
use line_protocol::Precision;
use object_store::memory::InMemory;
use validation::{build, parse, schema_check};

/// `body` written into database `db` of `cat`: the catalog state after, and
/// the rows of table `cpu`, deduplicated and sorted by series key.
async fn sorted_batch(cat: &Catalog, body: &str) -> (Arc<catalog::CatalogState>, RecordBatch) {
    let mut parsed = parse(body.as_bytes(), Precision::Nanosecond);
    let change = schema_check(
        &cat.state(),
        "db",
        &mut parsed,
        &validation::Limits::UNLIMITED,
    );
    let state = cat.ensure(&change).await.unwrap();
    let built = build(&state, "db", &mut parsed, 0).unwrap();
    let table = state.db("db").unwrap().table("cpu").unwrap();
    let (_, batch) = built.batch.tables.into_iter().next().unwrap();
    let batch =
        table_batch::sort_by_key(&table_batch::dedup(&batch, table).unwrap(), table).unwrap();
    (state, batch)
}

#[tokio::test]
async fn writes_sorted_rows_and_reads_back_with_stats() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let body = "cpu,host=b,region=eu v=1,n=4i 20\ncpu,host=a,region=us v=2,n=5i 10\ncpu,host=a,region=eu v=3,n=6i 30\n";
    let (state, batch) = sorted_batch(&cat, body).await;
    let db = state.db("db").unwrap();
    let table = db.table("cpu").unwrap();

    let file = write_file(&store, &Path::from("pfx"), db.id, table, 0, &batch)
        .await
        .unwrap();
    assert!(
        file.path
            .starts_with(&format!("pfx/data/{}/{}/1970-01-01/", db.id, table.id)),
        "{}",
        file.path
    );
    assert!(file.path.ends_with(".parquet"));
    assert_eq!((file.row_count, file.min_time, file.max_time), (3, 10, 30));
    assert_eq!(
        file.tag_ranges.get("host").unwrap(),
        &("a".to_string(), "b".to_string())
    );
    assert_eq!(
        file.tag_ranges.get("region").unwrap(),
        &("eu".to_string(), "us".to_string())
    );
    assert!(file.may_contain_tag("host", &["a"]) && !file.may_contain_tag("host", &["c"]));

    // Codecs per column: integers LZ4, floats ZSTD, time uncompressed.
    let bytes = store
        .get(&Path::from(file.path.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap(),
    )
    .clone();
    let codecs: BTreeMap<String, Compression> = meta
        .row_group(0)
        .columns()
        .iter()
        .map(|c| (c.column_path().string(), c.compression()))
        .collect();
    assert_eq!(codecs["n"], Compression::LZ4_RAW, "{codecs:?}");
    assert!(matches!(codecs["v"], Compression::ZSTD(_)), "{codecs:?}");
    assert_eq!(codecs["time"], Compression::UNCOMPRESSED, "{codecs:?}");

    let back = read_file(&store, &file.path).await.unwrap();
    let rows: usize = back.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    assert_eq!(
        back[0].schema(),
        batch.schema(),
        "the Arrow schema (types and metadata) round-trips"
    );
    let shown = arrow::util::pretty::pretty_format_batches(&back)
        .unwrap()
        .to_string();
    let order: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .collect();
    assert!(
        order[0].starts_with("| a    | 6 | eu ")
            && order[1].starts_with("| a    | 5 | us ")
            && order[2].starts_with("| b "),
        "{shown}"
    );
}

/// The footer lists the row runs of each value of the first series-key tag
/// (rows without it, which sort first, in none), once a file has at least
/// eight rows per run.
#[tokio::test]
async fn footer_lists_the_rows_of_each_first_tag_value() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let mut body = String::new();
    for t in 0..10 {
        for host in ["b", "a", "c"] {
            body.push_str(&format!("cpu,host={host},zone=x v={t} {t}\n"));
        }
        body.push_str(&format!("cpu,zone=y v={t} {t}\n"));
    }
    let (state, batch) = sorted_batch(&cat, body.as_ref()).await;
    let db = state.db("db").unwrap();
    let table = db.table("cpu").unwrap();
    let file = write_file(&store, &Path::from("pfx"), db.id, table, 0, &batch)
        .await
        .unwrap();

    let runs = footer_runs(&store, &file.path)
        .await
        .expect("the footer lists the runs");
    assert_eq!(
        runs,
        serde_json::json!({"column": "host", "runs": [["a", 10, 20, 0, 1], ["b", 20, 30, 0, 1], ["c", 30, 40, 0, 1]]})
    );

    // Too few rows per run: no list.
    let small = batch.slice(10, 12);
    let file = write_file(&store, &Path::from("pfx"), db.id, table, 0, &small)
        .await
        .unwrap();
    assert!(footer_runs(&store, &file.path).await.is_none());
}

/// The [`KEY_RUNS`] entry of the file at `path`, if any.
async fn footer_runs(store: &Arc<dyn ObjectStore>, path: &str) -> Option<serde_json::Value> {
    let bytes = store
        .get(&Path::from(path))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let runs = meta
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == KEY_RUNS)?
        .value
        .clone()?;
    Some(serde_json::from_str(&runs).unwrap())
}

/// Runs list their first time and step only when their times step evenly:
/// not with a gap, and not when the run holds two series (times restart).
#[tokio::test]
async fn footer_lists_even_time_steps_of_runs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let mut body = String::new();
    for t in 0..10i64 {
        body.push_str(&format!("cpu,host=even v={t} {}\n", 1_000 + 10 * t));
        body.push_str(&format!(
            "cpu,host=gap v={t} {}\n",
            if t == 9 { 5_000 } else { 1_000 + 10 * t }
        ));
        body.push_str(&format!(
            "cpu,host=two,zone=z{} v={t} {}\n",
            t % 2,
            1_000 + 10 * (t / 2)
        ));
    }
    let (state, batch) = sorted_batch(&cat, body.as_ref()).await;
    let db = state.db("db").unwrap();
    let path = write_file(
        &store,
        &Path::from("pfx"),
        db.id,
        db.table("cpu").unwrap(),
        0,
        &batch,
    )
    .await
    .unwrap()
    .path;
    assert_eq!(
        footer_runs(&store, &path).await,
        Some(
            serde_json::json!({"column": "host", "runs": [["even", 0, 10, 1_000, 10], ["gap", 10, 20], ["two", 20, 30]]})
        )
    );
}
