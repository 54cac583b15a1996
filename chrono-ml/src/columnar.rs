//! Rows held column by column as codes into each column's sorted distinct values, so an
//! atom is evaluated on thousands of rows with integer comparisons into a bitmap. Used on
//! the table sample at estimation time and on the whole table when labelling training
//! queries.

use chrono_sql::types::truth;
use chrono_storage::Value;

use crate::atoms::{Atom, Op};

const NULL: u32 = u32::MAX;

/// A set of row positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    /// Every row of `len`.
    pub fn full(len: usize) -> Bitmap {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if !len.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last = (1u64 << (len % 64)) - 1;
        }
        Bitmap { words, len }
    }

    fn empty(len: usize) -> Bitmap {
        Bitmap {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Keeps the rows also in `other`.
    pub fn and(&mut self, other: &Bitmap) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= *b;
        }
    }

    /// How many rows.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The rows of the set this one was made for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set was made for no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct Column {
    /// Distinct non-NULL values, sorted.
    distinct: Vec<Value>,
    /// Per row: position in `distinct`, or `NULL`.
    codes: Vec<u32>,
}

/// Rows as coded columns (and the rows themselves, for atoms evaluated as expressions).
pub struct Columnar {
    rows: Vec<Vec<Value>>,
    columns: Vec<Column>,
}

/// Sets the bits of the codes `keep` accepts. Generic, so each test inlines into a loop
/// building whole words.
fn fill_words(codes: &[u32], out: &mut Bitmap, keep: impl Fn(u32) -> bool) {
    for (word, chunk) in out.words.iter_mut().zip(codes.chunks(64)) {
        let mut w = 0u64;
        for (i, &code) in chunk.iter().enumerate() {
            w |= u64::from(keep(code)) << i;
        }
        *word = w;
    }
}

/// Sets the bits of the rows whose code `listed` marks (per distinct value).
fn fill_listed(codes: &[u32], out: &mut Bitmap, listed: &[bool]) {
    fill_words(codes, out, |x| {
        listed.get(x as usize).copied().unwrap_or(false)
    });
}

fn kind(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Text(_) => 3,
        Value::Blob(_) => 4,
        Value::Timestamp(_) => 5,
    }
}

impl Columnar {
    /// Codes `rows` (each `width` wide).
    pub fn new(width: usize, rows: Vec<Vec<Value>>) -> Columnar {
        let mut columns = Vec::with_capacity(width);
        for c in 0..width {
            let mut distinct: Vec<Value> = rows
                .iter()
                .filter_map(|r| r.get(c))
                .filter(|v| !v.is_null())
                .cloned()
                .collect();
            distinct.sort_by(|a, b| a.total_cmp(b));
            distinct.dedup_by(|a, b| a.total_cmp(b).is_eq());
            let codes = rows
                .iter()
                .map(|r| match r.get(c) {
                    None | Some(Value::Null) => NULL,
                    Some(v) => distinct
                        .binary_search_by(|d| d.total_cmp(v))
                        .map(|i| i as u32)
                        .unwrap_or(NULL),
                })
                .collect();
            columns.push(Column { distinct, codes });
        }
        Columnar { rows, columns }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows held.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// The rows satisfying every atom.
    pub fn eval_all(&self, atoms: &[Atom]) -> Bitmap {
        let mut out = Bitmap::full(self.len());
        for a in atoms {
            out.and(&self.eval(a));
        }
        out
    }

    /// The rows satisfying `atom`.
    pub fn eval(&self, atom: &Atom) -> Bitmap {
        let n = self.len();
        let Some(col) = atom.col.and_then(|c| self.columns.get(c)) else {
            return self.eval_expr(atom);
        };
        // Literals of another kind than the column's values (a text timestamp…) and the
        // shapes without a coded form are evaluated as expressions.
        let column_kind = col.distinct.first().map(kind);
        let same_kind = atom
            .values
            .iter()
            .all(|v| column_kind.is_none_or(|k| k == kind(v)));
        if !same_kind || atom.op == Op::Other {
            return self.eval_expr(atom);
        }
        if atom.op == Op::LikePrefix {
            // Once per distinct value (LIKE ignores ASCII case), then by code.
            let Some(Value::Text(prefix)) = atom.values.first() else {
                return self.eval_expr(atom);
            };
            let starts = |v: &Value| match v {
                Value::Text(t) => t
                    .as_bytes()
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
                _ => false,
            };
            let matching: Vec<bool> = col.distinct.iter().map(starts).collect();
            let mut out = Bitmap::empty(n);
            fill_listed(&col.codes, &mut out, &matching);
            return out;
        }
        // (position of the first distinct value >= v, whether v itself occurs)
        let locate = |v: &Value| -> (u32, u32) {
            let pos = col.distinct.partition_point(|d| d.total_cmp(v).is_lt());
            let found = col
                .distinct
                .get(pos)
                .is_some_and(|d| d.total_cmp(v).is_eq());
            (pos as u32, u32::from(found))
        };
        let mut out = Bitmap::empty(n);
        if atom.values.iter().any(Value::is_null) && atom.op != Op::In {
            return out;
        }
        match atom.op {
            Op::IsNull => fill_words(&col.codes, &mut out, |x| x == NULL),
            Op::IsNotNull => fill_words(&col.codes, &mut out, |x| x != NULL),
            Op::Eq => {
                let (p, f) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| f == 1 && x == p)
            }
            Op::NotEq => {
                let (p, f) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| x != NULL && !(f == 1 && x == p))
            }
            Op::Lt => {
                let (p, _) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| x < p)
            }
            Op::Le => {
                let (p, f) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| x < p + f)
            }
            Op::Gt => {
                let (p, f) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| x != NULL && x >= p + f)
            }
            Op::Ge => {
                let (p, _) = locate(&atom.values[0]);
                fill_words(&col.codes, &mut out, |x| x != NULL && x >= p)
            }
            Op::Between => {
                let (lo, _) = locate(&atom.values[0]);
                let (hi, f) = locate(&atom.values[1]);
                fill_words(&col.codes, &mut out, |x| x != NULL && x >= lo && x < hi + f)
            }
            Op::In => {
                let mut listed = vec![false; col.distinct.len()];
                for (p, f) in atom.values.iter().filter(|v| !v.is_null()).map(locate) {
                    if f == 1
                        && let Some(slot) = listed.get_mut(p as usize)
                    {
                        *slot = true;
                    }
                }
                fill_listed(&col.codes, &mut out, &listed)
            }
            Op::Other | Op::LikePrefix => unreachable!("evaluated above"),
        }
        out
    }

    fn eval_expr(&self, atom: &Atom) -> Bitmap {
        let mut out = Bitmap::empty(self.len());
        for (i, row) in self.rows.iter().enumerate() {
            if let Ok(Some(true)) = atom.expr.eval(row).and_then(|v| truth(&v)) {
                out.set(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atoms::decompose;
    use chrono_sql::expr::{CmpOp, Expr};

    /// The coded evaluation agrees with evaluating the expression row by row.
    #[test]
    fn coded_evaluation_matches_expressions() {
        let rows: Vec<Vec<Value>> = (0..300)
            .map(|i| {
                vec![
                    Value::Int(i % 37),
                    if i % 7 == 0 {
                        Value::Null
                    } else {
                        Value::Float((i % 11) as f64 / 2.0)
                    },
                    Value::Text(format!("t{}", i % 5)),
                ]
            })
            .collect();
        let data = Columnar::new(3, rows.clone());
        let col = |c| Box::new(Expr::Column(c));
        let lit = |v: Value| Box::new(Expr::Literal(v));
        let mut filters = Vec::new();
        for v in [-1i64, 0, 3, 17, 36, 40] {
            for op in [
                CmpOp::Eq,
                CmpOp::NotEq,
                CmpOp::Lt,
                CmpOp::LtEq,
                CmpOp::Gt,
                CmpOp::GtEq,
            ] {
                filters.push(Expr::Cmp(op, col(0), lit(Value::Int(v))));
                filters.push(Expr::Cmp(op, col(1), lit(Value::Int(v / 4))));
                filters.push(Expr::Cmp(op, col(1), lit(Value::Float(v as f64 / 4.0))));
            }
            filters.push(Expr::Between(
                col(0),
                lit(Value::Int(v)),
                lit(Value::Int(v + 9)),
                false,
            ));
        }
        filters.push(Expr::IsNull(col(1), false));
        filters.push(Expr::IsNull(col(1), true));
        filters.push(Expr::InList(
            col(2),
            vec![
                Expr::Literal(Value::Text("t1".into())),
                Expr::Literal(Value::Text("x".into())),
            ],
            false,
        ));
        filters.push(Expr::Like(
            col(2),
            lit(Value::Text("T2%".into())),
            false,
            None,
        ));
        for f in filters {
            let atoms = decompose(&f);
            let got = data.eval_all(&atoms).count();
            let want = rows
                .iter()
                .filter(|r| matches!(f.eval(r).and_then(|v| truth(&v)), Ok(Some(true))))
                .count() as u64;
            assert_eq!(got, want, "{f:?}");
        }
    }
}
