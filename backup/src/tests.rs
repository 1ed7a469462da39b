use std::sync::Arc;

use catalog::{Catalog, CatalogOp, ColumnKind, FieldType, ParquetFile, SchemaChange, TableChange};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;

/// A store with one database, one table and one Parquet file (any bytes:
/// a backup copies objects, it does not read them).
async fn source() -> Arc<dyn ObjectStore> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let c = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    c.ensure(&SchemaChange {
        db: "db".into(),
        tables: vec![TableChange {
            name: "m".into(),
            columns: vec![("v".into(), ColumnKind::Field(FieldType::Float))],
        }],
    })
    .await
    .unwrap();
    let path = "data/0/0/1970-01-01/f.parquet";
    store
        .put(&Path::from(path), PutPayload::from(vec![7u8; 100]))
        .await
        .unwrap();
    let file = ParquetFile {
        id: 1,
        db_id: 0,
        table_id: 0,
        path: path.into(),
        size_bytes: 100,
        row_count: 1,
        min_time: 0,
        max_time: 0,
        chunk_time: 0,
        max_wal_seq: 1,
        level: 0,
        tag_ranges: Default::default(),
        value_index: Default::default(),
        deletes_applied: 0,
    };
    c.update(|_| {
        Ok(vec![CatalogOp::AddParquetFiles {
            node_id: "n".into(),
            wal_seq: 1,
            files: vec![file.clone()],
            deletes_marked: 0,
        }])
    })
    .await
    .unwrap();
    store
}

fn location() -> Location {
    Location {
        store: Arc::new(InMemory::new()),
        prefix: Path::from("backups"),
    }
}

#[tokio::test]
async fn a_file_that_stays_missing_gives_up_after_the_attempts() {
    let store = source().await;
    store
        .delete(&Path::from("data/0/0/1970-01-01/f.parquet"))
        .await
        .unwrap();
    let err = backup(&store, &Path::default(), &location())
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::TooManyChanges(5)), "{err}");
}

#[tokio::test]
async fn a_corrupt_backup_object_stops_the_restore() {
    let store = source().await;
    let at = location();
    let m = backup(&store, &Path::default(), &at).await.unwrap();
    assert_eq!((m.parquet_files.len(), m.copied_files), (1, 1));
    at.store
        .put(
            &at.path("files/data/0/0/1970-01-01/f.parquet"),
            PutPayload::from(vec![8u8; 100]),
        )
        .await
        .unwrap();
    let dest: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let err = restore(&at, &dest, &Path::default(), &RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BackupError::Corrupt { path, .. } if path.ends_with("f.parquet")),
        "{err}"
    );
}

#[tokio::test]
async fn a_restore_moves_paths_to_the_new_prefix() {
    let store = source().await;
    let at = location();
    backup(&store, &Path::default(), &at).await.unwrap();
    let dest: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = Path::from("cluster-b");
    let report = restore(&at, &dest, &prefix, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.files, 1);
    let c = Catalog::load(Arc::clone(&dest), prefix).await.unwrap();
    let state = c.state();
    let paths: Vec<&str> = state.all_files().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["cluster-b/data/0/0/1970-01-01/f.parquet"]);
    assert!(dest.head(&Path::from(paths[0])).await.is_ok());
    assert!(state.leases().is_empty());
}
