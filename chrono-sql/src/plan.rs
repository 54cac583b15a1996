//! The plan: a tree of operators with bound expressions and estimated row counts. The
//! planner builds it, `EXPLAIN` prints it, the executor runs it.

mod schema;
pub mod types;

pub use schema::{NewColumn, Root, SchemaChange};

use std::fmt::Write as _;
use std::sync::Arc;

use chrono_storage::{TimeWindow, Timestamp, Value};

use crate::catalog::{IndexDef, TableDef};
use crate::error::Result;
use crate::expr::{Expr, SubqueryKind};

/// A column of a plan's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The table name or alias it comes from (lower case), if any.
    pub qualifier: Option<String>,
    /// Its name.
    pub name: String,
}

/// The expressions of an access path, borrowed shared or (with `mut`) mutably.
macro_rules! access_exprs {
    ($a:expr, $iter:ident $(, $m:tt)?) => {
        match $a {
            Access::Full => vec![],
            Access::Key(k) => k.$iter().collect(),
            Access::Keys(ks) => ks.$iter().flatten().collect(),
            Access::IndexIn(_, vs) => vs.$iter().collect(),
            Access::KeyRange(b) | Access::Index(_, b) => b
                .prefix
                .$iter()
                .chain(b.lower.$iter().map(|(e, _)| e))
                .chain(b.upper.$iter().map(|(e, _)| e))
                .collect(),
        }
    };
}

/// A node's inputs, borrowed shared or (with `mut`) mutably: one body for
/// [`Plan::children`] and [`Plan::children_mut`].
macro_rules! plan_children {
    ($p:expr, $iter:ident $(, $m:tt)?) => {
        match &$($m)? $p.node {
            Node::Scan { .. } | Node::Values { .. } | Node::WorkTable { .. } => vec![],
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::Window { input, .. }
            | Node::Sort { input, .. }
            | Node::TopK { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input }
            | Node::IndexJoin { left: input, .. }
            | Node::Insert { source: input, .. }
            | Node::Update { scan: input, .. }
            | Node::Delete { scan: input, .. } => vec![&$($m)? **input],
            Node::HashJoin { left, right, .. }
            | Node::NestedLoop { left, right, .. }
            | Node::SetCompare { left, right, .. }
            | Node::RecursiveCte {
                anchor: left,
                step: right,
                ..
            } => vec![&$($m)? **left, &$($m)? **right],
            Node::Union { inputs } | Node::Join { inputs, .. } => inputs.$iter().collect(),
        }
    };
}

/// A node's own expressions, borrowed shared or (with `mut`) mutably: one body for
/// [`Plan::exprs`] and [`Plan::exprs_mut`].
macro_rules! plan_exprs {
    ($p:expr, $iter:ident, $as:ident, $access:ident $(, $m:tt)?) => {
        match &$($m)? $p.node {
            Node::Scan { access, filter, .. } => {
                let mut v = access.$access();
                v.extend(filter.$iter());
                v
            }
            Node::Values { rows } => rows.$iter().flatten().collect(),
            Node::Filter { predicate, .. } => vec![predicate],
            Node::Project { exprs, .. } => exprs.$iter().collect(),
            Node::HashJoin {
                left_keys,
                right_keys,
                residual,
                ..
            } => left_keys
                .$iter()
                .chain(right_keys.$iter())
                .chain(residual.$iter())
                .collect(),
            Node::IndexJoin {
                left_keys,
                right_filter,
                residual,
                ..
            } => left_keys
                .$iter()
                .chain(right_filter.$iter())
                .chain(residual.$iter())
                .collect(),
            Node::NestedLoop { predicate, .. } => predicate.$iter().collect(),
            Node::Aggregate { group, aggs, .. } => group
                .$iter()
                .chain(aggs.$iter().filter_map(|a| a.arg.$as()))
                .collect(),
            Node::Sort { keys, .. } | Node::TopK { keys, .. } => {
                keys.$iter().map(|k| &$($m)? k.expr).collect()
            }
            Node::Window { calls, .. } => calls.$iter().flat_map(|c| c.$access()).collect(),
            Node::Limit { .. }
            | Node::RecursiveCte { .. }
            | Node::WorkTable { .. }
            | Node::Distinct { .. }
            | Node::Union { .. }
            | Node::SetCompare { .. }
            => vec![],
            Node::Insert {
                defaults,
                conflict,
                returning,
                ..
            } => defaults
                .$iter()
                .chain(conflict.$iter().flat_map(|c| c.$access()))
                .chain(returning.$iter())
                .collect(),
            Node::Update {
                sets, returning, ..
            } => sets
                .$iter()
                .map(|(_, e)| e)
                .chain(returning.$iter())
                .collect(),
            Node::Delete { returning, .. } => returning.$iter().collect(),
            Node::Join { on, at, after, .. } => on
                .$iter()
                .chain(at.$iter())
                .chain(after.$iter())
                .flatten()
                .collect(),
        }
    };
}

/// Which state of a table a scan reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadAt {
    /// The transaction's snapshot, with its own writes.
    Current,
    /// The committed state as of a timestamp (microseconds).
    AsOf(u64),
    /// The committed state as of the time parameter `$n` (1-based) gives: only in a kept
    /// plan, which the executor turns into [`ReadAt::AsOf`] with each execution's value
    /// ([`ReadAt::bind`]), so the plan serves every time asked about.
    AsOfParam(usize),
    /// One row per version alive in the window, with `_system_from` and `_system_to`.
    Versions(TimeWindow),
}

impl ReadAt {
    /// This execution's read: `AS OF $n` becomes the time the parameter gives, checked as
    /// the planner checks a time it is given (not after now).
    pub fn bind(self, params: &[Value]) -> Result<ReadAt> {
        match self {
            ReadAt::AsOfParam(i) => Ok(ReadAt::AsOf(crate::planner::as_of_param(i, params)?)),
            other => Ok(other),
        }
    }

    /// The time of the one state this reads (`None`: the current state, or versions over a
    /// window), with this execution's parameters — what its estimates are for.
    pub fn time(&self, params: &[Value]) -> Option<u64> {
        match self {
            ReadAt::AsOf(t) => Some(*t),
            ReadAt::AsOfParam(i) => crate::planner::as_of_param(*i, params).ok(),
            ReadAt::Current | ReadAt::Versions(_) => None,
        }
    }
}

/// How a scan finds its rows. The key values are expressions (literals, parameters,
/// subqueries), turned into key bytes by [`crate::table`] when the scan starts, so a plan
/// can be run again with other parameter values.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every row.
    Full,
    /// One primary key: a value per key column, in key order.
    Key(Vec<Expr>),
    /// Several primary keys (`pk IN (…)`, `pk = a OR pk = b`), each a value per key column:
    /// read one by one in key order, each once.
    Keys(Vec<Vec<Expr>>),
    /// A range of primary keys.
    KeyRange(KeyBounds),
    /// Several values of a secondary index's first column (`c IN (…)`, `c = a OR c = b`):
    /// each value's entries read in turn, values in key order, each once.
    IndexIn(IndexDef, Vec<Expr>),
    /// A range of a secondary index.
    Index(IndexDef, KeyBounds),
}

/// Typed bounds over the leading columns of a key: equal values for a prefix of the key
/// columns, then an optional range on the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyBounds {
    /// Values of the first key columns.
    pub prefix: Vec<Expr>,
    /// Lower bound on the next key column: (value, inclusive).
    pub lower: Option<(Expr, bool)>,
    /// Upper bound on the next key column: (value, inclusive).
    pub upper: Option<(Expr, bool)>,
}

impl KeyBounds {
    /// True when the bounds are equalities only.
    pub fn is_prefix(&self) -> bool {
        self.lower.is_none() && self.upper.is_none()
    }

    fn try_map(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<KeyBounds> {
        let mut bound = |b: &Option<(Expr, bool)>| -> Result<Option<(Expr, bool)>> {
            b.as_ref().map(|(e, inc)| Ok((f(e)?, *inc))).transpose()
        };
        let lower = bound(&self.lower)?;
        let upper = bound(&self.upper)?;
        Ok(KeyBounds {
            prefix: self.prefix.iter().map(&mut *f).collect::<Result<_>>()?,
            lower,
            upper,
        })
    }
}

impl Access {
    /// The expressions the access path reads.
    fn exprs(&self) -> Vec<&Expr> {
        access_exprs!(self, iter)
    }

    fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        access_exprs!(self, iter_mut, mut)
    }

    /// The access path with this execution's parameter values in place of its parameters;
    /// itself, borrowed, when it has none.
    pub fn bind(&self, params: &[Value]) -> Result<std::borrow::Cow<'_, Access>> {
        if self.exprs().iter().any(|e| e.has_params()) {
            Ok(std::borrow::Cow::Owned(
                self.try_map(&mut |e| e.bound(params))?,
            ))
        } else {
            Ok(std::borrow::Cow::Borrowed(self))
        }
    }

    fn try_map(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<Access> {
        Ok(match self {
            Access::Full => Access::Full,
            Access::Key(k) => Access::Key(k.iter().map(&mut *f).collect::<Result<_>>()?),
            Access::Keys(ks) => Access::Keys(
                ks.iter()
                    .map(|k| k.iter().map(&mut *f).collect::<Result<_>>())
                    .collect::<Result<_>>()?,
            ),
            Access::KeyRange(b) => Access::KeyRange(b.try_map(f)?),
            Access::Index(ix, b) => Access::Index(ix.clone(), b.try_map(f)?),
            Access::IndexIn(ix, vs) => {
                Access::IndexIn(ix.clone(), vs.iter().map(&mut *f).collect::<Result<_>>()?)
            }
        })
    }
}

/// How an index nested-loop join finds the right rows for a left row.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// By the whole primary key.
    PrimaryKey,
    /// By a prefix of a secondary index's columns.
    Index(IndexDef),
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER JOIN (and CROSS JOIN, with no condition).
    Inner,
    /// LEFT \[OUTER\] JOIN.
    Left,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `COUNT(*)`
    CountStar,
    /// `COUNT(x)`
    Count,
    /// `SUM(x)`
    Sum,
    /// `AVG(x)`
    Avg,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
    /// `TOTAL(x)`: SUM as a float, 0.0 for no rows.
    Total,
    /// A column that is neither grouped nor aggregated (SQLite's "bare column"): the value
    /// from one row of the group.
    AnyValue,
    /// `GROUP_CONCAT(x [, separator])` (also `STRING_AGG`): the non-NULL values as text,
    /// in input order, joined by the separator (`,` by default).
    GroupConcat,
}

/// One aggregate computed per group.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument (`None` for COUNT(*)).
    pub arg: Option<Expr>,
    /// `DISTINCT`.
    pub distinct: bool,
    /// `GROUP_CONCAT`'s separator, when given.
    pub separator: Option<Value>,
}

/// A window function.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowFunc {
    /// `ROW_NUMBER()`
    RowNumber,
    /// `RANK()`
    Rank,
    /// `DENSE_RANK()`
    DenseRank,
    /// `PERCENT_RANK()`
    PercentRank,
    /// `CUME_DIST()`
    CumeDist,
    /// `NTILE(n)`
    Ntile,
    /// `LAG(x [, offset [, default]])`
    Lag,
    /// `LEAD(x [, offset [, default]])`
    Lead,
    /// `FIRST_VALUE(x)`
    FirstValue,
    /// `LAST_VALUE(x)`
    LastValue,
    /// `NTH_VALUE(x, n)`
    NthValue,
    /// An aggregate over the frame (`SUM(x) OVER …`).
    Aggregate(AggCall),
}

/// One end of a window frame, its offsets evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameBound {
    /// The partition's first row.
    UnboundedPreceding,
    /// `n` rows (ROWS) or `n` in the ORDER BY value (RANGE) before the current row.
    Preceding(f64),
    /// The current row (RANGE: and its peers).
    CurrentRow,
    /// `n` after it.
    Following(f64),
    /// The partition's last row.
    UnboundedFollowing,
}

/// A window frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// RANGE rather than ROWS.
    pub range: bool,
    /// Start.
    pub start: FrameBound,
    /// End.
    pub end: FrameBound,
}

impl Frame {
    /// The frame a window without one has: the whole partition without ORDER BY, else from
    /// its start to the current row and its peers.
    pub fn default_for(ordered: bool) -> Frame {
        Frame {
            range: true,
            start: FrameBound::UnboundedPreceding,
            end: if ordered {
                FrameBound::CurrentRow
            } else {
                FrameBound::UnboundedFollowing
            },
        }
    }
}

/// One window function call with its window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCall {
    /// The function.
    pub func: WindowFunc,
    /// Its arguments (for an aggregate: in `func`), over the input row.
    pub args: Vec<Expr>,
    /// `PARTITION BY`, over the input row.
    pub partition_by: Vec<Expr>,
    /// `ORDER BY` within the partition, over the input row.
    pub order_by: Vec<SortKey>,
    /// The frame.
    pub frame: Frame,
}

impl WindowCall {
    /// Its expressions, borrowed.
    pub fn exprs(&self) -> Vec<&Expr> {
        let agg = match &self.func {
            WindowFunc::Aggregate(a) => a.arg.as_ref(),
            _ => None,
        };
        self.args
            .iter()
            .chain(agg)
            .chain(&self.partition_by)
            .chain(self.order_by.iter().map(|k| &k.expr))
            .collect()
    }

    /// Its expressions, borrowed mutably.
    pub fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        let agg = match &mut self.func {
            WindowFunc::Aggregate(a) => a.arg.as_mut(),
            _ => None,
        };
        self.args
            .iter_mut()
            .chain(agg)
            .chain(self.partition_by.iter_mut())
            .chain(self.order_by.iter_mut().map(|k| &mut k.expr))
            .collect()
    }

    /// The same, with `f` applied to each expression.
    pub fn map(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<WindowCall> {
        let mut out = self.clone();
        for e in out.exprs_mut() {
            *e = f(e)?;
        }
        Ok(out)
    }

    /// How EXPLAIN shows it, over the input's columns.
    pub fn describe(&self, columns: &[Column]) -> String {
        let name = match &self.func {
            WindowFunc::Aggregate(a) => format!("{:?}", a.func).to_lowercase(),
            other => format!("{other:?}").to_lowercase(),
        };
        let mut args: Vec<String> = self.args.iter().map(|e| show_expr(e, columns)).collect();
        if let WindowFunc::Aggregate(a) = &self.func {
            args.extend(a.arg.iter().map(|e| show_expr(e, columns)));
        }
        let mut s = format!("{name}({}) over (", args.join(", "));
        if !self.partition_by.is_empty() {
            let p: Vec<String> = self
                .partition_by
                .iter()
                .map(|e| show_expr(e, columns))
                .collect();
            let _ = write!(s, "partition by {}", p.join(", "));
        }
        if !self.order_by.is_empty() {
            let o: Vec<String> = self
                .order_by
                .iter()
                .map(|k| {
                    format!(
                        "{}{}",
                        show_expr(&k.expr, columns),
                        if k.desc { " desc" } else { "" }
                    )
                })
                .collect();
            if !self.partition_by.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "order by {}", o.join(", "));
        }
        s.push(')');
        s
    }
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// What to sort by.
    pub expr: Expr,
    /// Descending.
    pub desc: bool,
    /// NULLs first (default: first for ASC, last for DESC, as SQLite).
    pub nulls_first: bool,
}

/// A plan node with its estimate and output columns.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The operator.
    pub node: Node,
    /// Estimated output rows.
    pub est_rows: f64,
    /// Which estimator produced `est_rows`.
    pub estimator: &'static str,
    /// Output columns.
    pub columns: Vec<Column>,
}

/// The operators.
#[derive(Debug, Clone)]
pub enum Node {
    /// Reads a table.
    Scan {
        /// The table (as of the read time).
        table: Arc<TableDef>,
        /// Its name or alias in the query.
        label: String,
        /// Which state.
        read_at: ReadAt,
        /// How.
        access: Access,
        /// Conditions checked on each row.
        filter: Option<Expr>,
        /// The columns its consumers read, when that is not all of them: worked out last by
        /// the optimizer (`optimizer::columns`), for scans of stored ranges only. The other
        /// columns of its rows are NULL, never decoded.
        reads: Option<Arc<[bool]>>,
    },
    /// Literal rows.
    Values {
        /// Rows of constant expressions.
        rows: Vec<Vec<Expr>>,
    },
    /// Keeps rows whose predicate is TRUE.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Condition.
        predicate: Expr,
    },
    /// Computes expressions per row.
    Project {
        /// Input.
        input: Box<Plan>,
        /// One per output column.
        exprs: Vec<Expr>,
    },
    /// The FROM list as written, before the optimizer decides how to join it: the
    /// relations side by side (its row is their columns, in FROM order), each joined to
    /// those before it. `predicate_pushdown` places the conditions, `join_order` picks the
    /// order and `join_method` turns it into hash, index nested-loop and nested-loop joins;
    /// it never reaches execution.
    Join {
        /// The relations, in FROM order.
        inputs: Vec<Plan>,
        /// Per relation: how it joins those before it (the first's is INNER).
        kinds: Vec<JoinKind>,
        /// Per relation: the conjuncts of its ON clause (over the whole FROM row), as
        /// written; emptied by `predicate_pushdown`.
        on: Vec<Vec<Expr>>,
        /// Per relation: conditions checked when it is joined (placed by
        /// `predicate_pushdown`; each reads only relations up to it in FROM order).
        at: Vec<Vec<Expr>>,
        /// Per relation: conditions checked right after it is joined (WHERE conditions on
        /// a relation a LEFT JOIN makes nullable).
        after: Vec<Vec<Expr>>,
        /// The order to join in, chosen by `join_order` (empty: FROM order).
        order: Vec<usize>,
    },
    /// Equi-join through a hash table built on one side.
    HashJoin {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Key expressions over the left row.
        left_keys: Vec<Expr>,
        /// Key expressions over the right row.
        right_keys: Vec<Expr>,
        /// INNER or LEFT.
        kind: JoinKind,
        /// Further conditions over the joined row.
        residual: Option<Expr>,
        /// Build the hash table on the left input (inner joins whose left side is smaller).
        build_left: bool,
    },
    /// For each left row, looks the matching right rows up by primary key or index.
    IndexJoin {
        /// Left input.
        left: Box<Plan>,
        /// The right table.
        table: Arc<TableDef>,
        /// Its name or alias.
        label: String,
        /// Which state of it.
        read_at: ReadAt,
        /// Primary key or index.
        lookup: Lookup,
        /// Over the left row, one per looked-up key column, in key order.
        left_keys: Vec<Expr>,
        /// Conditions on the right row alone.
        right_filter: Option<Expr>,
        /// INNER or LEFT.
        kind: JoinKind,
        /// Further conditions over the joined row.
        residual: Option<Expr>,
    },
    /// Joins every pair of rows that satisfies the predicate.
    NestedLoop {
        /// Left input.
        left: Box<Plan>,
        /// Right input (materialized).
        right: Box<Plan>,
        /// INNER or LEFT.
        kind: JoinKind,
        /// Condition over the joined row.
        predicate: Option<Expr>,
    },
    /// Hash aggregation; output is group values then aggregate values.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// GROUP BY expressions.
        group: Vec<Expr>,
        /// Aggregates.
        aggs: Vec<AggCall>,
    },
    /// `WITH RECURSIVE`: the anchor's rows, then the step's run again and again on the rows
    /// the round before made (read through a [`Node::WorkTable`]) until a round makes none.
    RecursiveCte {
        /// The part that does not read itself.
        anchor: Box<Plan>,
        /// The part that does.
        step: Box<Plan>,
        /// UNION ALL (else UNION: a row already made is not made again).
        all: bool,
        /// Which work table the step reads.
        work: usize,
        /// The query's LIMIT: the rounds stop once it has this many rows.
        limit: Option<usize>,
    },
    /// The rows the last round of a recursive query made.
    WorkTable {
        /// Which.
        work: usize,
    },
    /// Window functions: the input's rows, each with one more column per call (what the
    /// call gives for that row within its partition and frame).
    Window {
        /// Input.
        input: Box<Plan>,
        /// The calls.
        calls: Vec<WindowCall>,
    },
    /// Full sort.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<SortKey>,
    },
    /// ORDER BY … LIMIT: keeps only the best `limit + offset` rows while reading.
    TopK {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<SortKey>,
        /// LIMIT.
        limit: usize,
        /// OFFSET.
        offset: usize,
    },
    /// LIMIT / OFFSET.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// LIMIT.
        limit: Option<usize>,
        /// OFFSET.
        offset: usize,
    },
    /// Removes duplicate rows.
    Distinct {
        /// Input.
        input: Box<Plan>,
    },
    /// INTERSECT (`anti` false) or EXCEPT (`anti` true): the distinct rows of the left
    /// input that are (not) among the right input's rows.
    SetCompare {
        /// Left input.
        left: Box<Plan>,
        /// Right input (held as a hash set).
        right: Box<Plan>,
        /// EXCEPT rather than INTERSECT.
        anti: bool,
    },
    /// The rows of each input in turn (UNION ALL; UNION adds a Distinct above).
    Union {
        /// The inputs, of equal width.
        inputs: Vec<Plan>,
    },
    /// INSERT: each row of the source into the table.
    Insert {
        /// The table.
        table: Arc<TableDef>,
        /// The columns the source's values go to, in order.
        targets: Vec<usize>,
        /// Per table column: its DEFAULT (NULL for the targets), evaluated per row.
        defaults: Vec<Expr>,
        /// The rows.
        source: Box<Plan>,
        /// What a row colliding with an existing one does (`None`: the statement fails).
        conflict: Option<Conflict>,
        /// RETURNING, over the row written (empty: no rows are given back).
        returning: Vec<Expr>,
    },
    /// UPDATE: new values for the rows the scan finds.
    Update {
        /// The table.
        table: Arc<TableDef>,
        /// A scan of the table with the WHERE clause.
        scan: Box<Plan>,
        /// (column, new value over the old row).
        sets: Vec<(usize, Expr)>,
        /// RETURNING, over the new row.
        returning: Vec<Expr>,
    },
    /// DELETE: the rows the scan finds.
    Delete {
        /// The table.
        table: Arc<TableDef>,
        /// A scan of the table with the WHERE clause.
        scan: Box<Plan>,
        /// RETURNING, over the deleted row.
        returning: Vec<Expr>,
    },
}

/// What an INSERT does with a row that collides with an existing one.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The columns of the primary key or UNIQUE index whose collisions are handled; empty
    /// for every one. A collision on another still fails the statement.
    pub arbiter: Vec<usize>,
    /// What happens.
    pub action: ConflictAction,
}

/// See [`Conflict`].
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictAction {
    /// The row is left out.
    Nothing,
    /// The existing row is updated. Both expressions read the existing row's columns, then
    /// the proposed row's (`excluded.*`).
    Update {
        /// (column, new value).
        sets: Vec<(usize, Expr)>,
        /// Only when this holds.
        selection: Option<Expr>,
    },
    /// The rows it collides with are deleted, then it is inserted.
    Replace,
}

impl Conflict {
    /// Its expressions, borrowed.
    pub fn exprs(&self) -> Vec<&Expr> {
        match &self.action {
            ConflictAction::Update { sets, selection } => {
                sets.iter().map(|(_, e)| e).chain(selection).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Its expressions, borrowed mutably.
    pub fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        match &mut self.action {
            ConflictAction::Update { sets, selection } => sets
                .iter_mut()
                .map(|(_, e)| e)
                .chain(selection.as_mut())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The same, with `f` applied to each expression.
    pub fn map(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<Conflict> {
        Ok(Conflict {
            arbiter: self.arbiter.clone(),
            action: match &self.action {
                ConflictAction::Update { sets, selection } => ConflictAction::Update {
                    sets: sets
                        .iter()
                        .map(|(i, e)| Ok((*i, f(e)?)))
                        .collect::<Result<_>>()?,
                    selection: selection.as_ref().map(&mut *f).transpose()?,
                },
                other => other.clone(),
            },
        })
    }
}

impl Plan {
    /// A node computed from its inputs, with the estimate [`Plan::derive_estimate`] gives.
    pub fn derived(node: Node, estimator: &'static str, columns: Vec<Column>) -> Plan {
        let mut plan = Plan {
            node,
            est_rows: 0.0,
            estimator,
            columns,
        };
        plan.derive_estimate();
        plan
    }

    /// `plan` with a filter above it.
    pub fn filter(plan: Plan, predicate: Expr) -> Plan {
        let columns = plan.columns.clone();
        Plan::derived(
            Node::Filter {
                input: Box::new(plan),
                predicate,
            },
            "heuristic",
            columns,
        )
    }

    /// Replaces the plan in place by `f` of it (to put a node above it, or take one away).
    pub fn wrap(&mut self, f: impl FnOnce(Plan) -> Plan) {
        let placeholder = Plan {
            node: Node::Values { rows: Vec::new() },
            est_rows: 0.0,
            estimator: "exact",
            columns: Vec::new(),
        };
        let taken = std::mem::replace(self, placeholder);
        *self = f(taken);
    }

    /// The table column this plan's output column `col` is, followed through filters,
    /// sorts, limits, DISTINCT, projections of plain columns and joins (side by side before
    /// the optimizer chooses a method, left then right after); `None` for a computed column.
    pub fn column_source(&self, col: usize) -> Option<(&crate::catalog::TableDef, usize)> {
        let (input, c): (&Plan, usize) = match &self.node {
            Node::Scan { table, .. } => {
                return (col < table.columns.len()).then_some((&**table, col));
            }
            Node::Filter { input, .. }
            | Node::Sort { input, .. }
            | Node::TopK { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => (input, col),
            Node::Project { input, exprs } => match exprs.get(col)? {
                Expr::Column(c) => (input, *c),
                _ => return None,
            },
            Node::Join { inputs, .. } => {
                let mut start = 0;
                let mut found = None;
                for input in inputs {
                    let width = input.columns.len();
                    if col < start + width {
                        found = Some((input, col - start));
                        break;
                    }
                    start += width;
                }
                found?
            }
            Node::HashJoin { left, right, .. } | Node::NestedLoop { left, right, .. } => {
                let lw = left.columns.len();
                if col < lw {
                    (&**left, col)
                } else {
                    (&**right, col - lw)
                }
            }
            Node::IndexJoin { left, table, .. } => {
                let lw = left.columns.len();
                if col < lw {
                    (&**left, col)
                } else {
                    return (col - lw < table.columns.len()).then_some((&**table, col - lw));
                }
            }
            _ => return None,
        };
        input.column_source(c)
    }

    /// Sets the estimate of a node whose rows follow from its inputs' estimates (filters,
    /// projections, aggregates, sorts, limits, set operations, writes); leaves scans,
    /// literal rows and joins as they are. The optimizer calls it again above a join whose
    /// estimate it has just made.
    pub fn derive_estimate(&mut self) {
        let est = match &self.node {
            Node::Filter { input, predicate } => {
                input.est_rows * crate::cost::selectivity(None, predicate).clamp(0.0, 1.0)
            }
            Node::Project { input, .. }
            | Node::Distinct { input }
            | Node::Window { input, .. }
            | Node::Sort { input, .. }
            | Node::Insert { source: input, .. }
            | Node::Update { scan: input, .. }
            | Node::Delete { scan: input, .. } => input.est_rows,
            Node::Aggregate { input, group, .. } => {
                if group.is_empty() {
                    1.0
                } else if self.estimator == "distinct" {
                    // Groups counted from the columns' distinct values when planned: at
                    // most the rows that reach the aggregate now.
                    self.est_rows.min(input.est_rows.max(1.0))
                } else {
                    (input.est_rows / 10.0).max(1.0)
                }
            }
            Node::TopK { input, limit, .. } => input.est_rows.min(*limit as f64),
            Node::Limit {
                input,
                limit,
                offset,
            } => match limit {
                Some(l) => input.est_rows.min(*l as f64),
                None => (input.est_rows - *offset as f64).max(0.0),
            },
            Node::Union { inputs } => inputs.iter().map(|p| p.est_rows).sum(),
            // Before the optimizer decides how to join: every combination.
            Node::Join { inputs, .. } => inputs.iter().map(|p| p.est_rows).product(),
            Node::SetCompare { left, right, anti } => {
                if *anti {
                    left.est_rows
                } else {
                    left.est_rows.min(right.est_rows)
                }
            }
            // Rounds are not known before it runs: ten of the anchor's size, as a guess.
            Node::RecursiveCte { anchor, limit, .. } => {
                let guess = (anchor.est_rows * 10.0).max(1.0);
                limit.map_or(guess, |l| guess.min(l as f64))
            }
            Node::Scan { .. }
            | Node::Values { .. }
            | Node::WorkTable { .. }
            | Node::HashJoin { .. }
            | Node::IndexJoin { .. }
            | Node::NestedLoop { .. } => return,
        };
        self.est_rows = est;
    }

    /// The node's inputs.
    pub fn children(&self) -> Vec<&Plan> {
        plan_children!(self, iter)
    }

    /// The node's inputs, to rewrite in place.
    pub fn children_mut(&mut self) -> Vec<&mut Plan> {
        plan_children!(self, iter_mut, mut)
    }

    /// The expressions of this node (not of its inputs), to rewrite in place.
    pub fn exprs_mut(&mut self) -> Vec<&mut Expr> {
        plan_exprs!(self, iter_mut, as_mut, exprs_mut, mut)
    }

    /// One line describing the node (no children).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        match &self.node {
            Node::Scan {
                table,
                label,
                read_at,
                access,
                filter,
                reads,
            } => {
                let how = match access {
                    Access::Full => "Full scan".to_string(),
                    Access::Key(_) => "Primary key lookup".to_string(),
                    Access::Keys(ks) => format!("Primary key lookups ({} keys)", ks.len()),
                    Access::KeyRange(_) => "Primary key range scan".to_string(),
                    Access::Index(ix, b) if b.is_prefix() => format!("Index lookup {}", ix.name),
                    Access::Index(ix, _) => format!("Index range scan {}", ix.name),
                    Access::IndexIn(ix, vs) => {
                        format!("Index lookups {} ({} values)", ix.name, vs.len())
                    }
                };
                let _ = write!(s, "{how} {}", table.name);
                if !label.eq_ignore_ascii_case(&table.name) {
                    let _ = write!(s, " AS {label}");
                }
                match read_at {
                    ReadAt::Current => {}
                    ReadAt::AsOf(ts) => {
                        let _ = write!(s, " AS OF {}", Timestamp::from_micros(*ts));
                    }
                    ReadAt::AsOfParam(i) => {
                        let _ = write!(s, " AS OF ${i}");
                    }
                    ReadAt::Versions(w) => {
                        let _ = match w {
                            TimeWindow::All => write!(s, " FOR SYSTEM_TIME ALL"),
                            TimeWindow::Between(a, b) => write!(
                                s,
                                " FOR SYSTEM_TIME BETWEEN {} AND {}",
                                Timestamp::from_micros(*a),
                                Timestamp::from_micros(*b)
                            ),
                            TimeWindow::FromTo(a, b) => write!(
                                s,
                                " FOR SYSTEM_TIME FROM {} TO {}",
                                Timestamp::from_micros(*a),
                                Timestamp::from_micros(*b)
                            ),
                        };
                    }
                }
                if let Some(f) = filter {
                    let _ = write!(s, " filter: {}", show_expr(f, &self.columns));
                }
                // A versions read decodes whole versions (its `reads` only says whether
                // `_principal` is looked up): nothing to show.
                if let Some(reads) = reads
                    && !matches!(read_at, ReadAt::Versions(_))
                {
                    let names: Vec<String> = (0..self.columns.len())
                        .filter(|&i| reads.get(i).copied().unwrap_or(true))
                        .map(|i| show_expr(&Expr::Column(i), &self.columns))
                        .collect();
                    let _ = write!(s, " reads: {}", names.join(", "));
                }
            }
            Node::Values { rows } => {
                let _ = write!(s, "Values ({} rows)", rows.len());
            }
            Node::Filter { input, predicate } => {
                let _ = write!(s, "Filter {}", show_expr(predicate, &input.columns));
            }
            Node::Project { input, exprs } => {
                let cols: Vec<String> =
                    exprs.iter().map(|e| show_expr(e, &input.columns)).collect();
                let _ = write!(s, "Project {}", cols.join(", "));
            }
            Node::HashJoin {
                left,
                right,
                left_keys,
                right_keys,
                kind,
                residual,
                build_left,
            } => {
                let keys: Vec<String> = left_keys
                    .iter()
                    .zip(right_keys)
                    .map(|(l, r)| {
                        format!(
                            "{} = {}",
                            show_expr(l, &left.columns),
                            show_expr(r, &right.columns)
                        )
                    })
                    .collect();
                let _ = write!(
                    s,
                    "Hash join ({}) on {} build: {}",
                    if *kind == JoinKind::Left {
                        "left"
                    } else {
                        "inner"
                    },
                    keys.join(" AND "),
                    if *build_left { "left" } else { "right" }
                );
                if let Some(r) = residual {
                    let _ = write!(s, " residual: {}", show_expr(r, &self.columns));
                }
            }
            Node::IndexJoin {
                left,
                table,
                label,
                lookup,
                left_keys,
                kind,
                residual,
                right_filter,
                ..
            } => {
                let via = match lookup {
                    Lookup::PrimaryKey => "primary key".to_string(),
                    Lookup::Index(ix) => format!("index {}", ix.name),
                };
                let keys: Vec<String> = left_keys
                    .iter()
                    .map(|k| show_expr(k, &left.columns))
                    .collect();
                let _ = write!(
                    s,
                    "Index nested loop join ({}) {}{} by {via} = ({})",
                    if *kind == JoinKind::Left {
                        "left"
                    } else {
                        "inner"
                    },
                    table.name,
                    if label.eq_ignore_ascii_case(&table.name) {
                        String::new()
                    } else {
                        format!(" AS {label}")
                    },
                    keys.join(", ")
                );
                let right_cols = &self.columns[left.columns.len()..];
                if let Some(f) = right_filter {
                    let _ = write!(s, " filter: {}", show_expr(f, right_cols));
                }
                if let Some(r) = residual {
                    let _ = write!(s, " residual: {}", show_expr(r, &self.columns));
                }
            }
            Node::NestedLoop {
                kind, predicate, ..
            } => {
                let _ = write!(
                    s,
                    "Nested loop join ({})",
                    if *kind == JoinKind::Left {
                        "left"
                    } else {
                        "inner"
                    }
                );
                if let Some(p) = predicate {
                    let _ = write!(s, " on {}", show_expr(p, &self.columns));
                }
            }
            Node::Aggregate { input, group, aggs } => {
                let g: Vec<String> = group.iter().map(|e| show_expr(e, &input.columns)).collect();
                let a: Vec<String> = aggs
                    .iter()
                    .map(|a| {
                        let arg = a
                            .arg
                            .as_ref()
                            .map(|e| show_expr(e, &input.columns))
                            .unwrap_or_else(|| "*".into());
                        format!(
                            "{:?}({}{arg})",
                            a.func,
                            if a.distinct { "DISTINCT " } else { "" }
                        )
                    })
                    .collect();
                let _ = write!(
                    s,
                    "Hash aggregate group by [{}] compute [{}]",
                    g.join(", "),
                    a.join(", ")
                );
            }
            Node::RecursiveCte { all, limit, .. } => {
                let _ = write!(
                    s,
                    "Recursive union{}{}",
                    if *all { " all" } else { "" },
                    limit.map(|l| format!(" limit {l}")).unwrap_or_default()
                );
            }
            Node::WorkTable { .. } => s.push_str("Work table (the rows of the round before)"),
            Node::Window { input, calls } => {
                let c: Vec<String> = calls.iter().map(|c| c.describe(&input.columns)).collect();
                let _ = write!(s, "Window {}", c.join(", "));
            }
            Node::Sort { input, keys } => {
                let _ = write!(s, "Sort by {}", show_keys(keys, &input.columns));
            }
            Node::TopK {
                input,
                keys,
                limit,
                offset,
            } => {
                let _ = write!(
                    s,
                    "Top {limit} (offset {offset}) by {}",
                    show_keys(keys, &input.columns)
                );
            }
            Node::Limit { limit, offset, .. } => {
                let _ = match limit {
                    Some(l) => write!(s, "Limit {l} offset {offset}"),
                    None => write!(s, "Offset {offset}"),
                };
            }
            Node::Distinct { .. } => s.push_str("Distinct"),
            Node::Union { inputs } => {
                let _ = write!(s, "Union all ({} inputs)", inputs.len());
            }
            Node::Join {
                inputs,
                kinds,
                on,
                at,
                after,
                order,
            } => {
                let rels: Vec<String> = inputs
                    .iter()
                    .zip(kinds)
                    .map(|(p, k)| {
                        let name = p
                            .columns
                            .first()
                            .and_then(|c| c.qualifier.clone())
                            .unwrap_or_else(|| "?".into());
                        match k {
                            JoinKind::Inner => name,
                            JoinKind::Left => format!("left {name}"),
                        }
                    })
                    .collect();
                let _ = write!(s, "Join [{}]", rels.join(", "));
                let conds = |v: &[Vec<Expr>]| {
                    v.iter()
                        .flatten()
                        .map(|e| show_expr(e, &self.columns))
                        .collect::<Vec<_>>()
                        .join(" AND ")
                };
                for (label, v) in [("on", on), ("at", at), ("after", after)] {
                    if v.iter().any(|c| !c.is_empty()) {
                        let _ = write!(s, " {label}: {}", conds(v));
                    }
                }
                if !order.is_empty() {
                    let names: Vec<&str> = order.iter().map(|&i| rels[i].as_str()).collect();
                    let _ = write!(s, " order: {}", names.join(", "));
                }
            }
            Node::SetCompare { anti, .. } => {
                s.push_str(if *anti { "Except" } else { "Intersect" });
            }
            Node::Insert {
                table,
                targets,
                defaults,
                source,
                conflict,
                ..
            } => {
                let cols: Vec<&str> = targets
                    .iter()
                    .filter_map(|&i| table.columns.get(i).map(|c| c.name.as_str()))
                    .collect();
                let _ = write!(s, "Insert into {} ({})", table.name, cols.join(", "));
                let filled: Vec<String> = defaults
                    .iter()
                    .enumerate()
                    .filter(|(i, d)| {
                        !targets.contains(i) && **d != Expr::Literal(chrono_storage::Value::Null)
                    })
                    .map(|(i, d)| {
                        format!(
                            "{} = {}",
                            table.columns[i].name,
                            show_expr(d, &source.columns)
                        )
                    })
                    .collect();
                if !filled.is_empty() {
                    let _ = write!(s, " defaults: {}", filled.join(", "));
                }
                if let Some(c) = conflict {
                    let on: Vec<&str> = c
                        .arbiter
                        .iter()
                        .filter_map(|&i| table.columns.get(i).map(|c| c.name.as_str()))
                        .collect();
                    let _ = write!(s, " on conflict ({})", on.join(", "));
                    s.push_str(match c.action {
                        ConflictAction::Nothing => " do nothing",
                        ConflictAction::Update { .. } => " do update",
                        ConflictAction::Replace => " replace",
                    });
                }
            }
            Node::Update {
                table, scan, sets, ..
            } => {
                let sets: Vec<String> = sets
                    .iter()
                    .map(|(i, e)| {
                        format!(
                            "{} = {}",
                            table.columns.get(*i).map_or("?", |c| c.name.as_str()),
                            show_expr(e, &scan.columns)
                        )
                    })
                    .collect();
                let _ = write!(s, "Update {} set {}", table.name, sets.join(", "));
            }
            Node::Delete { table, .. } => {
                let _ = write!(s, "Delete from {}", table.name);
            }
        }
        s
    }

    /// Pre-order list of (depth, node); a node's subqueries follow its inputs, one level
    /// deeper.
    pub fn flatten(&self) -> Vec<(usize, &Plan)> {
        let mut out = Vec::new();
        fn walk<'a>(p: &'a Plan, depth: usize, out: &mut Vec<(usize, &'a Plan)>) {
            out.push((depth, p));
            for c in p.children() {
                walk(c, depth + 1, out);
            }
            for q in p.subqueries() {
                walk(q, depth + 1, out);
            }
        }
        walk(self, 0, &mut out);
        out
    }

    /// The plans of the subqueries in this node's own expressions.
    pub fn subqueries(&self) -> Vec<&Plan> {
        self.exprs()
            .into_iter()
            .flat_map(Expr::subquery_plans)
            .collect()
    }

    /// True when the plan (any node) holds a parameter or a subquery to fill in before it
    /// runs ([`crate::execution::instantiate`]).
    pub fn needs_values(&self) -> bool {
        matches!(self.read_at(), Some(ReadAt::AsOfParam(_)))
            || self.exprs().iter().any(|e| e.needs_values())
            || self.children().iter().any(|c| c.needs_values())
    }

    /// True when the plan reads at most one row, by primary key: a key lookup (now or as of
    /// a time) under projections, filters and limits only.
    pub fn is_point_read(&self) -> bool {
        match &self.node {
            Node::Scan {
                access: Access::Key(_),
                read_at: ReadAt::Current | ReadAt::AsOf(_) | ReadAt::AsOfParam(_),
                ..
            } => true,
            Node::Project { input, .. }
            | Node::Filter { input, .. }
            | Node::Limit { input, .. } => input.is_point_read(),
            _ => false,
        }
    }

    /// True when any node's expressions hold a subquery.
    pub fn has_subqueries(&self) -> bool {
        !self.subqueries().is_empty() || self.children().iter().any(|c| c.has_subqueries())
    }

    /// The state of its table this node reads (scans and index joins).
    pub fn read_at(&self) -> Option<ReadAt> {
        match &self.node {
            Node::Scan { read_at, .. } | Node::IndexJoin { read_at, .. } => Some(*read_at),
            _ => None,
        }
    }

    /// Replaces every [`ReadAt::AsOfParam`] in this plan (not in its subqueries' plans,
    /// which are instantiated on their own) by the time its parameter gives
    /// ([`ReadAt::bind`]).
    #[recursive::recursive]
    pub fn resolve_times(&mut self, params: &[Value]) -> Result<()> {
        if let Node::Scan { read_at, .. } | Node::IndexJoin { read_at, .. } = &mut self.node {
            *read_at = read_at.bind(params)?;
        }
        for c in self.children_mut() {
            c.resolve_times(params)?;
        }
        Ok(())
    }

    /// The expressions of this node (not of its inputs).
    pub fn exprs(&self) -> Vec<&Expr> {
        plan_exprs!(self, iter, as_ref, exprs)
    }

    /// A copy of the plan with `f` applied to every expression of every node.
    #[recursive::recursive]
    pub fn try_map_exprs(&self, f: &mut dyn FnMut(&Expr) -> Result<Expr>) -> Result<Plan> {
        let input = |p: &Plan, f: &mut dyn FnMut(&Expr) -> Result<Expr>| -> Result<Box<Plan>> {
            Ok(Box::new(p.try_map_exprs(f)?))
        };
        let opt = |e: &Option<Expr>,
                   f: &mut dyn FnMut(&Expr) -> Result<Expr>|
         -> Result<Option<Expr>> { e.as_ref().map(f).transpose() };
        let keys =
            |k: &[SortKey], f: &mut dyn FnMut(&Expr) -> Result<Expr>| -> Result<Vec<SortKey>> {
                k.iter()
                    .map(|k| {
                        Ok(SortKey {
                            expr: f(&k.expr)?,
                            desc: k.desc,
                            nulls_first: k.nulls_first,
                        })
                    })
                    .collect()
            };
        let node = match &self.node {
            Node::Scan {
                table,
                label,
                read_at,
                access,
                filter,
                reads,
            } => Node::Scan {
                table: table.clone(),
                label: label.clone(),
                read_at: *read_at,
                access: access.try_map(f)?,
                filter: opt(filter, f)?,
                reads: reads.clone(),
            },
            Node::Values { rows } => Node::Values {
                rows: rows
                    .iter()
                    .map(|r| r.iter().map(&mut *f).collect::<Result<_>>())
                    .collect::<Result<_>>()?,
            },
            Node::Filter {
                input: i,
                predicate,
            } => Node::Filter {
                input: input(i, f)?,
                predicate: f(predicate)?,
            },
            Node::Project { input: i, exprs } => Node::Project {
                input: input(i, f)?,
                exprs: exprs.iter().map(&mut *f).collect::<Result<_>>()?,
            },
            Node::HashJoin {
                left,
                right,
                left_keys,
                right_keys,
                kind,
                residual,
                build_left,
            } => Node::HashJoin {
                left: input(left, f)?,
                right: input(right, f)?,
                left_keys: left_keys.iter().map(&mut *f).collect::<Result<_>>()?,
                right_keys: right_keys.iter().map(&mut *f).collect::<Result<_>>()?,
                kind: *kind,
                residual: opt(residual, f)?,
                build_left: *build_left,
            },
            Node::IndexJoin {
                left,
                table,
                label,
                read_at,
                lookup,
                left_keys,
                right_filter,
                kind,
                residual,
            } => Node::IndexJoin {
                left: input(left, f)?,
                table: table.clone(),
                label: label.clone(),
                read_at: *read_at,
                lookup: lookup.clone(),
                left_keys: left_keys.iter().map(&mut *f).collect::<Result<_>>()?,
                right_filter: opt(right_filter, f)?,
                kind: *kind,
                residual: opt(residual, f)?,
            },
            Node::NestedLoop {
                left,
                right,
                kind,
                predicate,
            } => Node::NestedLoop {
                left: input(left, f)?,
                right: input(right, f)?,
                kind: *kind,
                predicate: opt(predicate, f)?,
            },
            Node::Aggregate {
                input: i,
                group,
                aggs,
            } => Node::Aggregate {
                input: input(i, f)?,
                group: group.iter().map(&mut *f).collect::<Result<_>>()?,
                aggs: aggs
                    .iter()
                    .map(|a| {
                        Ok(AggCall {
                            func: a.func,
                            arg: opt(&a.arg, f)?,
                            distinct: a.distinct,
                            separator: a.separator.clone(),
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            Node::RecursiveCte {
                anchor,
                step,
                all,
                work,
                limit,
            } => Node::RecursiveCte {
                anchor: input(anchor, f)?,
                step: input(step, f)?,
                all: *all,
                work: *work,
                limit: *limit,
            },
            Node::WorkTable { work } => Node::WorkTable { work: *work },
            Node::Window { input: i, calls } => Node::Window {
                input: input(i, f)?,
                calls: calls
                    .iter()
                    .map(|c| c.map(&mut *f))
                    .collect::<Result<_>>()?,
            },
            Node::Sort { input: i, keys: k } => Node::Sort {
                input: input(i, f)?,
                keys: keys(k, f)?,
            },
            Node::TopK {
                input: i,
                keys: k,
                limit,
                offset,
            } => Node::TopK {
                input: input(i, f)?,
                keys: keys(k, f)?,
                limit: *limit,
                offset: *offset,
            },
            Node::Limit {
                input: i,
                limit,
                offset,
            } => Node::Limit {
                input: input(i, f)?,
                limit: *limit,
                offset: *offset,
            },
            Node::Distinct { input: i } => Node::Distinct {
                input: input(i, f)?,
            },
            Node::Insert {
                table,
                targets,
                defaults,
                source,
                conflict,
                returning,
            } => Node::Insert {
                table: table.clone(),
                targets: targets.clone(),
                defaults: defaults.iter().map(&mut *f).collect::<Result<_>>()?,
                source: input(source, f)?,
                conflict: conflict.as_ref().map(|c| c.map(&mut *f)).transpose()?,
                returning: returning.iter().map(&mut *f).collect::<Result<_>>()?,
            },
            Node::Update {
                table,
                scan,
                sets,
                returning,
            } => Node::Update {
                table: table.clone(),
                scan: input(scan, f)?,
                sets: sets
                    .iter()
                    .map(|(i, e)| Ok((*i, f(e)?)))
                    .collect::<Result<_>>()?,
                returning: returning.iter().map(&mut *f).collect::<Result<_>>()?,
            },
            Node::Delete {
                table,
                scan,
                returning,
            } => Node::Delete {
                table: table.clone(),
                scan: input(scan, f)?,
                returning: returning.iter().map(&mut *f).collect::<Result<_>>()?,
            },
            Node::SetCompare { left, right, anti } => Node::SetCompare {
                left: input(left, f)?,
                right: input(right, f)?,
                anti: *anti,
            },
            Node::Union { inputs } => Node::Union {
                inputs: inputs
                    .iter()
                    .map(|p| p.try_map_exprs(f))
                    .collect::<Result<_>>()?,
            },
            Node::Join {
                inputs,
                kinds,
                on,
                at,
                after,
                order,
            } => {
                let mut conds = |v: &[Vec<Expr>]| -> Result<Vec<Vec<Expr>>> {
                    v.iter()
                        .map(|c| c.iter().map(&mut *f).collect::<Result<_>>())
                        .collect()
                };
                Node::Join {
                    on: conds(on)?,
                    at: conds(at)?,
                    after: conds(after)?,
                    inputs: inputs
                        .iter()
                        .map(|p| p.try_map_exprs(f))
                        .collect::<Result<_>>()?,
                    kinds: kinds.clone(),
                    order: order.clone(),
                }
            }
        };
        Ok(Plan {
            node,
            est_rows: self.est_rows,
            estimator: self.estimator,
            columns: self.columns.clone(),
        })
    }
}

fn show_keys(keys: &[SortKey], cols: &[Column]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{}{}",
                show_expr(&k.expr, cols),
                if k.desc { " DESC" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints an expression with column names from `cols`.
#[recursive::recursive]
pub fn show_expr(e: &Expr, cols: &[Column]) -> String {
    use crate::types::ArithOp::*;
    let s = |x: &Expr| show_expr(x, cols);
    match e {
        Expr::Literal(v) => crate::types::display_literal(v),
        Expr::Column(i) => match cols.get(*i) {
            Some(Column {
                qualifier: Some(q),
                name,
            }) => format!("{q}.{name}"),
            Some(Column { name, .. }) => name.clone(),
            None => format!("#{i}"),
        },
        Expr::Not(x) => format!("NOT {}", s(x)),
        Expr::Neg(x) => format!("-{}", s(x)),
        Expr::And(a, b) => format!("{} AND {}", s(a), s(b)),
        Expr::Or(a, b) => format!("({} OR {})", s(a), s(b)),
        Expr::Cmp(op, a, b) => format!("{} {} {}", s(a), op.symbol(), s(b)),
        Expr::Arith(op, a, b) => {
            let sym = match op {
                Add => "+",
                Sub => "-",
                Mul => "*",
                Div => "/",
                Rem => "%",
            };
            format!("({} {sym} {})", s(a), s(b))
        }
        Expr::Concat(a, b) => format!("{} || {}", s(a), s(b)),
        Expr::IsNull(x, n) => format!("{} IS {}NULL", s(x), if *n { "NOT " } else { "" }),
        Expr::IsDistinct(a, b, n) => format!(
            "{} IS {}DISTINCT FROM {}",
            s(a),
            if *n { "NOT " } else { "" },
            s(b)
        ),
        Expr::InList(x, l, n) => format!(
            "{} {}IN ({})",
            s(x),
            if *n { "NOT " } else { "" },
            l.iter().map(s).collect::<Vec<_>>().join(", ")
        ),
        Expr::InSet(x, set, _, n) => format!(
            "{} {}IN (<subquery: {} values>)",
            s(x),
            if *n { "NOT " } else { "" },
            set.len()
        ),
        Expr::Between(x, a, b, n) => format!(
            "{} {}BETWEEN {} AND {}",
            s(x),
            if *n { "NOT " } else { "" },
            s(a),
            s(b)
        ),
        Expr::Like(x, p, n, _) => format!("{} {}LIKE {}", s(x), if *n { "NOT " } else { "" }, s(p)),
        Expr::Case(..) => "CASE …".into(),
        Expr::Cast(x, t) => format!("CAST({} AS {})", s(x), t.name()),
        Expr::Func(f, args) => format!(
            "{:?}({})",
            f,
            args.iter().map(s).collect::<Vec<_>>().join(", ")
        )
        .to_lowercase(),
        Expr::Param(i) => format!("${}", i + 1),
        Expr::Outer(i) => format!("outer.#{}", i + 1),
        Expr::Subquery(q) => {
            let what = if q.correlated {
                "correlated subquery"
            } else {
                "subquery"
            };
            match &q.kind {
                SubqueryKind::Scalar => format!("({what})"),
                SubqueryKind::Exists { negated } => {
                    format!("{}EXISTS ({what})", if *negated { "NOT " } else { "" })
                }
                SubqueryKind::In { operand, negated } => format!(
                    "{} {}IN ({what})",
                    s(operand),
                    if *negated { "NOT " } else { "" }
                ),
            }
        }
    }
}
