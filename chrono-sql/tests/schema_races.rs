//! DDL racing DML: a writer that planned against one definition of a table never commits
//! against another. Threads insert and update while indexes are built and columns added;
//! afterwards every index agrees with the rows and every constraint holds. Each race runs
//! several rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread;

use chrono_sql::{Database, Error};
use chrono_storage::Value;

/// Runs `sql` until it does not conflict (a conflict is the expected answer to a race).
fn until_committed(db: &Database, sql: &str, params: &[Value]) -> chrono_sql::Result<()> {
    let mut s = db.session();
    loop {
        match s.execute_with_params(sql, params) {
            Err(Error::Conflict(_)) => continue,
            other => return other.map(|_| ()),
        }
    }
}

fn writers(
    db: &Database,
    stop: &Arc<AtomicBool>,
    next: &Arc<AtomicI64>,
) -> Vec<thread::JoinHandle<()>> {
    (0..3)
        .map(|w| {
            let db = db.clone();
            let stop = stop.clone();
            let next = next.clone();
            thread::spawn(move || {
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    until_committed(
                        &db,
                        "INSERT INTO t (id, v) VALUES (?, ?)",
                        &[Value::Int(id), Value::Int(id * 10)],
                    )
                    .unwrap();
                    if i % 3 == w {
                        // Move an earlier row's value to a fresh one (stays unique).
                        let fresh = next.fetch_add(1, Ordering::Relaxed);
                        until_committed(
                            &db,
                            "UPDATE t SET v = ? WHERE id = ?",
                            &[Value::Int(fresh * 10), Value::Int(id / 2)],
                        )
                        .unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

fn race(ddl: &[&str]) {
    for round in 0..4 {
        let db = Database::in_memory();
        db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicI64::new(1));
        let handles = writers(&db, &stop, &next);
        while next.load(Ordering::Relaxed) < 200 {
            thread::yield_now();
        }
        for statement in ddl {
            until_committed(&db, statement, &[]).unwrap();
            let seen = next.load(Ordering::Relaxed);
            while next.load(Ordering::Relaxed) < seen + 100 {
                thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        db.check_table("t")
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}

#[test]
fn an_index_built_while_rows_are_written_indexes_exactly_the_rows() {
    race(&[
        "CREATE INDEX t_v ON t (v)",
        "CREATE UNIQUE INDEX t_v_unique ON t (v)",
    ]);
}

#[test]
fn a_column_added_while_rows_are_written_is_filled_in_every_row() {
    race(&[
        "ALTER TABLE t ADD COLUMN w BIGINT NOT NULL DEFAULT 5",
        "CREATE INDEX t_w ON t (w, v)",
    ]);
}

#[test]
fn the_check_finds_a_missing_index_entry() {
    let db = Database::in_memory();
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        .unwrap();
    db.execute("INSERT INTO t VALUES (1, 10), (2, 20)").unwrap();
    db.execute("CREATE INDEX t_v ON t (v)").unwrap();
    db.check_table("t").unwrap();
    // Remove one index entry behind the SQL layer's back.
    let store = db.store().clone();
    let def = db.tables().unwrap().remove(0);
    let ix = &def.indexes[0];
    let mut txn = store.begin();
    let (key, _) = txn
        .scan(ix.keyspace, chrono_storage::KeyRange::All)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    txn.delete(ix.keyspace, key).unwrap();
    txn.commit().unwrap();
    let err = db.check_table("t").unwrap_err();
    assert!(matches!(err, Error::Corruption(_)), "{err}");
    assert!(err.to_string().contains("lacks the entry"), "{err}");
}

#[test]
fn a_write_planned_before_a_schema_change_does_not_commit_after_it() {
    for ddl in [
        "CREATE INDEX t_v ON t (v)",
        "ALTER TABLE t ADD COLUMN w BIGINT NOT NULL DEFAULT 5",
    ] {
        let db = Database::in_memory();
        db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
            .unwrap();
        db.execute("INSERT INTO t VALUES (1, 10)").unwrap();
        let mut writer = db.session();
        writer.execute("BEGIN").unwrap();
        writer.execute("INSERT INTO t VALUES (2, 20)").unwrap();
        writer.execute("UPDATE t SET v = 11 WHERE id = 1").unwrap();
        db.execute(ddl).unwrap();
        let err = writer.execute("COMMIT").unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{ddl}: {err}");
        db.check_table("t").unwrap();
        // Run again, the write commits against the new definition.
        writer.execute("BEGIN").unwrap();
        writer
            .execute("INSERT INTO t (id, v) VALUES (2, 20)")
            .unwrap();
        writer.execute("COMMIT").unwrap();
        db.check_table("t").unwrap();
    }
}

#[test]
fn a_schema_change_does_not_commit_over_rows_written_after_it_began() {
    for ddl in [
        "CREATE UNIQUE INDEX t_v ON t (v)",
        "ALTER TABLE t ADD COLUMN w BIGINT NOT NULL DEFAULT 5",
    ] {
        let db = Database::in_memory();
        db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
            .unwrap();
        db.execute("INSERT INTO t VALUES (1, 10)").unwrap();
        let mut changer = db.session();
        changer.execute("BEGIN").unwrap();
        changer.execute(ddl).unwrap();
        // Committed while the change is open: the change did not see this row.
        db.execute("INSERT INTO t VALUES (2, 10)").unwrap();
        let err = changer.execute("COMMIT").unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{ddl}: {err}");
        db.check_table("t").unwrap();
    }
}
