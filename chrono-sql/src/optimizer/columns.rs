//! The columns each scan's consumers read (the optimizer's last step, after the passes).
//!
//! Worked out top-down: the root's consumer reads every column, and each operator tells its
//! inputs which of their columns it, or what it passes on, reads. A scan of a stored range
//! (full or primary-key range, now or as of a time) that is asked for fewer than all of its
//! columns keeps the set in [`Node::Scan`]'s `reads`, and decodes only those from each row
//! (its own filter reads what it needs on its own). Projections, filters, aggregates, joins,
//! sorts and limits narrow the set; every other operator (DISTINCT, set operations, writes)
//! and every expression with a subquery in it (which may read the row through outer
//! references) asks for the whole row.

use std::sync::Arc;

use crate::expr::Expr;
use crate::plan::{Access, Node, Plan, ReadAt};

/// Which columns of a row are read (`None`: all of them).
type Wanted = Option<Vec<bool>>;

/// Sets `reads` of every scan in `plan` (subquery plans included) for a consumer that
/// reads all of `plan`'s columns.
pub(super) fn run(plan: &mut Plan) {
    narrow(plan, None);
}

/// `wanted` with the columns `exprs` read added; `None` (all) when one of them holds a
/// subquery or reads past `width`.
fn with_reads<'e>(
    width: usize,
    wanted: Wanted,
    exprs: impl IntoIterator<Item = &'e Expr>,
) -> Wanted {
    let mut wanted = wanted?;
    wanted.resize(width, false);
    for e in exprs {
        if !e.subquery_plans().is_empty() {
            return None;
        }
        for c in e.columns() {
            *wanted.get_mut(c)? = true;
        }
    }
    Some(wanted)
}

/// Only the columns `exprs` read, of a row `width` wide.
fn reads<'e>(width: usize, exprs: impl IntoIterator<Item = &'e Expr>) -> Wanted {
    with_reads(width, Some(vec![false; width]), exprs)
}

/// The part of a joined row's wanted columns that falls on one side (`from..from + width`).
fn side(joined: &Wanted, from: usize, width: usize) -> Wanted {
    joined.as_ref().map(|w| {
        (from..from + width)
            .map(|i| w.get(i).copied().unwrap_or(true))
            .collect()
    })
}

#[recursive::recursive]
fn narrow(plan: &mut Plan, wanted: Wanted) {
    let width = plan.columns.len();
    match &mut plan.node {
        Node::Scan {
            access,
            read_at,
            reads,
            ..
        } => {
            let stored_range = matches!(access, Access::Full | Access::KeyRange(_))
                && matches!(
                    read_at,
                    ReadAt::Current | ReadAt::AsOf(_) | ReadAt::AsOfParam(_)
                );
            *reads = match wanted {
                Some(w) if stored_range && w.len() == width && w.contains(&false) => {
                    Some(Arc::from(w))
                }
                _ => None,
            };
        }
        Node::Project { input, exprs } => {
            let w = reads(input.columns.len(), exprs.iter());
            narrow(input, w);
        }
        Node::Aggregate { input, group, aggs } => {
            let w = reads(
                input.columns.len(),
                group
                    .iter()
                    .chain(aggs.iter().filter_map(|a| a.arg.as_ref())),
            );
            narrow(input, w);
        }
        Node::Filter { input, predicate } => {
            let w = with_reads(width, wanted, [&*predicate]);
            narrow(input, w);
        }
        Node::Limit { input, .. } => narrow(input, wanted),
        Node::Sort { input, keys } | Node::TopK { input, keys, .. } => {
            let w = with_reads(width, wanted, keys.iter().map(|k| &k.expr));
            narrow(input, w);
        }
        Node::HashJoin {
            left,
            right,
            left_keys,
            right_keys,
            residual,
            ..
        } => {
            let (lw, rw) = (left.columns.len(), right.columns.len());
            let joined = with_reads(lw + rw, wanted, residual.iter());
            let l = with_reads(lw, side(&joined, 0, lw), left_keys.iter());
            let r = with_reads(rw, side(&joined, lw, rw), right_keys.iter());
            narrow(left, l);
            narrow(right, r);
        }
        Node::NestedLoop {
            left,
            right,
            predicate,
            ..
        } => {
            let (lw, rw) = (left.columns.len(), right.columns.len());
            let joined = with_reads(lw + rw, wanted, predicate.iter());
            narrow(left, side(&joined, 0, lw));
            narrow(right, side(&joined, lw, rw));
        }
        Node::IndexJoin {
            left,
            left_keys,
            residual,
            ..
        } => {
            // The right side is looked up (and decoded whole) per left row.
            let lw = left.columns.len();
            let joined = with_reads(width, wanted, residual.iter());
            let l = with_reads(lw, side(&joined, 0, lw), left_keys.iter());
            narrow(left, l);
        }
        _ => {
            for child in plan.children_mut() {
                narrow(child, None);
            }
        }
    }
    for e in plan.exprs_mut() {
        for sub in subqueries(e) {
            narrow(sub, None);
        }
    }
}

/// The plans of the subqueries in `e`, outermost first.
fn subqueries(e: &mut Expr) -> Vec<&mut Plan> {
    let mut out = Vec::new();
    collect_subqueries(e, &mut out);
    out
}

#[recursive::recursive]
fn collect_subqueries<'e>(e: &'e mut Expr, out: &mut Vec<&'e mut Plan>) {
    if let Expr::Subquery(q) = e {
        if let crate::expr::SubqueryKind::In { operand, .. } = &mut q.kind {
            collect_subqueries(operand, out);
        }
        out.push(Arc::make_mut(&mut q.plan));
        return;
    }
    for child in e.children_mut() {
        collect_subqueries(child, out);
    }
}
