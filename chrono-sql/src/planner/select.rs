//! Queries: SELECT (grouping, HAVING, the select list, DISTINCT, ORDER BY, LIMIT), VALUES,
//! set operations and WITH.

use super::bind::{WINDOW_BASE, contains_aggregate};
use super::*;

impl<'a> Planner<'a> {
    // ----------------------------------------------------------------------------------
    // Queries
    // ----------------------------------------------------------------------------------

    /// Plans a query (SELECT, VALUES, with ORDER BY / LIMIT). Queries nest (subqueries,
    /// derived tables, WITH queries, set operations) as deep as the limits let them, each
    /// level several large frames: the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn plan_query(&mut self, q: &'a ast::Query) -> Result<Plan> {
        let in_scope = self.ctes.len();
        for cte in &q.with {
            let name = cte.name.to_ascii_lowercase();
            if self.ctes[in_scope..].iter().any(|c| c.name == name) {
                self.ctes.truncate(in_scope);
                return Err(Error::InvalidInput(format!("WITH names {name} twice")));
            }
            let visible = self.ctes.len();
            self.ctes.push(Rc::new(Cte {
                name,
                columns: cte.columns.clone(),
                query: &cte.query,
                visible,
                recursive: q.recursive,
            }));
        }
        let plan = self.plan_query_body(q);
        self.ctes.truncate(in_scope);
        plan
    }

    pub(super) fn plan_query_body(&mut self, q: &'a ast::Query) -> Result<Plan> {
        let (limit, offset) = self.limit_offset(q)?;
        let order_by = &q.order_by;
        match &q.body {
            ast::SetExpr::Select(s) => self.plan_select(s, order_by, limit, offset),
            ast::SetExpr::Values(v) => {
                let plan = self.plan_values(v)?;
                self.finish(plan, order_by, limit, offset, &[], None)
            }
            ast::SetExpr::Query(inner) => {
                let plan = self.nested().plan_query(inner)?;
                self.finish(plan, order_by, limit, offset, &[], None)
            }
            ast::SetExpr::SetOperation { .. } => {
                let plan = self.plan_set_operation(&q.body)?;
                self.finish(plan, order_by, limit, offset, &[], None)
            }
        }
    }

    /// One arm of a set operation.
    pub(super) fn plan_set_arm(&mut self, body: &'a ast::SetExpr) -> Result<Plan> {
        match body {
            ast::SetExpr::Select(s) => self.plan_select(s, &[], None, 0),
            ast::SetExpr::Values(v) => self.plan_values(v),
            ast::SetExpr::Query(q) => self.nested().plan_query(q),
            ast::SetExpr::SetOperation { .. } => self.plan_set_operation(body),
        }
    }

    /// `a UNION [ALL] b …`, `a INTERSECT b`, `a EXCEPT b`. A chain of UNIONs (nested to
    /// the left) becomes one n-ary union, walked without recursion; a UNION
    /// without ALL makes every row before it distinct. Each arm counts toward
    /// `limits.max_relations`.
    #[recursive::recursive]
    pub(super) fn plan_set_operation(&mut self, body: &'a ast::SetExpr) -> Result<Plan> {
        let ast::SetExpr::SetOperation {
            op, left, right, ..
        } = body
        else {
            return self.plan_set_arm(body);
        };
        if *op != ast::SetOperator::Union {
            self.guard.count_relation()?;
            let l = self.plan_set_arm(left)?;
            let r = self.plan_set_arm(right)?;
            check_arm_width(&l, &r, *op)?;
            let anti = *op != ast::SetOperator::Intersect;
            let columns = arm_columns(&l);
            let node = Node::SetCompare {
                left: Box::new(l),
                right: Box::new(r),
                anti,
            };
            return Ok(Plan::derived(node, "heuristic", columns));
        }
        // Walk the left-deep chain of UNIONs: arms[0] op[0] arms[1] op[1] arms[2] …
        let mut arms: Vec<&'a ast::SetExpr> = Vec::new();
        let mut distinct_after: Vec<bool> = Vec::new();
        let mut cur = body;
        while let ast::SetExpr::SetOperation {
            op: ast::SetOperator::Union,
            all,
            left,
            right,
        } = cur
        {
            arms.push(right);
            distinct_after.push(!*all);
            cur = left;
        }
        arms.push(cur);
        arms.reverse();
        distinct_after.reverse();
        let mut plans = Vec::with_capacity(arms.len());
        for arm in arms {
            self.guard.count_relation()?;
            let p = self.plan_set_arm(arm)?;
            if let Some(first) = plans.first() {
                check_arm_width(first, &p, ast::SetOperator::Union)?;
            }
            plans.push(p);
        }
        let columns = arm_columns(&plans[0]);
        let union = |mut inputs: Vec<Plan>| -> Plan {
            if inputs.len() == 1
                && let Some(p) = inputs.pop()
            {
                return p;
            }
            Plan::derived(Node::Union { inputs }, "heuristic", columns.clone())
        };
        // Every arm up to the last UNION without ALL is made distinct together.
        let Some(last_distinct) = distinct_after.iter().rposition(|&d| d) else {
            return Ok(union(plans));
        };
        let rest = plans.split_off(last_distinct + 2);
        let distinct_part = union(plans);
        let distinct = Plan::derived(
            Node::Distinct {
                input: Box::new(distinct_part),
            },
            "heuristic",
            columns.clone(),
        );
        let mut inputs = vec![distinct];
        inputs.extend(rest);
        Ok(union(inputs))
    }

    pub(super) fn limit_offset(&mut self, q: &'a ast::Query) -> Result<(Option<usize>, usize)> {
        let count = |p: &mut Self, e: &'a ast::Expr, what: &str| -> Result<usize> {
            let bound = p.bind(e, &Scope::default())?;
            match p.value_now(&bound)? {
                Value::Int(n) if n >= 0 => Ok(n as usize),
                Value::Int(_) => Ok(if what == "LIMIT" { usize::MAX } else { 0 }),
                v => Err(Error::InvalidInput(format!(
                    "{what} must be an integer, got {v}"
                ))),
            }
        };
        let limit = q
            .limit
            .as_ref()
            .map(|e| count(self, e, "LIMIT"))
            .transpose()?;
        let offset = q
            .offset
            .as_ref()
            .map(|e| count(self, e, "OFFSET"))
            .transpose()?;
        Ok((limit, offset.unwrap_or(0)))
    }

    pub(super) fn plan_values(&mut self, v: &'a [Vec<ast::Expr>]) -> Result<Plan> {
        let mut rows = Vec::with_capacity(v.len());
        let mut width = None;
        for r in v {
            let row: Vec<Expr> = r
                .iter()
                .map(|e| self.bind(e, &Scope::default()))
                .collect::<Result<_>>()?;
            if *width.get_or_insert(row.len()) != row.len() {
                return Err(Error::InvalidInput(
                    "all VALUES rows must have the same number of values".into(),
                ));
            }
            rows.push(row);
        }
        let n = rows.len() as f64;
        let columns = (0..width.unwrap_or(0))
            .map(|i| Column {
                qualifier: None,
                name: format!("column{}", i + 1),
            })
            .collect();
        Ok(Plan {
            node: Node::Values { rows },
            est_rows: n,
            estimator: "exact",
            columns,
        })
    }

    pub(super) fn plan_select(
        &mut self,
        s: &'a ast::Select,
        order_by: &'a [ast::OrderItem],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Plan> {
        let (input, scope) = self.plan_from(&s.from, s.selection.as_ref())?;

        // Select-list aliases, for HAVING and ORDER BY.
        let mut aliases = Vec::new();
        for item in &s.items {
            if let ast::SelectItem::Expr {
                expr,
                name,
                aliased: true,
            } = item
            {
                aliases.push((name.clone(), expr));
            }
        }
        let group_asts = &s.group_by;
        let aggregated = !group_asts.is_empty()
            || s.having.is_some()
            || s.items.iter().any(|i| match i {
                ast::SelectItem::Expr { expr, .. } => contains_aggregate(expr),
                _ => false,
            })
            || order_by.iter().any(|o| contains_aggregate(&o.expr));

        let mut plan = input;
        self.aggregate_query = aggregated;
        if aggregated {
            let mut group = Vec::with_capacity(group_asts.len());
            for g in group_asts {
                // GROUP BY may name a select-list position or alias.
                let e = match g {
                    ast::Expr::Literal(v @ Value::Int(_)) => {
                        let n = self.position(v, s.items.len())?;
                        match &s.items[n] {
                            ast::SelectItem::Expr { expr, .. } => self.bind(expr, &scope)?,
                            _ => {
                                return Err(Error::InvalidInput(
                                    "GROUP BY position points at *".into(),
                                ));
                            }
                        }
                    }
                    _ => {
                        self.aliases = aliases.clone();
                        let r = self.bind(g, &scope);
                        self.aliases.clear();
                        r?
                    }
                };
                group.push(e);
            }
            self.agg = Some(AggCtx {
                group,
                aggs: Vec::new(),
            });
        }

        // Projection. Window functions are allowed here and in ORDER BY (not in HAVING).
        let outer_windows = self.windows.replace(Vec::new());
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in &s.items {
            match item {
                ast::SelectItem::Wildcard => {
                    // With GROUP BY or aggregates, each column is its group's value or, as
                    // SQLite has it, the value of one row of the group.
                    for (i, c) in scope.columns.iter().enumerate() {
                        if is_hidden(c) {
                            continue;
                        }
                        exprs.push(self.grouped(Expr::Column(i)));
                        columns.push(Column {
                            qualifier: None,
                            name: c.name.clone(),
                        });
                    }
                }
                ast::SelectItem::QualifiedWildcard(q) => {
                    let mut any = false;
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.qualifier
                            .as_deref()
                            .is_some_and(|cq| cq.eq_ignore_ascii_case(q))
                            && !is_hidden(c)
                        {
                            exprs.push(self.grouped(Expr::Column(i)));
                            columns.push(Column {
                                qualifier: None,
                                name: c.name.clone(),
                            });
                            any = true;
                        }
                    }
                    if !any {
                        return Err(Error::NotFound(format!("no such table: {q}")));
                    }
                }
                ast::SelectItem::Expr { expr, name, .. } => {
                    exprs.push(self.bind(expr, &scope)?);
                    columns.push(Column {
                        qualifier: None,
                        name: name.clone(),
                    });
                }
            }
        }

        let windows_so_far = self.windows.take();
        let having = match &s.having {
            Some(h) => {
                self.aliases = aliases.clone();
                let r = self.bind(h, &scope);
                self.aliases.clear();
                Some(r?)
            }
            None => None,
        };
        self.windows = windows_so_far;

        // ORDER BY keys: a position, an output name, or an expression over the input.
        let mut keys = Vec::new();
        let mut extra = 0usize;
        for o in order_by {
            let idx = match &o.expr {
                ast::Expr::Literal(v @ Value::Int(_)) => Some(self.position(v, columns.len())?),
                ast::Expr::Column {
                    qualifier: None,
                    name,
                } if scope.resolve(None, name).ok().flatten().is_none() || aggregated => columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name)),
                _ => None,
            };
            let idx = match idx {
                Some(i) => i,
                None => {
                    let e = self.bind(&o.expr, &scope)?;
                    match exprs.iter().position(|x| *x == e) {
                        Some(i) => i,
                        None => {
                            if s.distinct {
                                return Err(Error::InvalidInput(
                                    "with SELECT DISTINCT, ORDER BY expressions must appear in the select list".into(),
                                ));
                            }
                            exprs.push(e);
                            columns.push(Column {
                                qualifier: None,
                                name: format!("_order{extra}"),
                            });
                            extra += 1;
                            exprs.len() - 1
                        }
                    }
                }
            };
            keys.push(SortKey {
                expr: Expr::Column(idx),
                desc: o.desc,
                nulls_first: o.nulls_first.unwrap_or(!o.desc),
            });
        }

        let calls = std::mem::replace(&mut self.windows, outer_windows).unwrap_or_default();
        if let Some(ctx) = self.agg.take() {
            let mut agg_cols: Vec<Column> = ctx
                .group
                .iter()
                .map(|g| Column {
                    qualifier: None,
                    name: crate::plan::show_expr(g, &plan.columns),
                })
                .collect();
            agg_cols.extend((0..ctx.aggs.len()).map(|i| Column {
                qualifier: None,
                name: format!("_agg{i}"),
            }));
            let groups = group_estimate(&plan, &ctx.group, self.stats);
            let node = Node::Aggregate {
                input: Box::new(plan),
                group: ctx.group,
                aggs: ctx.aggs,
            };
            plan = Plan::derived(node, "heuristic", agg_cols);
            if let Some((rows, estimator)) = groups {
                plan.est_rows = rows;
                plan.estimator = estimator;
            }
            if let Some(h) = having {
                plan = Plan::filter(plan, h);
            }
        }
        if !calls.is_empty() {
            // The window node's columns follow its input's.
            let width = plan.columns.len();
            let moved = |i: usize| {
                if i >= WINDOW_BASE {
                    width + (i - WINDOW_BASE)
                } else {
                    i
                }
            };
            exprs = exprs.iter().map(|e| e.map_columns(&moved)).collect();
            let mut window_cols = plan.columns.clone();
            window_cols.extend((0..calls.len()).map(|i| Column {
                qualifier: None,
                name: format!("_window{i}"),
            }));
            let node = Node::Window {
                input: Box::new(plan),
                calls,
            };
            plan = Plan::derived(node, "exact", window_cols);
        }
        let node = Node::Project {
            input: Box::new(plan),
            exprs,
        };
        plan = Plan::derived(node, "exact", columns.clone());
        if s.distinct {
            let node = Node::Distinct {
                input: Box::new(plan),
            };
            plan = Plan::derived(node, "heuristic", columns.clone());
        }
        let visible = columns.len() - extra;
        self.aggregate_query = false;
        self.finish(plan, &[], limit, offset, &keys, Some(visible))
    }

    pub(super) fn position(&self, v: &Value, n: usize) -> Result<usize> {
        match v {
            Value::Int(k) if *k >= 1 && *k as u64 <= n as u64 => Ok(*k as usize - 1),
            other => Err(Error::InvalidInput(format!(
                "position {other} is not in the select list (1..{n})"
            ))),
        }
    }

    /// Adds ORDER BY (as given, or bound here over `plan`'s columns), LIMIT/OFFSET and the
    /// final projection that drops hidden sort columns.
    pub(super) fn finish(
        &mut self,
        mut plan: Plan,
        order_by: &'a [ast::OrderItem],
        limit: Option<usize>,
        offset: usize,
        keys: &[SortKey],
        visible: Option<usize>,
    ) -> Result<Plan> {
        let mut keys = keys.to_vec();
        if !order_by.is_empty() {
            let scope = Scope {
                columns: plan.columns.clone(),
            };
            for o in order_by {
                let expr = match &o.expr {
                    ast::Expr::Literal(v @ Value::Int(_)) => {
                        Expr::Column(self.position(v, scope.columns.len())?)
                    }
                    e => self.bind(e, &scope)?,
                };
                keys.push(SortKey {
                    expr,
                    desc: o.desc,
                    nulls_first: o.nulls_first.unwrap_or(!o.desc),
                });
            }
        }
        let columns = plan.columns.clone();
        let sorted = !keys.is_empty();
        if sorted {
            let node = match limit {
                Some(l) => Node::TopK {
                    input: Box::new(plan),
                    keys,
                    limit: l,
                    offset,
                },
                None => Node::Sort {
                    input: Box::new(plan),
                    keys,
                },
            };
            plan = Plan::derived(node, "exact", columns.clone());
        }
        // What TopK has not already cut: LIMIT/OFFSET without ORDER BY, OFFSET after a Sort.
        let cut = if sorted {
            limit.is_none() && offset > 0
        } else {
            limit.is_some() || offset > 0
        };
        if cut {
            let node = Node::Limit {
                input: Box::new(plan),
                limit,
                offset,
            };
            plan = Plan::derived(node, "exact", columns.clone());
        }
        if let Some(v) = visible
            && v < columns.len()
        {
            let node = Node::Project {
                input: Box::new(plan),
                exprs: (0..v).map(Expr::Column).collect(),
            };
            plan = Plan::derived(node, "exact", columns[..v].to_vec());
        }
        Ok(plan)
    }
}

/// A column `*` leaves out: a versions read's `_operation` and `_principal`.
fn is_hidden(c: &Column) -> bool {
    c.qualifier.is_some()
        && (c.name == super::from::OPERATION_COLUMN || c.name == super::from::PRINCIPAL_COLUMN)
}

/// The output columns of a set operation: the first arm's names.
pub(super) fn arm_columns(first: &Plan) -> Vec<Column> {
    first
        .columns
        .iter()
        .map(|c| Column {
            qualifier: None,
            name: c.name.clone(),
        })
        .collect()
}

pub(super) fn check_arm_width(first: &Plan, other: &Plan, op: ast::SetOperator) -> Result<()> {
    if first.columns.len() != other.columns.len() {
        return Err(Error::InvalidInput(format!(
            "the queries of a {op} have {} and {} columns",
            first.columns.len(),
            other.columns.len()
        )));
    }
    Ok(())
}

/// The groups an aggregate over `input` makes: one without GROUP BY (exact); with GROUP BY
/// columns of analyzed tables, the product of their distinct values, at most the input's
/// rows (`distinct`). `None`: the planner's guess (a tenth of the input) stands.
fn group_estimate(
    input: &Plan,
    group: &[Expr],
    stats: &crate::cost::StatsRegistry,
) -> Option<(f64, &'static str)> {
    if group.is_empty() {
        return Some((1.0, "exact"));
    }
    let mut product = 1.0f64;
    for g in group {
        let Expr::Column(c) = g else { return None };
        let (table, col) = input.column_source(*c)?;
        let distinct = stats.table(table.keyspace)?.columns.get(col)?.distinct;
        product *= (distinct as f64).max(1.0);
    }
    Some((product.min(input.est_rows.max(1.0)), "distinct"))
}
