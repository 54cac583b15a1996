//! The [`CardinalityEstimator`] the optimizer asks, and the statistics baseline: the
//! classic selectivity rules over [`TableStats`].

use chrono_storage::Value;

use super::{ColumnStats, Feedback, TableStats};
use crate::catalog::TableDef;
use crate::expr::{CmpOp, Expr};

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

    /// `ANALYZE` read every row of `table` (current state), kept `rows` (all of them, or a
    /// uniform sample of `limits.analyze_sample_rows` when there are more: `stats.rows` is
    /// the table's size) and computed `stats`. Called after the ANALYZE committed, on its
    /// thread: long work belongs on another.
    fn analyzed(&self, _table: &TableDef, _rows: Vec<Vec<Value>>, _stats: &TableStats) {}

    /// `table` was dropped (its drop committed): what was learned about it is of no use.
    fn dropped(&self, _table: &TableDef) {}

    /// A scan finished: what was estimated and what came out. Called on the query's
    /// thread; must be cheap.
    fn observe(&self, _feedback: &Feedback) {}
}

/// The fraction of rows a `BETWEEN` is assumed to keep without statistics of its column:
/// PostgreSQL's default for a range with both ends (a range query asks for a narrow slice
/// more often than not), where one-sided comparisons keep a third.
const BETWEEN_GUESS: f64 = 0.005;

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
                    Some(cs) => column_cmp_selectivity(cs, rows, unseen(stats), op, &v),
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
                        let u = unseen(stats);
                        let below_hi = column_cmp_selectivity(cs, rows, u, CmpOp::LtEq, h);
                        let below_lo = column_cmp_selectivity(cs, rows, u, CmpOp::Lt, l);
                        (below_hi - below_lo).max(0.0)
                    }
                    None => BETWEEN_GUESS,
                },
                _ => BETWEEN_GUESS,
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

/// The rows a value absent from the statistics may still have: none when every row was
/// read; when they came from a sample, half a sampled row's worth.
fn unseen(stats: Option<&TableStats>) -> f64 {
    match stats {
        Some(s) if !s.exact() && s.sample_rows > 0 => 0.5 * s.rows as f64 / s.sample_rows as f64,
        _ => 0.0,
    }
}

/// At most how many rows a single-column comparison (`c op literal`, `c BETWEEN l AND h`,
/// `c IN (…)` of distinct literals, `c IS [NOT] NULL`) on a column that keeps every value
/// can have, given the statistics' estimate `rows` for it: `rows` itself when every row was
/// read; from a sample, `rows` plus three standard deviations of the scaled count (and
/// three sampled rows' worth for a value the sample did not hold). `None` for other shapes
/// and columns (the statistics do not know their rows).
pub fn known_rows(stats: &TableStats, e: &Expr, rows: f64) -> Option<f64> {
    let complete = |c: usize| stats.columns.get(c).is_some_and(|cs| !cs.values.is_empty());
    let literal = |e: &Expr| matches!(e, Expr::Literal(_));
    let distinct = |list: &[Expr]| {
        let mut values: Vec<&Value> = Vec::with_capacity(list.len());
        for e in list {
            let Expr::Literal(v) = e else { return false };
            values.push(v);
        }
        values.sort_by(|a, b| a.total_cmp(b));
        values.windows(2).all(|w| w[0].total_cmp(w[1]).is_ne())
    };
    let simple = match e {
        Expr::IsNull(x, _) => matches!(&**x, Expr::Column(c) if stats.columns.len() > *c),
        Expr::Cmp(_, a, b) => match (&**a, &**b) {
            (Expr::Column(c), v) | (v, Expr::Column(c)) => literal(v) && complete(*c),
            _ => false,
        },
        Expr::Between(x, lo, hi, _) => {
            matches!(&**x, Expr::Column(c) if complete(*c)) && literal(lo) && literal(hi)
        }
        Expr::InList(x, list, false) => {
            matches!(&**x, Expr::Column(c) if complete(*c)) && distinct(list)
        }
        _ => false,
    };
    if !simple {
        return None;
    }
    if stats.exact() {
        return Some(rows);
    }
    let scale = stats.rows as f64 / stats.sample_rows.max(1) as f64;
    let upper = rows + 3.0 * (rows * scale).sqrt() + 3.0 * scale;
    Some(upper.min(stats.rows as f64))
}

fn column_cmp_selectivity(cs: &ColumnStats, rows: f64, unseen: f64, op: CmpOp, v: &Value) -> f64 {
    if v.is_null() {
        return 0.0;
    }
    let non_null = (rows - cs.nulls as f64).max(0.0);
    // Every value kept: a binary search (exact when every row was read).
    if let Some((lt, le)) = cs.rows_around(v) {
        let (lt, le) = (lt as f64, le as f64);
        let eq = if le > lt { le - lt } else { unseen };
        let s = match op {
            CmpOp::Eq => eq,
            CmpOp::NotEq => non_null - eq,
            CmpOp::Lt => lt,
            CmpOp::LtEq => le,
            CmpOp::Gt => non_null - le,
            CmpOp::GtEq => non_null - lt,
        };
        return (s / rows.max(1.0)).clamp(0.0, 1.0);
    }
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
