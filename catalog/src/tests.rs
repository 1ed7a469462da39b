use super::*;
use object_store::memory::InMemory;

fn change(db: &str, table: &str, cols: &[(&str, ColumnKind)]) -> SchemaChange {
    SchemaChange {
        db: db.to_string(),
        tables: vec![TableChange {
            name: table.to_string(),
            columns: cols.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
        }],
    }
}

const F: ColumnKind = ColumnKind::Field(FieldType::Float);
const I: ColumnKind = ColumnKind::Field(FieldType::Integer);

#[tokio::test]
async fn creates_and_reloads() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let c = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let uuid = c.uuid();
    assert!(!uuid.is_nil());
    c.ensure(&change(
        "db",
        "cpu",
        &[("host", ColumnKind::Tag), ("usage", F)],
    ))
    .await
    .unwrap();
    let s = c
        .ensure(&change(
            "db",
            "cpu",
            &[("host", ColumnKind::Tag), ("idle", F)],
        ))
        .await
        .unwrap();
    let t = s.db("db").unwrap().table("cpu").unwrap();
    let names: Vec<_> = t.columns().iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, ["host", "usage", "time", "idle"]);
    // Nothing to do: no new transaction.
    let seq = s.seq;
    let s = c
        .ensure(&change("db", "cpu", &[("usage", F)]))
        .await
        .unwrap();
    assert_eq!(s.seq, seq);

    let c2 = Catalog::load(store, Path::default()).await.unwrap();
    assert_eq!(c2.uuid(), uuid);
    assert_eq!(c2.state().seq, seq);
    assert_eq!(
        c2.state()
            .db("db")
            .unwrap()
            .table("cpu")
            .unwrap()
            .columns()
            .len(),
        4
    );
}

#[tokio::test]
async fn checkpoint_then_logs() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let c = Catalog::load(Arc::clone(&store), Path::from("pfx"))
        .await
        .unwrap();
    for i in 0..(CHECKPOINT_EVERY + 5) {
        c.ensure(&change("db", &format!("t{i}"), &[("f", F)]))
            .await
            .unwrap();
    }
    assert!(
        store
            .head(&Path::from("pfx/catalog/checkpoint.json"))
            .await
            .is_ok()
    );
    let c2 = Catalog::load(store, Path::from("pfx")).await.unwrap();
    assert_eq!(c2.state().seq, c.state().seq);
    assert_eq!(
        c2.state().db("db").unwrap().tables().count(),
        (CHECKPOINT_EVERY + 5) as usize
    );
}

/// Two catalogs on one store add columns at once. Every change lands exactly
/// once, and a column both add with different types has one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_converge() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let b = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    assert_eq!(a.uuid(), b.uuid());
    let n = 40;
    let run = |c: Arc<Catalog>, who: &'static str, kind: ColumnKind| {
        tokio::spawn(async move {
            for i in 0..n {
                c.ensure(&change(
                    "db",
                    "m",
                    &[(&format!("{who}_{i}"), F), (&format!("shared_{i}"), kind)],
                ))
                .await
                .unwrap();
            }
        })
    };
    let ha = run(Arc::clone(&a), "a", F);
    let hb = run(Arc::clone(&b), "b", I);
    ha.await.unwrap();
    hb.await.unwrap();
    let sa = a.sync().await.unwrap();
    let sb = b.sync().await.unwrap();
    assert_eq!(sa.seq, sb.seq);
    let ta = sa.db("db").unwrap().table("m").unwrap();
    let tb = sb.db("db").unwrap().table("m").unwrap();
    // 2n private columns, n shared ones and time, each exactly once.
    assert_eq!(ta.columns().len(), 3 * n + 1);
    assert_eq!(ta.columns(), tb.columns());
    let mut names: Vec<_> = ta.columns().iter().map(|c| c.name.to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3 * n + 1);
    for i in 0..n {
        let k = ta.column(&format!("shared_{i}")).unwrap().kind;
        assert!(k == F || k == I);
    }
    // A fresh reader replays the same log.
    let c = Catalog::load(store, Path::default()).await.unwrap();
    assert_eq!(
        c.state().db("db").unwrap().table("m").unwrap().columns(),
        ta.columns()
    );
}

#[test]
fn db_names() {
    // InfluxDB 3 Core's rule, its own cases among them.
    for ok in [
        "a",
        "1",
        "db",
        "my-db",
        "A1",
        "telegraf",
        "a-",
        "my_db",
        "foo/bar",
        "1/2",
        "1/-",
        "1/_",
        &"x".repeat(64),
    ] {
        assert!(validate_db_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "_a",
        "/",
        "a b",
        "a.b",
        "ä",
        "foo/",
        "foo/bar/baz",
        "foo///",
        "foo?bar",
        "foo#bar",
        "foo@bar/baz",
        &"x".repeat(65),
    ] {
        assert!(validate_db_name(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn tokens_are_stored_as_hashes_and_shared() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let b = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let secret = tokens::generate_token().unwrap();
    let create = |name: &str| {
        let name: Arc<str> = Arc::from(name);
        let hash = tokens::hash_token(&secret);
        move |s: &CatalogState| {
            if s.token_by_name(&name).is_some() {
                return Err(CatalogError::AlreadyExists(format!("token {name} exists")));
            }
            Ok(vec![CatalogOp::CreateToken {
                token: TokenInfo {
                    id: s.next_token_id(),
                    name: Arc::clone(&name),
                    hash: hash.clone(),
                    created_at_ms: 1,
                    expiry_ms: None,
                    admin: true,
                    permissions: vec![],
                },
            }])
        }
    };
    a.update(create("_admin")).await.unwrap();
    // b has not synced, plans against its stale state, loses the race,
    // re-plans against the winner's state and refuses the duplicate.
    let e = b.update(create("_admin")).await.unwrap_err();
    assert!(matches!(e, CatalogError::AlreadyExists(_)), "{e}");
    let s = b.state();
    let t = s.token_by_hash(&tokens::hash_token(&secret)).unwrap();
    assert_eq!(&*t.name, "_admin");
    assert!(s.token_by_hash(&tokens::hash_token("apiv3_nope")).is_none());
    // The secret itself is nowhere in the store.
    let files: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(None))
        .await
        .unwrap();
    for f in files {
        let data = store.get(&f.location).await.unwrap().bytes().await.unwrap();
        assert!(!String::from_utf8_lossy(&data).contains(&secret[6..]));
    }
    let id = t.id;
    a.update(|_| Ok(vec![CatalogOp::DeleteToken { id }]))
        .await
        .unwrap();
    let c = Catalog::load(store, Path::default()).await.unwrap();
    assert_eq!(c.state().tokens().count(), 0);
}

/// Soft deletes free names; a reader replaying the log (not a checkpoint)
/// sees the same state, including a re-created database and table.
#[tokio::test]
async fn soft_deletes_replay_and_free_names() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let c = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    let s = c.ensure(&change("db", "cpu", &[("v", F)])).await.unwrap();
    let (db_id, table_id) = (
        s.db("db").unwrap().id,
        s.db("db").unwrap().table("cpu").unwrap().id,
    );
    c.update(|_| {
        Ok(vec![CatalogOp::SoftDeleteTable {
            db_id,
            table_id,
            new_name: "cpu-20250101T000000".into(),
            deleted_at_ns: 5,
            hard_delete_at_ns: None,
        }])
    })
    .await
    .unwrap();
    c.ensure(&change("db", "cpu", &[("v", I)])).await.unwrap();
    c.update(|_| {
        Ok(vec![CatalogOp::SoftDeleteDatabase {
            db_id,
            new_name: "db-20250101T000000".into(),
            deleted_at_ns: 7,
            hard_delete_at_ns: Some(100),
        }])
    })
    .await
    .unwrap();
    let s = c.ensure(&change("db", "mem", &[("v", F)])).await.unwrap();

    let reader = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    for s in [s, reader.state()] {
        let db = s.db("db").unwrap();
        assert_ne!(db.id, db_id, "a new database took the name");
        assert!(db.table("mem").is_some() && db.table("cpu").is_none());
        let old = s.db_by_id(db_id).unwrap();
        assert_eq!(&*old.name, "db-20250101T000000");
        assert_eq!(old.deleted.as_ref().unwrap().hard_delete_at_ns, Some(100));
        assert_eq!(old.tables().count(), 1, "the re-created cpu");
        assert_eq!(old.all_tables().count(), 2);
        assert_eq!(old.table("cpu").unwrap().column("v").unwrap().kind, I);
        assert!(old.wal_voided("cpu", 5) && !old.wal_voided("cpu", 6));
        assert!(s.wal_db_voided("db", 7) && !s.wal_db_voided("db", 8));
        assert_eq!(s.databases().count(), 1);
    }
}

/// A transaction copies only the schemas it changes: the others stay the
/// same `Arc`s (queries reuse plans while their database's schema does),
/// and the indexes of a reloaded catalog are rebuilt.
#[tokio::test]
async fn transactions_keep_unchanged_schemas() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let c = Catalog::load(Arc::clone(&store), Path::default())
        .await
        .unwrap();
    c.ensure(&change(
        "a",
        "cpu",
        &[("host", ColumnKind::Tag), ("usage", F)],
    ))
    .await
    .unwrap();
    c.ensure(&change("a", "mem", &[("free", I)])).await.unwrap();
    let before = c
        .ensure(&change("b", "cpu", &[("usage", F)]))
        .await
        .unwrap();
    let after = c.ensure(&change("b", "cpu", &[("idle", F)])).await.unwrap();
    assert!(after.seq > before.seq);
    assert!(Arc::ptr_eq(before.db("a").unwrap(), after.db("a").unwrap()));
    assert!(!Arc::ptr_eq(
        before.db("b").unwrap(),
        after.db("b").unwrap()
    ));
    let after2 = c.ensure(&change("a", "mem", &[("used", I)])).await.unwrap();
    let (cpu, cpu2) = (
        after.db("a").unwrap().table("cpu").unwrap(),
        after2.db("a").unwrap().table("cpu").unwrap(),
    );
    assert!(Arc::ptr_eq(cpu, cpu2));
    assert!(
        after2
            .db("a")
            .unwrap()
            .table("mem")
            .unwrap()
            .column("used")
            .is_some()
    );

    let reloaded = Catalog::load(store, Path::default()).await.unwrap().state();
    let a = reloaded.db("a").unwrap();
    assert!(a.table("cpu").unwrap().column("usage").is_some());
    assert!(a.table("mem").unwrap().column("used").is_some());
    assert!(
        reloaded
            .db("b")
            .unwrap()
            .table("cpu")
            .unwrap()
            .column("idle")
            .is_some()
    );
}
