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

fn open(dir: &std::path::Path, config: impl FnOnce(&mut Config)) -> ChronoDb {
    let mut c = Config::default();
    c.database.data_file = dir.join("db");
    c.features.ml_optimizer.enabled = false;
    config(&mut c);
    ChronoDb::open_with_config(c).unwrap()
}

/// Makes `table` with `rows` rows and updates every row `rounds` times; returns each
/// round's commit time (round r sets `v = r`).
fn table_with_rounds(db: &ChronoDb, table: &str, rows: usize, rounds: i64) -> Vec<u64> {
    db.execute(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT)"
    ))
    .unwrap();
    let values: Vec<String> = (0..rows).map(|i| format!("({i}, 0)")).collect();
    db.execute(&format!("INSERT INTO {table} VALUES {}", values.join(", ")))
        .unwrap();
    (1..=rounds)
        .map(|r| {
            match db
                .execute(&format!("UPDATE {table} SET v = {r}"))
                .unwrap()
                .remove(0)
            {
                Outcome::Affected {
                    commit_ts: Some(ts),
                    ..
                } => ts,
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

fn v_at(db: &ChronoDb, table: &str, ts: u64) -> chrono_server::Result<i64> {
    let out = db.execute_with_params(
        &format!("SELECT v FROM {table} AS OF TIMESTAMP ? WHERE id = 1"),
        &[Value::Timestamp(ts as i64)],
    )?;
    match out.into_iter().next() {
        Some(Outcome::Rows { rows, .. }) => match rows.first().and_then(|r| r.first()) {
            Some(Value::Int(v)) => Ok(*v),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// The versions of a table's rows.
fn versions_of(db: &ChronoDb, table: &str) -> u64 {
    let store = db.database().store();
    let txn = store.begin_read_only(u64::MAX);
    let def =
        chrono_sql::catalog::require_table(chrono_sql::catalog::Snapshot::Transaction(&txn), table)
            .unwrap();
    summarize(store, None)
        .unwrap()
        .get(&def.keyspace)
        .map_or(0, |h| h.versions)
}

const DAY: u64 = 86_400 * 1_000_000;

#[test]
fn a_table_keeps_its_own_retention_longer_or_shorter_than_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), |c| {
        let tt = &mut c.features.time_travel;
        tt.retention_days = 1;
        tt.table_retention_days.insert("Ledger".into(), 30);
        tt.table_retention_days.insert("keep".into(), 0);
        tt.table_retention_days.insert("scratch".into(), 0);
    });
    let accounts = table_with_rounds(&db, "accounts", 20, 10);
    let ledger = table_with_rounds(&db, "ledger", 20, 10);
    let keep = table_with_rounds(&db, "keep", 20, 10);
    let last = *keep.last().unwrap();

    // Two days on: the default window (1 day) lost everything but the current rows;
    // the ledger (30 days) and `keep` (forever) still read as they were.
    let gc = db
        .collect_history_at(Timestamp::from_micros(last + 2 * DAY))
        .unwrap();
    assert!(gc.moved);
    assert!(v_at(&db, "accounts", accounts[2]).is_err());
    assert_eq!(v_at(&db, "accounts", last).unwrap(), 10);
    for (r, &ts) in ledger.iter().enumerate() {
        assert_eq!(v_at(&db, "ledger", ts).unwrap(), r as i64 + 1);
    }
    assert_eq!(v_at(&db, "keep", keep[0]).unwrap(), 1);
    assert_eq!(
        versions_of(&db, "accounts"),
        20,
        "one version per row is left"
    );
    assert_eq!(versions_of(&db, "ledger"), 20 * 11);

    // Thirty-one days on, the ledger's window passed too; `keep` still reads round 1.
    db.collect_history_at(Timestamp::from_micros(last + 31 * DAY))
        .unwrap();
    let err = v_at(&db, "ledger", ledger[0]).unwrap_err().to_string();
    assert!(err.contains("before the earliest readable time"), "{err}");
    assert_eq!(versions_of(&db, "ledger"), 20);
    assert_eq!(v_at(&db, "keep", keep[0]).unwrap(), 1);
    assert_eq!(versions_of(&db, "keep"), 20 * 11);
    let report = db.verify_audit_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);

    // Taken out of the configuration, `keep` joins the default window: it moves forward,
    // never back; the horizons survive a reopen.
    drop(db);
    let db = open(dir.path(), |c| c.features.time_travel.retention_days = 1);
    assert_eq!(v_at(&db, "keep", keep[0]).unwrap(), 1);
    db.collect_history_at(Timestamp::from_micros(last + 32 * DAY))
        .unwrap();
    assert!(v_at(&db, "keep", keep[0]).is_err());
    assert!(v_at(&db, "ledger", ledger[0]).is_err(), "never back");
    assert!(db.verify_audit_integrity().unwrap().is_ok());
}

fn seconds(ts: u64) -> String {
    format!("{}.{:06}", ts / 1_000_000, ts % 1_000_000)
}

#[test]
fn delete_history_purges_one_table_is_audited_and_respects_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), |c| c.features.time_travel.retention_days = 0);
    let t = table_with_rounds(&db, "accounts", 30, 10);
    let other = table_with_rounds(&db, "other", 5, 3);
    assert_eq!(versions_of(&db, "accounts"), 30 * 11);

    // Not inside a transaction, not past a reader, not for a table that is not there.
    let mut session = db.session();
    session.execute("BEGIN").unwrap();
    let e = session
        .execute(&format!(
            "DELETE HISTORY FROM accounts BEFORE SYSTEM_TIME {}",
            seconds(t[4])
        ))
        .unwrap_err();
    assert!(e.to_string().contains("outside a transaction"), "{e}");
    session.execute("ROLLBACK").unwrap();
    drop(session);
    let pin = db.database().store().pin(t[1]).unwrap();
    let e = db
        .execute(&format!(
            "DELETE HISTORY FROM accounts BEFORE SYSTEM_TIME {}",
            seconds(t[4])
        ))
        .unwrap_err();
    assert!(e.to_string().contains("still read"), "{e}");
    drop(pin);
    assert!(db.execute("DELETE HISTORY FROM nope").is_err());
    assert_eq!(versions_of(&db, "accounts"), 30 * 11, "nothing went yet");

    let audited = db.audit_trail().unwrap().size();
    db.execute_with_params(
        "DELETE HISTORY FROM accounts BEFORE SYSTEM_TIME ?",
        &[Value::Timestamp(t[4] as i64)],
    )
    .unwrap();
    // Rounds 5–10 read as before; before round 5 is the named error; the other table is
    // untouched.
    for (r, &ts) in t.iter().enumerate().skip(4) {
        assert_eq!(v_at(&db, "accounts", ts).unwrap(), r as i64 + 1);
    }
    let err = v_at(&db, "accounts", t[2]).unwrap_err().to_string();
    assert!(
        err.contains("before the earliest readable time")
            && err.contains(&Timestamp::from_micros(t[4]).to_string()),
        "{err}"
    );
    assert_eq!(v_at(&db, "other", other[0]).unwrap(), 1);
    assert_eq!(versions_of(&db, "accounts"), 30 * 6, "rounds 5–10 are left");
    assert_eq!(versions_of(&db, "other"), 5 * 4);

    // The purge is in the audit trail (a catalog entry, with the statement), and so is the
    // move of the horizons it made; the trail still verifies.
    let trail = db.audit_trail().unwrap();
    assert_eq!(trail.size(), audited + 2);
    for seq in [audited + 1, audited + 2] {
        let tx = trail.transaction(seq).unwrap();
        assert_eq!(tx.entries, 1);
        let entry = trail.entry(tx.first_entry).unwrap();
        assert_eq!(
            (entry.keyspace, entry.table.as_str()),
            (0, "catalog"),
            "{entry:?}"
        );
    }
    let report = db.verify_audit_integrity().unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert!(report.collected >= 30 * 4, "{}", report.collected);

    // Without BEFORE: everything but the current rows.
    db.execute("DELETE HISTORY FROM accounts").unwrap();
    assert_eq!(versions_of(&db, "accounts"), 30);
    assert!(v_at(&db, "accounts", t[8]).is_err());
    let now = db.database().store().current_ts();
    assert_eq!(v_at(&db, "accounts", now).unwrap(), 10);

    // Kept across a reopen.
    drop(db);
    let db = open(dir.path(), |c| c.features.time_travel.retention_days = 0);
    assert!(v_at(&db, "accounts", t[8]).is_err());
    assert_eq!(v_at(&db, "other", other[0]).unwrap(), 1);
    assert!(db.verify_audit_integrity().unwrap().is_ok());
}

/// An attacker with the files deletes old versions and raises the GC horizon to pass the
/// deletion off as retention: the horizons are an audited row, so the forgery is itself
/// a failure, and the old unaudited metadata horizon is not believed.
#[test]
fn a_forged_horizon_does_not_hide_deleted_versions_from_the_audit() {
    use chrono_storage::{WriteBatch, encoding};
    for forge_row in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), |c| c.features.time_travel.retention_days = 0);
        let t = table_with_rounds(&db, "accounts", 5, 10);
        assert!(db.verify_audit_integrity().unwrap().is_ok());
        let store = db.database().store();
        let txn = store.begin_read_only(u64::MAX);
        let def = chrono_sql::catalog::require_table(
            chrono_sql::catalog::Snapshot::Transaction(&txn),
            "accounts",
        )
        .unwrap();
        drop(txn);
        let key = encoding::encode_key(&[Value::Int(1)]);
        let mut batch = WriteBatch::new();
        for &ts in &t[..5] {
            batch.delete(
                ColumnFamily::Versions,
                encoding::version_key(def.keyspace, &key, ts),
            );
        }
        let forged = chrono_storage::Horizons {
            default: t[5],
            ..Default::default()
        };
        if forge_row {
            let hkey = encoding::encode_key(&[Value::Text("horizons".into())]);
            let row = chrono_storage::record::encode(1, &forged);
            let ts = t[9] + 1;
            batch.put(
                ColumnFamily::Versions,
                encoding::version_key(0, &hkey, ts),
                encoding::encode_version_value(1, &row),
            );
            batch.put(
                ColumnFamily::Latest,
                encoding::latest_key(0, &hkey),
                encoding::encode_latest_value(ts, 1, &row),
            );
        } else {
            let mut raw = Vec::new();
            encoding::encode_u64(&mut raw, forged.default);
            batch.put(ColumnFamily::Meta, encoding::meta_key("gc_horizon"), raw);
        }
        store.engine().write(batch).unwrap();
        let report = db.verify_audit_integrity().unwrap();
        assert!(!report.is_ok(), "forged row: {forge_row}: {report:?}");
    }
}
