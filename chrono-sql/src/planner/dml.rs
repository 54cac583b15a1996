//! INSERT, UPDATE and DELETE as plans: a write node over the plan that produces its rows
//! (a query for INSERT, a scan of the table with the WHERE clause pushed in for UPDATE and
//! DELETE). `EXPLAIN` shows them like queries; [`crate::execution::write`] runs them; a
//! prepared write keeps its plan like a query does.

use std::sync::Arc;

use super::{Planner, Scope};
use crate::ast;
use crate::catalog::{ColumnDef, TableDef};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::plan::{Column, Conflict, ConflictAction, Node, Plan, ReadAt};
use chrono_storage::Value;

/// The columns of `def` under the name `label`.
pub(crate) fn table_scope(def: &TableDef, label: &str) -> Scope {
    let q = Some(label.to_ascii_lowercase());
    Scope {
        columns: def
            .columns
            .iter()
            .map(|c| Column {
                qualifier: q.clone(),
                name: c.name.clone(),
            })
            .collect(),
    }
}

/// A write node: as many rows as its input finds; output columns only with RETURNING.
fn write_plan(node: Node, columns: Vec<Column>) -> Plan {
    Plan::derived(node, "heuristic", columns)
}

impl<'a> Planner<'a> {
    /// `INSERT INTO t [(columns)] VALUES … | SELECT …`.
    pub fn plan_insert(&mut self, ins: &'a ast::Insert) -> Result<Plan> {
        let def = self.table_at(&ins.table, ReadAt::Current)?;
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..def.columns.len()).collect()
        } else {
            let mut t = Vec::with_capacity(ins.columns.len());
            for cname in &ins.columns {
                let i = def.column_index(cname).ok_or_else(|| {
                    Error::NotFound(format!("table {} has no column named {cname}", def.name))
                })?;
                if t.contains(&i) {
                    return Err(Error::InvalidInput(format!("column {cname} given twice")));
                }
                t.push(i);
            }
            t
        };
        let source = self.plan_query(&ins.source)?;
        if source.columns.len() != targets.len() {
            return Err(Error::InvalidInput(format!(
                "table {} has {} columns to fill but {} values were supplied",
                def.name,
                targets.len(),
                source.columns.len()
            )));
        }
        let defaults = self.defaults(&def, &targets)?;
        let conflict = ins
            .on_conflict
            .as_ref()
            .map(|oc| self.plan_conflict(&def, oc))
            .transpose()?;
        let (returning, columns) = self.plan_returning(&def, &def.name, &ins.returning)?;
        Ok(write_plan(
            Node::Insert {
                table: def,
                targets,
                defaults,
                source: Box::new(source),
                conflict,
                returning,
            },
            columns,
        ))
    }

    /// `ON CONFLICT [(columns)] DO …` / `OR IGNORE` / `OR REPLACE`: the columns must be
    /// those of the primary key or of a UNIQUE index (in any order); `DO UPDATE` reads the
    /// existing row as the table (by its name) and the proposed one as `excluded`.
    fn plan_conflict(&mut self, def: &TableDef, oc: &'a ast::OnConflict) -> Result<Conflict> {
        let mut arbiter = Vec::with_capacity(oc.target.len());
        for cname in &oc.target {
            let i = def.column_index(cname).ok_or_else(|| {
                Error::NotFound(format!("table {} has no column named {cname}", def.name))
            })?;
            if !arbiter.contains(&i) {
                arbiter.push(i);
            }
        }
        if !arbiter.is_empty() {
            let same = |cols: &[usize]| {
                cols.len() == arbiter.len() && cols.iter().all(|c| arbiter.contains(c))
            };
            if !same(&def.primary_key)
                && !def.indexes.iter().any(|ix| ix.unique && same(&ix.columns))
            {
                return Err(Error::InvalidInput(format!(
                    "ON CONFLICT ({}) names no primary key or UNIQUE index of {}",
                    oc.target.join(", "),
                    def.name
                )));
            }
        }
        let action = match &oc.action {
            ast::ConflictAction::Nothing => ConflictAction::Nothing,
            ast::ConflictAction::Replace => ConflictAction::Replace,
            ast::ConflictAction::Update { sets, selection } => {
                let mut scope = table_scope(def, &def.name);
                scope.columns.extend(table_scope(def, "excluded").columns);
                let mut bound = Vec::with_capacity(sets.len());
                for (cname, value) in sets {
                    let i = def
                        .column_index(cname)
                        .ok_or_else(|| Error::NotFound(format!("no such column: {cname}")))?;
                    bound.push((i, self.bind(value, &scope)?));
                }
                ConflictAction::Update {
                    sets: bound,
                    selection: selection
                        .as_ref()
                        .map(|w| self.bind(w, &scope))
                        .transpose()?,
                }
            }
        };
        Ok(Conflict { arbiter, action })
    }

    /// `RETURNING items`: expressions over a row of `def` (named `label`), with their
    /// column names.
    fn plan_returning(
        &mut self,
        def: &TableDef,
        label: &str,
        items: &'a [ast::SelectItem],
    ) -> Result<(Vec<Expr>, Vec<Column>)> {
        let scope = table_scope(def, label);
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in items {
            let all = match item {
                ast::SelectItem::Wildcard => true,
                ast::SelectItem::QualifiedWildcard(q) => {
                    if !q.eq_ignore_ascii_case(label) {
                        return Err(Error::NotFound(format!("no such table: {q}")));
                    }
                    true
                }
                ast::SelectItem::Expr { expr, name, .. } => {
                    exprs.push(self.bind(expr, &scope)?);
                    columns.push(Column {
                        qualifier: None,
                        name: name.clone(),
                    });
                    false
                }
            };
            if all {
                for (i, c) in def.columns.iter().enumerate() {
                    exprs.push(Expr::Column(i));
                    columns.push(Column {
                        qualifier: None,
                        name: c.name.clone(),
                    });
                }
            }
        }
        Ok((exprs, columns))
    }

    /// Per column of `def`: its DEFAULT, bound (NULL for the `targets`, which the rows fill).
    pub fn defaults(&self, def: &TableDef, targets: &[usize]) -> Result<Vec<Expr>> {
        let mut defaults = Vec::with_capacity(def.columns.len());
        for (i, col) in def.columns.iter().enumerate() {
            defaults.push(if targets.contains(&i) {
                Expr::Literal(Value::Null)
            } else {
                self.default_expr(col)?
            });
        }
        Ok(defaults)
    }

    /// A column's DEFAULT, bound (evaluated per row when the insert runs: `NOW()` is the
    /// time of the insert).
    pub(crate) fn default_expr(&self, col: &ColumnDef) -> Result<Expr> {
        let Some(text) = &col.default else {
            return Ok(Expr::Literal(Value::Null));
        };
        let ast = crate::parse::parse_expr(text, &self.limits)
            .map_err(|e| Error::Corruption(format!("stored DEFAULT of {}: {e}", col.name)))?;
        let mut planner = Planner::new(self.txn, &[], self.stats, self.estimator, self.guard);
        planner.bind(&ast, &Scope::default())
    }

    /// The table a single-table UPDATE or DELETE names, its scope, and the scan of its
    /// rows that match `selection`.
    fn target_scan(
        &mut self,
        table: &str,
        alias: Option<&String>,
        selection: Option<&'a ast::Expr>,
    ) -> Result<(Arc<TableDef>, Scope, Plan)> {
        let def = self.table_at(table, ReadAt::Current)?;
        let label = alias.cloned().unwrap_or_else(|| def.name.clone());
        let scope = table_scope(&def, &label);
        let pred = selection.map(|s| self.bind(s, &scope)).transpose()?;
        let scan = self.scan_plan(def.clone(), label, pred)?;
        Ok((def, scope, scan))
    }

    /// `UPDATE t SET c = e, … [WHERE …]`.
    pub fn plan_update(&mut self, upd: &'a ast::Update) -> Result<Plan> {
        let (table, scope, scan) =
            self.target_scan(&upd.table, upd.alias.as_ref(), upd.selection.as_ref())?;
        let mut sets = Vec::with_capacity(upd.sets.len());
        for (cname, value) in &upd.sets {
            let i = table
                .column_index(cname)
                .ok_or_else(|| Error::NotFound(format!("no such column: {cname}")))?;
            sets.push((i, self.bind(value, &scope)?));
        }
        let label = upd.alias.clone().unwrap_or_else(|| table.name.clone());
        let (returning, columns) = self.plan_returning(&table, &label, &upd.returning)?;
        Ok(write_plan(
            Node::Update {
                table,
                scan: Box::new(scan),
                sets,
                returning,
            },
            columns,
        ))
    }

    /// `DELETE FROM t [WHERE …]`.
    pub fn plan_delete(&mut self, del: &'a ast::Delete) -> Result<Plan> {
        let (table, _, scan) =
            self.target_scan(&del.table, del.alias.as_ref(), del.selection.as_ref())?;
        let label = del.alias.clone().unwrap_or_else(|| table.name.clone());
        let (returning, columns) = self.plan_returning(&table, &label, &del.returning)?;
        Ok(write_plan(
            Node::Delete {
                table,
                scan: Box::new(scan),
                returning,
            },
            columns,
        ))
    }
}
