//! Bound expressions: names resolved to column positions, parameters substituted, ready to
//! evaluate against a row.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono_storage::Value;

use crate::error::{Error, Result};
use crate::limits::{check_interrupted, check_value_size};
use crate::types::{ArithOp, DataType, arith, cast, compare, to_f64, truth};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CmpOp {
    pub(crate) fn holds(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::NotEq => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::LtEq => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::GtEq => o != Ordering::Less,
        }
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    /// The SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

/// A scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `ABS(x)`
    Abs,
    /// `LOWER(s)`
    Lower,
    /// `UPPER(s)`
    Upper,
    /// `LENGTH(s)`
    Length,
    /// `COALESCE(a, b, …)`, `IFNULL(a, b)`
    Coalesce,
    /// `NULLIF(a, b)`
    NullIf,
    /// `ROUND(x [, digits])`
    Round,
    /// `FLOOR(x)`
    Floor,
    /// `CEIL(x)`
    Ceil,
    /// `SUBSTR(s, start [, len])`
    Substr,
    /// `TRIM(s)`
    Trim,
    /// `LTRIM(s)`
    LTrim,
    /// `RTRIM(s)`
    RTrim,
    /// `REPLACE(s, from, to)`
    Replace,
    /// `INSTR(s, needle)`
    Instr,
    /// `CONCAT(a, b, …)` (NULLs skipped)
    Concat,
    /// `TYPEOF(x)`
    TypeOf,
    /// `MIN(a, b, …)` with two or more arguments
    Least,
    /// `MAX(a, b, …)` with two or more arguments
    Greatest,
    /// `NOW()`, `CURRENT_TIMESTAMP`
    Now,
    /// `SIGN(x)`
    Sign,
    /// `a & b` (integers, as SQLite: operands converted to integers)
    BitAnd,
    /// `a | b`
    BitOr,
    /// `a << b` (a negative count shifts right)
    ShiftLeft,
    /// `a >> b` (arithmetic; a negative count shifts left)
    ShiftRight,
    /// `~a`
    BitNot,
    /// `REGEXP_LIKE(s, pattern [, flags])`, also the operators `~` and `~*` (`!~`, `!~*`
    /// are its negation): whether the pattern matches anywhere in `s`; flag `i` ignores
    /// case.
    RegexpLike,
    /// `FORMAT_TYPE(type_oid, typmod)`: a type's SQL name (PostgreSQL's catalog function).
    FormatType,
    /// `PG_GET_EXPR(expr_text, relation [, pretty])`: the catalog's expression text as is.
    PgGetExpr,
    /// `PG_GET_USERBYID(oid)`: the owner's name (every object has one owner here).
    PgGetUserById,
    /// `PG_TABLE_IS_VISIBLE(oid)`, `PG_TYPE_IS_VISIBLE(oid)`: every object is on the
    /// search path (there is one schema).
    IsVisible,
    /// `PG_ENCODING_TO_CHAR(n)`: `UTF8` for 6, the only encoding.
    EncodingToChar,
    /// `ARRAY_TO_STRING(array_text, separator [, null_text])`, over PostgreSQL's text form
    /// of an array (`{a,b}`), which is how the system catalogs hold arrays.
    ArrayToString,
    /// `CURRENT_SCHEMA()`
    CurrentSchema,
    /// `CURRENT_DATABASE()`
    CurrentDatabase,
    /// PostgreSQL's catalog functions about what ChronoDB does not keep, all NULL: comments
    /// (`OBJ_DESCRIPTION`, `COL_DESCRIPTION`, `SHOBJ_DESCRIPTION`), a column's sequence
    /// (`PG_GET_SERIAL_SEQUENCE`), statistics objects, relation sizes (`PG_TABLE_SIZE` …).
    NoneKept,
    /// `PG_SIZE_PRETTY(bytes)`: `8192 bytes`, `16 kB`, `3 MB`… as PostgreSQL writes them.
    SizePretty,
    /// `PG_RELATION_IS_PUBLISHABLE(oid)`: no (there is no logical replication).
    RelationIsPublishable,
    /// `x::regnamespace`: a schema's name from its id, its id from its name.
    RegNamespace,
    /// `JSON_BUILD_OBJECT(key, value, …)`: a JSON object's text (keys as text, values as
    /// their JSON: numbers, strings, booleans, null).
    JsonBuildObject,
    /// `UNIQUE_ID()`: the DEFAULT of a SERIAL or `GENERATED … AS IDENTITY` column — an id
    /// from the store's allocator, never handed out before (increasing within one server;
    /// not consecutive, and shared by every table, like one PostgreSQL sequence for all).
    /// Only an INSERT's default gives it a value.
    UniqueId,
    /// `TO_REGTYPE(name)`: a type's id from its name (`int8`, `bigint`, `pg_catalog.text`),
    /// NULL for a type there is not.
    ToRegType,
}

impl Func {
    /// Looks a scalar function up by name.
    pub fn by_name(name: &str, args: usize) -> Option<Func> {
        Some(match name.to_ascii_lowercase().as_str() {
            "abs" => Func::Abs,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" | "character_length" => Func::Length,
            "coalesce" | "ifnull" => Func::Coalesce,
            "nullif" => Func::NullIf,
            "round" => Func::Round,
            "floor" => Func::Floor,
            "ceil" | "ceiling" => Func::Ceil,
            "substr" | "substring" => Func::Substr,
            "trim" => Func::Trim,
            "ltrim" => Func::LTrim,
            "rtrim" => Func::RTrim,
            "replace" => Func::Replace,
            "instr" => Func::Instr,
            "concat" => Func::Concat,
            "typeof" => Func::TypeOf,
            "min" if args >= 2 => Func::Least,
            "max" if args >= 2 => Func::Greatest,
            "now" | "current_timestamp" => Func::Now,
            "sign" => Func::Sign,
            // The operators' own names, never written as calls.
            "&" => Func::BitAnd,
            "|" => Func::BitOr,
            "<<" => Func::ShiftLeft,
            ">>" => Func::ShiftRight,
            "~" => Func::BitNot,
            "regexp_like" => Func::RegexpLike,
            "format_type" => Func::FormatType,
            "pg_get_expr" => Func::PgGetExpr,
            "pg_get_userbyid" => Func::PgGetUserById,
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "pg_collation_is_visible" => Func::IsVisible,
            // ChronoDB has no sequences: no column has one.
            "pg_get_serial_sequence" => Func::NoneKept,
            "json_build_object" => Func::JsonBuildObject,
            "pg_encoding_to_char" => Func::EncodingToChar,
            "array_to_string" => Func::ArrayToString,
            "current_schema" => Func::CurrentSchema,
            "current_database" | "current_catalog" => Func::CurrentDatabase,
            "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_get_statisticsobjdef_columns" => Func::NoneKept,
            // ChronoDB keeps no per-relation byte counts: the sizes are unknown (NULL).
            "pg_table_size" | "pg_relation_size" | "pg_total_relation_size" | "pg_indexes_size" => {
                Func::NoneKept
            }
            "pg_size_pretty" => Func::SizePretty,
            "pg_relation_is_publishable" => Func::RelationIsPublishable,
            "regnamespace" => Func::RegNamespace,
            "to_regtype" => Func::ToRegType,
            "unique_id" => Func::UniqueId,
            _ => return None,
        })
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Abs
            | Func::Lower
            | Func::Upper
            | Func::Length
            | Func::Floor
            | Func::Ceil
            | Func::Trim
            | Func::LTrim
            | Func::RTrim
            | Func::TypeOf
            | Func::Sign
            | Func::BitNot
            | Func::PgGetUserById
            | Func::IsVisible
            | Func::EncodingToChar
            | Func::RelationIsPublishable
            | Func::SizePretty
            | Func::ToRegType
            | Func::RegNamespace => (1, 1),
            Func::RegexpLike | Func::PgGetExpr | Func::ArrayToString => (2, 3),
            Func::FormatType => (1, 2),
            Func::NoneKept => (1, 3),
            Func::JsonBuildObject => (0, usize::MAX),
            Func::CurrentSchema | Func::CurrentDatabase | Func::UniqueId => (0, 0),
            Func::NullIf
            | Func::Instr
            | Func::BitAnd
            | Func::BitOr
            | Func::ShiftLeft
            | Func::ShiftRight => (2, 2),
            Func::Round => (1, 2),
            Func::Substr => (2, 3),
            Func::Replace => (3, 3),
            Func::Coalesce | Func::Least | Func::Greatest => (2, usize::MAX),
            Func::Concat => (1, usize::MAX),
            Func::Now => (0, 0),
        }
    }

    /// Checks the argument count.
    pub fn check_arity(self, name: &str, n: usize) -> Result<()> {
        let (lo, hi) = self.arity();
        if n < lo || n > hi {
            return Err(Error::InvalidInput(format!(
                "wrong number of arguments to function {name}(): {n}"
            )));
        }
        Ok(())
    }
}

/// The expressions directly below an expression, borrowed shared or (with `mut`)
/// mutably: one body for [`Expr::children`] and [`Expr::children_mut`].
macro_rules! expr_children {
    ($e:expr, $iter:ident $(, $m:tt)?) => {
        match $e {
            Expr::Literal(_) | Expr::Column(_) | Expr::Param(_) | Expr::Outer(_) => vec![],
            Expr::Subquery(q) => match &$($m)? q.kind {
                SubqueryKind::In { operand, .. } => vec![&$($m)? **operand],
                _ => vec![],
            },
            Expr::Not(e)
            | Expr::Neg(e)
            | Expr::IsNull(e, _)
            | Expr::Cast(e, _)
            | Expr::InSet(e, ..) => vec![&$($m)? **e],
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Cmp(_, a, b)
            | Expr::Arith(_, a, b)
            | Expr::Concat(a, b)
            | Expr::IsDistinct(a, b, _)
            | Expr::Like(a, b, ..) => vec![&$($m)? **a, &$($m)? **b],
            Expr::InList(e, list, _) => std::iter::once(&$($m)? **e).chain(list.$iter()).collect(),
            Expr::Between(a, b, c, _) => vec![&$($m)? **a, &$($m)? **b, &$($m)? **c],
            Expr::Case(o, whens, e) => o
                .$iter()
                .map(|x| &$($m)? **x)
                .chain(whens.$iter().flat_map(|(w, t)| [w, t]))
                .chain(e.$iter().map(|x| &$($m)? **x))
                .collect(),
            Expr::Func(_, args) => args.$iter().collect(),
        }
    };
}

/// A bound expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// The value at a position of the input row.
    Column(usize),
    /// `NOT e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a AND b`
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`
    Or(Box<Expr>, Box<Expr>),
    /// `a op b`
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a op b`
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `a || b`
    Concat(Box<Expr>, Box<Expr>),
    /// `e IS [NOT] NULL`
    IsNull(Box<Expr>, bool),
    /// `a IS [NOT] DISTINCT FROM b` (negated = NOT DISTINCT)
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `e [NOT] IN (list)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e [NOT] IN (subquery)`: the subquery's values, sorted, and whether one was NULL.
    InSet(Box<Expr>, Arc<Vec<Value>>, bool, bool),
    /// `e [NOT] BETWEEN low AND high`
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `e [NOT] LIKE pattern` (case-insensitive for ASCII, like SQLite's default)
    Like(Box<Expr>, Box<Expr>, bool, Option<char>),
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`
    Case(Option<Box<Expr>>, Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// `CAST(e AS type)`
    Cast(Box<Expr>, DataType),
    /// A scalar function call.
    Func(Func, Vec<Expr>),
    /// A statement parameter (`?`, `$n`; 0-based), bound to its value when the operator
    /// that holds it starts ([`crate::execution::bind`]), so a plan can be kept and run
    /// again with other values.
    Param(usize),
    /// A subquery, planned with its statement and run when the statement executes
    /// ([`crate::execution::instantiate`]), never while planning: once, or once per row when it is
    /// correlated.
    Subquery(Box<Subquery>),
    /// Inside a correlated subquery: a column of the enclosing query's row, replaced by its
    /// value before the subquery runs for that row.
    Outer(usize),
}

/// What a subquery expression asks of its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum SubqueryKind {
    /// `(SELECT x …)`: the single value (NULL for no row; more than one row is an error).
    Scalar,
    /// `[NOT] EXISTS (SELECT …)`.
    Exists {
        /// NOT EXISTS.
        negated: bool,
    },
    /// `operand [NOT] IN (SELECT x …)`.
    In {
        /// The value looked for, over the outer row.
        operand: Box<Expr>,
        /// NOT IN.
        negated: bool,
    },
}

/// A planned subquery and what it yields.
#[derive(Debug, Clone)]
pub struct Subquery {
    /// Its plan (shared by copies of the statement's plan).
    pub plan: Arc<crate::plan::Plan>,
    /// Scalar, EXISTS or IN.
    pub kind: SubqueryKind,
    /// It reads the enclosing query's row ([`Expr::Outer`]), so it runs once per row.
    pub correlated: bool,
}

impl PartialEq for Subquery {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan)
            && self.kind == other.kind
            && self.correlated == other.correlated
    }
}

/// The value of parameter `$i+1`, or an error saying how many were given.
fn param_value(i: usize, params: &[Value]) -> Result<Value> {
    params.get(i).cloned().ok_or_else(|| {
        Error::InvalidInput(format!(
            "parameter ${} has no value ({} given)",
            i + 1,
            params.len()
        ))
    })
}

impl Expr {
    /// Shorthand for a boxed binary node.
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }

    /// Evaluates a condition against `row`: `Some(true)`, `Some(false)` or unknown (`None`),
    /// exactly `truth(&self.eval(row)?)`, but AND, OR, NOT and comparisons of columns with
    /// literals give their truth without building values (what filters run per row).
    #[recursive::recursive]
    pub fn test(&self, row: &[Value]) -> Result<Option<bool>> {
        Ok(match self {
            Expr::And(a, b) => {
                let l = a.test(row)?;
                if l == Some(false) {
                    return Ok(Some(false));
                }
                match (l, b.test(row)?) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }
            }
            Expr::Or(a, b) => {
                let l = a.test(row)?;
                if l == Some(true) {
                    return Ok(Some(true));
                }
                match (l, b.test(row)?) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }
            }
            Expr::Not(e) => e.test(row)?.map(|b| !b),
            Expr::Cmp(op, a, b) => match (a.as_ref_in(row), b.as_ref_in(row)) {
                (Some(x), Some(y)) => compare_operands(a, x, b, y)?.map(|o| op.holds(o)),
                _ => truth(&self.eval(row)?)?,
            },
            other => truth(&other.eval(row)?)?,
        })
    }

    /// [`Expr::eval`], with a plain column read in place rather than copied out of the row.
    pub fn eval_ref<'r>(&self, row: &'r [Value]) -> Result<std::borrow::Cow<'r, Value>> {
        Ok(match self {
            Expr::Column(i) if *i < row.len() => std::borrow::Cow::Borrowed(&row[*i]),
            e => std::borrow::Cow::Owned(e.eval(row)?),
        })
    }

    /// Evaluates against `row`.
    #[recursive::recursive]
    pub fn eval(&self, row: &[Value]) -> Result<Value> {
        use Value::{Bool, Null};
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Column(i) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| Error::InvalidInput(format!("column position {i} out of range")))?,
            Expr::Not(e) => match truth(&e.eval(row)?)? {
                None => Null,
                Some(b) => Bool(!b),
            },
            Expr::Neg(e) => match e.eval(row)? {
                Null => Null,
                Value::Int(i) => Value::Int(
                    i.checked_neg()
                        .ok_or_else(|| Error::InvalidInput("integer overflow".into()))?,
                ),
                Value::Float(f) => Value::Float(-f),
                v => {
                    return Err(Error::InvalidInput(format!(
                        "type mismatch: cannot negate {}",
                        v.type_name()
                    )));
                }
            },
            Expr::And(a, b) => {
                let l = truth(&a.eval(row)?)?;
                if l == Some(false) {
                    return Ok(Bool(false));
                }
                match (l, truth(&b.eval(row)?)?) {
                    (_, Some(false)) => Bool(false),
                    (Some(true), Some(true)) => Bool(true),
                    _ => Null,
                }
            }
            Expr::Or(a, b) => {
                let l = truth(&a.eval(row)?)?;
                if l == Some(true) {
                    return Ok(Bool(true));
                }
                match (l, truth(&b.eval(row)?)?) {
                    (_, Some(true)) => Bool(true),
                    (Some(false), Some(false)) => Bool(false),
                    _ => Null,
                }
            }
            // Columns and literals are compared in place, without copying them.
            Expr::Cmp(op, a, b) if a.as_ref_in(row).is_some() && b.as_ref_in(row).is_some() => {
                match (a.as_ref_in(row), b.as_ref_in(row)) {
                    (Some(x), Some(y)) => match compare_operands(a, x, b, y)? {
                        None => Null,
                        Some(o) => Bool(op.holds(o)),
                    },
                    _ => Null,
                }
            }
            Expr::Cmp(op, a, b) => match compare_operands(a, &a.eval(row)?, b, &b.eval(row)?)? {
                None => Null,
                Some(o) => Bool(op.holds(o)),
            },
            Expr::Arith(op, a, b) => arith(*op, &a.eval(row)?, &b.eval(row)?)?,
            Expr::Concat(a, b) => match (a.eval(row)?, b.eval(row)?) {
                (Null, _) | (_, Null) => Null,
                (x, y) => concat_capped(&[text_arg(&x), text_arg(&y)])?,
            },
            Expr::IsNull(e, negated) => Bool(e.eval(row)?.is_null() != *negated),
            Expr::IsDistinct(a, b, negated) => {
                let (x, y) = (a.eval(row)?, b.eval(row)?);
                let same = match (&x, &y) {
                    (Null, Null) => true,
                    (Null, _) | (_, Null) => false,
                    _ => compare(&x, &y)? == Some(Ordering::Equal),
                };
                Bool(same == *negated)
            }
            Expr::InList(e, list, negated) => {
                let v = e.eval(row)?;
                if v.is_null() {
                    return Ok(Null);
                }
                let mut saw_null = false;
                for item in list {
                    match compare(&v, &item.eval(row)?)? {
                        Some(Ordering::Equal) => return Ok(Bool(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null { Null } else { Bool(*negated) }
            }
            Expr::InSet(e, set, has_null, negated) => {
                let v = e.eval(row)?;
                // Against no rows at all, IN is FALSE even for NULL; against any row (a NULL
                // row included) a NULL operand gives NULL.
                if v.is_null() {
                    return Ok(if set.is_empty() && !has_null {
                        Bool(*negated)
                    } else {
                        Null
                    });
                }
                if set.binary_search_by(|x| x.total_cmp(&v)).is_ok() {
                    Bool(!negated)
                } else if *has_null {
                    Null
                } else {
                    Bool(*negated)
                }
            }
            Expr::Between(e, lo, hi, negated) => {
                let v = e.eval(row)?;
                let ge = compare(&v, &lo.eval(row)?)?.map(|o| o != Ordering::Less);
                let le = compare(&v, &hi.eval(row)?)?.map(|o| o != Ordering::Greater);
                let inside = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                match inside {
                    None => Null,
                    Some(b) => Bool(b != *negated),
                }
            }
            Expr::Like(e, p, negated, escape) => match (e.eval(row)?, p.eval(row)?) {
                (Null, _) | (_, Null) => Null,
                (v, pat) => {
                    let m = like_checked(&v.to_string(), &pat.to_string(), *escape)?;
                    Bool(m != *negated)
                }
            },
            Expr::Case(operand, whens, otherwise) => {
                let subject = operand.as_ref().map(|o| o.eval(row)).transpose()?;
                for (when, then) in whens {
                    let hit = match &subject {
                        Some(s) => compare(s, &when.eval(row)?)? == Some(Ordering::Equal),
                        None => truth(&when.eval(row)?)? == Some(true),
                    };
                    if hit {
                        return then.eval(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row)?,
                    None => Null,
                }
            }
            Expr::Cast(e, t) => cast(e.eval(row)?, *t)?,
            Expr::Func(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval(row)?);
                }
                call(*f, vals)?
            }
            Expr::Param(i) => {
                return Err(Error::InvalidInput(format!(
                    "parameter ${} has no value",
                    i + 1
                )));
            }
            Expr::Subquery(_) | Expr::Outer(_) => {
                return Err(Error::InvalidInput(
                    "internal: a subquery was not run before its statement".into(),
                ));
            }
        })
    }

    /// The value of a column or literal, borrowed from the row or the plan.
    fn as_ref_in<'a>(&'a self, row: &'a [Value]) -> Option<&'a Value> {
        match self {
            Expr::Literal(v) => Some(v),
            Expr::Column(i) => row.get(*i),
            _ => None,
        }
    }

    /// True when evaluating the expression reads no column, parameter or subquery (it is a
    /// constant).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(
                e,
                Expr::Column(_)
                    | Expr::Func(Func::Now, _)
                    | Expr::Param(_)
                    | Expr::Subquery(_)
                    | Expr::Outer(_)
            ) {
                constant = false;
            }
        });
        constant
    }

    /// True when the expression reads no column of the row: its value is fixed once the
    /// statement's parameters and subqueries are known (a key bound can be built from it).
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.visit(&mut |e| match e {
            Expr::Column(_) | Expr::Func(Func::Now, _) => independent = false,
            Expr::Subquery(q) if q.correlated => independent = false,
            _ => {}
        });
        independent
    }

    /// True when the expression holds a correlated subquery, to run for each row.
    pub fn has_correlated(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if let Expr::Subquery(q) = e {
                found |= q.correlated;
            }
        });
        found
    }

    /// True when the expression holds a parameter or a subquery, which
    /// [`crate::execution::instantiate`] must replace before it can be evaluated.
    pub fn needs_values(&self) -> bool {
        let mut needs = false;
        self.visit(&mut |e| {
            if matches!(e, Expr::Param(_) | Expr::Subquery(_)) {
                needs = true;
            }
        });
        needs
    }

    /// True when the expression holds a parameter (`$n`) outside subquery plans: what the
    /// executor binds to the execution's values before it runs the node
    /// ([`crate::execution`]). Leaves answer without walking.
    pub fn has_params(&self) -> bool {
        match self {
            Expr::Param(_) => true,
            Expr::Literal(_) | Expr::Column(_) | Expr::Outer(_) => false,
            _ => self.children().iter().any(|c| c.has_params()),
        }
    }

    /// Calls `f` on this node and every node below it (not inside subquery plans).
    #[recursive::recursive]
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// The expressions directly below this one (a subquery's IN operand, not its plan).
    pub fn children(&self) -> Vec<&Expr> {
        expr_children!(self, iter)
    }

    /// The expressions directly below this one, to rewrite in place.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        expr_children!(self, iter_mut, mut)
    }

    /// The plans of the subqueries in this expression (not those nested inside them).
    pub fn subquery_plans(&self) -> Vec<&crate::plan::Plan> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            if let Expr::Subquery(q) = e {
                out.push(&*q.plan);
            }
            stack.extend(e.children());
        }
        out
    }

    /// [`Expr::subquery_plans`], to change them (a plan shared with other copies of the
    /// statement is copied first).
    pub fn subquery_plans_mut(&mut self) -> Vec<&mut crate::plan::Plan> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Subquery(q) => {
                    let Subquery { plan, kind, .. } = &mut **q;
                    if let SubqueryKind::In { operand, .. } = kind {
                        stack.push(operand);
                    }
                    out.push(Arc::make_mut(plan));
                }
                e => stack.extend(e.children_mut()),
            }
        }
        out
    }

    /// Which columns of a row `width` wide `exprs` read; `None` when one of them holds a
    /// subquery (which may read the whole row through outer references) or reads past
    /// `width`.
    pub fn columns_read<'e>(
        width: usize,
        exprs: impl IntoIterator<Item = &'e Expr>,
    ) -> Option<Vec<bool>> {
        let mut read = vec![false; width];
        for e in exprs {
            if !e.subquery_plans().is_empty() {
                return None;
            }
            for c in e.columns() {
                *read.get_mut(c)? = true;
            }
        }
        Some(read)
    }

    /// Rewrites every column position with `f` (used to move an expression between the
    /// row layouts of a join and its inputs).
    pub fn map_columns(&self, f: &dyn Fn(usize) -> usize) -> Expr {
        let mut rewrite = |e: &Expr| -> Result<Option<Expr>> {
            Ok(match e {
                Expr::Column(i) => Some(Expr::Column(f(*i))),
                _ => None,
            })
        };
        // The rewrite never fails.
        self.transform(&mut rewrite)
            .unwrap_or_else(|_| self.clone())
    }

    /// A copy of the expression where every node for which `f` returns a replacement is
    /// replaced (its children are not visited); the other nodes are copied with their
    /// children transformed. A subquery's plan is not entered, its IN operand is.
    #[recursive::recursive]
    pub fn transform(&self, f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>>) -> Result<Expr> {
        if let Some(replaced) = f(self)? {
            return Ok(replaced);
        }
        type F<'f> = dyn FnMut(&Expr) -> Result<Option<Expr>> + 'f;
        fn m(e: &Expr, f: &mut F<'_>) -> Result<Box<Expr>> {
            Ok(Box::new(e.transform(f)?))
        }
        Ok(match self {
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Column(i) => Expr::Column(*i),
            Expr::Param(i) => Expr::Param(*i),
            Expr::Outer(i) => Expr::Outer(*i),
            Expr::Not(e) => Expr::Not(m(e, f)?),
            Expr::Neg(e) => Expr::Neg(m(e, f)?),
            Expr::And(a, b) => Expr::And(m(a, f)?, m(b, f)?),
            Expr::Or(a, b) => Expr::Or(m(a, f)?, m(b, f)?),
            Expr::Cmp(op, a, b) => Expr::Cmp(*op, m(a, f)?, m(b, f)?),
            Expr::Arith(op, a, b) => Expr::Arith(*op, m(a, f)?, m(b, f)?),
            Expr::Concat(a, b) => Expr::Concat(m(a, f)?, m(b, f)?),
            Expr::IsNull(e, n) => Expr::IsNull(m(e, f)?, *n),
            Expr::IsDistinct(a, b, n) => Expr::IsDistinct(m(a, f)?, m(b, f)?, *n),
            Expr::InList(e, l, n) => {
                let e = m(e, f)?;
                let l = l.iter().map(|x| x.transform(f)).collect::<Result<_>>()?;
                Expr::InList(e, l, *n)
            }
            Expr::InSet(e, s, h, n) => Expr::InSet(m(e, f)?, s.clone(), *h, *n),
            Expr::Between(a, b, c, n) => Expr::Between(m(a, f)?, m(b, f)?, m(c, f)?, *n),
            Expr::Like(a, b, n, esc) => Expr::Like(m(a, f)?, m(b, f)?, *n, *esc),
            Expr::Case(o, w, e) => {
                let o = o.as_ref().map(|x| m(x, f)).transpose()?;
                let w = w
                    .iter()
                    .map(|(a, b)| Ok((a.transform(f)?, b.transform(f)?)))
                    .collect::<Result<_>>()?;
                let e = e.as_ref().map(|x| m(x, f)).transpose()?;
                Expr::Case(o, w, e)
            }
            Expr::Cast(e, t) => Expr::Cast(m(e, f)?, *t),
            Expr::Func(func, args) => Expr::Func(
                *func,
                args.iter().map(|x| x.transform(f)).collect::<Result<_>>()?,
            ),
            Expr::Subquery(q) => {
                let kind = match &q.kind {
                    SubqueryKind::In { operand, negated } => SubqueryKind::In {
                        operand: m(operand, f)?,
                        negated: *negated,
                    },
                    other => other.clone(),
                };
                Expr::Subquery(Box::new(Subquery {
                    plan: q.plan.clone(),
                    kind,
                    correlated: q.correlated,
                }))
            }
        })
    }

    /// The expression with its parameters replaced by their values (then folded).
    pub fn with_params(&self, params: &[Value]) -> Result<Expr> {
        let mut bind = |e: &Expr| -> Result<Option<Expr>> {
            Ok(match e {
                Expr::Param(i) => Some(Expr::Literal(param_value(*i, params)?)),
                _ => None,
            })
        };
        Ok(self.transform(&mut bind)?.fold())
    }

    /// A copy with `params` in place of its parameters, nothing else changed (no folding):
    /// what an operator evaluates for one execution of a kept plan.
    pub fn bound(&self, params: &[Value]) -> Result<Expr> {
        let mut e = self.clone();
        e.bind_in_place(params)?;
        Ok(e)
    }

    #[recursive::recursive]
    fn bind_in_place(&mut self, params: &[Value]) -> Result<()> {
        if let Expr::Param(i) = *self {
            *self = Expr::Literal(param_value(i, params)?);
            return Ok(());
        }
        for c in self.children_mut() {
            c.bind_in_place(params)?;
        }
        Ok(())
    }

    /// The column positions the expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut cols = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(i) = e {
                cols.push(*i);
            }
        });
        cols
    }

    /// Splits `a AND b AND c` into its conjuncts.
    #[recursive::recursive]
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(a, b) => {
                let mut v = a.conjuncts();
                v.extend(b.conjuncts());
                v
            }
            other => vec![other],
        }
    }

    /// Joins conjuncts with AND (`None` for none).
    pub fn all_of(conjuncts: Vec<Expr>) -> Option<Expr> {
        conjuncts.into_iter().reduce(Expr::and)
    }

    /// Replaces constant sub-expressions by their value (errors are left to run time).
    #[recursive::recursive]
    pub fn fold(self) -> Expr {
        if !matches!(self, Expr::Literal(_)) && self.is_constant() {
            if let Ok(v) = self.eval(&[]) {
                return Expr::Literal(v);
            }
            return self;
        }
        match self {
            Expr::And(a, b) => {
                let (a, b) = (a.fold(), b.fold());
                match (&a, &b) {
                    (Expr::Literal(Value::Bool(true)), _) => b,
                    (_, Expr::Literal(Value::Bool(true))) => a,
                    _ => Expr::and(a, b),
                }
            }
            Expr::Or(a, b) => Expr::Or(Box::new(a.fold()), Box::new(b.fold())),
            Expr::Not(e) => Expr::Not(Box::new(e.fold())),
            Expr::Cmp(op, a, b) => Expr::Cmp(op, Box::new(a.fold()), Box::new(b.fold())),
            Expr::Arith(op, a, b) => Expr::Arith(op, Box::new(a.fold()), Box::new(b.fold())),
            Expr::InList(e, l, n) => Expr::InList(
                Box::new(e.fold()),
                l.into_iter().map(Expr::fold).collect(),
                n,
            ),
            Expr::Between(a, b, c, n) => Expr::Between(
                Box::new(a.fold()),
                Box::new(b.fold()),
                Box::new(c.fold()),
                n,
            ),
            Expr::Func(f, args) => Expr::Func(f, args.into_iter().map(Expr::fold).collect()),
            other => other,
        }
    }
}

/// SQL `LIKE` with `%` and `_`, case-insensitive for ASCII letters.
pub fn like(text: &str, pattern: &str, escape: Option<char>) -> bool {
    like_checked(text, pattern, escape).unwrap_or(false)
}

/// How many matcher steps pass between two looks at the statement's cancel flag.
const LIKE_STEPS_PER_CHECK: u32 = 1 << 16;

/// [`like`], stopping when the running statement is cancelled or past its deadline (a
/// pattern of many `%` over a long text takes time proportional to their product).
fn like_checked(text: &str, pattern: &str, escape: Option<char>) -> Result<bool> {
    let mut steps = 0u32;
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut p: Vec<(char, bool)> = Vec::new(); // (char, is literal)
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(n) = chars.next() {
                p.push((n.to_ascii_lowercase(), true));
            }
        } else {
            p.push((c.to_ascii_lowercase(), false));
        }
    }
    // Iterative matcher with backtracking to the last `%`.
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(LIKE_STEPS_PER_CHECK) {
            check_interrupted()?;
        }
        if pi < p.len() && !p[pi].1 && p[pi].0 == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && ((!p[pi].1 && p[pi].0 == '_') || p[pi].0 == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return Ok(false);
        }
    }
    while pi < p.len() && !p[pi].1 && p[pi].0 == '%' {
        pi += 1;
    }
    Ok(pi == p.len())
}

fn text_arg(v: &Value) -> String {
    v.to_string()
}

/// A text built by a function, refused past `limits.max_value_bytes`.
fn capped(s: String) -> Result<String> {
    check_value_size(s.len())?;
    Ok(s)
}

/// `||` and `concat`: the parts joined, refused before anything is built when the result
/// would pass `limits.max_value_bytes`.
fn concat_capped(parts: &[String]) -> Result<Value> {
    check_value_size(parts.iter().map(String::len).fold(0, usize::saturating_add))?;
    Ok(Value::Text(parts.concat()))
}

/// `a << by` as SQLite computes it: a negative count shifts right (arithmetically), and a
/// count of 64 or more leaves 0 (or -1, shifting a negative number right).
fn shift(a: i64, by: i64) -> i64 {
    if by >= 64 {
        0
    } else if by >= 0 {
        a << by
    } else if by > -64 {
        a >> -by
    } else if a < 0 {
        -1
    } else {
        0
    }
}

/// [`compare`] for a comparison's operands, where a quoted literal compared with a number
/// that is no literal is read as a number (`oid = '16384'`): PostgreSQL gives such a
/// literal the other side's type, SQLite the other side's numeric affinity. Only tried when
/// the values do not compare as they are.
fn compare_operands(a: &Expr, x: &Value, b: &Expr, y: &Value) -> Result<Option<Ordering>> {
    let failed = match compare(x, y) {
        Ok(o) => return Ok(o),
        Err(e) => e,
    };
    let as_number = |s: &str| -> Option<Value> {
        let s = s.trim();
        s.parse::<i64>().map(Value::Int).ok().or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float)
        })
    };
    let literal = |e: &Expr| matches!(e, Expr::Literal(_));
    match (x, y) {
        (Value::Int(_) | Value::Float(_), Value::Text(s)) if literal(b) && !literal(a) => {
            match as_number(s) {
                Some(n) => compare(x, &n),
                None => Err(failed),
            }
        }
        (Value::Text(s), Value::Int(_) | Value::Float(_)) if literal(a) && !literal(b) => {
            match as_number(s) {
                Some(n) => compare(&n, y),
                None => Err(failed),
            }
        }
        _ => Err(failed),
    }
}

/// Bytes as PostgreSQL's `pg_size_pretty` writes them: under 10 kB in bytes, then the
/// largest unit that keeps the number at least 10 (rounded half up).
fn size_pretty(bytes: i64) -> String {
    let mut n = bytes;
    if n.abs() < 10 * 1024 {
        return format!("{n} bytes");
    }
    for unit in ["kB", "MB", "GB", "TB"] {
        let next = n / 1024;
        if next.abs() < 10 * 1024 || unit == "TB" {
            // Half up, as PostgreSQL rounds.
            let rounded = (n + n.signum() * 512) / 1024;
            return format!("{rounded} {unit}");
        }
        n = next;
    }
    unreachable!("the loop ends at TB")
}

/// Whether `pattern` (a regular expression, the `regex` crate's syntax, which PostgreSQL's
/// common patterns share) matches anywhere in `text`. The last patterns are kept compiled
/// per thread: a condition over many rows compiles its pattern once.
fn regexp_like(text: &str, pattern: &str, flags: &str) -> Result<bool> {
    use std::cell::RefCell;
    const KEPT: usize = 16;
    thread_local! {
        static COMPILED: RefCell<Vec<(String, bool, regex::Regex)>> = const { RefCell::new(Vec::new()) };
    }
    let mut ignore_case = false;
    for f in flags.chars() {
        match f {
            'i' => ignore_case = true,
            'c' => ignore_case = false,
            other => {
                return Err(Error::InvalidInput(format!(
                    "regexp_like: unknown flag {other:?} (there are i and c)"
                )));
            }
        }
    }
    COMPILED.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some((_, _, re)) = kept
            .iter()
            .find(|(p, i, _)| p == pattern && *i == ignore_case)
        {
            return Ok(re.is_match(text));
        }
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(ignore_case)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                Error::InvalidInput(format!("invalid regular expression {pattern:?}: {e}"))
            })?;
        let found = re.is_match(text);
        if kept.len() == KEPT {
            kept.remove(0);
        }
        kept.push((pattern.to_string(), ignore_case, re));
        Ok(found)
    })
}

fn call(f: Func, args: Vec<Value>) -> Result<Value> {
    use Value::*;
    let first_null = args.first().is_some_and(Value::is_null);
    Ok(match f {
        Func::Coalesce => args.into_iter().find(|v| !v.is_null()).unwrap_or(Null),
        Func::Concat => {
            let parts: Vec<String> = args.iter().filter(|v| !v.is_null()).map(text_arg).collect();
            concat_capped(&parts)?
        }
        Func::NullIf => {
            if compare(&args[0], &args[1])? == Some(Ordering::Equal) {
                Null
            } else {
                args[0].clone()
            }
        }
        Func::TypeOf => Text(
            match &args[0] {
                Null => "null",
                Int(_) => "integer",
                Float(_) => "real",
                Text(_) => "text",
                Blob(_) => "blob",
                Bool(_) => "boolean",
                Timestamp(_) => "timestamp",
            }
            .into(),
        ),
        Func::Least | Func::Greatest => {
            if args.iter().any(Value::is_null) {
                return Ok(Null);
            }
            let mut best = args[0].clone();
            for v in &args[1..] {
                let o = compare(v, &best)?.unwrap_or(Ordering::Equal);
                if (f == Func::Least && o == Ordering::Less)
                    || (f == Func::Greatest && o == Ordering::Greater)
                {
                    best = v.clone();
                }
            }
            best
        }
        Func::Now => Timestamp(chrono_storage::Timestamp::now().as_micros() as i64),
        Func::CurrentSchema => Text(crate::system_catalog::PUBLIC.into()),
        Func::CurrentDatabase => Text(crate::system_catalog::DATABASE.into()),
        Func::NoneKept => Null,
        Func::UniqueId => {
            return Err(Error::InvalidInput(
                "unique_id() gives a value only as a column's DEFAULT, when a row is inserted \
                 (SERIAL, GENERATED … AS IDENTITY)"
                    .into(),
            ));
        }
        Func::JsonBuildObject => {
            if !args.len().is_multiple_of(2) {
                return Err(Error::InvalidInput(
                    "json_build_object takes keys and values in pairs".into(),
                ));
            }
            let mut object = serde_json::Map::new();
            for pair in args.chunks_exact(2) {
                if pair[0].is_null() {
                    return Err(Error::InvalidInput(
                        "json_build_object: a key is NULL".into(),
                    ));
                }
                let value = match &pair[1] {
                    Null => serde_json::Value::Null,
                    Bool(b) => serde_json::Value::Bool(*b),
                    Int(i) => serde_json::Value::from(*i),
                    Float(f) => serde_json::Value::from(*f),
                    v => serde_json::Value::String(text_arg(v)),
                };
                object.insert(text_arg(&pair[0]), value);
            }
            concat_capped(&[serde_json::Value::Object(object).to_string()])?
        }
        // A NULL type modifier is the usual second argument.
        Func::FormatType => match &args[0] {
            Null => Null,
            v => Text(crate::system_catalog::format_type(crate::types::to_integer(v)).into()),
        },
        _ if first_null || args.iter().any(Value::is_null) => Null,
        Func::Abs => match &args[0] {
            Int(i) => Int(i
                .checked_abs()
                .ok_or_else(|| Error::InvalidInput("integer overflow".into()))?),
            Float(x) => Float(x.abs()),
            v => return Err(not_numeric("abs", v)),
        },
        Func::Sign => match &args[0] {
            Int(i) => Int(i.signum()),
            Float(x) => Int(if *x > 0.0 {
                1
            } else if *x < 0.0 {
                -1
            } else {
                0
            }),
            v => return Err(not_numeric("sign", v)),
        },
        Func::BitNot => Int(!crate::types::to_integer(&args[0])),
        Func::BitAnd | Func::BitOr | Func::ShiftLeft | Func::ShiftRight => {
            let (a, b) = (
                crate::types::to_integer(&args[0]),
                crate::types::to_integer(&args[1]),
            );
            Int(match f {
                Func::BitAnd => a & b,
                Func::BitOr => a | b,
                Func::ShiftLeft => shift(a, b),
                _ => shift(a, b.checked_neg().unwrap_or(i64::MAX)),
            })
        }
        Func::RegexpLike => {
            let flags = args.get(2).map(text_arg).unwrap_or_default();
            Bool(regexp_like(
                &text_arg(&args[0]),
                &text_arg(&args[1]),
                &flags,
            )?)
        }
        Func::PgGetExpr => args[0].clone(),
        Func::SizePretty => Text(size_pretty(crate::types::to_integer(&args[0]))),
        Func::PgGetUserById => Text(crate::system_catalog::OWNER.into()),
        Func::IsVisible => Bool(true),
        Func::RelationIsPublishable => Bool(false),
        Func::EncodingToChar => Text(
            if crate::types::to_integer(&args[0]) == 6 {
                "UTF8"
            } else {
                ""
            }
            .into(),
        ),
        Func::ArrayToString => {
            let array = text_arg(&args[0]);
            let Some(inner) = array.strip_prefix('{').and_then(|a| a.strip_suffix('}')) else {
                return Err(Error::InvalidInput(format!(
                    "array_to_string expects an array in PostgreSQL's text form ({{a,b}}), got \
                     {}",
                    crate::types::display_literal(&args[0])
                )));
            };
            let sep = text_arg(&args[1]);
            let null_text = args.get(2).map(text_arg);
            let items: Vec<String> = if inner.is_empty() {
                Vec::new()
            } else {
                inner
                    .split(',')
                    .filter_map(|x| match (x, &null_text) {
                        ("NULL", None) => None,
                        ("NULL", Some(n)) => Some(n.clone()),
                        (x, _) => Some(x.trim_matches('"').to_string()),
                    })
                    .collect()
            };
            concat_capped(&[items.join(&sep)])?
        }
        Func::RegNamespace => crate::system_catalog::namespace(&args[0]),
        Func::ToRegType => crate::system_catalog::type_by_name(&text_arg(&args[0]))
            .map(Int)
            .unwrap_or(Null),
        Func::Lower => Text(capped(text_arg(&args[0]).to_lowercase())?),
        Func::Upper => Text(capped(text_arg(&args[0]).to_uppercase())?),
        Func::Length => match &args[0] {
            Blob(b) => Int(b.len() as i64),
            v => Int(text_arg(v).chars().count() as i64),
        },
        Func::Round => {
            let digits = match args.get(1) {
                Some(Int(d)) => *d,
                Some(v) => return Err(not_numeric("round", v)),
                None => 0,
            };
            match &args[0] {
                Int(i) if digits >= 0 => Float(*i as f64),
                Int(_) | Float(_) => {
                    let x = to_f64(&args[0]);
                    let scale = 10f64.powi(digits.clamp(-30, 30) as i32);
                    Float((x * scale).round() / scale)
                }
                v => return Err(not_numeric("round", v)),
            }
        }
        Func::Floor | Func::Ceil => match &args[0] {
            Int(i) => Int(*i),
            Float(x) => Float(if f == Func::Floor {
                x.floor()
            } else {
                x.ceil()
            }),
            v => return Err(not_numeric("floor/ceil", v)),
        },
        Func::Substr => {
            let s: Vec<char> = text_arg(&args[0]).chars().collect();
            let start = match &args[1] {
                Int(i) => *i,
                v => return Err(not_numeric("substr", v)),
            };
            let len = match args.get(2) {
                Some(Int(l)) => Some(*l),
                Some(v) => return Err(not_numeric("substr", v)),
                None => None,
            };
            // SQLite semantics: 1-based; 0 and negatives count from before the start / the end.
            let n = s.len() as i64;
            let mut from = if start > 0 {
                start - 1
            } else if start < 0 {
                n.saturating_add(start)
            } else {
                -1
            };
            let mut to = match len {
                Some(l) if l >= 0 => from.saturating_add(l),
                Some(l) => {
                    let end = from;
                    from = from.saturating_add(l);
                    end
                }
                None => n,
            };
            from = from.clamp(0, n);
            to = to.clamp(0, n);
            if to <= from {
                Text(String::new())
            } else {
                Text(s[from as usize..to as usize].iter().collect())
            }
        }
        Func::Trim => Text(text_arg(&args[0]).trim_matches(' ').to_string()),
        Func::LTrim => Text(text_arg(&args[0]).trim_start_matches(' ').to_string()),
        Func::RTrim => Text(text_arg(&args[0]).trim_end_matches(' ').to_string()),
        Func::Replace => {
            let from = text_arg(&args[1]);
            let text = text_arg(&args[0]);
            if from.is_empty() {
                Text(text)
            } else {
                let to = text_arg(&args[2]);
                // The size is known before anything is built.
                let hits = text.matches(from.as_str()).count();
                let size =
                    (text.len() - hits * from.len()).saturating_add(hits.saturating_mul(to.len()));
                check_value_size(size)?;
                Text(text.replace(&from, &to))
            }
        }
        Func::Instr => {
            let hay = text_arg(&args[0]);
            let needle = text_arg(&args[1]);
            Int(hay
                .find(&needle)
                .map(|b| hay[..b].chars().count() as i64 + 1)
                .unwrap_or(0))
        }
    })
}

fn not_numeric(f: &str, v: &Value) -> Error {
    Error::InvalidInput(format!(
        "type mismatch: {f}() expects a number, got {}",
        v.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            (0usize..4).prop_map(Expr::Column),
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-2i64..3).prop_map(Value::Int),
                Just(Value::Float(0.5)),
                Just(Value::Text("b".into())),
            ]
            .prop_map(Expr::Literal),
        ]
    }

    fn condition() -> impl Strategy<Value = Expr> {
        let ops = prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::NotEq),
            Just(CmpOp::Lt),
            Just(CmpOp::GtEq)
        ];
        leaf().prop_recursive(4, 24, 2, move |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(a.into(), b.into())),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(a.into(), b.into())),
                inner.clone().prop_map(|a| Expr::Not(a.into())),
                (ops.clone(), inner.clone(), inner).prop_map(|(o, a, b)| Expr::Cmp(
                    o,
                    a.into(),
                    b.into()
                )),
            ]
        })
    }

    proptest! {
        /// `test` is exactly the truth of `eval`: the same answer, or an error for both.
        #[test]
        fn test_is_the_truth_of_eval(e in condition(), a in -2i64..3, b in any::<bool>(), null in any::<bool>()) {
            let row = vec![
                Value::Int(a),
                Value::Bool(b),
                if null { Value::Null } else { Value::Text("a".into()) },
                Value::Float(a as f64 / 2.0),
            ];
            let via_eval = e.eval(&row).and_then(|v| truth(&v));
            match (e.test(&row), via_eval) {
                (Ok(x), Ok(y)) => prop_assert_eq!(x, y),
                (Err(_), Err(_)) => {}
                (x, y) => prop_assert!(false, "{:?} vs {:?} for {:?}", x, y, e),
            }
        }
    }

    #[test]
    fn substr_follows_sqlite_and_never_overflows() {
        let sub = |args: Vec<Value>| call(Func::Substr, args).unwrap();
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            sub(vec![t("chronodb"), Value::Int(0), Value::Int(3)]),
            t("ch")
        );
        assert_eq!(sub(vec![t("chronodb"), Value::Int(-2)]), t("db"));
        assert_eq!(
            sub(vec![t("chronodb"), Value::Int(4), Value::Int(-2)]),
            t("hr")
        );
        assert_eq!(
            sub(vec![t("abc"), Value::Int(i64::MIN), Value::Int(i64::MIN)]),
            t("")
        );
        assert_eq!(
            sub(vec![t("abc"), Value::Int(2), Value::Int(i64::MAX)]),
            t("bc")
        );
    }

    #[test]
    fn like_matches_sql_patterns() {
        assert!(like("Alice", "al%", None));
        assert!(like("Alice", "_lic_", None));
        assert!(!like("Alice", "b%", None));
        assert!(like("50%", "50!%", Some('!')));
        assert!(like("abcabc", "%bc", None));
        assert!(!like("ab", "a_c", None));
    }

    #[test]
    fn three_valued_logic() {
        let null = || Box::new(Expr::Literal(Value::Null));
        let t = || Box::new(Expr::Literal(Value::Bool(true)));
        let f = || Box::new(Expr::Literal(Value::Bool(false)));
        assert_eq!(
            Expr::And(null(), f()).eval(&[]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(Expr::And(null(), t()).eval(&[]).unwrap(), Value::Null);
        assert_eq!(Expr::Or(null(), t()).eval(&[]).unwrap(), Value::Bool(true));
        assert_eq!(Expr::Not(null()).eval(&[]).unwrap(), Value::Null);
        let in_list = Expr::InList(
            Box::new(Expr::Literal(Value::Int(3))),
            vec![Expr::Literal(Value::Int(1)), Expr::Literal(Value::Null)],
            true,
        );
        assert_eq!(in_list.eval(&[]).unwrap(), Value::Null);
    }
}
