//! Statistics are written through the transaction: a rollback leaves them as they were, a
//! commit makes them the ones in use, and they belong to a table, not to its name.

use std::sync::Arc;

use chrono_sql::Database;
use chrono_storage::{MemoryEngine, Store};

fn analyzed_rows(db: &Database, table: &str) -> Option<u64> {
    let def = db.tables().ok()?.into_iter().find(|t| t.name == table)?;
    db.stats().table(def.keyspace).map(|s| s.rows)
}

fn with_rows(db: &Database, n: usize) {
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)")
        .unwrap();
    let values: Vec<String> = (0..n).map(|i| format!("({i}, {})", i % 7)).collect();
    db.execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
        .unwrap();
}

#[test]
fn a_rolled_back_drop_leaves_the_table_and_its_statistics() {
    let db = Database::in_memory();
    with_rows(&db, 30);
    db.execute("ANALYZE t").unwrap();
    assert_eq!(analyzed_rows(&db, "t"), Some(30));
    let mut s = db.session();
    s.execute("BEGIN").unwrap();
    s.execute("DROP TABLE t").unwrap();
    s.execute("ROLLBACK").unwrap();
    assert_eq!(analyzed_rows(&db, "t"), Some(30));
    assert_eq!(db.execute("SELECT COUNT(*) FROM t").unwrap().len(), 1);
    // Committed, the drop takes the statistics with it; a new table of the same name has
    // none.
    db.execute("DROP TABLE t").unwrap();
    assert_eq!(analyzed_rows(&db, "t"), None);
    with_rows(&db, 5);
    assert_eq!(analyzed_rows(&db, "t"), None);
}

#[test]
fn analyze_in_a_transaction_counts_only_when_it_commits() {
    let db = Database::in_memory();
    with_rows(&db, 10);
    db.execute("ANALYZE t").unwrap();
    let mut s = db.session();
    s.execute("BEGIN").unwrap();
    s.execute("INSERT INTO t VALUES (100, 1), (101, 2)")
        .unwrap();
    s.execute("ANALYZE t").unwrap();
    s.execute("ROLLBACK").unwrap();
    assert_eq!(analyzed_rows(&db, "t"), Some(10));
    s.execute("BEGIN").unwrap();
    s.execute("INSERT INTO t VALUES (100, 1), (101, 2)")
        .unwrap();
    s.execute("ANALYZE t").unwrap();
    // Not in use before the commit.
    assert_eq!(analyzed_rows(&db, "t"), Some(10));
    s.execute("COMMIT").unwrap();
    assert_eq!(analyzed_rows(&db, "t"), Some(12));
}

#[test]
fn committed_statistics_are_there_after_a_reopen() {
    let engine = Arc::new(MemoryEngine::new());
    {
        let db = Database::new(Store::open(engine.clone()).unwrap());
        with_rows(&db, 20);
        db.analyze("t").unwrap();
        assert_eq!(analyzed_rows(&db, "t"), Some(20));
    }
    let db = Database::new(Store::open(engine).unwrap());
    assert_eq!(analyzed_rows(&db, "t"), Some(20));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Stored statistics are decoded as hostile input: arbitrary bytes, or a genuine
    /// encoding cut or changed, give statistics or nothing — never a panic.
    #[test]
    fn statistics_decode_any_bytes(
        raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        at in proptest::prelude::any::<usize>(),
        flip in 1u8..=255,
    ) {
        let _ = chrono_sql::TableStats::decode(&raw);
        let rows: Vec<Vec<chrono_storage::Value>> = (0..20)
            .map(|i| vec![chrono_storage::Value::Int(i % 4), chrono_storage::Value::Text(format!("t{i}"))])
            .collect();
        let good = chrono_sql::TableStats::compute(2, &rows).encode();
        proptest::prop_assert!(chrono_sql::TableStats::decode(&good).is_some());
        let i = at % good.len();
        let _ = chrono_sql::TableStats::decode(&good[..i]);
        let mut changed = good.clone();
        changed[i] ^= flip;
        let _ = chrono_sql::TableStats::decode(&changed);
    }
}

/// Records the row counts the estimator was taught with.
#[derive(Default)]
struct Recording(parking_lot::Mutex<Vec<usize>>);

impl chrono_sql::CardinalityEstimator for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn estimate_scan(
        &self,
        table: &chrono_sql::catalog::TableDef,
        stats: Option<&chrono_sql::TableStats>,
        filter: Option<&chrono_sql::expr::Expr>,
    ) -> chrono_sql::cost::Estimate {
        chrono_sql::StatisticsEstimator.estimate_scan(table, stats, filter)
    }

    fn analyzed(
        &self,
        _table: &chrono_sql::catalog::TableDef,
        rows: Vec<Vec<chrono_storage::Value>>,
        _stats: &chrono_sql::TableStats,
    ) {
        self.0.lock().push(rows.len());
    }
}

#[test]
fn the_estimator_learns_from_an_analyze_only_once_it_commits() {
    let db = Database::in_memory();
    with_rows(&db, 10);
    let recording = Arc::new(Recording::default());
    db.set_estimator(recording.clone());
    let mut s = db.session();
    s.execute("BEGIN").unwrap();
    s.execute("INSERT INTO t VALUES (100, 1)").unwrap();
    s.execute("ANALYZE t").unwrap();
    assert!(recording.0.lock().is_empty(), "taught before the commit");
    s.execute("ROLLBACK").unwrap();
    assert!(
        recording.0.lock().is_empty(),
        "taught by a rolled-back ANALYZE"
    );
    s.execute("BEGIN").unwrap();
    s.execute("INSERT INTO t VALUES (100, 1), (101, 2)")
        .unwrap();
    s.execute("ANALYZE t").unwrap();
    s.execute("COMMIT").unwrap();
    assert_eq!(*recording.0.lock(), vec![12]);
    // A failing statement is undone alone: the ANALYZE before it in the transaction still
    // teaches, once, at the commit.
    s.execute("BEGIN").unwrap();
    s.execute("ANALYZE t").unwrap();
    assert!(s.execute("ANALYZE nope").is_err());
    s.execute("COMMIT").unwrap();
    assert_eq!(*recording.0.lock(), vec![12, 12]);
}
