//! A table filter taken apart into atoms: one conjunct each, with its column, operator and
//! literals when it has that shape (`col op literal`, `col BETWEEN a AND b`,
//! `col IN (…)`, `col IS [NOT] NULL`, `col LIKE 'prefix%'`), or kept as an expression
//! ("other") when it does not.

use chrono_sql::expr::{CmpOp, Expr};
use chrono_storage::Value;

/// The operators the featurization knows (one-hot positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `IN (…)`
    In,
    /// `BETWEEN a AND b`
    Between,
    /// `IS NULL`
    IsNull,
    /// `LIKE 'prefix%'`
    LikePrefix,
    /// `<>`
    NotEq,
    /// `IS NOT NULL`
    IsNotNull,
    /// Anything else (OR, NOT, functions, two columns…), evaluated as an expression.
    Other,
}

impl Op {
    /// Every operator, in one-hot order.
    pub const ALL: [Op; 12] = [
        Op::Eq,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::In,
        Op::Between,
        Op::IsNull,
        Op::LikePrefix,
        Op::NotEq,
        Op::IsNotNull,
        Op::Other,
    ];

    /// Position in [`Op::ALL`].
    pub fn index(self) -> usize {
        Op::ALL.iter().position(|o| *o == self).unwrap_or(11)
    }

    /// From a position in [`Op::ALL`].
    pub fn from_index(i: usize) -> Option<Op> {
        Op::ALL.get(i).copied()
    }
}

/// One conjunct of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// The column it constrains (for "other": its only column, if it has one).
    pub col: Option<usize>,
    /// The operator.
    pub op: Op,
    /// The literals: one for comparisons and LIKE (the prefix), two for BETWEEN, the list
    /// for IN, none for IS [NOT] NULL and "other".
    pub values: Vec<Value>,
    /// The conjunct itself (to evaluate it on rows when the fast path cannot).
    pub expr: Expr,
}

impl Atom {
    /// An atom of a known shape, with its expression rebuilt (for atoms read back from
    /// storage). `None` for [`Op::Other`] or a wrong number of literals.
    pub fn rebuild(col: usize, op: Op, values: Vec<Value>) -> Option<Atom> {
        let c = || Box::new(Expr::Column(col));
        let lit = |v: &Value| Box::new(Expr::Literal(v.clone()));
        let cmp = |o: CmpOp| values.first().map(|v| Expr::Cmp(o, c(), lit(v)));
        let expr = match op {
            Op::Eq => cmp(CmpOp::Eq)?,
            Op::Lt => cmp(CmpOp::Lt)?,
            Op::Le => cmp(CmpOp::LtEq)?,
            Op::Gt => cmp(CmpOp::Gt)?,
            Op::Ge => cmp(CmpOp::GtEq)?,
            Op::NotEq => cmp(CmpOp::NotEq)?,
            Op::Between => match values.as_slice() {
                [lo, hi] => Expr::Between(c(), lit(lo), lit(hi), false),
                _ => return None,
            },
            Op::In => Expr::InList(
                c(),
                values.iter().map(|v| Expr::Literal(v.clone())).collect(),
                false,
            ),
            Op::IsNull => Expr::IsNull(c(), false),
            Op::IsNotNull => Expr::IsNull(c(), true),
            Op::LikePrefix => match values.first() {
                Some(Value::Text(p)) => Expr::Like(
                    c(),
                    Box::new(Expr::Literal(Value::Text(format!("{p}%")))),
                    false,
                    None,
                ),
                _ => return None,
            },
            Op::Other => return None,
        };
        Some(Atom {
            col: Some(col),
            op,
            values,
            expr,
        })
    }
}

/// The atoms of a filter (its conjuncts, in order).
pub fn decompose(filter: &Expr) -> Vec<Atom> {
    filter.clone().conjuncts().into_iter().map(atom).collect()
}

/// The filter the atoms make together (`None` for no atoms).
pub fn conjunction(atoms: &[Atom]) -> Option<Expr> {
    Expr::all_of(atoms.iter().map(|a| a.expr.clone()).collect())
}

fn literal(e: &Expr) -> Option<&Value> {
    match e {
        Expr::Literal(v) => Some(v),
        _ => None,
    }
}

fn atom(e: Expr) -> Atom {
    let known = |col: usize, op: Op, values: Vec<Value>, expr: Expr| Atom {
        col: Some(col),
        op,
        values,
        expr,
    };
    match &e {
        Expr::Cmp(op, a, b) => {
            let (col, v, op) = match (&**a, &**b) {
                (Expr::Column(c), Expr::Literal(v)) => (*c, v.clone(), *op),
                (Expr::Literal(v), Expr::Column(c)) => (*c, v.clone(), op.flip()),
                _ => return other(e),
            };
            let op = match op {
                CmpOp::Eq => Op::Eq,
                CmpOp::NotEq => Op::NotEq,
                CmpOp::Lt => Op::Lt,
                CmpOp::LtEq => Op::Le,
                CmpOp::Gt => Op::Gt,
                CmpOp::GtEq => Op::Ge,
            };
            known(col, op, vec![v], e)
        }
        Expr::Between(x, lo, hi, false) => match (&**x, literal(lo), literal(hi)) {
            (Expr::Column(c), Some(l), Some(h)) => {
                let values = vec![l.clone(), h.clone()];
                known(*c, Op::Between, values, e)
            }
            _ => other(e),
        },
        Expr::InList(x, list, false) => match &**x {
            Expr::Column(c) if list.iter().all(|v| literal(v).is_some()) => {
                let values = list.iter().filter_map(literal).cloned().collect();
                known(*c, Op::In, values, e)
            }
            _ => other(e),
        },
        // `x IN (subquery)` without NULLs; NOT IN is not an IN atom.
        Expr::InSet(x, set, false, false) => match &**x {
            Expr::Column(c) => {
                let values = set.iter().cloned().collect();
                known(*c, Op::In, values, e)
            }
            _ => other(e),
        },
        Expr::IsNull(x, negated) => match &**x {
            Expr::Column(c) => {
                let op = if *negated { Op::IsNotNull } else { Op::IsNull };
                known(*c, op, vec![], e)
            }
            _ => other(e),
        },
        Expr::Like(x, p, false, None) => match (&**x, literal(p)) {
            (Expr::Column(c), Some(Value::Text(pat)))
                if pat.ends_with('%')
                    && !pat[..pat.len() - 1].contains(['%', '_'])
                    && pat.len() > 1 =>
            {
                let prefix = Value::Text(pat[..pat.len() - 1].to_string());
                known(*c, Op::LikePrefix, vec![prefix], e)
            }
            _ => other(e),
        },
        _ => other(e),
    }
}

fn other(e: Expr) -> Atom {
    let cols = e.columns();
    let col = match cols.as_slice() {
        [c] => Some(*c),
        [c, rest @ ..] if rest.iter().all(|x| x == c) => Some(*c),
        _ => None,
    };
    Atom {
        col,
        op: Op::Other,
        values: vec![],
        expr: e,
    }
}

/// Whether the atoms cannot all hold on one row: a comparison with NULL, a literal FALSE,
/// or ranges on one column that do not overlap.
pub fn contradictory(atoms: &[Atom]) -> bool {
    use std::cmp::Ordering;
    use std::collections::HashMap;
    // Per column: the tightest lower and upper bounds (value, inclusive).
    let mut lower: HashMap<usize, (Value, bool)> = HashMap::new();
    let mut upper: HashMap<usize, (Value, bool)> = HashMap::new();
    let mut null_required: HashMap<usize, bool> = HashMap::new();
    let tighten = |map: &mut HashMap<usize, (Value, bool)>, c: usize, v: &Value, inc: bool, lo| {
        let replace = match map.get(&c) {
            None => true,
            Some((old, old_inc)) => {
                let ord = v.total_cmp(old);
                let ord = if lo { ord } else { ord.reverse() };
                ord == Ordering::Greater || (ord == Ordering::Equal && *old_inc && !inc)
            }
        };
        if replace {
            map.insert(c, (v.clone(), inc));
        }
    };
    for a in atoms {
        if let Expr::Literal(v) = &a.expr
            && matches!(chrono_sql::types::truth(v), Ok(Some(false)) | Ok(None))
        {
            return true;
        }
        let Some(c) = a.col else { continue };
        if a.op != Op::Other
            && a.op != Op::IsNull
            && a.values.iter().any(Value::is_null)
            && (a.op != Op::In || a.values.iter().all(Value::is_null))
        {
            return true;
        }
        match a.op {
            Op::Eq => {
                tighten(&mut lower, c, &a.values[0], true, true);
                tighten(&mut upper, c, &a.values[0], true, false);
            }
            Op::Lt => tighten(&mut upper, c, &a.values[0], false, false),
            Op::Le => tighten(&mut upper, c, &a.values[0], true, false),
            Op::Gt => tighten(&mut lower, c, &a.values[0], false, true),
            Op::Ge => tighten(&mut lower, c, &a.values[0], true, true),
            Op::Between => {
                tighten(&mut lower, c, &a.values[0], true, true);
                tighten(&mut upper, c, &a.values[1], true, false);
            }
            Op::IsNull => {
                if null_required.insert(c, true) == Some(false) {
                    return true;
                }
            }
            Op::Other | Op::IsNotNull | Op::NotEq | Op::In | Op::LikePrefix => {}
        }
        if matches!(
            a.op,
            Op::Eq | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Between
        ) && null_required.insert(c, false) == Some(true)
        {
            return true;
        }
        if a.op == Op::IsNotNull && null_required.insert(c, false) == Some(true) {
            return true;
        }
    }
    for (c, (lo, lo_inc)) in &lower {
        if let Some((hi, hi_inc)) = upper.get(c) {
            // Only values of one kind compare meaningfully.
            match lo.total_cmp(hi) {
                Ordering::Greater => return true,
                Ordering::Equal if !(*lo_inc && *hi_inc) => return true,
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(c: usize) -> Box<Expr> {
        Box::new(Expr::Column(c))
    }
    fn int(v: i64) -> Box<Expr> {
        Box::new(Expr::Literal(Value::Int(v)))
    }

    #[test]
    fn shapes_are_recognised() {
        let f = Expr::and(
            Expr::Cmp(CmpOp::Lt, int(5), col(1)),
            Expr::and(
                Expr::Between(col(0), int(1), int(9), false),
                Expr::Or(
                    Box::new(Expr::Cmp(CmpOp::Eq, col(2), int(1))),
                    Box::new(Expr::Cmp(CmpOp::Eq, col(2), int(2))),
                ),
            ),
        );
        let atoms = decompose(&f);
        assert_eq!(atoms.len(), 3);
        assert_eq!((atoms[0].col, atoms[0].op), (Some(1), Op::Gt));
        assert_eq!(atoms[1].op, Op::Between);
        assert_eq!((atoms[2].col, atoms[2].op), (Some(2), Op::Other));
        let rebuilt = Atom::rebuild(0, Op::Between, atoms[1].values.clone()).unwrap();
        assert_eq!(rebuilt, atoms[1]);
    }

    #[test]
    fn contradictions_are_found() {
        let a = |e: Expr| decompose(&e);
        let gt = Expr::Cmp(CmpOp::Gt, col(0), int(10));
        let lt = Expr::Cmp(CmpOp::Lt, col(0), int(5));
        assert!(contradictory(&a(Expr::and(gt.clone(), lt.clone()))));
        let le10 = Expr::Cmp(CmpOp::LtEq, col(0), int(10));
        assert!(contradictory(&a(Expr::and(gt.clone(), le10))));
        let ge10 = Expr::Cmp(CmpOp::GtEq, col(0), int(10));
        let le10 = Expr::Cmp(CmpOp::LtEq, col(0), int(10));
        assert!(!contradictory(&a(Expr::and(ge10, le10))));
        let other_col = Expr::Cmp(CmpOp::Lt, col(1), int(5));
        assert!(!contradictory(&a(Expr::and(gt, other_col))));
        let null = Expr::Cmp(CmpOp::Eq, col(0), Box::new(Expr::Literal(Value::Null)));
        assert!(contradictory(&a(null)));
    }
}
