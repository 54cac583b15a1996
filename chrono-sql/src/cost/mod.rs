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
    CardinalityEstimator, DEFAULT_ROWS, Estimate, StatisticsEstimator, selectivity,
};
pub use registry::{Feedback, StatsRegistry};
pub use statistics::{ColumnStats, TableStats};

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
}
