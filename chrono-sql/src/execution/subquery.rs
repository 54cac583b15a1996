//! Filling a kept plan in for one execution: parameters become values and uncorrelated
//! subqueries run once and become their results; correlated subqueries run per row.

use std::sync::Arc;

use chrono_storage::{Transaction, Value};

use super::rows;
use crate::cost::StatsRegistry;
use crate::error::{Error, Result};
use crate::expr::{Expr, Subquery, SubqueryKind};
use crate::limits::StatementGuard;
use crate::plan::Plan;

/// The plan with this execution's parameter values in place of its parameters and each
/// subquery run once and replaced by its result: what [`rows`] runs. A plan without either
/// is returned as it is, without a copy.
pub fn instantiate<'p>(
    plan: &'p Plan,
    params: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<std::borrow::Cow<'p, Plan>> {
    if !plan.needs_values() {
        return Ok(std::borrow::Cow::Borrowed(plan));
    }
    let mut fill = |e: &Expr| instantiate_expr(e, params, txn, stats, guard);
    let mut plan = plan.try_map_exprs(&mut fill)?;
    plan.resolve_times(params)?;
    // `pk IN (subquery)`: now that the subquery's values are known, their keys.
    crate::optimizer::keys_from_sets(&mut plan, stats);
    Ok(std::borrow::Cow::Owned(plan))
}

/// An expression with its parameters replaced by values and its uncorrelated subqueries by
/// their results (each run once); a correlated subquery keeps its place, with its own
/// parameters filled in, to run per row ([`eval_row`]).
pub fn instantiate_expr(
    e: &Expr,
    params: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Expr> {
    if !e.needs_values() {
        return Ok(e.clone());
    }
    let mut fill = |x: &Expr| -> Result<Option<Expr>> {
        let Expr::Subquery(q) = x else {
            return Ok(match x {
                Expr::Param(_) => Some(x.with_params(params)?),
                _ => None,
            });
        };
        let plan = instantiate(&q.plan, params, txn, stats, guard)?;
        let kind = match &q.kind {
            SubqueryKind::In { operand, negated } => SubqueryKind::In {
                operand: Box::new(instantiate_expr(operand, params, txn, stats, guard)?),
                negated: *negated,
            },
            other => other.clone(),
        };
        Ok(Some(if q.correlated {
            Expr::Subquery(Box::new(Subquery {
                plan: Arc::new(plan.into_owned()),
                kind,
                correlated: true,
            }))
        } else {
            subquery_value(&plan, kind, txn, stats, guard)?
        }))
    };
    Ok(e.transform(&mut fill)?.fold())
}

/// Evaluates `e` over `row`, first running its correlated subqueries with the row's values
/// (`correlated` says whether it has any, decided once per operator).
pub fn eval_row(
    e: &Expr,
    correlated: bool,
    row: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Value> {
    if !correlated {
        return e.eval(row);
    }
    correlate(e, row, txn, stats, guard)?.eval(row)
}

/// The truth of condition `e` for `row` (see [`Expr::test`]), running its correlated
/// subqueries for the row first.
pub fn test_row(
    e: &Expr,
    correlated: bool,
    row: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Option<bool>> {
    if !correlated {
        return e.test(row);
    }
    correlate(e, row, txn, stats, guard)?.test(row)
}

/// `e` with each correlated subquery run for `row` and replaced by its result.
fn correlate(
    e: &Expr,
    row: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Expr> {
    let outer = |x: &Expr| -> Result<Expr> {
        x.transform(&mut |y| {
            Ok(match y {
                Expr::Outer(i) => Some(Expr::Literal(row.get(*i).cloned().ok_or_else(|| {
                    Error::InvalidInput(format!("outer column position {i} out of range"))
                })?)),
                _ => None,
            })
        })
    };
    e.transform(&mut |x| {
        let Expr::Subquery(q) = x else {
            return Ok(None);
        };
        if !q.correlated {
            return Ok(None);
        }
        let plan = q.plan.try_map_exprs(&mut |pe| outer(pe))?;
        let kind = match &q.kind {
            SubqueryKind::In { operand, negated } => SubqueryKind::In {
                operand: Box::new(correlate(operand, row, txn, stats, guard)?),
                negated: *negated,
            },
            other => other.clone(),
        };
        Ok(Some(subquery_value(&plan, kind, txn, stats, guard)?))
    })
}

/// Runs a subquery's plan (free of parameters and outer columns): a scalar's value,
/// EXISTS's truth, or IN's sorted set.
fn subquery_value(
    plan: &Plan,
    kind: SubqueryKind,
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Expr> {
    let mut rows = rows(plan, &[], txn, stats, guard)?;
    Ok(match kind {
        SubqueryKind::Scalar => {
            let first = rows.next().transpose()?;
            if rows.next().transpose()?.is_some() {
                return Err(Error::InvalidInput(
                    "a scalar subquery returned more than one row".into(),
                ));
            }
            Expr::Literal(first.and_then(|mut r| r.pop()).unwrap_or(Value::Null))
        }
        SubqueryKind::Exists { negated } => {
            let any = rows.next().transpose()?.is_some();
            Expr::Literal(Value::Bool(any != negated))
        }
        SubqueryKind::In { operand, negated } => {
            let mut set: Vec<Value> = Vec::new();
            let mut has_null = false;
            for row in rows {
                let v = row?.pop().unwrap_or(Value::Null);
                if v.is_null() {
                    has_null = true;
                } else {
                    guard.charge(crate::limits::value_bytes(&v))?;
                    set.push(v);
                }
            }
            set.sort_by(|a, b| a.total_cmp(b));
            set.dedup_by(|a, b| a.total_cmp(b).is_eq());
            Expr::InSet(operand, Arc::new(set), has_null, negated)
        }
    })
}
