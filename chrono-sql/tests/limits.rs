//! Hostile statements: each is refused with an error that names its limit, or runs within
//! its budget; none crashes, overflows the stack or runs on after it was stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono_sql::{CancelToken, Database, Error, Limits, Outcome, RowSink};
use chrono_storage::Value;
use proptest::prelude::*;

/// Runs `f` on a thread with a small stack (as a server's worker threads have), so a
/// recursion that the limits should prevent shows up as a crash here.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no stack overflow or panic")
}

fn db_with(limits: Limits) -> Database {
    let db = Database::in_memory();
    db.set_limits(limits).unwrap();
    db
}

/// A table of `n` rows (ids 1..=n).
fn numbers(db: &Database, name: &str, n: usize) {
    db.execute(&format!(
        "CREATE TABLE {name} (id BIGINT PRIMARY KEY, v TEXT)"
    ))
    .unwrap();
    let values: Vec<String> = (1..=n).map(|i| format!("({i}, 'v{i}')")).collect();
    for chunk in values.chunks(500) {
        db.execute(&format!("INSERT INTO {name} VALUES {}", chunk.join(", ")))
            .unwrap();
    }
}

fn rows(r: chrono_sql::Result<Vec<Outcome>>) -> Vec<Vec<Value>> {
    match r.expect("a result").pop() {
        Some(Outcome::Rows { rows, .. }) => rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

fn err_of(r: chrono_sql::Result<Vec<Outcome>>) -> Error {
    match r {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e,
    }
}

fn assert_limit(e: &Error, key: &str) {
    assert!(
        matches!(e, Error::ResourceExhausted(_)),
        "expected ResourceExhausted, got {e:?}"
    );
    assert!(e.to_string().contains(&format!("limits.{key}")), "{e}");
}

#[test]
fn long_operator_chains_are_refused_before_anything_recurses() {
    on_small_stack(|| {
        let db = Database::in_memory();
        numbers(&db, "t", 3);
        for n in [2_000, 200_000] {
            let chain = vec!["1"; n].join(" + ");
            for sql in [
                format!("SELECT {chain}"),
                format!("SELECT {chain} AS total FROM t"),
                format!("SELECT id FROM t WHERE id = {chain}"),
                format!("SELECT id FROM t WHERE {}", vec!["id = 1"; n].join(" OR ")),
                format!("SELECT {}1", "- ".repeat(n)),
                format!("SELECT {}", vec!["NOT"; n].join(" ") + " true"),
                format!("SELECT {}'x'", "upper(".repeat(n / 8)) + &")".repeat(n / 8),
                format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n)),
            ] {
                let e = err_of(db.execute(&sql));
                assert!(
                    matches!(e, Error::ResourceExhausted(_) | Error::Syntax(_)),
                    "{e:?}"
                );
            }
        }
        // A chain within the limit still runs.
        let chain = vec!["1"; 900].join(" + ");
        assert_eq!(
            rows(db.execute(&format!("SELECT {chain}"))),
            vec![vec![Value::Int(900)]]
        );
        let e = err_of(db.execute(&format!("SELECT {}", vec!["1"; 1_100].join(" + "))));
        assert_limit(&e, "max_expression_depth");
    });
}

#[test]
fn change_stream_filters_are_bounded_too() {
    on_small_stack(|| {
        let db = Database::in_memory();
        numbers(&db, "t", 1);
        let def = db.tables().unwrap().remove(0);
        let text = vec!["id = 1"; 50_000].join(" AND ");
        let e = db.row_predicate(&def, &text).unwrap_err();
        assert_limit(&e, "max_expression_depth");
        assert!(db.row_predicate(&def, "id = 1 AND v = 'x'").is_ok());
    });
}

#[test]
fn lists_tokens_text_and_relations_have_named_limits() {
    let db = db_with(Limits {
        max_in_list: 1_000,
        max_statement_tokens: 50_000,
        max_sql_bytes: 200_000,
        ..Limits::default()
    });
    numbers(&db, "t", 3);
    let list = (0..2_000).map(|i| i.to_string()).collect::<Vec<_>>();
    let e = err_of(db.execute(&format!("SELECT 1 IN ({})", list.join(", "))));
    assert_limit(&e, "max_in_list");
    let items = vec!["1"; 30_000].join(", ");
    let e = err_of(db.execute(&format!("SELECT {items}")));
    assert_limit(&e, "max_statement_tokens");
    let e = err_of(db.execute(&format!("SELECT '{}'", "x".repeat(300_000))));
    assert_limit(&e, "max_sql_bytes");
    let from = (0..2_000)
        .map(|i| format!("t AS t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let e = err_of(db.execute(&format!("SELECT COUNT(*) FROM {from}")));
    assert_limit(&e, "max_relations");
    let joins = (0..100)
        .map(|i| format!("JOIN t AS j{i} ON j{i}.id = t.id"))
        .collect::<Vec<_>>()
        .join(" ");
    let e = err_of(db.execute(&format!("SELECT COUNT(*) FROM t {joins}")));
    assert_limit(&e, "max_relations");
}

#[test]
fn set_operations_and_with_queries_are_bounded() {
    on_small_stack(|| {
        let db = Database::in_memory();
        numbers(&db, "t", 3);
        // sqlparser nests a UNION chain one level per UNION: refused from the tokens.
        let chain = vec!["SELECT 1"; 50_000].join(" UNION ALL ");
        assert_limit(&err_of(db.execute(&chain)), "max_expression_depth");
        // Within the depth limit, each query of the chain counts as a relation.
        let chain = vec!["SELECT id FROM t"; 500].join(" UNION ALL ");
        assert_limit(&err_of(db.execute(&chain)), "max_relations");
        let ok = vec!["SELECT id FROM t"; 20].join(" UNION ALL ");
        assert_eq!(rows(db.execute(&ok)).len(), 60);
        // WITH queries that each use the one before twice would plan 2^n scans.
        let mut sql = "WITH q0 AS (SELECT id FROM t)".to_string();
        for i in 1..40 {
            sql.push_str(&format!(
                ", q{i} AS (SELECT a.id FROM q{p} a, q{p} b WHERE a.id = b.id)",
                p = i - 1
            ));
        }
        sql.push_str(" SELECT COUNT(*) FROM q39");
        assert_limit(&err_of(db.execute(&sql)), "max_relations");
        // Queries nested as deep as the parser allows plan on a small stack.
        for depth in [20, 30, 60] {
            let mut derived = "SELECT id FROM t".to_string();
            let mut scalar = "SELECT MAX(id) FROM t".to_string();
            for _ in 0..depth {
                derived = format!("SELECT id FROM ({derived}) AS d");
                scalar = format!("SELECT ({scalar}) + 0");
            }
            for sql in [derived, scalar] {
                match db.execute(&sql) {
                    Ok(out) => assert!(!rows(Ok(out)).is_empty()),
                    Err(e) => assert!(
                        matches!(e, Error::Syntax(_) | Error::ResourceExhausted(_)),
                        "{e}"
                    ),
                }
            }
        }
    });
}

#[test]
fn values_built_by_functions_are_capped() {
    let db = db_with(Limits {
        max_value_bytes: 1 << 20,
        ..Limits::default()
    });
    // Each replace multiplies the length by 10: 10^7 bytes by the seventh.
    let mut e = "'aaaaaaaaaa'".to_string();
    for _ in 0..7 {
        e = format!("replace({e}, 'a', 'aaaaaaaaaa')");
    }
    let err = err_of(db.execute(&format!("SELECT length({e})")));
    assert_limit(&err, "max_value_bytes");
    let big = Value::Text("x".repeat(600_000));
    let mut s = db.session();
    for sql in [
        "SELECT ? || ?",
        "SELECT concat(?, ?)",
        "SELECT replace(?, 'x', 'yy') || ?",
    ] {
        let err = s
            .execute_with_params(sql, &[big.clone(), big.clone()])
            .unwrap_err();
        assert_limit(&err, "max_value_bytes");
    }
    // Under the cap it works.
    assert_eq!(
        rows(s.execute_with_params("SELECT length(? || 'y')", &[big])),
        vec![vec![Value::Int(600_001)]]
    );
}

#[test]
fn hex_literals_with_any_characters_are_errors_not_panics() {
    let db = Database::in_memory();
    for sql in [
        "SELECT x'é1'",
        "SELECT x'1é'",
        "SELECT X'ééé'",
        "SELECT x'zz'",
    ] {
        let e = err_of(db.execute(sql));
        assert!(
            matches!(e, Error::InvalidInput(_) | Error::Syntax(_)),
            "{e:?}"
        );
    }
    assert_eq!(
        rows(db.execute("SELECT x'00ff'")),
        vec![vec![Value::Blob(vec![0, 255])]]
    );
}

#[test]
fn operators_that_hold_rows_stop_at_the_memory_budget() {
    let db = db_with(Limits {
        statement_memory_mb: 4,
        ..Limits::default()
    });
    numbers(&db, "t", 1_000);
    for sql in [
        // A result collected whole.
        "SELECT a.v, b.v FROM t a, t b",
        // Groups.
        "SELECT a.id * 10000 + b.id, COUNT(*) FROM t a, t b GROUP BY 1",
        // A sort.
        "SELECT a.v, b.v FROM t a, t b ORDER BY b.v, a.v LIMIT 100000 OFFSET 1",
        // DISTINCT.
        "SELECT DISTINCT a.id * 10000 + b.id FROM t a, t b",
        // A hash join's build side.
        "SELECT COUNT(*) FROM (SELECT a.id * 10000 + b.id AS k FROM t a, t b) x JOIN (SELECT a.id * 10000 + b.id AS k FROM t a, t b) y ON x.k = y.k",
    ] {
        let e = err_of(db.execute(sql));
        assert_limit(&e, "statement_memory_mb");
    }
    // Aggregating without holding rows runs through.
    assert_eq!(
        rows(db.execute("SELECT COUNT(*) FROM t a, t b")),
        vec![vec![Value::Int(1_000_000)]]
    );
}

struct Counting {
    rows: usize,
    stop_after: usize,
}

impl RowSink for Counting {
    fn columns(&mut self, _: &[String]) -> chrono_sql::Result<()> {
        Ok(())
    }
    fn row(&mut self, _: Vec<Value>) -> chrono_sql::Result<()> {
        self.rows += 1;
        if self.rows >= self.stop_after {
            return Err(Error::Cancelled("reader gone".into()));
        }
        Ok(())
    }
}

#[test]
fn streamed_results_are_not_held_and_a_reader_can_stop_them() {
    let db = db_with(Limits {
        statement_memory_mb: 4,
        ..Limits::default()
    });
    numbers(&db, "t", 1_000);
    let mut s = db.session();
    // A million rows pass through a 4 MiB budget when nobody collects them.
    let mut sink = Counting {
        rows: 0,
        stop_after: usize::MAX,
    };
    let out = s
        .execute_streaming("SELECT a.v, b.v FROM t a, t b", &[], &mut sink)
        .unwrap();
    assert_eq!(sink.rows, 1_000_000);
    assert!(matches!(&out[0], Outcome::Rows { rows, .. } if rows.is_empty()));
    let mut sink = Counting {
        rows: 0,
        stop_after: 10,
    };
    let e = s
        .execute_streaming("SELECT a.v, b.v FROM t a, t b", &[], &mut sink)
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e:?}");
    assert_eq!(sink.rows, 10);
}

#[test]
fn a_row_iterator_streams_and_dropping_it_stops_the_query() {
    let db = db_with(Limits {
        statement_memory_mb: 4,
        ..Limits::default()
    });
    numbers(&db, "t", 1_000);
    let mut it = db
        .query_iter(
            "SELECT a.id, b.v FROM t a, t b WHERE a.id <= ?",
            &[Value::Int(300)],
        )
        .unwrap();
    assert_eq!(it.columns(), ["id", "v"]);
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.len(), 2);
    // 300,000 rows through a 4 MiB budget: nothing holds them.
    let mut rest = 0;
    for row in it.by_ref() {
        row.unwrap();
        rest += 1;
    }
    assert_eq!(rest, 299_999);
    // An endless query is stopped when its iterator is dropped.
    let mut endless = db
        .query_iter("SELECT a.id FROM t a, t b, t c, t d", &[])
        .unwrap();
    assert!(endless.next().is_some());
    drop(endless);
    let e = db.query_iter("SELECT * FROM missing", &[]).err().unwrap();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(
        db.query_iter("INSERT INTO t VALUES (5000, 'x')", &[])
            .is_err()
    );
}

/// Fails when more than `limit` has passed since `start`.
fn assert_within(start: Instant, limit: Duration) {
    let took = start.elapsed();
    assert!(took < limit, "took {took:?}, more than {limit:?}");
}

const ENDLESS: &str = "SELECT COUNT(*) FROM t a, t b, t c, t d, t e";

#[test]
fn a_timed_out_or_cancelled_statement_stops_promptly() {
    let db = Database::in_memory();
    numbers(&db, "t", 200);
    let mut s = db.session();
    s.set_statement_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let e = err_of(s.execute(ENDLESS));
    assert!(matches!(e, Error::DeadlineExceeded(_)), "{e:?}");
    assert_within(start, Duration::from_secs(5));

    let token = CancelToken::new();
    let mut s = db.session();
    s.set_cancel_token(token.clone());
    let worker = std::thread::spawn(move || s.execute(ENDLESS));
    std::thread::sleep(Duration::from_millis(100));
    let cancelled_at = Instant::now();
    token.cancel();
    let e = err_of(worker.join().unwrap());
    assert!(matches!(e, Error::Cancelled(_)), "{e:?}");
    assert_within(cancelled_at, Duration::from_secs(2));
}

#[test]
fn like_on_long_texts_stops_when_cancelled() {
    let db = Database::in_memory();
    let mut s = db.session();
    s.set_statement_timeout(Some(Duration::from_millis(200)));
    // The matcher backtracks to the last `%`: every start position re-reads the a's.
    let text = Value::Text("a".repeat(300_000));
    let pattern = Value::Text(format!("%{}b", "a".repeat(20_000)));
    let start = Instant::now();
    let e = s
        .execute_with_params("SELECT ? LIKE ?", &[text, pattern])
        .unwrap_err();
    assert!(matches!(e, Error::DeadlineExceeded(_)), "{e:?}");
    assert_within(start, Duration::from_secs(5));
}

#[test]
fn past_the_concurrency_limit_statements_queue_then_are_refused() {
    let db = db_with(Limits {
        max_concurrent_statements: 1,
        statement_queue: 0,
        ..Limits::default()
    });
    numbers(&db, "t", 200);
    let token = CancelToken::new();
    let mut busy = db.session();
    busy.set_cancel_token(token.clone());
    // The probes below may hold the only place when the busy statement arrives (and with
    // no queue it is refused): it tries until it gets the place.
    let worker = std::thread::spawn(move || {
        loop {
            match busy.execute(ENDLESS) {
                Err(Error::ResourceExhausted(m)) if m.contains("statement_queue") => {}
                other => return other,
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match db.execute("SELECT 1") {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => panic!("the busy statement never took the only place"),
        }
    };
    assert_limit(&refused, "statement_queue");
    token.cancel();
    assert!(worker.join().unwrap().is_err());
    // The place is free again.
    assert!(db.execute("SELECT 1").is_ok());

    // With a queue, a second statement waits for the first instead of failing.
    let db = db_with(Limits {
        max_concurrent_statements: 1,
        statement_queue: 4,
        ..Limits::default()
    });
    numbers(&db, "t", 200);
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                db.execute("SELECT COUNT(*) FROM t a, t b").unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 3);
}

#[test]
fn unusable_limits_are_refused_by_name() {
    let db = Database::in_memory();
    let e = db
        .set_limits(Limits {
            max_concurrent_statements: 0,
            ..Limits::default()
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("limits.max_concurrent_statements"),
        "{e}"
    );
}

fn chain_of(ops: &[&str], literal: &str, n: usize) -> String {
    let mut s = literal.to_string();
    for i in 0..n {
        s.push_str(&format!(" {} {literal}", ops[i % ops.len()]));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text at all: an error or a result, never a panic or a stack overflow.
    #[test]
    fn any_text_gives_an_error_or_a_result(text in "\\PC{0,200}") {
        let db = Database::in_memory();
        let _ = on_small_stack(move || db.execute(&text).map(|_| ()));
    }

    /// Any literal (any Unicode, quotes, hex prefixes) in any position of a statement.
    #[test]
    fn any_literal_gives_an_error_or_a_result(
        lit in "\\PC{0,40}",
        shape in 0usize..6,
    ) {
        let quoted = lit.replace('\'', "''");
        let sql = match shape {
            0 => format!("SELECT '{quoted}'"),
            1 => format!("SELECT x'{quoted}'"),
            2 => format!("SELECT {lit}"),
            3 => format!("SELECT CAST('{quoted}' AS BIGINT), CAST('{quoted}' AS TIMESTAMP)"),
            4 => format!("SELECT 1 AS OF TIMESTAMP '{quoted}'"),
            _ => format!("SELECT '{quoted}' LIKE '{quoted}%', upper('{quoted}'), length('{quoted}')"),
        };
        let db = Database::in_memory();
        let _ = on_small_stack(move || db.execute(&sql).map(|_| ()));
    }

    /// Operator chains of any length and mix: an error or a result, never a crash.
    #[test]
    fn operator_chains_of_any_length(
        n in 0usize..3_000,
        ops in proptest::sample::subsequence(vec!["+", "-", "*", "/", "||", "AND", "OR", "=", "<", "<>"], 1..5),
        literal in prop_oneof![Just("1"), Just("'a'"), Just("NULL"), Just("true"), Just("2.5")],
    ) {
        let sql = format!("SELECT {}", chain_of(&ops, literal, n));
        let db = Database::in_memory();
        let _ = on_small_stack(move || db.execute(&sql).map(|_| ()));
    }
}
