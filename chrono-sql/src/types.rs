//! Column types, value coercion and the arithmetic and comparison of SQL values.
//!
//! NULL follows SQL's three-valued logic: comparisons with NULL are NULL (unknown), `AND`
//! and `OR` use the Kleene tables, and `WHERE` keeps a row only when its predicate is TRUE.
//! Integer arithmetic is checked (overflow is an error, as in SQLite it would turn into a
//! float); integer division truncates, division by zero is NULL (as in SQLite).

use std::cmp::Ordering;

use chrono_storage::Value;
use chrono_storage::value::parse_timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    /// BIGINT, INTEGER, INT, SMALLINT.
    Int,
    /// DOUBLE, REAL, FLOAT, NUMERIC, DECIMAL.
    Float,
    /// TEXT, VARCHAR, CHAR, STRING.
    Text,
    /// BOOLEAN.
    Bool,
    /// TIMESTAMP, DATETIME, DATE (microseconds, UTC).
    Timestamp,
    /// BLOB, BYTEA, BINARY.
    Blob,
}

impl DataType {
    /// Reads a type name such as `VARCHAR(20)` or `DOUBLE PRECISION`.
    pub fn parse(name: &str) -> Result<DataType> {
        let upper = name.trim().to_ascii_uppercase();
        // PostgreSQL clients qualify and quote type names (`pg_catalog.text`, `"char"`).
        let upper = upper
            .strip_prefix("PG_CATALOG.")
            .unwrap_or(&upper)
            .replace('"', "");
        let word = upper
            .split(|c: char| c == '(' || c.is_whitespace())
            .next()
            .unwrap_or("");
        Ok(match word {
            "BIGINT" | "INT" | "INTEGER" | "SMALLINT" | "TINYINT" | "INT2" | "INT4" | "INT8"
            | "INT64" | "MEDIUMINT" | "OID" => DataType::Int,
            "DOUBLE" | "REAL" | "FLOAT" | "FLOAT4" | "FLOAT8" | "FLOAT64" | "NUMERIC"
            | "DECIMAL" | "DEC" => DataType::Float,
            "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "STRING" | "NVARCHAR" | "NCHAR"
            | "CLOB" | "NAME" | "BPCHAR" => DataType::Text,
            "BOOLEAN" | "BOOL" => DataType::Bool,
            "TIMESTAMP" | "DATETIME" | "DATE" | "TIMESTAMPTZ" => DataType::Timestamp,
            "BLOB" | "BYTEA" | "BINARY" | "VARBINARY" | "BYTES" => DataType::Blob,
            _ => return Err(Error::Unsupported(format!("column type {name}"))),
        })
    }

    /// The SQL name.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Int => "BIGINT",
            DataType::Float => "DOUBLE",
            DataType::Text => "TEXT",
            DataType::Bool => "BOOLEAN",
            DataType::Timestamp => "TIMESTAMP",
            DataType::Blob => "BLOB",
        }
    }

    /// Converts `value` for storage in a column of this type, or says why it cannot.
    /// Integers widen to floats, whole floats narrow to integers, ISO-8601 text becomes a
    /// timestamp; anything else of the wrong type is an error naming both types.
    pub fn coerce(self, value: Value, column: impl std::fmt::Display) -> Result<Value> {
        let mismatch = |v: &Value| {
            Error::InvalidInput(format!(
                "type mismatch: column {column} is {} but the value {} is {}",
                self.name(),
                display_literal(v),
                v.type_name()
            ))
        };
        Ok(match (self, value) {
            (_, Value::Null) => Value::Null,
            (DataType::Int, Value::Int(i)) => Value::Int(i),
            (DataType::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                Value::Int(f as i64)
            }
            (DataType::Int, Value::Bool(b)) => Value::Int(i64::from(b)),
            (DataType::Float, Value::Float(f)) => Value::Float(f),
            (DataType::Float, Value::Int(i)) => Value::Float(i as f64),
            (DataType::Text, Value::Text(s)) => Value::Text(s),
            (DataType::Bool, Value::Bool(b)) => Value::Bool(b),
            (DataType::Bool, Value::Int(i)) if i == 0 || i == 1 => Value::Bool(i == 1),
            (DataType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(t),
            (DataType::Timestamp, Value::Text(s)) => match parse_timestamp(&s) {
                Some(t) => Value::Timestamp(t),
                None => {
                    return Err(Error::InvalidInput(format!(
                        "column {column} is TIMESTAMP but '{s}' is not a date or time \
                         (use YYYY-MM-DD[ HH:MM:SS[.ffffff]])"
                    )));
                }
            },
            (DataType::Blob, Value::Blob(b)) => Value::Blob(b),
            (DataType::Blob, Value::Text(s)) => Value::Blob(s.into_bytes()),
            (_, v) => return Err(mismatch(&v)),
        })
    }
}

/// A value as it would be written in SQL (strings quoted), for messages.
pub fn display_literal(v: &Value) -> String {
    match v {
        Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Timestamp(_) => format!("TIMESTAMP '{v}'"),
        other => other.to_string(),
    }
}

/// SQL truth of a value: `Some(bool)`, or `None` for NULL (unknown).
pub fn truth(v: &Value) -> Result<Option<bool>> {
    Ok(match v {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Float(f) => Some(*f != 0.0),
        other => {
            return Err(Error::InvalidInput(format!(
                "type mismatch: expected a boolean condition, got {}",
                other.type_name()
            )));
        }
    })
}

/// Compares two non-NULL values for SQL (`=`, `<`…). `None` when either is NULL. Values of
/// incomparable types are an error naming them; a timestamp compares with ISO-8601 text.
pub fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>> {
    use Value::*;
    Ok(Some(match (a, b) {
        (Null, _) | (_, Null) => return Ok(None),
        (Int(_) | Float(_), Int(_) | Float(_))
        | (Text(_), Text(_))
        | (Bool(_), Bool(_))
        | (Blob(_), Blob(_))
        | (Timestamp(_), Timestamp(_)) => a.total_cmp(b),
        (Bool(x), Int(_)) => Int(i64::from(*x)).total_cmp(b),
        (Int(_), Bool(y)) => a.total_cmp(&Int(i64::from(*y))),
        (Timestamp(t), Text(s)) => match parse_timestamp(s) {
            Some(u) => t.cmp(&u),
            None => return Err(incomparable(a, b)),
        },
        (Text(s), Timestamp(t)) => match parse_timestamp(s) {
            Some(u) => u.cmp(t),
            None => return Err(incomparable(a, b)),
        },
        _ => return Err(incomparable(a, b)),
    }))
}

fn incomparable(a: &Value, b: &Value) -> Error {
    Error::InvalidInput(format!(
        "type mismatch: cannot compare {} {} with {} {}",
        a.type_name(),
        display_literal(a),
        b.type_name(),
        display_literal(b)
    ))
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
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
}

/// Applies an arithmetic operator; NULL in, NULL out.
pub fn arith(op: ArithOp, a: &Value, b: &Value) -> Result<Value> {
    use Value::*;
    let as_num = |v: &Value| -> Option<Value> {
        match v {
            Int(_) | Float(_) => Some(v.clone()),
            Bool(x) => Some(Int(i64::from(*x))),
            _ => None,
        }
    };
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    // Timestamp ± integer microseconds, timestamp − timestamp.
    match (op, a, b) {
        (ArithOp::Add, Timestamp(t), Int(d)) | (ArithOp::Add, Int(d), Timestamp(t)) => {
            return t.checked_add(*d).map(Timestamp).ok_or_else(overflow);
        }
        (ArithOp::Sub, Timestamp(t), Int(d)) => {
            return t.checked_sub(*d).map(Timestamp).ok_or_else(overflow);
        }
        (ArithOp::Sub, Timestamp(x), Timestamp(y)) => {
            return x.checked_sub(*y).map(Int).ok_or_else(overflow);
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (as_num(a), as_num(b)) else {
        return Err(Error::InvalidInput(format!(
            "type mismatch: cannot apply {} to {} and {}",
            op_symbol(op),
            a.type_name(),
            b.type_name()
        )));
    };
    Ok(match (x, y) {
        (Int(x), Int(y)) => match op {
            ArithOp::Add => x.checked_add(y).map(Int).ok_or_else(overflow)?,
            ArithOp::Sub => x.checked_sub(y).map(Int).ok_or_else(overflow)?,
            ArithOp::Mul => x.checked_mul(y).map(Int).ok_or_else(overflow)?,
            ArithOp::Div => {
                if y == 0 {
                    Null
                } else {
                    x.checked_div(y).map(Int).ok_or_else(overflow)?
                }
            }
            ArithOp::Rem => {
                if y == 0 {
                    Null
                } else {
                    x.checked_rem(y).map(Int).unwrap_or(Int(0))
                }
            }
        },
        (x, y) => {
            let (x, y) = (to_f64(&x), to_f64(&y));
            match op {
                ArithOp::Add => Float(x + y),
                ArithOp::Sub => Float(x - y),
                ArithOp::Mul => Float(x * y),
                ArithOp::Div => {
                    if y == 0.0 {
                        Null
                    } else {
                        Float(x / y)
                    }
                }
                ArithOp::Rem => {
                    if y == 0.0 {
                        Null
                    } else {
                        Float(x % y)
                    }
                }
            }
        }
    })
}

fn overflow() -> Error {
    Error::InvalidInput("integer overflow".into())
}

fn op_symbol(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
        ArithOp::Rem => "%",
    }
}

/// A number as `f64` (0 for non-numbers; callers check types first).
pub fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Timestamp(t) => *t as f64,
        _ => 0.0,
    }
}

/// `CAST(value AS type)`: like [`DataType::coerce`], plus text↔number conversions and
/// anything to text.
pub fn cast(value: Value, to: DataType) -> Result<Value> {
    Ok(match (to, value) {
        (_, Value::Null) => Value::Null,
        (DataType::Text, Value::Text(s)) => Value::Text(s),
        (DataType::Text, Value::Blob(b)) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        (DataType::Text, v) => Value::Text(v.to_string()),
        (DataType::Int, Value::Text(s)) => {
            let t = s.trim();
            match t.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => match t.parse::<f64>() {
                    Ok(f) => Value::Int(f.trunc() as i64),
                    Err(_) => Value::Int(leading_int(t)),
                },
            }
        }
        (DataType::Int, Value::Float(f)) => Value::Int(f.trunc() as i64),
        (DataType::Int, Value::Timestamp(t)) => Value::Int(t),
        (DataType::Float, Value::Text(s)) => Value::Float(s.trim().parse::<f64>().unwrap_or(0.0)),
        (DataType::Float, Value::Bool(b)) => Value::Float(f64::from(u8::from(b))),
        (DataType::Bool, Value::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Value::Bool(true),
            "false" | "f" | "no" | "0" => Value::Bool(false),
            _ => {
                return Err(Error::InvalidInput(format!("cannot cast '{s}' to BOOLEAN")));
            }
        },
        (DataType::Bool, Value::Float(f)) => Value::Bool(f != 0.0),
        (DataType::Bool, Value::Int(i)) => Value::Bool(i != 0),
        (DataType::Timestamp, Value::Int(i)) => Value::Timestamp(i),
        (to, v) => to.coerce(v, "CAST")?,
    })
}

/// A value as an integer, as SQLite's bit operators read their operands: floats are
/// truncated, text is read as a number (its leading digits; 0 when there are none), booleans
/// are 0 and 1.
pub fn to_integer(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Timestamp(t) => *t,
        Value::Text(s) => match cast(Value::Text(s.clone()), DataType::Int) {
            Ok(Value::Int(i)) => i,
            _ => 0,
        },
        Value::Blob(b) => to_integer(&Value::Text(String::from_utf8_lossy(b).into_owned())),
        Value::Null => 0,
    }
}

/// Text read as a number the way SQLite's `sum`, `avg` and `total` read it: a well-formed
/// integer is an integer, a well-formed real a float; anything else counts as the float of
/// its leading number (0.0 when it has none).
pub fn numeric_text(s: &str) -> Value {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::Int(i);
    }
    let well_formed = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if well_formed && let Ok(f) = t.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Float(t[..number_prefix(t)].parse::<f64>().unwrap_or(0.0))
}

/// The length of the longest prefix of `t` that is a decimal number: sign, digits, a point
/// and digits, an exponent with digits.
fn number_prefix(t: &str) -> usize {
    let b = t.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_end = digits(i);
    let mut any = int_end > i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        any |= frac_end > i + 1;
        i = frac_end;
    }
    if !any {
        return 0;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    i
}

fn leading_int(s: &str) -> i64 {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')) {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    s[..end].parse().unwrap_or(0)
}
