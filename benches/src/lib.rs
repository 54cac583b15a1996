//! Shared set-up for ChronoDB's criterion benches: building databases with a known
//! history, in temporary directories on RocksDB, and the contenders compared.

/// The benches run ChronoDB with the allocator its server binary uses (see the
/// `chronodb` binary's `main.rs`); SQLite, C code, allocates with the C library's malloc
/// either way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod contenders;
pub mod grpc;
pub mod workloads;

use std::sync::Arc;

use chrono_server::{ChronoDb, Outcome};
use chrono_storage::{RocksEngine, RocksOptions, Store};

/// A store on RocksDB in a temporary directory (kept alive by the returned guard).
pub fn rocks_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = RocksEngine::open(dir.path(), &RocksOptions::default()).expect("open RocksDB");
    (Store::open(Arc::new(engine)).expect("open store"), dir)
}

/// Writes `versions` versions of each of `keys` keys (key i → "i:version"), one commit per
/// round over all keys; returns the commit timestamp of each round.
pub fn store_with_history(store: &Store, keyspace: u32, keys: u64, versions: u64) -> Vec<u64> {
    let mut rounds = Vec::with_capacity(versions as usize);
    for v in 0..versions {
        let mut txn = store.begin();
        for k in 0..keys {
            txn.put(
                keyspace,
                k.to_be_bytes().to_vec(),
                format!("{k}:{v}").into_bytes(),
            )
            .expect("put");
        }
        rounds.push(
            txn.commit()
                .expect("commit")
                .expect("a write commits")
                .commit_ts,
        );
    }
    rounds
}

/// A SQL database with table `accounts(id, balance)` of `rows` rows, each updated so it has
/// `versions` versions; returns the commit timestamp after each round.
pub fn sql_with_history(rows: u64, versions: u64) -> (ChronoDb, Vec<u64>) {
    let db = ChronoDb::open_temporary().expect("open");
    db.execute("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
        .expect("create");
    let mut stamps = Vec::new();
    let values: Vec<String> = (0..rows).map(|i| format!("({i}, 0)")).collect();
    for chunk in values.chunks(1000) {
        db.execute(&format!("INSERT INTO accounts VALUES {}", chunk.join(", ")))
            .expect("insert");
    }
    stamps.push(db.database().store().current_ts());
    for _ in 1..versions {
        let out = db
            .execute("UPDATE accounts SET balance = balance + 1")
            .expect("update");
        if let Some(Outcome::Affected {
            commit_ts: Some(ts),
            ..
        }) = out.first()
        {
            stamps.push(*ts);
        }
    }
    (db, stamps)
}

/// Microseconds as the Unix seconds `AS OF TIMESTAMP` reads.
/// A commit timestamp as exact Unix seconds, for `AS OF TIMESTAMP`.
pub fn seconds(ts: u64) -> String {
    chrono_storage::Timestamp::from_micros(ts).seconds()
}

/// Table sizes a bench runs at: the comma-separated numbers in environment variable `var`
/// (`_` allowed as a digit separator), else `default`.
pub fn sizes_from_env(var: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(var)
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}
