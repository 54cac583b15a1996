//! Q-error and its summaries.

use std::fmt;

/// `max(est/actual, actual/est)` with both counted as at least one row: 1 is perfect.
pub fn q_error(estimate: f64, actual: f64) -> f64 {
    let (e, a) = (estimate.max(1.0), actual.max(1.0));
    (e / a).max(a / e)
}

/// Percentiles of a set of q-errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct QErrorSummary {
    /// How many.
    pub count: usize,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean of ln(q-error) (what training minimises).
    pub mean_log: f64,
}

impl QErrorSummary {
    /// Summarises q-errors.
    pub fn of(errors: &[f64]) -> QErrorSummary {
        if errors.is_empty() {
            return QErrorSummary::default();
        }
        let mut sorted = errors.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
            sorted[i.min(sorted.len() - 1)]
        };
        QErrorSummary {
            count: sorted.len(),
            median: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            p99: at(0.99),
            max: sorted[sorted.len() - 1],
            mean_log: sorted.iter().map(|q| q.ln()).sum::<f64>() / sorted.len() as f64,
        }
    }

    /// Whether this is better than `other`: a lower mean log q-error and a 95th
    /// percentile no worse.
    pub fn better_than(&self, other: &QErrorSummary) -> bool {
        self.count > 0 && self.mean_log < other.mean_log && self.p95 <= other.p95 * 1.0001
    }
}

impl fmt::Display for QErrorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "median {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  max {:.1}  (n={})",
            self.median, self.p90, self.p95, self.p99, self.max, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_error_is_symmetric_and_floored() {
        assert_eq!(q_error(10.0, 100.0), 10.0);
        assert_eq!(q_error(100.0, 10.0), 10.0);
        assert_eq!(q_error(0.0, 0.0), 1.0);
        let s = QErrorSummary::of(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.max, 100.0);
        assert!(QErrorSummary::of(&[1.0, 1.1]).better_than(&s));
        assert!(!s.better_than(&QErrorSummary::of(&[1.0, 1.1])));
    }
}
