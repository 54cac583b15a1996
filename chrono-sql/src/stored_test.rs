//! A scan filter's simple conditions tested on a stored row's bytes, before anything is
//! decoded.
//!
//! A filter that is a conjunction (`AND`) of comparisons of a column with a constant —
//! `total > 400 AND status = 'shipped'` — is true of a row only when each comparison is.
//! Those comparisons are read here from the encoded row ([`encoding::StoredRow`]) in column
//! order: numbers are compared without building values that allocate, text and bytes as
//! the bytes they are stored as (text orders by its UTF-8 bytes, as [`compare`] orders it),
//! and the first comparison that is not TRUE rejects the row without reading the rest of
//! it. What is left of the filter (other conditions) is then tested on the decoded row, as
//! before.
//!
//! The verdict is never a guess: a comparison is compiled only when its column's type and
//! the constant's type compare without an error; a stored value of another type than its
//! column's, bytes that do not decode, or any comparison this module does not handle make
//! the row go the general way ([`Verdict::Unsure`]), which decodes it and evaluates the
//! whole filter, errors included.

use std::cmp::Ordering;

use chrono_storage::Value;
use chrono_storage::encoding::{StoredRow, StoredValue};

use crate::catalog::TableDef;
use crate::expr::{CmpOp, Expr};
use crate::types::{DataType, compare};

/// What a stored row's bytes say about a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A condition of the conjunction is not TRUE: the filter is not TRUE.
    Reject,
    /// Every compiled condition is TRUE, and they are the whole filter.
    Pass,
    /// Decode the row and evaluate the filter.
    Unsure,
}

/// `column op literal`.
#[derive(Debug, Clone)]
struct Comparison {
    column: usize,
    op: CmpOp,
    literal: Value,
    /// The literal as a double when that is exact and not NaN (what a stored double
    /// compares with directly).
    float: Option<f64>,
}

impl Comparison {
    /// The comparison's truth for a stored value (`None` for NULL), or `Err(())` when the
    /// general way must decide.
    #[inline]
    fn test(&self, stored: StoredValue<'_>) -> std::result::Result<Option<bool>, ()> {
        let ordering = match (stored, &self.literal) {
            (StoredValue::Null, _) => return Ok(None),
            (StoredValue::Text(bytes), Value::Text(lit)) => bytes.cmp(lit.as_bytes()),
            (StoredValue::Blob(bytes), Value::Blob(lit)) => bytes.cmp(lit.as_slice()),
            (StoredValue::Int(i), Value::Int(lit)) => i.cmp(lit),
            (StoredValue::Int(i), lit) => ordered(&Value::Int(i), lit)?,
            (StoredValue::Float(f), lit) => match self.float {
                // Both exact doubles, neither NaN: their order is total.
                Some(l) if !f.is_nan() => f.partial_cmp(&l).ok_or(())?,
                _ => ordered(&Value::Float(f), lit)?,
            },
            (StoredValue::Bool(b), lit) => ordered(&Value::Bool(b), lit)?,
            (StoredValue::Timestamp(t), lit) => ordered(&Value::Timestamp(t), lit)?,
            _ => return Err(()),
        };
        Ok(Some(self.op.holds(ordering)))
    }
}

/// `compare` of two non-NULL values that compare without an error.
#[inline]
fn ordered(a: &Value, b: &Value) -> std::result::Result<Ordering, ()> {
    match compare(a, b) {
        Ok(Some(o)) => Ok(o),
        _ => Err(()),
    }
}

/// Whether a column of `ty` compares with `literal` without an error (and not with NULL).
fn compiles(ty: DataType, literal: &Value) -> bool {
    matches!(
        (ty, literal),
        (
            DataType::Int | DataType::Float,
            Value::Int(_) | Value::Float(_)
        ) | (DataType::Text, Value::Text(_))
            | (DataType::Blob, Value::Blob(_))
            | (DataType::Bool, Value::Bool(_))
            | (DataType::Timestamp, Value::Timestamp(_))
    )
}

/// A filter's comparisons of columns with constants, in column order.
#[derive(Debug, Clone)]
pub(crate) struct StoredTest {
    comparisons: Vec<Comparison>,
    /// The comparisons are the whole filter.
    complete: bool,
}

impl StoredTest {
    /// The comparisons of `filter` (a conjunction) this module tests on bytes; `None` when
    /// it has none.
    pub(crate) fn compile(table: &TableDef, filter: &Expr) -> Option<StoredTest> {
        let mut comparisons = Vec::new();
        let mut complete = true;
        // The conjuncts, walked without recursion (a filter may be deep).
        let mut stack = vec![filter];
        while let Some(e) = stack.pop() {
            let compiled = match e {
                Expr::And(a, b) => {
                    stack.push(b);
                    stack.push(a);
                    continue;
                }
                Expr::Cmp(op, a, b) => match (a.as_ref(), b.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v)) => Some((*c, *op, v)),
                    (Expr::Literal(v), Expr::Column(c)) => Some((*c, op.flip(), v)),
                    _ => None,
                },
                _ => None,
            };
            match compiled {
                Some((column, op, literal))
                    if table
                        .columns
                        .get(column)
                        .is_some_and(|c| compiles(c.data_type, literal)) =>
                {
                    // Integers up to 2^53 are exact doubles.
                    let float = match literal {
                        Value::Float(f) if !f.is_nan() => Some(*f),
                        Value::Int(i) if i.unsigned_abs() <= 1 << 53 => Some(*i as f64),
                        _ => None,
                    };
                    comparisons.push(Comparison {
                        column,
                        op,
                        literal: literal.clone(),
                        float,
                    });
                }
                _ => complete = false,
            }
        }
        if comparisons.is_empty() {
            return None;
        }
        comparisons.sort_by_key(|c| c.column);
        Some(StoredTest {
            comparisons,
            complete,
        })
    }

    /// What the stored row `raw` of the compiled table says.
    pub(crate) fn test(&self, raw: &[u8], columns: usize) -> Verdict {
        self.read(raw, columns).unwrap_or(Verdict::Unsure)
    }

    fn read(&self, raw: &[u8], columns: usize) -> std::result::Result<Verdict, ()> {
        let mut row = StoredRow::new(raw).map_err(|_| ())?;
        let stored = row.remaining();
        if stored > columns {
            // Malformed: the general way reports it.
            return Err(());
        }
        // The comparisons are in column order: read up to each one's column (a column
        // compared twice is read once).
        let (mut read, mut value) = (0, StoredValue::Null);
        for c in &self.comparisons {
            // Columns past the stored ones (added later) are NULL.
            if c.column >= stored {
                return Ok(Verdict::Reject);
            }
            while read <= c.column {
                value = row.next_value().map_err(|_| ())?;
                read += 1;
            }
            if c.test(value)? != Some(true) {
                return Ok(Verdict::Reject);
            }
        }
        Ok(if self.complete {
            Verdict::Pass
        } else {
            Verdict::Unsure
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnDef;
    use chrono_storage::encoding::encode_row;
    use proptest::prelude::*;

    const TYPES: [DataType; 6] = [
        DataType::Int,
        DataType::Float,
        DataType::Text,
        DataType::Bool,
        DataType::Timestamp,
        DataType::Blob,
    ];

    fn table() -> TableDef {
        TableDef {
            name: "t".into(),
            keyspace: 100,
            columns: TYPES
                .iter()
                .enumerate()
                .map(|(i, ty)| ColumnDef {
                    name: format!("c{i}"),
                    data_type: *ty,
                    nullable: true,
                    default: None,
                    references: None,
                })
                .collect(),
            primary_key: vec![],
            indexes: vec![],
        }
    }

    /// Values of every type, few enough distinct ones that comparisons are often equal;
    /// any of them may stand in any column (a stored value of another type than its
    /// column's is what a damaged or hostile row holds).
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            prop_oneof![
                Just(i64::MAX),
                Just(i64::MIN),
                Just(1 << 53),
                Just((1 << 53) + 1)
            ]
            .prop_map(Value::Int),
            prop_oneof![
                (-3i32..3).prop_map(|i| f64::from(i) + 0.5),
                (-3i32..3).prop_map(f64::from),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0),
                Just(9_007_199_254_740_993.0),
                Just(9.3e18),
            ]
            .prop_map(Value::Float),
            prop_oneof![
                Just(""),
                Just("a"),
                Just("ab"),
                Just("b"),
                Just("é"),
                Just("2024-01-01")
            ]
            .prop_map(|s| Value::Text(s.into())),
            prop_oneof![Just(vec![]), Just(vec![0u8]), Just(vec![1u8, 2])].prop_map(Value::Blob),
            (-2i64..2).prop_map(Value::Timestamp),
        ]
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::NotEq),
            Just(CmpOp::Lt),
            Just(CmpOp::LtEq),
            Just(CmpOp::Gt),
            Just(CmpOp::GtEq),
        ]
    }

    /// A conjunct: a column compared with a constant (either side), or a condition the
    /// module leaves to the general way.
    fn conjunct() -> impl Strategy<Value = Expr> {
        let column = || (0..TYPES.len() + 1).prop_map(Expr::Column);
        prop_oneof![
            4 => (op(), column(), value()).prop_map(|(op, c, v)| {
                Expr::Cmp(op, Box::new(c), Box::new(Expr::Literal(v)))
            }),
            2 => (op(), value(), column()).prop_map(|(op, v, c)| {
                Expr::Cmp(op, Box::new(Expr::Literal(v)), Box::new(c))
            }),
            1 => (op(), column(), column())
                .prop_map(|(op, a, b)| Expr::Cmp(op, Box::new(a), Box::new(b))),
            1 => column().prop_map(|c| Expr::IsNull(Box::new(c), false)),
        ]
    }

    fn conjunction(parts: Vec<Expr>) -> Expr {
        parts
            .into_iter()
            .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
            .unwrap_or(Expr::Literal(Value::Bool(true)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A verdict from the bytes is what the decoded row's evaluation says: a rejected
        /// row's filter is not TRUE (or fails), a passed row's is TRUE.
        #[test]
        fn the_bytes_agree_with_the_decoded_row(
            row in proptest::collection::vec(value(), 0..=TYPES.len()),
            parts in proptest::collection::vec(conjunct(), 1..4),
        ) {
            let table = table();
            let filter = conjunction(parts);
            let raw = encode_row(&row);
            let mut decoded = table.decode_row(&raw).unwrap();
            decoded.resize(table.columns.len() + 1, Value::Null);
            let general = filter.test(&decoded);
            if let Some(test) = StoredTest::compile(&table, &filter) {
                match test.test(&raw, table.columns.len()) {
                    Verdict::Reject => prop_assert!(
                        !matches!(general, Ok(Some(true))),
                        "rejected, but the filter is {general:?}"
                    ),
                    Verdict::Pass => prop_assert!(
                        matches!(general, Ok(Some(true))),
                        "passed, but the filter is {general:?}"
                    ),
                    Verdict::Unsure => {}
                }
            }
        }

        /// Bytes that are no row never panic.
        #[test]
        fn any_bytes_get_a_verdict(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let table = table();
            let filter = Expr::Cmp(
                CmpOp::Gt,
                Box::new(Expr::Column(2)),
                Box::new(Expr::Literal(Value::Text("a".into()))),
            );
            let test = StoredTest::compile(&table, &filter).unwrap();
            let _ = test.test(&raw, table.columns.len());
        }
    }

    /// The module decides the rows of a typical scan filter: numbers and text of their
    /// columns' types never go the general way.
    #[test]
    fn typed_rows_are_decided_on_their_bytes() {
        let table = table();
        let filter = conjunction(vec![
            Expr::Cmp(
                CmpOp::Gt,
                Box::new(Expr::Column(1)),
                Box::new(Expr::Literal(Value::Int(400))),
            ),
            Expr::Cmp(
                CmpOp::Eq,
                Box::new(Expr::Literal(Value::Text("shipped".into()))),
                Box::new(Expr::Column(2)),
            ),
        ]);
        let test = StoredTest::compile(&table, &filter).unwrap();
        let row = |total: f64, status: &str| {
            encode_row(&[
                Value::Int(1),
                Value::Float(total),
                Value::Text(status.into()),
            ])
        };
        let n = table.columns.len();
        assert_eq!(test.test(&row(400.5, "shipped"), n), Verdict::Pass);
        assert_eq!(test.test(&row(400.0, "shipped"), n), Verdict::Reject);
        assert_eq!(test.test(&row(450.0, "pending"), n), Verdict::Reject);
        // NaN orders above every number, as `compare` orders it.
        assert_eq!(test.test(&row(f64::NAN, "shipped"), n), Verdict::Pass);
        // A NULL, and a column the row does not store (added later): NULL, not TRUE.
        let short = encode_row(&[Value::Int(1), Value::Float(500.0)]);
        assert_eq!(test.test(&short, n), Verdict::Reject);
        // Another condition is left to the general way once the comparisons hold.
        let wider = conjunction(vec![
            filter.clone(),
            Expr::IsNull(Box::new(Expr::Column(3)), false),
        ]);
        let test = StoredTest::compile(&table, &wider).unwrap();
        assert_eq!(test.test(&row(401.0, "shipped"), n), Verdict::Unsure);
        assert_eq!(test.test(&row(399.0, "shipped"), n), Verdict::Reject);
        // A column compared with a constant of a type it does not compare with is not
        // compiled (the general way reports the error).
        let mismatch = Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Literal(Value::Text("x".into()))),
        );
        assert!(StoredTest::compile(&table, &mismatch).is_none());
    }
}
