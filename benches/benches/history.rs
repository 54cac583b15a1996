//! History in SQL at growing table sizes: one row's versions and what changed between two
//! times, on ChronoDB as shipped (the audit trail on), at 10k, 100k and 1M rows.
//!
//! - `row_history_<n>`: `FOR SYSTEM_TIME ALL WHERE id = 42` — the 21 versions of one key
//!   (read by key prefix, so its cost follows the row's versions, not the table);
//! - `row_history_principal_<n>`: the same with `_principal` (a lookup in the audit trail
//!   per version's commit);
//! - `diff_100_<n>`: `DIFF(accounts, t1, t2)` over a window of 100 single-row updates (the
//!   audit trail names the keys changed, each read at both times).
//!
//! Time per query should stay flat from 10k to 1M rows. `CHRONO_BENCH_HISTORY_SCALE=10000`
//! picks the sizes (default `10000,100000,1000000`).

use chrono_sql::Outcome;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

fn commit_ts(out: Vec<Outcome>) -> u64 {
    match out.into_iter().last() {
        Some(Outcome::Affected {
            commit_ts: Some(t), ..
        }) => t,
        other => panic!("expected a commit, got {other:?}"),
    }
}

fn count(out: Vec<Outcome>) -> usize {
    match out.into_iter().last() {
        Some(Outcome::Rows { rows, .. }) => rows.len(),
        other => panic!("expected rows, got {other:?}"),
    }
}

fn history(c: &mut Criterion) {
    let mut g = c.benchmark_group("history");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in benches::sizes_from_env("CHRONO_BENCH_HISTORY_SCALE", &[10_000, 100_000, 1_000_000]) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = chrono_server::Config::with_data_dir(dir.path());
        config.features.ml_optimizer.training_interval = u64::MAX;
        let db = chrono_server::ChronoDb::open_with_config(config).expect("open ChronoDB");
        db.execute("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)")
            .unwrap();
        let mut i = 0;
        while i < n {
            let rows: Vec<String> = (i..(i + 1000).min(n))
                .map(|k| format!("({k}, 0)"))
                .collect();
            db.execute(&format!("INSERT INTO accounts VALUES {}", rows.join(",")))
                .unwrap();
            i += 1000;
        }
        for v in 1..=20 {
            db.execute(&format!("UPDATE accounts SET balance = {v} WHERE id = 42"))
                .unwrap();
        }
        let t1 = commit_ts(
            db.execute("UPDATE accounts SET balance = -1 WHERE id = 0")
                .unwrap(),
        );
        for k in 1..=100u64 {
            let key = (k * 7919) % n;
            db.execute(&format!(
                "UPDATE accounts SET balance = balance + 1 WHERE id = {key}"
            ))
            .unwrap();
        }
        let t2 = commit_ts(
            db.execute("UPDATE accounts SET balance = -2 WHERE id = 0")
                .unwrap(),
        );
        db.database().store().engine().compact().expect("compact");
        let label = format!("{}k", n / 1000);
        let mut s = db.session();
        for (name, sql) in [
            (
                "row_history",
                "SELECT balance, _system_from FROM accounts FOR SYSTEM_TIME ALL WHERE id = 42",
            ),
            (
                "row_history_principal",
                "SELECT balance, _principal FROM accounts FOR SYSTEM_TIME ALL WHERE id = 42",
            ),
        ] {
            g.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| assert_eq!(count(s.execute(sql).unwrap()), 21))
            });
        }
        let at = |t: u64| format!("{}.{:06}", t / 1_000_000, t % 1_000_000);
        let diff = format!("SELECT * FROM DIFF(accounts, {}, {})", at(t1), at(t2));
        g.bench_function(BenchmarkId::new("diff_100", &label), |b| {
            b.iter(|| {
                let rows = count(s.execute(&diff).unwrap());
                assert!((99..=101).contains(&rows), "{rows}");
            })
        });
        drop(s);
        drop(db);
        drop(dir);
    }
    g.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
