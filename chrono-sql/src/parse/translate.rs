//! sqlparser's AST → ChronoDB's own [`crate::ast`]: the last step that knows sqlparser.
//!
//! Translation keeps what ChronoDB runs and refuses, with an error that names it, every
//! form it does not (named windows, `LATERAL`, `USING` joins, `FETCH`, triggers, …) — so the
//! planner never meets a construct it would silently ignore. It also resolves what needs
//! the source text's positions: each table reference gets its time-travel clause (its own,
//! else its FROM list's; see [`super::timetravel`]), and each unaliased select item the
//! name SQLite would give its column (the expression as written). The trees it walks are
//! no deeper than the shape check allowed; a chain of set operations is walked without
//! recursion.

use chrono_storage::Value;
use sqlparser::ast as sql;
use sqlparser::tokenizer::Location;

use super::timetravel::{Target, TimeClause, TimeSpec};
use crate::ast;
use crate::error::{Error, Result};
use crate::plan::JoinKind;
use crate::types::DataType;

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported(what.into())
}

/// The first three words of a statement, to name it in an error.
fn first_words(s: &impl std::fmt::Display) -> String {
    s.to_string()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last part of a dotted name (`schema.table` → `table`).
fn object_name(n: &sql::ObjectName) -> Result<String> {
    match n.0.last() {
        Some(sql::ObjectNamePart::Identifier(i)) => Ok(i.value.clone()),
        _ => Err(unsupported(format!("name {n}"))),
    }
}

/// Whether a FROM list has no rows because it reads, where every row of it must have a
/// partner, a system catalog ChronoDB keeps empty (named with its schema).
fn reads_an_empty_catalog(from: &[sql::TableWithJoins]) -> bool {
    let empty = |f: &sql::TableFactor| match f {
        sql::TableFactor::Table { name, .. } => relation_name(name)
            .is_ok_and(|n| n.contains('.') && crate::system_catalog::is_always_empty(&n)),
        _ => false,
    };
    from.iter().any(|f| {
        let base_kept = f.joins.iter().all(|j| {
            matches!(
                j.join_operator,
                sql::JoinOperator::Join(_)
                    | sql::JoinOperator::Inner(_)
                    | sql::JoinOperator::CrossJoin(_)
                    | sql::JoinOperator::Left(_)
                    | sql::JoinOperator::LeftOuter(_)
            )
        });
        (base_kept && empty(&f.relation))
            || f.joins.iter().any(|j| {
                matches!(
                    j.join_operator,
                    sql::JoinOperator::Join(_)
                        | sql::JoinOperator::Inner(_)
                        | sql::JoinOperator::CrossJoin(_)
                ) && empty(&j.relation)
            })
    })
}

/// A NULL in place of a select-list entry, named as the entry would have been.
fn null_item(item: &sql::SelectItem) -> ast::SelectItem {
    let (name, aliased) = match item {
        sql::SelectItem::ExprWithAlias { alias, .. } => (alias.value.clone(), true),
        sql::SelectItem::UnnamedExpr(e) => (display_name(e), false),
        _ => ("?column?".into(), false),
    };
    ast::SelectItem::Expr {
        expr: ast::Expr::Literal(Value::Null),
        name,
        aliased,
    }
}

/// A name after FROM: the system catalogs keep their schema (`pg_catalog.pg_class`,
/// `information_schema.tables`), `public.` (where PostgreSQL clients say every table is) is
/// dropped, and any other qualifier is dropped as before.
fn relation_name(n: &sql::ObjectName) -> Result<String> {
    let last = object_name(n)?;
    if let [sql::ObjectNamePart::Identifier(schema), _] = n.0.as_slice() {
        let schema = schema.value.to_ascii_lowercase();
        if schema == "pg_catalog" || schema == "information_schema" {
            return Ok(format!("{schema}.{}", last.to_ascii_lowercase()));
        }
    }
    Ok(last)
}

fn first_location(n: &sql::ObjectName) -> Option<Location> {
    match n.0.first() {
        Some(sql::ObjectNamePart::Identifier(i)) => Some(i.span.start),
        _ => None,
    }
}

/// Translates statements, with the time-travel clauses lifted from their text.
pub(crate) struct Translator<'c> {
    pub clauses: &'c [TimeClause],
}

impl Translator<'_> {
    fn clause(&self, target: Target) -> Option<TimeSpec> {
        self.clauses
            .iter()
            .find(|c| c.target == target)
            .map(|c| c.spec.clone())
    }

    /// One statement.
    pub fn statement(&self, s: &sql::Statement) -> Result<ast::Statement> {
        use sql::Statement as S;
        Ok(match s {
            S::Query(q) => match self.with_insert(q)? {
                Some(insert) => insert,
                None => ast::Statement::Query(Box::new(self.query(q)?)),
            },
            S::Insert(ins) => ast::Statement::Insert(self.insert(ins)?),
            S::Update(upd) => ast::Statement::Update(self.update(upd)?),
            S::Delete(del) => ast::Statement::Delete(self.delete(del)?),
            S::CreateTable(ct) => ast::Statement::CreateTable(create_table(ct)?),
            S::CreateIndex(ci) => ast::Statement::CreateIndex(create_index(ci)?),
            S::AlterTable(at) => ast::Statement::AddColumns(add_columns(at)?),
            S::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                let kind = match object_type {
                    sql::ObjectType::Table => ast::DropKind::Table,
                    sql::ObjectType::Index => ast::DropKind::Index,
                    sql::ObjectType::View => ast::DropKind::View,
                    other => return Err(unsupported(format!("DROP {other}"))),
                };
                ast::Statement::Drop(ast::DropObjects {
                    kind,
                    if_exists: *if_exists,
                    names: names.iter().map(object_name).collect::<Result<_>>()?,
                })
            }
            S::Analyze(a) => ast::Statement::Analyze {
                table: a.table_name.as_ref().map(object_name).transpose()?,
            },
            S::Explain {
                analyze,
                statement,
                options,
                ..
            } => {
                let mut optimizers = false;
                for o in options.iter().flatten() {
                    match o.name.value.to_ascii_lowercase().as_str() {
                        "optimizers" => optimizers = true,
                        other => {
                            return Err(unsupported(format!(
                                "EXPLAIN option {other} (there is OPTIMIZERS)"
                            )));
                        }
                    }
                }
                let inner = match &**statement {
                    S::Query(_) => self.statement(statement)?,
                    write @ (S::Insert(_)
                    | S::Update(_)
                    | S::Delete(_)
                    | S::CreateTable(_)
                    | S::CreateIndex(_)
                    | S::AlterTable(_)
                    | S::Drop { .. }) => {
                        if *analyze {
                            return Err(unsupported(format!(
                                "EXPLAIN ANALYZE of {} (it would run it)",
                                first_words(write)
                            )));
                        }
                        self.statement(write)?
                    }
                    other => {
                        return Err(unsupported(format!("EXPLAIN of {}", first_words(other))));
                    }
                };
                if optimizers && *analyze {
                    return Err(unsupported("EXPLAIN ANALYZE with OPTIMIZERS"));
                }
                ast::Statement::Explain {
                    analyze: *analyze,
                    optimizers,
                    statement: Box::new(inner),
                }
            }
            S::CreateView(cv) => {
                // TEMP / TEMPORARY is accepted and the view kept like any other: ChronoDB
                // has no objects local to a session.
                if cv.materialized || cv.to.is_some() || !cv.cluster_by.is_empty() {
                    return Err(unsupported("MATERIALIZED views and view options"));
                }
                if !self.clauses.is_empty() {
                    return Err(unsupported(
                        "a time-travel clause in a view's query (read the view AS OF a time \
                         instead: its tables are read as of that time)",
                    ));
                }
                ast::Statement::CreateView(ast::CreateView {
                    name: object_name(&cv.name)?,
                    columns: cv.columns.iter().map(|c| c.name.value.clone()).collect(),
                    query: Box::new(self.query(&cv.query)?),
                    sql: cv.query.to_string(),
                    or_replace: cv.or_replace,
                    if_not_exists: cv.if_not_exists,
                })
            }
            S::CreateTrigger(_) | S::DropTrigger(_) => {
                return Err(unsupported(
                    "triggers (write the statements a trigger would run in the same \
                     transaction; every change is versioned and audited)",
                ));
            }
            S::StartTransaction { .. } => ast::Statement::Begin,
            S::Commit { .. } => ast::Statement::Commit,
            S::Rollback {
                savepoint: None, ..
            } => ast::Statement::Rollback,
            S::Rollback {
                savepoint: Some(name),
                ..
            } => ast::Statement::RollbackTo(name.value.clone()),
            S::Savepoint { name } => ast::Statement::Savepoint(name.value.clone()),
            S::ReleaseSavepoint { name } => ast::Statement::Release(name.value.clone()),
            other => return Err(unsupported(format!("statement {}", first_words(other)))),
        })
    }

    // ------------------------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------------------------

    /// A query; queries nest (subqueries, derived tables, WITH) as deep as the shape check
    /// lets them, each level several frames: the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn query(&self, q: &sql::Query) -> Result<ast::Query> {
        if q.fetch.is_some()
            || !q.locks.is_empty()
            || q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return Err(unsupported(
                "FETCH / FOR UPDATE / SETTINGS / FORMAT / pipe operators (use LIMIT)",
            ));
        }
        let recursive = q.with.as_ref().is_some_and(|w| w.recursive);
        let with = self.ctes(q.with.as_ref())?;
        let mut order_by = Vec::new();
        if let Some(ob) = &q.order_by {
            match &ob.kind {
                sql::OrderByKind::Expressions(v) => {
                    for o in v {
                        if o.with_fill.is_some() {
                            return Err(unsupported("ORDER BY … WITH FILL"));
                        }
                        order_by.push(ast::OrderItem {
                            expr: self.expr(&o.expr)?,
                            desc: matches!(o.options.sort, Some(sql::OrderBySort::Desc)),
                            nulls_first: o.options.nulls_first,
                        });
                    }
                }
                sql::OrderByKind::All(_) => return Err(unsupported("ORDER BY ALL")),
            }
        }
        let (limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(sql::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT … BY"));
                }
                (
                    limit.as_ref().map(|e| self.expr(e)).transpose()?,
                    offset.as_ref().map(|o| self.expr(&o.value)).transpose()?,
                )
            }
            Some(sql::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(self.expr(limit)?), Some(self.expr(offset)?))
            }
        };
        Ok(ast::Query {
            with,
            recursive,
            body: self.set_expr(&q.body)?,
            order_by,
            limit,
            offset,
        })
    }

    /// A query body. A chain of set operations (sqlparser nests it to the left) is walked
    /// along its left spine without recursion.
    fn set_expr(&self, body: &sql::SetExpr) -> Result<ast::SetExpr> {
        let mut rights = Vec::new();
        let mut cur = body;
        while let sql::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } = cur
        {
            let op = match op {
                sql::SetOperator::Union => ast::SetOperator::Union,
                sql::SetOperator::Intersect => ast::SetOperator::Intersect,
                sql::SetOperator::Except => ast::SetOperator::Except,
                other => return Err(unsupported(format!("{other}"))),
            };
            let all = match set_quantifier {
                sql::SetQuantifier::All => true,
                sql::SetQuantifier::Distinct | sql::SetQuantifier::None => false,
                other => return Err(unsupported(format!("{op} {other}"))),
            };
            if all && op != ast::SetOperator::Union {
                return Err(unsupported(format!("{op} ALL")));
            }
            rights.push((op, all, right));
            cur = left;
        }
        let mut tree = self.set_arm(cur)?;
        for (op, all, right) in rights.into_iter().rev() {
            tree = ast::SetExpr::SetOperation {
                op,
                all,
                left: Box::new(tree),
                right: Box::new(self.set_arm(right)?),
            };
        }
        Ok(tree)
    }

    fn set_arm(&self, body: &sql::SetExpr) -> Result<ast::SetExpr> {
        Ok(match body {
            sql::SetExpr::Select(s) => ast::SetExpr::Select(Box::new(self.select(s)?)),
            sql::SetExpr::Values(v) => ast::SetExpr::Values(self.values(v)?),
            sql::SetExpr::Query(q) => ast::SetExpr::Query(Box::new(self.query(q)?)),
            sql::SetExpr::SetOperation { .. } => self.set_expr(body)?,
            other => return Err(unsupported(format!("query {other}"))),
        })
    }

    fn values(&self, v: &sql::Values) -> Result<Vec<Vec<ast::Expr>>> {
        v.rows
            .iter()
            .map(|r| r.content.iter().map(|e| self.expr(e)).collect())
            .collect()
    }

    fn select(&self, s: &sql::Select) -> Result<ast::Select> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.qualify.is_some()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.exclude.is_some()
            || s.value_table_mode.is_some()
        {
            return Err(unsupported("this SELECT form"));
        }
        if !s.named_window.is_empty() {
            return Err(unsupported(
                "named windows (WINDOW w AS …): write the window in OVER (…)",
            ));
        }
        let distinct = match &s.distinct {
            None | Some(sql::Distinct::All) => false,
            Some(sql::Distinct::Distinct) => true,
            Some(sql::Distinct::On(_)) => return Err(unsupported("DISTINCT ON")),
        };
        // A SELECT that reads a system catalog ChronoDB keeps empty (policies,
        // publications, …) has no rows whatever its select list and WHERE say: what of them
        // ChronoDB cannot translate (PostgreSQL's arrays, as psql's `\d` asks) stands in as
        // NULL and FALSE.
        let reads_nothing = reads_an_empty_catalog(&s.from);
        let items = s
            .projection
            .iter()
            .map(|i| match self.select_item(i) {
                Err(_) if reads_nothing => Ok(null_item(i)),
                r => r,
            })
            .collect::<Result<_>>()?;
        let group_by = match &s.group_by {
            sql::GroupByExpr::Expressions(v, mods) if mods.is_empty() => {
                v.iter().map(|e| self.expr(e)).collect::<Result<_>>()?
            }
            _ => return Err(unsupported("GROUP BY ALL / modifiers")),
        };
        Ok(ast::Select {
            distinct,
            items,
            from: s
                .from
                .iter()
                .map(|f| self.list_entry(f))
                .collect::<Result<_>>()?,
            selection: match s.selection.as_ref().map(|e| self.expr(e)).transpose() {
                Err(_) if reads_nothing => Some(ast::Expr::Literal(Value::Bool(false))),
                r => r?,
            },
            group_by,
            having: s.having.as_ref().map(|e| self.expr(e)).transpose()?,
        })
    }

    /// An entry of a select list (or a RETURNING list).
    fn select_item(&self, item: &sql::SelectItem) -> Result<ast::SelectItem> {
        Ok(match item {
            sql::SelectItem::Wildcard(_) => ast::SelectItem::Wildcard,
            sql::SelectItem::QualifiedWildcard(kind, _) => {
                ast::SelectItem::QualifiedWildcard(match kind {
                    sql::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n)?,
                    sql::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                })
            }
            sql::SelectItem::UnnamedExpr(e) => ast::SelectItem::Expr {
                expr: self.expr(e)?,
                name: display_name(e),
                aliased: false,
            },
            sql::SelectItem::ExprWithAlias { expr, alias } => ast::SelectItem::Expr {
                expr: self.expr(expr)?,
                name: alias.value.clone(),
                aliased: true,
            },
            sql::SelectItem::ExprWithAliases { .. } => {
                return Err(unsupported("multiple aliases"));
            }
        })
    }

    fn returning(&self, items: &Option<Vec<sql::SelectItem>>) -> Result<Vec<ast::SelectItem>> {
        items
            .iter()
            .flatten()
            .map(|i| self.select_item(i))
            .collect()
    }

    /// One entry of a FROM list. A parenthesized join (`(a CROSS JOIN b)`, SQLite's corpus
    /// writes them) is the same join written flat: its relations and conditions join the
    /// entry's list. Inner joins are associative, so only a parenthesized join on the right
    /// of a LEFT JOIN, or holding a LEFT JOIN itself there, is refused by name.
    #[recursive::recursive]
    fn list_entry(&self, twj: &sql::TableWithJoins) -> Result<ast::FromItem> {
        // A clause after the whole FROM entry applies to each of its tables.
        let list_time = match &twj.relation {
            sql::TableFactor::Table { name, .. } => {
                first_location(name).and_then(|l| self.clause(Target::FromList(l)))
            }
            _ => None,
        };
        let mut item = match &twj.relation {
            sql::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } => self.list_entry(table_with_joins)?,
            relation => ast::FromItem {
                relation: self.table_factor(relation, list_time.as_ref())?,
                joins: Vec::new(),
            },
        };
        for j in &twj.joins {
            let (kind, constraint) = match &j.join_operator {
                sql::JoinOperator::Join(c) | sql::JoinOperator::Inner(c) => (JoinKind::Inner, c),
                sql::JoinOperator::Left(c) | sql::JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
                sql::JoinOperator::CrossJoin(c) => (JoinKind::Inner, c),
                other => return Err(unsupported(format!("join {other:?}"))),
            };
            let on = match constraint {
                sql::JoinConstraint::On(e) => Some(self.expr(e)?),
                sql::JoinConstraint::None => None,
                _ => return Err(unsupported("USING / NATURAL joins")),
            };
            let sql::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } = &j.relation
            else {
                item.joins.push(ast::Join {
                    kind,
                    relation: self.table_factor(&j.relation, list_time.as_ref())?,
                    on,
                });
                continue;
            };
            let inner = self.list_entry(table_with_joins)?;
            if !inner.joins.is_empty()
                && (kind == JoinKind::Left || inner.joins.iter().any(|j| j.kind != JoinKind::Inner))
            {
                return Err(unsupported(
                    "a LEFT JOIN with a parenthesized join (write the joins without parentheses \
                     or use a derived table)",
                ));
            }
            let mut parts = vec![ast::Join {
                kind,
                relation: inner.relation,
                on: None,
            }];
            parts.extend(inner.joins);
            // The outer ON may name any relation of the parentheses: it joins with the last.
            if let Some(last) = parts.last_mut() {
                last.on = match (last.on.take(), on) {
                    (Some(a), Some(b)) => Some(ast::Expr::Binary {
                        op: ast::BinaryOp::And,
                        left: Box::new(a),
                        right: Box::new(b),
                    }),
                    (a, b) => a.or(b),
                };
            }
            item.joins.extend(parts);
        }
        Ok(item)
    }

    /// A function in FROM: `DIFF(table, from, to)`; any other is refused.
    fn table_function(
        &self,
        name: &sql::ObjectName,
        args: &sql::TableFunctionArgs,
        alias: Option<ast::TableAlias>,
    ) -> Result<ast::TableFactor> {
        let function = object_name(name)?;
        if !function.eq_ignore_ascii_case("diff") {
            return Err(unsupported(format!(
                "table function {function} (there is DIFF(table, from, to))"
            )));
        }
        let exprs: Vec<&sql::Expr> = args
            .args
            .iter()
            .filter_map(|a| match a {
                sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect();
        let [table, from, to] = exprs.as_slice() else {
            return Err(Error::InvalidInput(
                "DIFF takes a table and two times: DIFF(table, from, to)".into(),
            ));
        };
        let table = match table {
            sql::Expr::Identifier(i) => i.value.clone(),
            sql::Expr::CompoundIdentifier(parts) => {
                parts.last().map(|p| p.value.clone()).unwrap_or_default()
            }
            sql::Expr::Value(v) => match &v.value {
                sql::Value::SingleQuotedString(s) => s.clone(),
                _ => {
                    return Err(Error::InvalidInput(
                        "DIFF's first argument is a table".into(),
                    ));
                }
            },
            _ => {
                return Err(Error::InvalidInput(
                    "DIFF's first argument is a table".into(),
                ));
            }
        };
        Ok(ast::TableFactor::Diff {
            table,
            from: self.expr(from)?,
            to: self.expr(to)?,
            alias,
        })
    }

    fn table_factor(
        &self,
        factor: &sql::TableFactor,
        list_time: Option<&TimeSpec>,
    ) -> Result<ast::TableFactor> {
        let alias = |a: &Option<sql::TableAlias>| {
            a.as_ref().map(|a| ast::TableAlias {
                name: a.name.value.clone(),
                columns: a.columns.iter().map(|c| c.name.value.clone()).collect(),
            })
        };
        match factor {
            sql::TableFactor::Table {
                name,
                alias: a,
                args,
                version,
                ..
            } => {
                if let Some(args) = args {
                    return self.table_function(name, args, alias(a));
                }
                let own = first_location(name).and_then(|l| self.clause(Target::Table(l)));
                let as_of = match version {
                    None => None,
                    Some(
                        sql::TableVersion::ForSystemTimeAsOf(e)
                        | sql::TableVersion::TimestampAsOf(e),
                    ) => Some(self.expr(e)?),
                    Some(other) => return Err(unsupported(format!("{other}"))),
                };
                Ok(ast::TableFactor::Table {
                    name: relation_name(name)?,
                    alias: alias(a),
                    time: own.or_else(|| list_time.cloned()),
                    as_of,
                })
            }
            sql::TableFactor::Derived {
                subquery,
                alias: a,
                lateral,
                ..
            } => {
                if *lateral {
                    return Err(unsupported("LATERAL"));
                }
                Ok(ast::TableFactor::Derived {
                    query: Box::new(self.query(subquery)?),
                    alias: alias(a),
                })
            }
            other => Err(unsupported(format!("FROM item {other}"))),
        }
    }

    // ------------------------------------------------------------------------------------
    // Expressions
    // ------------------------------------------------------------------------------------

    fn boxed(&self, e: &sql::Expr) -> Result<Box<ast::Expr>> {
        self.expr(e).map(Box::new)
    }

    /// An expression. Its depth is bounded by the shape check; the recursion grows its
    /// stack on demand.
    #[recursive::recursive]
    pub fn expr(&self, e: &sql::Expr) -> Result<ast::Expr> {
        use ast::Expr as A;
        use sql::Expr as E;
        Ok(match e {
            E::Identifier(id) => A::Column {
                qualifier: None,
                name: id.value.clone(),
            },
            E::CompoundIdentifier(parts) => {
                let n = parts.len();
                if n < 2 {
                    return Err(unsupported(format!("identifier {e}")));
                }
                A::Column {
                    qualifier: Some(parts[n - 2].value.clone()),
                    name: parts[n - 1].value.clone(),
                }
            }
            E::Value(v) => literal(&v.value)?,
            E::TypedString(ts) => {
                let text = match &ts.value.value {
                    sql::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let t = DataType::parse(&ts.data_type.to_string())?;
                A::Literal(t.coerce(Value::Text(text), "literal")?)
            }
            E::Nested(x) => self.expr(x)?,
            E::UnaryOp { op, expr } => match op {
                sql::UnaryOperator::Not => A::Not(self.boxed(expr)?),
                sql::UnaryOperator::Minus => A::Neg(self.boxed(expr)?),
                sql::UnaryOperator::Plus => self.expr(expr)?,
                sql::UnaryOperator::BitwiseNot => {
                    call("~", vec![ast::FunctionArg::Expr(self.expr(expr)?)])
                }
                other => return Err(unsupported(format!("operator {other}"))),
            },
            E::BinaryOp { left, op, right } => {
                use ast::BinaryOp as O;
                use sql::BinaryOperator as B;
                let op = match op {
                    B::Plus => O::Add,
                    B::Minus => O::Sub,
                    B::Multiply => O::Mul,
                    B::Divide => O::Div,
                    B::Modulo => O::Rem,
                    B::Eq => O::Eq,
                    B::NotEq => O::NotEq,
                    B::Lt => O::Lt,
                    B::LtEq => O::LtEq,
                    B::Gt => O::Gt,
                    B::GtEq => O::GtEq,
                    B::And => O::And,
                    B::Or => O::Or,
                    B::StringConcat => O::Concat,
                    B::BitwiseAnd => O::BitAnd,
                    B::BitwiseOr => O::BitOr,
                    B::PGBitwiseShiftLeft => O::ShiftLeft,
                    B::PGBitwiseShiftRight => O::ShiftRight,
                    B::PGRegexMatch
                    | B::PGRegexIMatch
                    | B::PGRegexNotMatch
                    | B::PGRegexNotIMatch => {
                        return self.regex_match(left, op, right);
                    }
                    // `OPERATOR(pg_catalog.~)`: PostgreSQL's schema-qualified spelling of an
                    // operator, as psql writes it.
                    B::PGCustomBinaryOperator(parts) => {
                        let op = match parts.last().map(String::as_str) {
                            Some("~") => B::PGRegexMatch,
                            Some("~*") => B::PGRegexIMatch,
                            Some("!~") => B::PGRegexNotMatch,
                            Some("!~*") => B::PGRegexNotIMatch,
                            Some("=") => B::Eq,
                            Some("<>" | "!=") => B::NotEq,
                            Some("<") => B::Lt,
                            Some("<=") => B::LtEq,
                            Some(">") => B::Gt,
                            Some(">=") => B::GtEq,
                            Some("||") => B::StringConcat,
                            Some("+") => B::Plus,
                            Some("-") => B::Minus,
                            Some("*") => B::Multiply,
                            Some("/") => B::Divide,
                            _ => return Err(unsupported(format!("operator {op}"))),
                        };
                        return self.expr(&E::BinaryOp {
                            left: left.clone(),
                            op,
                            right: right.clone(),
                        });
                    }
                    other => return Err(unsupported(format!("operator {other}"))),
                };
                A::Binary {
                    op,
                    left: self.boxed(left)?,
                    right: self.boxed(right)?,
                }
            }
            E::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.quantified(left, compare_op, right, true)?,
            E::AllOp {
                left,
                compare_op,
                right,
            } => self.quantified(left, compare_op, right, false)?,
            E::IsNull(x) | E::IsNotNull(x) => A::IsNull {
                expr: self.boxed(x)?,
                negated: matches!(e, E::IsNotNull(_)),
            },
            E::IsTrue(x) | E::IsFalse(x) | E::IsNotTrue(x) | E::IsNotFalse(x) => A::IsBool {
                expr: self.boxed(x)?,
                value: matches!(e, E::IsTrue(_) | E::IsNotTrue(_)),
                negated: matches!(e, E::IsNotTrue(_) | E::IsNotFalse(_)),
            },
            E::IsDistinctFrom(x, y) | E::IsNotDistinctFrom(x, y) => A::IsDistinct {
                left: self.boxed(x)?,
                right: self.boxed(y)?,
                negated: matches!(e, E::IsNotDistinctFrom(..)),
            },
            E::Between {
                expr,
                negated,
                low,
                high,
            } => A::Between {
                expr: self.boxed(expr)?,
                low: self.boxed(low)?,
                high: self.boxed(high)?,
                negated: *negated,
            },
            E::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                sql::InTarget::List(list) => A::InList {
                    expr: self.boxed(expr)?,
                    list: list.iter().map(|i| self.expr(i)).collect::<Result<_>>()?,
                    negated: *negated,
                },
                sql::InTarget::Subquery(q) => A::InSubquery {
                    expr: self.boxed(expr)?,
                    query: Box::new(self.query(q)?),
                    negated: *negated,
                },
                sql::InTarget::Table { name, args: None } => A::InSubquery {
                    expr: self.boxed(expr)?,
                    query: Box::new(select_star_from(object_name(name)?)),
                    negated: *negated,
                },
                other => return Err(unsupported(format!("IN {other}"))),
            },
            E::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY"));
                }
                let one_char = || Error::InvalidInput("ESCAPE expects one character".into());
                let escape = match escape_char.as_deref() {
                    None => None,
                    Some(sql::Expr::Value(v)) => match &v.value {
                        sql::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => return Err(one_char()),
                    },
                    Some(_) => return Err(one_char()),
                };
                A::Like {
                    expr: self.boxed(expr)?,
                    pattern: self.boxed(pattern)?,
                    negated: *negated,
                    escape,
                }
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => A::Case {
                operand: operand.as_deref().map(|o| self.boxed(o)).transpose()?,
                whens: conditions
                    .iter()
                    .map(|c| Ok((self.expr(&c.condition)?, self.expr(&c.result)?)))
                    .collect::<Result<_>>()?,
                otherwise: else_result.as_deref().map(|x| self.boxed(x)).transpose()?,
            },
            E::Cast {
                expr, data_type, ..
            } => {
                let name = data_type.to_string().to_ascii_lowercase();
                let arg = || Ok::<_, Error>(vec![ast::FunctionArg::Expr(self.expr(expr)?)]);
                // PostgreSQL's object-identifier types, as catalog queries use them.
                match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
                    "regclass" => call("regclass", arg()?),
                    "regnamespace" => call("regnamespace", arg()?),
                    "regtype" => {
                        let mut args = arg()?;
                        args.push(ast::FunctionArg::Expr(A::Literal(Value::Null)));
                        call("format_type", args)
                    }
                    _ => A::Cast {
                        expr: self.boxed(expr)?,
                        data_type: DataType::parse(&name)?,
                    },
                }
            }
            // The default collation (and C/POSIX, which order as ChronoDB does: by code point).
            E::Collate { expr, collation } => {
                let name = object_name(collation)?.to_ascii_lowercase();
                if !matches!(name.as_str(), "default" | "c" | "posix" | "ucs_basic") {
                    return Err(unsupported(format!(
                        "COLLATE {collation} (ChronoDB compares text by code point: COLLATE \
                         \"C\")"
                    )));
                }
                self.expr(expr)?
            }
            E::Function(f) => self.function(f)?,
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![ast::FunctionArg::Expr(self.expr(expr)?)];
                args.push(ast::FunctionArg::Expr(match substring_from {
                    Some(x) => self.expr(x)?,
                    None => A::Literal(Value::Int(1)),
                }));
                if let Some(x) = substring_for {
                    args.push(ast::FunctionArg::Expr(self.expr(x)?));
                }
                call("substr", args)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(unsupported("TRIM(… FROM …)"));
                }
                let name = match trim_where {
                    Some(sql::TrimWhereField::Leading) => "ltrim",
                    Some(sql::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                call(name, vec![ast::FunctionArg::Expr(self.expr(expr)?)])
            }
            E::Ceil { expr, field } | E::Floor { expr, field } => {
                if !matches!(
                    field,
                    sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime)
                ) {
                    return Err(unsupported(format!("{e}")));
                }
                let name = if matches!(e, E::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                call(name, vec![ast::FunctionArg::Expr(self.expr(expr)?)])
            }
            E::Interval(iv) => A::Literal(Value::Int(interval_micros(iv)?)),
            E::Subquery(q) => A::Subquery(Box::new(self.query(q)?)),
            E::Exists { subquery, negated } => A::Exists {
                query: Box::new(self.query(subquery)?),
                negated: *negated,
            },
            other => return Err(unsupported(format!("expression {other}"))),
        })
    }

    /// `x op ANY (…)` (`any`) or `x op ALL (…)` over an `ARRAY[…]` list or a subquery:
    /// `= ANY` is IN and `<> ALL` NOT IN; any other operator over a list is the OR (ANY)
    /// or AND (ALL) of its comparisons, so NULLs count as SQL says (an empty list: FALSE
    /// for ANY, TRUE for ALL).
    fn quantified(
        &self,
        left: &sql::Expr,
        op: &sql::BinaryOperator,
        right: &sql::Expr,
        any: bool,
    ) -> Result<ast::Expr> {
        use sql::BinaryOperator as B;
        let membership = match (op, any) {
            (B::Eq, true) => Some(false),
            (B::NotEq, false) => Some(true),
            _ => None,
        };
        let quantifier = if any { "ANY" } else { "ALL" };
        let inner = match right {
            sql::Expr::Nested(x) => x.as_ref(),
            x => x,
        };
        match inner {
            sql::Expr::Subquery(q) => match membership {
                Some(negated) => Ok(ast::Expr::InSubquery {
                    expr: self.boxed(left)?,
                    query: Box::new(self.query(q)?),
                    negated,
                }),
                None => Err(unsupported(format!(
                    "{op} {quantifier} (subquery) (= ANY and <> ALL are; write the others with \
                     MIN/MAX or EXISTS)"
                ))),
            },
            sql::Expr::Array(array) => {
                if let Some(negated) = membership {
                    return Ok(ast::Expr::InList {
                        expr: self.boxed(left)?,
                        list: array
                            .elem
                            .iter()
                            .map(|e| self.expr(e))
                            .collect::<Result<_>>()?,
                        negated,
                    });
                }
                let mut out: Option<ast::Expr> = None;
                for e in &array.elem {
                    let one = self.expr(&sql::Expr::BinaryOp {
                        left: Box::new(left.clone()),
                        op: op.clone(),
                        right: Box::new(e.clone()),
                    })?;
                    out = Some(match out {
                        None => one,
                        Some(prev) => ast::Expr::Binary {
                            op: if any {
                                ast::BinaryOp::Or
                            } else {
                                ast::BinaryOp::And
                            },
                            left: Box::new(prev),
                            right: Box::new(one),
                        },
                    });
                }
                Ok(out.unwrap_or(ast::Expr::Literal(Value::Bool(!any))))
            }
            other => Err(unsupported(format!(
                "{op} {quantifier}({other}): ChronoDB has no array type (write ARRAY[…] or a \
                 subquery)"
            ))),
        }
    }

    /// `a ~ b`, `a ~* b`, `a !~ b`, `a !~* b`: REGEXP_LIKE, negated for `!`.
    fn regex_match(
        &self,
        left: &sql::Expr,
        op: &sql::BinaryOperator,
        right: &sql::Expr,
    ) -> Result<ast::Expr> {
        use sql::BinaryOperator as B;
        let mut args = vec![
            ast::FunctionArg::Expr(self.expr(left)?),
            ast::FunctionArg::Expr(self.expr(right)?),
        ];
        if matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch) {
            args.push(ast::FunctionArg::Expr(ast::Expr::Literal(Value::Text(
                "i".into(),
            ))));
        }
        let like = call("regexp_like", args);
        Ok(if matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch) {
            ast::Expr::Not(Box::new(like))
        } else {
            like
        })
    }

    fn function(&self, f: &sql::Function) -> Result<ast::Expr> {
        let name = object_name(&f.name)?;
        let call = self.call(&name, f)?;
        let Some(over) = &f.over else {
            return Ok(call);
        };
        let spec = match over {
            sql::WindowType::WindowSpec(spec) if spec.window_name.is_none() => spec,
            _ => return Err(unsupported("named windows (write the window in OVER (…))")),
        };
        let mut order_by = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            order_by.push(ast::OrderItem {
                expr: self.expr(&o.expr)?,
                desc: matches!(o.options.sort, Some(sql::OrderBySort::Desc)),
                nulls_first: o.options.nulls_first,
            });
        }
        let frame = match &spec.window_frame {
            None => None,
            Some(fr) => {
                let range = match fr.units {
                    sql::WindowFrameUnits::Rows => false,
                    sql::WindowFrameUnits::Range => true,
                    sql::WindowFrameUnits::Groups => {
                        return Err(unsupported("GROUPS frames (there are ROWS and RANGE)"));
                    }
                };
                let start = self.frame_bound(&fr.start_bound, true)?;
                let end = match &fr.end_bound {
                    None => ast::FrameBound::CurrentRow,
                    Some(b) => self.frame_bound(b, false)?,
                };
                Some(ast::WindowFrame { range, start, end })
            }
        };
        Ok(ast::Expr::Window {
            call: Box::new(call),
            partition_by: spec
                .partition_by
                .iter()
                .map(|e| self.expr(e))
                .collect::<Result<_>>()?,
            order_by,
            frame,
        })
    }

    fn frame_bound(&self, b: &sql::WindowFrameBound, start: bool) -> Result<ast::FrameBound> {
        Ok(match b {
            sql::WindowFrameBound::CurrentRow => ast::FrameBound::CurrentRow,
            sql::WindowFrameBound::Preceding(None) if start => ast::FrameBound::UnboundedPreceding,
            sql::WindowFrameBound::Following(None) if !start => ast::FrameBound::UnboundedFollowing,
            sql::WindowFrameBound::Preceding(Some(e)) => ast::FrameBound::Preceding(self.boxed(e)?),
            sql::WindowFrameBound::Following(Some(e)) => ast::FrameBound::Following(self.boxed(e)?),
            other => {
                return Err(Error::InvalidInput(format!(
                    "a window frame cannot {} at {other}",
                    if start { "start" } else { "end" }
                )));
            }
        })
    }

    /// A call, without its OVER.
    fn call(&self, name: &str, f: &sql::Function) -> Result<ast::Expr> {
        if f.filter.is_some()
            || f.null_treatment.is_some()
            || !f.within_group.is_empty()
            || !matches!(f.parameters, sql::FunctionArguments::None)
        {
            return Err(unsupported(format!(
                "{name}() with FILTER / WITHIN GROUP / IGNORE NULLS / parameters"
            )));
        }
        let (args, distinct) = match &f.args {
            sql::FunctionArguments::None => (Vec::new(), false),
            sql::FunctionArguments::Subquery(q) if name.eq_ignore_ascii_case("array") => {
                return Ok(array_of(self.query(q)?));
            }
            sql::FunctionArguments::Subquery(_) => {
                return Err(unsupported("subquery as function argument"));
            }
            sql::FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(unsupported(format!("{name}(… ORDER BY / LIMIT …)")));
                }
                let mut out = Vec::with_capacity(list.args.len());
                for a in &list.args {
                    out.push(match a {
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(x)) => {
                            ast::FunctionArg::Expr(self.expr(x)?)
                        }
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard) => {
                            ast::FunctionArg::Wildcard
                        }
                        other => return Err(unsupported(format!("argument {other}"))),
                    });
                }
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(sql::DuplicateTreatment::Distinct)
                );
                (out, distinct)
            }
        };
        Ok(ast::Expr::Function {
            name: name.to_string(),
            args,
            distinct,
        })
    }

    // ------------------------------------------------------------------------------------
    // Writes
    // ------------------------------------------------------------------------------------

    /// The WITH queries of a `WITH …` clause.
    fn ctes(&self, with: Option<&sql::With>) -> Result<Vec<ast::Cte>> {
        let Some(w) = with else {
            return Ok(Vec::new());
        };
        w.cte_tables
            .iter()
            .map(|cte| {
                Ok(ast::Cte {
                    name: cte.alias.name.value.clone(),
                    columns: cte
                        .alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.clone())
                        .collect(),
                    query: self.query(&cte.query)?,
                })
            })
            .collect()
    }

    /// `WITH … INSERT …`: the WITH queries go to the INSERT's source (where the rows come
    /// from), ahead of any of its own. `None` when the query is not one.
    fn with_insert(&self, q: &sql::Query) -> Result<Option<ast::Statement>> {
        let sql::SetExpr::Insert(sql::Statement::Insert(ins)) = q.body.as_ref() else {
            return Ok(None);
        };
        if q.order_by.is_some() || q.limit_clause.is_some() {
            return Err(unsupported("ORDER BY / LIMIT after an INSERT"));
        }
        let mut insert = self.insert(ins)?;
        let mut with = self.ctes(q.with.as_ref())?;
        with.append(&mut insert.source.with);
        insert.source.with = with;
        insert.source.recursive |= q.with.as_ref().is_some_and(|w| w.recursive);
        Ok(Some(ast::Statement::Insert(insert)))
    }

    fn insert(&self, ins: &sql::Insert) -> Result<ast::Insert> {
        if !ins.assignments.is_empty() {
            return Err(unsupported("INSERT … SET (use VALUES)"));
        }
        let table = match &ins.table {
            sql::TableObject::TableName(n) => object_name(n)?,
            other => return Err(unsupported(format!("INSERT INTO {other}"))),
        };
        let source = ins
            .source
            .as_ref()
            .ok_or_else(|| unsupported("INSERT without VALUES or SELECT"))?;
        let or = match (ins.or, ins.replace_into) {
            (_, true) | (Some(sql::SqliteOnConflict::Replace), _) => Some(ast::OnConflict {
                target: Vec::new(),
                action: ast::ConflictAction::Replace,
            }),
            (Some(sql::SqliteOnConflict::Ignore), _) => Some(ast::OnConflict {
                target: Vec::new(),
                action: ast::ConflictAction::Nothing,
            }),
            // ABORT is what every INSERT does: the statement fails and writes nothing.
            (None | Some(sql::SqliteOnConflict::Abort), _) => None,
            (Some(other), _) => {
                return Err(unsupported(format!(
                    "INSERT {other} (there are OR ABORT, OR IGNORE and OR REPLACE)"
                )));
            }
        };
        let on = match &ins.on {
            None => None,
            Some(sql::OnInsert::OnConflict(oc)) => {
                let target = match &oc.conflict_target {
                    None => Vec::new(),
                    Some(sql::ConflictTarget::Columns {
                        columns,
                        predicate: None,
                    }) => columns.iter().map(|c| c.value.clone()).collect(),
                    Some(other) => {
                        return Err(unsupported(format!(
                            "ON CONFLICT {} (name the columns: ON CONFLICT (a, b))",
                            other.to_string().trim()
                        )));
                    }
                };
                let action = match &oc.action {
                    sql::OnConflictAction::DoNothing => ast::ConflictAction::Nothing,
                    sql::OnConflictAction::DoUpdate(du) => ast::ConflictAction::Update {
                        sets: self.assignments(&du.assignments)?,
                        selection: du.selection.as_ref().map(|e| self.expr(e)).transpose()?,
                    },
                };
                Some(ast::OnConflict { target, action })
            }
            Some(other) => {
                return Err(unsupported(format!(
                    "{} (use ON CONFLICT … DO UPDATE)",
                    other.to_string().trim()
                )));
            }
        };
        if or.is_some() && on.is_some() {
            return Err(unsupported(
                "INSERT OR … together with ON CONFLICT (use one of them)",
            ));
        }
        Ok(ast::Insert {
            table,
            columns: ins.columns.iter().map(object_name).collect::<Result<_>>()?,
            source: Box::new(self.query(source)?),
            on_conflict: or.or(on),
            returning: self.returning(&ins.returning)?,
        })
    }

    fn assignments(&self, assignments: &[sql::Assignment]) -> Result<Vec<(String, ast::Expr)>> {
        let mut sets = Vec::with_capacity(assignments.len());
        for a in assignments {
            let sql::AssignmentTarget::ColumnName(cn) = &a.target else {
                return Err(unsupported("tuple assignment"));
            };
            sets.push((object_name(cn)?, self.expr(&a.value)?));
        }
        Ok(sets)
    }

    fn update(&self, upd: &sql::Update) -> Result<ast::Update> {
        if upd.from.is_some() || !upd.table.joins.is_empty() || upd.limit.is_some() {
            return Err(unsupported("UPDATE … FROM / JOIN / LIMIT"));
        }
        let (table, alias) = target_table(&upd.table.relation, "UPDATE")?;
        Ok(ast::Update {
            table,
            alias,
            sets: self.assignments(&upd.assignments)?,
            selection: upd.selection.as_ref().map(|e| self.expr(e)).transpose()?,
            returning: self.returning(&upd.returning)?,
        })
    }

    fn delete(&self, del: &sql::Delete) -> Result<ast::Delete> {
        if del.using.is_some()
            || del.limit.is_some()
            || !del.tables.is_empty()
            || !del.order_by.is_empty()
        {
            return Err(unsupported("DELETE … USING / ORDER BY / LIMIT"));
        }
        let from = match &del.from {
            sql::FromTable::WithFromKeyword(f) | sql::FromTable::WithoutKeyword(f) => f,
        };
        let [twj] = from.as_slice() else {
            return Err(unsupported("DELETE from several tables"));
        };
        if !twj.joins.is_empty() {
            return Err(unsupported("DELETE from several tables"));
        }
        let (table, alias) = target_table(&twj.relation, "DELETE")?;
        Ok(ast::Delete {
            table,
            alias,
            selection: del.selection.as_ref().map(|e| self.expr(e)).transpose()?,
            returning: self.returning(&del.returning)?,
        })
    }
}

/// The table (and alias) a single-table UPDATE or DELETE names.
fn target_table(relation: &sql::TableFactor, what: &str) -> Result<(String, Option<String>)> {
    let sql::TableFactor::Table { name, alias, .. } = relation else {
        return Err(unsupported(format!("{what} of a non-table")));
    };
    Ok((
        object_name(name)?,
        alias.as_ref().map(|a| a.name.value.clone()),
    ))
}

/// `INTERVAL '…'` as a number of microseconds (what TIMESTAMP arithmetic adds and
/// subtracts): `'1 hour'`, `'90 minutes'`, `'1 day 2 hours'`, `'1.5' HOUR`, `'30' SECOND`.
/// Months and years have no fixed length and are refused.
fn interval_micros(iv: &sql::Interval) -> Result<i64> {
    let text = match &*iv.value {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::SingleQuotedString(s) => s.clone(),
            sql::Value::Number(n, _) => n.clone(),
            _ => return Err(unsupported(format!("INTERVAL {}", iv.value))),
        },
        other => return Err(unsupported(format!("INTERVAL {other}"))),
    };
    if iv.last_field.is_some() {
        return Err(unsupported("INTERVAL … TO … (write '1 day 2 hours')"));
    }
    let unit_micros = |unit: &str| -> Result<f64> {
        let lower = unit.to_ascii_lowercase();
        let singular = match lower.strip_suffix('s') {
            Some(one) if lower.len() > 2 => one,
            _ => lower.as_str(),
        };
        Ok(match singular {
            "microsecond" | "us" => 1.0,
            "millisecond" | "ms" => 1e3,
            "second" | "sec" | "s" => 1e6,
            "minute" | "min" => 60e6,
            "hour" | "h" | "hr" => 3_600e6,
            "day" | "d" => 86_400e6,
            "week" | "w" => 604_800e6,
            "month" | "mon" | "year" | "y" | "yr" => {
                return Err(unsupported(
                    "INTERVAL in months or years (they have no fixed length: use days)",
                ));
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown INTERVAL unit {other} (microseconds to weeks)"
                )));
            }
        })
    };
    let bad = || Error::InvalidInput(format!("invalid INTERVAL '{text}'"));
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut total = 0f64;
    match (&iv.leading_field, words.as_slice()) {
        (Some(field), [n]) => {
            let n: f64 = n.parse().map_err(|_| bad())?;
            total = n * unit_micros(&field.to_string())?;
        }
        (None, pairs) if !pairs.is_empty() && pairs.len().is_multiple_of(2) => {
            for pair in pairs.chunks_exact(2) {
                let n: f64 = pair[0].parse().map_err(|_| bad())?;
                total += n * unit_micros(pair[1])?;
            }
        }
        _ => return Err(bad()),
    }
    if !total.is_finite() || total.abs() > 9.2e18 {
        return Err(bad());
    }
    Ok(total.round() as i64)
}

/// `SELECT * FROM name`: what `x IN name` (SQLite's shorthand) reads.
/// `ARRAY(query)`: the query's values in PostgreSQL's text form of an array (`{a,b}`;
/// `{}` for none), which is how ChronoDB shows arrays (it has no array type). A plain
/// one-column SELECT is aggregated in place (it may read the enclosing query's columns;
/// its elements come in the order its rows are read), any other query is read as a
/// derived table.
fn array_of(mut q: ast::Query) -> ast::Expr {
    if q.limit.is_none()
        && q.offset.is_none()
        && let ast::SetExpr::Select(s) = &mut q.body
        && let [ast::SelectItem::Expr { expr, .. }] = s.items.as_mut_slice()
        && !s.distinct
        && s.group_by.is_empty()
        && s.having.is_none()
    {
        let element = std::mem::replace(expr, ast::Expr::Literal(Value::Null));
        *expr = array_text(element);
        q.order_by.clear();
        return ast::Expr::Subquery(Box::new(q));
    }
    let element = ast::Expr::Column {
        qualifier: None,
        name: "_element".into(),
    };
    ast::Expr::Subquery(Box::new(select_from(
        ast::SelectItem::Expr {
            expr: array_text(element),
            name: "array".into(),
            aliased: true,
        },
        ast::TableFactor::Derived {
            query: Box::new(q),
            alias: Some(ast::TableAlias {
                name: "_array".into(),
                columns: vec!["_element".into()],
            }),
        },
    )))
}

/// `'{' || coalesce(group_concat(element, ','), '') || '}'`: the aggregate behind
/// [`array_of`].
fn array_text(element: ast::Expr) -> ast::Expr {
    let text = |s: &str| ast::Expr::Literal(Value::Text(s.into()));
    let concat = |l, r| ast::Expr::Binary {
        op: ast::BinaryOp::Concat,
        left: Box::new(l),
        right: Box::new(r),
    };
    let joined = call(
        "coalesce",
        vec![
            ast::FunctionArg::Expr(call(
                "group_concat",
                vec![
                    ast::FunctionArg::Expr(element),
                    ast::FunctionArg::Expr(text(",")),
                ],
            )),
            ast::FunctionArg::Expr(text("")),
        ],
    );
    concat(concat(text("{"), joined), text("}"))
}

fn select_star_from(name: String) -> ast::Query {
    select_from(
        ast::SelectItem::Wildcard,
        ast::TableFactor::Table {
            name,
            alias: None,
            time: None,
            as_of: None,
        },
    )
}

/// `SELECT item FROM relation`, as a query of its own.
fn select_from(item: ast::SelectItem, relation: ast::TableFactor) -> ast::Query {
    ast::Query {
        with: Vec::new(),
        recursive: false,
        body: ast::SetExpr::Select(Box::new(ast::Select {
            distinct: false,
            items: vec![item],
            from: vec![ast::FromItem {
                relation,
                joins: Vec::new(),
            }],
            selection: None,
            group_by: Vec::new(),
            having: None,
        })),
        order_by: Vec::new(),
        limit: None,
        offset: None,
    }
}

fn call(name: &str, args: Vec<ast::FunctionArg>) -> ast::Expr {
    ast::Expr::Function {
        name: name.into(),
        args,
        distinct: false,
    }
}

/// A literal: numbers are integers when they fit, else floats.
fn literal(v: &sql::Value) -> Result<ast::Expr> {
    Ok(ast::Expr::Literal(match v {
        sql::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(
                n.parse::<f64>()
                    .map_err(|_| Error::InvalidInput(format!("invalid number {n}")))?,
            ),
        },
        // `E'…'`: the tokenizer has already read its backslash escapes.
        sql::Value::SingleQuotedString(s)
        | sql::Value::DoubleQuotedString(s)
        | sql::Value::EscapedStringLiteral(s) => Value::Text(s.clone()),
        sql::Value::Boolean(b) => Value::Bool(*b),
        sql::Value::Null => Value::Null,
        sql::Value::HexStringLiteral(h) => Value::Blob(decode_hex(h)?),
        sql::Value::Placeholder(p) => {
            let n: usize = p
                .trim_start_matches('$')
                .parse()
                .map_err(|_| Error::Syntax(format!("unsupported parameter {p}")))?;
            return Ok(ast::Expr::Param(n));
        }
        other => return Err(unsupported(format!("literal {other}"))),
    }))
}

/// Decodes `x'…'`; works on bytes, so any character in the literal is an error, not a
/// slice through the middle of one.
fn decode_hex(h: &str) -> Result<Vec<u8>> {
    let bad = || Error::InvalidInput(format!("invalid hex literal x'{h}'"));
    let digit = |b: u8| (b as char).to_digit(16).ok_or_else(bad);
    let bytes = h.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(bad());
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// A column name for an unaliased select item, like SQLite's (the expression's text).
fn display_name(e: &sql::Expr) -> String {
    match e {
        sql::Expr::Identifier(i) => i.value.clone(),
        sql::Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        other => other.to_string(),
    }
}

// ----------------------------------------------------------------------------------------
// DDL
// ----------------------------------------------------------------------------------------

fn create_table(ct: &sql::CreateTable) -> Result<ast::CreateTable> {
    if ct.query.is_some() || ct.like.is_some() || ct.clone.is_some() {
        return Err(unsupported("CREATE TABLE … AS / LIKE / CLONE"));
    }
    let mut out = ast::CreateTable {
        name: object_name(&ct.name)?,
        if_not_exists: ct.if_not_exists,
        columns: ct.columns.iter().map(column).collect::<Result<_>>()?,
        primary_keys: Vec::new(),
        uniques: Vec::new(),
        foreign_keys: Vec::new(),
    };
    for tc in &ct.constraints {
        match tc {
            sql::TableConstraint::PrimaryKey(pk) => out.primary_keys.push(ident_list(&pk.columns)?),
            sql::TableConstraint::Unique(u) => out.uniques.push(ident_list(&u.columns)?),
            sql::TableConstraint::ForeignKey(fk) => {
                let table = object_name(&fk.foreign_table)?;
                for (i, c) in fk.columns.iter().enumerate() {
                    let referred = fk
                        .referred_columns
                        .get(i)
                        .map(|r| r.value.clone())
                        .unwrap_or_default();
                    out.foreign_keys
                        .push((c.value.clone(), table.clone(), referred));
                }
            }
            other => return Err(unsupported(format!("table constraint {other}"))),
        }
    }
    Ok(out)
}

fn create_index(ci: &sql::CreateIndex) -> Result<ast::CreateIndex> {
    if ci.predicate.is_some() || !ci.include.is_empty() {
        return Err(unsupported("partial or covering indexes"));
    }
    Ok(ast::CreateIndex {
        name: ci.name.as_ref().map(object_name).transpose()?,
        table: object_name(&ci.table_name)?,
        columns: ident_list(&ci.columns)?,
        unique: ci.unique,
        if_not_exists: ci.if_not_exists,
    })
}

fn add_columns(at: &sql::AlterTable) -> Result<ast::AddColumns> {
    let mut columns = Vec::with_capacity(at.operations.len());
    for op in &at.operations {
        let sql::AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } = op
        else {
            return Err(unsupported(format!("ALTER TABLE {op}")));
        };
        let col = column(column_def)?;
        if col.primary_key || col.unique || col.references.is_some() {
            return Err(unsupported(
                "ADD COLUMN … PRIMARY KEY / UNIQUE / REFERENCES",
            ));
        }
        columns.push((col, *if_not_exists));
    }
    Ok(ast::AddColumns {
        table: object_name(&at.name)?,
        if_exists: at.if_exists,
        columns,
    })
}

fn ident_list(cols: &[sql::IndexColumn]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            sql::Expr::Identifier(i) => Ok(i.value.clone()),
            other => Err(unsupported(format!("index on expression {other}"))),
        })
        .collect()
}

/// A column from its SQL definition.
/// The DEFAULT of a column whose values the database assigns (SERIAL, `GENERATED … AS
/// IDENTITY`): see `Func::UniqueId`.
const ASSIGNED_ID: &str = "unique_id()";

fn column(c: &sql::ColumnDef) -> Result<ast::ColumnSpec> {
    let type_name = c.data_type.to_string().to_ascii_uppercase();
    let serial = matches!(
        type_name.as_str(),
        "SERIAL" | "BIGSERIAL" | "SMALLSERIAL" | "SERIAL2" | "SERIAL4" | "SERIAL8"
    );
    let mut col = ast::ColumnSpec {
        name: c.name.value.clone(),
        data_type: if serial {
            DataType::Int
        } else {
            DataType::parse(&type_name)?
        },
        not_null: serial,
        default: serial.then(|| ASSIGNED_ID.to_string()),
        primary_key: false,
        unique: false,
        references: None,
    };
    for opt in &c.options {
        match &opt.option {
            // `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY`: assigned like SERIAL (a value
            // given in the INSERT is taken, as BY DEFAULT does).
            sql::ColumnOption::Generated {
                generation_expr: None,
                ..
            } => {
                col.not_null = true;
                col.default = Some(ASSIGNED_ID.to_string());
            }
            sql::ColumnOption::Null => {}
            sql::ColumnOption::NotNull => col.not_null = true,
            sql::ColumnOption::Default(e) => col.default = Some(e.to_string()),
            sql::ColumnOption::PrimaryKey(_) => col.primary_key = true,
            sql::ColumnOption::Unique(_) => col.unique = true,
            sql::ColumnOption::ForeignKey(fk) => {
                col.references = Some((
                    object_name(&fk.foreign_table)?,
                    fk.referred_columns
                        .first()
                        .map(|r| r.value.clone())
                        .unwrap_or_default(),
                ));
            }
            other => return Err(unsupported(format!("column option {other}"))),
        }
    }
    Ok(col)
}
