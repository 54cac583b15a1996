//! DDL: CREATE TABLE, CREATE INDEX, ALTER TABLE … ADD COLUMN, DROP TABLE / INDEX. Each
//! writes the catalog in the statement's transaction (so it commits or rolls back with it);
//! an index build or a column fill reads every row and depends on no row being written
//! meanwhile ([`crate::catalog::depend_on_rows`]).

use super::{Database, Outcome};
use crate::ast;
use crate::catalog::{self, ColumnDef, IndexDef, TableDef, View};
use crate::error::{Error, Result};
use crate::plan::{Access, ReadAt};
use crate::table;
use chrono_storage::{Transaction, Value, encoding};

impl Database {
    pub(super) fn create_table(
        &self,
        txn: &mut Transaction,
        ct: &ast::CreateTable,
    ) -> Result<Outcome> {
        let name = ct.name.clone();
        if catalog::get_table(View::Current(txn), &name)?.is_some() {
            if ct.if_not_exists {
                return Ok(Outcome::Done {
                    tag: "CREATE TABLE".into(),
                    commit_ts: None,
                });
            }
            return Err(Error::AlreadyExists(format!("table {name} already exists")));
        }
        if ct.columns.is_empty() {
            return Err(Error::InvalidInput(format!(
                "table {name} needs at least one column"
            )));
        }
        let store = txn.store().clone();
        let mut columns: Vec<ColumnDef> = Vec::with_capacity(ct.columns.len());
        let mut primary_key: Vec<usize> = Vec::new();
        let mut unique_sets: Vec<Vec<usize>> = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            if columns.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name)) {
                return Err(Error::InvalidInput(format!(
                    "duplicate column name: {}",
                    c.name
                )));
            }
            if c.primary_key {
                if !primary_key.is_empty() {
                    return Err(Error::InvalidInput(format!(
                        "table {name} has more than one primary key"
                    )));
                }
                primary_key.push(i);
            }
            if c.unique {
                unique_sets.push(vec![i]);
            }
            columns.push(column_def(c));
        }
        let find = |n: &str| -> Result<usize> {
            columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))
        };
        for pk in &ct.primary_keys {
            if !primary_key.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "table {name} has more than one primary key"
                )));
            }
            for n in pk {
                primary_key.push(find(n)?);
            }
        }
        for u in &ct.uniques {
            unique_sets.push(u.iter().map(|n| find(n)).collect::<Result<_>>()?);
        }
        let mut fks = Vec::new();
        for (column, table, referred) in &ct.foreign_keys {
            fks.push((find(column)?, (table.clone(), referred.clone())));
        }
        for (col, r) in fks {
            columns[col].references = Some(r);
        }
        for &i in &primary_key {
            columns[i].nullable = false;
        }
        let mut indexes = Vec::new();
        for cols in unique_sets {
            if cols == primary_key {
                continue;
            }
            let names: Vec<&str> = cols.iter().map(|&i| columns[i].name.as_str()).collect();
            indexes.push(IndexDef {
                name: format!("{}_{}_key", name, names.join("_")).to_ascii_lowercase(),
                keyspace: catalog::new_keyspace(&store)?,
                columns: cols,
                unique: true,
            });
        }
        let def = TableDef {
            name,
            keyspace: catalog::new_keyspace(&store)?,
            columns,
            primary_key,
            indexes,
        };
        catalog::put_table(txn, &def)?;
        Ok(Outcome::Done {
            tag: "CREATE TABLE".into(),
            commit_ts: None,
        })
    }

    pub(super) fn create_index(
        &self,
        txn: &mut Transaction,
        ci: &ast::CreateIndex,
    ) -> Result<Outcome> {
        let mut def = catalog::require_table(View::Current(txn), &ci.table)?;
        // The build reads every row: a row committed meanwhile would miss its entry.
        catalog::depend_on_rows(txn, &def);
        let cols: Vec<usize> = ci
            .columns
            .iter()
            .map(|n| {
                def.column_index(n)
                    .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))
            })
            .collect::<Result<_>>()?;
        let name = match &ci.name {
            Some(n) => n.clone(),
            None => format!(
                "{}_{}_idx",
                def.name,
                cols.iter()
                    .map(|&i| def.columns[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join("_")
            )
            .to_ascii_lowercase(),
        };
        let all = catalog::list_tables(View::Current(txn))?;
        if all
            .iter()
            .flat_map(|t| &t.indexes)
            .any(|ix| ix.name.eq_ignore_ascii_case(&name))
        {
            if ci.if_not_exists {
                return Ok(Outcome::Done {
                    tag: "CREATE INDEX".into(),
                    commit_ts: None,
                });
            }
            return Err(Error::AlreadyExists(format!("index {name} already exists")));
        }
        let ix = IndexDef {
            name,
            keyspace: catalog::new_keyspace(txn.store())?,
            columns: cols,
            unique: ci.unique,
        };
        let rows: Vec<(Vec<u8>, Vec<Value>)> =
            table::scan(txn, &def, ReadAt::Current, &Access::Full)?.collect::<Result<_>>()?;
        def.label_keyspaces(txn);
        txn.label_keyspace(ix.keyspace, &format!("{}.{}", def.name, ix.name));
        for (key, row) in rows {
            if ix.unique {
                table::check_unique(txn, &def, &ix, &row, None)?;
            }
            txn.put(ix.keyspace, def.index_key(&ix, &row, &key), key)?;
        }
        def.indexes.push(ix);
        catalog::put_table(txn, &def)?;
        Ok(Outcome::Done {
            tag: "CREATE INDEX".into(),
            commit_ts: None,
        })
    }

    pub(super) fn alter_table(
        &self,
        txn: &mut Transaction,
        at: &ast::AddColumns,
    ) -> Result<Outcome> {
        let name = &at.table;
        let Some(mut def) = catalog::get_table(View::Current(txn), name)? else {
            if at.if_exists {
                return Ok(Outcome::Done {
                    tag: "ALTER TABLE".into(),
                    commit_ts: None,
                });
            }
            return Err(Error::NotFound(format!("no such table: {name}")));
        };
        // Adding a column fills every row: a row committed meanwhile would lack it.
        catalog::depend_on_rows(txn, &def);
        for (spec, if_not_exists) in &at.columns {
            if def.column_index(&spec.name).is_some() {
                if *if_not_exists {
                    continue;
                }
                return Err(Error::AlreadyExists(format!(
                    "duplicate column name: {}",
                    spec.name
                )));
            }
            let col = column_def(spec);
            let fill = self.default_value(txn, &col)?;
            let rows: Vec<(Vec<u8>, Vec<Value>)> =
                table::scan(txn, &def, ReadAt::Current, &Access::Full)?.collect::<Result<_>>()?;
            if fill.is_null() && !col.nullable && !rows.is_empty() {
                return Err(Error::Constraint(format!(
                    "cannot add NOT NULL column {} without a DEFAULT to table {}, which has rows",
                    col.name, def.name
                )));
            }
            def.columns.push(col);
            if !fill.is_null() {
                // Existing rows take the default: a new version of each, so history shows when.
                def.label_keyspaces(txn);
                for (key, mut row) in rows {
                    row.push(fill.clone());
                    txn.put(def.keyspace, key, encoding::encode_row(&row))?;
                }
            }
        }
        catalog::put_table(txn, &def)?;
        Ok(Outcome::Done {
            tag: "ALTER TABLE".into(),
            commit_ts: None,
        })
    }

    pub(super) fn drop(&self, txn: &mut Transaction, d: &ast::DropObjects) -> Result<Outcome> {
        let if_exists = d.if_exists;
        match d.kind {
            ast::DropKind::Table => {
                for name in &d.names {
                    if catalog::get_table(View::Current(txn), name)?.is_none() {
                        if if_exists {
                            continue;
                        }
                        return Err(Error::NotFound(format!("no such table: {name}")));
                    }
                    let def = catalog::require_table(View::Current(txn), name)?;
                    catalog::delete_table(txn, name)?;
                    catalog::delete_stats(txn, &def)?;
                }
                Ok(Outcome::Done {
                    tag: "DROP TABLE".into(),
                    commit_ts: None,
                })
            }
            ast::DropKind::Index => {
                for name in &d.names {
                    let mut tables = catalog::list_tables(View::Current(txn))?;
                    let owner = tables.iter_mut().find(|t| {
                        t.indexes
                            .iter()
                            .any(|ix| ix.name.eq_ignore_ascii_case(name))
                    });
                    match owner {
                        Some(t) => {
                            t.indexes.retain(|ix| !ix.name.eq_ignore_ascii_case(name));
                            let t = t.clone();
                            catalog::put_table(txn, &t)?;
                        }
                        None if if_exists => {}
                        None => return Err(Error::NotFound(format!("no such index: {name}"))),
                    }
                }
                Ok(Outcome::Done {
                    tag: "DROP INDEX".into(),
                    commit_ts: None,
                })
            }
        }
    }
}

/// A column's catalog definition from its SQL one (keys and references are the table's).
fn column_def(c: &ast::ColumnSpec) -> ColumnDef {
    ColumnDef {
        name: c.name.clone(),
        data_type: c.data_type,
        nullable: !c.not_null,
        default: c.default.clone(),
        references: c.references.clone(),
    }
}
