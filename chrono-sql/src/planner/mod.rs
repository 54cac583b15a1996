//! From ChronoDB's [`crate::ast`] to a [`Plan`]: names are resolved against the catalog (as of each
//! table's read time), parameters become [`Expr::Param`] slots and subqueries
//! [`Expr::Subquery`] nodes (both filled in at execution, so a plan can be kept and run
//! again; see [`Planner::is_reusable`]).
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the planner's state, identifiers, time literals |
//! | `bind.rs` | expressions: names, literals, operators, functions, aggregates, subqueries |
//! | `select.rs` | queries: SELECT, VALUES, set operations, WITH, ORDER BY / LIMIT |
//! | `from.rs` | the FROM list: tables, views, CTEs, derived tables, joins |
//! | `dml.rs` | INSERT, UPDATE, DELETE |
//! | `ddl.rs` | CREATE / ALTER / DROP, ANALYZE |

mod bind;
mod ddl;
mod dml;
mod from;
mod select;

pub(crate) use dml::table_scope;
pub(crate) use from::as_of_param;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use chrono_storage::{TimeWindow, Timestamp, Transaction, Value};

use crate::ast;
use crate::catalog::{self, Snapshot, TableDef};
use crate::cost::{CardinalityEstimator, StatsRegistry};
use crate::error::{Error, Result};
use crate::expr::{CmpOp, Expr, Func, Subquery, SubqueryKind};
use crate::limits::StatementGuard;
use crate::parse::timetravel::{TimeLiteral, TimeSpec};
use crate::plan::{
    Access, AggCall, AggFunc, Column, Frame, FrameBound, JoinKind, Node, Plan, ReadAt, SortKey,
    WindowCall, WindowFunc,
};
use crate::plan_cache::PastRead;
use crate::types::ArithOp;

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
    query: &'a ast::Query,
    /// How many of the CTEs in scope before it its query may read (those defined earlier).
    visible: usize,
    /// Defined by `WITH RECURSIVE`: its query may read itself.
    recursive: bool,
}

/// A recursive WITH query's name inside its own recursive part: the rows of the round
/// before.
#[derive(Clone)]
struct WorkRef {
    /// The WITH query's name, lower case.
    name: String,
    /// The work table's id.
    id: usize,
    /// Its columns (unqualified).
    columns: Vec<Column>,
    /// Set when the recursive part reads it.
    used: Rc<Cell<bool>>,
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
    /// The past times the plans built so far read (`AS OF`), for keeping them.
    past: Rc<std::cell::RefCell<Vec<PastRead>>>,
    /// Planning a subquery: the enclosing query's columns, which its expressions may read
    /// ([`Expr::Outer`]).
    outer: Option<Rc<Scope>>,
    /// Set when this subquery reads a column of the enclosing query.
    correlated: Rc<Cell<bool>>,
    /// Binding an aggregate query's select list, HAVING or ORDER BY, whose rows are groups.
    aggregate_query: bool,
    /// The common table expressions in scope, innermost last.
    ctes: Vec<Rc<Cte<'a>>>,
    /// Recursive WITH queries whose recursive part is being planned.
    work_tables: Vec<WorkRef>,
    /// Planning a view's query: the read time of the view's reference, which its tables
    /// take when they have no time-travel clause of their own (read, kept).
    default_read: Option<(ReadAt, ReadAt)>,
    /// The views being expanded, outermost first (a view that reads itself is an error).
    views_open: Vec<String>,
    /// The limits in force (stored DEFAULTs are parsed within them).
    pub limits: Arc<crate::limits::Limits>,
    /// Decoded table definitions, when the transaction sees the newest catalog (its
    /// generation).
    pub catalog_cache: Option<(&'a crate::plan_cache::CatalogCache, u64)>,
    agg: Option<AggCtx>,
    /// Binding a select list or its ORDER BY: the window function calls found so far
    /// (`None` where window functions are not allowed).
    windows: Option<Vec<crate::plan::WindowCall>>,
    aliases: Vec<(String, &'a ast::Expr)>,
}

/// Converts a time literal to microseconds since the epoch ([`Timestamp`] reads the
/// text; a parameter may also be a TIMESTAMP value or a number of seconds).
pub fn time_micros(lit: &TimeLiteral, params: &[Value]) -> Result<u64> {
    let t = match lit {
        TimeLiteral::Number(text) | TimeLiteral::Text(text) => Timestamp::parse(text)?,
        TimeLiteral::Expr(_) => {
            return Err(Error::Unsupported(
                "a time expression here (give a time, or a parameter)".into(),
            ));
        }
        TimeLiteral::Param(i) => match params.get(i.wrapping_sub(1)) {
            Some(v) => value_timestamp(v)?,
            None => {
                return Err(Error::InvalidInput(format!(
                    "parameter ${i} has no value ({} given)",
                    params.len()
                )));
            }
        },
    };
    Ok(t.as_micros())
}

/// A value as a point in time: a TIMESTAMP, a whole number (Unix seconds, or microseconds
/// past `MAX_SECONDS`), fractional seconds, or text [`Timestamp`] reads.
fn value_timestamp(v: &Value) -> Result<Timestamp> {
    Ok(match v {
        Value::Timestamp(t) => Timestamp::from_signed_micros(*t)?,
        Value::Int(n) => Timestamp::from_number(*n)?,
        Value::Float(f) => Timestamp::from_seconds_f64(*f)?,
        Value::Text(s) => Timestamp::parse(s)?,
        other => Timestamp::parse(&other.to_string())?,
    })
}

impl<'a> Planner<'a> {
    /// A planner for one statement.
    pub fn new(
        txn: &'a Transaction,
        params: &'a [Value],
        stats: &'a StatsRegistry,
        estimator: &'a dyn CardinalityEstimator,
        guard: &'a StatementGuard,
    ) -> Self {
        Self {
            txn,
            params,
            stats,
            estimator,
            time_travel: true,
            guard,
            reusable: Rc::new(Cell::new(true)),
            past: Rc::default(),
            outer: None,
            correlated: Rc::new(Cell::new(false)),
            aggregate_query: false,
            ctes: Vec::new(),
            work_tables: Vec::new(),
            default_read: None,
            views_open: Vec::new(),
            limits: Arc::default(),
            catalog_cache: None,
            agg: None,
            windows: None,
            aliases: Vec::new(),
        }
    }

    fn sub(&self) -> Planner<'a> {
        let mut p = self.detached();
        p.ctes = self.ctes.clone();
        p.work_tables = self.work_tables.clone();
        p
    }

    /// A planner for a query of its own (a subquery's, or a view's stored query, whose text
    /// may live shorter than the statement's): the same transaction, parameters, budget and
    /// shared state, no WITH queries or work tables in scope.
    fn detached<'b>(&self) -> Planner<'b>
    where
        'a: 'b,
    {
        let mut p = Planner::new(
            self.txn,
            self.params,
            self.stats,
            self.estimator,
            self.guard,
        );
        p.time_travel = self.time_travel;
        p.reusable = self.reusable.clone();
        p.past = self.past.clone();
        p.limits = self.limits.clone();
        p.catalog_cache = self.catalog_cache;
        p.default_read = self.default_read;
        p.views_open = self.views_open.clone();
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

    /// The past times the plans built so far read (`AS OF`): a kept plan serves only
    /// executions whose times all read the current table definitions.
    pub fn past_reads(&self) -> Vec<PastRead> {
        self.past.borrow().clone()
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
}
