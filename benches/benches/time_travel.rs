//! Time travel: a point read AS OF on keys with 1…1,000 versions, and a current-state scan
//! with 1 vs 10 versions per row — the cost must not grow with history. `history_by_key`:
//! one row's history (`FOR SYSTEM_TIME ALL WHERE id = ?`), and a SELECT and an UPDATE of 29
//! keys by `IN (…)`, on tables of 10k and 1M rows (files compacted as a database in use has
//! them) — the cost must not grow with the table. `CHRONO_BENCH_HISTORY_ROWS=10000,100000`
//! picks the sizes.

use chrono_sql::Outcome;
use chrono_storage::{KeyRange, Value};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const KS: u32 = 7;

fn point_read_as_of(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage_point_read");
    for versions in [1u64, 10, 100, 1000] {
        let (store, _dir) = benches::rocks_store();
        // 1,000 keys, so the versions share blocks with neighbours, as in a real table.
        let rounds = benches::store_with_history(&store, KS, 1000, versions);
        let middle = rounds[rounds.len() / 2];
        let key = 500u64.to_be_bytes();
        g.bench_with_input(
            BenchmarkId::new("as_of_middle", format!("{versions}_versions")),
            &versions,
            |b, _| b.iter(|| black_box(store.get_at(KS, &key, middle).expect("read"))),
        );
        g.bench_with_input(
            BenchmarkId::new("current", format!("{versions}_versions")),
            &versions,
            |b, _| b.iter(|| black_box(store.get_at(KS, &key, u64::MAX).expect("read"))),
        );
    }
    g.finish();
}

fn current_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage_current_scan_10k_rows");
    g.sample_size(20);
    for versions in [1u64, 10] {
        let (store, _dir) = benches::rocks_store();
        benches::store_with_history(&store, KS, 10_000, versions);
        let scan = |b: &mut criterion::Bencher| {
            b.iter(|| {
                let n = store
                    .scan_at(KS, KeyRange::All, u64::MAX)
                    .expect("scan")
                    .count();
                assert_eq!(n, 10_000);
            })
        };
        // Right after the writes, RocksDB's memtable still holds every overwritten entry of
        // the latest family; after compaction (which RocksDB runs as data grows) it does not.
        g.bench_function(
            BenchmarkId::new("fresh", format!("{versions}_versions_per_row")),
            scan,
        );
        store.engine().compact().expect("compact");
        g.bench_function(
            BenchmarkId::new("compacted", format!("{versions}_versions_per_row")),
            scan,
        );
    }
    g.finish();
}

fn sql_as_of(c: &mut Criterion) {
    let mut g = c.benchmark_group("sql_point_select_as_of");
    g.sample_size(30);
    for versions in [1u64, 100, 1000] {
        let (db, stamps) = benches::sql_with_history(100, versions);
        let ts = benches::seconds(stamps[stamps.len() / 2]);
        let sql = format!("SELECT balance FROM accounts AS OF TIMESTAMP {ts} WHERE id = 50");
        let prepared = chrono_sql::parse(&sql).expect("parse").remove(0);
        let mut session = db.session();
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{versions}_versions")),
            &versions,
            |b, _| {
                b.iter(|| {
                    let out = session.run(&prepared, &[]).expect("query");
                    let Outcome::Rows { rows, .. } = out else {
                        panic!("rows expected")
                    };
                    assert!(matches!(rows[0][0], Value::Int(_)));
                })
            },
        );
    }
    g.finish();
}

fn history_sizes() -> Vec<u64> {
    benches::sizes_from_env("CHRONO_BENCH_HISTORY_ROWS", &[10_000, 1_000_000])
}

fn history_by_key(c: &mut Criterion) {
    let mut g = c.benchmark_group("history_by_key");
    g.sample_size(30);
    for rows in history_sizes() {
        let (db, _) = benches::sql_with_history(rows, 1);
        // Row 42 has eleven versions.
        for _ in 0..10 {
            db.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 42")
                .expect("update");
        }
        db.database().store().engine().compact().expect("compact");
        let n = benches::workloads::label(rows as i64);
        let mut session = db.session();
        let history = chrono_sql::parse(
            "SELECT balance, _system_from FROM accounts FOR SYSTEM_TIME ALL WHERE id = 42",
        )
        .expect("parse")
        .remove(0);
        g.bench_function(format!("one_row_history_{n}_rows"), |b| {
            b.iter(|| {
                let Outcome::Rows { rows, .. } = session.run(&history, &[]).expect("query") else {
                    panic!("rows expected")
                };
                assert_eq!(rows.len(), 11);
            })
        });
        let ids: Vec<String> = (0..29).map(|i| ((i * 7919) % rows).to_string()).collect();
        let list = ids.join(", ");
        let select = chrono_sql::parse(&format!(
            "SELECT balance FROM accounts WHERE id IN ({list})"
        ))
        .expect("parse")
        .remove(0);
        g.bench_function(format!("in_list_select_29_{n}_rows"), |b| {
            b.iter(|| {
                let Outcome::Rows { rows, .. } = session.run(&select, &[]).expect("query") else {
                    panic!("rows expected")
                };
                assert_eq!(rows.len(), 29);
            })
        });
        let update = chrono_sql::parse(&format!(
            "UPDATE accounts SET balance = balance + 1 WHERE id IN ({list})"
        ))
        .expect("parse")
        .remove(0);
        g.bench_function(format!("in_list_update_29_{n}_rows"), |b| {
            b.iter(|| {
                let out = session.run(&update, &[]).expect("update");
                assert!(matches!(out, Outcome::Affected { affected: 29, .. }));
            })
        });
    }
    g.finish();
}

/// A point SELECT run from its kept plan against the same statement parsed and planned
/// at every execution: what plan reuse saves.
fn prepared_point_select(c: &mut Criterion) {
    let mut g = c.benchmark_group("prepared_point_select");
    g.sample_size(30);
    let (db, _) = benches::sql_with_history(100, 1);
    let sql = "SELECT balance FROM accounts WHERE id = ?";
    let mut session = db.session();
    let mut id = 0i64;
    let mut next = move || {
        id = (id + 37) % 100;
        [Value::Int(id)]
    };
    g.bench_function("parsed_and_planned_each_time", |b| {
        b.iter(|| {
            let fresh = chrono_sql::parse(sql).expect("parse").remove(0);
            let out = session.run(&fresh, &next()).expect("query");
            assert!(matches!(out, Outcome::Rows { ref rows, .. } if rows.len() == 1));
        })
    });
    let prepared = chrono_sql::parse(sql).expect("parse").remove(0);
    let (built_before, _) = db.database().plan_counts();
    g.bench_function("prepared_plan_kept", |b| {
        b.iter(|| {
            let out = session.run(&prepared, &next()).expect("query");
            assert!(matches!(out, Outcome::Rows { ref rows, .. } if rows.len() == 1));
        })
    });
    let (built_after, reused) = db.database().plan_counts();
    // (Nothing ran when a filter left the bench out.)
    if reused > 0 {
        assert_eq!(built_after, built_before + 1, "planned once, then reused");
    }
    // What the health report's statement statistics cost each statement.
    db.database().statement_stats().set_enabled(false);
    g.bench_function("prepared_plan_kept_statement_stats_off", |b| {
        b.iter(|| {
            let out = session.run(&prepared, &next()).expect("query");
            assert!(matches!(out, Outcome::Rows { ref rows, .. } if rows.len() == 1));
        })
    });
    db.database().statement_stats().set_enabled(true);
    g.finish();
}

criterion_group!(
    benches,
    point_read_as_of,
    current_scan,
    sql_as_of,
    prepared_point_select,
    history_by_key
);
criterion_main!(benches);
