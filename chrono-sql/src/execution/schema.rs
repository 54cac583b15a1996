//! Runs schema changes ([`SchemaChange`]). Each writes the catalog in the statement's
//! transaction, so it commits or rolls back with it. An index build or a column fill reads
//! every row (charged to the statement's budget, its loop checking the deadline and cancel
//! token) and depends on no row being written meanwhile
//! ([`crate::catalog::depend_on_rows`]).

use std::sync::Arc;

use chrono_storage::{Transaction, Value, encoding};

use crate::catalog::{self, IndexDef, Snapshot, TableDef};
use crate::cost::CardinalityEstimator;
use crate::error::{Error, Result};
use crate::limits::{StatementGuard, row_bytes};
use crate::plan::{Access, ReadAt, SchemaChange};
use crate::table;

/// Runs `change` in `txn`; returns its command tag.
/// `estimator` hears of a dropped table once the drop commits.
pub fn run(
    change: &SchemaChange,
    txn: &mut Transaction,
    guard: &StatementGuard,
    estimator: &Arc<dyn CardinalityEstimator>,
) -> Result<&'static str> {
    match change {
        SchemaChange::CreateTable {
            name,
            columns,
            primary_key,
            unique,
            if_not_exists,
        } => {
            if catalog::get_table(Snapshot::Transaction(txn), name)?.is_some() {
                if *if_not_exists {
                    return Ok(change.tag());
                }
                return Err(Error::AlreadyExists(format!("table {name} already exists")));
            }
            if catalog::get_view(Snapshot::Transaction(txn), name)?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "there is already a view named {name}"
                )));
            }
            let store = txn.store().clone();
            let mut indexes = Vec::with_capacity(unique.len());
            for (ix, cols) in unique {
                indexes.push(IndexDef {
                    name: ix.clone(),
                    keyspace: catalog::new_keyspace(&store)?,
                    columns: cols.clone(),
                    unique: true,
                });
            }
            let def = TableDef {
                name: name.clone(),
                keyspace: catalog::new_keyspace(&store)?,
                columns: columns.clone(),
                primary_key: primary_key.clone(),
                indexes,
            };
            catalog::put_table(txn, &def)?;
        }
        SchemaChange::CreateIndex {
            table,
            name,
            columns,
            unique,
            if_not_exists,
        } => {
            let mut def = catalog::require_table(Snapshot::Transaction(txn), table)?;
            // The build reads every row: a row committed meanwhile would miss its entry.
            catalog::depend_on_rows(txn, &def);
            let cols = columns
                .iter()
                .map(|n| {
                    def.column_index(n)
                        .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))
                })
                .collect::<Result<_>>()?;
            let all = catalog::list_tables(Snapshot::Transaction(txn))?;
            if all
                .iter()
                .flat_map(|t| &t.indexes)
                .any(|ix| ix.name.eq_ignore_ascii_case(name))
            {
                if *if_not_exists {
                    return Ok(change.tag());
                }
                return Err(Error::AlreadyExists(format!("index {name} already exists")));
            }
            let ix = IndexDef {
                name: name.clone(),
                keyspace: catalog::new_keyspace(txn.store())?,
                columns: cols,
                unique: *unique,
            };
            let rows = every_row(txn, &def, guard)?;
            def.label_keyspaces(txn);
            txn.label_keyspace(ix.keyspace, &format!("{}.{}", def.name, ix.name));
            for (key, row) in rows {
                guard.tick()?;
                if ix.unique {
                    table::check_unique(txn, &def, &ix, &row, None)?;
                }
                txn.put(ix.keyspace, def.index_key(&ix, &row, &key), key)?;
            }
            def.indexes.push(ix);
            catalog::put_table(txn, &def)?;
        }
        SchemaChange::AddColumns {
            table,
            if_exists,
            columns,
        } => {
            let Some(mut def) = catalog::get_table(Snapshot::Transaction(txn), table)? else {
                if *if_exists {
                    return Ok(change.tag());
                }
                return Err(Error::NotFound(format!("no such table: {table}")));
            };
            // Adding a column fills every row: a row committed meanwhile would lack it.
            catalog::depend_on_rows(txn, &def);
            for new in columns {
                let col = &new.def;
                if def.column_index(&col.name).is_some() {
                    if new.if_not_exists {
                        continue;
                    }
                    return Err(Error::AlreadyExists(format!(
                        "duplicate column name: {}",
                        col.name
                    )));
                }
                let fill = col.data_type.coerce(new.fill.eval(&[])?, &col.name)?;
                let rows = every_row(txn, &def, guard)?;
                if fill.is_null() && !col.nullable && !rows.is_empty() {
                    return Err(Error::Constraint(format!(
                        "cannot add NOT NULL column {} without a DEFAULT to table {}, which has rows",
                        col.name, def.name
                    )));
                }
                def.columns.push(col.clone());
                if !fill.is_null() {
                    // Existing rows take the default: a new version of each, so history
                    // shows when.
                    def.label_keyspaces(txn);
                    for (key, mut row) in rows {
                        guard.tick()?;
                        row.push(fill.clone());
                        txn.put(def.keyspace, key, encoding::encode_row(&row))?;
                    }
                }
            }
            catalog::put_table(txn, &def)?;
        }
        SchemaChange::DropTables { names, if_exists } => {
            for name in names {
                let Some(def) = catalog::get_table(Snapshot::Transaction(txn), name)? else {
                    if catalog::get_view(Snapshot::Transaction(txn), name)?.is_some() {
                        return Err(Error::InvalidInput(format!(
                            "{name} is a view: use DROP VIEW"
                        )));
                    }
                    if *if_exists {
                        continue;
                    }
                    return Err(Error::NotFound(format!("no such table: {name}")));
                };
                catalog::delete_table(txn, name)?;
                catalog::delete_stats(txn, &def)?;
                let estimator = estimator.clone();
                txn.after_commit(move || estimator.dropped(&def));
            }
        }
        SchemaChange::DropIndexes { names, if_exists } => {
            for name in names {
                let mut tables = catalog::list_tables(Snapshot::Transaction(txn))?;
                let owner = tables.iter_mut().find(|t| {
                    t.indexes
                        .iter()
                        .any(|ix| ix.name.eq_ignore_ascii_case(name))
                });
                match owner {
                    Some(t) => {
                        t.indexes.retain(|ix| !ix.name.eq_ignore_ascii_case(name));
                        catalog::put_table(txn, t)?;
                    }
                    None if *if_exists => {}
                    None => return Err(Error::NotFound(format!("no such index: {name}"))),
                }
            }
        }
        SchemaChange::CreateView {
            def,
            or_replace,
            if_not_exists,
        } => {
            let name = &def.name;
            if catalog::get_table(Snapshot::Transaction(txn), name)?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "there is already a table named {name}"
                )));
            }
            if catalog::get_view(Snapshot::Transaction(txn), name)?.is_some() {
                if *if_not_exists {
                    return Ok(change.tag());
                }
                if !*or_replace {
                    return Err(Error::AlreadyExists(format!("view {name} already exists")));
                }
            }
            catalog::put_view(txn, def)?;
        }
        SchemaChange::DropViews { names, if_exists } => {
            for name in names {
                if catalog::get_view(Snapshot::Transaction(txn), name)?.is_none() {
                    if catalog::get_table(Snapshot::Transaction(txn), name)?.is_some() {
                        return Err(Error::InvalidInput(format!(
                            "{name} is a table: use DROP TABLE"
                        )));
                    }
                    if *if_exists {
                        continue;
                    }
                    return Err(Error::NotFound(format!("no such view: {name}")));
                }
                catalog::delete_view(txn, name)?;
            }
        }
    }
    Ok(change.tag())
}

/// Every current row of `def` with its key, charged to the statement's budget.
fn every_row(
    txn: &Transaction,
    def: &TableDef,
    guard: &StatementGuard,
) -> Result<Vec<(Vec<u8>, Vec<Value>)>> {
    let mut rows = Vec::new();
    for r in table::scan(txn, def, ReadAt::Current, &Access::Full)? {
        let (key, row) = r?;
        guard.charge(key.len() + row_bytes(&row))?;
        guard.tick()?;
        rows.push((key, row));
    }
    Ok(rows)
}
