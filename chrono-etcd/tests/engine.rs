//! The etcd engine on a 3-member loopback cluster: the engine contract every engine meets,
//! snapshot scans over pages, commit size limits, the writer's fence, and the MVCC store
//! running on it.

use std::sync::Arc;
use std::time::Duration;

use chrono_etcd::cluster::LocalCluster;
use chrono_etcd::{EtcdEngine, EtcdOptions};
use chrono_storage::{ColumnFamily, Engine, Store, WriteBatch};

fn options(cluster: &LocalCluster, prefix: &str) -> EtcdOptions {
    EtcdOptions {
        endpoints: cluster.endpoints(),
        prefix: prefix.into(),
        page_size: 64,
        ..EtcdOptions::default()
    }
}

#[test]
fn the_etcd_engine_meets_the_engine_contract_and_isolates_prefixes() {
    let cluster = LocalCluster::start(3).unwrap();
    let a = EtcdEngine::open(options(&cluster, "db-a/")).unwrap();
    chrono_storage::conformance::check_engine(&a);
    // A second database on the same cluster sees none of the first one's keys.
    let b = EtcdEngine::open(options(&cluster, "db-b/")).unwrap();
    chrono_storage::conformance::check_engine(&b);
    assert_eq!(
        b.get(ColumnFamily::Meta, b"k").unwrap().as_deref(),
        Some(&b"default"[..])
    );
}

#[test]
fn a_scan_reads_one_snapshot_across_pages() {
    let cluster = LocalCluster::start(3).unwrap();
    let engine = EtcdEngine::open(options(&cluster, "snap/")).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..200u32 {
        b.put(
            ColumnFamily::Latest,
            i.to_be_bytes().to_vec(),
            b"old".to_vec(),
        );
    }
    engine.write(b).unwrap();
    let mut c = engine.cursor(ColumnFamily::Latest).unwrap();
    c.seek(&[]);
    // After the first page, every key changes and new keys arrive: the scan does not see it.
    let mut b = WriteBatch::new();
    for i in 0..300u32 {
        b.put(
            ColumnFamily::Latest,
            i.to_be_bytes().to_vec(),
            b"new".to_vec(),
        );
    }
    engine.write(b).unwrap();
    let mut n = 0;
    while c.valid() {
        assert_eq!(c.value(), b"old", "key {n}");
        n += 1;
        c.next();
    }
    c.status().unwrap();
    assert_eq!(n, 200);
}

#[test]
fn a_commit_over_the_size_limits_is_refused_by_name_and_writes_nothing() {
    let cluster = LocalCluster::start(1).unwrap();
    let mut o = options(&cluster, "limits/");
    o.max_txn_ops = 10;
    o.max_txn_bytes = 1000;
    let engine = EtcdEngine::open(o).unwrap();
    let mut b = WriteBatch::new();
    for i in 0..11u8 {
        b.put(ColumnFamily::Latest, vec![i], vec![i]);
    }
    let e = engine.write(b).unwrap_err().to_string();
    assert!(e.contains("database.etcd.max_txn_ops"), "{e}");
    let mut b = WriteBatch::new();
    b.put(ColumnFamily::Latest, vec![1], vec![0; 2000]);
    let e = engine.write(b).unwrap_err().to_string();
    assert!(e.contains("database.etcd.max_txn_bytes"), "{e}");
    assert_eq!(engine.get(ColumnFamily::Latest, &[1]).unwrap(), None);
}

#[test]
fn one_writer_per_database_and_a_standby_takes_over() {
    let cluster = LocalCluster::start(3).unwrap();
    let first = EtcdEngine::open(options(&cluster, "fenced/")).unwrap();
    let mut o = options(&cluster, "fenced/");
    o.lock_wait_ms = 500;
    let e = EtcdEngine::open(o.clone()).err().unwrap().to_string();
    assert!(e.contains("another ChronoDB server"), "{e}");
    // It names the holder (this process) and the ways out.
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    assert!(e.contains("database.etcd.concurrent_servers"), "{e}");
    assert!(e.contains("--connect"), "{e}");
    // The first one stops: its lock goes with it, and the standby opens.
    drop(first);
    o.lock_wait_ms = 5_000;
    let second = EtcdEngine::open(o).unwrap();
    let mut b = WriteBatch::new();
    b.put(ColumnFamily::Meta, b"x".to_vec(), b"1".to_vec());
    second.write(b).unwrap();
}

#[test]
fn the_store_runs_on_etcd_and_keeps_every_acknowledged_commit_through_member_failures() {
    let mut cluster = LocalCluster::start(3).unwrap();
    let engine = Arc::new(EtcdEngine::open(options(&cluster, "store/")).unwrap());
    let store = Store::open(engine.clone()).unwrap();
    let mut acknowledged = Vec::new();
    let commit = |store: &Store, i: u32| -> u64 {
        let mut t = store.begin();
        t.put(1, i.to_be_bytes().to_vec(), format!("v{i}").into_bytes())
            .unwrap();
        t.commit().unwrap().unwrap().commit_ts
    };
    for i in 0..20 {
        acknowledged.push((i, commit(&store, i)));
    }
    // A follower dies; then the leader: a majority is left each time, and commits go on.
    let leader = cluster.leader().unwrap();
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    for i in 20..40 {
        acknowledged.push((i, commit(&store, i)));
    }
    cluster.restart(follower).unwrap();
    cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
    cluster.kill(leader);
    for i in 40..60 {
        acknowledged.push((i, commit(&store, i)));
    }
    cluster.restart(leader).unwrap();
    cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
    // Every acknowledged commit is there, as of its own time too.
    drop(store);
    let store = Store::open(engine).unwrap();
    for &(i, ts) in &acknowledged {
        let got = store.get_at(1, &i.to_be_bytes(), ts).unwrap();
        assert_eq!(
            got.map(|(_, v)| v),
            Some(format!("v{i}").into_bytes()),
            "commit {i}"
        );
    }
    // The member that was down through the last twenty commits caught up: read through it
    // alone (a reader beside the writer), it has them all.
    let only = EtcdOptions {
        endpoints: vec![cluster.endpoints()[leader].clone()],
        concurrent_servers: true,
        ..options(&cluster, "store/")
    };
    let reader = Store::open(Arc::new(EtcdEngine::open(only).unwrap())).unwrap();
    for &(i, ts) in &acknowledged {
        let got = reader.get_at(1, &i.to_be_bytes(), ts).unwrap();
        assert_eq!(
            got.map(|(_, v)| v),
            Some(format!("v{i}").into_bytes()),
            "commit {i} through the restarted member"
        );
    }
}

/// Round trips are what an etcd-backed database pays for: a point SELECT by primary key
/// is one read, a scan one read per page, a multi-row INSERT one read and one write.
#[test]
fn round_trips_per_statement() {
    let cluster = LocalCluster::start(1).unwrap();
    let engine = Arc::new(EtcdEngine::open(options(&cluster, "trips/")).unwrap());
    let db = chrono_sql::Database::new(Store::open(engine.clone()).unwrap());
    db.execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT)")
        .unwrap();
    let rows: Vec<String> = (0..500).map(|i| format!("({i}, 'u{i}')")).collect();
    // The catalog read is kept from here on.
    db.execute("SELECT name FROM users WHERE id = 1").unwrap();
    let before = engine.requests();
    db.execute(&format!("INSERT INTO users VALUES {}", rows.join(",")))
        .unwrap();
    let insert = engine.requests() - before;
    assert!(insert <= 4, "a 500-row INSERT took {insert} requests");
    let before = engine.requests();
    db.execute("SELECT name FROM users WHERE id = 7").unwrap();
    assert_eq!(engine.requests() - before, 1, "a point SELECT is one read");
    let before = engine.requests();
    db.execute("SELECT COUNT(*) FROM users WHERE name > 'u3'")
        .unwrap();
    let pages = engine.requests() - before;
    assert!(
        pages <= 500 / 64 + 2,
        "a scan of 500 rows took {pages} requests"
    );
}
