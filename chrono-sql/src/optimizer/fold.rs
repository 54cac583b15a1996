//! The constant-folding pass: every constant sub-expression becomes its value (one that
//! fails to evaluate is left for run time, so an error surfaces only if the row is reached).

use chrono_storage::Value;

use super::Env;
use crate::error::Result;
use crate::expr::Expr;
use crate::plan::Plan;

/// Folds the node's own expressions.
pub(super) fn run(plan: &mut Plan, _env: &Env<'_>) -> Result<()> {
    for e in plan.exprs_mut() {
        *e = std::mem::replace(e, Expr::Literal(Value::Null)).fold();
    }
    Ok(())
}
