//! How cost grows with size: the read workloads of `compare` at 10k, 100k and 1M orders
//! (users a tenth of that, so an index range reads about the same number of rows at every
//! size), ChronoDB and SQLite in the same run.
//!
//! - `point_select_orders_<n>`: a primary-key read of one order — the 1M-row point-read
//!   table at the largest size; time per query, which should stay flat;
//! - `index_range_<n>`: orders of 21 consecutive users through the index (about 210 rows at
//!   every size); time per query, which should stay flat;
//! - `full_scan_filter_<n>` and `count_group_by_<n>`: every order; the report divides by
//!   the rows to show time per row.
//!
//! Each database is compacted after loading (`Contender::settle`): reads are measured on
//! files of the sizes a database in use has, where a whole-file filter block outgrew its
//! cache shard and was read again for every lookup (fixed by partitioned filters and
//! larger cache shards).
//!
//! `CHRONO_BENCH_SCALE=10000,100000` picks the sizes (default `10000,100000,1000000`).
//! `cargo run --release -p benches --bin report` prints the table.

use benches::contenders::{Chrono, Contender, Sqlite, load_users_orders};
use benches::workloads::{count_group_by, full_scan_filter, index_range, label, point_order};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn sizes() -> Vec<i64> {
    benches::sizes_from_env("CHRONO_BENCH_SCALE", &[10_000, 100_000, 1_000_000])
        .into_iter()
        .map(|n| n as i64)
        .collect()
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for orders in sizes() {
        let users = (orders / 10).max(1);
        let n = label(orders);
        for mut db in [
            Box::new(Chrono::new()) as Box<dyn Contender>,
            Box::new(Sqlite::new()),
        ] {
            load_users_orders(db.as_mut(), users, orders);
            db.run("ANALYZE");
            // Files as a database in use has them: compacted into large ones.
            db.settle();
            let name = db.name();
            let mut i = 0i64;
            g.bench_function(
                BenchmarkId::new(format!("point_select_orders_{n}"), name),
                |b| {
                    b.iter(|| {
                        i = (i + 7919) % orders;
                        assert_eq!(point_order(db.as_mut(), i), 1);
                    })
                },
            );
            g.bench_function(BenchmarkId::new(format!("index_range_{n}"), name), |b| {
                b.iter(|| {
                    i = (i + 7919) % users;
                    index_range(db.as_mut(), i)
                })
            });
            g.bench_function(
                BenchmarkId::new(format!("full_scan_filter_{n}"), name),
                |b| b.iter(|| full_scan_filter(db.as_mut())),
            );
            g.bench_function(BenchmarkId::new(format!("count_group_by_{n}"), name), |b| {
                b.iter(|| count_group_by(db.as_mut()))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
