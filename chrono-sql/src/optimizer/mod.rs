//! The optimizer: an ordered list of named passes, each rewriting the whole plan (every
//! node, and the plans of the subqueries inside its expressions). The planner builds a plan
//! with conditions placed and joins chosen; the passes then finish it:
//!
//! ```text
//! planner ─► constant_folding ─► access_path ─► plan to run
//! ```
//!
//! `EXPLAIN (OPTIMIZERS) …` shows the plan as the planner built it and after each pass.
//! Still inside the planner (to become passes): predicate pushdown, join order, join method.

pub(crate) mod access_path;
mod fold;

use std::sync::Arc;

use chrono_storage::Value;

use crate::error::{Error, Result};
use crate::expr::{Expr, SubqueryKind};
use crate::plan::{Node, Plan};
use crate::stats::{CardinalityEstimator, StatsRegistry};

/// What the passes may consult.
pub struct Env<'a> {
    /// Table statistics.
    pub stats: &'a StatsRegistry,
    /// The estimator in use.
    pub estimator: &'a dyn CardinalityEstimator,
    /// This execution's parameters (for estimates only: plans keep the slots).
    pub params: &'a [Value],
}

/// A named rewrite, applied to every node.
struct Pass {
    name: &'static str,
    rewrite: fn(&mut Plan, &Env<'_>) -> Result<()>,
}

/// The passes, in order.
const PASSES: [Pass; 2] = [
    Pass {
        name: "constant_folding",
        rewrite: fold::run,
    },
    Pass {
        name: "access_path",
        rewrite: access_path::run,
    },
];

/// Runs every pass over `plan`, then checks that it can run.
pub fn optimize(mut plan: Plan, env: &Env<'_>) -> Result<Plan> {
    for pass in &PASSES {
        each_node(&mut plan, &mut |p| (pass.rewrite)(p, env))?;
    }
    check_correlated(&plan, false)?;
    Ok(plan)
}

/// Correlated subqueries are run per row only where rows are evaluated one by one with
/// them (`execution::eval_row`): filters, projections, an UPDATE's new values and the scan
/// of an UPDATE or DELETE (`execution::write`). One anywhere else is refused here, once per planning,
/// rather than at every execution.
#[recursive::recursive]
fn check_correlated(plan: &Plan, scan_of_a_write: bool) -> Result<()> {
    let per_row = scan_of_a_write
        || matches!(
            plan.node,
            Node::Filter { .. } | Node::Project { .. } | Node::Update { .. }
        );
    if !per_row && plan.exprs().iter().any(|e| e.has_correlated()) {
        return Err(Error::Unsupported(format!(
            "a correlated subquery in {}",
            plan.describe()
        )));
    }
    let write = matches!(plan.node, Node::Update { .. } | Node::Delete { .. });
    for child in plan.children() {
        check_correlated(child, write)?;
    }
    for sub in plan.subqueries() {
        check_correlated(sub, false)?;
    }
    Ok(())
}

/// The plan as the planner built it (`"planner"`), then after each pass.
pub fn optimize_stepwise(mut plan: Plan, env: &Env<'_>) -> Result<Vec<(&'static str, Plan)>> {
    let mut steps = vec![("planner", plan.clone())];
    for pass in &PASSES {
        each_node(&mut plan, &mut |p| (pass.rewrite)(p, env))?;
        steps.push((pass.name, plan.clone()));
    }
    Ok(steps)
}

/// Applies `f` to every node of `plan`, inputs first, subquery plans included.
#[recursive::recursive]
fn each_node(plan: &mut Plan, f: &mut dyn FnMut(&mut Plan) -> Result<()>) -> Result<()> {
    for child in plan.children_mut() {
        each_node(child, f)?;
    }
    for e in plan.exprs_mut() {
        each_subquery(e, f)?;
    }
    f(plan)
}

#[recursive::recursive]
fn each_subquery(e: &mut Expr, f: &mut dyn FnMut(&mut Plan) -> Result<()>) -> Result<()> {
    if let Expr::Subquery(q) = e {
        each_node(Arc::make_mut(&mut q.plan), f)?;
        if let SubqueryKind::In { operand, .. } = &mut q.kind {
            each_subquery(operand, f)?;
        }
        return Ok(());
    }
    for child in e.children_mut() {
        each_subquery(child, f)?;
    }
    Ok(())
}
