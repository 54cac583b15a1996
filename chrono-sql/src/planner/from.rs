//! The FROM list: tables (as of their read time), views, CTEs and derived tables, joined
//! with their conditions.

use super::*;

impl<'a> Planner<'a> {
    // ----------------------------------------------------------------------------------
    // FROM, joins, pushdown and access paths
    // ----------------------------------------------------------------------------------

    /// The read time a table reference's time-travel clause asks for: the time of this
    /// execution, and what the plan keeps (`AS OF $n` stays a parameter there).
    pub(super) fn read_at_for(&mut self, time: Option<&'a TimeSpec>) -> Result<(ReadAt, ReadAt)> {
        let Some(spec) = time else {
            return Ok(self
                .default_read
                .unwrap_or((ReadAt::Current, ReadAt::Current)));
        };
        if !self.time_travel {
            return Err(Error::Unsupported(
                "time travel is disabled in the configuration (features.time_travel.enabled)"
                    .into(),
            ));
        }
        let window = match spec {
            TimeSpec::AsOf(l) => {
                let ts = past(self.time_of(l)?)?;
                let (kept, read) = match l {
                    TimeLiteral::Param(i) => (ReadAt::AsOfParam(*i), PastRead::Param(*i)),
                    _ => (ReadAt::AsOf(ts), PastRead::At(ts)),
                };
                self.past.borrow_mut().push(read);
                return Ok((ReadAt::AsOf(ts), kept));
            }
            TimeSpec::Between(a, b) => TimeWindow::Between(self.time_of(a)?, self.time_of(b)?),
            TimeSpec::FromTo(a, b) => TimeWindow::FromTo(self.time_of(a)?, self.time_of(b)?),
            TimeSpec::All => TimeWindow::All,
        };
        self.reusable.set(false);
        Ok((ReadAt::Versions(window), ReadAt::Versions(window)))
    }

    /// A clause's time in microseconds. An expression (`now() - INTERVAL '1 hour'`) is
    /// evaluated now; the plan then depends on this execution and is not kept.
    fn time_of(&mut self, l: &'a TimeLiteral) -> Result<u64> {
        let TimeLiteral::Expr(e) = l else {
            return time_micros(l, self.params);
        };
        let bound = self.bind(e, &Scope::default())?;
        self.reusable.set(false);
        let v = self.value_now(&bound)?;
        if v.is_null() {
            return Err(Error::InvalidInput(
                "the time of a time-travel clause is NULL".into(),
            ));
        }
        Ok(value_timestamp(&v)?.as_micros())
    }

    /// The common table expression a table name refers to, if any (the innermost).
    pub(super) fn cte(&self, name: &str) -> Option<Rc<Cte<'a>>> {
        let name = name.to_ascii_lowercase();
        self.ctes.iter().rev().find(|c| c.name == name).cloned()
    }

    /// A reference to a common table expression: its query, planned where it is used (it
    /// sees the CTEs defined before it), its columns renamed as its definition says.
    pub(super) fn cte_plan(&mut self, cte: &Cte<'a>, label: &str) -> Result<Plan> {
        let mut plan = match self.recursive_cte_plan(cte)? {
            Some(plan) => plan,
            None => {
                let mut sub = self.sub();
                sub.ctes.truncate(cte.visible);
                sub.plan_query(cte.query)?
            }
        };
        if cte.columns.len() > plan.columns.len() {
            return Err(Error::InvalidInput(format!(
                "WITH query {} has {} columns but {} names were given",
                cte.name,
                plan.columns.len(),
                cte.columns.len()
            )));
        }
        rename(&mut plan.columns, label, &cte.columns);
        Ok(plan)
    }

    /// A WITH RECURSIVE query that reads itself: `anchor UNION [ALL] step`, where only the
    /// step (the last arm) reads the query's own name, as the rows of the round before.
    /// `None` when it is not recursive (planned as any WITH query).
    fn recursive_cte_plan(&mut self, cte: &Cte<'a>) -> Result<Option<Plan>> {
        let ast::SetExpr::SetOperation {
            op: ast::SetOperator::Union,
            all,
            left,
            right,
        } = &cte.query.body
        else {
            return Ok(None);
        };
        if !cte.recursive {
            return Ok(None);
        }
        static NEXT_WORK_TABLE: std::sync::atomic::AtomicUsize =
            std::sync::atomic::AtomicUsize::new(0);
        let mut sub = self.sub();
        sub.ctes.truncate(cte.visible);
        let used = Rc::new(Cell::new(false));
        // The anchor must not read the query itself.
        sub.work_tables.push(WorkRef {
            name: cte.name.clone(),
            id: usize::MAX,
            columns: Vec::new(),
            used: used.clone(),
        });
        let anchor = sub.plan_set_arm(left)?;
        sub.work_tables.pop();
        if used.get() {
            return Err(anchor_reads_itself(&cte.name));
        }
        let id = NEXT_WORK_TABLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let columns: Vec<Column> = anchor
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                qualifier: None,
                name: cte
                    .columns
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| c.name.clone()),
            })
            .collect();
        sub.work_tables.push(WorkRef {
            name: cte.name.clone(),
            id,
            columns: columns.clone(),
            used: used.clone(),
        });
        let step = sub.plan_set_arm(right)?;
        if !used.get() {
            // Not recursive after all: an ordinary WITH query.
            return Ok(None);
        }
        super::select::check_arm_width(&anchor, &step, ast::SetOperator::Union)?;
        if !cte.query.order_by.is_empty() || cte.query.offset.is_some() {
            return Err(Error::Unsupported(format!(
                "ORDER BY or OFFSET in the recursive WITH query {} (order or skip the rows \
                 where it is read)",
                cte.name
            )));
        }
        let (limit, _) = self.limit_offset(cte.query)?;
        let node = Node::RecursiveCte {
            anchor: Box::new(anchor),
            step: Box::new(step),
            all: *all,
            work: id,
            limit,
        };
        Ok(Some(Plan::derived(node, "heuristic", columns)))
    }

    /// A view read as `label` at `read_at`: its definition as of that time, its query
    /// parsed and planned here with its tables read as of that time too (those without a
    /// clause of their own). `None` when `name` is no view then.
    fn view_plan(
        &mut self,
        name: &str,
        label: &str,
        read_at: ReadAt,
        kept: ReadAt,
    ) -> Result<Option<Plan>> {
        let snapshot = match read_at {
            ReadAt::Current => Snapshot::Transaction(self.txn),
            ReadAt::AsOf(ts) => Snapshot::At(self.txn.store(), ts.min(self.txn.read_ts())),
            ReadAt::AsOfParam(i) => return Err(crate::table::unresolved(i)),
            ReadAt::Versions(_) => {
                if catalog::get_view(Snapshot::Transaction(self.txn), name)?.is_some() {
                    return Err(Error::Unsupported(format!(
                        "FOR SYSTEM_TIME BETWEEN / FROM / ALL on the view {name} (read the \
                         versions of its tables, or the view AS OF a time)"
                    )));
                }
                return Ok(None);
            }
        };
        let Some(view) = catalog::get_view(snapshot, name)? else {
            return Ok(None);
        };
        let lower = view.name.to_ascii_lowercase();
        if self.views_open.contains(&lower) {
            return Err(Error::InvalidInput(format!(
                "view {} reads itself (through {})",
                view.name,
                self.views_open.join(" → ")
            )));
        }
        let parsed = crate::parse::parse_with(&view.sql, &self.limits)
            .map_err(|e| Error::Corruption(format!("stored query of view {}: {e}", view.name)))?;
        let [prepared] = parsed.as_slice() else {
            return Err(Error::Corruption(format!(
                "stored query of view {} is not one statement",
                view.name
            )));
        };
        let ast::Statement::Query(q) = prepared.statement() else {
            return Err(Error::Corruption(format!(
                "stored query of view {} is not a query",
                view.name
            )));
        };
        // The view's query sees no WITH query or work table of the query that reads it.
        let mut sub = self.detached();
        sub.views_open.push(lower);
        sub.default_read = (read_at != ReadAt::Current).then_some((read_at, kept));
        let mut plan = sub.plan_query(q)?;
        check_view_columns(
            &view.name,
            &view.columns,
            &plan,
            " now (a table it reads changed)",
        )?;
        rename(&mut plan.columns, label, &view.columns);
        Ok(Some(plan))
    }

    /// A system catalog table (`pg_catalog.pg_class`, `information_schema.columns`, …; see
    /// [`crate::system_catalog`]): its rows built now from the catalog as of `read_at`.
    fn catalog_plan(&mut self, name: &str, alias: Option<&str>, read_at: ReadAt) -> Result<Plan> {
        use crate::system_catalog as sc;
        let Some(names) = sc::columns(name) else {
            return Err(Error::NotFound(format!(
                "no such table: {name} (the system catalogs ChronoDB answers are listed in \
                 docs/sql.md)"
            )));
        };
        let snapshot = match read_at {
            ReadAt::Current => Snapshot::Transaction(self.txn),
            ReadAt::AsOf(ts) => Snapshot::At(self.txn.store(), ts.min(self.txn.read_ts())),
            ReadAt::AsOfParam(i) => return Err(crate::table::unresolved(i)),
            ReadAt::Versions(_) => {
                return Err(Error::Unsupported(format!(
                    "FOR SYSTEM_TIME BETWEEN / FROM / ALL on the system catalog {name} (read \
                     it AS OF a time)"
                )));
            }
        };
        let objects = self.system_objects(snapshot, read_at, sc::reads_view_columns(name))?;
        let rows: Vec<Vec<Expr>> = sc::rows(name, &objects)
            .into_iter()
            .map(|r| r.into_iter().map(Expr::Literal).collect())
            .collect();
        // Built from this execution's catalog: never kept.
        self.reusable.set(false);
        let label = alias
            .unwrap_or_else(|| name.rsplit('.').next().unwrap_or(name))
            .to_ascii_lowercase();
        Ok(rows_plan(rows, &label, names.iter().map(|c| c.to_string())))
    }

    /// The tables and views the system catalogs describe, as of `snapshot` (`read_at`);
    /// with `plan_views`, each view's columns typed by planning its query (only the
    /// catalogs that list columns need that), else its declared names.
    pub(super) fn system_objects(
        &mut self,
        snapshot: Snapshot<'_>,
        read_at: ReadAt,
        plan_views: bool,
    ) -> Result<crate::system_catalog::Objects> {
        let tables = catalog::list_tables(snapshot)?;
        let views = catalog::list_views(snapshot)?;
        let mut view_columns = Vec::with_capacity(views.len());
        for v in &views {
            let planned = if plan_views {
                self.view_plan(&v.name, &v.name, read_at, read_at)
            } else {
                Ok(None)
            };
            view_columns.push(match planned {
                Ok(Some(plan)) => {
                    let types = crate::plan::types::output_types(&plan, &mut []);
                    plan.columns
                        .into_iter()
                        .zip(types)
                        .map(|(c, t)| (c.name, t))
                        .collect()
                }
                // Not planned, or cannot be now (a table it reads changed): its names.
                _ => v.columns.iter().map(|c| (c.clone(), None)).collect(),
            });
        }
        Ok(crate::system_catalog::Objects {
            tables,
            views,
            view_columns,
        })
    }

    /// `DIFF(table, from, to)`: one row per key whose row differs between the two times —
    /// `_change` (INSERT: absent at `from`; DELETE: absent at `to`; UPDATE), the row at
    /// `to` (at `from` for a DELETE), then the row at `from` as `_before_<column>` (NULL
    /// for an INSERT) — in key order. The keys are those the audit trail says commits in
    /// `(from, to]` changed, each read at both times (O(changes)); with no audit trail,
    /// both states are read whole. Built when the statement is planned, its memory charged
    /// to the statement.
    fn diff_plan(
        &mut self,
        table: &str,
        from: &'a ast::Expr,
        to: &'a ast::Expr,
        alias: Option<&ast::TableAlias>,
    ) -> Result<Plan> {
        if !self.time_travel {
            return Err(Error::Unsupported(
                "time travel is disabled in the configuration (features.time_travel.enabled)"
                    .into(),
            ));
        }
        // A NULL time (a parameter not given yet, as when a statement is described) is no
        // time: the diff has no rows, as a comparison with NULL holds for none.
        let mut time = |e: &'a ast::Expr| -> Result<Option<u64>> {
            let bound = self.bind(e, &Scope::default())?;
            let v = self.value_now(&bound)?;
            if v.is_null() {
                return Ok(None);
            }
            past(value_timestamp(&v)?.as_micros()).map(Some)
        };
        let times = (time(from)?, time(to)?);
        let (from, to) = match times {
            (Some(from), Some(to)) => (from, to),
            _ => (1, 0),
        };
        if from > to && times.0.is_some() && times.1.is_some() {
            return Err(Error::InvalidInput(format!(
                "DIFF's times are in the wrong order: {} is after {}",
                Timestamp::from_micros(from),
                Timestamp::from_micros(to)
            )));
        }
        self.reusable.set(false);
        let def = catalog::require_table(Snapshot::Transaction(self.txn), table)?;
        let store = self.txn.store();
        let (before, after) = (Snapshot::At(store, from), Snapshot::At(store, to));
        let read = |view: &Snapshot<'_>, key: &[u8]| -> Result<Option<Vec<Value>>> {
            view.get(def.keyspace, key)?
                .map(|raw| def.decode_row(&raw))
                .transpose()
        };
        let mut pairs: Vec<BeforeAfter> = Vec::new();
        let mut keep = |b: Option<Vec<Value>>, a: Option<Vec<Value>>| -> Result<()> {
            if b != a {
                self.guard.charge(
                    b.as_deref().map_or(0, crate::limits::row_bytes)
                        + a.as_deref().map_or(0, crate::limits::row_bytes),
                )?;
                pairs.push((b, a));
            }
            Ok(())
        };
        let changed = if from > to {
            Some(Vec::new())
        } else {
            store.changed_keys(&def.name, def.keyspace, from, to)?
        };
        match changed {
            Some(keys) => {
                for key in keys {
                    self.guard.tick()?;
                    keep(read(&before, &key)?, read(&after, &key)?)?;
                }
            }
            None => {
                // No audit trail: both states whole, merged by key.
                let rows_at = |ts: u64| -> Result<std::collections::BTreeMap<Vec<u8>, Vec<Value>>> {
                    crate::table::scan(self.txn, &def, ReadAt::AsOf(ts), &Access::Full)?.collect()
                };
                let old = rows_at(from)?;
                let mut new = rows_at(to)?;
                let mut keyed: Vec<(Vec<u8>, BeforeAfter)> = Vec::new();
                for (k, b) in old {
                    let a = new.remove(&k);
                    keyed.push((k, (Some(b), a)));
                }
                keyed.extend(new.into_iter().map(|(k, a)| (k, (None, Some(a)))));
                keyed.sort_by(|x, y| x.0.cmp(&y.0));
                for (_, (b, a)) in keyed {
                    self.guard.tick()?;
                    keep(b, a)?;
                }
            }
        }
        let width = def.columns.len();
        let rows: Vec<Vec<Expr>> = pairs
            .into_iter()
            .map(|(b, a)| {
                let change = match (&b, &a) {
                    (None, _) => "INSERT",
                    (_, None) => "DELETE",
                    _ => "UPDATE",
                };
                let shown = a.clone().or_else(|| b.clone()).unwrap_or_default();
                let before = b.unwrap_or_else(|| vec![Value::Null; width]);
                std::iter::once(Value::Text(change.into()))
                    .chain(shown)
                    .chain(before)
                    .map(Expr::Literal)
                    .collect()
            })
            .collect();
        let label = alias
            .map(|a| a.name.clone())
            .unwrap_or_else(|| def.name.clone())
            .to_ascii_lowercase();
        let mut names = vec!["_change".to_string()];
        names.extend(def.columns.iter().map(|c| c.name.clone()));
        names.extend(def.columns.iter().map(|c| format!("_before_{}", c.name)));
        let mut plan = rows_plan(rows, &label, names);
        if let Some(a) = alias
            && !a.columns.is_empty()
        {
            rename(&mut plan.columns, &label, &a.columns);
        }
        Ok(plan)
    }

    /// A recursive WITH query's own name inside its recursive part.
    fn work_table(&mut self, name: &str, label: &str) -> Result<Option<Plan>> {
        let lower = name.to_ascii_lowercase();
        let Some(w) = self.work_tables.iter().rev().find(|w| w.name == lower) else {
            return Ok(None);
        };
        w.used.set(true);
        if w.id == usize::MAX {
            return Err(anchor_reads_itself(&w.name));
        }
        let mut columns = w.columns.clone();
        rename(&mut columns, label, &[]);
        Ok(Some(Plan {
            node: Node::WorkTable { work: w.id },
            est_rows: 10.0,
            estimator: "heuristic",
            columns,
        }))
    }

    /// The table definition in force at `read_at`.
    pub fn table_at(&self, name: &str, read_at: ReadAt) -> Result<Arc<TableDef>> {
        let load = || catalog::require_table(Snapshot::Transaction(self.txn), name);
        match read_at {
            ReadAt::Current => match self.catalog_cache {
                Some((cache, generation)) => cache.table(generation, name, load),
                None => load().map(Arc::new),
            },
            // The definition as of `ts`; for a table created after `ts`, its current
            // definition (it had no rows then), as temporal SQL databases do.
            ReadAt::AsOf(ts) => {
                let ts = ts.min(self.txn.read_ts());
                if let Some(def) = catalog::get_table(Snapshot::At(self.txn.store(), ts), name)? {
                    return Ok(Arc::new(def));
                }
                catalog::get_table(Snapshot::Transaction(self.txn), name)?
                    .map(Arc::new)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "no such table: {name} (neither now nor as of {})",
                            Timestamp::from_micros(ts)
                        ))
                    })
            }
            ReadAt::AsOfParam(i) => Err(crate::table::unresolved(i)),
            // A version range reads the table's current definition, or its last one if it
            // has been dropped.
            ReadAt::Versions(_) => match catalog::get_table(Snapshot::Transaction(self.txn), name)?
            {
                Some(t) => Ok(Arc::new(t)),
                None => Err(Error::NotFound(format!("no such table: {name}"))),
            },
        }
    }

    pub(super) fn relation(&mut self, factor: &'a ast::TableFactor) -> Result<Plan> {
        self.guard.count_relation()?;
        match factor {
            ast::TableFactor::Table {
                name,
                alias,
                time,
                as_of: version,
            } => {
                let (mut read_at, mut kept) = self.read_at_for(time.as_ref())?;
                let label = alias.as_ref().map(|a| &a.name).unwrap_or(name);
                if let Some(plan) = self.work_table(name, label)? {
                    if version.is_some() || read_at != ReadAt::Current {
                        return Err(Error::Unsupported(format!(
                            "time travel on the WITH query {name}"
                        )));
                    }
                    return Ok(plan);
                }
                if let Some(cte) = self.cte(name) {
                    if version.is_some() || read_at != ReadAt::Current {
                        return Err(Error::Unsupported(format!(
                            "time travel on the WITH query {name} (put it inside its query)"
                        )));
                    }
                    let label = alias.as_ref().map(|a| &a.name).unwrap_or(name);
                    return self.cte_plan(&cte, label);
                }
                if let Some(e) = version {
                    let bound = self.bind(e, &Scope::default())?;
                    let v = self.value_now(&bound)?;
                    read_at = as_of(value_timestamp(&v)?.as_micros())?;
                    kept = read_at;
                    // The version clause's time is an expression: not kept.
                    self.reusable.set(false);
                }
                if name.contains('.') {
                    // Only the system catalogs keep their schema through translation.
                    return self.catalog_plan(
                        name,
                        alias.as_ref().map(|a| a.name.as_str()),
                        read_at,
                    );
                }
                // A name is a table or a view, never both: the table (its definition is
                // cached) is looked for first, then a view, then a system catalog.
                let def = match self.table_at(name, read_at) {
                    Ok(def) => def,
                    Err(Error::NotFound(missing)) => {
                        if let Some(plan) = self.view_plan(name, label, read_at, kept)? {
                            return Ok(plan);
                        }
                        if crate::system_catalog::is_catalog(name) {
                            return self.catalog_plan(
                                name,
                                alias.as_ref().map(|a| a.name.as_str()),
                                read_at,
                            );
                        }
                        return Err(Error::NotFound(missing));
                    }
                    Err(e) => return Err(e),
                };
                let label = alias
                    .as_ref()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| name.clone());
                Ok(self.table_scan(def, label, kept))
            }
            ast::TableFactor::Diff {
                table,
                from,
                to,
                alias,
            } => self.diff_plan(table, from, to, alias.as_ref()),
            ast::TableFactor::Derived { query, alias } => {
                let mut plan = self.sub().plan_query(query)?;
                if let Some(a) = alias {
                    let q = Some(a.name.to_ascii_lowercase());
                    for (i, c) in plan.columns.iter_mut().enumerate() {
                        c.qualifier = q.clone();
                        if let Some(col) = a.columns.get(i) {
                            c.name = col.clone();
                        }
                    }
                }
                Ok(plan)
            }
        }
    }

    /// Plans the FROM list with the WHERE clause pushed down as far as it goes.
    pub(super) fn plan_from(
        &mut self,
        from: &'a [ast::FromItem],
        selection: Option<&'a ast::Expr>,
    ) -> Result<(Plan, Scope)> {
        if from.is_empty() {
            let plan = Plan {
                node: Node::Values { rows: vec![vec![]] },
                est_rows: 1.0,
                estimator: "exact",
                columns: vec![],
            };
            let scope = Scope::default();
            let plan = match selection {
                Some(w) => {
                    let pred = self.bind(w, &scope)?;
                    Plan::filter(plan, pred)
                }
                None => plan,
            };
            return Ok((plan, scope));
        }
        // Flatten into relations and join steps (left-deep, in FROM order).
        struct Step<'q> {
            kind: JoinKind,
            on: Option<&'q ast::Expr>,
        }
        let mut rels: Vec<Plan> = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        for item in from {
            rels.push(self.relation(&item.relation)?);
            steps.push(Step {
                kind: JoinKind::Inner,
                on: None,
            });
            for j in &item.joins {
                rels.push(self.relation(&j.relation)?);
                steps.push(Step {
                    kind: j.kind,
                    on: j.on.as_ref(),
                });
            }
        }
        let scope = Scope {
            columns: rels
                .iter()
                .flat_map(|r| r.columns.iter().cloned())
                .collect(),
        };
        // The conditions stay as written; the optimizer's predicate_pushdown places them.
        let mut on = Vec::with_capacity(steps.len());
        for step in &steps {
            on.push(match step.on {
                Some(e) => self.bind(e, &scope)?.conjuncts(),
                None => Vec::new(),
            });
        }
        let predicate = match selection {
            Some(w) => Some(self.bind(w, &scope)?),
            None => None,
        };
        let plan = match rels.pop() {
            Some(only) if rels.is_empty() => only,
            last => {
                rels.extend(last);
                let n = rels.len();
                let join = Node::Join {
                    inputs: rels,
                    kinds: steps.iter().map(|s| s.kind).collect(),
                    on,
                    at: vec![Vec::new(); n],
                    after: vec![Vec::new(); n],
                    order: Vec::new(),
                };
                Plan::derived(join, "heuristic", scope.columns.clone())
            }
        };
        let plan = match predicate {
            Some(p) => Plan::filter(plan, p),
            None => plan,
        };
        Ok((plan, scope))
    }
}

/// The time `AS OF $i` asks for with this execution's `params` (for a kept plan's
/// [`ReadAt::AsOfParam`]), checked like a time written in the statement.
pub(crate) fn as_of_param(i: usize, params: &[Value]) -> Result<u64> {
    past(time_micros(&TimeLiteral::Param(i), params)?)
}

/// `AS OF ts`, which must not be after the current time: commits still to come may land
/// before a future time, so a query as of it could answer differently later.
pub(super) fn as_of(ts: u64) -> Result<ReadAt> {
    past(ts).map(ReadAt::AsOf)
}

fn past(ts: u64) -> Result<u64> {
    let now = Timestamp::now().as_micros();
    if ts > now {
        return Err(Error::InvalidInput(format!(
            "AS OF {} is after the current time ({}): its answer could still change; \
             ask about the past",
            Timestamp::from_micros(ts),
            Timestamp::from_micros(now)
        )));
    }
    Ok(ts)
}

impl Planner<'_> {
    /// A full scan of `def` as `label` at `read_at`, estimated without conditions (the
    /// optimizer pushes them in); a versions read adds `_system_from`, `_system_to`,
    /// `_operation` and `_principal` (the last two `*` leaves out).
    pub(super) fn table_scan(&self, def: Arc<TableDef>, label: String, read_at: ReadAt) -> Plan {
        let mut columns = super::table_scope(&def, &label).columns;
        if matches!(read_at, ReadAt::Versions(_)) {
            for n in [
                "_system_from",
                "_system_to",
                OPERATION_COLUMN,
                PRINCIPAL_COLUMN,
            ] {
                columns.push(Column {
                    qualifier: Some(label.to_ascii_lowercase()),
                    name: n.into(),
                });
            }
        }
        let est = self
            .stats
            .for_scan(&def, read_at.time(self.params))
            .estimate(self.estimator, &def, None);
        Plan {
            node: Node::Scan {
                table: def,
                label,
                read_at,
                access: Access::Full,
                filter: None,
                reads: None,
            },
            est_rows: est.rows,
            estimator: est.estimator,
            columns,
        }
    }

    /// A scan of `def` (current state) with `predicate` pushed in, for UPDATE and DELETE.
    pub fn scan_plan(
        &mut self,
        def: Arc<TableDef>,
        label: String,
        predicate: Option<Expr>,
    ) -> Result<Plan> {
        let mut plan = self.table_scan(def, label, ReadAt::Current);
        let env = crate::optimizer::Env {
            stats: self.stats,
            estimator: self.estimator,
            params: self.params,
        };
        // A write's scan holds all of its WHERE clause, correlated subqueries included
        // (`execution::write` evaluates them per row).
        crate::optimizer::into_relation(
            &mut plan,
            predicate.map(Expr::conjuncts).unwrap_or_default(),
            &env,
        )?;
        Ok(plan)
    }
}

/// A view's column names, when given, are as many as its query's columns.
pub(super) fn check_view_columns(
    view: &str,
    names: &[String],
    plan: &Plan,
    when: &str,
) -> Result<()> {
    if !names.is_empty() && names.len() != plan.columns.len() {
        return Err(Error::InvalidInput(format!(
            "view {view} names {} columns but its query{when} has {}",
            names.len(),
            plan.columns.len()
        )));
    }
    Ok(())
}

/// The columns of a WITH query, view or work table as read under `label`: qualified by it,
/// and named by `names` where given (the names after the query's name).
fn rename(columns: &mut [Column], label: &str, names: &[String]) {
    let q = Some(label.to_ascii_lowercase());
    for (i, c) in columns.iter_mut().enumerate() {
        c.qualifier = q.clone();
        if let Some(name) = names.get(i) {
            c.name = name.clone();
        }
    }
}

fn anchor_reads_itself(name: &str) -> Error {
    Error::InvalidInput(format!(
        "the first part of the recursive WITH query {name} reads {name} itself: only the part \
         after the last UNION may"
    ))
}

/// The column of a versions read that says what made the version: `INSERT` (the key had no
/// live row before) or `UPDATE`. Named, not part of `*` (which keeps the row and its period).
/// Rows known when the statement is planned (a system catalog's, a diff's) as a relation
/// named `label` with columns `names`.
fn rows_plan(rows: Vec<Vec<Expr>>, label: &str, names: impl IntoIterator<Item = String>) -> Plan {
    Plan {
        est_rows: rows.len() as f64,
        node: Node::Values { rows },
        estimator: "exact",
        columns: names
            .into_iter()
            .map(|name| Column {
                qualifier: Some(label.to_string()),
                name,
            })
            .collect(),
    }
}

/// A key's row at a diff's two times (`None`: no row then).
type BeforeAfter = (Option<Vec<Value>>, Option<Vec<Value>>);

pub(crate) const OPERATION_COLUMN: &str = "_operation";
/// A versions read's column of who committed each version (from the audit trail).
pub(crate) const PRINCIPAL_COLUMN: &str = "_principal";
