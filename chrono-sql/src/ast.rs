//! ChronoDB's own statement tree: what the planner reads.
//!
//! [`mod@crate::parse`] builds it from sqlparser's AST (`parse/translate.rs`); nothing after
//! translation imports sqlparser. It holds only what ChronoDB runs, in the shape the planner
//! wants it: names are plain strings, literals are [`Value`]s, each table reference carries
//! its own time-travel clause, the select list carries each column's display name, and
//! every form ChronoDB does not support was refused by translation with a clear error. Its
//! trees are no deeper than the shape check allowed (`limits.max_expression_depth`).

use chrono_storage::Value;

use crate::parse::timetravel::TimeSpec;
use crate::plan::JoinKind;
use crate::types::DataType;

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// A query (SELECT, VALUES, set operations, WITH).
    Query(Box<Query>),
    /// `INSERT INTO t [(columns)] <query>`.
    Insert(Insert),
    /// `UPDATE t SET … [WHERE …]`.
    Update(Update),
    /// `DELETE FROM t [WHERE …]`.
    Delete(Delete),
    /// `CREATE TABLE`.
    CreateTable(CreateTable),
    /// `CREATE [UNIQUE] INDEX`.
    CreateIndex(CreateIndex),
    /// `ALTER TABLE t ADD COLUMN …[, ADD COLUMN …]`.
    AddColumns(AddColumns),
    /// `DROP TABLE` / `DROP INDEX` / `DROP VIEW`.
    Drop(DropObjects),
    /// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] name [(columns)] AS query`.
    CreateView(CreateView),
    /// `ANALYZE [t]`.
    Analyze {
        /// The table, or every table.
        table: Option<String>,
    },
    /// `EXPLAIN [ANALYZE] [(OPTIMIZERS)] <query | write>`.
    Explain {
        /// Runs the query and shows actual rows and times.
        analyze: bool,
        /// Shows the plan after each optimizer pass.
        optimizers: bool,
        /// What is explained.
        statement: Box<Statement>,
    },
    /// `DELETE HISTORY FROM t [BEFORE SYSTEM_TIME time]` (MariaDB's form): the versions of
    /// `t` that no read at or after `time` needs are deleted (all but the current rows when
    /// no time is given).
    DeleteHistory {
        /// The table.
        table: String,
        /// The time; `None` for the newest commit.
        before: Option<crate::parse::timetravel::TimeLiteral>,
    },
    /// `REINDEX [name]` (SQLite's): indexes never need rebuilding; checks the name.
    Reindex {
        /// The table or index, if named.
        target: Option<String>,
    },
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SAVEPOINT name`: a point in the open transaction to roll back to.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`: forgets the savepoint and those after it (their writes
    /// stay).
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`: undoes every write since the savepoint, which stays.
    RollbackTo(String),
}

/// A query with its ORDER BY and LIMIT.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `WITH` queries, in order.
    pub with: Vec<Cte>,
    /// `WITH RECURSIVE`: a WITH query may read itself.
    pub recursive: bool,
    /// The query proper.
    pub body: SetExpr,
    /// `ORDER BY`.
    pub order_by: Vec<OrderItem>,
    /// `LIMIT`.
    pub limit: Option<Expr>,
    /// `OFFSET`.
    pub offset: Option<Expr>,
}

/// A common table expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Cte {
    /// Its name, as written.
    pub name: String,
    /// Column names given after the name.
    pub columns: Vec<String>,
    /// Its query.
    pub query: Query,
}

/// The body of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum SetExpr {
    /// A SELECT.
    Select(Box<Select>),
    /// `VALUES (…), (…)`.
    Values(Vec<Vec<Expr>>),
    /// A parenthesized query.
    Query(Box<Query>),
    /// `left op [ALL] right`; chains nest to the left.
    SetOperation {
        /// UNION, INTERSECT or EXCEPT.
        op: SetOperator,
        /// `ALL` (only UNION has it).
        all: bool,
        /// The left arm.
        left: Box<SetExpr>,
        /// The right arm.
        right: Box<SetExpr>,
    },
}

/// A set operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    /// `UNION`.
    Union,
    /// `INTERSECT`.
    Intersect,
    /// `EXCEPT`.
    Except,
}

impl std::fmt::Display for SetOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SetOperator::Union => "UNION",
            SetOperator::Intersect => "INTERSECT",
            SetOperator::Except => "EXCEPT",
        })
    }
}

/// One SELECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `SELECT DISTINCT`.
    pub distinct: bool,
    /// The select list.
    pub items: Vec<SelectItem>,
    /// The FROM list.
    pub from: Vec<FromItem>,
    /// `WHERE`.
    pub selection: Option<Expr>,
    /// `GROUP BY`.
    pub group_by: Vec<Expr>,
    /// `HAVING`.
    pub having: Option<Expr>,
}

/// An entry of the select list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    Wildcard,
    /// `t.*`.
    QualifiedWildcard(String),
    /// An expression, with the column name it gets.
    Expr {
        /// The expression.
        expr: Expr,
        /// The output column's name: the alias, else the expression as written (SQLite's
        /// rule).
        name: String,
        /// Whether `name` is an alias (HAVING and ORDER BY may use it).
        aliased: bool,
    },
}

/// An ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    /// The key.
    pub expr: Expr,
    /// `DESC`.
    pub desc: bool,
    /// `NULLS FIRST` / `NULLS LAST`, if given.
    pub nulls_first: Option<bool>,
}

/// One entry of the FROM list with the joins that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct FromItem {
    /// The first relation.
    pub relation: TableFactor,
    /// `JOIN`s after it.
    pub joins: Vec<Join>,
}

/// `[LEFT] JOIN relation [ON condition]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Inner (also CROSS) or left outer.
    pub kind: JoinKind,
    /// What is joined.
    pub relation: TableFactor,
    /// The ON condition.
    pub on: Option<Expr>,
}

/// A relation in FROM.
#[derive(Debug, Clone, PartialEq)]
pub enum TableFactor {
    /// A table (or a WITH query) by name.
    Table {
        /// The name (the last part of a dotted name).
        name: String,
        /// `AS alias`.
        alias: Option<TableAlias>,
        /// The time-travel clause that applies: the table's own, else its FROM list's.
        time: Option<TimeSpec>,
        /// `FOR SYSTEM_TIME AS OF <expr>` as the dialect parses it.
        as_of: Option<Expr>,
    },
    /// `(query) [AS alias]`.
    Derived {
        /// The query.
        query: Box<Query>,
        /// Its alias and column names.
        alias: Option<TableAlias>,
    },
    /// `DIFF(table, from, to) [AS alias]`: the rows of `table` that differ between the two
    /// times, each with what it was and what it became.
    Diff {
        /// The table.
        table: String,
        /// The earlier time.
        from: Expr,
        /// The later time.
        to: Expr,
        /// `AS alias`.
        alias: Option<TableAlias>,
    },
}

/// `AS name [(columns)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableAlias {
    /// The alias.
    pub name: String,
    /// Column names, if given.
    pub columns: Vec<String>,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `[qualifier.]name`.
    Column {
        /// The table or alias, if given.
        qualifier: Option<String>,
        /// The column.
        name: String,
    },
    /// A literal value (numbers, strings, booleans, NULL, `x'…'`, typed strings).
    Literal(Value),
    /// A parameter, 1-based (`?` is numbered in textual order, `$n` as written).
    Param(usize),
    /// `NOT x`.
    Not(Box<Expr>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `x IS [NOT] NULL`.
    IsNull {
        /// The operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `x IS [NOT] TRUE | FALSE`.
    IsBool {
        /// The operand.
        expr: Box<Expr>,
        /// TRUE or FALSE.
        value: bool,
        /// `IS NOT`.
        negated: bool,
    },
    /// `x IS [NOT] DISTINCT FROM y`.
    IsDistinct {
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
        /// `IS NOT DISTINCT FROM`.
        negated: bool,
    },
    /// `x [NOT] BETWEEN low AND high`.
    Between {
        /// The operand.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `x [NOT] IN (list)`.
    InList {
        /// The operand.
        expr: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] IN (query)`.
    InSubquery {
        /// The operand.
        expr: Box<Expr>,
        /// The query.
        query: Box<Query>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] LIKE pattern [ESCAPE c]` (also ILIKE).
    Like {
        /// The operand.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
        /// The escape character.
        escape: Option<char>,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    Case {
        /// The operand of a simple CASE.
        operand: Option<Box<Expr>>,
        /// (condition or value, result) pairs.
        whens: Vec<(Expr, Expr)>,
        /// ELSE.
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(x AS type)`.
    Cast {
        /// The operand.
        expr: Box<Expr>,
        /// The target type.
        data_type: DataType,
    },
    /// A function call, aggregates included; SQL's special forms (`SUBSTRING(x FROM a FOR
    /// b)`, `TRIM(LEADING x)`, `CEIL`, `FLOOR`) are calls of the named functions.
    Function {
        /// The name, as written.
        name: String,
        /// The arguments.
        args: Vec<FunctionArg>,
        /// `f(DISTINCT …)`.
        distinct: bool,
    },
    /// `f(args) OVER (PARTITION BY … ORDER BY … [frame])`: a window function.
    Window {
        /// The call (a [`Expr::Function`]).
        call: Box<Expr>,
        /// `PARTITION BY`.
        partition_by: Vec<Expr>,
        /// `ORDER BY` within the partition.
        order_by: Vec<OrderItem>,
        /// `ROWS | RANGE BETWEEN … AND …`, if given.
        frame: Option<WindowFrame>,
    },
    /// `(query)` giving one value.
    Subquery(Box<Query>),
    /// `[NOT] EXISTS (query)`.
    Exists {
        /// The query.
        query: Box<Query>,
        /// `NOT EXISTS`.
        negated: bool,
    },
}

/// A window's frame: which rows of the partition, around the current one, an aggregate or
/// `FIRST_VALUE`/`LAST_VALUE`/`NTH_VALUE` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFrame {
    /// `RANGE` (peers by the ORDER BY value) rather than `ROWS`.
    pub range: bool,
    /// Where it starts.
    pub start: FrameBound,
    /// Where it ends.
    pub end: FrameBound,
}

/// One end of a window frame.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameBound {
    /// `UNBOUNDED PRECEDING`.
    UnboundedPreceding,
    /// `n PRECEDING`.
    Preceding(Box<Expr>),
    /// `CURRENT ROW`.
    CurrentRow,
    /// `n FOLLOWING`.
    Following(Box<Expr>),
    /// `UNBOUNDED FOLLOWING`.
    UnboundedFollowing,
}

/// A function argument.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionArg {
    /// `*` (as in `COUNT(*)`).
    Wildcard,
    /// An expression.
    Expr(Expr),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `=`
    Eq,
    /// `<>`, `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `||`
    Concat,
    /// `&` (on integers, as SQLite)
    BitAnd,
    /// `|`
    BitOr,
    /// `<<`
    ShiftLeft,
    /// `>>`
    ShiftRight,
}

/// `INSERT INTO table [(columns)] source [ON CONFLICT …] [RETURNING …]`, also
/// `INSERT OR REPLACE / OR IGNORE` and `REPLACE INTO`.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    /// The table.
    pub table: String,
    /// The columns the source fills; empty for all, in order.
    pub columns: Vec<String>,
    /// The rows: VALUES or a query.
    pub source: Box<Query>,
    /// What a row that collides with an existing one on a uniqueness constraint does.
    pub on_conflict: Option<OnConflict>,
    /// `RETURNING`: what to give back per row written.
    pub returning: Vec<SelectItem>,
}

/// `ON CONFLICT [(columns)] DO …`, `OR IGNORE`, `OR REPLACE`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    /// The columns of the primary key or UNIQUE index whose collisions this handles; empty
    /// for any of them.
    pub target: Vec<String>,
    /// What happens then.
    pub action: ConflictAction,
}

/// What an INSERT does with a row that collides.
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictAction {
    /// `DO NOTHING`, `OR IGNORE`: the row is left out.
    Nothing,
    /// `DO UPDATE SET … [WHERE …]`: the existing row is updated; `excluded.c` names the
    /// value the INSERT proposed.
    Update {
        /// (column, new value).
        sets: Vec<(String, Expr)>,
        /// Only rows for which this holds are updated.
        selection: Option<Expr>,
    },
    /// `OR REPLACE`, `REPLACE INTO`: every row it collides with is deleted, then it is
    /// inserted.
    Replace,
}

/// `UPDATE table [AS alias] SET column = value, … [WHERE …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The table.
    pub table: String,
    /// Its alias.
    pub alias: Option<String>,
    /// (column, new value).
    pub sets: Vec<(String, Expr)>,
    /// `WHERE`.
    pub selection: Option<Expr>,
    /// `RETURNING`: what to give back per row updated (its new values).
    pub returning: Vec<SelectItem>,
}

/// `DELETE FROM table [AS alias] [WHERE …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The table.
    pub table: String,
    /// Its alias.
    pub alias: Option<String>,
    /// `WHERE`.
    pub selection: Option<Expr>,
    /// `RETURNING`: what to give back per row deleted (its last values).
    pub returning: Vec<SelectItem>,
}

/// A column as CREATE TABLE or ADD COLUMN define it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// The name.
    pub name: String,
    /// The type.
    pub data_type: DataType,
    /// `NOT NULL` was given.
    pub not_null: bool,
    /// `DEFAULT`: the expression's text (stored in the catalog, bound per insert).
    pub default: Option<String>,
    /// `PRIMARY KEY` on the column.
    pub primary_key: bool,
    /// `UNIQUE` on the column.
    pub unique: bool,
    /// `REFERENCES table (column)` on the column.
    pub references: Option<(String, String)>,
}

/// `CREATE TABLE [IF NOT EXISTS] name (columns, constraints)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    /// The name.
    pub name: String,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The columns.
    pub columns: Vec<ColumnSpec>,
    /// `PRIMARY KEY (…)` constraints (at most one is valid), by column name.
    pub primary_keys: Vec<Vec<String>>,
    /// `UNIQUE (…)` constraints, by column name.
    pub uniques: Vec<Vec<String>>,
    /// `FOREIGN KEY (column) REFERENCES table (column)`: (column, table, referred column).
    pub foreign_keys: Vec<(String, String, String)>,
}

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON table (columns)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateIndex {
    /// The name, if given.
    pub name: Option<String>,
    /// The table.
    pub table: String,
    /// The columns.
    pub columns: Vec<String>,
    /// `UNIQUE`.
    pub unique: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

/// `ALTER TABLE [IF EXISTS] table ADD COLUMN [IF NOT EXISTS] …, …`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddColumns {
    /// The table.
    pub table: String,
    /// `IF EXISTS`.
    pub if_exists: bool,
    /// The columns, each with its `IF NOT EXISTS`.
    pub columns: Vec<(ColumnSpec, bool)>,
}

/// What `DROP` drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// `DROP TABLE`.
    Table,
    /// `DROP INDEX`.
    Index,
    /// `DROP VIEW`.
    View,
}

/// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS] name [(columns)] AS query`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// The name.
    pub name: String,
    /// Column names, if given.
    pub columns: Vec<String>,
    /// The query (checked when the view is created).
    pub query: Box<Query>,
    /// The query as SQL text (what is stored).
    pub sql: String,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

/// `DROP TABLE | INDEX [IF EXISTS] name, …`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropObjects {
    /// Tables or indexes.
    pub kind: DropKind,
    /// `IF EXISTS`.
    pub if_exists: bool,
    /// The names.
    pub names: Vec<String>,
}

impl Statement {
    /// Whether the statement only reads (a query, or EXPLAIN without ANALYZE of a write).
    pub fn is_query(&self) -> bool {
        matches!(self, Statement::Query(_) | Statement::Explain { .. })
    }
}

impl Expr {
    /// If this is an aggregate call: the function's name, its arguments and DISTINCT.
    pub fn as_call(&self) -> Option<(&str, &[FunctionArg], bool)> {
        match self {
            Expr::Function {
                name,
                args,
                distinct,
            } => Some((name, args, *distinct)),
            _ => None,
        }
    }
}
