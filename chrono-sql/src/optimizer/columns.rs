//! The columns each scan's consumers read (the optimizer's last step, after the passes).
//!
//! Worked out top-down: the root's consumer reads every column, and each operator tells its
//! inputs which of their columns it, or what it passes on, reads. A scan of a stored range
//! (full or primary-key range, or the rows an index names; now or as of a time) that is
//! asked for fewer than all of its
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

/// Sets `reads` of every scan in `plan` (and, with `subqueries`, in its subqueries' plans)
/// for a consumer that reads all of `plan`'s columns.
pub(super) fn run(plan: &mut Plan, subqueries: bool) {
    narrow(plan, None, subqueries);
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
    for (w, read) in wanted.iter_mut().zip(Expr::columns_read(width, exprs)?) {
        *w |= read;
    }
    Some(wanted)
}

/// What the two sides of a join read, `lw` and `rw` columns wide: their parts of what is
/// read of the joined row (`wanted`) and of its `condition`, and their own keys.
fn join_sides(
    wanted: Wanted,
    (lw, rw): (usize, usize),
    condition: Option<&Expr>,
    (left_keys, right_keys): (&[Expr], &[Expr]),
) -> (Wanted, Wanted) {
    let joined = with_reads(lw + rw, wanted, condition);
    let side = |from: usize, width: usize, keys: &[Expr]| {
        let part = joined.as_ref().map(|w| w[from..from + width].to_vec());
        with_reads(width, part, keys)
    };
    (side(0, lw, left_keys), side(lw, rw, right_keys))
}

#[recursive::recursive]
fn narrow(plan: &mut Plan, wanted: Wanted, subqueries: bool) {
    let width = plan.columns.len();
    match &mut plan.node {
        Node::Scan {
            access,
            read_at,
            reads,
            ..
        } => {
            let stored_range = matches!(
                access,
                Access::Full | Access::KeyRange(_) | Access::Index(..) | Access::IndexIn(..)
            ) && matches!(
                read_at,
                ReadAt::Current | ReadAt::AsOf(_) | ReadAt::AsOfParam(_)
            );
            // A versions read decodes every column of a version anyway; what it is told is
            // whether its `_principal` is read (a lookup in the audit trail per commit).
            let stored_range = stored_range || matches!(read_at, ReadAt::Versions(_));
            *reads = match wanted {
                Some(w) if stored_range && w.len() == width && w.contains(&false) => {
                    Some(Arc::from(w))
                }
                _ => None,
            };
        }
        Node::Project { input, exprs } => {
            let w = Expr::columns_read(input.columns.len(), exprs.iter());
            narrow(input, w, subqueries);
        }
        Node::Aggregate { input, group, aggs } => {
            let w = Expr::columns_read(
                input.columns.len(),
                group
                    .iter()
                    .chain(aggs.iter().filter_map(|a| a.arg.as_ref())),
            );
            narrow(input, w, subqueries);
        }
        Node::Filter { input, predicate } => {
            let w = with_reads(width, wanted, [&*predicate]);
            narrow(input, w, subqueries);
        }
        Node::Limit { input, .. } => narrow(input, wanted, subqueries),
        Node::Sort { input, keys } | Node::TopK { input, keys, .. } => {
            let w = with_reads(width, wanted, keys.iter().map(|k| &k.expr));
            narrow(input, w, subqueries);
        }
        Node::HashJoin {
            left,
            right,
            left_keys,
            right_keys,
            residual,
            ..
        } => {
            let widths = (left.columns.len(), right.columns.len());
            let (l, r) = join_sides(wanted, widths, residual.as_ref(), (left_keys, right_keys));
            narrow(left, l, subqueries);
            narrow(right, r, subqueries);
        }
        Node::NestedLoop {
            left,
            right,
            predicate,
            ..
        } => {
            let widths = (left.columns.len(), right.columns.len());
            let (l, r) = join_sides(wanted, widths, predicate.as_ref(), (&[], &[]));
            narrow(left, l, subqueries);
            narrow(right, r, subqueries);
        }
        Node::IndexJoin {
            left,
            left_keys,
            residual,
            ..
        } => {
            // The right side is looked up (and decoded whole) per left row.
            let widths = (left.columns.len(), width.saturating_sub(left.columns.len()));
            let (l, _) = join_sides(wanted, widths, residual.as_ref(), (left_keys, &[]));
            narrow(left, l, subqueries);
        }
        _ => {
            for child in plan.children_mut() {
                narrow(child, None, subqueries);
            }
        }
    }
    if subqueries {
        for e in plan.exprs_mut() {
            for sub in e.subquery_plans_mut() {
                narrow(sub, None, true);
            }
        }
    }
}
