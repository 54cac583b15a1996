//! Table statistics, the [`CardinalityEstimator`] the planner asks, the statistics
//! baseline, and the feedback the executor records for learned estimators.
//!
//! `ANALYZE [table]` reads every row once and keeps, per table, the row count and per
//! column the number of NULLs, the number of distinct values, the most common values with
//! their counts and an equi-depth histogram of the rest. Estimates then follow the
//! classic rules: equality on a most-common value uses its frequency, other equalities
//! `1/distinct` of the non-MCV rows, ranges the histogram fraction, conjunctions multiply
//! (independence), disjunctions add minus the overlap.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono_storage::{Value, encoding};
use parking_lot::{Mutex, RwLock};

use crate::catalog::TableDef;
use crate::expr::{CmpOp, Expr};

/// Statistics of one column.
#[derive(Debug, Clone, Default, PartialEq)]
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
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// The statistics as bytes (for keeping them in the store).
    pub fn encode(&self) -> Vec<u8> {
        let n = |x: u64| Value::Int(x as i64);
        let mut flat = vec![n(STATS_FORMAT), n(self.rows), n(self.columns.len() as u64)];
        for c in &self.columns {
            flat.extend([
                n(c.nulls),
                n(c.distinct),
                n(c.histogram_rows),
                n(c.mcv.len() as u64),
            ]);
            for (v, count) in &c.mcv {
                flat.extend([v.clone(), n(*count)]);
            }
            flat.push(n(c.histogram.len() as u64));
            flat.extend(c.histogram.iter().cloned());
        }
        encoding::encode_key(&flat)
    }

    /// Statistics from [`TableStats::encode`]'s bytes; `None` when they are of another
    /// format or malformed.
    pub fn decode(raw: &[u8]) -> Option<TableStats> {
        let flat = encoding::decode_key(raw).ok()?;
        let mut it = flat.into_iter();
        let num = |it: &mut std::vec::IntoIter<Value>| match it.next() {
            Some(Value::Int(i)) if i >= 0 => Some(i as u64),
            _ => None,
        };
        if num(&mut it)? != STATS_FORMAT {
            return None;
        }
        let rows = num(&mut it)?;
        let width = num(&mut it)?;
        let mut columns = Vec::new();
        for _ in 0..width {
            let (nulls, distinct, histogram_rows) = (num(&mut it)?, num(&mut it)?, num(&mut it)?);
            let mut mcv = Vec::new();
            for _ in 0..num(&mut it)? {
                let v = it.next()?;
                mcv.push((v, num(&mut it)?));
            }
            let mut histogram = Vec::new();
            for _ in 0..num(&mut it)? {
                histogram.push(it.next()?);
            }
            columns.push(ColumnStats {
                nulls,
                distinct,
                mcv,
                histogram,
                histogram_rows,
            });
        }
        Some(TableStats { rows, columns })
    }
}

const STATS_FORMAT: u64 = 1;

/// An estimate and the estimator that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Estimated rows.
    pub rows: f64,
    /// The estimator that produced it (shown in `EXPLAIN`).
    pub estimator: &'static str,
}

/// What the planner asks an estimator, and what it tells one.
pub trait CardinalityEstimator: Send + Sync {
    /// A short name shown in `EXPLAIN`.
    fn name(&self) -> &'static str;

    /// Rows of `table` (with `stats`, when analyzed) that satisfy `filter` (over the
    /// table's columns). `None` filter: the whole table.
    fn estimate_scan(
        &self,
        table: &TableDef,
        stats: Option<&TableStats>,
        filter: Option<&Expr>,
    ) -> Estimate;

    /// `ANALYZE` read every row of `table` (current state) and computed `stats`.
    fn analyzed(&self, _table: &TableDef, _rows: &[Vec<Value>], _stats: &TableStats) {}

    /// A scan finished: what was estimated and what came out. Called on the query's
    /// thread; must be cheap.
    fn observe(&self, _feedback: &Feedback) {}
}

/// Rows assumed for a table that was never analyzed.
pub const DEFAULT_ROWS: f64 = 1000.0;

/// The statistics baseline.
#[derive(Debug, Default)]
pub struct StatisticsEstimator;

impl StatisticsEstimator {
    /// The baseline's estimate, without a table definition.
    pub fn rows(stats: Option<&TableStats>, filter: Option<&Expr>) -> f64 {
        let rows = stats.map(|s| s.rows as f64).unwrap_or(DEFAULT_ROWS);
        match filter {
            None => rows,
            Some(f) => (rows * selectivity(stats, f)).clamp(0.0, rows),
        }
    }
}

impl CardinalityEstimator for StatisticsEstimator {
    fn name(&self) -> &'static str {
        "statistics"
    }

    fn estimate_scan(
        &self,
        _table: &TableDef,
        stats: Option<&TableStats>,
        filter: Option<&Expr>,
    ) -> Estimate {
        Estimate {
            rows: Self::rows(stats, filter),
            estimator: self.name(),
        }
    }
}

fn column_literal(a: &Expr, b: &Expr) -> Option<(usize, Value, bool)> {
    match (a, b) {
        (Expr::Column(c), Expr::Literal(v)) => Some((*c, v.clone(), false)),
        (Expr::Literal(v), Expr::Column(c)) => Some((*c, v.clone(), true)),
        _ => None,
    }
}

/// The fraction of rows that satisfy `e`.
#[recursive::recursive]
pub fn selectivity(stats: Option<&TableStats>, e: &Expr) -> f64 {
    let col = |c: usize| stats.and_then(|s| s.columns.get(c));
    let rows = stats
        .map(|s| s.rows as f64)
        .unwrap_or(DEFAULT_ROWS)
        .max(1.0);
    match e {
        Expr::Literal(v) => match crate::types::truth(v) {
            Ok(Some(true)) => 1.0,
            _ => 0.0,
        },
        Expr::And(a, b) => selectivity(stats, a) * selectivity(stats, b),
        Expr::Or(a, b) => {
            let (x, y) = (selectivity(stats, a), selectivity(stats, b));
            (x + y - x * y).min(1.0)
        }
        Expr::Not(x) => 1.0 - selectivity(stats, x),
        Expr::IsNull(x, negated) => {
            let s = match (&**x, stats) {
                (Expr::Column(c), Some(_)) => {
                    col(*c).map(|cs| cs.nulls as f64 / rows).unwrap_or(0.1)
                }
                _ => 0.1,
            };
            if *negated { 1.0 - s } else { s }
        }
        Expr::Cmp(op, a, b) => match column_literal(a, b) {
            Some((c, v, flipped)) => {
                let op = if flipped { op.flip() } else { *op };
                match col(c) {
                    Some(cs) => column_cmp_selectivity(cs, rows, op, &v),
                    None => match op {
                        CmpOp::Eq => 0.005,
                        CmpOp::NotEq => 0.995,
                        _ => 1.0 / 3.0,
                    },
                }
            }
            None => match op {
                CmpOp::Eq => 0.1,
                _ => 1.0 / 3.0,
            },
        },
        Expr::Between(x, lo, hi, negated) => {
            let s = match (&**x, &**lo, &**hi) {
                (Expr::Column(c), Expr::Literal(l), Expr::Literal(h)) => match col(*c) {
                    Some(cs) => {
                        let below_hi = column_cmp_selectivity(cs, rows, CmpOp::LtEq, h);
                        let below_lo = column_cmp_selectivity(cs, rows, CmpOp::Lt, l);
                        (below_hi - below_lo).max(0.0)
                    }
                    None => 0.1,
                },
                _ => 0.1,
            };
            if *negated { 1.0 - s } else { s }
        }
        Expr::InList(x, list, negated) => {
            let one = |v: &Expr| {
                selectivity(stats, &Expr::Cmp(CmpOp::Eq, x.clone(), Box::new(v.clone())))
            };
            let s: f64 = list.iter().map(one).sum::<f64>().min(1.0);
            if *negated { 1.0 - s } else { s }
        }
        Expr::Like(..) => 0.1,
        _ => 1.0 / 3.0,
    }
}

fn column_cmp_selectivity(cs: &ColumnStats, rows: f64, op: CmpOp, v: &Value) -> f64 {
    if v.is_null() {
        return 0.0;
    }
    let non_null = (rows - cs.nulls as f64).max(0.0);
    let mcv_rows: f64 = cs.mcv.iter().map(|(_, n)| *n as f64).sum();
    let eq = || -> f64 {
        if let Some((_, n)) = cs.mcv.iter().find(|(m, _)| m.total_cmp(v).is_eq()) {
            return *n as f64 / rows;
        }
        let other_distinct = (cs.distinct as f64 - cs.mcv.len() as f64).max(1.0);
        if cs.histogram_rows == 0 {
            return 0.0;
        }
        // Outside the histogram's range nothing matches.
        if let (Some(first), Some(last)) = (cs.histogram.first(), cs.histogram.last())
            && (v.total_cmp(first).is_lt() || v.total_cmp(last).is_gt())
        {
            return 0.0;
        }
        (cs.histogram_rows as f64 / other_distinct) / rows
    };
    // Fraction of non-NULL rows strictly below v.
    let below = || -> f64 {
        let mcv_below: f64 = cs
            .mcv
            .iter()
            .filter(|(m, _)| m.total_cmp(v).is_lt())
            .map(|(_, n)| *n as f64)
            .sum();
        let h = &cs.histogram;
        let hist_frac = if h.len() < 2 {
            match h.first() {
                Some(only) if only.total_cmp(v).is_lt() => 1.0,
                _ => 0.0,
            }
        } else {
            let buckets = (h.len() - 1) as f64;
            match h.iter().position(|b| b.total_cmp(v).is_ge()) {
                None => 1.0,
                Some(0) => 0.0,
                Some(i) => {
                    let (lo, hi) = (&h[i - 1], &h[i]);
                    let within = interpolate(lo, hi, v);
                    ((i - 1) as f64 + within) / buckets
                }
            }
        };
        (mcv_below + hist_frac * cs.histogram_rows as f64) / rows
    };
    let _ = mcv_rows;
    let frac_non_null = non_null / rows;
    let s = match op {
        CmpOp::Eq => eq(),
        CmpOp::NotEq => frac_non_null - eq(),
        CmpOp::Lt => below(),
        CmpOp::LtEq => below() + eq(),
        CmpOp::Gt => frac_non_null - below() - eq(),
        CmpOp::GtEq => frac_non_null - below(),
    };
    s.clamp(0.0, 1.0)
}

fn interpolate(lo: &Value, hi: &Value, v: &Value) -> f64 {
    let num = |x: &Value| match x {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Timestamp(t) => Some(*t as f64),
        _ => None,
    };
    match (num(lo), num(hi), num(v)) {
        (Some(l), Some(h), Some(x)) if h > l => ((x - l) / (h - l)).clamp(0.0, 1.0),
        _ => 0.5,
    }
}

/// One executed scan: what was estimated and what came out.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// The table.
    pub table: String,
    /// The filter, as text.
    pub predicate: String,
    /// The filter, bound (column positions of the table).
    pub filter: Option<Expr>,
    /// Estimated rows.
    pub estimated: f64,
    /// Actual rows.
    pub actual: u64,
    /// The estimator that made the estimate.
    pub estimator: &'static str,
    /// Whether the scan read the current state (not `AS OF` a past time).
    pub current: bool,
}

/// Statistics and feedback shared by the sessions of a database.
pub struct StatsRegistry {
    tables: RwLock<HashMap<String, Arc<TableStats>>>,
    feedback: Mutex<VecDeque<Feedback>>,
    feedback_capacity: usize,
    observer: RwLock<Option<Arc<dyn CardinalityEstimator>>>,
    changed: Mutex<HashMap<String, u64>>,
    version: std::sync::atomic::AtomicU64,
}

impl Default for StatsRegistry {
    fn default() -> Self {
        Self {
            tables: RwLock::new(HashMap::new()),
            feedback: Mutex::new(VecDeque::new()),
            feedback_capacity: 10_000,
            observer: RwLock::new(None),
            changed: Mutex::new(HashMap::new()),
            version: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl StatsRegistry {
    /// The statistics of a table, if analyzed.
    pub fn table(&self, name: &str) -> Option<Arc<TableStats>> {
        self.tables.read().get(&name.to_ascii_lowercase()).cloned()
    }

    /// Moves whenever a table's statistics change: plans kept from before may no longer be
    /// the best.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces every table's statistics (those committed now), keeping the change counts
    /// of tables whose statistics stayed the same.
    pub fn replace_all(&self, tables: HashMap<String, TableStats>) {
        let tables: HashMap<String, Arc<TableStats>> = tables
            .into_iter()
            .map(|(name, stats)| (name.to_ascii_lowercase(), Arc::new(stats)))
            .collect();
        let mut current = self.tables.write();
        {
            let mut changed = self.changed.lock();
            changed.retain(|name, _| match (current.get(name), tables.get(name)) {
                (Some(a), Some(b)) => **a == **b,
                _ => false,
            });
        }
        *current = tables;
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Counts `rows` inserted, updated or deleted in a table since its last `ANALYZE`, and
    /// returns the fraction of the analyzed row count changed so far (`None` when the
    /// table was never analyzed).
    pub fn note_changes(&self, name: &str, rows: u64) -> Option<f64> {
        let analyzed = self.table(name)?.rows.max(1);
        let mut changed = self.changed.lock();
        let n = changed.entry(name.to_ascii_lowercase()).or_insert(0);
        *n += rows;
        Some(*n as f64 / analyzed as f64)
    }

    /// The estimator told of every feedback record.
    pub fn set_observer(&self, observer: Option<Arc<dyn CardinalityEstimator>>) {
        *self.observer.write() = observer;
    }

    /// Records feedback, dropping the oldest beyond capacity, and tells the observer.
    pub fn record(&self, fb: Feedback) {
        if let Some(o) = self.observer.read().as_ref() {
            o.observe(&fb);
        }
        let mut q = self.feedback.lock();
        if q.len() == self.feedback_capacity {
            q.pop_front();
        }
        q.push_back(fb);
    }

    /// The feedback recorded so far (oldest first).
    pub fn feedback(&self) -> Vec<Feedback> {
        self.feedback.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
