//! Runs one workload of the benches over and over, after its set-up, for a profiler:
//!
//! ```text
//! cargo build --release -p benches --bin profile
//! perf record -F 999 -g -- target/release/profile full_scan 20
//! ```
//!
//! Workloads: `point_select`, `point_order`, `index_range`, `full_scan`, `group_by`, `join`,
//! `bulk_insert`, `single_insert`, `update`, `as_of`, `four_writers`; then the seconds to run
//! it (default 10). The set-up (users and orders at the benches' default sizes,
//! `CHRONO_BENCH_USERS` / `CHRONO_BENCH_ORDERS` to change them) runs without ANALYZE, so no
//! estimator training shares the profile; the time it takes is printed, so a profile can
//! skip it (`perf record -D`). `CHRONO_PROFILE_ANALYZE=1` runs ANALYZE after the set-up, as
//! the compare bench does. `CHRONO_PROFILE_SPLIT_ROWS=N` sets `limits.parallel_scan_rows` (0:
//! scans on one thread). `CHRONO_PROFILE_AUDIT_OFF=1` runs with the audit trail off (the
//! benches' second ChronoDB row for writes).

use std::time::{Duration, Instant};

use benches::contenders::{Chrono, Contender, load_users_orders};
use benches::workloads::{
    concurrent_inserts, count_group_by, full_scan_filter, index_range, point_order, single_insert,
    size,
};
use chrono_storage::Value;

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "full_scan".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let users = size("CHRONO_BENCH_USERS", 10_000);
    let orders = size("CHRONO_BENCH_ORDERS", 100_000);
    let began = Instant::now();
    let mut db = if std::env::var_os("CHRONO_PROFILE_AUDIT_OFF").is_some() {
        Chrono::without_audit()
    } else {
        Chrono::new()
    };
    // `as_of`: the AS OF bench's table, 100 rows with `CHRONO_BENCH_VERSIONS` versions
    // each (default 1,000), read as of the middle of their history.
    let versions = size("CHRONO_BENCH_VERSIONS", 1000);
    let mut middle = 0;
    if workload == "as_of" {
        middle = db.accounts_with_versions(versions);
    } else {
        load_users_orders(&mut db, users, orders);
    }
    if std::env::var_os("CHRONO_PROFILE_ANALYZE").is_some() {
        // As the compare bench does (the learned estimator then trains in the background).
        db.run("ANALYZE");
    }
    if let Some(n) = std::env::var("CHRONO_PROFILE_SPLIT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        db.db()
            .database()
            .set_limits(chrono_sql::Limits {
                parallel_scan_rows: n,
                ..chrono_sql::Limits::default()
            })
            .expect("limits");
    }
    if std::env::var_os("CHRONO_PROFILE_FLUSH").is_some() {
        let engine = db.db().database().store().engine().clone();
        engine.flush().expect("flush");
        if std::env::var_os("CHRONO_PROFILE_COMPACT").is_some() {
            engine.compact().expect("compact");
        }
    }
    // `four_writers`: as the writes bench, four sessions inserting at once.
    let mut writers: Vec<Box<dyn Contender + Send>> = match workload.as_str() {
        "four_writers" => (0..4).map(|_| db.connection()).collect(),
        _ => Vec::new(),
    };
    eprintln!("set-up took {} ms", began.elapsed().as_millis());
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut i, mut runs, mut next_id) = (0i64, 0u64, users.max(orders));
    let timer = Instant::now();
    while Instant::now() < until {
        for _ in 0..10 {
            i = (i + 7919) % users;
            match workload.as_str() {
                "point_select" => {
                    db.rows("SELECT name FROM users WHERE id = ?", &[i]);
                }
                // As the scale bench: a primary-key read of one order.
                "point_order" => {
                    point_order(&mut db, (i * 7919 + runs as i64) % orders);
                }
                "index_range" => {
                    index_range(&mut db, i);
                }
                "full_scan" => {
                    full_scan_filter(&mut db);
                }
                "group_by" => {
                    count_group_by(&mut db);
                }
                "join" => {
                    db.rows(
                        "SELECT users.name, COUNT(orders.id) AS order_count FROM users JOIN orders \
                         ON users.id = orders.user_id WHERE users.created_at < ? GROUP BY users.id \
                         HAVING COUNT(orders.id) > 5",
                        &[1_633_000_000],
                    );
                }
                // As the writes bench: users rows, 1,000 per statement.
                "bulk_insert" => {
                    let rows: Vec<String> = (next_id..next_id + 1000)
                        .map(|id| format!("({id}, 'user {id}', {id})"))
                        .collect();
                    next_id += 1000;
                    db.run(&format!("INSERT INTO users VALUES {}", rows.join(",")));
                }
                // As the writes bench: one autocommit row at a time.
                "single_insert" => {
                    single_insert(&mut db, next_id);
                    next_id += 1;
                }
                "update" => {
                    db.rows("UPDATE orders SET total = total + 1 WHERE id = ?", &[i]);
                }
                "as_of" => {
                    db.rows_with(
                        "SELECT balance FROM accounts AS OF TIMESTAMP ? WHERE id = ?",
                        &[Value::Timestamp(middle), Value::Int(i % 100)],
                    );
                }
                "four_writers" => {
                    concurrent_inserts(&mut writers, next_id);
                    next_id += 100;
                }
                other => panic!("no workload {other}"),
            }
            runs += 1;
        }
    }
    eprintln!(
        "{workload}: {runs} runs, {:.1} µs each",
        timer.elapsed().as_secs_f64() * 1e6 / runs as f64
    );
    drop(writers);
    let store = db.db().database().store();
    eprintln!(
        "commits: {}, engine writes: {}",
        store.current_seq(),
        store.commit_writes()
    );
}
