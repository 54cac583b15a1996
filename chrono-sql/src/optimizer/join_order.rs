//! The join-order pass: inner joins of three or more relations are joined greedily,
//! smallest estimated intermediate result first (joined relations before a cross product);
//! LEFT JOINs keep the written order.

use super::Env;
use super::pushdown::{offsets, relation_of};
use crate::error::Result;
use crate::expr::{CmpOp, Expr};
use crate::plan::{JoinKind, Node, Plan};

/// Chooses the order of every Join of three or more inner-joined relations.
pub(super) fn run(plan: &mut Plan, env: &Env<'_>) -> Result<()> {
    if let Node::Join {
        inputs,
        kinds,
        at,
        order,
        ..
    } = &mut plan.node
        && inputs.len() >= 3
        && kinds.iter().all(|k| *k == JoinKind::Inner)
    {
        *order = greedy_order(env, inputs, at);
    }
    Ok(())
}

/// A greedy join order: start from the smallest relation, then add the relation that
/// keeps the estimated intermediate result smallest (joined relations first; a cross
/// product only when nothing connects).
fn greedy_order(env: &Env<'_>, rels: &[Plan], conds: &[Vec<Expr>]) -> Vec<usize> {
    let n = rels.len();
    let offsets = offsets(rels);
    let rel_of = |col: usize| relation_of(&offsets, col);
    // Equi-join column pairs between two relations (global column positions).
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for c in conds.iter().flatten() {
        if let Expr::Cmp(CmpOp::Eq, a, b) = c
            && let (Expr::Column(x), Expr::Column(y)) = (&**a, &**b)
            && rel_of(*x) != rel_of(*y)
        {
            pairs.push((*x, *y));
        }
    }
    let distinct = |g: usize| {
        let r = rel_of(g);
        column_distinct(env, &rels[r], g - offsets[r])
    };
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    let start = (0..n)
        .min_by(|&a, &b| rels[a].est_rows.total_cmp(&rels[b].est_rows))
        .unwrap_or(0);
    order.push(start);
    done[start] = true;
    let mut current = rels[start].est_rows;
    while order.len() < n {
        let mut best: Option<(bool, f64, usize)> = None;
        for r in (0..n).filter(|&r| !done[r]) {
            let rows = rels[r].est_rows;
            let mut est = current * rows;
            let mut connected = false;
            for &(x, y) in &pairs {
                let (inside, other) = if rel_of(x) == r && done[rel_of(y)] {
                    (y, x)
                } else if rel_of(y) == r && done[rel_of(x)] {
                    (x, y)
                } else {
                    continue;
                };
                connected = true;
                est = match (distinct(inside), distinct(other)) {
                    (Some(a), Some(b)) => est / a.max(b),
                    _ => est.min(current.max(rows)),
                };
            }
            let better = match best {
                None => true,
                Some((bc, be, _)) => (connected && !bc) || (connected == bc && est < be),
            };
            if better {
                best = Some((connected, est, r));
            }
        }
        let Some((_, est, r)) = best else { break };
        order.push(r);
        done[r] = true;
        current = est.max(1.0);
    }
    order
}

/// Distinct values of a plan's output column, when its statistics say (a scan's column,
/// followed through [`Plan::column_source`]), at most the rows.
pub(super) fn column_distinct(env: &Env<'_>, plan: &Plan, col: usize) -> Option<f64> {
    let (table, c) = plan.column_source(col)?;
    let d = env.stats.table(table.keyspace)?.columns.get(c)?.distinct as f64;
    Some(d.min(plan.est_rows.max(1.0)).max(1.0))
}

/// Rows of an equi-join: `|L|·|R| / max(distinct(l), distinct(r))` per key pair whose
/// columns have statistics (the usual containment assumption); without them, the
/// larger side (a key/foreign-key guess).
pub(super) fn equi_join_estimate(
    env: &Env<'_>,
    left: &Plan,
    right: &Plan,
    left_keys: &[Expr],
    right_keys: &[Expr],
) -> (f64, &'static str) {
    let (l, r) = (left.est_rows, right.est_rows);
    let mut est = l * r;
    let mut known = false;
    for (lk, rk) in left_keys.iter().zip(right_keys) {
        if let (Expr::Column(a), Expr::Column(b)) = (lk, rk)
            && let (Some(da), Some(db)) = (
                column_distinct(env, left, *a),
                column_distinct(env, right, *b),
            )
        {
            est /= da.max(db);
            known = true;
        }
    }
    if known {
        (est.max(if l * r > 0.0 { 1.0 } else { 0.0 }), "distinct")
    } else {
        (l.max(r), "heuristic")
    }
}
