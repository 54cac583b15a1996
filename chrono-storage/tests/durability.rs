//! A commit that returned survives `kill -9` of the process.
//!
//! The test runs itself as a child process (`durability_child`), which commits in a loop and
//! prints each acknowledged commit; the parent kills it with SIGKILL, reopens the store and
//! checks that every acknowledged commit is there.

use chrono_storage::{RocksEngine, RocksOptions, Store};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

const CHILD_ENV: &str = "CHRONO_DURABILITY_CHILD_DIR";
const KS: u32 = 3;

/// The child's work: commits `value i` under key `i`, for i = 0, 1, …, printing
/// `ACK i commit_ts` once each commit returned, until it is killed.
fn commit_forever(store: &Store) {
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let mut t = store.begin();
        t.put(
            KS,
            i.to_be_bytes().to_vec(),
            format!("value {i}").into_bytes(),
        )
        .unwrap();
        let info = t.commit().unwrap().unwrap();
        writeln!(out, "ACK {i} {}", info.commit_ts).unwrap();
        out.flush().unwrap();
    }
}

/// Every acknowledged commit `(i, commit_ts)` is in `store`, as committed.
fn assert_all_there(store: &Store, acked: &[(u64, u64)]) {
    for (i, ts) in acked {
        let got = store.get_at(KS, &i.to_be_bytes(), u64::MAX).unwrap();
        assert_eq!(
            got,
            Some((*ts, format!("value {i}").into_bytes())),
            "commit {i} lost"
        );
    }
}

/// Starts this test binary's `test` as a child with `env` set to `value`, and reads its
/// first `n` acknowledged commits `(i, commit_ts)` (fewer if it stops early).
fn run_child(
    test: &str,
    env: &str,
    value: impl AsRef<std::ffi::OsStr>,
    n: usize,
) -> (std::process::Child, Vec<(u64, u64)>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let mut parts = rest.split(' ');
            let i: u64 = parts.next().unwrap().parse().unwrap();
            let ts: u64 = parts.next().unwrap().parse().unwrap();
            acked.push((i, ts));
            if acked.len() == n {
                break;
            }
        }
    }
    (child, acked)
}

#[test]
fn durability_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only does something when started by the parent test
    };
    let store = Store::open(Arc::new(
        RocksEngine::open(&dir, &RocksOptions::default()).unwrap(),
    ))
    .unwrap();
    commit_forever(&store);
}

#[test]
fn acknowledged_commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, acked) = run_child("durability_child", CHILD_ENV, dir.path(), 2000);
    // SIGKILL: no destructor, no flush runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 2000, "the child stopped early");

    let store = Store::open(Arc::new(
        RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap(),
    ))
    .unwrap();
    assert_all_there(&store, &acked);
    // The clock goes on above every recovered commit.
    let last_ts = acked.last().unwrap().1;
    assert!(store.current_ts() >= last_ts);
    let mut t = store.begin();
    t.put(KS, b"after".to_vec(), b"restart".to_vec()).unwrap();
    assert!(t.commit().unwrap().unwrap().commit_ts > store.current_ts() - 1);
    assert!(store.current_ts() > last_ts);
}

const ETCD_CHILD_ENV: &str = "CHRONO_DURABILITY_CHILD_ETCD";

fn etcd_options(endpoints: &str) -> chrono_etcd::EtcdOptions {
    chrono_etcd::EtcdOptions {
        endpoints: endpoints.split(',').map(String::from).collect(),
        prefix: "durable/".into(),
        // A killed writer's lock goes after 2 s, so the reopening below waits that long.
        lock_ttl_secs: 2,
        ..Default::default()
    }
}

#[test]
fn durability_child_etcd() {
    let Ok(endpoints) = std::env::var(ETCD_CHILD_ENV) else {
        return; // only does something when started by the parent test
    };
    let engine = chrono_etcd::EtcdEngine::open(etcd_options(&endpoints)).unwrap();
    let store = Store::open(Arc::new(engine)).unwrap();
    commit_forever(&store);
}

/// The same on etcd: the server is killed with SIGKILL mid-stream; once its lease lapses
/// another opens the database (a standby taking over after a crash) and finds every
/// acknowledged commit.
#[test]
fn acknowledged_commits_survive_kill_9_on_etcd() {
    let cluster = chrono_etcd::cluster::LocalCluster::start(3).unwrap();
    let endpoints = cluster.endpoints().join(",");
    let (mut child, acked) = run_child("durability_child_etcd", ETCD_CHILD_ENV, &endpoints, 300);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "the child stopped early");

    let engine = chrono_etcd::EtcdEngine::open(etcd_options(&endpoints)).unwrap();
    let store = Store::open(Arc::new(engine)).unwrap();
    assert_all_there(&store, &acked);
    assert!(store.current_ts() >= acked.last().unwrap().1);
}
