//! ChronoDB against SQLite (and raw RocksDB, the floor) on the same statements: reads.
//!
//! - point SELECT by primary key (10k users; 100k with `CHRONO_BENCH_USERS=100000`…);
//! - range scan through a secondary index, full scan with a filter, COUNT(*) GROUP BY;
//! - the users-orders join (users JOIN orders, GROUP BY, HAVING);
//! - a point read AS OF on keys with 1, 10, 100 and 1,000 versions, SQLite emulating AS OF
//!   with a history table and an index on (id, valid_from).
//!
//! Sizes are in the bench names; set `CHRONO_BENCH_USERS` / `CHRONO_BENCH_ORDERS` for
//! bigger runs. `cargo run --release -p benches --bin report` prints the table.

use benches::contenders::{Chrono, Contender, RawRocks, Sqlite, load_users_orders};
use benches::workloads::{count_group_by, full_scan_filter, index_range, label, size};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn contenders() -> Vec<Box<dyn Contender>> {
    vec![Box::new(Chrono::new()), Box::new(Sqlite::new())]
}

fn queries(c: &mut Criterion) {
    let users = size("CHRONO_BENCH_USERS", 10_000);
    let orders = size("CHRONO_BENCH_ORDERS", 100_000);
    let (u, o) = (label(users), label(orders));
    let mut g = c.benchmark_group("compare");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for mut db in contenders() {
        load_users_orders(db.as_mut(), users, orders);
        db.run("ANALYZE");
        let name = db.name();
        let mut i = 0i64;
        g.bench_function(
            BenchmarkId::new(format!("point_select_{u}_users"), name),
            |b| {
                b.iter(|| {
                    i = (i + 7919) % users;
                    assert_eq!(db.rows("SELECT name FROM users WHERE id = ?", &[i]), 1);
                })
            },
        );
        g.bench_function(
            BenchmarkId::new(format!("index_range_scan_{o}_orders"), name),
            |b| {
                b.iter(|| {
                    i = (i + 7919) % users;
                    index_range(db.as_mut(), i)
                })
            },
        );
        g.bench_function(
            BenchmarkId::new(format!("full_scan_filter_{o}_orders"), name),
            |b| b.iter(|| full_scan_filter(db.as_mut())),
        );
        g.bench_function(
            BenchmarkId::new(format!("count_group_by_{o}_orders"), name),
            |b| b.iter(|| count_group_by(db.as_mut())),
        );
        g.bench_function(BenchmarkId::new(format!("users_orders_join_{u}_users_{o}_orders"), name), |b| {
            b.iter(|| {
                db.rows(
                    "SELECT users.name, COUNT(orders.id) AS order_count FROM users JOIN orders ON users.id = orders.user_id \
                     WHERE users.created_at < ? GROUP BY users.id HAVING COUNT(orders.id) > 5",
                    &[1_633_000_000],
                )
            })
        });
    }
    // The floor.
    let raw = RawRocks::new();
    raw.load_users_orders(users, orders);
    let mut i = 0i64;
    g.bench_function(
        BenchmarkId::new(format!("point_select_{u}_users"), raw.name()),
        |b| {
            b.iter(|| {
                i = (i + 7919) % users;
                assert!(raw.get_user(i).is_some());
            })
        },
    );
    g.bench_function(
        BenchmarkId::new(format!("full_scan_filter_{o}_orders"), raw.name()),
        |b| b.iter(|| raw.scan_orders(400.0)),
    );
    g.finish();
}

fn as_of(c: &mut Criterion) {
    let mut g = c.benchmark_group("compare");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for versions in [1i64, 10, 100, 1000] {
        let bench = format!("as_of_point_read_{versions}_versions");
        // ChronoDB: 100 rows, each updated until it has `versions` versions; read as of
        // the middle of the history.
        let mut chrono = Chrono::new();
        let middle = chrono.accounts_with_versions(versions);
        g.bench_function(BenchmarkId::new(&bench, "ChronoDB"), |b| {
            b.iter(|| {
                let n = chrono.rows_with(
                    "SELECT balance FROM accounts AS OF TIMESTAMP ? WHERE id = ?",
                    &[
                        chrono_storage::Value::Timestamp(middle),
                        chrono_storage::Value::Int(50),
                    ],
                );
                assert_eq!(n, 1);
            })
        });
        // SQLite: the usual emulation, a history table with validity intervals.
        let mut sqlite = Sqlite::new();
        sqlite.run(
            "CREATE TABLE accounts_history (id BIGINT, valid_from BIGINT, valid_to BIGINT, balance BIGINT)",
        );
        sqlite.run("CREATE INDEX accounts_history_id ON accounts_history (id, valid_from)");
        for v in 0..versions {
            let rows: Vec<String> = (0..100)
                .map(|i| {
                    let to = if v + 1 == versions {
                        "NULL".to_string()
                    } else {
                        (v + 1).to_string()
                    };
                    format!("({i}, {v}, {to}, {v})")
                })
                .collect();
            sqlite.run(&format!(
                "INSERT INTO accounts_history VALUES {}",
                rows.join(",")
            ));
        }
        let t = versions / 2;
        g.bench_function(BenchmarkId::new(&bench, "SQLite"), |b| {
            b.iter(|| {
                let n = sqlite.rows(
                    "SELECT balance FROM accounts_history WHERE id = ?1 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2) \
                     ORDER BY valid_from DESC LIMIT 1",
                    &[50, t],
                );
                assert_eq!(n, 1);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, queries, as_of);
criterion_main!(benches);
