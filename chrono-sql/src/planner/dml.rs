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
use crate::plan::{Column, Node, Plan, ReadAt};
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

/// A write node: no output columns, as many rows as its input finds.
fn write_plan(node: Node) -> Plan {
    Plan::derived(node, "heuristic", Vec::new())
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
        Ok(write_plan(Node::Insert {
            table: def,
            targets,
            defaults,
            source: Box::new(source),
        }))
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
        Ok(write_plan(Node::Update {
            table,
            scan: Box::new(scan),
            sets,
        }))
    }

    /// `DELETE FROM t [WHERE …]`.
    pub fn plan_delete(&mut self, del: &'a ast::Delete) -> Result<Plan> {
        let (table, _, scan) =
            self.target_scan(&del.table, del.alias.as_ref(), del.selection.as_ref())?;
        Ok(write_plan(Node::Delete {
            table,
            scan: Box::new(scan),
        }))
    }
}
