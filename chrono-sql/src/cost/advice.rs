//! Index advice from what the executor saw: the scans that read a whole table to find the
//! rows matching a condition on one column — equality, a range, `BETWEEN`, `IN` — when no
//! index (nor the primary key) starts with that column. For each such column: how many
//! scans, the rows they read and the rows they kept; the rows an index would have saved
//! are the difference. Read from the recent scan feedback ([`super::StatsRegistry`]).

use std::collections::BTreeMap;

use super::Feedback;
use crate::catalog::TableDef;
use crate::expr::{CmpOp, Expr};

/// A column that full scans filtered on without an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexAdvice {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// Full scans with a condition on it (among the recent ones).
    pub scans: u64,
    /// Rows those scans read.
    pub rows_read: u64,
    /// Rows that passed their conditions.
    pub rows_matched: u64,
    /// The statement that would index it.
    pub statement: String,
}

impl IndexAdvice {
    /// Rows the scans read that an index would not have had to.
    pub fn rows_saved(&self) -> u64 {
        self.rows_read.saturating_sub(self.rows_matched)
    }

    /// The fraction of rows read that the conditions kept.
    pub fn selectivity(&self) -> f64 {
        self.rows_matched as f64 / self.rows_read.max(1) as f64
    }
}

/// The column a condition bounds the way an index lookup or range scan could use, if any.
fn indexable_column(e: &Expr) -> Option<usize> {
    let constant = |x: &Expr| matches!(x, Expr::Literal(_) | Expr::Param(_));
    match e {
        Expr::Cmp(op, a, b) if *op != CmpOp::NotEq => match (&**a, &**b) {
            (Expr::Column(c), x) | (x, Expr::Column(c)) if constant(x) => Some(*c),
            _ => None,
        },
        Expr::Between(x, lo, hi, false) if constant(lo) && constant(hi) => match &**x {
            Expr::Column(c) => Some(*c),
            _ => None,
        },
        Expr::InList(x, items, false) if items.iter().all(constant) => match &**x {
            Expr::Column(c) => Some(*c),
            _ => None,
        },
        Expr::InSet(x, _, _, false) => match &**x {
            Expr::Column(c) => Some(*c),
            _ => None,
        },
        _ => None,
    }
}

/// Advice from `feedback` against the current `tables`: the columns whose full scans an
/// index would have shortened, the most rows saved first.
pub fn index_advice(feedback: &[Feedback], tables: &[TableDef]) -> Vec<IndexAdvice> {
    let mut seen: BTreeMap<(String, usize), (u64, u64, u64)> = BTreeMap::new();
    for fb in feedback {
        let (true, true, Some(filter)) = (fb.full_scan, fb.current, &fb.filter) else {
            continue;
        };
        let mut columns: Vec<usize> = filter
            .clone()
            .conjuncts()
            .iter()
            .filter_map(indexable_column)
            .collect();
        columns.sort_unstable();
        columns.dedup();
        for c in columns {
            let e = seen
                .entry((fb.table.to_ascii_lowercase(), c))
                .or_insert((0, 0, 0));
            e.0 += 1;
            e.1 += fb.rows_read;
            e.2 += fb.actual;
        }
    }
    let mut out = Vec::new();
    for ((table, c), (scans, rows_read, rows_matched)) in seen {
        let Some(def) = tables.iter().find(|t| t.name.eq_ignore_ascii_case(&table)) else {
            continue;
        };
        let Some(col) = def.columns.get(c) else {
            continue;
        };
        let indexed = def.primary_key.first() == Some(&c)
            || def.indexes.iter().any(|ix| ix.columns.first() == Some(&c));
        if indexed {
            continue;
        }
        out.push(IndexAdvice {
            table: def.name.clone(),
            column: col.name.clone(),
            scans,
            rows_read,
            rows_matched,
            statement: format!(
                "CREATE INDEX {}_{}_idx ON {} ({})",
                def.name.to_ascii_lowercase(),
                col.name.to_ascii_lowercase(),
                def.name,
                col.name
            ),
        });
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.rows_saved()));
    out
}
