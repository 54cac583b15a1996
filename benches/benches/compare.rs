//! ChronoDB against SQLite on the same statements: point SELECT, a filtered full scan, the
//! brief's join with GROUP BY / HAVING, and a point read AS OF on a key with 1,000 versions
//! (SQLite emulating AS OF with a history table and an index on (id, valid_from)).

use benches::contenders::{Chrono, Contender, Sqlite, load_users_orders};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const USERS: i64 = 10_000;
const ORDERS: i64 = 100_000;

fn contenders() -> Vec<Box<dyn Contender>> {
    vec![Box::new(Chrono::new()), Box::new(Sqlite::new())]
}

fn queries(c: &mut Criterion) {
    let mut g = c.benchmark_group("compare");
    g.sample_size(20);
    for mut db in contenders() {
        load_users_orders(db.as_mut(), USERS, ORDERS);
        db.run("ANALYZE");
        let name = db.name();
        let mut i = 0i64;
        g.bench_function(BenchmarkId::new("point_select_10k_users", name), |b| {
            b.iter(|| {
                i = (i + 7919) % USERS;
                assert_eq!(db.rows("SELECT name FROM users WHERE id = ?", &[i]), 1);
            })
        });
        g.bench_function(
            BenchmarkId::new("full_scan_filter_100k_orders", name),
            |b| {
                b.iter(|| {
                    db.rows(
                        "SELECT id FROM orders WHERE total > ? AND status = 'shipped'",
                        &[400],
                    )
                })
            },
        );
        g.bench_function(BenchmarkId::new("briefs_join_10k_users_100k_orders", name), |b| {
            b.iter(|| {
                db.rows(
                    "SELECT users.name, COUNT(orders.id) AS order_count FROM users JOIN orders ON users.id = orders.user_id \
                     WHERE users.created_at < ? GROUP BY users.id HAVING COUNT(orders.id) > 5",
                    &[1_633_000_000],
                )
            })
        });
    }
    g.finish();
}

fn as_of(c: &mut Criterion) {
    const VERSIONS: i64 = 1000;
    let mut g = c.benchmark_group("compare_as_of_point_read_1000_versions");
    g.sample_size(30);
    // ChronoDB: 100 rows, each updated until it has 1,000 versions; read as of the middle.
    let mut chrono = Chrono::new();
    chrono.run("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)");
    let rows: Vec<String> = (0..100).map(|i| format!("({i}, 0)")).collect();
    chrono.run(&format!("INSERT INTO accounts VALUES {}", rows.join(",")));
    let mut stamps = Vec::new();
    for _ in 1..VERSIONS {
        chrono.run("UPDATE accounts SET balance = balance + 1");
        stamps.push(chrono.db().database().store().current_ts());
    }
    let middle = stamps[stamps.len() / 2] as i64;
    g.bench_function("ChronoDB", |b| {
        b.iter(|| {
            let n = chrono.db().execute_with_params(
                "SELECT balance FROM accounts AS OF TIMESTAMP ? WHERE id = ?",
                &[
                    chrono_storage::Value::Timestamp(middle),
                    chrono_storage::Value::Int(50),
                ],
            );
            assert!(n.is_ok());
        })
    });
    // SQLite: the usual emulation, a history table with validity intervals.
    let mut sqlite = Sqlite::new();
    sqlite.run("CREATE TABLE accounts_history (id BIGINT, valid_from BIGINT, valid_to BIGINT, balance BIGINT)");
    sqlite.run("CREATE INDEX accounts_history_id ON accounts_history (id, valid_from)");
    for v in 0..VERSIONS {
        let rows: Vec<String> = (0..100)
            .map(|i| {
                let to = if v + 1 == VERSIONS {
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
    let t = VERSIONS / 2;
    g.bench_function("SQLite_history_table", |b| {
        b.iter(|| {
            let n = sqlite.rows(
                "SELECT balance FROM accounts_history WHERE id = ?1 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2) \
                 ORDER BY valid_from DESC LIMIT 1",
                &[50, t],
            );
            assert_eq!(n, 1);
        })
    });
    g.finish();
}

criterion_group!(benches, queries, as_of);
criterion_main!(benches);
