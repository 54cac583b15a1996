//! The read workloads the `compare` and `scale` benches and the `profile` binary share:
//! one statement each, so every report measures the same thing.

use crate::contenders::Contender;

/// An integer from the environment (`1_000_000` allowed), or `default`.
pub fn size(var: &str, default: i64) -> i64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// `10k`, `100k`, `1M`: a size in a bench name (the report reads it back).
pub fn label(n: i64) -> String {
    if n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

/// The orders of users `first..=first + 20`, through the index on `user_id`.
pub fn index_range(db: &mut dyn Contender, first: i64) -> usize {
    db.rows(
        "SELECT id, total FROM orders WHERE user_id BETWEEN ? AND ?",
        &[first, first + 20],
    )
}

/// One order by its primary key.
pub fn point_order(db: &mut dyn Contender, id: i64) -> usize {
    db.rows("SELECT total FROM orders WHERE id = ?", &[id])
}

/// One user inserted by an autocommit statement.
pub fn single_insert(db: &mut dyn Contender, id: i64) {
    db.rows("INSERT INTO users VALUES (?, 'single', ?)", &[id, id]);
}

/// Every order, filtered on two columns.
pub fn full_scan_filter(db: &mut dyn Contender) -> usize {
    db.rows(
        "SELECT id FROM orders WHERE total > ? AND status = 'shipped'",
        &[400],
    )
}

/// Orders counted per status (three groups).
pub fn count_group_by(db: &mut dyn Contender) -> usize {
    let n = db.rows("SELECT status, COUNT(*) FROM orders GROUP BY status", &[]);
    assert_eq!(n, 3, "three statuses");
    n
}

/// Each of `writers` (connections to one database) inserts 25 users on its own thread, one
/// autocommit statement at a time, ids from `first` on (100 rows with four writers).
pub fn concurrent_inserts(writers: &mut [Box<dyn Contender + Send>], first: i64) {
    std::thread::scope(|s| {
        for (w, writer) in writers.iter_mut().enumerate() {
            s.spawn(move || {
                for k in 0..25 {
                    let id = first + (w * 25 + k) as i64;
                    writer.rows("INSERT INTO users VALUES (?, 'concurrent', ?)", &[id, id]);
                }
            });
        }
    });
}
