//! Table statistics, the [`CardinalityEstimator`] the planner asks, the statistics
//! baseline, and the feedback the executor records for learned estimators.
//!
//! `ANALYZE [table]` reads every row once and keeps, per table, the row count and per
//! column the number of NULLs, the number of distinct values, the most common values with
//! their counts and an equi-depth histogram of the rest. Estimates then follow the
//! classic rules: equality on a most-common value uses its frequency, other equalities
//! `1/distinct` of the non-MCV rows, ranges the histogram fraction, conjunctions multiply
//! (independence), disjunctions add minus the overlap.
//!
//! | file | job |
//! |---|---|
//! | `statistics.rs` | what ANALYZE computes and keeps |
//! | `estimator.rs` | the estimator trait, the statistics baseline, selectivity |
//! | `registry.rs` | statistics and scan feedback shared by sessions |
//! | `advice.rs` | index advice from the full scans the feedback records |

mod advice;
mod estimator;
mod registry;
mod statistics;

pub use advice::{IndexAdvice, index_advice};
pub use estimator::{
    CardinalityEstimator, DEFAULT_ROWS, Estimate, StatisticsEstimator, known_rows, selectivity,
};
pub use registry::{Feedback, ScanStats, StatsRegistry};
pub use statistics::{COMPLETE_VALUES, ColumnStats, TableStats};

/// What the optimizer's cost comparisons count in: reading one row of a sequential scan
/// (a stored row stepped over by the iterator, its filter tested) costs 1.
pub const SEQUENTIAL_ROW_COST: f64 = 1.0;

/// A seek by key — a primary-key read, or the first entry of an index range — in
/// sequential rows. Measured with the benches' tables held in the memtable: a scan reads
/// about 370 ns per row, a key read through the SQL layer takes 3–4 µs (the skip list's
/// cache misses and an iterator per seek).
pub const SEEK_COST: f64 = 10.0;

/// Reading the row an index entry names (a point read of the table's current row), in
/// sequential rows, for a table `ANALYZE` has not measured: the index range bench reads
/// about 3.6 µs per row, ten scanned rows. `ANALYZE` measures it per table
/// (`TableStats::fetch_cost`, read through [`ScanStats::fetch_cost`]): it times fetching a thousand random rows by key against
/// its own scan of the table.
pub const FETCH_COST: f64 = 10.0;

/// Reading one index entry, in sequential rows (entries are short: a key and a primary
/// key).
pub const INDEX_ENTRY_COST: f64 = 0.5;

#[cfg(test)]
mod tests {
    use chrono_storage::Value;

    use super::*;
    use crate::expr::{CmpOp, Expr};

    #[test]
    fn estimates_follow_the_data() {
        let rows: Vec<Vec<Value>> = (0..1000)
            .map(|i| {
                vec![
                    Value::Int(i),
                    Value::Int(if i % 10 == 0 { 7 } else { i % 100 }),
                ]
            })
            .collect();
        let stats = TableStats::compute(2, &rows);
        let col = |c| Box::new(Expr::Column(c));
        let lit = |v| Box::new(Expr::Literal(Value::Int(v)));
        let range = Expr::Cmp(CmpOp::Lt, col(0), lit(250));
        let e = StatisticsEstimator::rows(Some(&stats), Some(&range));
        assert!((200.0..300.0).contains(&e), "{e}");
        let common = Expr::Cmp(CmpOp::Eq, col(1), lit(7));
        let e = StatisticsEstimator::rows(Some(&stats), Some(&common));
        assert!((90.0..130.0).contains(&e), "{e}");
        let outside = Expr::Cmp(CmpOp::Eq, col(0), lit(5000));
        assert_eq!(StatisticsEstimator::rows(Some(&stats), Some(&outside)), 0.0);
        let back = TableStats::decode(&stats.encode()).unwrap();
        assert_eq!(back.rows, stats.rows);
        assert_eq!(back.columns[1].mcv, stats.columns[1].mcv);
        assert_eq!(back.columns[0].histogram, stats.columns[0].histogram);
        assert!(TableStats::decode(b"garbage").is_none());
    }

    #[test]
    fn a_sample_estimates_the_whole_table() {
        // 100,000 rows: a unique column, one of 47 values, one NULL in four; a tenth of the rows
        // row sampled, spread over the table as ANALYZE's reservoir keeps them.
        let row = |i: i64| {
            vec![
                Value::Int(i),
                Value::Int(i % 47),
                if i % 4 == 0 {
                    Value::Null
                } else {
                    Value::Int(i)
                },
            ]
        };
        let sample: Vec<Vec<Value>> = (0..10_000).map(|k| row(k * 7919 % 100_000)).collect();
        let s = TableStats::from_sample(3, &sample, 100_000);
        assert_eq!(s.rows, 100_000);
        let within = |v: u64, want: u64| (v as f64 / want as f64 - 1.0).abs() < 0.1;
        assert!(
            within(s.columns[0].distinct, 100_000),
            "{}",
            s.columns[0].distinct
        );
        assert_eq!(s.columns[1].distinct, 47);
        assert!(within(s.columns[2].nulls, 25_000), "{}", s.columns[2].nulls);
        assert!(
            within(s.columns[2].distinct, 75_000),
            "{}",
            s.columns[2].distinct
        );
        // Estimates read as they would from every row.
        let col = |c| Box::new(Expr::Column(c));
        let lit = |v| Box::new(Expr::Literal(Value::Int(v)));
        let range = Expr::Cmp(CmpOp::Lt, col(0), lit(25_000));
        let e = StatisticsEstimator::rows(Some(&s), Some(&range));
        assert!((20_000.0..30_000.0).contains(&e), "{e}");
        let eq = Expr::Cmp(CmpOp::Eq, col(1), lit(7));
        let e = StatisticsEstimator::rows(Some(&s), Some(&eq));
        assert!((1_700.0..2_600.0).contains(&e), "{e}");
        // Every row: exact.
        let all: Vec<Vec<Value>> = (0..1000).map(row).collect();
        let s = TableStats::from_sample(3, &all, 1000);
        assert_eq!((s.columns[0].distinct, s.columns[2].nulls), (1000, 250));
    }
}
