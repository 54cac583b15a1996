//! ChronoDB against SQLite (and raw RocksDB, the floor) on writes: bulk inserts in
//! batches of 1,000 rows, single-row autocommit inserts, and an UPDATE-heavy load
//! (`balance = balance + 1` on random rows), each statement its own transaction. ChronoDB
//! runs twice: with its default configuration (audit trail on) and with the audit trail off.

use benches::contenders::{Chrono, Contender, RawRocks, Sqlite};
use benches::workloads::{concurrent_inserts, single_insert};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn contenders() -> Vec<Box<dyn Contender>> {
    vec![
        Box::new(Chrono::new()),
        Box::new(Chrono::without_audit()),
        Box::new(Sqlite::new()),
    ]
}

fn writes(c: &mut Criterion) {
    // A bench run before this one (the scale bench writes gigabytes) may leave the kernel
    // writing its files out for a while; writes measured meanwhile wait on that. Settle it.
    let _ = std::process::Command::new("sync").status();
    let mut g = c.benchmark_group("compare");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for mut db in contenders() {
        let name = db.name();
        db.run("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, created_at BIGINT)");
        db.run("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)");
        let rows: Vec<String> = (0..10_000).map(|i| format!("({i}, 0)")).collect();
        for chunk in rows.chunks(1000) {
            db.run(&format!("INSERT INTO accounts VALUES {}", chunk.join(",")));
        }
        let mut next = 0i64;
        g.bench_function(BenchmarkId::new("bulk_insert_1000_rows", name), |b| {
            b.iter(|| {
                let values: Vec<String> = (next..next + 1000)
                    .map(|i| format!("({i}, 'user {i}', {i})"))
                    .collect();
                next += 1000;
                db.run(&format!("INSERT INTO users VALUES {}", values.join(",")));
            })
        });
        g.bench_function(BenchmarkId::new("single_row_insert", name), |b| {
            b.iter(|| {
                next += 1;
                single_insert(db.as_mut(), next);
            })
        });
        // Four writers at once, each inserting 25 rows, one autocommit statement at a
        // time: ChronoDB writes the commits that queue up behind one another together
        // (group commit); SQLite's writers take turns on its write lock.
        let mut writers: Vec<Box<dyn Contender + Send>> = (0..4).map(|_| db.connection()).collect();
        g.bench_function(BenchmarkId::new("four_writers_100_inserts", name), |b| {
            b.iter(|| {
                concurrent_inserts(&mut writers, next + 1);
                next += 100;
            })
        });
        drop(writers);
        let mut i = 0i64;
        g.bench_function(BenchmarkId::new("update_balance_10k_accounts", name), |b| {
            b.iter(|| {
                i = (i + 7919) % 10_000;
                db.rows(
                    "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                    &[i],
                );
            })
        });
    }
    let raw = RawRocks::new();
    let mut next = 0i64;
    g.bench_function(BenchmarkId::new("bulk_insert_1000_rows", raw.name()), |b| {
        b.iter(|| {
            raw.insert_users(next, 1000);
            next += 1000;
        })
    });
    g.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
