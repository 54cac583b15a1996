//! ChronoDB's types on PostgreSQL's wire: which type each is sent as, values in text and
//! binary format both ways, and parameters read by the type the client or the statement
//! gives them.
//!
//! | ChronoDB  | PostgreSQL  | text format                         | binary format            |
//! |-----------|-------------|-------------------------------------|--------------------------|
//! | BIGINT    | int8        | `42`                                | 8 bytes, big-endian      |
//! | DOUBLE    | float8      | `1.5`, `Infinity`, `NaN`            | IEEE 754, big-endian     |
//! | TEXT      | text        | the text                            | UTF-8                    |
//! | BOOLEAN   | bool        | `t` / `f`                           | 1 byte                   |
//! | TIMESTAMP | timestamptz | `2026-12-08 09:00:00.25+00`         | µs since 2000-01-01 UTC  |
//! | BLOB      | bytea       | `\x0aff`                            | the bytes                |
//!
//! TIMESTAMP is sent as `timestamptz` because ChronoDB's timestamps are instants (UTC), as
//! commit times are: a client shows them in its own time zone and never shifts them. A
//! column whose type is known only from its values (see `chrono_sql::plan::types`) is sent
//! as `text`, each value in its text form.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use chrono_sql::types::DataType;
use chrono_storage::Value;
use pgwire::api::Type;
use pgwire::error::PgWireResult;

use super::sqlstate::user_error;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The PostgreSQL type a ChronoDB type is sent as (`text` when unknown).
pub fn pg_type(t: Option<DataType>) -> Type {
    match t {
        Some(DataType::Int) => Type::INT8,
        Some(DataType::Float) => Type::FLOAT8,
        Some(DataType::Text) | None => Type::TEXT,
        Some(DataType::Bool) => Type::BOOL,
        Some(DataType::Timestamp) => Type::TIMESTAMPTZ,
        Some(DataType::Blob) => Type::BYTEA,
    }
}

/// The ChronoDB type a PostgreSQL type's values become (`None`: read as text, typed by the
/// statement).
pub fn chrono_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DataType::Int,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DataType::Float,
        Type::BOOL => DataType::Bool,
        Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE => DataType::Timestamp,
        Type::BYTEA => DataType::Blob,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::CHAR => DataType::Text,
        _ => return None,
    })
}

/// A value's text form, as PostgreSQL writes its type (text itself borrowed).
pub fn text(v: &Value) -> Option<Cow<'_, str>> {
    Some(match v {
        Value::Null => return None,
        Value::Text(s) => Cow::Borrowed(s.as_str()),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) => Cow::Owned(float_text(*f)),
        Value::Bool(b) => Cow::Borrowed(if *b { "t" } else { "f" }),
        Value::Timestamp(us) => Cow::Owned(timestamp_text(*us)),
        Value::Blob(b) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for byte in b {
                s.push(HEX[usize::from(byte >> 4)] as char);
                s.push(HEX[usize::from(byte & 15)] as char);
            }
            Cow::Owned(s)
        }
    })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Shortest text that reads back as the same double, as PostgreSQL 12+ writes it.
        let s = format!("{f}");
        if s.len() > 17 && f.abs() >= 1e16 {
            format!("{f:e}").replace('e', "e+").replace("e+-", "e-")
        } else {
            s
        }
    }
}

/// `2026-12-08 09:00:00.25+00`.
pub fn timestamp_text(us: i64) -> String {
    let iso = chrono_storage::value::format_timestamp_micros(us);
    let mut s = iso.replacen('T', " ", 1);
    if s.ends_with('Z') {
        s.pop();
    }
    // PostgreSQL writes only the fraction's significant digits.
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s.push_str("+00");
    s
}

/// Appends one field of a DataRow: its length and bytes (length -1 for NULL), in `binary`
/// or text format, as a value of `to` (the type its column was described with).
pub fn put_field(buf: &mut BytesMut, v: &Value, to: &Type, binary: bool) -> PgWireResult<()> {
    if v.is_null() {
        buf.put_i32(-1);
        return Ok(());
    }
    if !binary {
        let t = text(v).unwrap_or_default();
        buf.put_i32(t.len() as i32);
        buf.put_slice(t.as_bytes());
        return Ok(());
    }
    let start = buf.len();
    buf.put_i32(0);
    match (to, v) {
        (&Type::INT8, Value::Int(i)) => buf.put_i64(*i),
        (&Type::INT8, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            buf.put_i64(*f as i64)
        }
        (&Type::FLOAT8, Value::Float(f)) => buf.put_f64(*f),
        (&Type::FLOAT8, Value::Int(i)) => buf.put_f64(*i as f64),
        (&Type::BOOL, Value::Bool(b)) => buf.put_u8(u8::from(*b)),
        (&Type::TIMESTAMPTZ, Value::Timestamp(us)) => buf.put_i64(us - PG_EPOCH_MICROS),
        (&Type::BYTEA, Value::Blob(b)) => buf.put_slice(b),
        (&Type::TEXT, v) => buf.put_slice(text(v).unwrap_or_default().as_bytes()),
        (to, v) => {
            return Err(user_error(
                "22P03",
                format!(
                    "a {} value in a column described as {}: ask for text format",
                    v.type_name(),
                    to.name()
                ),
            ));
        }
    }
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Reads parameter `i`'s bytes: by the type the client declared (`declared`), or the type
/// the statement gives it (`wanted`), or as text.
pub fn param(
    i: usize,
    bytes: Option<&[u8]>,
    binary: bool,
    declared: Option<&Type>,
    wanted: Option<DataType>,
) -> PgWireResult<Value> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    let bad = |what: &str| user_error("22P02", format!("parameter ${}: {what}", i + 1));
    let declared = declared.filter(|t| **t != Type::UNKNOWN);
    if binary {
        let t = declared
            .cloned()
            .or_else(|| wanted.map(|w| pg_type(Some(w))))
            .unwrap_or(Type::TEXT);
        let fixed = |n: usize| -> PgWireResult<&[u8]> {
            if bytes.len() == n {
                Ok(bytes)
            } else {
                Err(bad(&format!(
                    "{} bytes for a binary {}",
                    bytes.len(),
                    t.name()
                )))
            }
        };
        let v = match t {
            Type::INT2 => {
                Value::Int(i16::from_be_bytes(fixed(2)?.try_into().unwrap_or_default()).into())
            }
            Type::INT4 | Type::OID => {
                Value::Int(i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()).into())
            }
            Type::INT8 => Value::Int(i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())),
            Type::FLOAT4 => {
                Value::Float(f32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()).into())
            }
            Type::FLOAT8 => {
                Value::Float(f64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default()))
            }
            Type::BOOL => Value::Bool(fixed(1)?[0] != 0),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Value::Timestamp(
                i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())
                    .saturating_add(PG_EPOCH_MICROS),
            ),
            Type::DATE => Value::Timestamp(
                i64::from(i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()))
                    * 86_400_000_000
                    + PG_EPOCH_MICROS,
            ),
            Type::BYTEA => Value::Blob(bytes.to_vec()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Value::Text(
                std::str::from_utf8(bytes)
                    .map_err(|_| bad("not UTF-8"))?
                    .to_string(),
            ),
            other => {
                return Err(bad(&format!(
                    "binary {} is not taken; send it as text",
                    other.name()
                )));
            }
        };
        return coerce(i, v, wanted);
    }
    let s = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let target = declared.and_then(chrono_type).or(wanted);
    let v = match target {
        None | Some(DataType::Text) => Value::Text(s.to_string()),
        Some(t) => from_text(s, t).ok_or_else(|| bad(&format!("{s:?} is not a {}", t.name())))?,
    };
    coerce(i, v, wanted)
}

/// A value given as text, read as `t`.
pub(super) fn from_text(s: &str, t: DataType) -> Option<Value> {
    let s = s.trim();
    Some(match t {
        DataType::Int => Value::Int(s.parse().ok()?),
        DataType::Float => Value::Float(match s.to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            "infinity" | "inf" => f64::INFINITY,
            "-infinity" | "-inf" => f64::NEG_INFINITY,
            _ => s.parse().ok()?,
        }),
        DataType::Bool => Value::Bool(match s.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" | "y" => true,
            "f" | "false" | "no" | "off" | "0" | "n" => false,
            _ => return None,
        }),
        DataType::Timestamp => Value::Timestamp(chrono_storage::value::parse_timestamp(s)?),
        DataType::Blob => {
            let hex = s.strip_prefix("\\x")?;
            if hex.len() % 2 != 0 {
                return None;
            }
            Value::Blob(
                (0..hex.len())
                    .step_by(2)
                    .map(|j| u8::from_str_radix(hex.get(j..j + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?,
            )
        }
        DataType::Text => Value::Text(s.to_string()),
    })
}

/// A parameter the client sent as another type than the statement gives it: numbers widen
/// or narrow (whole values only), text is read as the wanted type.
fn coerce(i: usize, v: Value, wanted: Option<DataType>) -> PgWireResult<Value> {
    let Some(w) = wanted else {
        return Ok(v);
    };
    Ok(match (w, v) {
        (DataType::Float, Value::Int(n)) => Value::Float(n as f64),
        (DataType::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            Value::Int(f as i64)
        }
        (DataType::Text, v) => v,
        (w, Value::Text(s)) if w != DataType::Text => from_text(&s, w).ok_or_else(|| {
            user_error(
                "22P02",
                format!("parameter ${}: {s:?} is not a {}", i + 1, w.name()),
            )
        })?,
        (_, v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_out_in_both_formats() {
        let mut b = BytesMut::new();
        put_field(&mut b, &Value::Int(7), &Type::INT8, true).unwrap();
        assert_eq!(&b[..], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        b.clear();
        put_field(&mut b, &Value::Null, &Type::INT8, true).unwrap();
        assert_eq!(&b[..], &[255, 255, 255, 255]);
        b.clear();
        put_field(&mut b, &Value::Bool(true), &Type::BOOL, false).unwrap();
        assert_eq!(&b[..], &[0, 0, 0, 1, b't']);
        assert_eq!(timestamp_text(1_500_000), "1970-01-01 00:00:01.5+00");
        assert_eq!(text(&Value::Blob(vec![10, 255])).unwrap(), "\\x0aff");
        assert_eq!(float_text(1.5), "1.5");
        assert_eq!(float_text(f64::NEG_INFINITY), "-Infinity");
        // A value that is not its column's type is refused in binary, never garbled.
        assert!(put_field(&mut b, &Value::Text("x".into()), &Type::INT8, true).is_err());
    }

    #[test]
    fn parameters_are_read_by_the_declared_or_wanted_type() {
        let p = |bytes: &[u8], binary, declared: Option<&Type>, wanted| {
            param(0, Some(bytes), binary, declared, wanted)
        };
        assert_eq!(
            p(b"42", false, None, Some(DataType::Int)).unwrap(),
            Value::Int(42)
        );
        assert_eq!(
            p(b"42", false, None, None).unwrap(),
            Value::Text("42".into())
        );
        assert_eq!(
            p(
                &7i32.to_be_bytes(),
                true,
                Some(&Type::INT4),
                Some(DataType::Float)
            )
            .unwrap(),
            Value::Float(7.0)
        );
        assert_eq!(
            p(
                b"2000-01-01 00:00:00+00",
                false,
                Some(&Type::TIMESTAMPTZ),
                None
            )
            .unwrap(),
            Value::Timestamp(PG_EPOCH_MICROS)
        );
        assert_eq!(
            p(&0i64.to_be_bytes(), true, Some(&Type::TIMESTAMPTZ), None).unwrap(),
            Value::Timestamp(PG_EPOCH_MICROS)
        );
        assert!(p(b"abc", false, None, Some(DataType::Int)).is_err());
        assert!(p(&[1, 2, 3], true, Some(&Type::INT8), None).is_err());
        assert_eq!(
            param(0, None, false, None, Some(DataType::Int)).unwrap(),
            Value::Null
        );
    }
}
