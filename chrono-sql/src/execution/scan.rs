//! Table scans: rows from [`crate::table`] through the scan's pushed-down filter, with the
//! actual row count left as feedback for the estimator.

use std::borrow::Cow;

use super::{ExecCtx, RowIter};
use crate::catalog::TableDef;
use crate::cost::Feedback;
use crate::error::Result;
use crate::expr::Expr;
use crate::plan::{Access, Plan, ReadAt};

/// The rows of a scan of `table` at `read_at` through `access` that pass `filter`.
pub(super) fn scan<'a>(
    plan: &'a Plan,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
    filter: Option<Cow<'a, Expr>>,
    output: Option<std::sync::Arc<[bool]>>,
    ctx: &ExecCtx<'a>,
) -> Result<RowIter<'a>> {
    let (txn, guard) = (ctx.txn, ctx.guard);
    let mut actual = 0u64;
    let stats = ctx.stats;
    // A primary-key lookup returns at most one row: nothing for an estimator to
    // learn, so no feedback (and no cost on the point-query path).
    let keyed = matches!(access, Access::Key(_) | Access::Keys(_));
    let mut feedback = (!keyed).then(|| Feedback {
        table: table.name.clone(),
        keyspace: table.keyspace,
        predicate: filter
            .as_ref()
            .map(|f| crate::plan::show_expr(f, &plan.columns))
            .unwrap_or_default(),
        filter: filter.as_deref().cloned(),
        estimated: plan.est_rows,
        actual: 0,
        estimator: plan.estimator,
        current: matches!(read_at, ReadAt::Current),
        rows_read: 0,
        full_scan: matches!(access, Access::Full),
    });
    // The filter runs inside the table scan, on each stored row before it is decoded; the
    // rows it passes decode the columns the consumer reads.
    let row_filter = (filter.is_some() || output.is_some())
        .then(|| crate::table::RowFilter::with(filter, output));
    let mut rows =
        crate::table::rows_where(txn, table, read_at, access, row_filter, guard.scan_split())?;
    let mut read = 0u64;
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        loop {
            if let Err(e) = guard.tick() {
                done = true;
                return Some(Err(e));
            }
            match rows.next() {
                None => {
                    done = true;
                    if let Some(mut fb) = feedback.take() {
                        fb.actual = actual;
                        fb.rows_read = read;
                        stats.record(fb);
                    }
                    return None;
                }
                Some(Err(e)) => {
                    done = true;
                    return Some(Err(e));
                }
                Some(Ok(None)) => read += 1,
                Some(Ok(Some(row))) => {
                    read += 1;
                    actual += 1;
                    return Some(Ok(row));
                }
            }
        }
    })))
}
