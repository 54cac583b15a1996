//! Schema changes and ANALYZE as plan roots, and [`Planner::plan_statement`], the one entry
//! that plans any statement.

use super::*;
use crate::catalog::ColumnDef;
use crate::plan::{NewColumn, Root, SchemaChange};

impl<'a> Planner<'a> {
    /// Plans any statement but EXPLAIN and transaction control (which the session runs).
    pub fn plan_statement(&mut self, stmt: &'a ast::Statement) -> Result<Root> {
        use ast::Statement as S;
        Ok(match stmt {
            S::Query(q) => Root::Query(self.plan_query(q)?),
            S::Insert(ins) => Root::Write(self.plan_insert(ins)?),
            S::Update(upd) => Root::Write(self.plan_update(upd)?),
            S::Delete(del) => Root::Write(self.plan_delete(del)?),
            S::CreateTable(ct) => Root::Schema(self.plan_create_table(ct)?),
            S::CreateIndex(ci) => Root::Schema(self.plan_create_index(ci)?),
            S::AddColumns(ac) => Root::Schema(self.plan_add_columns(ac)?),
            S::Drop(d) => Root::Schema(match d.kind {
                ast::DropKind::Table => SchemaChange::DropTables {
                    names: d.names.clone(),
                    if_exists: d.if_exists,
                },
                ast::DropKind::Index => SchemaChange::DropIndexes {
                    names: d.names.clone(),
                    if_exists: d.if_exists,
                },
                ast::DropKind::View => SchemaChange::DropViews {
                    names: d.names.clone(),
                    if_exists: d.if_exists,
                },
            }),
            S::CreateView(cv) => {
                // The query must plan now (names, columns); it is planned again where the
                // view is read.
                let plan = self.plan_query(&cv.query)?;
                super::from::check_view_columns(&cv.name, &cv.columns, &plan, "")?;
                Root::Schema(SchemaChange::CreateView {
                    def: crate::catalog::ViewDef {
                        name: cv.name.clone(),
                        columns: cv.columns.clone(),
                        sql: cv.sql.clone(),
                    },
                    or_replace: cv.or_replace,
                    if_not_exists: cv.if_not_exists,
                })
            }
            S::Analyze { table } => Root::Analyze(match table {
                Some(t) => vec![t.clone()],
                None => catalog::list_tables(Snapshot::Transaction(self.txn))?
                    .into_iter()
                    .map(|t| t.name)
                    .collect(),
            }),
            S::Explain { .. }
            | S::Begin
            | S::Commit
            | S::Rollback
            | S::Savepoint(_)
            | S::Release(_)
            | S::RollbackTo(_)
            | S::DeleteHistory { .. }
            | S::Reindex { .. } => {
                return Err(Error::Unsupported(
                    "EXPLAIN, DELETE HISTORY, REINDEX and transaction control inside another \
                     statement"
                        .into(),
                ));
            }
        })
    }

    /// `CREATE TABLE`: columns, the primary key (NOT NULL), UNIQUE constraints as index
    /// names, references.
    fn plan_create_table(&mut self, ct: &ast::CreateTable) -> Result<SchemaChange> {
        let name = &ct.name;
        if ct.columns.is_empty() {
            return Err(Error::InvalidInput(format!(
                "table {name} needs at least one column"
            )));
        }
        let mut columns: Vec<ColumnDef> = Vec::with_capacity(ct.columns.len());
        let mut primary_key: Vec<usize> = Vec::new();
        let mut unique_sets: Vec<Vec<usize>> = Vec::new();
        let more_than_one_key =
            || Error::InvalidInput(format!("table {name} has more than one primary key"));
        for (i, c) in ct.columns.iter().enumerate() {
            if columns.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name)) {
                return Err(Error::InvalidInput(format!(
                    "duplicate column name: {}",
                    c.name
                )));
            }
            if c.primary_key {
                if !primary_key.is_empty() {
                    return Err(more_than_one_key());
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
                return Err(more_than_one_key());
            }
            for n in pk {
                primary_key.push(find(n)?);
            }
        }
        for u in &ct.uniques {
            unique_sets.push(u.iter().map(|n| find(n)).collect::<Result<_>>()?);
        }
        let mut references = Vec::with_capacity(ct.foreign_keys.len());
        for (column, table, referred) in &ct.foreign_keys {
            references.push((find(column)?, (table.clone(), referred.clone())));
        }
        for (col, r) in references {
            columns[col].references = Some(r);
        }
        for &i in &primary_key {
            columns[i].nullable = false;
        }
        let unique = unique_sets
            .into_iter()
            .filter(|cols| *cols != primary_key)
            .map(|cols| {
                let names: Vec<&str> = cols.iter().map(|&i| columns[i].name.as_str()).collect();
                let ix = format!("{}_{}_key", name, names.join("_")).to_ascii_lowercase();
                (ix, cols)
            })
            .collect();
        Ok(SchemaChange::CreateTable {
            name: name.clone(),
            columns,
            primary_key,
            unique,
            if_not_exists: ct.if_not_exists,
        })
    }

    /// `CREATE [UNIQUE] INDEX`: the table and its columns must exist.
    fn plan_create_index(&mut self, ci: &ast::CreateIndex) -> Result<SchemaChange> {
        let def = self.table_at(&ci.table, ReadAt::Current)?;
        let mut positions = Vec::with_capacity(ci.columns.len());
        for n in &ci.columns {
            positions.push(
                def.column_index(n)
                    .ok_or_else(|| Error::NotFound(format!("no such column: {n}")))?,
            );
        }
        let name = match &ci.name {
            Some(n) => n.clone(),
            None => format!(
                "{}_{}_idx",
                def.name,
                positions
                    .iter()
                    .map(|&i| def.columns[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join("_")
            )
            .to_ascii_lowercase(),
        };
        Ok(SchemaChange::CreateIndex {
            table: def.name.clone(),
            name,
            columns: positions
                .iter()
                .map(|&i| def.columns[i].name.clone())
                .collect(),
            unique: ci.unique,
            if_not_exists: ci.if_not_exists,
        })
    }

    /// `ALTER TABLE … ADD COLUMN`: each column with its DEFAULT bound.
    fn plan_add_columns(&mut self, ac: &ast::AddColumns) -> Result<SchemaChange> {
        let mut columns = Vec::with_capacity(ac.columns.len());
        for (spec, if_not_exists) in &ac.columns {
            let def = column_def(spec);
            let fill = self.default_expr(&def)?;
            columns.push(NewColumn {
                def,
                fill,
                if_not_exists: *if_not_exists,
            });
        }
        Ok(SchemaChange::AddColumns {
            table: ac.table.clone(),
            if_exists: ac.if_exists,
            columns,
        })
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
