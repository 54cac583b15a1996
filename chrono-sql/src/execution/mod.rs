//! The executor: each plan node becomes an iterator of rows pulling from its inputs, so
//! rows stream from storage to the result; only hash-join build sides, aggregation
//! groups, sorts and the top-k buffer hold rows in memory.

pub mod schema;
pub mod write;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use chrono_storage::{KeyRange, Transaction, Value, encoding};

use crate::catalog::{TableDef, View};
use crate::cost::{Feedback, StatsRegistry};
use crate::error::{Error, Result};
use crate::expr::{Expr, Subquery, SubqueryKind};
use crate::limits::{StatementGuard, hashed_key_bytes, keyed_row_bytes, row_bytes};
use crate::plan::{Access, AggCall, AggFunc, JoinKind, Lookup, Node, Plan, ReadAt, SortKey};
use crate::types::{compare, truth};

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

/// The rows of a plan, as they are produced.
pub fn rows<'a>(
    plan: &'a Plan,
    txn: &'a Transaction,
    stats: &'a StatsRegistry,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let mut ctx = ExecCtx {
        txn,
        stats,
        analyze: None,
        guard,
    };
    build(plan, &mut ctx, &mut 0)
}

/// Runs a plan to completion, charging the collected rows to the statement's budget.
pub fn collect(
    plan: &Plan,
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    hold(rows(plan, txn, stats, guard)?, guard)
}

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
    Ok(std::borrow::Cow::Owned(plan.try_map_exprs(&mut fill)?))
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
    let mut rows = self::rows(plan, txn, stats, guard)?;
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
    let iter: RowIter<'a> = match &plan.node {
        Node::Scan {
            table,
            label: _,
            read_at,
            access,
            filter,
        } => {
            let mut rows = crate::table::scan(txn, table, *read_at, access)?;
            let filter = filter.clone();
            let mut actual = 0u64;
            let stats = ctx.stats;
            // A primary-key lookup returns at most one row: nothing for an estimator to
            // learn, so no feedback (and no cost on the point-query path).
            let keyed = matches!(access, Access::Key(_));
            let mut feedback = (!keyed).then(|| Feedback {
                table: table.name.clone(),
                predicate: filter
                    .as_ref()
                    .map(|f| crate::plan::show_expr(f, &plan.columns))
                    .unwrap_or_default(),
                filter: filter.clone(),
                estimated: plan.est_rows,
                actual: 0,
                estimator: plan.estimator,
                current: matches!(read_at, ReadAt::Current),
            });
            let mut done = false;
            Box::new(std::iter::from_fn(move || {
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
                                stats.record(fb);
                            }
                            return None;
                        }
                        Some(Err(e)) => {
                            done = true;
                            return Some(Err(e));
                        }
                        Some(Ok((_, row))) => {
                            if let Some(f) = &filter {
                                match f.eval(&row).and_then(|v| truth(&v)) {
                                    Ok(Some(true)) => {}
                                    Ok(_) => continue,
                                    Err(e) => {
                                        done = true;
                                        return Some(Err(e));
                                    }
                                }
                            }
                            actual += 1;
                            return Some(Ok(row));
                        }
                    }
                }
            }))
        }
        Node::Values { rows } => {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(r.iter().map(|e| e.eval(&[])).collect::<Result<Row>>());
            }
            Box::new(out.into_iter())
        }
        Node::Filter { input, predicate } => {
            let input = build(input, ctx, next_id)?;
            let correlated = predicate.has_correlated();
            let stats = ctx.stats;
            Box::new(input.filter_map(move |r| {
                match r {
                    Err(e) => Some(Err(e)),
                    Ok(row) => match eval_row(predicate, correlated, &row, txn, stats, guard)
                        .and_then(|v| truth(&v))
                    {
                        Ok(Some(true)) => Some(Ok(row)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    },
                }
            }))
        }
        Node::Project { input, exprs } => {
            let input = build(input, ctx, next_id)?;
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
            let right_width = right.columns.len();
            let kind = *kind;
            let build_left = *build_left;
            lazy(move || {
                hash_join(
                    l,
                    r,
                    left_keys,
                    right_keys,
                    kind,
                    residual.as_ref(),
                    build_left,
                    right_width,
                    guard,
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
            let view = match read_at {
                ReadAt::AsOf(ts) => View::AsOf(txn.store(), (*ts).min(txn.read_ts())),
                _ => View::Current(txn),
            };
            let right_width = table.columns.len();
            let kind = *kind;
            per_outer_row(l, move |lrow| {
                index_join_row(
                    view,
                    table,
                    lookup,
                    left_keys,
                    right_filter.as_ref(),
                    residual.as_ref(),
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
            let r_iter = build(right, ctx, next_id)?;
            let right_width = right.columns.len();
            let kind = *kind;
            lazy(move || {
                let r = hold(r_iter, guard)?;
                Ok(per_outer_row(l, move |lrow| {
                    join_row(
                        lrow,
                        r.iter().map(Vec::as_slice),
                        true,
                        predicate.as_ref(),
                        kind,
                        right_width,
                        guard,
                    )
                }))
            })
        }
        Node::Aggregate { input, group, aggs } => {
            let input = build(input, ctx, next_id)?;
            lazy(move || {
                Ok(Box::new(
                    aggregate(input, group, aggs, guard)?.into_iter().map(Ok),
                ))
            })
        }
        Node::Sort { input, keys } => {
            let input = build(input, ctx, next_id)?;
            lazy(move || {
                let mut keyed = Vec::new();
                for r in input {
                    let row = r?;
                    let key = sort_key(keys, &row)?;
                    guard.charge(keyed_row_bytes(&key, &row))?;
                    keyed.push((key, row));
                }
                keyed.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0));
                Ok(Box::new(keyed.into_iter().map(|(_, r)| Ok(r))))
            })
        }
        Node::TopK {
            input,
            keys,
            limit,
            offset,
        } => {
            let input = build(input, ctx, next_id)?;
            let (limit, offset) = (*limit, *offset);
            lazy(move || {
                let k = limit.saturating_add(offset);
                let mut best: Vec<(Vec<Value>, usize, Row)> = Vec::new();
                for (seq, r) in input.enumerate() {
                    let row = r?;
                    let key = sort_key(keys, &row)?;
                    guard.charge(keyed_row_bytes(&key, &row))?;
                    best.push((key, seq, row));
                    if best.len() >= k.saturating_mul(2).max(1024) {
                        best.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0).then(a.1.cmp(&b.1)));
                        for (key, _, row) in best.drain(k.min(best.len())..) {
                            guard.release(keyed_row_bytes(&key, &row));
                        }
                    }
                }
                best.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0).then(a.1.cmp(&b.1)));
                best.truncate(k);
                Ok(Box::new(
                    best.into_iter().skip(offset).map(|(_, _, r)| Ok(r)),
                ))
            })
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
        Node::Distinct { input } => {
            let input = build(input, ctx, next_id)?;
            let mut seen = HashSet::new();
            Box::new(input.filter_map(move |r| match r {
                Ok(row) => {
                    let key = hash_key(&row);
                    let bytes = hashed_key_bytes(&key);
                    if !seen.insert(key) {
                        return None;
                    }
                    Some(guard.charge(bytes).map(|()| row))
                }
                Err(e) => Some(Err(e)),
            }))
        }
        Node::SetCompare { left, right, anti } => {
            let l = build(left, ctx, next_id)?;
            let r = build(right, ctx, next_id)?;
            let anti = *anti;
            lazy(move || {
                let mut among = HashSet::new();
                for row in r {
                    guard.tick()?;
                    let key = hash_key(&row?);
                    let bytes = hashed_key_bytes(&key);
                    if among.insert(key) {
                        guard.charge(bytes)?;
                    }
                }
                let mut seen = HashSet::new();
                Ok(Box::new(l.filter_map(move |r| match r {
                    Ok(row) => {
                        let key = hash_key(&row);
                        if among.contains(&key) == anti {
                            return None;
                        }
                        let bytes = hashed_key_bytes(&key);
                        if !seen.insert(key) {
                            return None;
                        }
                        Some(guard.charge(bytes).map(|()| row))
                    }
                    Err(e) => Some(Err(e)),
                })) as RowIter<'a>)
            })
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

/// The joined rows for one left row of an index nested-loop join.
#[allow(clippy::too_many_arguments)]
fn index_join_row(
    view: View<'_>,
    table: &TableDef,
    lookup: &Lookup,
    left_keys: &[Expr],
    right_filter: Option<&Expr>,
    residual: Option<&Expr>,
    kind: JoinKind,
    right_width: usize,
    lrow: Row,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    guard.tick()?;
    let key_columns: &[usize] = match lookup {
        Lookup::PrimaryKey => &table.primary_key,
        Lookup::Index(ix) => &ix.columns,
    };
    let mut key = Vec::with_capacity(left_keys.len());
    let mut possible = true;
    for (e, &c) in left_keys.iter().zip(key_columns) {
        let col = &table.columns[c];
        // A NULL key, or one that is not a value of the column's type, matches nothing.
        match col.data_type.coerce(e.eval(&lrow)?, &col.name) {
            Ok(v) if !v.is_null() => key.push(v),
            _ => possible = false,
        }
    }
    let mut candidates: Vec<Row> = Vec::new();
    if possible {
        let encoded = encoding::encode_key(&key);
        match lookup {
            Lookup::PrimaryKey => {
                if let Some(raw) = view.get(table.keyspace, &encoded)? {
                    candidates.push(table.decode_row(&raw)?);
                }
            }
            Lookup::Index(ix) => {
                for item in view.scan(ix.keyspace, KeyRange::Prefix(encoded))? {
                    guard.tick()?;
                    let (_, pk) = item?;
                    match view.get(table.keyspace, &pk)? {
                        Some(raw) => candidates.push(table.decode_row(&raw)?),
                        None => {
                            return Err(Error::Corruption(format!(
                                "index {} points at a missing row of {}",
                                ix.name, table.name
                            )));
                        }
                    }
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(candidates.len());
    for rrow in candidates {
        if let Some(f) = right_filter
            && truth(&f.eval(&rrow)?)? != Some(true)
        {
            continue;
        }
        kept.push(rrow);
    }
    join_row(
        lrow,
        kept.iter().map(Vec::as_slice),
        true,
        residual,
        kind,
        right_width,
        guard,
    )
}

/// A hashable, equality-preserving encoding of values: integral floats encode as
/// integers, so `1 = 1.0` joins and groups together.
pub fn hash_key(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 9);
    for v in values {
        match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
                encoding::encode_key_value(&mut out, &Value::Int(*f as i64))
            }
            other => encoding::encode_key_value(&mut out, other),
        }
    }
    out
}

fn eval_all(exprs: &[Expr], row: &[Value]) -> Result<Vec<Value>> {
    exprs.iter().map(|e| e.eval(row)).collect()
}

#[allow(clippy::too_many_arguments)]
fn hash_join<'a>(
    left: RowIter<'a>,
    right: RowIter<'a>,
    left_keys: &'a [Expr],
    right_keys: &'a [Expr],
    kind: JoinKind,
    residual: Option<&'a Expr>,
    build_left: bool,
    right_width: usize,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let (build, probe, build_keys, probe_keys) = if build_left {
        (left, right, left_keys, right_keys)
    } else {
        (right, left, right_keys, left_keys)
    };
    let mut table: HashMap<Vec<u8>, Vec<Row>> = HashMap::new();
    for r in build {
        guard.tick()?;
        let row = r?;
        let key = eval_all(build_keys, &row)?;
        if key.iter().any(Value::is_null) {
            continue;
        }
        let key = hash_key(&key);
        guard.charge(row_bytes(&row) + hashed_key_bytes(&key))?;
        table.entry(key).or_default().push(row);
    }
    Ok(per_outer_row(probe, move |prow| {
        let key = eval_all(probe_keys, &prow)?;
        let matches: &[Row] = if key.iter().any(Value::is_null) {
            &[]
        } else {
            table.get(&hash_key(&key)).map(Vec::as_slice).unwrap_or(&[])
        };
        // With the build side on the left (inner joins only), the probe row goes second.
        join_row(
            prow,
            matches.iter().map(Vec::as_slice),
            !build_left,
            residual,
            kind,
            right_width,
            guard,
        )
    }))
}

/// For each row of `outer`, the rows `f` makes of it, in order; an error ends nothing but
/// is passed on in place.
fn per_outer_row<'a>(
    outer: RowIter<'a>,
    mut f: impl FnMut(Row) -> Result<Vec<Row>> + 'a,
) -> RowIter<'a> {
    Box::new(outer.flat_map(move |r| match r.and_then(&mut f) {
        Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    }))
}

/// Joins one outer row with its candidate partners: the joined rows (outer columns first
/// when `outer_first`) that satisfy `condition`; for a LEFT join with none, the outer row
/// padded with NULLs.
fn join_row<'r>(
    outer: Row,
    partners: impl Iterator<Item = &'r [Value]>,
    outer_first: bool,
    condition: Option<&Expr>,
    kind: JoinKind,
    right_width: usize,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for partner in partners {
        guard.tick()?;
        let (first, second) = if outer_first {
            (outer.as_slice(), partner)
        } else {
            (partner, outer.as_slice())
        };
        let mut joined = Vec::with_capacity(first.len() + second.len());
        joined.extend_from_slice(first);
        joined.extend_from_slice(second);
        if let Some(c) = condition
            && truth(&c.eval(&joined)?)? != Some(true)
        {
            continue;
        }
        out.push(joined);
    }
    if out.is_empty() && kind == JoinKind::Left {
        let mut padded = outer;
        padded.extend(std::iter::repeat_n(Value::Null, right_width));
        out.push(padded);
    }
    Ok(out)
}

enum Acc {
    Count(i64),
    Sum {
        int: i64,
        float: f64,
        is_float: bool,
        any: bool,
        overflow: bool,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value>),
    Max(Option<Value>),
    Any(Option<Value>),
}

impl Acc {
    fn new(f: AggFunc) -> Acc {
        match f {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum | AggFunc::Total => Acc::Sum {
                int: 0,
                float: 0.0,
                is_float: false,
                any: false,
                overflow: false,
            },
            AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::AnyValue => Acc::Any(None),
        }
    }

    fn add(&mut self, v: Value) -> Result<()> {
        match self {
            Acc::Count(n) => {
                if !v.is_null() {
                    *n += 1
                }
            }
            Acc::Sum {
                int,
                float,
                is_float,
                any,
                overflow,
            } => match v {
                Value::Null => {}
                Value::Int(i) => {
                    *any = true;
                    *float += i as f64;
                    match int.checked_add(i) {
                        Some(s) => *int = s,
                        None => *overflow = true,
                    }
                }
                Value::Float(f) => {
                    *any = true;
                    *is_float = true;
                    *float += f;
                }
                Value::Bool(b) => {
                    *any = true;
                    *int += i64::from(b);
                    *float += f64::from(u8::from(b));
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "type mismatch: cannot sum {} values",
                        other.type_name()
                    )));
                }
            },
            Acc::Avg { sum, n } => match v {
                Value::Null => {}
                Value::Int(i) => {
                    *sum += i as f64;
                    *n += 1;
                }
                Value::Float(f) => {
                    *sum += f;
                    *n += 1;
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "type mismatch: cannot average {} values",
                        other.type_name()
                    )));
                }
            },
            Acc::Min(_) | Acc::Max(_) => {
                if v.is_null() {
                    return Ok(());
                }
                let is_min = matches!(self, Acc::Min(_));
                let cur = match self {
                    Acc::Min(c) | Acc::Max(c) => c,
                    _ => return Ok(()),
                };
                let replace = match cur {
                    None => true,
                    Some(c) => {
                        let o = compare(&v, c)?.unwrap_or(std::cmp::Ordering::Equal);
                        if is_min { o.is_lt() } else { o.is_gt() }
                    }
                };
                if replace {
                    *cur = Some(v);
                }
                let _ = cur;
            }
            Acc::Any(cur) => {
                if cur.is_none() {
                    *cur = Some(v);
                }
            }
        }
        Ok(())
    }

    fn finish(self, f: AggFunc) -> Result<Value> {
        Ok(match self {
            Acc::Count(n) => Value::Int(n),
            Acc::Sum {
                int,
                float,
                is_float,
                any,
                overflow,
            } => {
                if f == AggFunc::Total {
                    Value::Float(float)
                } else if !any {
                    Value::Null
                } else if is_float {
                    Value::Float(float)
                } else if overflow {
                    return Err(Error::InvalidInput("integer overflow in SUM".into()));
                } else {
                    Value::Int(int)
                }
            }
            Acc::Avg { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Float(sum / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::Any(v) => v.unwrap_or(Value::Null),
        })
    }
}

struct Group {
    values: Row,
    accs: Vec<Acc>,
    seen: Vec<Option<HashSet<Vec<u8>>>>,
}

fn aggregate(
    input: RowIter<'_>,
    group: &[Expr],
    aggs: &[AggCall],
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    let group_bytes = std::mem::size_of::<Group>()
        + aggs.len()
            * (std::mem::size_of::<Acc>() + std::mem::size_of::<Option<HashSet<Vec<u8>>>>());
    let mut groups: BTreeMap<Vec<u8>, Group> = BTreeMap::new();
    let new_group = |values: Row| Group {
        values,
        accs: aggs.iter().map(|a| Acc::new(a.func)).collect(),
        seen: aggs.iter().map(|a| a.distinct.then(HashSet::new)).collect(),
    };
    for r in input {
        let row = r?;
        guard.tick()?;
        let values = eval_all(group, &row)?;
        let key = hash_key(&values);
        if !groups.contains_key(&key) {
            guard.charge(group_bytes + hashed_key_bytes(&key) + row_bytes(&values))?;
        }
        let g = groups.entry(key).or_insert_with(|| new_group(values));
        for (i, a) in aggs.iter().enumerate() {
            let v = match &a.arg {
                None => Value::Int(1),
                Some(e) => e.eval(&row)?,
            };
            if let Some(seen) = &mut g.seen[i] {
                if v.is_null() {
                    continue;
                }
                let key = hash_key(std::slice::from_ref(&v));
                let bytes = hashed_key_bytes(&key);
                if !seen.insert(key) {
                    continue;
                }
                guard.charge(bytes)?;
            }
            g.accs[i].add(v)?;
        }
    }
    if groups.is_empty() && group.is_empty() {
        groups.insert(Vec::new(), new_group(Vec::new()));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_, g) in groups {
        let mut row = g.values;
        for (acc, a) in g.accs.into_iter().zip(aggs) {
            row.push(acc.finish(a.func)?);
        }
        out.push(row);
    }
    Ok(out)
}

fn sort_key(keys: &[SortKey], row: &[Value]) -> Result<Vec<Value>> {
    keys.iter().map(|k| k.expr.eval(row)).collect()
}

fn cmp_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Equal,
            (true, false) => {
                if k.nulls_first {
                    Less
                } else {
                    Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Greater
                } else {
                    Less
                }
            }
            (false, false) => {
                let o = x.total_cmp(y);
                if k.desc { o.reverse() } else { o }
            }
        };
        if o != Equal {
            return o;
        }
    }
    Equal
}
