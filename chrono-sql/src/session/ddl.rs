//! DDL: CREATE TABLE, CREATE INDEX, ALTER TABLE … ADD COLUMN, DROP TABLE / INDEX. Each
//! writes the catalog in the statement's transaction (so it commits or rolls back with it);
//! an index build or a column fill reads every row and depends on no row being written
//! meanwhile ([`crate::catalog::depend_on_rows`]).

use chrono_storage::{Transaction, Value, encoding};
use sqlparser::ast as sql;

use super::{Database, Outcome};
use crate::catalog::{self, ColumnDef, IndexDef, TableDef, View};
use crate::error::{Error, Result};
use crate::plan::{Access, ReadAt};
use crate::planner::object_name;
use crate::table;
use crate::types::DataType;

impl Database {
    pub(super) fn create_table(
        &self,
        txn: &mut Transaction,
        ct: &sql::CreateTable,
    ) -> Result<Outcome> {
        if ct.query.is_some() || ct.like.is_some() || ct.clone.is_some() {
            return Err(Error::Unsupported(
                "CREATE TABLE … AS / LIKE / CLONE".into(),
            ));
        }
        let name = object_name(&ct.name)?;
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
            if columns
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&c.name.value))
            {
                return Err(Error::InvalidInput(format!(
                    "duplicate column name: {}",
                    c.name.value
                )));
            }
            let (mut col, rest) = column_from_sql(c)?;
            for option in rest {
                match option {
                    sql::ColumnOption::PrimaryKey(_) => {
                        if !primary_key.is_empty() {
                            return Err(Error::InvalidInput(format!(
                                "table {name} has more than one primary key"
                            )));
                        }
                        primary_key.push(i);
                    }
                    sql::ColumnOption::Unique(_) => unique_sets.push(vec![i]),
                    sql::ColumnOption::ForeignKey(fk) => {
                        col.references = Some((
                            object_name(&fk.foreign_table)?,
                            fk.referred_columns
                                .first()
                                .map(|r| r.value.clone())
                                .unwrap_or_default(),
                        ));
                    }
                    other => return Err(Error::Unsupported(format!("column option {other}"))),
                }
            }
            columns.push(col);
        }
        let find = |n: &str| -> Result<usize> {
            columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))
        };
        let mut fks = Vec::new();
        for tc in &ct.constraints {
            match tc {
                sql::TableConstraint::PrimaryKey(pk) => {
                    if !primary_key.is_empty() {
                        return Err(Error::InvalidInput(format!(
                            "table {name} has more than one primary key"
                        )));
                    }
                    for n in ident_list(&pk.columns)? {
                        primary_key.push(find(&n)?);
                    }
                }
                sql::TableConstraint::Unique(u) => {
                    let cols = ident_list(&u.columns)?
                        .iter()
                        .map(|n| find(n))
                        .collect::<Result<_>>()?;
                    unique_sets.push(cols);
                }
                sql::TableConstraint::ForeignKey(fk) => {
                    let table = object_name(&fk.foreign_table)?;
                    for (i, c) in fk.columns.iter().enumerate() {
                        let col = find(&c.value)?;
                        let referred = fk
                            .referred_columns
                            .get(i)
                            .map(|r| r.value.clone())
                            .unwrap_or_default();
                        fks.push((col, (table.clone(), referred)));
                    }
                }
                other => return Err(Error::Unsupported(format!("table constraint {other}"))),
            }
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
        ci: &sql::CreateIndex,
    ) -> Result<Outcome> {
        if ci.predicate.is_some() || !ci.include.is_empty() {
            return Err(Error::Unsupported("partial or covering indexes".into()));
        }
        let table = object_name(&ci.table_name)?;
        let mut def = catalog::require_table(View::Current(txn), &table)?;
        // The build reads every row: a row committed meanwhile would miss its entry.
        catalog::depend_on_rows(txn, &def);
        let cols: Vec<usize> = ident_list(&ci.columns)?
            .iter()
            .map(|n| {
                def.column_index(n)
                    .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))
            })
            .collect::<Result<_>>()?;
        let name = match &ci.name {
            Some(n) => object_name(n)?,
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
        at: &sql::AlterTable,
    ) -> Result<Outcome> {
        let name = object_name(&at.name)?;
        let Some(mut def) = catalog::get_table(View::Current(txn), &name)? else {
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
        for op in &at.operations {
            let sql::AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } = op
            else {
                return Err(Error::Unsupported(format!("ALTER TABLE {op}")));
            };
            if def.column_index(&column_def.name.value).is_some() {
                if *if_not_exists {
                    continue;
                }
                return Err(Error::AlreadyExists(format!(
                    "duplicate column name: {}",
                    column_def.name.value
                )));
            }
            let (col, rest) = column_from_sql(column_def)?;
            if let Some(other) = rest.first() {
                return Err(Error::Unsupported(format!("ADD COLUMN … {other}")));
            }
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

    pub(super) fn drop(
        &self,
        txn: &mut Transaction,
        kind: &sql::ObjectType,
        if_exists: bool,
        names: &[sql::ObjectName],
    ) -> Result<Outcome> {
        match kind {
            sql::ObjectType::Table => {
                for n in names {
                    let name = object_name(n)?;
                    if catalog::get_table(View::Current(txn), &name)?.is_none() {
                        if if_exists {
                            continue;
                        }
                        return Err(Error::NotFound(format!("no such table: {name}")));
                    }
                    let def = catalog::require_table(View::Current(txn), &name)?;
                    catalog::delete_table(txn, &name)?;
                    catalog::delete_stats(txn, &def)?;
                }
                Ok(Outcome::Done {
                    tag: "DROP TABLE".into(),
                    commit_ts: None,
                })
            }
            sql::ObjectType::Index => {
                for n in names {
                    let name = object_name(n)?;
                    let mut tables = catalog::list_tables(View::Current(txn))?;
                    let owner = tables.iter_mut().find(|t| {
                        t.indexes
                            .iter()
                            .any(|ix| ix.name.eq_ignore_ascii_case(&name))
                    });
                    match owner {
                        Some(t) => {
                            t.indexes.retain(|ix| !ix.name.eq_ignore_ascii_case(&name));
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
            other => Err(Error::Unsupported(format!("DROP {other}"))),
        }
    }
}

fn ident_list(cols: &[sql::IndexColumn]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            sql::Expr::Identifier(i) => Ok(i.value.clone()),
            other => Err(Error::Unsupported(format!("index on expression {other}"))),
        })
        .collect()
}

/// A column from its SQL definition (type, NULL / NOT NULL, DEFAULT), and the options left
/// for the caller (keys, references).
fn column_from_sql(c: &sql::ColumnDef) -> Result<(ColumnDef, Vec<&sql::ColumnOption>)> {
    let mut col = ColumnDef {
        name: c.name.value.clone(),
        data_type: DataType::parse(&c.data_type.to_string())?,
        nullable: true,
        default: None,
        references: None,
    };
    let mut rest = Vec::new();
    for opt in &c.options {
        match &opt.option {
            sql::ColumnOption::Null => {}
            sql::ColumnOption::NotNull => col.nullable = false,
            sql::ColumnOption::Default(e) => col.default = Some(e.to_string()),
            other => rest.push(other),
        }
    }
    Ok((col, rest))
}
