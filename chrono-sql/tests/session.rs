//! Sessions: prepared statements with parameters, concurrent SQL transfers, feedback for the
//! estimator, and inputs that must fail cleanly, never panic.

use chrono_sql::{Database, Error, Outcome};
use chrono_storage::Value;
use proptest::prelude::*;

fn rows(out: Vec<Outcome>) -> Vec<Vec<Value>> {
    match out.into_iter().last() {
        Some(Outcome::Rows { rows, .. }) => rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

#[test]
fn prepared_statements_take_positional_parameters() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT, at TIMESTAMP)")
        .unwrap();
    let insert = chrono_sql::parse("INSERT INTO kv VALUES (?, ?, ?)")
        .unwrap()
        .remove(0);
    assert_eq!(insert.param_count, 3);
    let mut stamps = Vec::new();
    for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
        let out = s
            .run(
                &insert,
                &[
                    Value::Text(k.into()),
                    Value::Int(v),
                    Value::Text("2021-11-01 10:00:00".into()),
                ],
            )
            .unwrap();
        let Outcome::Affected {
            commit_ts: Some(ts),
            ..
        } = out
        else {
            panic!("{out:?}")
        };
        stamps.push(ts);
    }
    let got = rows(
        s.execute_with_params(
            "SELECT k FROM kv WHERE v >= $1 AND k <> $2 ORDER BY k",
            &[Value::Int(2), Value::Text("c".into())],
        )
        .unwrap(),
    );
    assert_eq!(got, vec![vec![Value::Text("b".into())]]);
    // A TIMESTAMP parameter in AS OF is exact to the microsecond.
    let got = rows(
        s.execute_with_params(
            "SELECT COUNT(*) FROM kv AS OF TIMESTAMP ?",
            &[Value::Timestamp(stamps[1] as i64)],
        )
        .unwrap(),
    );
    assert_eq!(got, vec![vec![Value::Int(2)]]);
    let err = s.run(&insert, &[Value::Int(1)]).unwrap_err();
    assert!(err.to_string().contains("3 parameters"), "{err}");
    let err = s
        .execute_with_params(
            "INSERT INTO kv VALUES (?, 'x', NULL)",
            &[Value::Text("z".into())],
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn concurrent_sql_transfers_keep_the_total() {
    let db = Database::in_memory();
    db.execute("CREATE TABLE accounts (user_id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)")
        .unwrap();
    for i in 0..10 {
        db.execute(&format!("INSERT INTO accounts VALUES ({i}, 1000)"))
            .unwrap();
    }
    let threads: Vec<_> = (0..4u64)
        .map(|seed| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut x = seed + 11;
                let (mut ok, mut conflicts) = (0, 0);
                for _ in 0..100 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (from, to) = ((x >> 33) % 10, (x >> 45) % 10);
                    let amount = (x >> 20) % 50;
                    let mut s = db.session();
                    let r = s.execute(&format!(
                        "BEGIN; UPDATE accounts SET balance = balance - {amount} WHERE user_id = {from}; \
                         UPDATE accounts SET balance = balance + {amount} WHERE user_id = {to}; COMMIT"
                    ));
                    match r {
                        Ok(_) => ok += 1,
                        Err(Error::Conflict(_)) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, conflicts)
            })
        })
        .collect();
    let mut committed = 0;
    for t in threads {
        committed += t.join().unwrap().0;
    }
    assert!(committed > 0);
    assert_eq!(
        rows(db.execute("SELECT SUM(balance) FROM accounts").unwrap()),
        vec![vec![Value::Int(10_000)]]
    );
}

#[test]
fn executed_scans_leave_feedback_for_the_estimator() {
    let db = Database::in_memory();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER)")
        .unwrap();
    db.execute("INSERT INTO t VALUES (1, 1), (2, 1), (3, 2)")
        .unwrap();
    db.execute("SELECT * FROM t WHERE k = 1").unwrap();
    let fb = db.stats().feedback();
    let last = fb.last().expect("feedback recorded");
    assert_eq!(last.table, "t");
    assert_eq!(last.actual, 2);
    assert_eq!(last.predicate, "t.k = 1");
    assert!(last.filter.is_some());
}

#[test]
fn reading_the_future_and_negative_times_are_refused() {
    let db = Database::in_memory();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .unwrap();
    db.execute("INSERT INTO t VALUES (1)").unwrap();
    // A future time's answer could still change (commits may land before it): an error.
    for sql in [
        "SELECT COUNT(*) FROM t AS OF TIMESTAMP '2999-01-01'",
        "SELECT COUNT(*) FROM t FOR SYSTEM_TIME AS OF '2999-01-01'",
    ] {
        let err = db.execute(sql).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains("after the current time"), "{err}");
    }
    // Now (a moment ago) is the past: the answer is stable.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(
        rows(
            db.execute(&format!("SELECT COUNT(*) FROM t AS OF TIMESTAMP {now:.6}"))
                .unwrap()
        ),
        vec![vec![Value::Int(1)]]
    );
    assert!(db.execute("SELECT * FROM t AS OF TIMESTAMP -5").is_err());
}

const FRAGMENTS: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "t",
    "u",
    "WHERE",
    "a",
    "b",
    "=",
    "<",
    "(",
    ")",
    ",",
    "1",
    "'x'",
    "NULL",
    "AS",
    "OF",
    "TIMESTAMP",
    "FOR",
    "SYSTEM_TIME",
    "ALL",
    "BETWEEN",
    "AND",
    "JOIN",
    "ON",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "COUNT",
    "SUM",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "TABLE",
    "INDEX",
    "DROP",
    "IN",
    "NOT",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "CAST",
    "?",
    ";",
    "+",
    "/",
    "-",
    "9223372036854775807",
    "1e400",
    "''",
    "x'0'",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any sequence of SQL-ish tokens either runs or fails with an error; nothing panics
    /// and a failed statement changes nothing.
    #[test]
    fn no_input_panics(tokens in proptest::collection::vec(0..FRAGMENTS.len(), 1..14)) {
        let db = Database::in_memory();
        db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)").unwrap();
        db.execute("CREATE TABLE u (a INTEGER, b DOUBLE)").unwrap();
        db.execute("INSERT INTO t VALUES (1, 'x'), (2, NULL)").unwrap();
        let sql: Vec<&str> = tokens.iter().map(|&i| FRAGMENTS[i]).collect();
        let _ = db.execute(&sql.join(" "));
        let _ = db.session().execute_with_params(&sql.join(" "), &[Value::Int(1)]);
    }
}

/// Three inner joins are reordered by estimated size (the two small tables first, the big
/// one last) and still return the rows, in the FROM list's column order, that the written
/// order gives.
#[test]
fn three_way_joins_are_reordered_by_estimates_and_agree_with_the_written_order() {
    let db = Database::in_memory();
    db.execute(
        "CREATE TABLE big (id INT PRIMARY KEY, a INT, note TEXT);
         CREATE TABLE mid (a INT PRIMARY KEY, b INT);
         CREATE TABLE tiny (b INT PRIMARY KEY, label TEXT)",
    )
    .unwrap();
    let mut sql = String::from("INSERT INTO big VALUES ");
    for i in 0..3000 {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({i}, {}, 'n{i}')", i % 300));
    }
    db.execute(&sql).unwrap();
    let mut sql = String::from("INSERT INTO mid VALUES ");
    for a in 0..300 {
        if a > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({a}, {})", a % 5));
    }
    db.execute(&sql).unwrap();
    db.execute("INSERT INTO tiny VALUES (0, 'zero'), (1, 'one')")
        .unwrap();
    db.execute("ANALYZE").unwrap();
    let q = "SELECT * FROM big JOIN mid ON big.a = mid.a JOIN tiny ON mid.b = tiny.b \
             WHERE tiny.label = 'one'";
    let plan = rows(db.execute(&format!("EXPLAIN {q}")).unwrap());
    let nodes: Vec<String> = plan.iter().map(|r| r[0].to_string()).collect();
    let scan_pos = |t: &str| {
        nodes
            .iter()
            .position(|n| n.contains(&format!("scan {t}")) || n.contains(&format!(" {t} ")))
            .unwrap_or(usize::MAX)
    };
    // `big` is joined last: it appears after the two others in the plan tree.
    assert!(scan_pos("tiny") < scan_pos("big"), "{nodes:#?}");
    let got = rows(db.execute(q).unwrap());
    assert_eq!(
        got.len(),
        600,
        "3000 rows, a % 300 with b = 1 for 60 values of a"
    );
    for r in &got {
        assert_eq!(r.len(), 7);
        assert_eq!(r[1], r[3], "big.a = mid.a in place");
        assert_eq!(r[6], Value::Text("one".into()));
    }
    // The same join as a LEFT-free two-table pair keeps its order; the answer is the same
    // as with a subquery forcing the written order.
    let forced = rows(
        db.execute(
            "SELECT * FROM (SELECT * FROM big JOIN mid ON big.a = mid.a) x \
             JOIN tiny ON x.b = tiny.b WHERE tiny.label = 'one'",
        )
        .unwrap(),
    );
    let mut a = got.clone();
    let mut b = forced;
    a.sort_by(|x, y| x[0].total_cmp(&y[0]));
    b.sort_by(|x, y| x[0].total_cmp(&y[0]));
    assert_eq!(a, b);
}

/// A row of the table below: id, n, tag, note.
type Stored = (i64, Option<i64>, Option<String>, String);

/// A scan tests its filter on each stored row before decoding the rest of it, in a buffer
/// reused from row to row: the rows it returns are whole, and no value of one row leaks
/// into the test of the next (texts of other lengths, NULLs, rows written before a column
/// was added, a correlated subquery reading a column the filter does not name).
#[test]
fn scan_filters_test_each_row_on_its_own_values() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT, tag TEXT, note TEXT)")
        .unwrap();
    let tags = ["shipped", "x", "", "shipped-late", "ship"];
    let mut data = Vec::new();
    for i in 0..200i64 {
        let n = (i % 7 != 0).then_some(i % 11);
        let tag = (i % 5 != 3).then(|| tags[(i as usize * 7) % tags.len()].to_string());
        let note = format!("note {i}");
        s.execute_with_params(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            &[
                Value::Int(i),
                n.map_or(Value::Null, Value::Int),
                tag.clone().map_or(Value::Null, Value::Text),
                Value::Text(note.clone()),
            ],
        )
        .unwrap();
        data.push((i, n, tag, note));
    }
    let ids = |out: Vec<Outcome>| -> Vec<i64> {
        rows(out)
            .into_iter()
            .map(|r| match &r[0] {
                Value::Int(i) => *i,
                v => panic!("id {v:?}"),
            })
            .collect()
    };
    let expect = |f: &dyn Fn(&Stored) -> bool| -> Vec<i64> {
        data.iter().filter(|r| f(r)).map(|r| r.0).collect()
    };
    let got = ids(s.execute("SELECT id FROM t WHERE tag = 'shipped'").unwrap());
    assert_eq!(got, expect(&|r| r.2.as_deref() == Some("shipped")));
    let got = ids(s
        .execute("SELECT id FROM t WHERE tag LIKE 'ship%' AND n > 4")
        .unwrap());
    assert_eq!(
        got,
        expect(&|r| r.2.as_deref().is_some_and(|t| t.starts_with("ship")) && r.1 > Some(4))
    );
    let got = ids(s
        .execute("SELECT id FROM t WHERE tag IS NULL OR n IS NULL")
        .unwrap());
    assert_eq!(got, expect(&|r| r.2.is_none() || r.1.is_none()));
    // Rows that pass come back whole, the columns the filter did not name included.
    let whole = rows(
        s.execute("SELECT id, n, tag, note FROM t WHERE n = 3")
            .unwrap(),
    );
    assert_eq!(whole.len(), expect(&|r| r.1 == Some(3)).len());
    for r in &whole {
        let Value::Int(i) = r[0] else { panic!("id") };
        let d = &data[i as usize];
        assert_eq!(r[3], Value::Text(d.3.clone()));
        assert_eq!(r[2], d.2.clone().map_or(Value::Null, Value::Text));
    }
    // A correlated subquery in the filter reads the row's other columns.
    let got = ids(s
        .execute(
            "SELECT id FROM t WHERE n = 2 AND EXISTS \
             (SELECT 1 FROM t AS u WHERE u.id = t.id AND u.note = t.note)",
        )
        .unwrap());
    assert_eq!(got, expect(&|r| r.1 == Some(2)));
    // Rows stored before a column was added read it as NULL.
    s.execute("ALTER TABLE t ADD COLUMN extra BIGINT").unwrap();
    s.execute("INSERT INTO t VALUES (1000, 1, 'shipped', 'late', 5)")
        .unwrap();
    let got = ids(s
        .execute("SELECT id FROM t WHERE extra = 5 OR (extra IS NULL AND id = 4)")
        .unwrap());
    assert_eq!(got, vec![4, 1000]);
}

/// Hash aggregation builds each row's group key in a reused buffer, from the row's columns
/// or from evaluated expressions, and puts the groups in key order at the end: groups come
/// out whole, once each, in the order of their keys, whatever order the rows arrive in.
#[test]
fn groups_come_out_once_each_in_key_order() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.execute("CREATE TABLE g (id BIGINT PRIMARY KEY, tag TEXT, n BIGINT, x DOUBLE)")
        .unwrap();
    let tags = ["pear", "apple", "fig", "apple-pie"];
    for i in 0..300i64 {
        let tag = (i % 9 != 0).then(|| tags[(i as usize * 5) % tags.len()]);
        s.execute_with_params(
            "INSERT INTO g VALUES (?, ?, ?, ?)",
            &[
                Value::Int(i),
                tag.map_or(Value::Null, |t| Value::Text(t.into())),
                Value::Int(i % 4),
                Value::Float((i % 2) as f64),
            ],
        )
        .unwrap();
    }
    let out = rows(
        s.execute("SELECT tag, n % 2, COUNT(*), SUM(n) FROM g GROUP BY tag, n % 2")
            .unwrap(),
    );
    let mut expected: std::collections::BTreeMap<(Option<&str>, i64), (i64, i64)> =
        Default::default();
    for i in 0..300i64 {
        let tag = (i % 9 != 0).then(|| tags[(i as usize * 5) % tags.len()]);
        let e = expected.entry((tag, (i % 4) % 2)).or_default();
        e.0 += 1;
        e.1 += i % 4;
    }
    let want: Vec<Vec<Value>> = expected
        .into_iter()
        .map(|((tag, k), (count, sum))| {
            vec![
                tag.map_or(Value::Null, |t| Value::Text(t.into())),
                Value::Int(k),
                Value::Int(count),
                Value::Int(sum),
            ]
        })
        .collect();
    assert_eq!(out, want);
    // A DOUBLE that holds an integer groups with that integer.
    let out = rows(
        s.execute("SELECT k, COUNT(*) FROM (SELECT x AS k FROM g UNION ALL SELECT n AS k FROM g WHERE n < 2) AS u GROUP BY k")
            .unwrap(),
    );
    assert_eq!(out.len(), 2, "{out:?}");
    let counts: Vec<&Value> = out.iter().map(|r| &r[1]).collect();
    // 150 rows of each x, 75 of each n below 2.
    assert_eq!(counts, [&Value::Int(225), &Value::Int(225)]);
}

/// Whole-table scans split between two threads (`limits.parallel_scan_rows`) return what
/// one thread returns, in the same order: current and past states, filters, aggregates, an
/// early stop, integer and text keys, rows deleted and rows changed after the read time.
#[test]
fn split_scans_return_what_one_thread_returns() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT, note TEXT)")
        .unwrap();
    s.execute("CREATE TABLE w (k TEXT PRIMARY KEY, n BIGINT)")
        .unwrap();
    for chunk in (0..3000i64).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({}, {}, 'note {i}')", i * 37 % 100_003, i % 13))
            .collect();
        s.execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
            .unwrap();
        let words: Vec<String> = chunk
            .iter()
            .map(|i| format!("('{}{i}', {})", ["ab", "q", "zz"][*i as usize % 3], i % 5))
            .collect();
        s.execute(&format!("INSERT INTO w VALUES {}", words.join(", ")))
            .unwrap();
    }
    let Some(Outcome::Rows { rows: at, .. }) = s.execute("SELECT now()").unwrap().pop() else {
        panic!()
    };
    let before = at[0][0].clone();
    s.execute("DELETE FROM t WHERE n = 4").unwrap();
    s.execute("UPDATE t SET note = 'changed' WHERE n = 5")
        .unwrap();
    let queries = [
        "SELECT * FROM t".to_string(),
        "SELECT id FROM t WHERE n = 3 AND note LIKE 'note 1%'".into(),
        "SELECT COUNT(*), SUM(n) FROM t".into(),
        "SELECT n, COUNT(*) FROM t GROUP BY n".into(),
        "SELECT id, note FROM t LIMIT 7".into(),
        format!("SELECT * FROM t AS OF TIMESTAMP '{before}'"),
        "SELECT * FROM w".into(),
        "SELECT k FROM w WHERE n > 2".into(),
    ];
    let run = |limit: usize| {
        db.set_limits(chrono_sql::Limits {
            parallel_scan_rows: limit,
            ..chrono_sql::Limits::default()
        })
        .unwrap();
        let mut s = db.session();
        queries
            .iter()
            .map(|q| rows(s.execute(q).unwrap_or_else(|e| panic!("{q}: {e}"))))
            .collect::<Vec<_>>()
    };
    let alone = run(0);
    assert_eq!(alone[0].len(), 3000 - 231);
    let started = chrono_sql::table::split_scans();
    for limit in [1, 100, 2500] {
        assert_eq!(run(limit), alone, "parallel_scan_rows {limit}");
    }
    assert!(chrono_sql::table::split_scans() >= started + 8);
}

#[test]
fn multi_row_inserts_that_append_still_find_every_existing_key() {
    // A multi-row insert whose keys all sort after the table's last key skips the per-key
    // existence checks (one seek tells); any key at or below it is looked up as before.
    let dir = tempfile::tempdir().unwrap();
    let rocks = std::sync::Arc::new(
        chrono_storage::RocksEngine::open(dir.path(), &chrono_storage::RocksOptions::default())
            .unwrap(),
    );
    for db in [
        Database::in_memory(),
        Database::new(chrono_storage::Store::open(rocks).unwrap()),
    ] {
        let mut s = db.session();
        // A table before and a table after this one, so neighbouring key spaces exist.
        s.execute("CREATE TABLE a (id BIGINT PRIMARY KEY)").unwrap();
        s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
            .unwrap();
        s.execute("CREATE TABLE z (id BIGINT PRIMARY KEY)").unwrap();
        s.execute("INSERT INTO a VALUES (1000000), (2000000)")
            .unwrap();
        s.execute("INSERT INTO z VALUES (-5), (0)").unwrap();
        let values = |ids: &mut dyn Iterator<Item = i64>| {
            ids.map(|i| format!("({i}, 'v{i}')"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let refused = |s: &mut chrono_sql::Session, ids: &mut dyn Iterator<Item = i64>| {
            let err = s
                .execute(&format!("INSERT INTO t VALUES {}", values(ids)))
                .unwrap_err();
            assert!(err.to_string().contains("duplicate primary key"), "{err}");
        };
        // Into an empty table, then appending, then appending with one old key among them.
        s.execute(&format!("INSERT INTO t VALUES {}", values(&mut (0..40))))
            .unwrap();
        s.execute(&format!("INSERT INTO t VALUES {}", values(&mut (40..80))))
            .unwrap();
        refused(&mut s, &mut (100..140).chain([79]));
        // The last key itself, first among new ones.
        refused(&mut s, &mut [79].into_iter().chain(200..240));
        // A deleted last key may be inserted again, with new ones after it.
        s.execute("DELETE FROM t WHERE id = 79").unwrap();
        s.execute(&format!(
            "INSERT INTO t VALUES {}",
            values(&mut [79].into_iter().chain(300..340))
        ))
        .unwrap();
        // Inside a transaction, after its own insert of the keys' neighbours.
        s.execute("BEGIN").unwrap();
        s.execute(&format!("INSERT INTO t VALUES {}", values(&mut (400..420))))
            .unwrap();
        refused(&mut s, &mut (420..440).chain([410]));
        s.execute("ROLLBACK").unwrap();
        let n = rows(s.execute("SELECT COUNT(*), MAX(id) FROM t").unwrap());
        assert_eq!(n, vec![vec![Value::Int(120), Value::Int(339)]]);
        assert!(db.check_table("t").is_ok());
    }
}

#[test]
fn auto_analyze_waits_for_its_minimum_of_changed_rows() {
    let auto = chrono_sql::AutoAnalyze {
        fraction: 0.2,
        min_rows: 1000,
    };
    // A one-row counter updated by every transaction is not due after each of them.
    assert!(!auto.due(999, 1));
    assert!(auto.due(1001, 1));
    assert!(!auto.due(20_999, 100_000));
    assert!(auto.due(21_000, 100_000));

    let db = Database::in_memory();
    db.execute("CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT)")
        .unwrap();
    db.execute("INSERT INTO counter VALUES (1, 0)").unwrap();
    db.execute("ANALYZE counter").unwrap();
    db.set_auto_analyze(Some(chrono_sql::AutoAnalyze {
        fraction: 0.2,
        min_rows: 30,
    }));
    let analyzed = db.stats().version();
    for _ in 0..31 {
        db.execute("UPDATE counter SET n = n + 1").unwrap();
    }
    // The 31st change (past 30 + 0.2 × 1) starts the analysis in the background: wait for it (generously).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while db.stats().version() == analyzed {
        assert!(
            std::time::Instant::now() < deadline,
            "the table was never analyzed again"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// (commit time, table, key space, key, principal) of one change.
type KeptChange = (u64, String, u32, Vec<u8>, Option<String>);

/// Keeps what the audit trail keeps of each commit — who made it and which keys of which
/// table it changed — answers the store's questions from it, and counts them.
#[derive(Default)]
struct KeptCommits {
    changes: parking_lot::Mutex<Vec<KeptChange>>,
    principal_lookups: std::sync::atomic::AtomicUsize,
    key_lookups: std::sync::atomic::AtomicUsize,
}

impl chrono_storage::CommitObserver for KeptCommits {
    fn on_commit(
        &self,
        commit: &chrono_storage::Commit,
        _batch: &mut chrono_storage::WriteBatch,
    ) -> chrono_storage::Result<()> {
        for c in &commit.changes {
            let table = commit.labels.get(&c.keyspace).cloned().unwrap_or_default();
            self.changes.lock().push((
                commit.commit_ts,
                table,
                c.keyspace,
                c.key.clone(),
                commit.principal.clone(),
            ));
        }
        Ok(())
    }

    fn committed_by(&self, label: &str, ts: u64) -> Option<chrono_storage::Result<Option<String>>> {
        self.principal_lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let changes = self.changes.lock();
        let found = changes.iter().find(|c| c.0 == ts && c.1 == label);
        Some(Ok(found.and_then(|c| c.4.clone())))
    }

    fn changed_keys(
        &self,
        _label: &str,
        keyspace: u32,
        after: u64,
        upto: u64,
    ) -> Option<chrono_storage::Result<Vec<Vec<u8>>>> {
        self.key_lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Ok(self
            .changes
            .lock()
            .iter()
            .filter(|c| c.2 == keyspace && c.0 > after && c.0 <= upto)
            .map(|c| c.3.clone())
            .collect()))
    }
}

#[test]
fn history_rows_say_who_committed_them_when_the_store_keeps_principals() {
    let db = Database::in_memory();
    let principals = std::sync::Arc::new(KeptCommits::default());
    db.store().add_observer(principals.clone());
    let mut s = db.session();
    s.set_principal(Some("ann".into()));
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        .unwrap();
    s.execute("INSERT INTO t VALUES (1, 10), (2, 20)").unwrap();
    s.set_principal(Some("bob".into()));
    s.execute("UPDATE t SET v = 11 WHERE id = 1").unwrap();
    s.set_principal(None);
    s.execute("UPDATE t SET v = 12 WHERE id = 1").unwrap();

    let rows = |s: &mut chrono_sql::Session, sql: &str| match s.execute(sql).unwrap().remove(0) {
        Outcome::Rows { rows, columns, .. } => (columns, rows),
        other => panic!("{other:?}"),
    };
    let (_, history) = rows(
        &mut s,
        "SELECT v, _operation, _principal FROM t FOR SYSTEM_TIME ALL WHERE id = 1 ORDER BY _system_from",
    );
    let text = |x: &str| Value::Text(x.into());
    assert_eq!(
        history,
        vec![
            vec![Value::Int(10), text("INSERT"), text("ann")],
            vec![Value::Int(11), text("UPDATE"), text("bob")],
            vec![Value::Int(12), text("UPDATE"), Value::Null],
        ]
    );
    // A condition on it works; `*` leaves it out, and a read that does not use it looks
    // nothing up.
    let (_, by_bob) = rows(
        &mut s,
        "SELECT id, v FROM t FOR SYSTEM_TIME ALL WHERE _principal = 'bob'",
    );
    assert_eq!(by_bob, vec![vec![Value::Int(1), Value::Int(11)]]);
    let before = principals
        .principal_lookups
        .load(std::sync::atomic::Ordering::Relaxed);
    let (columns, all) = rows(&mut s, "SELECT * FROM t FOR SYSTEM_TIME ALL");
    assert_eq!(all.len(), 4);
    assert!(
        !columns
            .iter()
            .any(|c| c == "_principal" || c == "_operation"),
        "{columns:?}"
    );
    assert_eq!(
        principals
            .principal_lookups
            .load(std::sync::atomic::Ordering::Relaxed),
        before,
        "no principal is looked up for a read that does not use it"
    );
}

#[test]
fn a_diff_reads_the_keys_the_store_says_changed_and_agrees_with_a_whole_read() {
    let run = |db: &Database| {
        let mut s = db.session();
        s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
            .unwrap();
        let values: Vec<String> = (0..500).map(|i| format!("({i}, {i})")).collect();
        s.execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
            .unwrap();
        let ts = |out: Vec<Outcome>| match out.into_iter().last() {
            Some(Outcome::Affected {
                commit_ts: Some(t), ..
            }) => t,
            other => panic!("{other:?}"),
        };
        let t0 = ts(s.execute("UPDATE t SET v = -1 WHERE id = 0").unwrap());
        s.execute("UPDATE t SET v = v + 1 WHERE id IN (3, 7)")
            .unwrap();
        s.execute("DELETE FROM t WHERE id = 9").unwrap();
        let t1 = ts(s.execute("INSERT INTO t VALUES (1000, 1)").unwrap());
        let at = |t: u64| format!("{}.{:06}", t / 1_000_000, t % 1_000_000);
        rows(
            s.execute(&format!(
                "SELECT _change, id, v, _before_v FROM DIFF(t, {}, {}) ORDER BY id",
                at(t0),
                at(t1)
            ))
            .unwrap(),
        )
    };
    let plain = Database::in_memory();
    let whole = run(&plain);
    let kept = Database::in_memory();
    let keys = std::sync::Arc::new(KeptCommits::default());
    kept.store().add_observer(keys.clone());
    let by_keys = run(&kept);
    assert_eq!(whole, by_keys);
    assert_eq!(
        keys.key_lookups.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let text = |x: &str| Value::Text(x.into());
    assert_eq!(
        whole,
        vec![
            vec![text("UPDATE"), Value::Int(3), Value::Int(4), Value::Int(3)],
            vec![text("UPDATE"), Value::Int(7), Value::Int(8), Value::Int(7)],
            vec![text("DELETE"), Value::Int(9), Value::Int(9), Value::Int(9)],
            vec![text("INSERT"), Value::Int(1000), Value::Int(1), Value::Null],
        ]
    );
}

#[test]
fn a_write_with_returning_says_when_it_committed() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        .unwrap();
    let committed = match s
        .execute("INSERT INTO t VALUES (1, 10) RETURNING id")
        .unwrap()
        .remove(0)
    {
        Outcome::Rows {
            rows, commit_ts, ..
        } => {
            assert_eq!(rows, vec![vec![Value::Int(1)]]);
            commit_ts.expect("an autocommitted write with RETURNING has a commit time")
        }
        other => panic!("{other:?}"),
    };
    // That time reads exactly that state.
    let at = format!("{}.{:06}", committed / 1_000_000, committed % 1_000_000);
    assert_eq!(
        rows(
            s.execute(&format!("SELECT v FROM t AS OF TIMESTAMP {at}"))
                .unwrap()
        ),
        vec![vec![Value::Int(10)]]
    );
    // Inside a transaction nothing is committed yet; a query commits nothing.
    s.execute("BEGIN").unwrap();
    match s
        .execute("UPDATE t SET v = 11 RETURNING v")
        .unwrap()
        .remove(0)
    {
        Outcome::Rows { commit_ts, .. } => assert_eq!(commit_ts, None),
        other => panic!("{other:?}"),
    }
    s.execute("COMMIT").unwrap();
    match s.execute("SELECT v FROM t").unwrap().remove(0) {
        Outcome::Rows { commit_ts, .. } => assert_eq!(commit_ts, None),
        other => panic!("{other:?}"),
    }
}
