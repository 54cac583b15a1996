//! What `ANALYZE` keeps per table: row count, and per column NULLs, distinct values, the
//! most common values and an equi-depth histogram; stored as a [`record`] (hostile bytes
//! are an error, never a panic).

use std::collections::HashMap;

use chrono_storage::{Value, encoding, record};
use serde::{Deserialize, Serialize};

/// Statistics of one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// NULL values.
    pub nulls: u64,
    /// Distinct non-NULL values.
    pub distinct: u64,
    /// Most common values and how often each occurs, most common first.
    pub mcv: Vec<(Value, u64)>,
    /// Equi-depth histogram bounds over the non-MCV values (sorted).
    pub histogram: Vec<Value>,
    /// Rows covered by the histogram (non-NULL, non-MCV).
    pub histogram_rows: u64,
    /// Every value of a column with at most [`COMPLETE_VALUES`] distinct values (in the
    /// sample), ascending; empty for a column with more. With [`below`](Self::below) it
    /// makes a comparison's rows a binary search: exact when every row was read.
    pub values: Vec<Value>,
    /// For each of `values`, the non-NULL rows below it; one more entry: all of them.
    pub below: Vec<u64>,
}

impl ColumnStats {
    /// Non-NULL rows below `v` and at or below it (one binary search), when every value of
    /// the column is kept.
    pub fn rows_around(&self, v: &Value) -> Option<(u64, u64)> {
        if self.values.is_empty() || self.below.len() != self.values.len() + 1 {
            return None;
        }
        let i = self.values.partition_point(|x| x.total_cmp(v).is_lt());
        let at = self.values.get(i).is_some_and(|x| x.total_cmp(v).is_eq());
        Some((*self.below.get(i)?, *self.below.get(i + usize::from(at))?))
    }
}

/// Statistics of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Rows when analyzed.
    pub rows: u64,
    /// Per column, in table order.
    pub columns: Vec<ColumnStats>,
    /// Rows the statistics were computed from (`rows` when every row was read; fewer when
    /// `ANALYZE` kept a sample of a larger table).
    pub sample_rows: u64,
    /// The time (microseconds) of the state they describe: the `ANALYZE`'s snapshot.
    pub analyzed_at: u64,
    /// What fetching one row by its key costs (an index lookup's fetch), in rows of a
    /// sequential scan, as `ANALYZE` measured it on this table; 0: not measured (the
    /// optimizer then assumes [`crate::cost::FETCH_COST`]).
    pub fetch_cost: f64,
}

impl TableStats {
    /// Whether every row was read (counts are exact, not scaled from a sample).
    pub fn exact(&self) -> bool {
        self.sample_rows >= self.rows
    }
}

const MCV_COUNT: usize = 16;
/// Columns with at most this many distinct values keep every value and its count.
pub const COMPLETE_VALUES: usize = 10_000;
const HISTOGRAM_BUCKETS: usize = 32;

impl TableStats {
    /// Computes statistics from every row of a table.
    pub fn compute(width: usize, rows: &[Vec<Value>]) -> TableStats {
        Self::from_sample(width, rows, rows.len() as u64)
    }

    /// Statistics of a table of `total` rows from a uniform sample of them (every row when
    /// `rows.len() == total`: then exact). Counts scale by `total / sample`; the distinct
    /// values of a column are estimated with Haas and Stokes' Duj1 estimator (what
    /// PostgreSQL's ANALYZE uses): `n·d / (n − f1 + f1·n/N)` for `d` distinct values in a
    /// sample of `n` of `N` rows, `f1` of them seen once.
    pub fn from_sample(width: usize, rows: &[Vec<Value>], total: u64) -> TableStats {
        let n = rows.len() as u64;
        let total = total.max(n);
        let scale = if n == 0 { 1.0 } else { total as f64 / n as f64 };
        let up = |count: u64| (count as f64 * scale).round() as u64;
        let mut columns = Vec::with_capacity(width);
        for c in 0..width {
            let mut counts: HashMap<Vec<u8>, (Value, u64)> = HashMap::new();
            let mut nulls = 0;
            for r in rows {
                let v = r.get(c).cloned().unwrap_or(Value::Null);
                if v.is_null() {
                    nulls += 1;
                    continue;
                }
                counts
                    .entry(encoding::encode_key(std::slice::from_ref(&v)))
                    .or_insert((v, 0))
                    .1 += 1;
            }
            let sampled_distinct = counts.len() as u64;
            let non_null_sampled = n - nulls;
            let distinct = if total == n || non_null_sampled == 0 {
                sampled_distinct
            } else {
                let once = counts.values().filter(|(_, c)| *c == 1).count() as f64;
                let (ns, d) = (non_null_sampled as f64, sampled_distinct as f64);
                let population = (non_null_sampled as f64 * scale).max(ns);
                let estimate = ns * d / (ns - once + once * ns / population);
                (estimate.round() as u64).clamp(sampled_distinct, population.round() as u64)
            };
            let mut by_freq: Vec<(Value, u64)> = counts.into_values().collect();
            by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.total_cmp(&b.0)));
            // A value is "common" when it occurs clearly more often than the average.
            let avg = if sampled_distinct == 0 {
                0.0
            } else {
                non_null_sampled as f64 / sampled_distinct as f64
            };
            let mcv: Vec<(Value, u64)> = by_freq
                .iter()
                .take(MCV_COUNT)
                .filter(|(_, n)| (*n as f64) > avg * 1.25 && *n > 1)
                .cloned()
                .collect();
            let mcv_sampled = mcv.len();
            let mcv: Vec<(Value, u64)> = mcv.into_iter().map(|(v, c)| (v, up(c))).collect();
            let (mut values, mut below) = (Vec::new(), Vec::new());
            if by_freq.len() <= COMPLETE_VALUES {
                let mut all: Vec<&(Value, u64)> = by_freq.iter().collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut sum = 0u64;
                for (v, c) in all {
                    values.push(v.clone());
                    below.push(up(sum));
                    sum += c;
                }
                below.push(up(sum));
            }
            let mut rest: Vec<(Value, u64)> = by_freq.into_iter().skip(mcv_sampled).collect();
            rest.sort_by(|a, b| a.0.total_cmp(&b.0));
            let histogram_rows: u64 = rest.iter().map(|(_, n)| n).sum();
            let mut histogram = Vec::new();
            if histogram_rows > 0 {
                let step = (histogram_rows as f64 / HISTOGRAM_BUCKETS as f64).max(1.0);
                let mut seen = 0u64;
                let mut next = 0.0;
                for (v, n) in &rest {
                    if seen as f64 >= next {
                        histogram.push(v.clone());
                        next += step;
                    }
                    seen += n;
                }
                if let Some((last, _)) = rest.last()
                    && histogram.last() != Some(last)
                {
                    histogram.push(last.clone());
                }
            }
            columns.push(ColumnStats {
                nulls: up(nulls),
                distinct,
                mcv,
                histogram,
                histogram_rows: up(histogram_rows),
                values,
                below,
            });
        }
        TableStats {
            rows: total,
            columns,
            sample_rows: n,
            analyzed_at: 0,
            fetch_cost: 0.0,
        }
    }
}

impl TableStats {
    /// The statistics as a stored record.
    pub fn encode(&self) -> Vec<u8> {
        record::encode(STATS_FORMAT, self)
    }

    /// Statistics from [`TableStats::encode`]'s bytes; `None` when they are of another
    /// format or malformed (the table then counts as not analyzed until the next ANALYZE).
    pub fn decode(raw: &[u8]) -> Option<TableStats> {
        let s: TableStats = record::decode(STATS_FORMAT, "table statistics", raw).ok()?;
        // Stored bytes are not trusted: the kept values must be ascending with one more
        // running count, never decreasing, than values.
        let sound = s.columns.iter().all(|c| {
            (c.values.is_empty() && c.below.is_empty())
                || (c.below.len() == c.values.len() + 1
                    && c.values.windows(2).all(|w| w[0].total_cmp(&w[1]).is_lt())
                    && c.below.windows(2).all(|w| w[0] <= w[1]))
        });
        sound.then_some(s)
    }
}

/// The statistics' record format (1 was a key-encoded list of values, 2 had no complete
/// value lists).
const STATS_FORMAT: u8 = 3;
