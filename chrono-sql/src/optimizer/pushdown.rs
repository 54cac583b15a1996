//! The predicate-pushdown pass: each condition of a WHERE clause or an ON clause is checked
//! as early as it can be without changing the answer.
//!
//! - A condition on one relation goes into that relation (into a scan's filter, where the
//!   access-path pass can use it; above any other relation as a filter).
//! - A condition on several relations is checked at the join step that brings the last of
//!   them in.
//! - LEFT JOIN: its ON conditions on the joined table alone filter that table, the rest
//!   decide which pairs match; a WHERE condition on a table a LEFT JOIN makes nullable is
//!   checked after that join, never below it (it must see the NULLs the join adds); an
//!   inner ON condition never goes into a table made nullable earlier.
//! - A condition with a correlated subquery stays above the whole FROM list (it runs per
//!   row of it), and one reading no column stays where it was written.

use chrono_storage::Value;

use super::Env;
use super::access_path::choose_access;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::plan::{Access, JoinKind, Node, Plan, ReadAt};

/// Places the conditions of a Join's ON clauses, of a WHERE filter above a Join, and of a
/// filter directly above a scan.
pub(super) fn run(plan: &mut Plan, env: &Env<'_>) -> Result<()> {
    match &plan.node {
        Node::Join { on, .. } if on.iter().any(|c| !c.is_empty()) => place_on(plan, env),
        Node::Filter { .. } => push_where(plan, env),
        _ => Ok(()),
    }
}

/// Where a join's conditions go.
struct Placement {
    /// Per relation: the column its row starts at in the FROM row.
    offsets: Vec<usize>,
    /// Per relation: made nullable by a LEFT JOIN.
    nullable: Vec<bool>,
    /// Per relation: conditions on it alone (over the FROM row).
    pushed: Vec<Vec<Expr>>,
    /// Conditions left above the whole FROM list.
    top: Vec<Expr>,
}

impl Placement {
    fn new(inputs: &[Plan], kinds: &[JoinKind]) -> Placement {
        Placement {
            offsets: offsets(inputs),
            nullable: kinds.iter().map(|k| *k == JoinKind::Left).collect(),
            pushed: vec![Vec::new(); inputs.len()],
            top: Vec::new(),
        }
    }

    fn rel_of(&self, col: usize) -> usize {
        relation_of(&self.offsets, col)
    }

    /// Places one conjunct, from the ON clause of relation `from_on_of` or (None) from WHERE.
    fn place(
        &mut self,
        e: Expr,
        from_on_of: Option<usize>,
        at: &mut [Vec<Expr>],
        after: &mut [Vec<Expr>],
    ) -> Result<()> {
        if e.has_correlated() {
            if from_on_of.is_some_and(|j| self.nullable[j]) {
                return Err(Error::Unsupported(
                    "a correlated subquery in a LEFT JOIN's ON".into(),
                ));
            }
            self.top.push(e);
            return Ok(());
        }
        let cols = e.columns();
        if cols.is_empty() {
            match from_on_of {
                Some(j) => at[j].push(e),
                None => self.top.push(e),
            }
            return Ok(());
        }
        let lo = cols.iter().map(|&c| self.rel_of(c)).min().unwrap_or(0);
        let hi = cols.iter().map(|&c| self.rel_of(c)).max().unwrap_or(0);
        let single = lo == hi;
        match from_on_of {
            Some(j) if self.nullable[j] => {
                if single && lo == j {
                    self.pushed[j].push(e);
                } else {
                    at[j].push(e);
                }
            }
            Some(j) => {
                if single && !self.nullable[lo] {
                    self.pushed[lo].push(e);
                } else {
                    at[j.max(hi)].push(e);
                }
            }
            None => {
                if cols.iter().any(|&c| self.nullable[self.rel_of(c)]) {
                    after[hi].push(e);
                } else if single {
                    self.pushed[lo].push(e);
                } else {
                    at[hi].push(e);
                }
            }
        }
        Ok(())
    }

    /// Moves the conditions on one relation into it.
    fn push_into(&mut self, inputs: &mut [Plan], env: &Env<'_>) -> Result<()> {
        for (r, input) in inputs.iter_mut().enumerate() {
            let off = self.offsets[r];
            let local: Vec<Expr> = std::mem::take(&mut self.pushed[r])
                .into_iter()
                .map(|e| e.map_columns(&|c| c - off))
                .collect();
            into_relation(input, local, env)?;
        }
        Ok(())
    }
}

/// Each relation's first column in the row of relations side by side.
pub(super) fn offsets(rels: &[Plan]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(rels.len());
    let mut width = 0;
    for p in rels {
        offsets.push(width);
        width += p.columns.len();
    }
    offsets
}

/// The relation of `offsets` (each relation's first column) that holds column `col`.
pub(super) fn relation_of(offsets: &[usize], col: usize) -> usize {
    offsets.iter().rposition(|&o| o <= col).unwrap_or(0)
}

/// The conditions `conjuncts` imply through the column equalities of inner joins (`f.c =
/// a.c` in WHERE or an ON clause): `f.c = 'DL'` with `f.c = a.c` gives `a.c = 'DL'`, which
/// can choose `a`'s key or index, or find `a` empty. Only a condition comparing one column
/// with constants (`=`, `<`…, `IN`, `BETWEEN`) is carried, one equality at a time, between
/// columns of the same type of tables no LEFT JOIN makes nullable (the rows that reach the
/// join have equal values in both, so the condition holds of one exactly when of the
/// other). The conditions carried are redundant: answers do not change.
fn implied<'e>(
    conjuncts: &'e [Expr],
    joins: impl Iterator<Item = &'e Expr>,
    inputs: &[Plan],
    placement: &Placement,
) -> Vec<Expr> {
    use crate::expr::CmpOp;
    let type_of = |col: usize| {
        let r = placement.rel_of(col);
        if placement.nullable.get(r).copied().unwrap_or(true) {
            return None;
        }
        let mut plan = inputs.get(r)?;
        while let Node::Filter { input, .. } = &plan.node {
            plan = input;
        }
        match &plan.node {
            Node::Scan { table, .. } => table
                .columns
                .get(col.checked_sub(placement.offsets[r])?)
                .map(|c| c.data_type),
            _ => None,
        }
    };
    let mut equal: Vec<(usize, usize)> = Vec::new();
    for e in conjuncts.iter().chain(joins) {
        if let Expr::Cmp(CmpOp::Eq, a, b) = e
            && let (Expr::Column(x), Expr::Column(y)) = (&**a, &**b)
            && x != y
            && type_of(*x).is_some()
            && type_of(*x) == type_of(*y)
        {
            equal.push((*x, *y));
        }
    }
    if equal.is_empty() {
        return Vec::new();
    }
    let constant = |e: &Expr| matches!(e, Expr::Literal(_) | Expr::Param(_));
    let mut out: Vec<Expr> = Vec::new();
    for e in conjuncts {
        let column = match e {
            Expr::Cmp(_, a, b) => match (&**a, &**b) {
                (Expr::Column(c), v) | (v, Expr::Column(c)) if constant(v) => Some(*c),
                _ => None,
            },
            Expr::InList(x, list, false) => match &**x {
                Expr::Column(c) if list.iter().all(constant) => Some(*c),
                _ => None,
            },
            Expr::Between(x, lo, hi, false) => match &**x {
                Expr::Column(c) if constant(lo) && constant(hi) => Some(*c),
                _ => None,
            },
            _ => None,
        };
        let Some(c) = column else { continue };
        for &(x, y) in &equal {
            let other = match c {
                _ if c == x => y,
                _ if c == y => x,
                _ => continue,
            };
            let carried = e.clone().map_columns(&|k| if k == c { other } else { k });
            if !conjuncts.contains(&carried) && !out.contains(&carried) {
                out.push(carried);
            }
        }
    }
    out
}

/// A Join whose ON clauses are still as written: their conjuncts are placed.
fn place_on(plan: &mut Plan, env: &Env<'_>) -> Result<()> {
    let Node::Join {
        inputs,
        kinds,
        on,
        at,
        after,
        ..
    } = &mut plan.node
    else {
        return Ok(());
    };
    let mut placement = Placement::new(inputs, kinds);
    for (j, conds) in on.iter_mut().enumerate() {
        for c in std::mem::take(conds) {
            placement.place(c, Some(j), at, after)?;
        }
    }
    placement.push_into(inputs, env)?;
    for c in placement.top {
        plan.wrap(|p| Plan::filter(p, c));
    }
    Ok(())
}

/// A filter above a Join (through other filters) or above a scan: its conjuncts go down.
fn push_where(plan: &mut Plan, env: &Env<'_>) -> Result<()> {
    let Node::Filter { input, predicate } = &mut plan.node else {
        return Ok(());
    };
    let mut target: &mut Plan = input;
    while matches!(target.node, Node::Filter { .. }) {
        let Some(below) = target.children_mut().into_iter().next() else {
            return Ok(());
        };
        target = below;
    }
    let conjuncts = std::mem::replace(predicate, Expr::Literal(Value::Bool(true))).conjuncts();
    let mut stay = Vec::new();
    match &mut target.node {
        Node::Join {
            inputs,
            kinds,
            on,
            at,
            after,
            ..
        } => {
            let mut placement = Placement::new(inputs, kinds);
            let joins = on.iter().chain(at.iter()).flatten();
            let implied = implied(&conjuncts, joins, inputs, &placement);
            for c in conjuncts.into_iter().chain(implied) {
                placement.place(c, None, at, after)?;
            }
            placement.push_into(inputs, env)?;
            stay = placement.top;
        }
        Node::Scan { .. } => {
            let mut down = Vec::new();
            for c in conjuncts {
                if c.has_correlated() || c.columns().is_empty() {
                    stay.push(c);
                } else {
                    down.push(c);
                }
            }
            into_relation(target, down, env)?;
        }
        Node::Project { .. } => stay = through_projection(target, conjuncts, env)?,
        _ => stay = conjuncts,
    }
    match Expr::all_of(stay) {
        Some(p) => {
            let Node::Filter { predicate, .. } = &mut plan.node else {
                return Ok(());
            };
            *predicate = p;
            plan.derive_estimate();
        }
        None => plan.wrap(|p| match p.node {
            Node::Filter { input, .. } => *input,
            other => Plan { node: other, ..p },
        }),
    }
    Ok(())
}

/// Puts `conjuncts` (over the plan's own columns) into a scan's filter, or into a filter
/// above any other relation; a scan's estimate follows its conditions (one row for a whole
/// primary key).
pub(crate) fn into_relation(plan: &mut Plan, conjuncts: Vec<Expr>, env: &Env<'_>) -> Result<()> {
    if conjuncts.is_empty() {
        return Ok(());
    }
    let Node::Scan {
        table,
        read_at,
        filter: existing,
        ..
    } = &mut plan.node
    else {
        let stay = through_projection(plan, conjuncts, env)?;
        if let Some(pred) = Expr::all_of(stay) {
            plan.wrap(|p| Plan::filter(p, pred));
        }
        return Ok(());
    };
    let mut all = existing.take().map(Expr::conjuncts).unwrap_or_default();
    all.extend(conjuncts);
    let versions = matches!(read_at, ReadAt::Versions(_));
    let at = read_at.time(env.params);
    let chosen = choose_access(table, &all, env, at);
    let access = if versions {
        super::access_path::versions_access(chosen)
    } else {
        chosen
    };
    let f = Expr::all_of(all);
    // One row for a key, but a key has many versions.
    if matches!(access, Access::Key(_)) && !versions {
        plan.est_rows = 1.0;
        plan.estimator = "exact";
    } else if let (Access::Keys(keys), false) = (&access, versions) {
        plan.est_rows = keys.len() as f64;
        plan.estimator = "exact";
    } else {
        let peeked = f
            .as_ref()
            .map(|f| f.with_params(env.params).unwrap_or_else(|_| f.clone()));
        let est = env
            .stats
            .for_scan(table, at)
            .estimate(env.estimator, table, peeked.as_ref());
        plan.est_rows = est.rows;
        plan.estimator = est.estimator;
    }
    *existing = f;
    Ok(())
}

/// Conditions on a derived table, a view or a WITH query go through its projection when
/// what is below the projection is rows of tables (a scan, a join, filters): each condition
/// over plain results is rewritten over the projection's input and pushed there, where it
/// can choose a key or index. Below an aggregate, window, DISTINCT, LIMIT or set operation
/// the rows differ, so conditions stay above. Returns the conditions that stay.
fn through_projection(plan: &mut Plan, conjuncts: Vec<Expr>, env: &Env<'_>) -> Result<Vec<Expr>> {
    let Node::Project { input, exprs } = &mut plan.node else {
        return Ok(conjuncts);
    };
    let mut below = &**input;
    while let Node::Filter { input, .. } = &below.node {
        below = input;
    }
    if !matches!(below.node, Node::Scan { .. } | Node::Join { .. }) {
        return Ok(conjuncts);
    }
    let mut stay = Vec::new();
    let mut down = Vec::new();
    for c in conjuncts {
        if c.has_correlated() || c.columns().is_empty() {
            stay.push(c);
            continue;
        }
        let rewritten = c.transform(&mut |e| {
            Ok(match e {
                Expr::Column(i) => Some(exprs.get(*i).cloned().ok_or_else(|| {
                    Error::InvalidInput(format!("internal: column {i} past a projection"))
                })?),
                _ => None,
            })
        })?;
        // What the projection computes must be cheap and safe to compute earlier: no
        // subqueries moved below it.
        if rewritten.has_correlated() || !rewritten.subquery_plans().is_empty() {
            stay.push(c);
        } else {
            down.push(rewritten);
        }
    }
    if let Some(pred) = Expr::all_of(down) {
        input.wrap(|p| Plan::filter(p, pred));
        push_where(input, env)?;
        plan.derive_estimate();
    }
    Ok(stay)
}
