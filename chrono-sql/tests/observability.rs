//! What the health report reads from the SQL engine: statement statistics by normalized
//! statement, and index advice from the full scans the executor saw.

use chrono_sql::Database;
use chrono_sql::cost::index_advice;
use chrono_storage::Value;

fn loaded() -> Database {
    let db = Database::in_memory();
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, k BIGINT, v TEXT)")
        .unwrap();
    let rows: Vec<String> = (0..2000)
        .map(|i| format!("({i}, {}, 'v{i}')", i % 100))
        .collect();
    db.execute(&format!("INSERT INTO t VALUES {}", rows.join(", ")))
        .unwrap();
    db
}

#[test]
fn statements_are_counted_by_their_normalized_text() {
    let db = loaded();
    let mut s = db.session();
    for k in 0..5 {
        s.execute_with_params("SELECT v FROM t WHERE k = ?", &[Value::Int(k)])
            .unwrap();
        s.execute(&format!("select v from t where k = {k}"))
            .unwrap();
    }
    assert!(s.execute("SELECT nope FROM t").is_err());
    let all = db.statement_stats().summaries();
    let find = |text: &str| all.iter().find(|x| x.statement == text).cloned();
    let sel = find("select v from t where k = ?").expect("one entry for both spellings");
    assert_eq!((sel.calls, sel.rows, sel.errors), (10, 200, 0));
    assert!(sel.mean <= sel.max && sel.p95 <= sel.max, "{sel:?}");
    assert!(
        sel.example.starts_with("SELECT v FROM t WHERE k = "),
        "{sel:?}"
    );
    let bad = find("select nope from t").unwrap();
    assert_eq!(bad.errors, 1);
    let insert = find("insert into t values (?, ?, ?)").expect("a VALUES list as its first row");
    assert_eq!((insert.calls, insert.rows), (1, 2000));
    // Off, nothing more is counted.
    db.statement_stats().set_enabled(false);
    s.execute("select v from t where k = 1").unwrap();
    let again = db.statement_stats().summaries();
    let sel = again
        .iter()
        .find(|x| x.statement == "select v from t where k = ?")
        .unwrap();
    assert_eq!(sel.calls, 10);
}

#[test]
fn full_scans_on_an_unindexed_column_become_index_advice_until_it_is_indexed() {
    let db = loaded();
    for k in 0..5 {
        db.execute(&format!("SELECT v FROM t WHERE k = {k} AND v <> 'x'"))
            .unwrap();
        // Primary-key lookups are no full scans: nothing to advise.
        db.execute(&format!("SELECT v FROM t WHERE id = {k}"))
            .unwrap();
    }
    let advice = index_advice(&db.stats().feedback(), &db.tables().unwrap());
    assert_eq!(advice.len(), 1, "{advice:?}");
    let a = &advice[0];
    assert_eq!((a.table.as_str(), a.column.as_str()), ("t", "k"));
    assert_eq!((a.scans, a.rows_read, a.rows_matched), (5, 10_000, 100));
    assert_eq!(a.rows_saved(), 9_900);
    assert!((a.selectivity() - 0.01).abs() < 1e-9);
    // The advice is runnable, and once followed it is gone.
    db.execute(&a.statement).unwrap();
    let advice = index_advice(&db.stats().feedback(), &db.tables().unwrap());
    assert!(advice.is_empty(), "{advice:?}");
}
