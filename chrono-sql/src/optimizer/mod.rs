//! The optimizer: an ordered list of named passes, each rewriting the whole plan (every
//! node, and the plans of the subqueries inside its expressions). The planner builds a plan
//! as the query is written (a WHERE filter above a `Join` of the FROM list, ON clauses in
//! the join); the passes then decide how to run it:
//!
//! ```text
//! planner ─► constant_folding ─► predicate_pushdown ─► access_path ─► join_order ─► join_method ─► plan to run
//! ```
//!
//! | pass | file | what it does |
//! |---|---|---|
//! | `constant_folding` | `fold.rs` | constant sub-expressions become values |
//! | `predicate_pushdown` | `pushdown.rs` | each condition goes as far down as it may: into a scan, to a join step, after a LEFT JOIN |
//! | `access_path` | `access_path.rs` | scans with key conditions read by primary key, key range or index |
//! | `join_order` | `join_order.rs` | inner joins of 3+ relations: greedy, smallest intermediate result first |
//! | `join_method` | `join_method.rs` | hash, index nested-loop or nested-loop join per step |
//!
//! Each pass runs over every node, inputs first, subquery plans included. Last, `columns.rs`
//! works out top-down which columns each scan's consumers read, so the scan decodes only
//! those. `EXPLAIN
//! (OPTIMIZERS) …` shows the plan as the planner built it and after each pass.

pub(crate) mod access_path;
mod columns;
mod fold;
mod join_method;
mod join_order;
mod pushdown;

pub(crate) use access_path::keys_from_sets;
pub(crate) use pushdown::into_relation;

use chrono_storage::Value;

use crate::cost::{CardinalityEstimator, StatsRegistry};
use crate::error::{Error, Result};
use crate::plan::{Node, Plan};

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
const PASSES: [Pass; 5] = [
    Pass {
        name: "constant_folding",
        rewrite: fold::run,
    },
    Pass {
        name: "predicate_pushdown",
        rewrite: pushdown::run,
    },
    Pass {
        name: "access_path",
        rewrite: access_path::run,
    },
    Pass {
        name: "join_order",
        rewrite: join_order::run,
    },
    Pass {
        name: "join_method",
        rewrite: join_method::run,
    },
];

/// Runs every pass over `plan`, then checks that it can run.
pub fn optimize(mut plan: Plan, env: &Env<'_>) -> Result<Plan> {
    // No pass makes a subquery. Without one, the passes visit the plan's nodes without
    // walking every expression in search of one (a VALUES list of a thousand rows holds
    // thousands), and nothing can be correlated.
    let subqueries = plan.has_subqueries();
    for pass in &PASSES {
        run_pass(pass, &mut plan, env, subqueries)?;
    }
    columns::run(&mut plan, subqueries);
    if subqueries {
        check_correlated(&plan, false)?;
    }
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
    let subqueries = plan.has_subqueries();
    for pass in &PASSES {
        run_pass(pass, &mut plan, env, subqueries)?;
        steps.push((pass.name, plan.clone()));
    }
    Ok(steps)
}

/// Runs one pass over every node, inputs first (`subqueries`: whether the plan holds any,
/// whose plans it then visits too); the estimates of the nodes whose rows follow from their
/// inputs' are derived again as it goes, so they stay consistent with what the pass changed
/// below them.
fn run_pass(pass: &Pass, plan: &mut Plan, env: &Env<'_>, subqueries: bool) -> Result<()> {
    each_node(plan, subqueries, &mut |p| {
        (pass.rewrite)(p, env)?;
        p.derive_estimate();
        Ok(())
    })
}

/// Applies `f` to every node of `plan`, inputs first, and with `subqueries` to the nodes
/// of its subqueries' plans too.
#[recursive::recursive]
fn each_node(
    plan: &mut Plan,
    subqueries: bool,
    f: &mut dyn FnMut(&mut Plan) -> Result<()>,
) -> Result<()> {
    for child in plan.children_mut() {
        each_node(child, subqueries, f)?;
    }
    if subqueries {
        for e in plan.exprs_mut() {
            for sub in e.subquery_plans_mut() {
                each_node(sub, true, f)?;
            }
        }
    }
    f(plan)
}
