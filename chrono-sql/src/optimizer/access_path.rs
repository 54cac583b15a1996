//! The access-path pass: each scan with conditions reads by primary key, a primary-key
//! range, or an index range when that is cheaper than reading everything. Key values are
//! typed bounds (literals, parameters, subqueries, outer columns), turned into key bytes by
//! [`crate::table`] when the scan starts.

use super::Env;
use chrono_storage::Value;

use crate::catalog::TableDef;
use crate::cost::{INDEX_ENTRY_COST, SEEK_COST, SEQUENTIAL_ROW_COST};
use crate::error::Result;
use crate::expr::{CmpOp, Expr};
use crate::plan::{Access, KeyBounds, Node, Plan, ReadAt};
use crate::types::DataType;

/// Chooses the access path of every scan with conditions.
pub(super) fn run(plan: &mut Plan, env: &Env<'_>) -> Result<()> {
    if let Node::Scan {
        table,
        read_at,
        access,
        filter,
        ..
    } = &mut plan.node
    {
        *access = match (read_at, filter) {
            (_, None) => Access::Full,
            (read_at, Some(f)) => {
                let at = read_at.time(env.params);
                let chosen = choose_access(table, &f.clone().conjuncts(), env, at);
                if matches!(read_at, ReadAt::Versions(_)) {
                    versions_access(chosen)
                } else {
                    chosen
                }
            }
        };
    }
    Ok(())
}

/// The access of a scan over versions (`FOR SYSTEM_TIME`): a primary key or key range
/// narrows the versions read (they are keyed by primary key, then time); an index does not
/// cover past versions, so a scan that would use one reads every version.
pub(crate) fn versions_access(access: Access) -> Access {
    match access {
        Access::Key(_) | Access::Keys(_) | Access::KeyRange(_) => access,
        Access::Full | Access::Index(..) | Access::IndexIn(..) => Access::Full,
    }
}

/// Most primary keys one `Keys` access reads (the combinations of IN lists on several key
/// columns); past it the scan takes another access path.
const MAX_KEY_COMBINATIONS: usize = 100_000;

/// `c IN (v, …)` (not negated), or `c = v OR c = w OR …` on one column: the column and the
/// values.
fn one_of(e: &Expr) -> Option<(usize, Vec<&Expr>)> {
    match e {
        Expr::InList(x, items, false) => match &**x {
            Expr::Column(c) => Some((*c, items.iter().collect())),
            _ => None,
        },
        Expr::Or(..) => {
            let mut column = None;
            let mut values = Vec::new();
            let mut stack = vec![e];
            while let Some(x) = stack.pop() {
                match x {
                    Expr::Or(a, b) => {
                        stack.push(b);
                        stack.push(a);
                    }
                    Expr::Cmp(CmpOp::Eq, a, b) => {
                        let (c, v) = match (&**a, &**b) {
                            (Expr::Column(c), v) | (v, Expr::Column(c)) => (*c, v),
                            _ => return None,
                        };
                        if *column.get_or_insert(c) != c {
                            return None;
                        }
                        values.push(v);
                    }
                    Expr::InList(x, items, false) => match &**x {
                        Expr::Column(c) if *column.get_or_insert(*c) == *c => {
                            values.extend(items.iter());
                        }
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            column.map(|c| (c, values))
        }
        _ => None,
    }
}

/// A bound on a key column: (value, inclusive).
type KeyBound = Option<(Expr, bool)>;

/// Picks the cheapest way to find rows matching `conjuncts` (over the table's columns).
/// Key values may be literals or expressions fixed before the scan starts (parameters,
/// subqueries); `params` are this execution's values, used for estimates only.
pub(crate) fn choose_access(
    table: &TableDef,
    conjuncts: &[Expr],
    env: &Env<'_>,
    at: Option<u64>,
) -> Access {
    let (stats, estimator, params) = (env.stats, env.estimator, env.params);
    // Per column: an equality value, and range bounds.
    let n = table.columns.len();
    let mut eq: Vec<Option<Expr>> = vec![None; n];
    let mut lower: Vec<KeyBound> = vec![None; n];
    let mut upper: Vec<KeyBound> = vec![None; n];
    // A literal must be a value of the column's type; anything else is checked when the
    // scan starts.
    let key_value = |c: usize, e: &Expr| -> Option<Expr> {
        if c >= n {
            return None;
        }
        match e {
            Expr::Literal(v) => {
                let col = &table.columns[c];
                match col.data_type.coerce(v.clone(), &col.name) {
                    Ok(x) if !x.is_null() => Some(Expr::Literal(x)),
                    _ => None,
                }
            }
            other if other.is_row_independent() => Some(other.clone()),
            _ => None,
        }
    };
    // Per column: a list of values (`IN (…)`, or equalities joined by OR).
    let mut any_of: Vec<Option<Vec<Expr>>> = vec![None; n];
    for e in conjuncts {
        if let Some((c, values)) = one_of(e)
            && c < n
        {
            let values: Option<Vec<Expr>> = values.iter().map(|v| key_value(c, v)).collect();
            if let Some(values) = values {
                any_of[c] = Some(values);
            }
            continue;
        }
        match e {
            Expr::Cmp(op, a, b) => {
                let (c, v, op) = match (&**a, &**b) {
                    (Expr::Column(c), v) => (*c, v, *op),
                    (v, Expr::Column(c)) => (*c, v, op.flip()),
                    _ => continue,
                };
                let Some(v) = key_value(c, v) else { continue };
                match op {
                    CmpOp::Eq => eq[c] = Some(v),
                    CmpOp::Gt => lower[c] = Some((v, false)),
                    CmpOp::GtEq => lower[c] = Some((v, true)),
                    CmpOp::Lt => upper[c] = Some((v, false)),
                    CmpOp::LtEq => upper[c] = Some((v, true)),
                    CmpOp::NotEq => {}
                }
            }
            Expr::Between(x, lo, hi, false) => {
                if let Expr::Column(c) = &**x
                    && let (Some(l), Some(h)) = (key_value(*c, lo), key_value(*c, hi))
                {
                    lower[*c] = Some((l, true));
                    upper[*c] = Some((h, true));
                }
            }
            _ => {}
        }
    }
    let pk = &table.primary_key;
    if !pk.is_empty() && pk.iter().all(|&c| eq[c].is_some()) {
        return Access::Key(pk.iter().filter_map(|&c| eq[c].clone()).collect());
    }
    // Every key column equal to a value or to one of a list: the keys of every combination.
    if !pk.is_empty() && pk.iter().all(|&c| eq[c].is_some() || any_of[c].is_some()) {
        let mut keys: Vec<Vec<Expr>> = vec![Vec::new()];
        for &c in pk {
            let choices = match &eq[c] {
                Some(v) => vec![v.clone()],
                None => any_of[c].clone().unwrap_or_default(),
            };
            if keys.len().saturating_mul(choices.len()) > MAX_KEY_COMBINATIONS {
                keys.clear();
                break;
            }
            keys = keys
                .iter()
                .flat_map(|k| {
                    choices.iter().map(move |v| {
                        let mut k = k.clone();
                        k.push(v.clone());
                        k
                    })
                })
                .collect();
        }
        if !keys.is_empty() {
            return Access::Keys(keys);
        }
    }
    let prefix_eq =
        |cols: &[usize]| -> Vec<Expr> { cols.iter().map_while(|&c| eq[c].clone()).collect() };
    let range_on = |c: usize, prefix: Vec<Expr>| -> Option<KeyBounds> {
        if lower[c].is_none() && upper[c].is_none() {
            return None;
        }
        Some(KeyBounds {
            prefix,
            lower: lower[c].clone(),
            upper: upper[c].clone(),
        })
    };
    let scan = stats.for_scan(table, at);
    let total = scan.estimate(estimator, table, None).rows;
    // Costs in rows of a sequential scan: a seek starts a range; each row a key range
    // reads is a scanned row; each index entry a little less; each row an index names is a
    // fetch by key, at the cost `ANALYZE` measured on this table.
    let fetch = scan.fetch_cost() + INDEX_ENTRY_COST;
    let full = total * SEQUENTIAL_ROW_COST;
    let mut best: Option<(f64, Access)> = None;
    let mut consider = |cost: f64, access: Access| {
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, access));
        }
    };
    // Rows matching equalities on `cols` (values in order), then the bounds of `range`
    // on the next column.
    let est_for = |cols: &[usize], values: &[Expr], range: Option<&KeyBounds>| -> f64 {
        let peek = |v: &Expr| v.with_params(params).unwrap_or_else(|_| v.clone());
        let cmp =
            |op, c: usize, v: &Expr| Expr::Cmp(op, Box::new(Expr::Column(c)), Box::new(peek(v)));
        let mut f: Vec<Expr> = cols
            .iter()
            .zip(values)
            .map(|(c, v)| cmp(CmpOp::Eq, *c, v))
            .collect();
        if let (Some(r), Some(&next)) = (range, cols.get(values.len())) {
            match (&r.lower, &r.upper) {
                // Both ends: one range (its rows are not a product of two halves; without
                // statistics, or with bounds known only at run time, a narrow one).
                (Some((lo, _)), Some((hi, _))) => f.push(Expr::Between(
                    Box::new(Expr::Column(next)),
                    Box::new(peek(lo)),
                    Box::new(peek(hi)),
                    false,
                )),
                (Some((v, inclusive)), None) => {
                    f.push(cmp(
                        if *inclusive { CmpOp::GtEq } else { CmpOp::Gt },
                        next,
                        v,
                    ));
                }
                (None, Some((v, inclusive))) => {
                    f.push(cmp(
                        if *inclusive { CmpOp::LtEq } else { CmpOp::Lt },
                        next,
                        v,
                    ));
                }
                (None, None) => {}
            }
        }
        scan.estimate(estimator, table, Expr::all_of(f).as_ref())
            .rows
    };
    // Primary key prefix equality, or a range on the next key column: the rows in key
    // order, read as a scan reads them.
    if !pk.is_empty() {
        let p = prefix_eq(pk);
        if !p.is_empty() {
            let rows = est_for(pk, &p, None);
            consider(
                SEEK_COST + rows * SEQUENTIAL_ROW_COST,
                Access::KeyRange(KeyBounds {
                    prefix: p.clone(),
                    lower: None,
                    upper: None,
                }),
            );
        }
        if let Some(&next) = pk.get(p.len())
            && let Some(r) = range_on(next, p.clone())
        {
            let rows = est_for(pk, &p, Some(&r));
            consider(SEEK_COST + rows * SEQUENTIAL_ROW_COST, Access::KeyRange(r));
        }
    }
    for ix in &table.indexes {
        let p = prefix_eq(&ix.columns);
        if !p.is_empty() {
            let rows = est_for(&ix.columns, &p, None);
            let rows = if ix.unique && p.len() == ix.columns.len() {
                rows.min(1.0)
            } else {
                rows
            };
            consider(
                SEEK_COST + rows * fetch,
                Access::Index(
                    ix.clone(),
                    KeyBounds {
                        prefix: p.clone(),
                        lower: None,
                        upper: None,
                    },
                ),
            );
        }
        if let Some(&next) = ix.columns.get(p.len())
            && let Some(r) = range_on(next, p.clone())
        {
            let rows = est_for(&ix.columns, &p, Some(&r));
            consider(SEEK_COST + rows * fetch, Access::Index(ix.clone(), r));
        }
        // A list of values of the first column: each value's entries.
        if let Some(&first) = ix.columns.first()
            && eq[first].is_none()
            && let Some(values) = &any_of[first]
        {
            let rows: f64 = values
                .iter()
                .map(|v| est_for(&ix.columns[..1], std::slice::from_ref(v), None))
                .sum();
            consider(
                values.len() as f64 * SEEK_COST + rows * fetch,
                Access::IndexIn(ix.clone(), values.clone()),
            );
        }
    }
    match best {
        Some((cost, access)) if cost < full => access,
        _ => Access::Full,
    }
}

/// After an execution's uncorrelated subqueries ran (their results now sets of values in
/// the plan): a full scan whose filter has `pk IN (subquery)` on a one-column primary key
/// reads those keys instead of every row — when each value is of the key's own type
/// (integer, text or timestamp: equal values are equal keys) and fetching them costs less
/// than the scan would (`ANALYZE`'s row count and fetch cost; without statistics, up to a
/// thousand keys). The filter stays: the rows read are tested as before.
#[recursive::recursive]
pub(crate) fn keys_from_sets(plan: &mut Plan, stats: &crate::cost::StatsRegistry) {
    for child in plan.children_mut() {
        keys_from_sets(child, stats);
    }
    let Node::Scan {
        table,
        access,
        filter: Some(filter),
        read_at,
        ..
    } = &mut plan.node
    else {
        return;
    };
    let [pk] = table.primary_key[..] else { return };
    if !matches!(access, Access::Full) || matches!(read_at, ReadAt::Versions(_)) {
        return;
    }
    let kind = table.columns[pk].data_type;
    let own_type = |v: &Value| {
        matches!(
            (kind, v),
            (DataType::Int, Value::Int(_))
                | (DataType::Text, Value::Text(_))
                | (DataType::Timestamp, Value::Timestamp(_))
        )
    };
    let scan = stats.for_scan(table, read_at.time(&[]));
    let affordable = |n: usize| match scan.stats.as_deref() {
        Some(s) => (n as f64) * scan.fetch_cost() < s.rows as f64,
        None => n <= 1000,
    };
    let mut conjuncts = vec![&*filter];
    while let Some(e) = conjuncts.pop() {
        match e {
            Expr::And(a, b) => {
                conjuncts.push(a);
                conjuncts.push(b);
            }
            Expr::InSet(x, set, _, false) if matches!(**x, Expr::Column(c) if c == pk) => {
                let values: Vec<&Value> = set.iter().filter(|v| !v.is_null()).collect();
                if values.iter().all(|v| own_type(v))
                    && values.len() <= MAX_KEY_COMBINATIONS
                    && affordable(values.len())
                {
                    *access = Access::Keys(
                        values
                            .into_iter()
                            .map(|v| vec![Expr::Literal(v.clone())])
                            .collect(),
                    );
                    return;
                }
            }
            _ => {}
        }
    }
}
