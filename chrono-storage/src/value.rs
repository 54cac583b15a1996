//! The typed values stored in rows and keys.
//!
//! `Value` is shared by the store (which encodes values into order-preserving keys and
//! compact rows, see [`crate::encoding`]) and the SQL engine (which computes with them).

use std::cmp::Ordering;
use std::fmt;

/// One SQL value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// BIGINT / INTEGER.
    Int(i64),
    /// DOUBLE / REAL.
    Float(f64),
    /// TEXT / VARCHAR.
    Text(String),
    /// BLOB.
    Blob(Vec<u8>),
    /// TIMESTAMP: microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

impl Value {
    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "BOOLEAN",
            Value::Int(_) => "BIGINT",
            Value::Float(_) => "DOUBLE",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
            Value::Timestamp(_) => "TIMESTAMP",
        }
    }

    /// A total order for sorting, grouping and keys: NULL first, then booleans, numbers
    /// (integers and floats compared by value, NaN after every other number), text, blobs
    /// and timestamps. SQL comparisons with NULL are handled by the SQL layer; this order
    /// only decides where values land.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        fn rank(v: &Value) -> u8 {
            match v {
                Null => 0,
                Bool(_) => 1,
                Int(_) | Float(_) => 2,
                Text(_) => 3,
                Blob(_) => 4,
                Timestamp(_) => 5,
            }
        }
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.partial_cmp(b).unwrap_or_else(|| a.total_cmp(b)),
            (Int(a), Float(b)) => cmp_int_float(*a, *b),
            (Float(a), Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Text(a), Text(b)) => a.cmp(b),
            (Blob(a), Blob(b)) => a.cmp(b),
            (Timestamp(a), Timestamp(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

/// Compares an integer with a float exactly (no rounding of large integers).
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    if f >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let truncated = f.trunc() as i64;
    match i.cmp(&truncated) {
        Ordering::Equal => {
            let frac = f - f.trunc();
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "NULL"),
            Value::Bool(b) => write!(f, "{}", if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", format_float(*x)),
            Value::Text(s) => write!(f, "{s}"),
            Value::Blob(b) => {
                write!(f, "x'")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                write!(f, "'")
            }
            Value::Timestamp(us) => write!(f, "{}", format_timestamp_micros(*us)),
        }
    }
}

/// Formats a float the way SQLite prints a REAL: always with a decimal point or exponent.
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Formats microseconds since the epoch as `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC).
pub fn format_timestamp_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{micros:06}")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A proleptic Gregorian date to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.ffffff]]`, with `T` or a space between date and
/// time and an optional `Z` or `±HH:MM` offset, into microseconds since the epoch (UTC).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let s = text.trim();
    let bytes = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) as i64 {
        return None;
    }
    let mut micros = days_from_civil(y, mo as u32, d as u32) * 86_400_000_000;
    let mut rest = s.get(10..)?;
    if rest.is_empty() {
        return Some(micros);
    }
    if !(rest.starts_with('T') || rest.starts_with(' ') || rest.starts_with('t')) {
        return None;
    }
    rest = rest.get(1..)?;
    let rb = rest.as_bytes();
    if rb.len() < 5 || rb[2] != b':' {
        return None;
    }
    let two = |p: &str| -> Option<i64> {
        if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let hh = two(rest.get(0..2)?)?;
    let mm = two(rest.get(3..5)?)?;
    let mut ss = 0;
    let mut frac_us = 0;
    let mut idx = 5;
    if rb.len() >= 8 && rb[5] == b':' {
        ss = two(rest.get(6..8)?)?;
        idx = 8;
        if rb.len() > 8 && rb[8] == b'.' {
            let mut j = 9;
            let mut digits = 0;
            while j < rb.len() && rb[j].is_ascii_digit() {
                if digits < 6 {
                    frac_us = frac_us * 10 + i64::from(rb[j] - b'0');
                    digits += 1;
                }
                j += 1;
            }
            if j == 9 {
                return None;
            }
            for _ in digits..6 {
                frac_us *= 10;
            }
            idx = j;
        }
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    micros += ((hh * 60 + mm) * 60 + ss) * 1_000_000 + frac_us;
    let tz = rest.get(idx..)?.trim();
    if tz.is_empty() || tz == "Z" || tz == "z" {
        return Some(micros);
    }
    let sign = match tz.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = tz.get(1..)?;
    let (oh, om) = if off.len() == 5 && off.as_bytes()[2] == b':' {
        (two(off.get(0..2)?)?, two(off.get(3..5)?)?)
    } else if off.len() == 4 {
        (two(off.get(0..2)?)?, two(off.get(2..4)?)?)
    } else if off.len() == 2 {
        (two(off)?, 0)
    } else {
        return None;
    };
    Some(micros - sign * (oh * 60 + om) * 60_000_000)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_text() {
        let us = parse_timestamp("2021-11-01T00:00:00Z").unwrap();
        assert_eq!(us, 1_635_724_800_000_000);
        assert_eq!(format_timestamp_micros(us), "2021-11-01 00:00:00");
        assert_eq!(
            parse_timestamp("2021-11-01 02:00:00.5+02:00").unwrap(),
            1_635_724_800_500_000
        );
        assert!(parse_timestamp("2021-02-30").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_not_without_panicking(s in "\\PC{0,30}") {
            let _ = parse_timestamp(&s);
            let _ = parse_timestamp(&format!("2021-11-01T{s}"));
            let _ = parse_timestamp(&format!("2021-11-01 10:00:00{s}"));
        }
    }

    #[test]
    fn integers_and_floats_compare_by_value() {
        assert_eq!(Value::Int(2).total_cmp(&Value::Float(2.5)), Ordering::Less);
        assert_eq!(Value::Float(3.0).total_cmp(&Value::Int(3)), Ordering::Equal);
        assert_eq!(Value::Null.total_cmp(&Value::Int(i64::MIN)), Ordering::Less);
    }
}
