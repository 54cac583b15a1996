//! ChronoDB on a 3-member etcd cluster (loopback, started by the bench) against ChronoDB on
//! RocksDB, same statements: point SELECT, full scan with a filter, bulk insert of 1,000
//! rows, single-row insert. What replication costs: every etcd read is a linearizable
//! round trip to the leader, every commit a Raft round with an fsync on a majority.

use benches::contenders::{Chrono, Contender, load_users_orders};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn etcd(c: &mut Criterion) {
    let users = 10_000;
    let orders = 100_000;
    let cluster = chrono_etcd::cluster::LocalCluster::start(3).expect("an etcd cluster");
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("etcd");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let contenders: Vec<Box<dyn Contender>> = vec![
        Box::new(Chrono::new()),
        Box::new(Chrono::on_etcd(cluster.endpoints(), "bench/", dir.path())),
    ];
    for mut db in contenders {
        load_users_orders(db.as_mut(), users, orders);
        db.run("ANALYZE");
        let name = db.name();
        let mut i = 0i64;
        g.bench_function(BenchmarkId::new("point_select_10k_users", name), |b| {
            b.iter(|| {
                i = (i + 7919) % users;
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
                    );
                })
            },
        );
        db.run("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT, created_at BIGINT)");
        let mut next = 0i64;
        g.bench_function(BenchmarkId::new("bulk_insert_1000_rows", name), |b| {
            b.iter(|| {
                let values: Vec<String> = (next..next + 1000)
                    .map(|i| format!("({i}, 'item {i}', {i})"))
                    .collect();
                next += 1000;
                db.run(&format!("INSERT INTO items VALUES {}", values.join(",")));
            })
        });
        g.bench_function(BenchmarkId::new("single_row_insert", name), |b| {
            b.iter(|| {
                next += 1;
                db.rows("INSERT INTO items VALUES (?, 'single', ?)", &[next, next]);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, etcd);
criterion_main!(benches);
