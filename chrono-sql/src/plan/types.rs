//! The types of a plan's output columns and of its parameters, worked out without running
//! it — what a protocol that describes a statement before it runs needs (PostgreSQL's
//! extended query protocol: `Describe` answers with the result's column types and the
//! parameters' types, and clients send and read values by them).
//!
//! ChronoDB's values carry their own type, so a column's type here is what its values are
//! *declared* to be: a table column's type, a literal's, an expression's by its operator
//! (comparisons are BOOLEAN, `||` TEXT, `COUNT` BIGINT, `AVG` DOUBLE…). `None` means the
//! type cannot be known before the values are (a NULL literal, a parameter used nowhere a
//! type follows, a column of a recursive query's work table).
//!
//! A parameter's type comes from where it is used: compared with, or computed with, an
//! expression of known type (`id = $1`, `$1 BETWEEN lo AND hi`, `x IN ($1, $2)`,
//! `price * $1`), inserted into a column (`VALUES ($1, $2)`), assigned to one
//! (`SET c = $1`), or `LIKE`'s pattern and `||`'s operands (TEXT). The first use decides.

use crate::expr::{Expr, Func, SubqueryKind};
use crate::types::DataType;
use chrono_storage::Value;

use super::{AggCall, AggFunc, Node, Plan, WindowFunc};

/// A value's type (`None` for NULL).
pub fn value_type(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => DataType::Bool,
        Value::Int(_) => DataType::Int,
        Value::Float(_) => DataType::Float,
        Value::Text(_) => DataType::Text,
        Value::Blob(_) => DataType::Blob,
        Value::Timestamp(_) => DataType::Timestamp,
    })
}

/// The type of a column that takes values of both types: the same type, the known one
/// when the other is unknown, DOUBLE for a mix of numbers, else unknown.
pub fn merge(a: Option<DataType>, b: Option<DataType>) -> Option<DataType> {
    match (a, b) {
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(DataType::Int), Some(DataType::Float))
        | (Some(DataType::Float), Some(DataType::Int)) => Some(DataType::Float),
        (Some(_), Some(_)) => None,
        (x, None) | (None, x) => x,
    }
}

/// Works out the types of `plan`'s output columns and, into `params` (one slot per
/// parameter of the statement), the types of the parameters it uses.
pub fn output_types(plan: &Plan, params: &mut [Option<DataType>]) -> Vec<Option<DataType>> {
    let width = plan.columns.len();
    let mut out = match &plan.node {
        Node::Scan { table, filter, .. } => {
            let mut row = table_row(table);
            // A versions read: `_system_from`, `_system_to`, `_operation`, `_principal`.
            while row.len() < width {
                row.push(Some(if row.len() < table.columns.len() + 2 {
                    DataType::Timestamp
                } else {
                    DataType::Text
                }));
            }
            if let Some(f) = filter {
                note_params(f, &row, params);
            }
            row
        }
        Node::Values { rows } => {
            let mut row = vec![None; width];
            for r in rows {
                for (slot, e) in row.iter_mut().zip(r) {
                    *slot = merge(*slot, expr_type(e, &[], params));
                }
            }
            row
        }
        Node::Filter { input, predicate } => {
            let row = output_types(input, params);
            note_params(predicate, &row, params);
            row
        }
        Node::Project { input, exprs } => {
            let row = output_types(input, params);
            exprs.iter().map(|e| typed(e, &row, params)).collect()
        }
        Node::Join {
            inputs,
            on,
            at,
            after,
            ..
        } => {
            let row: Vec<_> = inputs
                .iter()
                .flat_map(|i| output_types(i, params))
                .collect();
            for e in on.iter().chain(at).chain(after).flatten() {
                note_params(e, &row, params);
            }
            row
        }
        Node::HashJoin {
            left,
            right,
            left_keys,
            right_keys,
            residual,
            ..
        } => {
            let l = output_types(left, params);
            let r = output_types(right, params);
            joined(l, r, (left_keys, right_keys), residual.as_ref(), params)
        }
        Node::IndexJoin {
            left,
            table,
            left_keys,
            right_filter,
            residual,
            ..
        } => joined(
            output_types(left, params),
            table_row(table),
            (left_keys, right_filter.as_slice()),
            residual.as_ref(),
            params,
        ),
        Node::NestedLoop {
            left,
            right,
            predicate,
            ..
        } => {
            let l = output_types(left, params);
            let r = output_types(right, params);
            joined(l, r, (&[], &[]), predicate.as_ref(), params)
        }
        Node::Aggregate { input, group, aggs } => {
            let row = output_types(input, params);
            let mut out: Vec<_> = group.iter().map(|e| typed(e, &row, params)).collect();
            out.extend(aggs.iter().map(|a| agg_type(a, &row, params)));
            out
        }
        Node::RecursiveCte { anchor, step, .. } => {
            let row = output_types(anchor, params);
            // The step reads the work table, whose types are the anchor's: its parameters
            // are typed where they meet the step's own tables.
            output_types(step, params);
            row
        }
        Node::WorkTable { .. } => vec![None; width],
        Node::Window { input, calls } => {
            let mut row = output_types(input, params);
            let input_row = row.clone();
            for call in calls {
                for e in call.exprs() {
                    note_params(e, &input_row, params);
                }
                row.push(match &call.func {
                    WindowFunc::RowNumber
                    | WindowFunc::Rank
                    | WindowFunc::DenseRank
                    | WindowFunc::Ntile => Some(DataType::Int),
                    WindowFunc::PercentRank | WindowFunc::CumeDist => Some(DataType::Float),
                    WindowFunc::Lag
                    | WindowFunc::Lead
                    | WindowFunc::FirstValue
                    | WindowFunc::LastValue
                    | WindowFunc::NthValue => call
                        .args
                        .first()
                        .and_then(|e| expr_type(e, &input_row, params)),
                    WindowFunc::Aggregate(a) => agg_type(a, &input_row, params),
                });
            }
            row
        }
        Node::Sort { input, keys } | Node::TopK { input, keys, .. } => {
            let row = output_types(input, params);
            for k in keys {
                note_params(&k.expr, &row, params);
            }
            row
        }
        Node::Limit { input, .. } | Node::Distinct { input } => output_types(input, params),
        Node::SetCompare { left, right, .. } => {
            let row = output_types(left, params);
            output_types(right, params);
            row
        }
        Node::Union { inputs } => {
            let mut row = vec![None; width];
            for i in inputs {
                for (slot, t) in row.iter_mut().zip(output_types(i, params)) {
                    *slot = merge(*slot, t);
                }
            }
            row
        }
        Node::Insert {
            table,
            targets,
            source,
            conflict,
            returning,
            ..
        } => {
            let table_row = table_row(table);
            // The source's values go to the target columns: a parameter among them takes
            // its column's type.
            if let Node::Values { rows } = &source.node {
                for r in rows {
                    for (e, &col) in r.iter().zip(targets) {
                        if let Expr::Param(k) = e {
                            assign(params, *k, table_row.get(col).copied().flatten());
                        }
                    }
                }
            }
            output_types(source, params);
            if let Some(c) = conflict {
                // DO UPDATE reads the existing row, then `excluded`'s.
                let both: Vec<_> = table_row.iter().chain(&table_row).copied().collect();
                for e in c.exprs() {
                    note_params(e, &both, params);
                }
                if let super::ConflictAction::Update { sets, .. } = &c.action {
                    for (col, e) in sets {
                        if let Expr::Param(k) = e {
                            assign(params, *k, table_row.get(*col).copied().flatten());
                        }
                    }
                }
            }
            returning
                .iter()
                .map(|e| typed(e, &table_row, params))
                .collect()
        }
        Node::Update {
            table,
            scan,
            sets,
            returning,
        } => {
            let row = output_types(scan, params);
            for (col, e) in sets {
                if let Expr::Param(k) = e {
                    assign(params, *k, table.columns.get(*col).map(|c| c.data_type));
                }
                note_params(e, &row, params);
            }
            let table_row = table_row(table);
            returning
                .iter()
                .map(|e| typed(e, &table_row, params))
                .collect()
        }
        Node::Delete {
            table,
            scan,
            returning,
        } => {
            output_types(scan, params);
            let table_row = table_row(table);
            returning
                .iter()
                .map(|e| typed(e, &table_row, params))
                .collect()
        }
    };
    out.resize(width, None);
    out
}

/// The types of a table's columns, in order.
fn table_row(table: &crate::catalog::TableDef) -> Vec<Option<DataType>> {
    table.columns.iter().map(|c| Some(c.data_type)).collect()
}

/// A join's row (`l`'s columns, then `right`'s) after typing the parameters of its key
/// expressions (each over its own side) and of the condition over the joined row.
fn joined(
    l: Vec<Option<DataType>>,
    right: Vec<Option<DataType>>,
    (left_exprs, right_exprs): (&[Expr], &[Expr]),
    over_both: Option<&Expr>,
    params: &mut [Option<DataType>],
) -> Vec<Option<DataType>> {
    for e in left_exprs {
        note_params(e, &l, params);
    }
    for e in right_exprs {
        note_params(e, &right, params);
    }
    let row: Vec<_> = l.into_iter().chain(right).collect();
    if let Some(e) = over_both {
        note_params(e, &row, params);
    }
    row
}

/// An expression's type after noting the types of the parameters it uses.
fn typed(e: &Expr, row: &[Option<DataType>], params: &mut [Option<DataType>]) -> Option<DataType> {
    note_params(e, row, params);
    expr_type(e, row, params)
}

fn agg_type(
    a: &AggCall,
    row: &[Option<DataType>],
    params: &mut [Option<DataType>],
) -> Option<DataType> {
    let arg = a.arg.as_ref().and_then(|e| typed(e, row, params));
    match a.func {
        AggFunc::CountStar | AggFunc::Count => Some(DataType::Int),
        AggFunc::Avg | AggFunc::Total => Some(DataType::Float),
        AggFunc::GroupConcat => Some(DataType::Text),
        // SUM over text converts it to numbers, as SQLite does.
        AggFunc::Sum => match arg {
            Some(DataType::Int) => Some(DataType::Int),
            Some(_) => Some(DataType::Float),
            None => None,
        },
        AggFunc::Min | AggFunc::Max | AggFunc::AnyValue => arg,
    }
}

/// Gives parameter `k` type `t` unless an earlier use typed it.
fn assign(params: &mut [Option<DataType>], k: usize, t: Option<DataType>) {
    if let Some(slot) = params.get_mut(k)
        && slot.is_none()
    {
        *slot = t;
    }
}

/// Types the parameters `e` uses from what they meet (see the module's documentation), the
/// subqueries' too.
fn note_params(e: &Expr, row: &[Option<DataType>], params: &mut [Option<DataType>]) {
    // Each operand that is a parameter takes the type of the others.
    let meet = |operands: &[&Expr], params: &mut [Option<DataType>]| {
        let known = operands
            .iter()
            .filter(|o| !matches!(o, Expr::Param(_)))
            .map(|o| expr_type(o, row, params))
            .fold(None, merge);
        for o in operands {
            if let Expr::Param(k) = o {
                assign(params, *k, known);
            }
        }
    };
    match e {
        Expr::Cmp(_, a, b) | Expr::Arith(_, a, b) | Expr::IsDistinct(a, b, _) => {
            meet(&[a, b], params)
        }
        Expr::Between(x, lo, hi, _) => meet(&[x, lo, hi], params),
        Expr::InList(x, list, _) => {
            let operands: Vec<&Expr> = std::iter::once(&**x).chain(list).collect();
            meet(&operands, params)
        }
        Expr::Concat(a, b) => {
            for o in [a, b] {
                if let Expr::Param(k) = **o {
                    assign(params, k, Some(DataType::Text));
                }
            }
        }
        Expr::Like(x, pattern, ..) => {
            for o in [x, pattern] {
                if let Expr::Param(k) = **o {
                    assign(params, k, Some(DataType::Text));
                }
            }
        }
        Expr::Case(Some(operand), arms, _) => {
            for (when, _) in arms {
                meet(&[operand, when], params);
            }
        }
        Expr::Func(Func::Coalesce | Func::NullIf | Func::Least | Func::Greatest, args) => {
            let operands: Vec<&Expr> = args.iter().collect();
            meet(&operands, params)
        }
        Expr::Subquery(s) => {
            // `x IN (SELECT …)`: the operand meets the subquery's column.
            let column = output_types(&s.plan, params).first().copied().flatten();
            if let SubqueryKind::In { operand, .. } = &s.kind
                && let Expr::Param(k) = **operand
            {
                assign(params, k, column);
            }
        }
        _ => {}
    }
    for child in e.children() {
        note_params(child, row, params);
    }
}

/// The type of `e` over a row of types `row` (`None`: not known before its value).
pub fn expr_type(
    e: &Expr,
    row: &[Option<DataType>],
    params: &[Option<DataType>],
) -> Option<DataType> {
    let t = |x: &Expr| expr_type(x, row, params);
    match e {
        Expr::Literal(v) => value_type(v),
        Expr::Column(i) => row.get(*i).copied().flatten(),
        Expr::Param(k) => params.get(*k).copied().flatten(),
        Expr::Outer(_) => None,
        Expr::Not(_)
        | Expr::And(..)
        | Expr::Or(..)
        | Expr::Cmp(..)
        | Expr::IsNull(..)
        | Expr::IsDistinct(..)
        | Expr::InList(..)
        | Expr::InSet(..)
        | Expr::Between(..)
        | Expr::Like(..) => Some(DataType::Bool),
        Expr::Neg(x) => t(x),
        Expr::Arith(_, a, b) => match (t(a), t(b)) {
            (Some(DataType::Int), Some(DataType::Int)) => Some(DataType::Int),
            (Some(DataType::Float), Some(DataType::Int | DataType::Float))
            | (Some(DataType::Int), Some(DataType::Float)) => Some(DataType::Float),
            _ => None,
        },
        Expr::Concat(..) => Some(DataType::Text),
        Expr::Case(_, arms, otherwise) => arms
            .iter()
            .map(|(_, then)| t(then))
            .chain(otherwise.iter().map(|x| t(x)))
            .fold(None, merge),
        Expr::Cast(_, to) => Some(*to),
        Expr::Func(f, args) => {
            let first = || args.first().and_then(&t);
            match f {
                Func::Abs | Func::Sign | Func::Floor | Func::Ceil => first(),
                Func::Round => Some(DataType::Float),
                Func::Lower
                | Func::Upper
                | Func::Substr
                | Func::Trim
                | Func::LTrim
                | Func::RTrim
                | Func::Replace
                | Func::Concat
                | Func::TypeOf => Some(DataType::Text),
                Func::Length | Func::Instr => Some(DataType::Int),
                Func::Coalesce | Func::NullIf | Func::Least | Func::Greatest => {
                    args.iter().map(t).fold(None, merge)
                }
                Func::Now => Some(DataType::Timestamp),
                Func::BitAnd | Func::BitOr | Func::ShiftLeft | Func::ShiftRight | Func::BitNot => {
                    Some(DataType::Int)
                }
                Func::RegexpLike | Func::IsVisible | Func::RelationIsPublishable => {
                    Some(DataType::Bool)
                }
                Func::FormatType
                | Func::PgGetExpr
                | Func::PgGetUserById
                | Func::EncodingToChar
                | Func::ArrayToString
                | Func::CurrentSchema
                | Func::CurrentDatabase
                | Func::NoneKept
                | Func::JsonBuildObject
                | Func::SizePretty => Some(DataType::Text),
                Func::RegNamespace => None,
                Func::ToRegType | Func::UniqueId => Some(DataType::Int),
            }
        }
        Expr::Subquery(s) => match s.kind {
            SubqueryKind::Scalar => output_types(&s.plan, &mut params.to_vec())
                .first()
                .copied()
                .flatten(),
            _ => Some(DataType::Bool),
        },
    }
}
