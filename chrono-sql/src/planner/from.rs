//! The FROM list: tables (as of their read time), views, CTEs and derived tables, joined
//! with their conditions.

use super::*;

impl<'a> Planner<'a> {
    // ----------------------------------------------------------------------------------
    // FROM, joins, pushdown and access paths
    // ----------------------------------------------------------------------------------

    /// The read time of a table reference: its own clause, else its FROM list's.
    pub(super) fn read_at_for(
        &self,
        name_loc: Option<Location>,
        from_loc: Option<Location>,
    ) -> Result<ReadAt> {
        let own = name_loc.and_then(|l| self.clauses.iter().find(|c| c.target == Target::Table(l)));
        let list = from_loc.and_then(|l| {
            self.clauses
                .iter()
                .find(|c| c.target == Target::FromList(l))
        });
        let Some(clause) = own.or(list) else {
            return Ok(ReadAt::Current);
        };
        self.reusable.set(false);
        if !self.time_travel {
            return Err(Error::Unsupported(
                "time travel is disabled in the configuration (features.time_travel.enabled)"
                    .into(),
            ));
        }
        let t = |l: &TimeLiteral| time_micros(l, self.params);
        Ok(match &clause.spec {
            TimeSpec::AsOf(l) => as_of(t(l)?)?,
            TimeSpec::Between(a, b) => ReadAt::Versions(TimeWindow::Between(t(a)?, t(b)?)),
            TimeSpec::FromTo(a, b) => ReadAt::Versions(TimeWindow::FromTo(t(a)?, t(b)?)),
            TimeSpec::All => ReadAt::Versions(TimeWindow::All),
        })
    }

    /// The common table expression a table name refers to, if any (the innermost).
    pub(super) fn cte(&self, name: &sql::ObjectName) -> Option<Rc<Cte<'a>>> {
        let [part] = name.0.as_slice() else {
            return None;
        };
        let name = part.as_ident()?.value.to_ascii_lowercase();
        self.ctes.iter().rev().find(|c| c.name == name).cloned()
    }

    /// A reference to a common table expression: its query, planned where it is used (it
    /// sees the CTEs defined before it), its columns renamed as its definition says.
    pub(super) fn cte_plan(&mut self, cte: &Cte<'a>, label: &str) -> Result<Plan> {
        let mut sub = self.sub();
        sub.ctes.truncate(cte.visible);
        let mut plan = sub.plan_query(cte.query)?;
        if cte.columns.len() > plan.columns.len() {
            return Err(Error::InvalidInput(format!(
                "WITH query {} has {} columns but {} names were given",
                cte.name,
                plan.columns.len(),
                cte.columns.len()
            )));
        }
        let q = Some(label.to_ascii_lowercase());
        for (i, c) in plan.columns.iter_mut().enumerate() {
            c.qualifier = q.clone();
            if let Some(name) = cte.columns.get(i) {
                c.name = name.clone();
            }
        }
        Ok(plan)
    }

    /// The table definition in force at `read_at`.
    pub fn table_at(&self, name: &str, read_at: ReadAt) -> Result<Arc<TableDef>> {
        let load = || catalog::require_table(View::Current(self.txn), name);
        match read_at {
            ReadAt::Current => match self.catalog_cache {
                Some((cache, generation)) => cache.table(generation, name, load),
                None => load().map(Arc::new),
            },
            // The definition as of `ts`; for a table created after `ts`, its current
            // definition (it had no rows then), as temporal SQL databases do.
            ReadAt::AsOf(ts) => {
                let ts = ts.min(self.txn.read_ts());
                if let Some(def) = catalog::get_table(View::AsOf(self.txn.store(), ts), name)? {
                    return Ok(Arc::new(def));
                }
                catalog::get_table(View::Current(self.txn), name)?
                    .map(Arc::new)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "no such table: {name} (neither now nor as of {})",
                            crate::plan::format_ts(ts)
                        ))
                    })
            }
            // A version range reads the table's current definition, or its last one if it
            // has been dropped.
            ReadAt::Versions(_) => match catalog::get_table(View::Current(self.txn), name)? {
                Some(t) => Ok(Arc::new(t)),
                None => Err(Error::NotFound(format!("no such table: {name}"))),
            },
        }
    }

    pub(super) fn relation(
        &mut self,
        factor: &'a sql::TableFactor,
        from_loc: Option<Location>,
    ) -> Result<Plan> {
        self.guard.count_relation()?;
        match factor {
            sql::TableFactor::Table {
                name,
                alias,
                args,
                version,
                ..
            } => {
                if args.is_some() {
                    return Err(Error::Unsupported("table functions".into()));
                }
                let table_name = object_name(name)?;
                let mut read_at = self.read_at_for(first_location(name), from_loc)?;
                if let Some(cte) = self.cte(name) {
                    if version.is_some() || read_at != ReadAt::Current {
                        return Err(Error::Unsupported(format!(
                            "time travel on the WITH query {table_name} (put it inside its query)"
                        )));
                    }
                    let label = alias.as_ref().map(|a| &a.name.value).unwrap_or(&table_name);
                    return self.cte_plan(&cte, label);
                }
                if let Some(v) = version {
                    read_at = match v {
                        sql::TableVersion::ForSystemTimeAsOf(e)
                        | sql::TableVersion::TimestampAsOf(e) => {
                            let bound = self.bind(e, &Scope::default())?;
                            let v = self.value_now(&bound)?;
                            as_of(time_micros(&value_time_literal(v)?, self.params)?)?
                        }
                        other => return Err(Error::Unsupported(format!("{other}"))),
                    };
                }
                let def = self.table_at(&table_name, read_at)?;
                let label = alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or_else(|| table_name.clone());
                let q = Some(label.to_ascii_lowercase());
                let mut columns: Vec<Column> = def
                    .columns
                    .iter()
                    .map(|c| Column {
                        qualifier: q.clone(),
                        name: c.name.clone(),
                    })
                    .collect();
                if matches!(read_at, ReadAt::Versions(_)) {
                    for n in ["_system_from", "_system_to"] {
                        columns.push(Column {
                            qualifier: q.clone(),
                            name: n.into(),
                        });
                    }
                }
                let stats = self.stats.table(&def.name);
                let est = self.estimator.estimate_scan(&def, stats.as_deref(), None);
                Ok(Plan {
                    node: Node::Scan {
                        table: def,
                        label,
                        read_at,
                        access: Access::Full,
                        filter: None,
                    },
                    est_rows: est.rows,
                    estimator: est.estimator,
                    columns,
                })
            }
            sql::TableFactor::Derived {
                subquery,
                alias,
                lateral,
                ..
            } => {
                if *lateral {
                    return Err(Error::Unsupported("LATERAL".into()));
                }
                let mut plan = self.sub().plan_query(subquery)?;
                if let Some(a) = alias {
                    let q = Some(a.name.value.to_ascii_lowercase());
                    for (i, c) in plan.columns.iter_mut().enumerate() {
                        c.qualifier = q.clone();
                        if let Some(col) = a.columns.get(i) {
                            c.name = col.name.value.clone();
                        }
                    }
                }
                Ok(plan)
            }
            other => Err(Error::Unsupported(format!("FROM item {other}"))),
        }
    }

    /// Plans the FROM list with the WHERE clause pushed down as far as it goes.
    pub(super) fn plan_from(
        &mut self,
        from: &'a [sql::TableWithJoins],
        selection: Option<&'a sql::Expr>,
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
                    filter(plan, pred)
                }
                None => plan,
            };
            return Ok((plan, scope));
        }
        // Flatten into relations and join steps (left-deep, in FROM order).
        struct Step<'q> {
            kind: JoinKind,
            on: Option<&'q sql::Expr>,
        }
        let mut rels: Vec<Plan> = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        for twj in from {
            let from_loc = match &twj.relation {
                sql::TableFactor::Table { name, .. } => first_location(name),
                _ => None,
            };
            rels.push(self.relation(&twj.relation, from_loc)?);
            steps.push(Step {
                kind: JoinKind::Inner,
                on: None,
            });
            for j in &twj.joins {
                let (kind, constraint) = match &j.join_operator {
                    sql::JoinOperator::Join(c) | sql::JoinOperator::Inner(c) => {
                        (JoinKind::Inner, c)
                    }
                    sql::JoinOperator::Left(c) | sql::JoinOperator::LeftOuter(c) => {
                        (JoinKind::Left, c)
                    }
                    sql::JoinOperator::CrossJoin(c) => (JoinKind::Inner, c),
                    other => return Err(Error::Unsupported(format!("join {other:?}"))),
                };
                let on = match constraint {
                    sql::JoinConstraint::On(e) => Some(e),
                    sql::JoinConstraint::None => None,
                    _ => return Err(Error::Unsupported("USING / NATURAL joins".into())),
                };
                rels.push(self.relation(&j.relation, from_loc)?);
                steps.push(Step { kind, on });
            }
        }
        let mut offsets = Vec::with_capacity(rels.len());
        let mut scope = Scope::default();
        for r in &rels {
            offsets.push(scope.columns.len());
            scope.columns.extend(r.columns.iter().cloned());
        }
        let rel_of = |col: usize| offsets.iter().rposition(|&o| o <= col).unwrap_or(0);
        let nullable: Vec<bool> = steps.iter().map(|s| s.kind == JoinKind::Left).collect();

        // Conjuncts: pushed into a relation, held at a join step, or filtered after a step.
        let mut pushed: Vec<Vec<Expr>> = vec![Vec::new(); rels.len()];
        let mut at_join: Vec<Vec<Expr>> = vec![Vec::new(); rels.len()];
        let mut after_join: Vec<Vec<Expr>> = vec![Vec::new(); rels.len()];
        let mut top: Vec<Expr> = Vec::new();

        let mut place = |e: Expr, from_on_of: Option<usize>| -> Result<()> {
            // A condition with a correlated subquery runs per row of the whole FROM list.
            if e.has_correlated() {
                if from_on_of.is_some_and(|j| nullable[j]) {
                    return Err(Error::Unsupported(
                        "a correlated subquery in a LEFT JOIN's ON".into(),
                    ));
                }
                top.push(e);
                return Ok(());
            }
            let cols = e.columns();
            if cols.is_empty() {
                match from_on_of {
                    Some(j) => at_join[j].push(e),
                    None => top.push(e),
                }
                return Ok(());
            }
            let lo = cols.iter().map(|&c| rel_of(c)).min().unwrap_or(0);
            let hi = cols.iter().map(|&c| rel_of(c)).max().unwrap_or(0);
            let single = lo == hi;
            match from_on_of {
                // A LEFT JOIN's ON: conditions on the joined table alone filter that table;
                // the rest decide which pairs match.
                Some(j) if nullable[j] => {
                    if single && lo == j {
                        pushed[j].push(e);
                    } else {
                        at_join[j].push(e);
                    }
                }
                // An inner ON: like WHERE, but never into a table made nullable earlier.
                Some(j) => {
                    if single && !nullable[lo] {
                        pushed[lo].push(e);
                    } else {
                        at_join[j.max(hi)].push(e);
                    }
                }
                // WHERE: a condition on a table made nullable by a LEFT JOIN is checked
                // after that join, never below it.
                None => {
                    if cols.iter().any(|&c| nullable[rel_of(c)]) {
                        after_join[hi].push(e);
                    } else if single {
                        pushed[lo].push(e);
                    } else {
                        at_join[hi].push(e);
                    }
                }
            }
            Ok(())
        };
        for (j, step) in steps.iter().enumerate() {
            if let Some(on) = step.on {
                let bound = self.bind(on, &scope)?;
                for c in bound.conjuncts() {
                    place(c, Some(j))?;
                }
            }
        }
        if let Some(w) = selection {
            let bound = self.bind(w, &scope)?;
            for c in bound.conjuncts() {
                place(c, None)?;
            }
        }

        // Scans get their filters and access paths.
        let mut rels: Vec<Option<Plan>> = rels.into_iter().map(Some).collect();
        for (r, slot) in rels.iter_mut().enumerate() {
            let off = offsets[r];
            let local: Vec<Expr> = pushed[r]
                .iter()
                .map(|e| e.map_columns(&|c| c - off))
                .collect();
            if let Some(plan) = slot.take() {
                *slot = Some(self.push_filter(plan, local));
            }
        }

        let rels: Vec<Plan> = rels.into_iter().flatten().collect();
        if rels.is_empty() {
            return Err(Error::InvalidInput("empty FROM".into()));
        }
        let total_width = scope.columns.len();
        // Inner joins of three or more relations are reordered (greedily, smallest
        // estimated intermediate result first); LEFT JOINs keep the written order.
        let reorder = rels.len() >= 3 && steps.iter().all(|s| s.kind == JoinKind::Inner);
        let order: Vec<usize> = if reorder {
            self.join_order(&rels, &at_join, &offsets, &rel_of)
        } else {
            (0..rels.len()).collect()
        };
        let mut step_conds: Vec<Vec<Expr>> = vec![Vec::new(); rels.len()];
        if reorder {
            let position = |r: usize| order.iter().position(|&x| x == r).unwrap_or(0);
            for c in at_join.iter_mut().flat_map(|v| v.drain(..)) {
                let at = c
                    .columns()
                    .iter()
                    .map(|&col| position(rel_of(col)))
                    .max()
                    .unwrap_or(0)
                    .max(1);
                step_conds[at].push(c);
            }
        } else {
            for (j, conds) in at_join.iter_mut().enumerate() {
                step_conds[j] = std::mem::take(conds);
            }
        }
        // Where each column of the FROM list sits in the plan built so far.
        let mut pos: Vec<usize> = (0..total_width).collect();
        let mut rels: Vec<Option<Plan>> = rels.into_iter().map(Some).collect();
        let first = order[0];
        let Some(mut plan) = rels[first].take() else {
            return Err(Error::InvalidInput("empty FROM".into()));
        };
        let mut width = 0;
        for i in 0..plan.columns.len() {
            pos[offsets[first] + i] = i;
        }
        width += plan.columns.len();
        for cond in after_join[first].drain(..) {
            plan = filter(plan, cond.map_columns(&|c| pos[c]));
        }
        for (k, &j) in order.iter().enumerate().skip(1) {
            let Some(right) = rels[j].take() else {
                continue;
            };
            let off = width;
            for i in 0..right.columns.len() {
                pos[offsets[j] + i] = off + i;
            }
            width += right.columns.len();
            let mut left_keys = Vec::new();
            let mut right_keys = Vec::new();
            let mut residual = Vec::new();
            for c in step_conds[k].drain(..) {
                let c = c.map_columns(&|x| pos[x]);
                if let Expr::Cmp(CmpOp::Eq, a, b) = &c {
                    let side = |e: &Expr| {
                        let cols = e.columns();
                        if cols.is_empty() {
                            0
                        } else if cols.iter().all(|&x| x < off) {
                            1
                        } else if cols.iter().all(|&x| x >= off) {
                            2
                        } else {
                            0
                        }
                    };
                    match (side(a), side(b)) {
                        (1, 2) => {
                            left_keys.push((**a).clone());
                            right_keys.push(b.map_columns(&|x| x - off));
                            continue;
                        }
                        (2, 1) => {
                            left_keys.push((**b).clone());
                            right_keys.push(a.map_columns(&|x| x - off));
                            continue;
                        }
                        _ => {}
                    }
                }
                residual.push(c);
            }
            let kind = steps[j].kind;
            let mut columns = plan.columns.clone();
            columns.extend(right.columns.iter().cloned());
            let (l, r) = (plan.est_rows, right.est_rows);
            plan = if left_keys.is_empty() {
                let est = (l * r * if residual.is_empty() { 1.0 } else { 0.1 })
                    .max(if kind == JoinKind::Left { l } else { 0.0 });
                Plan {
                    node: Node::NestedLoop {
                        left: Box::new(plan),
                        right: Box::new(right),
                        kind,
                        predicate: Expr::all_of(residual),
                    },
                    est_rows: est,
                    estimator: "heuristic",
                    columns,
                }
            } else if let Some(lookup) =
                self.index_join(&plan, &right, &left_keys, &right_keys, off)
            {
                let IndexJoinChoice {
                    table,
                    label,
                    read_at,
                    filter,
                    lookup,
                    keys,
                    extra,
                    per_row,
                } = lookup;
                residual.extend(extra);
                Plan {
                    node: Node::IndexJoin {
                        left: Box::new(plan),
                        table,
                        label,
                        read_at,
                        lookup,
                        left_keys: keys,
                        right_filter: filter,
                        kind,
                        residual: Expr::all_of(residual),
                    },
                    est_rows: (l * per_row).min(l * r).max(if kind == JoinKind::Left {
                        l
                    } else {
                        0.0
                    }),
                    estimator: "heuristic",
                    columns,
                }
            } else {
                let (est, estimator) =
                    self.equi_join_estimate(&plan, &right, &left_keys, &right_keys);
                let est = est.max(if kind == JoinKind::Left { l } else { 0.0 });
                let build_left = kind == JoinKind::Inner && l < r;
                Plan {
                    node: Node::HashJoin {
                        left: Box::new(plan),
                        right: Box::new(right),
                        left_keys,
                        right_keys,
                        kind,
                        residual: Expr::all_of(residual),
                        build_left,
                    },
                    est_rows: est,
                    estimator,
                    columns,
                }
            };
            for cond in after_join[j].drain(..) {
                plan = filter(plan, cond.map_columns(&|c| pos[c]));
            }
        }
        if reorder && pos.iter().enumerate().any(|(g, &p)| g != p) {
            // Back to the FROM list's column order.
            let est = plan.est_rows;
            let estimator = plan.estimator;
            plan = Plan {
                node: Node::Project {
                    input: Box::new(plan),
                    exprs: pos.iter().map(|&p| Expr::Column(p)).collect(),
                },
                est_rows: est,
                estimator,
                columns: scope.columns.clone(),
            };
        }
        for cond in top {
            plan = filter(plan, cond);
        }
        Ok((plan, scope))
    }

    /// Distinct values of a plan's output column, when its statistics say (a scan's
    /// column, followed through joins, filters and plain projections), at most the rows.
    pub(super) fn column_distinct(&self, plan: &Plan, col: usize) -> Option<f64> {
        let table_distinct = |table: &TableDef, c: usize| {
            let stats = self.stats.table(&table.name)?;
            Some(stats.columns.get(c)?.distinct as f64)
        };
        let d = match &plan.node {
            Node::Scan { table, .. } => table_distinct(table, col),
            Node::Filter { input, .. } => self.column_distinct(input, col),
            Node::Project { input, exprs } => match exprs.get(col)? {
                Expr::Column(c) => self.column_distinct(input, *c),
                _ => None,
            },
            Node::HashJoin { left, right, .. } | Node::NestedLoop { left, right, .. } => {
                let lw = left.columns.len();
                if col < lw {
                    self.column_distinct(left, col)
                } else {
                    self.column_distinct(right, col - lw)
                }
            }
            Node::IndexJoin { left, table, .. } => {
                let lw = left.columns.len();
                if col < lw {
                    self.column_distinct(left, col)
                } else {
                    table_distinct(table, col - lw)
                }
            }
            _ => None,
        }?;
        Some(d.min(plan.est_rows.max(1.0)).max(1.0))
    }

    /// Rows of an equi-join: `|L|·|R| / max(distinct(l), distinct(r))` per key pair whose
    /// columns have statistics (the usual containment assumption); without them, the
    /// larger side (a key/foreign-key guess).
    pub(super) fn equi_join_estimate(
        &self,
        left: &Plan,
        right: &Plan,
        left_keys: &[Expr],
        right_keys: &[Expr],
    ) -> (f64, &'static str) {
        let (l, r) = (left.est_rows, right.est_rows);
        let mut est = l * r;
        let mut known = false;
        for (lk, rk) in left_keys.iter().zip(right_keys) {
            if let (Expr::Column(a), Expr::Column(b)) = (lk, rk)
                && let (Some(da), Some(db)) = (
                    self.column_distinct(left, *a),
                    self.column_distinct(right, *b),
                )
            {
                est /= da.max(db);
                known = true;
            }
        }
        if known {
            (est.max(if l * r > 0.0 { 1.0 } else { 0.0 }), "distinct")
        } else {
            (l.max(r), "heuristic")
        }
    }

    /// A greedy join order: start from the smallest relation, then add the relation that
    /// keeps the estimated intermediate result smallest (joined relations first; a cross
    /// product only when nothing connects).
    pub(super) fn join_order(
        &self,
        rels: &[Plan],
        conds: &[Vec<Expr>],
        offsets: &[usize],
        rel_of: &dyn Fn(usize) -> usize,
    ) -> Vec<usize> {
        let n = rels.len();
        // Equi-join column pairs between two relations (global column positions).
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for c in conds.iter().flatten() {
            if let Expr::Cmp(CmpOp::Eq, a, b) = c
                && let (Expr::Column(x), Expr::Column(y)) = (&**a, &**b)
                && rel_of(*x) != rel_of(*y)
            {
                pairs.push((*x, *y));
            }
        }
        let distinct = |g: usize| {
            let r = rel_of(g);
            self.column_distinct(&rels[r], g - offsets[r])
        };
        let mut order = Vec::with_capacity(n);
        let mut done = vec![false; n];
        let start = (0..n)
            .min_by(|&a, &b| rels[a].est_rows.total_cmp(&rels[b].est_rows))
            .unwrap_or(0);
        order.push(start);
        done[start] = true;
        let mut current = rels[start].est_rows;
        while order.len() < n {
            let mut best: Option<(bool, f64, usize)> = None;
            for r in (0..n).filter(|&r| !done[r]) {
                let rows = rels[r].est_rows;
                let mut est = current * rows;
                let mut connected = false;
                for &(x, y) in &pairs {
                    let (inside, other) = if rel_of(x) == r && done[rel_of(y)] {
                        (y, x)
                    } else if rel_of(y) == r && done[rel_of(x)] {
                        (x, y)
                    } else {
                        continue;
                    };
                    connected = true;
                    est = match (distinct(inside), distinct(other)) {
                        (Some(a), Some(b)) => est / a.max(b),
                        _ => est.min(current.max(rows)),
                    };
                }
                let better = match best {
                    None => true,
                    Some((bc, be, _)) => (connected && !bc) || (connected == bc && est < be),
                };
                if better {
                    best = Some((connected, est, r));
                }
            }
            let Some((_, est, r)) = best else { break };
            order.push(r);
            done[r] = true;
            current = est.max(1.0);
        }
        order
    }

    /// Whether to join by looking `right` up per left row (its primary key or an index
    /// covers the join keys) instead of hashing it: when the left side is much smaller than
    /// the right table.
    pub(super) fn index_join(
        &self,
        left: &Plan,
        right: &Plan,
        left_keys: &[Expr],
        right_keys: &[Expr],
        off: usize,
    ) -> Option<IndexJoinChoice> {
        let Node::Scan {
            table,
            label,
            read_at,
            filter,
            ..
        } = &right.node
        else {
            return None;
        };
        if matches!(read_at, ReadAt::Versions(_)) {
            return None;
        }
        let stats = self.stats.table(&table.name);
        let right_total = self
            .estimator
            .estimate_scan(table, stats.as_deref(), None)
            .rows;
        if left.est_rows * 4.0 >= right_total {
            return None;
        }
        // Right key column → the left expression it must equal.
        let mut by_column: Vec<(usize, Expr)> = Vec::new();
        for (lk, rk) in left_keys.iter().zip(right_keys) {
            if let Expr::Column(c) = rk
                && !by_column.iter().any(|(x, _)| x == c)
            {
                by_column.push((*c, lk.clone()));
            }
        }
        let key_for = |c: usize| {
            by_column
                .iter()
                .find(|(x, _)| *x == c)
                .map(|(_, e)| e.clone())
        };
        let (lookup, cols): (Lookup, Vec<usize>) = if !table.primary_key.is_empty()
            && table.primary_key.iter().all(|&c| key_for(c).is_some())
        {
            (Lookup::PrimaryKey, table.primary_key.clone())
        } else {
            let best = table
                .indexes
                .iter()
                .map(|ix| {
                    (
                        ix,
                        ix.columns
                            .iter()
                            .take_while(|&&c| key_for(c).is_some())
                            .count(),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .max_by_key(|(ix, n)| (*n, ix.unique))?;
            (
                Lookup::Index(best.0.clone()),
                best.0.columns[..best.1].to_vec(),
            )
        };
        let keys: Vec<Expr> = cols.iter().filter_map(|&c| key_for(c)).collect();
        // Join keys the lookup does not cover are checked on the joined row.
        let extra = left_keys
            .iter()
            .zip(right_keys)
            .filter(|(_, rk)| !matches!(rk, Expr::Column(c) if cols.contains(c)))
            .map(|(lk, rk)| {
                Expr::Cmp(
                    CmpOp::Eq,
                    Box::new(lk.clone()),
                    Box::new(rk.map_columns(&|x| x + off)),
                )
            })
            .collect();
        // Rows per distinct value of the first looked-up column (the estimator's default
        // equality selectivity without statistics).
        let per_row = match &lookup {
            Lookup::PrimaryKey => 1.0,
            Lookup::Index(_) => {
                let distinct = stats
                    .as_ref()
                    .and_then(|s| s.columns.get(cols[0]))
                    .map(|c| c.distinct as f64)
                    .filter(|d| *d > 0.0);
                match distinct {
                    Some(d) => right_total / d,
                    None => {
                        right_total
                            * crate::stats::selectivity(
                                None,
                                &Expr::Cmp(
                                    CmpOp::Eq,
                                    Box::new(Expr::Column(cols[0])),
                                    Box::new(Expr::Literal(Value::Int(0))),
                                ),
                            )
                    }
                }
            }
        };
        Some(IndexJoinChoice {
            per_row,
            table: table.clone(),
            label: label.clone(),
            read_at: *read_at,
            filter: filter.clone(),
            lookup,
            keys,
            extra,
        })
    }

    /// Puts `conjuncts` (over the plan's own columns) into a scan, or into a filter above
    /// any other node.
    pub(super) fn push_filter(&self, mut plan: Plan, conjuncts: Vec<Expr>) -> Plan {
        if conjuncts.is_empty() {
            return plan;
        }
        let Node::Scan {
            table,
            read_at,
            filter: existing,
            ..
        } = &mut plan.node
        else {
            let pred = Expr::all_of(conjuncts).unwrap_or(Expr::Literal(Value::Bool(true)));
            return filter(plan, pred);
        };
        let mut all = existing.take().map(Expr::conjuncts).unwrap_or_default();
        all.extend(conjuncts);
        // The access path is the optimizer's to choose; what it will find sets the estimate.
        let access = match read_at {
            ReadAt::Versions(_) => Access::Full,
            _ => choose_access(table, &all, self.stats, self.estimator, self.params),
        };
        let f = Expr::all_of(all);
        let peeked = f.as_ref().map(|f| self.peek(f));
        let stats = self.stats.table(&table.name);
        if matches!(access, Access::Key(_)) {
            // A whole primary key: at most one row, no estimator needed.
            plan.est_rows = 1.0;
            plan.estimator = "exact";
        } else {
            let est = self
                .estimator
                .estimate_scan(table, stats.as_deref(), peeked.as_ref());
            plan.est_rows = est.rows;
            plan.estimator = est.estimator;
        }
        *existing = f;
        plan
    }
}

pub(super) struct IndexJoinChoice {
    table: Arc<TableDef>,
    label: String,
    read_at: ReadAt,
    filter: Option<Expr>,
    lookup: Lookup,
    keys: Vec<Expr>,
    extra: Vec<Expr>,
    /// Estimated right rows per left row.
    per_row: f64,
}

/// `AS OF ts`, which must not be after the current time: commits still to come may land
/// before a future time, so a query as of it could answer differently later.
pub(super) fn as_of(ts: u64) -> Result<ReadAt> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    if ts > now {
        return Err(Error::InvalidInput(format!(
            "AS OF {} is after the current time ({}): its answer could still change; \
             ask about the past",
            crate::plan::format_ts(ts),
            crate::plan::format_ts(now)
        )));
    }
    Ok(ReadAt::AsOf(ts))
}

pub(super) fn value_time_literal(v: Value) -> Result<TimeLiteral> {
    Ok(match v {
        Value::Int(i) => TimeLiteral::Number(i.to_string()),
        Value::Float(f) => TimeLiteral::Number(format!("{f:.6}")),
        Value::Text(s) => TimeLiteral::Text(s),
        Value::Timestamp(t) => TimeLiteral::Text(chrono_storage::value::format_timestamp_micros(t)),
        other => return Err(Error::InvalidInput(format!("invalid timestamp {other}"))),
    })
}

impl Planner<'_> {
    /// A scan of `def` (current state) with `predicate` pushed in, for UPDATE and DELETE.
    pub fn scan_plan(
        &mut self,
        def: Arc<TableDef>,
        label: String,
        predicate: Option<Expr>,
    ) -> Result<Plan> {
        let q = Some(label.to_ascii_lowercase());
        let columns = def
            .columns
            .iter()
            .map(|c| Column {
                qualifier: q.clone(),
                name: c.name.clone(),
            })
            .collect();
        let stats = self.stats.table(&def.name);
        let est = self.estimator.estimate_scan(&def, stats.as_deref(), None);
        let plan = Plan {
            est_rows: est.rows,
            estimator: est.estimator,
            node: Node::Scan {
                table: def,
                label,
                read_at: ReadAt::Current,
                access: Access::Full,
                filter: None,
            },
            columns,
        };
        Ok(self.push_filter(plan, predicate.map(Expr::conjuncts).unwrap_or_default()))
    }
}
