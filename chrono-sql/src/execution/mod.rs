//! The executor: each plan node becomes an iterator of rows pulling from its inputs, so
//! rows stream from storage to the result; only hash-join build sides, aggregation
//! groups, sorts, the top-k buffer and set operators hold rows in memory, charged to the
//! statement's budget.
//!
//! A kept plan runs as it is kept: each node binds its own expressions to the execution's
//! parameter values when it is built ([`bind`]: borrowed when they hold no parameter, a
//! copy of just those expressions when they do), and `AS OF $n` becomes the parameter's
//! time there ([`ReadAt::bind`]). Only a plan with subqueries is copied whole first
//! ([`instantiate`]: each uncorrelated subquery runs once and becomes its result).
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the dispatch from plan nodes to operators; filter, project, limit, union |
//! | `subquery.rs` | filling parameters and subquery results into a kept plan |
//! | `scan.rs` | table scans and their estimator feedback |
//! | `join.rs` | hash, index nested-loop and nested-loop joins |
//! | `aggregate.rs` | hash aggregation |
//! | `sort.rs` | sort and top-k |
//! | `set.rs` | DISTINCT, INTERSECT, EXCEPT |
//! | `write.rs` | INSERT, UPDATE, DELETE |
//! | `schema.rs` | CREATE, ALTER, DROP |

mod aggregate;
mod join;
mod scan;
pub mod schema;
mod set;
mod sort;
mod subquery;
mod window;
pub mod write;

pub use subquery::{eval_row, instantiate, instantiate_expr, test_row};

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use chrono_storage::{Transaction, Value, encoding};

use crate::catalog::Snapshot;
use crate::cost::StatsRegistry;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::limits::{StatementGuard, row_bytes};
use crate::plan::{AggCall, Node, Plan, ReadAt, SortKey};

/// A row.
pub type Row = Vec<Value>;
/// A stream of rows.
pub type RowIter<'a> = Box<dyn Iterator<Item = Result<Row>> + 'a>;

/// Rows and inclusive time of one plan node, for `EXPLAIN ANALYZE`.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Rows the node produced.
    pub rows: Cell<u64>,
    /// Nanoseconds spent in the node and below it.
    pub nanos: Cell<u64>,
}

/// What a running plan needs.
pub struct ExecCtx<'a> {
    /// The transaction.
    pub txn: &'a Transaction,
    /// Where scans record their feedback.
    pub stats: &'a StatsRegistry,
    /// Per-node counters (pre-order), when analyzing.
    pub analyze: Option<Vec<Rc<NodeStats>>>,
    /// The statement's memory budget, cancel token and deadline.
    pub guard: &'a StatementGuard,
    /// This execution's parameter values.
    pub params: &'a [Value],
    /// The rows of each recursive query's round before, by work table.
    pub work: std::collections::HashMap<usize, Rc<Vec<Row>>>,
}

/// `e` with this execution's parameter values in place of its parameters; the plan's own
/// expression, borrowed, when it has none.
pub fn bind<'a>(e: &'a Expr, params: &[Value]) -> Result<Cow<'a, Expr>> {
    Ok(if e.has_params() {
        Cow::Owned(e.bound(params)?)
    } else {
        Cow::Borrowed(e)
    })
}

fn bind_opt<'a>(e: Option<&'a Expr>, params: &[Value]) -> Result<Option<Cow<'a, Expr>>> {
    e.map(|e| bind(e, params)).transpose()
}

/// A plan item that holds at most one expression: an expression, a sort key, an aggregate
/// call.
trait HoldsExpr: Clone {
    fn expr(&self) -> Option<&Expr>;
    fn expr_mut(&mut self) -> Option<&mut Expr>;
}

impl HoldsExpr for Expr {
    fn expr(&self) -> Option<&Expr> {
        Some(self)
    }
    fn expr_mut(&mut self) -> Option<&mut Expr> {
        Some(self)
    }
}

impl HoldsExpr for SortKey {
    fn expr(&self) -> Option<&Expr> {
        Some(&self.expr)
    }
    fn expr_mut(&mut self) -> Option<&mut Expr> {
        Some(&mut self.expr)
    }
}

impl HoldsExpr for AggCall {
    fn expr(&self) -> Option<&Expr> {
        self.arg.as_ref()
    }
    fn expr_mut(&mut self) -> Option<&mut Expr> {
        self.arg.as_mut()
    }
}

/// [`bind`] over a list: the list itself, borrowed, when no item holds a parameter.
fn bind_all<'a, T: HoldsExpr>(items: &'a [T], params: &[Value]) -> Result<Cow<'a, [T]>> {
    if !items.iter().any(|i| i.expr().is_some_and(Expr::has_params)) {
        return Ok(Cow::Borrowed(items));
    }
    let mut out = items.to_vec();
    for item in &mut out {
        if let Some(e) = item.expr_mut() {
            *e = e.bound(params)?;
        }
    }
    Ok(Cow::Owned(out))
}

/// Defers building a blocking operator (sort, aggregate, hash-join build) until its first
/// row is asked for, so `EXPLAIN ANALYZE` charges its time to the right node.
fn lazy<'a>(make: impl FnOnce() -> Result<RowIter<'a>> + 'a) -> RowIter<'a> {
    let mut make = Some(make);
    let mut inner: Option<RowIter<'a>> = None;
    Box::new(std::iter::from_fn(move || {
        if let Some(m) = make.take() {
            match m() {
                Ok(it) => inner = Some(it),
                Err(e) => return Some(Err(e)),
            }
        }
        inner.as_mut()?.next()
    }))
}

/// The rows of a plan run with `params`, as they are produced.
pub fn rows<'a>(
    plan: &'a Plan,
    params: &'a [Value],
    txn: &'a Transaction,
    stats: &'a StatsRegistry,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let mut ctx = ExecCtx {
        txn,
        stats,
        analyze: None,
        guard,
        params,
        work: Default::default(),
    };
    build(plan, &mut ctx, &mut 0)
}

/// Runs a plan with `params` to completion, charging the collected rows to the statement's
/// budget.
pub fn collect(
    plan: &Plan,
    params: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    hold(rows(plan, params, txn, stats, guard)?, guard)
}

/// Collects rows an operator must hold, charging each to the statement's budget.
fn hold(rows: RowIter<'_>, guard: &StatementGuard) -> Result<Vec<Row>> {
    let mut held = Vec::new();
    for row in rows {
        let row = row?;
        guard.charge(row_bytes(&row))?;
        held.push(row);
    }
    Ok(held)
}

/// The values of `exprs` over `row`.
fn eval_all(exprs: &[Expr], row: &[Value]) -> Result<Vec<Value>> {
    exprs.iter().map(|e| e.eval(row)).collect()
}

/// A hashable, equality-preserving encoding of values: integral floats encode as
/// integers, so `1 = 1.0` joins and groups together.
pub fn hash_key(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 9);
    for v in values {
        push_hash_key(&mut out, v);
    }
    out
}

/// Appends one value's part of a [`hash_key`] to `out`.
pub fn push_hash_key(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            encoding::encode_key_value(out, &Value::Int(*f as i64))
        }
        other => encoding::encode_key_value(out, other),
    }
}

/// The [`hash_key`] of `exprs` over `row`, written into `out` (cleared first); `false` when
/// one of them is NULL (a join key that matches nothing; a group key is still whole). A
/// plain column is encoded from the row, not copied out of it.
fn key_into(out: &mut Vec<u8>, exprs: &[Expr], row: &[Value]) -> Result<bool> {
    out.clear();
    let mut no_null = true;
    for e in exprs {
        let v = e.eval_ref(row)?;
        no_null &= !v.is_null();
        push_hash_key(out, &v);
    }
    Ok(no_null)
}

/// Hash tables keyed by encoded values (groups, join keys, DISTINCT, set operations): a
/// fast hash seeded at random per table, so keys chosen to collide cannot be planned ahead.
pub(crate) type KeyMap<V> = std::collections::HashMap<Vec<u8>, V, foldhash::fast::RandomState>;
/// See [`KeyMap`].
pub(crate) type KeySet = std::collections::HashSet<Vec<u8>, foldhash::fast::RandomState>;

/// The nodes of a plan and its inputs (not its subqueries): how many ids `build` gives it.
fn node_count(plan: &Plan) -> usize {
    1 + plan.children().into_iter().map(node_count).sum::<usize>()
}

/// Runs a `WITH RECURSIVE` query: the anchor, then rounds of the step over the rows the
/// round before made, until one makes none (for UNION: none not made before), the LIMIT is
/// reached or `limits.max_recursion_depth` rounds have run. The rows are held (charged).
fn recursive<'a>(
    anchor: &'a Plan,
    step: &'a Plan,
    all: bool,
    work: usize,
    limit: Option<usize>,
    ctx: &mut ExecCtx<'a>,
    next_id: &mut usize,
) -> Result<RowIter<'a>> {
    let guard = ctx.guard;
    let mut seen = KeySet::default();
    let mut out: Vec<Row> = Vec::new();
    let limit = limit.unwrap_or(usize::MAX);
    let mut keep = |row: Row, out: &mut Vec<Row>, fresh: &mut Vec<Row>| -> Result<()> {
        guard.tick()?;
        if out.len() >= limit {
            return Ok(());
        }
        if !all {
            let key = hash_key(&row);
            let bytes = crate::limits::hashed_key_bytes(&key);
            if !seen.insert(key) {
                return Ok(());
            }
            guard.charge(bytes)?;
        }
        guard.charge(2 * crate::limits::row_bytes(&row))?;
        out.push(row.clone());
        fresh.push(row);
        Ok(())
    };
    let mut fresh = Vec::new();
    for r in build(anchor, ctx, next_id)? {
        keep(r?, &mut out, &mut fresh)?;
    }
    let first_step_id = *next_id;
    let mut round = 0;
    while !fresh.is_empty() && out.len() < limit {
        round += 1;
        guard.check_recursion(round)?;
        ctx.work.insert(work, Rc::new(std::mem::take(&mut fresh)));
        *next_id = first_step_id;
        for r in build(step, ctx, next_id)? {
            keep(r?, &mut out, &mut fresh)?;
        }
    }
    ctx.work.remove(&work);
    *next_id = first_step_id + node_count(step);
    Ok(Box::new(out.into_iter().map(Ok)))
}

/// Builds the iterator of a plan. `next_id` numbers nodes in pre-order.
#[recursive::recursive]
pub fn build<'a>(
    plan: &'a Plan,
    ctx: &mut ExecCtx<'a>,
    next_id: &mut usize,
) -> Result<RowIter<'a>> {
    let id = *next_id;
    *next_id += 1;
    let txn = ctx.txn;
    let guard = ctx.guard;
    let params = ctx.params;
    let iter: RowIter<'a> = match &plan.node {
        Node::Scan {
            table,
            read_at,
            access,
            filter,
            reads,
            ..
        } => scan::scan(
            plan,
            table,
            read_at.bind(params)?,
            &*access.bind(params)?,
            bind_opt(filter.as_ref(), params)?,
            reads.clone(),
            ctx,
        )?,
        Node::Values { rows } => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(
                    r.iter()
                        .map(|e| bind(e, params)?.eval(&[]))
                        .collect::<Result<Row>>(),
                );
            }
            Box::new(out.into_iter())
        }
        Node::Filter { input, predicate } => {
            let input = build(input, ctx, next_id)?;
            let predicate = bind(predicate, params)?;
            let correlated = predicate.has_correlated();
            let stats = ctx.stats;
            Box::new(input.filter_map(move |r| match r {
                Err(e) => Some(Err(e)),
                Ok(row) => match test_row(&predicate, correlated, &row, txn, stats, guard) {
                    Ok(Some(true)) => Some(Ok(row)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                },
            }))
        }
        Node::Project { input, exprs } => {
            let input = build(input, ctx, next_id)?;
            let exprs = bind_all(exprs, params)?;
            let correlated: Vec<bool> = exprs.iter().map(Expr::has_correlated).collect();
            let stats = ctx.stats;
            Box::new(input.map(move |r| {
                r.and_then(|row| {
                    exprs
                        .iter()
                        .zip(&correlated)
                        .map(|(e, &c)| eval_row(e, c, &row, txn, stats, guard))
                        .collect()
                })
            }))
        }
        Node::HashJoin {
            left,
            right,
            left_keys,
            right_keys,
            kind,
            residual,
            build_left,
        } => {
            let l = build(left, ctx, next_id)?;
            let r = build(right, ctx, next_id)?;
            let (kind, build_left, width) = (*kind, *build_left, right.columns.len());
            let (left_keys, right_keys) =
                (bind_all(left_keys, params)?, bind_all(right_keys, params)?);
            let residual = bind_opt(residual.as_ref(), params)?;
            lazy(move || {
                join::hash(
                    l, r, left_keys, right_keys, kind, residual, build_left, width, guard,
                )
            })
        }
        Node::IndexJoin {
            left,
            table,
            read_at,
            lookup,
            left_keys,
            right_filter,
            kind,
            residual,
            ..
        } => {
            let l = build(left, ctx, next_id)?;
            let view = match read_at.bind(params)? {
                ReadAt::AsOf(ts) => Snapshot::At(txn.store(), ts.min(txn.read_ts())),
                ReadAt::AsOfParam(i) => return Err(crate::table::unresolved(i)),
                ReadAt::Current | ReadAt::Versions(_) => Snapshot::Transaction(txn),
            };
            let right_width = table.columns.len();
            let kind = *kind;
            let left_keys = bind_all(left_keys, params)?;
            let right_filter = bind_opt(right_filter.as_ref(), params)?;
            let residual = bind_opt(residual.as_ref(), params)?;
            join::per_outer_row(l, move |lrow| {
                join::index_row(
                    view,
                    table,
                    lookup,
                    &left_keys,
                    right_filter.as_deref(),
                    residual.as_deref(),
                    kind,
                    right_width,
                    lrow,
                    guard,
                )
            })
        }
        Node::NestedLoop {
            left,
            right,
            kind,
            predicate,
        } => {
            let l = build(left, ctx, next_id)?;
            let r = build(right, ctx, next_id)?;
            let (kind, width) = (*kind, right.columns.len());
            let predicate = bind_opt(predicate.as_ref(), params)?;
            lazy(move || join::nested_loop(l, r, predicate, kind, width, guard))
        }
        Node::Aggregate { input, group, aggs } => {
            let input = build(input, ctx, next_id)?;
            let (group, aggs) = (bind_all(group, params)?, bind_all(aggs, params)?);
            lazy(move || {
                Ok(Box::new(
                    aggregate::aggregate(input, &group, &aggs, guard)?
                        .into_iter()
                        .map(Ok),
                ))
            })
        }
        Node::RecursiveCte {
            anchor,
            step,
            all,
            work,
            limit,
        } => recursive(anchor, step, *all, *work, *limit, ctx, next_id)?,
        Node::WorkTable { work } => {
            let rows = ctx.work.get(work).cloned().unwrap_or_default();
            Box::new((0..rows.len()).map(move |i| Ok(rows[i].clone())))
        }
        Node::Window { input, calls } => {
            let input = build(input, ctx, next_id)?;
            let calls: Vec<crate::plan::WindowCall> = calls
                .iter()
                .map(|c| c.map(&mut |e| bind(e, params).map(Cow::into_owned)))
                .collect::<Result<_>>()?;
            lazy(move || window::window(input, &calls, guard))
        }
        Node::Sort { input, keys } => {
            let input = build(input, ctx, next_id)?;
            let keys = bind_all(keys, params)?;
            lazy(move || sort::sort(input, &keys, guard))
        }
        Node::TopK {
            input,
            keys,
            limit,
            offset,
        } => {
            let input = build(input, ctx, next_id)?;
            let (limit, offset) = (*limit, *offset);
            let keys = bind_all(keys, params)?;
            lazy(move || sort::top_k(input, &keys, limit, offset, guard))
        }
        Node::Limit {
            input,
            limit,
            offset,
        } => {
            let input = build(input, ctx, next_id)?;
            let it = input.skip(*offset);
            match limit {
                Some(l) => Box::new(it.take(*l)),
                None => Box::new(it),
            }
        }
        Node::Distinct { input } => set::distinct(build(input, ctx, next_id)?, guard),
        Node::SetCompare { left, right, anti } => {
            let l = build(left, ctx, next_id)?;
            let r = build(right, ctx, next_id)?;
            let anti = *anti;
            lazy(move || set::compare(l, r, anti, guard))
        }
        Node::Insert { .. } | Node::Update { .. } | Node::Delete { .. } => {
            return Err(Error::InvalidInput(
                "internal: a write inside a query plan".into(),
            ));
        }
        Node::Join { .. } => {
            return Err(Error::InvalidInput(
                "internal: a join the optimizer has not planned".into(),
            ));
        }
        Node::Union { inputs } => {
            let mut arms = Vec::with_capacity(inputs.len());
            for p in inputs {
                arms.push(build(p, ctx, next_id)?);
            }
            Box::new(arms.into_iter().flatten())
        }
    };
    Ok(match &ctx.analyze {
        Some(stats) => match stats.get(id) {
            Some(s) => {
                let s = s.clone();
                let mut inner = iter;
                Box::new(std::iter::from_fn(move || {
                    let start = Instant::now();
                    let r = inner.next();
                    s.nanos
                        .set(s.nanos.get() + start.elapsed().as_nanos() as u64);
                    if matches!(r, Some(Ok(_))) {
                        s.rows.set(s.rows.get() + 1);
                    }
                    r
                }))
            }
            None => iter,
        },
        None => iter,
    })
}
