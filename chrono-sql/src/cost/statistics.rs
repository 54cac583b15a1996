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
}

/// Statistics of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Rows when analyzed.
    pub rows: u64,
    /// Per column, in table order.
    pub columns: Vec<ColumnStats>,
}

const MCV_COUNT: usize = 16;
const HISTOGRAM_BUCKETS: usize = 32;

impl TableStats {
    /// Computes statistics from every row of a table.
    pub fn compute(width: usize, rows: &[Vec<Value>]) -> TableStats {
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
            let distinct = counts.len() as u64;
            let mut by_freq: Vec<(Value, u64)> = counts.into_values().collect();
            by_freq.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.total_cmp(&b.0)));
            let non_null = rows.len() as u64 - nulls;
            // A value is "common" when it occurs clearly more often than the average.
            let avg = if distinct == 0 {
                0.0
            } else {
                non_null as f64 / distinct as f64
            };
            let mcv: Vec<(Value, u64)> = by_freq
                .iter()
                .take(MCV_COUNT)
                .filter(|(_, n)| (*n as f64) > avg * 1.25 && *n > 1)
                .cloned()
                .collect();
            let mut rest: Vec<(Value, u64)> = by_freq.into_iter().skip(mcv.len()).collect();
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
                nulls,
                distinct,
                mcv,
                histogram,
                histogram_rows,
            });
        }
        TableStats {
            rows: rows.len() as u64,
            columns,
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
        record::decode(STATS_FORMAT, "table statistics", raw).ok()
    }
}

/// The statistics' record format (1 was a key-encoded list of values).
const STATS_FORMAT: u8 = 2;
