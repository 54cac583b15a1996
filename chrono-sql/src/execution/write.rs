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
use crate::plan::{Conflict, ConflictAction, Node, Plan, ReadAt};
use crate::table::{self, KeyedRow};

/// What a write did: the table, the rows it changed and, with RETURNING, a row of values
/// for each.
pub struct Written<'p> {
    /// The table written.
    pub table: &'p TableDef,
    /// Rows inserted, updated or deleted.
    pub affected: u64,
    /// RETURNING's rows (empty without it).
    pub returned: Vec<Vec<Value>>,
}

/// RETURNING's expressions with their parameters bound, and what they give back.
struct Returning<'e> {
    exprs: Vec<Cow<'e, Expr>>,
    rows: Vec<Vec<Value>>,
}

impl<'e> Returning<'e> {
    fn new(exprs: &'e [Expr], params: &[Value]) -> Result<Self> {
        Ok(Returning {
            exprs: exprs
                .iter()
                .map(|e| bind(e, params))
                .collect::<Result<_>>()?,
            rows: Vec::new(),
        })
    }

    /// Gives back `row` (the row as written, or as deleted).
    fn push(&mut self, row: &[Value], guard: &StatementGuard) -> Result<()> {
        if self.exprs.is_empty() {
            return Ok(());
        }
        let out: Vec<Value> = self
            .exprs
            .iter()
            .map(|e| e.eval(row))
            .collect::<Result<_>>()?;
        guard.charge(row_bytes(&out))?;
        self.rows.push(out);
        Ok(())
    }
}

/// Runs a write plan with `params` (its subqueries already filled in).
pub fn run<'p>(
    plan: &'p Plan,
    params: &[Value],
    txn: &mut Transaction,
    stats: &StatsRegistry,
    guard: &StatementGuard,
) -> Result<Written<'p>> {
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
            conflict,
            returning,
        } => {
            let rows = collect(source, params, txn, stats, guard)?;
            let mut returning = Returning::new(returning, params)?;
            let conflict = conflict
                .as_ref()
                .map(|c| c.map(&mut |e| bind(e, params).map(Cow::into_owned)))
                .transpose()?;
            let rows = complete_rows(txn.store(), table, targets, defaults, rows)?;
            let n = insert_checked(txn, table, rows, conflict.as_ref(), &mut returning, guard)?;
            Ok(Written {
                table,
                affected: n,
                returned: returning.rows,
            })
        }
        Node::Update {
            table,
            scan,
            sets,
            returning,
        } => {
            let rows = matching(scan, params, txn, stats, guard)?;
            let sets: Vec<(usize, Cow<'_, Expr>, bool)> = sets
                .iter()
                .map(|(i, e)| Ok((*i, bind(e, params)?, e.has_correlated())))
                .collect::<Result<_>>()?;
            let mut returning = Returning::new(returning, params)?;
            let mut n = 0;
            for (key, old) in rows {
                let mut new = old.clone();
                for (i, e, correlated) in &sets {
                    new[*i] = eval_row(e, *correlated, &old, txn, stats, guard)?;
                }
                let new = table::check_row(table, new)?;
                returning.push(&new, guard)?;
                table::update_row(txn, table, &key, &old, new)?;
                n += 1;
            }
            Ok(Written {
                table,
                affected: n,
                returned: returning.rows,
            })
        }
        Node::Delete {
            table,
            scan,
            returning,
        } => {
            let rows = matching(scan, params, txn, stats, guard)?;
            let mut returning = Returning::new(returning, params)?;
            let n = rows.len() as u64;
            for (key, old) in rows {
                returning.push(&old, guard)?;
                table::delete_row(txn, table, &key, &old)?;
            }
            Ok(Written {
                table,
                affected: n,
                returned: returning.rows,
            })
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
    let rows = complete_rows(txn.store(), def, targets, defaults, rows)?;
    let mut none = Returning {
        exprs: Vec::new(),
        rows: Vec::new(),
    };
    // Nothing to charge (no RETURNING) and nobody to cancel it: a guard with the defaults.
    let guard = StatementGuard::new(
        &crate::limits::Limits::default(),
        crate::limits::CancelToken::default(),
        None,
    );
    insert_checked(txn, def, rows, None, &mut none, &guard)
}

/// Full rows from values for the `targets` columns and the others' defaults, checked. A
/// `unique_id()` default (SERIAL, GENERATED … AS IDENTITY) takes the store's next id.
fn complete_rows(
    store: &chrono_storage::Store,
    def: &TableDef,
    targets: &[usize],
    defaults: &[Expr],
    rows: Vec<Vec<Value>>,
) -> Result<Vec<Vec<Value>>> {
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
            } else if matches!(d, Expr::Func(crate::expr::Func::UniqueId, _)) {
                Value::Int(
                    i64::try_from(store.next_id()?)
                        .map_err(|_| Error::InvalidInput("the store's ids are used up".into()))?,
                )
            } else {
                col.data_type.coerce(d.eval(&[])?, &col.name)?
            });
        }
        for (v, &i) in values.into_iter().zip(targets) {
            row[i] = v;
        }
        checked.push(table::check_row(def, row)?);
    }
    Ok(checked)
}

/// Inserts checked rows, each handling its collisions as `conflict` says (none: a collision
/// fails the statement). Returns how many rows were inserted or updated.
fn insert_checked(
    txn: &mut Transaction,
    def: &TableDef,
    rows: Vec<Vec<Value>>,
    conflict: Option<&Conflict>,
    returning: &mut Returning<'_>,
    guard: &StatementGuard,
) -> Result<u64> {
    // The primary-key checks of all rows in one read.
    if !def.primary_key.is_empty() && rows.len() > 1 {
        let keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| def.row_key(row, || Ok(0)))
            .collect::<Result<_>>()?;
        txn.prefetch_for_write(def.keyspace, &keys)?;
    }
    let mut n = 0;
    for row in rows {
        guard.tick()?;
        let Some(conflict) = conflict else {
            returning.push(&row, guard)?;
            table::insert_row(txn, def, row)?;
            n += 1;
            continue;
        };
        let existing = table::colliding_rows(txn, def, &row, &conflict.arbiter)?;
        // Found against every constraint: nothing left for the insert to check.
        let checked_all = conflict.arbiter.is_empty();
        if existing.is_empty() {
            returning.push(&row, guard)?;
            table::insert_row_with(txn, def, row, !checked_all)?;
            n += 1;
            continue;
        }
        match &conflict.action {
            ConflictAction::Nothing => {}
            ConflictAction::Replace => {
                for (key, old) in &existing {
                    table::delete_row(txn, def, key, old)?;
                }
                returning.push(&row, guard)?;
                table::insert_row_with(txn, def, row, !checked_all)?;
                n += 1;
            }
            ConflictAction::Update { sets, selection } => {
                // The first collision (the primary key's, when there is one) is updated.
                let (key, old) = &existing[0];
                let mut both = old.clone();
                both.extend(row);
                if let Some(w) = selection
                    && w.test(&both)? != Some(true)
                {
                    continue;
                }
                let mut new = old.clone();
                for (i, e) in sets {
                    new[*i] = e.eval(&both)?;
                }
                let new = table::check_row(def, new)?;
                returning.push(&new, guard)?;
                table::update_row(txn, def, key, old, new)?;
                n += 1;
            }
        }
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
