//! From sqlparser's AST to a [`Plan`]: names are resolved against the catalog (as of each
//! table's read time), parameters become [`Expr::Param`] slots and subqueries
//! [`Expr::Subquery`] nodes (both filled in at execution, so a plan can be kept and run
//! again; see [`Planner::is_reusable`]), filters are pushed into scans, scans
//! pick a primary-key or index access path, equi-joins become hash joins with the smaller
//! side built, and aggregates, HAVING, ORDER BY, DISTINCT and LIMIT are layered on top.
//!
//! The sqlparser AST is imported as `sql` and never leaves this module (and `session`,
//! which dispatches statements).

mod dml;

pub(crate) use dml::table_scope;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use chrono_storage::{TimeWindow, Transaction, Value};
use sqlparser::ast as sql;
use sqlparser::tokenizer::Location;

use crate::catalog::{self, TableDef, View};
use crate::error::{Error, Result};
use crate::expr::{CmpOp, Expr, Func, Subquery, SubqueryKind};
use crate::limits::StatementGuard;
use crate::optimizer::access_path::choose_access;
use crate::parse::timetravel::{Target, TimeClause, TimeLiteral, TimeSpec};
use crate::plan::{
    Access, AggCall, AggFunc, Column, JoinKind, Lookup, Node, Plan, ReadAt, SortKey,
};
use crate::stats::{CardinalityEstimator, StatsRegistry};
use crate::types::{ArithOp, DataType};

/// The columns visible to an expression.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// In row order.
    pub columns: Vec<Column>,
}

impl Scope {
    fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let q_ok = match qualifier {
                None => true,
                Some(q) => c
                    .qualifier
                    .as_deref()
                    .is_some_and(|cq| cq.eq_ignore_ascii_case(q)),
            };
            if q_ok && c.name.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(Error::InvalidInput(format!(
                        "ambiguous column name: {name}"
                    )));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// A common table expression in scope.
struct Cte<'a> {
    /// Its name, lower case.
    name: String,
    /// Column names given after the name, if any.
    columns: Vec<String>,
    /// Its query.
    query: &'a sql::Query,
    /// How many of the CTEs in scope before it its query may read (those defined earlier).
    visible: usize,
}

struct AggCtx {
    group: Vec<Expr>,
    aggs: Vec<AggCall>,
}

/// Builds plans for one statement.
pub struct Planner<'a> {
    /// The transaction the statement runs in.
    pub txn: &'a Transaction,
    /// Parameter values, `$1` first.
    pub params: &'a [Value],
    /// Time-travel clauses lifted from the text.
    pub clauses: &'a [TimeClause],
    /// Table statistics.
    pub stats: &'a StatsRegistry,
    /// The estimator in use.
    pub estimator: &'a dyn CardinalityEstimator,
    /// Whether time-travel clauses are allowed.
    pub time_travel: bool,
    /// The statement's budget (values computed while planning charge it).
    pub guard: &'a StatementGuard,
    /// False once the plan depends on the values of this execution (a parameter read while
    /// planning, as in `LIMIT ?`), or reads the past (time travel): such a plan is not kept.
    reusable: Rc<Cell<bool>>,
    /// Planning a subquery: the enclosing query's columns, which its expressions may read
    /// ([`Expr::Outer`]).
    outer: Option<Rc<Scope>>,
    /// Set when this subquery reads a column of the enclosing query.
    correlated: Rc<Cell<bool>>,
    /// Binding an aggregate query's select list, HAVING or ORDER BY, whose rows are groups.
    aggregate_query: bool,
    /// The common table expressions in scope, innermost last.
    ctes: Vec<Rc<Cte<'a>>>,
    /// The limits in force (stored DEFAULTs are parsed within them).
    pub limits: Arc<crate::limits::Limits>,
    /// Decoded table definitions, when the transaction sees the newest catalog (its
    /// generation).
    pub catalog_cache: Option<(&'a crate::plan_cache::CatalogCache, u64)>,
    agg: Option<AggCtx>,
    aliases: Vec<(String, &'a sql::Expr)>,
}

/// Lower-cased identifier text.
pub fn ident(i: &sql::Ident) -> String {
    i.value.clone()
}

/// The last part of a dotted name (`schema.table` → `table`).
pub fn object_name(n: &sql::ObjectName) -> Result<String> {
    match n.0.last() {
        Some(sql::ObjectNamePart::Identifier(i)) => Ok(i.value.clone()),
        _ => Err(Error::Unsupported(format!("name {n}"))),
    }
}

fn first_location(n: &sql::ObjectName) -> Option<Location> {
    match n.0.first() {
        Some(sql::ObjectNamePart::Identifier(i)) => Some(i.span.start),
        _ => None,
    }
}

/// Converts a time literal to microseconds since the epoch.
pub fn time_micros(lit: &TimeLiteral, params: &[Value]) -> Result<u64> {
    let bad = |what: &str| {
        Error::InvalidInput(format!(
            "invalid timestamp {what}: use Unix seconds (optionally fractional) or an ISO-8601 string"
        ))
    };
    let micros: i64 = match lit {
        TimeLiteral::Number(n) => seconds_to_micros(n).ok_or_else(|| bad(n))?,
        TimeLiteral::Text(s) => match chrono_storage::value::parse_timestamp(s) {
            Some(t) => t,
            None => seconds_to_micros(s.trim()).ok_or_else(|| bad(&format!("'{s}'")))?,
        },
        TimeLiteral::Param(i) => match params.get(i.wrapping_sub(1)) {
            Some(Value::Timestamp(t)) => *t,
            Some(Value::Int(s)) => s
                .checked_mul(1_000_000)
                .ok_or_else(|| bad(&s.to_string()))?,
            Some(Value::Float(f)) => (f * 1e6).round() as i64,
            Some(Value::Text(s)) => {
                return time_micros(&TimeLiteral::Text(s.clone()), params);
            }
            Some(v) => return Err(bad(&v.to_string())),
            None => {
                return Err(Error::InvalidInput(format!(
                    "parameter ${i} has no value ({} given)",
                    params.len()
                )));
            }
        },
    };
    if micros < 0 {
        return Err(bad("before 1970"));
    }
    Ok(micros as u64)
}

/// `"1635724800.25"` → 1_635_724_800_250_000, exactly (no float rounding).
fn seconds_to_micros(text: &str) -> Option<i64> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut f: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        if i < 6 {
            f = f * 10 + i64::from(b - b'0');
        }
    }
    for _ in frac.len()..6 {
        f *= 10;
    }
    let v = w.checked_mul(1_000_000)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

fn is_aggregate_name(name: &str) -> Option<AggFunc> {
    Some(match name.to_ascii_lowercase().as_str() {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "total" => AggFunc::Total,
        _ => return None,
    })
}

fn function_args(f: &sql::Function) -> Result<(Vec<&sql::FunctionArgExpr>, bool)> {
    match &f.args {
        sql::FunctionArguments::None => Ok((vec![], false)),
        sql::FunctionArguments::List(list) => {
            let distinct = matches!(
                list.duplicate_treatment,
                Some(sql::DuplicateTreatment::Distinct)
            );
            let mut out = Vec::new();
            for a in &list.args {
                match a {
                    sql::FunctionArg::Unnamed(e) => out.push(e),
                    other => return Err(Error::Unsupported(format!("named argument {other}"))),
                }
            }
            Ok((out, distinct))
        }
        sql::FunctionArguments::Subquery(_) => {
            Err(Error::Unsupported("subquery as function argument".into()))
        }
    }
}

/// If `e` is an aggregate call: (function, argument, distinct).
fn as_aggregate(e: &sql::Expr) -> Result<Option<(AggFunc, Option<&sql::Expr>, bool)>> {
    let sql::Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = object_name(&f.name)?;
    let Some(func) = is_aggregate_name(&name) else {
        return Ok(None);
    };
    let (args, distinct) = function_args(f)?;
    if matches!(func, AggFunc::Min | AggFunc::Max) && args.len() != 1 {
        return Ok(None); // scalar MIN/MAX of several arguments
    }
    if f.over.is_some() {
        return Err(Error::Unsupported("window functions".into()));
    }
    match args.as_slice() {
        [sql::FunctionArgExpr::Wildcard] if func == AggFunc::Count => {
            Ok(Some((AggFunc::CountStar, None, false)))
        }
        [] if func == AggFunc::Count => Ok(Some((AggFunc::CountStar, None, false))),
        [sql::FunctionArgExpr::Expr(a)] => Ok(Some((func, Some(a), distinct))),
        _ => Err(Error::InvalidInput(format!(
            "wrong number of arguments to function {name}()"
        ))),
    }
}

/// Whether an expression contains an aggregate call (not looking into subqueries).
#[recursive::recursive]
fn contains_aggregate(e: &sql::Expr) -> bool {
    if matches!(as_aggregate(e), Ok(Some(_))) {
        return true;
    }
    use sql::Expr as E;
    match e {
        E::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::IsTrue(expr)
        | E::IsFalse(expr)
        | E::Cast { expr, .. } => contains_aggregate(expr),
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::In { expr, target, .. } => {
            contains_aggregate(expr)
                || matches!(target, sql::InTarget::List(l) if l.iter().any(contains_aggregate))
        }
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            contains_aggregate(expr) || contains_aggregate(pattern)
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || conditions
                    .iter()
                    .any(|c| contains_aggregate(&c.condition) || contains_aggregate(&c.result))
                || else_result.as_deref().is_some_and(contains_aggregate)
        }
        E::Function(f) => match function_args(f) {
            Ok((args, _)) => args
                .iter()
                .any(|a| matches!(a, sql::FunctionArgExpr::Expr(x) if contains_aggregate(x))),
            Err(_) => false,
        },
        _ => false,
    }
}

impl<'a> Planner<'a> {
    /// A planner for one statement.
    pub fn new(
        txn: &'a Transaction,
        params: &'a [Value],
        clauses: &'a [TimeClause],
        stats: &'a StatsRegistry,
        estimator: &'a dyn CardinalityEstimator,
        guard: &'a StatementGuard,
    ) -> Self {
        Self {
            txn,
            params,
            clauses,
            stats,
            estimator,
            time_travel: true,
            guard,
            reusable: Rc::new(Cell::new(true)),
            outer: None,
            correlated: Rc::new(Cell::new(false)),
            aggregate_query: false,
            ctes: Vec::new(),
            limits: Arc::default(),
            catalog_cache: None,
            agg: None,
            aliases: Vec::new(),
        }
    }

    fn sub(&self) -> Planner<'a> {
        let mut p = Planner::new(
            self.txn,
            self.params,
            self.clauses,
            self.stats,
            self.estimator,
            self.guard,
        );
        p.time_travel = self.time_travel;
        p.reusable = self.reusable.clone();
        p.ctes = self.ctes.clone();
        p.limits = self.limits.clone();
        p.catalog_cache = self.catalog_cache;
        p
    }

    /// A planner for a part of the same query (a parenthesized query, a set operation's
    /// arm): it sees the same enclosing query, if any.
    fn nested(&self) -> Planner<'a> {
        let mut p = self.sub();
        p.outer = self.outer.clone();
        p.correlated = self.correlated.clone();
        p
    }

    /// True when the plans built so far can be run again with other parameter values:
    /// they read no parameter while planning and no past state.
    pub fn is_reusable(&self) -> bool {
        self.reusable.get()
    }

    /// The value of a bound expression now, with this execution's parameters and
    /// subqueries; what the plan is built from then depends on them, so it is not kept.
    fn value_now(&mut self, e: &Expr) -> Result<Value> {
        if e.needs_values() {
            self.reusable.set(false);
        }
        crate::execution::instantiate_expr(e, self.params, self.txn, self.stats, self.guard)?
            .eval(&[])
    }

    /// An expression with this execution's parameter values in place of its parameters,
    /// for estimates only (the plan keeps the parameters).
    fn peek(&self, e: &Expr) -> Expr {
        e.with_params(self.params).unwrap_or_else(|_| e.clone())
    }

    // ----------------------------------------------------------------------------------
    // Expressions
    // ----------------------------------------------------------------------------------

    /// Binds an expression against `scope`. Its depth is bounded by the parser's shape
    /// check (`limits.max_expression_depth`), and the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn bind(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        self.bind_inner(e, scope).map(Expr::fold)
    }

    fn bind_plain(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        let saved = self.agg.take();
        let r = self.bind(e, scope);
        self.agg = saved;
        r
    }

    fn bind_inner(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        use sql::Expr as E;
        if self.agg.is_some() {
            if let Some((func, arg, distinct)) = as_aggregate(e)? {
                let arg = match arg {
                    Some(a) => {
                        if contains_aggregate(a) {
                            return Err(Error::InvalidInput(format!(
                                "aggregate functions cannot be nested: {e}"
                            )));
                        }
                        Some(self.bind_plain(a, scope)?)
                    }
                    None => None,
                };
                return Ok(self.agg_column(AggCall {
                    func,
                    arg,
                    distinct,
                }));
            }
            if !contains_aggregate(e)
                && let Ok(plain) = self.bind_plain(e, scope)
            {
                if let Some(ctx) = &self.agg
                    && let Some(i) = ctx.group.iter().position(|g| *g == plain)
                {
                    return Ok(Expr::Column(i));
                }
                if plain.is_constant() {
                    return Ok(plain);
                }
                if matches!(plain, Expr::Column(_)) {
                    return Ok(self.agg_column(AggCall {
                        func: AggFunc::AnyValue,
                        arg: Some(plain),
                        distinct: false,
                    }));
                }
            }
        } else if let Some((_, _, _)) = as_aggregate(e)? {
            return Err(Error::InvalidInput(format!(
                "aggregate function not allowed here: {e}"
            )));
        }
        let b = |p: &mut Self, x: &'a sql::Expr| p.bind(x, scope).map(Box::new);
        Ok(match e {
            E::Identifier(id) => self.column(None, &id.value, scope)?,
            E::CompoundIdentifier(parts) => {
                let n = parts.len();
                if n < 2 {
                    return Err(Error::Unsupported(format!("identifier {e}")));
                }
                self.column(Some(&parts[n - 2].value), &parts[n - 1].value, scope)?
            }
            E::Value(v) => self.literal(&v.value)?,
            E::TypedString(ts) => {
                let text = match &ts.value.value {
                    sql::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let t = DataType::parse(&ts.data_type.to_string())?;
                Expr::Literal(t.coerce(Value::Text(text), "literal")?)
            }
            E::Nested(x) => self.bind(x, scope)?,
            E::UnaryOp { op, expr } => match op {
                sql::UnaryOperator::Not => Expr::Not(b(self, expr)?),
                sql::UnaryOperator::Minus => Expr::Neg(b(self, expr)?),
                sql::UnaryOperator::Plus => self.bind(expr, scope)?,
                other => return Err(Error::Unsupported(format!("operator {other}"))),
            },
            E::BinaryOp { left, op, right } => {
                use sql::BinaryOperator as B;
                let (l, r) = (b(self, left)?, b(self, right)?);
                match op {
                    B::Plus => Expr::Arith(ArithOp::Add, l, r),
                    B::Minus => Expr::Arith(ArithOp::Sub, l, r),
                    B::Multiply => Expr::Arith(ArithOp::Mul, l, r),
                    B::Divide => Expr::Arith(ArithOp::Div, l, r),
                    B::Modulo => Expr::Arith(ArithOp::Rem, l, r),
                    B::Eq => Expr::Cmp(CmpOp::Eq, l, r),
                    B::NotEq => Expr::Cmp(CmpOp::NotEq, l, r),
                    B::Lt => Expr::Cmp(CmpOp::Lt, l, r),
                    B::LtEq => Expr::Cmp(CmpOp::LtEq, l, r),
                    B::Gt => Expr::Cmp(CmpOp::Gt, l, r),
                    B::GtEq => Expr::Cmp(CmpOp::GtEq, l, r),
                    B::And => Expr::And(l, r),
                    B::Or => Expr::Or(l, r),
                    B::StringConcat => Expr::Concat(l, r),
                    other => return Err(Error::Unsupported(format!("operator {other}"))),
                }
            }
            E::IsNull(x) => Expr::IsNull(b(self, x)?, false),
            E::IsNotNull(x) => Expr::IsNull(b(self, x)?, true),
            E::IsTrue(x) => is_bool(b(self, x)?, true, true),
            E::IsFalse(x) => is_bool(b(self, x)?, false, true),
            E::IsNotTrue(x) => is_bool(b(self, x)?, true, false),
            E::IsNotFalse(x) => is_bool(b(self, x)?, false, false),
            E::IsDistinctFrom(x, y) => Expr::IsDistinct(b(self, x)?, b(self, y)?, false),
            E::IsNotDistinctFrom(x, y) => Expr::IsDistinct(b(self, x)?, b(self, y)?, true),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between(b(self, expr)?, b(self, low)?, b(self, high)?, *negated),
            E::In {
                expr,
                target,
                negated,
                ..
            } => {
                let x = b(self, expr)?;
                match target {
                    sql::InTarget::List(list) => {
                        let items = list
                            .iter()
                            .map(|i| self.bind(i, scope))
                            .collect::<Result<_>>()?;
                        Expr::InList(x, items, *negated)
                    }
                    sql::InTarget::Subquery(q) => self.subquery(
                        q,
                        SubqueryKind::In {
                            operand: x,
                            negated: *negated,
                        },
                        scope,
                    )?,
                    other => return Err(Error::Unsupported(format!("IN {other}"))),
                }
            }
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
                    return Err(Error::Unsupported("LIKE ANY".into()));
                }
                let esc = match escape_char.as_deref() {
                    None => None,
                    Some(sql::Expr::Value(v)) => match &v.value {
                        sql::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => {
                            return Err(Error::InvalidInput("ESCAPE expects one character".into()));
                        }
                    },
                    Some(_) => {
                        return Err(Error::InvalidInput("ESCAPE expects one character".into()));
                    }
                };
                Expr::Like(b(self, expr)?, b(self, pattern)?, *negated, esc)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| b(self, o)).transpose()?;
                let mut whens = Vec::with_capacity(conditions.len());
                for c in conditions {
                    whens.push((
                        self.bind(&c.condition, scope)?,
                        self.bind(&c.result, scope)?,
                    ));
                }
                let otherwise = else_result.as_deref().map(|x| b(self, x)).transpose()?;
                Expr::Case(operand, whens, otherwise)
            }
            E::Cast {
                expr, data_type, ..
            } => Expr::Cast(b(self, expr)?, DataType::parse(&data_type.to_string())?),
            E::Function(f) => self.bind_function(f, scope)?,
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.bind(expr, scope)?];
                args.push(match substring_from {
                    Some(x) => self.bind(x, scope)?,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(x) = substring_for {
                    args.push(self.bind(x, scope)?);
                }
                Expr::Func(Func::Substr, args)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                if trim_what.is_some() {
                    return Err(Error::Unsupported("TRIM(… FROM …)".into()));
                }
                let f = match trim_where {
                    Some(sql::TrimWhereField::Leading) => Func::LTrim,
                    Some(sql::TrimWhereField::Trailing) => Func::RTrim,
                    _ => Func::Trim,
                };
                Expr::Func(f, vec![self.bind(expr, scope)?])
            }
            E::Ceil { expr, .. } => Expr::Func(Func::Ceil, vec![self.bind(expr, scope)?]),
            E::Floor { expr, .. } => Expr::Func(Func::Floor, vec![self.bind(expr, scope)?]),
            E::Subquery(q) => self.subquery(q, SubqueryKind::Scalar, scope)?,
            E::Exists { subquery, negated } => {
                self.subquery(subquery, SubqueryKind::Exists { negated: *negated }, scope)?
            }
            other => return Err(Error::Unsupported(format!("expression {other}"))),
        })
    }

    fn agg_column(&mut self, call: AggCall) -> Expr {
        match self.agg.as_mut() {
            Some(ctx) => {
                let idx = match ctx.aggs.iter().position(|a| *a == call) {
                    Some(i) => i,
                    None => {
                        ctx.aggs.push(call);
                        ctx.aggs.len() - 1
                    }
                };
                Expr::Column(ctx.group.len() + idx)
            }
            None => Expr::Literal(Value::Null),
        }
    }

    fn column(&mut self, qualifier: Option<&str>, name: &str, scope: &Scope) -> Result<Expr> {
        if let Some(i) = scope.resolve(qualifier, name)? {
            return Ok(Expr::Column(i));
        }
        if qualifier.is_none()
            && let Some(pos) = self
                .aliases
                .iter()
                .position(|(a, _)| a.eq_ignore_ascii_case(name))
        {
            // A select-list alias (HAVING order_count > 5). Remove it while binding its
            // expression so that an alias naming itself cannot recurse.
            let (alias, ast) = self.aliases.remove(pos);
            let r = self.bind(ast, scope);
            self.aliases.insert(pos, (alias, ast));
            return r;
        }
        if let Some(outer) = &self.outer
            && let Some(i) = outer.resolve(qualifier, name)?
        {
            self.correlated.set(true);
            return Ok(Expr::Outer(i));
        }
        Err(Error::NotFound(match qualifier {
            Some(q) => format!("no such column: {q}.{name}"),
            None => format!("no such column: {name}"),
        }))
    }

    fn literal(&self, v: &sql::Value) -> Result<Expr> {
        Ok(Expr::Literal(match v {
            sql::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(
                    n.parse::<f64>()
                        .map_err(|_| Error::InvalidInput(format!("invalid number {n}")))?,
                ),
            },
            sql::Value::SingleQuotedString(s) | sql::Value::DoubleQuotedString(s) => {
                Value::Text(s.clone())
            }
            sql::Value::Boolean(b) => Value::Bool(*b),
            sql::Value::Null => Value::Null,
            sql::Value::HexStringLiteral(h) => Value::Blob(decode_hex(h)?),
            sql::Value::Placeholder(p) => {
                let n: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| Error::Syntax(format!("unsupported parameter {p}")))?;
                if n == 0 || n > self.params.len() {
                    return Err(Error::InvalidInput(format!(
                        "parameter ${n} has no value ({} given)",
                        self.params.len()
                    )));
                }
                return Ok(Expr::Param(n - 1));
            }
            other => return Err(Error::Unsupported(format!("literal {other}"))),
        }))
    }

    fn bind_function(&mut self, f: &'a sql::Function, scope: &Scope) -> Result<Expr> {
        let name = object_name(&f.name)?;
        let (args, distinct) = function_args(f)?;
        if distinct {
            return Err(Error::InvalidInput(format!(
                "DISTINCT is only allowed in aggregates, not {name}()"
            )));
        }
        let func = Func::by_name(&name, args.len())
            .ok_or_else(|| Error::NotFound(format!("no such function: {name}")))?;
        func.check_arity(&name, args.len())?;
        let mut bound = Vec::with_capacity(args.len());
        for a in args {
            match a {
                sql::FunctionArgExpr::Expr(x) => bound.push(self.bind(x, scope)?),
                _ => return Err(Error::InvalidInput(format!("{name}(*) is not valid"))),
            }
        }
        Ok(Expr::Func(func, bound))
    }

    /// Plans a subquery as an expression node; it runs when the statement executes. Names
    /// it cannot resolve itself are looked up in `scope`, the enclosing query's columns:
    /// then it is correlated and runs once per row.
    fn subquery(&mut self, q: &'a sql::Query, kind: SubqueryKind, scope: &Scope) -> Result<Expr> {
        let mut sub = self.sub();
        sub.outer = Some(Rc::new(scope.clone()));
        let plan = sub.plan_query(q)?;
        let correlated = sub.correlated.get();
        if correlated && self.aggregate_query {
            return Err(Error::Unsupported(
                "a correlated subquery in the select list, HAVING or ORDER BY of an aggregate \
                 query (use it in WHERE, or join)"
                    .into(),
            ));
        }
        if !matches!(kind, SubqueryKind::Exists { .. }) && plan.columns.len() != 1 {
            return Err(Error::InvalidInput(format!(
                "subquery returns {} columns, expected 1",
                plan.columns.len()
            )));
        }
        Ok(Expr::Subquery(Box::new(Subquery {
            plan: Arc::new(plan),
            kind,
            correlated,
        })))
    }

    // ----------------------------------------------------------------------------------
    // Queries
    // ----------------------------------------------------------------------------------

    /// Plans a query (SELECT, VALUES, with ORDER BY / LIMIT). Queries nest (subqueries,
    /// derived tables, WITH queries, set operations) as deep as the limits let them, each
    /// level several large frames: the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn plan_query(&mut self, q: &'a sql::Query) -> Result<Plan> {
        let in_scope = self.ctes.len();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(Error::Unsupported("WITH RECURSIVE".into()));
            }
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.to_ascii_lowercase();
                if self.ctes[in_scope..].iter().any(|c| c.name == name) {
                    return Err(Error::InvalidInput(format!("WITH names {name} twice")));
                }
                let visible = self.ctes.len();
                self.ctes.push(Rc::new(Cte {
                    name,
                    columns: cte
                        .alias
                        .columns
                        .iter()
                        .map(|c| c.name.value.clone())
                        .collect(),
                    query: &cte.query,
                    visible,
                }));
            }
        }
        let plan = self.plan_query_body(q);
        self.ctes.truncate(in_scope);
        plan
    }

    fn plan_query_body(&mut self, q: &'a sql::Query) -> Result<Plan> {
        let (limit, offset) = self.limit_offset(q)?;
        let order_by: Vec<&'a sql::OrderByExpr> = match &q.order_by {
            None => vec![],
            Some(ob) => match &ob.kind {
                sql::OrderByKind::Expressions(v) => v.iter().collect(),
                sql::OrderByKind::All(_) => return Err(Error::Unsupported("ORDER BY ALL".into())),
            },
        };
        match &*q.body {
            sql::SetExpr::Select(s) => self.plan_select(s, &order_by, limit, offset),
            sql::SetExpr::Values(v) => {
                let plan = self.plan_values(v)?;
                self.finish(plan, &order_by, limit, offset, &[], None)
            }
            sql::SetExpr::Query(inner) => {
                let plan = self.nested().plan_query(inner)?;
                self.finish(plan, &order_by, limit, offset, &[], None)
            }
            sql::SetExpr::SetOperation { .. } => {
                let plan = self.plan_set_operation(&q.body)?;
                self.finish(plan, &order_by, limit, offset, &[], None)
            }
            other => Err(Error::Unsupported(format!("query {other}"))),
        }
    }

    /// One arm of a set operation.
    fn plan_set_arm(&mut self, body: &'a sql::SetExpr) -> Result<Plan> {
        match body {
            sql::SetExpr::Select(s) => self.plan_select(s, &[], None, 0),
            sql::SetExpr::Values(v) => self.plan_values(v),
            sql::SetExpr::Query(q) => self.nested().plan_query(q),
            sql::SetExpr::SetOperation { .. } => self.plan_set_operation(body),
            other => Err(Error::Unsupported(format!("query {other}"))),
        }
    }

    /// `a UNION [ALL] b …`, `a INTERSECT b`, `a EXCEPT b`. A chain of UNIONs (sqlparser
    /// nests it to the left) becomes one n-ary union, walked without recursion; a UNION
    /// without ALL makes every row before it distinct. Each arm counts toward
    /// `limits.max_relations`.
    #[recursive::recursive]
    fn plan_set_operation(&mut self, body: &'a sql::SetExpr) -> Result<Plan> {
        let sql::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } = body
        else {
            return self.plan_set_arm(body);
        };
        let all = |q: &sql::SetQuantifier| -> Result<bool> {
            match q {
                sql::SetQuantifier::All => Ok(true),
                sql::SetQuantifier::Distinct | sql::SetQuantifier::None => Ok(false),
                other => Err(Error::Unsupported(format!("{op} {other}"))),
            }
        };
        if !matches!(op, sql::SetOperator::Union) {
            if all(set_quantifier)? {
                return Err(Error::Unsupported(format!("{op} ALL")));
            }
            self.guard.count_relation()?;
            let l = self.plan_set_arm(left)?;
            let r = self.plan_set_arm(right)?;
            check_arm_width(&l, &r, op)?;
            let anti = !matches!(op, sql::SetOperator::Intersect);
            let est = if anti {
                l.est_rows
            } else {
                l.est_rows.min(r.est_rows)
            };
            let columns = arm_columns(&l);
            return Ok(Plan {
                node: Node::SetCompare {
                    left: Box::new(l),
                    right: Box::new(r),
                    anti,
                },
                est_rows: est,
                estimator: "heuristic",
                columns,
            });
        }
        // Walk the left-deep chain of UNIONs: arms[0] op[0] arms[1] op[1] arms[2] …
        let mut arms: Vec<&'a sql::SetExpr> = Vec::new();
        let mut distinct_after: Vec<bool> = Vec::new();
        let mut cur = body;
        while let sql::SetExpr::SetOperation {
            op: sql::SetOperator::Union,
            set_quantifier,
            left,
            right,
        } = cur
        {
            arms.push(right);
            distinct_after.push(!all(set_quantifier)?);
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
                check_arm_width(first, &p, &sql::SetOperator::Union)?;
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
            Plan {
                est_rows: inputs.iter().map(|p| p.est_rows).sum(),
                estimator: "heuristic",
                columns: columns.clone(),
                node: Node::Union { inputs },
            }
        };
        // Every arm up to the last UNION without ALL is made distinct together.
        let Some(last_distinct) = distinct_after.iter().rposition(|&d| d) else {
            return Ok(union(plans));
        };
        let rest = plans.split_off(last_distinct + 2);
        let distinct_part = union(plans);
        let distinct = Plan {
            est_rows: distinct_part.est_rows,
            estimator: "heuristic",
            columns: columns.clone(),
            node: Node::Distinct {
                input: Box::new(distinct_part),
            },
        };
        let mut inputs = vec![distinct];
        inputs.extend(rest);
        Ok(union(inputs))
    }

    fn limit_offset(&mut self, q: &'a sql::Query) -> Result<(Option<usize>, usize)> {
        let count = |p: &mut Self, e: &'a sql::Expr, what: &str| -> Result<usize> {
            let bound = p.bind(e, &Scope::default())?;
            match p.value_now(&bound)? {
                Value::Int(n) if n >= 0 => Ok(n as usize),
                Value::Int(_) => Ok(if what == "LIMIT" { usize::MAX } else { 0 }),
                v => Err(Error::InvalidInput(format!(
                    "{what} must be an integer, got {v}"
                ))),
            }
        };
        Ok(match &q.limit_clause {
            None => (None, 0),
            Some(sql::LimitClause::LimitOffset { limit, offset, .. }) => {
                let l = limit
                    .as_ref()
                    .map(|e| count(self, e, "LIMIT"))
                    .transpose()?;
                let o = offset
                    .as_ref()
                    .map(|o| count(self, &o.value, "OFFSET"))
                    .transpose()?;
                (l, o.unwrap_or(0))
            }
            Some(sql::LimitClause::OffsetCommaLimit { offset, limit }) => (
                Some(count(self, limit, "LIMIT")?),
                count(self, offset, "OFFSET")?,
            ),
        })
    }

    fn plan_values(&mut self, v: &'a sql::Values) -> Result<Plan> {
        let mut rows = Vec::with_capacity(v.rows.len());
        let mut width = None;
        for r in &v.rows {
            let row: Vec<Expr> = r
                .content
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

    fn plan_select(
        &mut self,
        s: &'a sql::Select,
        order_by: &[&'a sql::OrderByExpr],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Plan> {
        if s.top.is_some() || s.into.is_some() || !s.lateral_views.is_empty() || s.qualify.is_some()
        {
            return Err(Error::Unsupported("this SELECT form".into()));
        }
        let (input, scope) = self.plan_from(&s.from, s.selection.as_ref())?;

        // Select-list aliases, for HAVING and ORDER BY.
        let mut aliases = Vec::new();
        for item in &s.projection {
            if let sql::SelectItem::ExprWithAlias { expr, alias } = item {
                aliases.push((alias.value.clone(), expr));
            }
        }
        let group_asts: Vec<&'a sql::Expr> = match &s.group_by {
            sql::GroupByExpr::Expressions(v, mods) if mods.is_empty() => v.iter().collect(),
            _ => return Err(Error::Unsupported("GROUP BY ALL / modifiers".into())),
        };
        let aggregated = !group_asts.is_empty()
            || s.having.is_some()
            || s.projection.iter().any(|i| match i {
                sql::SelectItem::UnnamedExpr(e)
                | sql::SelectItem::ExprWithAlias { expr: e, .. } => contains_aggregate(e),
                _ => false,
            })
            || order_by.iter().any(|o| contains_aggregate(&o.expr));

        let mut plan = input;
        self.aggregate_query = aggregated;
        if aggregated {
            let mut group = Vec::with_capacity(group_asts.len());
            for g in &group_asts {
                // GROUP BY may name a select-list position or alias.
                let e = match g {
                    sql::Expr::Value(v) if matches!(v.value, sql::Value::Number(..)) => {
                        let n = self.position(&v.value, s.projection.len())?;
                        match &s.projection[n] {
                            sql::SelectItem::UnnamedExpr(e)
                            | sql::SelectItem::ExprWithAlias { expr: e, .. } => {
                                self.bind(e, &scope)?
                            }
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

        // Projection.
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in &s.projection {
            match item {
                sql::SelectItem::Wildcard(_) => {
                    if aggregated {
                        return Err(Error::InvalidInput(
                            "SELECT * with GROUP BY or aggregates".into(),
                        ));
                    }
                    for (i, c) in scope.columns.iter().enumerate() {
                        exprs.push(Expr::Column(i));
                        columns.push(Column {
                            qualifier: None,
                            name: c.name.clone(),
                        });
                    }
                }
                sql::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        sql::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n)?,
                        sql::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let mut any = false;
                    for (i, c) in scope.columns.iter().enumerate() {
                        if c.qualifier
                            .as_deref()
                            .is_some_and(|cq| cq.eq_ignore_ascii_case(&q))
                        {
                            exprs.push(Expr::Column(i));
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
                sql::SelectItem::UnnamedExpr(e) => {
                    exprs.push(self.bind(e, &scope)?);
                    columns.push(Column {
                        qualifier: None,
                        name: display_name(e),
                    });
                }
                sql::SelectItem::ExprWithAlias { expr, alias } => {
                    exprs.push(self.bind(expr, &scope)?);
                    columns.push(Column {
                        qualifier: None,
                        name: alias.value.clone(),
                    });
                }
                sql::SelectItem::ExprWithAliases { .. } => {
                    return Err(Error::Unsupported("multiple aliases".into()));
                }
            }
        }

        let having = match &s.having {
            Some(h) => {
                self.aliases = aliases.clone();
                let r = self.bind(h, &scope);
                self.aliases.clear();
                Some(r?)
            }
            None => None,
        };

        // ORDER BY keys: a position, an output name, or an expression over the input.
        let mut keys = Vec::new();
        let mut extra = 0usize;
        for o in order_by {
            let idx = match &o.expr {
                sql::Expr::Value(v) if matches!(v.value, sql::Value::Number(..)) => {
                    Some(self.position(&v.value, columns.len())?)
                }
                sql::Expr::Identifier(id)
                    if scope.resolve(None, &id.value).ok().flatten().is_none() || aggregated =>
                {
                    columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(&id.value))
                }
                _ => None,
            };
            let idx = match idx {
                Some(i) => i,
                None => {
                    let e = self.bind(&o.expr, &scope)?;
                    match exprs.iter().position(|x| *x == e) {
                        Some(i) => i,
                        None => {
                            if s.distinct.is_some() {
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
            let desc = matches!(o.options.sort, Some(sql::OrderBySort::Desc));
            keys.push(SortKey {
                expr: Expr::Column(idx),
                desc,
                nulls_first: o.options.nulls_first.unwrap_or(!desc),
            });
        }

        if let Some(ctx) = self.agg.take() {
            let est = if ctx.group.is_empty() {
                1.0
            } else {
                (plan.est_rows / 10.0).max(1.0)
            };
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
            plan = Plan {
                node: Node::Aggregate {
                    input: Box::new(plan),
                    group: ctx.group,
                    aggs: ctx.aggs,
                },
                est_rows: est,
                estimator: "heuristic",
                columns: agg_cols,
            };
            if let Some(h) = having {
                plan = filter(plan, h);
            }
        }
        let est = plan.est_rows;
        plan = Plan {
            node: Node::Project {
                input: Box::new(plan),
                exprs,
            },
            est_rows: est,
            estimator: "exact",
            columns: columns.clone(),
        };
        if s.distinct.is_some() {
            if matches!(s.distinct, Some(sql::Distinct::On(_))) {
                return Err(Error::Unsupported("DISTINCT ON".into()));
            }
            let est = plan.est_rows;
            plan = Plan {
                node: Node::Distinct {
                    input: Box::new(plan),
                },
                est_rows: est,
                estimator: "heuristic",
                columns: columns.clone(),
            };
        }
        let visible = columns.len() - extra;
        self.aggregate_query = false;
        self.finish(plan, &[], limit, offset, &keys, Some(visible))
    }

    fn position(&self, v: &sql::Value, n: usize) -> Result<usize> {
        match v {
            sql::Value::Number(s, _) => match s.parse::<usize>() {
                Ok(k) if k >= 1 && k <= n => Ok(k - 1),
                _ => Err(Error::InvalidInput(format!(
                    "position {s} is not in the select list (1..{n})"
                ))),
            },
            _ => Err(Error::InvalidInput("expected a position".into())),
        }
    }

    /// Adds ORDER BY (as given, or bound here over `plan`'s columns), LIMIT/OFFSET and the
    /// final projection that drops hidden sort columns.
    fn finish(
        &mut self,
        mut plan: Plan,
        order_by: &[&'a sql::OrderByExpr],
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
                    sql::Expr::Value(v) if matches!(v.value, sql::Value::Number(..)) => {
                        Expr::Column(self.position(&v.value, scope.columns.len())?)
                    }
                    e => self.bind(e, &scope)?,
                };
                let desc = matches!(o.options.sort, Some(sql::OrderBySort::Desc));
                keys.push(SortKey {
                    expr,
                    desc,
                    nulls_first: o.options.nulls_first.unwrap_or(!desc),
                });
            }
        }
        let columns = plan.columns.clone();
        let est = plan.est_rows;
        if !keys.is_empty() {
            plan = match limit {
                Some(l) => Plan {
                    node: Node::TopK {
                        input: Box::new(plan),
                        keys,
                        limit: l,
                        offset,
                    },
                    est_rows: est.min(l as f64),
                    estimator: "exact",
                    columns: columns.clone(),
                },
                None => Plan {
                    node: Node::Sort {
                        input: Box::new(plan),
                        keys,
                    },
                    est_rows: est,
                    estimator: "exact",
                    columns: columns.clone(),
                },
            };
            if limit.is_none() && offset > 0 {
                plan = Plan {
                    node: Node::Limit {
                        input: Box::new(plan),
                        limit: None,
                        offset,
                    },
                    est_rows: (est - offset as f64).max(0.0),
                    estimator: "exact",
                    columns: columns.clone(),
                };
            }
        } else if limit.is_some() || offset > 0 {
            plan = Plan {
                node: Node::Limit {
                    input: Box::new(plan),
                    limit,
                    offset,
                },
                est_rows: limit.map(|l| est.min(l as f64)).unwrap_or(est),
                estimator: "exact",
                columns: columns.clone(),
            };
        }
        if let Some(v) = visible
            && v < columns.len()
        {
            let est = plan.est_rows;
            plan = Plan {
                node: Node::Project {
                    input: Box::new(plan),
                    exprs: (0..v).map(Expr::Column).collect(),
                },
                est_rows: est,
                estimator: "exact",
                columns: columns[..v].to_vec(),
            };
        }
        Ok(plan)
    }

    // ----------------------------------------------------------------------------------
    // FROM, joins, pushdown and access paths
    // ----------------------------------------------------------------------------------

    /// The read time of a table reference: its own clause, else its FROM list's.
    fn read_at_for(
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
    fn cte(&self, name: &sql::ObjectName) -> Option<Rc<Cte<'a>>> {
        let [part] = name.0.as_slice() else {
            return None;
        };
        let name = part.as_ident()?.value.to_ascii_lowercase();
        self.ctes.iter().rev().find(|c| c.name == name).cloned()
    }

    /// A reference to a common table expression: its query, planned where it is used (it
    /// sees the CTEs defined before it), its columns renamed as its definition says.
    fn cte_plan(&mut self, cte: &Cte<'a>, label: &str) -> Result<Plan> {
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

    fn relation(
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
    fn plan_from(
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
    fn column_distinct(&self, plan: &Plan, col: usize) -> Option<f64> {
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
    fn equi_join_estimate(
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
    fn join_order(
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
    fn index_join(
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
    fn push_filter(&self, mut plan: Plan, conjuncts: Vec<Expr>) -> Plan {
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

struct IndexJoinChoice {
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
fn as_of(ts: u64) -> Result<ReadAt> {
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

/// The output columns of a set operation: the first arm's names.
fn arm_columns(first: &Plan) -> Vec<Column> {
    first
        .columns
        .iter()
        .map(|c| Column {
            qualifier: None,
            name: c.name.clone(),
        })
        .collect()
}

fn check_arm_width(first: &Plan, other: &Plan, op: &sql::SetOperator) -> Result<()> {
    if first.columns.len() != other.columns.len() {
        return Err(Error::InvalidInput(format!(
            "the queries of a {op} have {} and {} columns",
            first.columns.len(),
            other.columns.len()
        )));
    }
    Ok(())
}

/// `x IS [NOT] TRUE/FALSE`: `x IS [NOT] DISTINCT FROM` the boolean, never NULL.
fn is_bool(x: Box<Expr>, value: bool, is: bool) -> Expr {
    Expr::IsDistinct(x, Box::new(Expr::Literal(Value::Bool(value))), is)
}

fn value_time_literal(v: Value) -> Result<TimeLiteral> {
    Ok(match v {
        Value::Int(i) => TimeLiteral::Number(i.to_string()),
        Value::Float(f) => TimeLiteral::Number(format!("{f:.6}")),
        Value::Text(s) => TimeLiteral::Text(s),
        Value::Timestamp(t) => TimeLiteral::Text(chrono_storage::value::format_timestamp_micros(t)),
        other => return Err(Error::InvalidInput(format!("invalid timestamp {other}"))),
    })
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

/// Wraps `plan` in a filter.
pub fn filter(plan: Plan, predicate: Expr) -> Plan {
    let est = plan.est_rows * crate::stats::selectivity(None, &predicate).clamp(0.0, 1.0);
    let columns = plan.columns.clone();
    Plan {
        node: Node::Filter {
            input: Box::new(plan),
            predicate,
        },
        est_rows: est,
        estimator: "heuristic",
        columns,
    }
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
