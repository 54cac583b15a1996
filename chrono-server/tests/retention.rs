//! Retention with a controllable clock: compaction removes the versions older than
//! `retention_days` (bytes on disk go down), AS OF inside the window agrees with what was
//! read before, below it is an error naming the earliest readable time, a pinned reader is
//! never broken, and the audit trail still verifies.

use chrono_server::{ChronoDb, Config, Outcome};
use chrono_storage::history::summarize;
use chrono_storage::{ColumnFamily, Timestamp, Value};

fn balance_at(db: &ChronoDb, id: i64, ts: u64) -> chrono_server::Result<i64> {
    let out = db.execute_with_params(
        "SELECT balance FROM accounts AS OF TIMESTAMP ? WHERE id = ?",
        &[Value::Timestamp(ts as i64), Value::Int(id)],
    )?;
    let Some(Outcome::Rows { rows, .. }) = out.into_iter().next() else {
        panic!("rows expected")
    };
    match rows.first().and_then(|r| r.first()) {
        Some(Value::Int(b)) => Ok(*b),
        other => panic!("{other:?}"),
    }
}

fn versions_on_disk(db: &ChronoDb) -> u64 {
    db.database()
        .store()
        .engine()
        .state()
        .iter()
        .find(|f| f.name == ColumnFamily::Versions.name())
        .map_or(0, |f| f.disk_bytes)
}

#[test]
fn retention_collects_old_versions_keeps_the_window_and_never_breaks_a_pinned_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.data_file = dir.path().join("db");
    config.features.time_travel.retention_days = 1;
    config.features.ml_optimizer.enabled = false;
    let db = ChronoDb::open_with_config(config).unwrap();
    db.execute("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT, note TEXT)")
        .unwrap();
    let rows: Vec<String> = (0..300)
        .map(|i| format!("({i}, 0, '{}')", "x".repeat(200)))
        .collect();
    db.execute(&format!("INSERT INTO accounts VALUES {}", rows.join(", ")))
        .unwrap();
    // Twenty rounds of updates; after each, the commit time and what row 7 held.
    let mut rounds = Vec::new();
    for round in 1..=20i64 {
        let out = db
            .execute(&format!("UPDATE accounts SET balance = {round}"))
            .unwrap();
        let Some(Outcome::Affected {
            commit_ts: Some(ts),
            ..
        }) = out.into_iter().next()
        else {
            panic!("a commit")
        };
        rounds.push((ts, round));
    }
    let store = db.database().store().clone();
    store.engine().compact().unwrap();
    let disk_before = versions_on_disk(&db);
    let total_before: u64 = summarize(&store, None)
        .unwrap()
        .values()
        .map(|h| h.versions)
        .sum();

    // The clock moves on to a day after round 10: rounds 1–9 fall outside the window. A
    // reader pinned at round 5 (a long export) holds the horizon there first.
    let (t5, t10) = (rounds[4].0, rounds[9].0);
    let now = Timestamp::from_micros(t10 + 86_400 * 1_000_000);
    let pin = store.pin(t5).unwrap();
    let gc = db.collect_history_at(now).unwrap();
    assert_eq!(gc.horizon, t5, "never past the pinned reader");
    assert_eq!(
        balance_at(&db, 7, t5).unwrap(),
        5,
        "the pinned reader still reads"
    );
    drop(pin);
    let gc = db.collect_history_at(now).unwrap();
    assert_eq!(gc.horizon, t10);
    assert!(gc.moved);

    // Inside the window every round reads as before; the horizon itself reads round 10.
    for &(ts, round) in &rounds[9..] {
        assert_eq!(balance_at(&db, 7, ts).unwrap(), round);
    }
    // Below it: a clear error naming the earliest readable time.
    let err = balance_at(&db, 7, rounds[2].0).unwrap_err().to_string();
    assert!(
        err.contains("before the earliest readable time")
            && err.contains(&Timestamp::from_micros(t10).to_string()),
        "{err}"
    );
    assert!(store.pin(t5).is_err(), "a pin below the horizon is refused");

    // The versions are gone from disk: per key, 11 of 21 remain (the 10 after the horizon
    // and the one a read at the horizon needs).
    let total_after: u64 = summarize(&store, None)
        .unwrap()
        .values()
        .map(|h| h.versions)
        .sum();
    assert!(
        total_after < total_before * 6 / 10,
        "{total_before} → {total_after}"
    );
    let disk_after = versions_on_disk(&db);
    assert!(
        disk_after < disk_before,
        "bytes on disk: {disk_before} → {disk_after}"
    );
    // The current state is untouched, and the audit trail verifies, counting what went.
    let Outcome::Rows { rows, .. } = db
        .execute("SELECT COUNT(*), MIN(balance), MAX(balance) FROM accounts")
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    assert_eq!(
        rows[0],
        vec![Value::Int(300), Value::Int(20), Value::Int(20)]
    );
    let report = db.verify_audit_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert!(report.collected >= 300 * 9, "{}", report.collected);

    // The horizon survives a reopen.
    drop(store);
    drop(db);
    let mut config = Config::default();
    config.database.data_file = dir.path().join("db");
    config.features.ml_optimizer.enabled = false;
    let db = ChronoDb::open_with_config(config).unwrap();
    assert_eq!(db.database().store().gc_horizon(), t10);
    assert!(balance_at(&db, 7, rounds[0].0).is_err());
    assert!(db.verify_audit_integrity().unwrap().is_ok());
}
