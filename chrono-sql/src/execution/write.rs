//! Runs INSERT, UPDATE and DELETE plans. The rows to write are read in full first (charged
//! to the statement's budget), so a write never reads what it is writing; then each is
//! written through [`crate::table`], with its type, NOT NULL, primary-key and UNIQUE checks.

use chrono_storage::{Transaction, Value};

use std::borrow::Cow;

use super::{bind, collect, eval_row, test_row};
use crate::catalog::TableDef;
use crate::cost::StatsRegistry;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::limits::{StatementGuard, row_bytes};
use crate::plan::{Node, Plan, ReadAt};
use crate::table::{self, KeyedRow};

/// Runs a write plan with `params` (its subqueries already filled in); returns the table
/// written and the rows affected.
pub fn run<'p>(
    plan: &'p Plan,
    params: &[Value],
    txn: &mut Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<(&'p TableDef, u64)> {
    if let Node::Insert { table, .. } | Node::Update { table, .. } | Node::Delete { table, .. } =
        &plan.node
    {
        crate::catalog::depend_on_definition(txn, table);
    }
    match &plan.node {
        Node::Insert {
            table,
            targets,
            defaults,
            source,
        } => {
            let rows = collect(source, params, txn, stats, guard)?;
            let n = insert(txn, table, targets, defaults, rows)?;
            Ok((table, n))
        }
        Node::Update { table, scan, sets } => {
            let rows = matching(scan, params, txn, stats, guard)?;
            let sets: Vec<(usize, Cow<'_, Expr>, bool)> = sets
                .iter()
                .map(|(i, e)| Ok((*i, bind(e, params)?, e.has_correlated())))
                .collect::<Result<_>>()?;
            let mut n = 0;
            for (key, old) in rows {
                let mut new = old.clone();
                for (i, e, correlated) in &sets {
                    new[*i] = eval_row(e, *correlated, &old, txn, stats, guard)?;
                }
                let new = table::check_row(table, new)?;
                table::update_row(txn, table, &key, &old, new)?;
                n += 1;
            }
            Ok((table, n))
        }
        Node::Delete { table, scan } => {
            let rows = matching(scan, params, txn, stats, guard)?;
            let n = rows.len() as u64;
            for (key, old) in rows {
                table::delete_row(txn, table, &key, &old)?;
            }
            Ok((table, n))
        }
        _ => Err(Error::InvalidInput(
            "internal: a query plan where a write was expected".into(),
        )),
    }
}

/// Inserts rows of values for the `targets` columns; the other columns take their
/// `defaults` (one per table column). Returns how many.
pub fn insert(
    txn: &mut Transaction,
    def: &TableDef,
    targets: &[usize],
    defaults: &[Expr],
    rows: Vec<Vec<Value>>,
) -> Result<u64> {
    let mut checked = Vec::with_capacity(rows.len());
    for values in rows {
        if values.len() != targets.len() {
            return Err(Error::InvalidInput(format!(
                "{} values for {} columns",
                values.len(),
                targets.len()
            )));
        }
        let mut row = Vec::with_capacity(def.columns.len());
        for (i, (d, col)) in defaults.iter().zip(&def.columns).enumerate() {
            row.push(if targets.contains(&i) {
                Value::Null
            } else {
                col.data_type.coerce(d.eval(&[])?, &col.name)?
            });
        }
        for (v, &i) in values.into_iter().zip(targets) {
            row[i] = v;
        }
        checked.push(table::check_row(def, row)?);
    }
    // The primary-key checks of all rows in one read.
    if !def.primary_key.is_empty() && checked.len() > 1 {
        let keys: Vec<Vec<u8>> = checked
            .iter()
            .map(|row| def.row_key(row, || Ok(0)))
            .collect::<Result<_>>()?;
        txn.prefetch_for_write(def.keyspace, &keys)?;
    }
    let mut n = 0;
    for row in checked {
        table::insert_row(txn, def, row)?;
        n += 1;
    }
    Ok(n)
}

/// The rows (with keys) an UPDATE or DELETE scan finds.
fn matching(
    scan: &Plan,
    params: &[Value],
    txn: &Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Vec<KeyedRow>> {
    let Node::Scan {
        table,
        access,
        filter,
        ..
    } = &scan.node
    else {
        return Err(Error::InvalidInput("internal: expected a scan".into()));
    };
    let correlated = filter.as_ref().is_some_and(Expr::has_correlated);
    let filter = filter.as_ref().map(|f| bind(f, params)).transpose()?;
    let mut out = Vec::new();
    for item in table::scan(txn, table, ReadAt::Current, &*access.bind(params)?)? {
        guard.tick()?;
        let (key, row) = item?;
        if let Some(f) = &filter
            && test_row(f, correlated, &row, txn, stats, guard)? != Some(true)
        {
            continue;
        }
        guard.charge(row_bytes(&row) + key.capacity())?;
        out.push((key, row));
    }
    Ok(out)
}
