//! Every byte layout of the store, in one place: order-preserving key encodings and the
//! compact row encoding. No other code assembles key bytes.
//!
//! # Key encodings (order-preserving and prefix-free)
//!
//! ```text
//! u32 / u64        big-endian
//! i64              big-endian with the sign bit flipped
//! f64              big-endian; sign bit flipped for positives, all bits flipped for negatives
//! bytes / text     0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00
//! Value            one tag byte (NULL 0x00 < BOOL 0x01 < INT 0x02 < FLOAT 0x03 < TEXT 0x04
//!                  < BLOB 0x05 < TIMESTAMP 0x06), then the payload above
//! ```
//!
//! For any two values of one type `a < b ⇔ enc(a) < enc(b)` bytewise, and no encoding is a
//! prefix of another, so tuples concatenate safely (property-tested below).
//!
//! # MVCC keys
//!
//! ```text
//! versions CF:  0x01 ‖ keyspace u32 ‖ escaped user key ‖ !commit_ts u64   → op ‖ row
//! latest CF:    0x02 ‖ keyspace u32 ‖ escaped user key                   → commit_ts ‖ op ‖ row
//! meta CF:      0x03 ‖ escaped name                                      → value
//! ```
//!
//! The commit timestamp is stored inverted (`!ts`), so a key's newest version sorts first
//! and "the version visible at `t`" is the first entry at or after `… ‖ !t`.

use crate::error::{Error, Result};
use crate::value::Value;

const TAG_VERSION: u8 = 0x01;
const TAG_LATEST: u8 = 0x02;
const TAG_META: u8 = 0x03;
const TAG_AUDIT: u8 = 0x04;

const VAL_NULL: u8 = 0x00;
const VAL_BOOL: u8 = 0x01;
const VAL_INT: u8 = 0x02;
const VAL_FLOAT: u8 = 0x03;
const VAL_TEXT: u8 = 0x04;
const VAL_BLOB: u8 = 0x05;
const VAL_TIMESTAMP: u8 = 0x06;

fn corrupt(what: &str) -> Error {
    Error::Corruption(format!("malformed {what}"))
}

/// Appends `bytes` escaped (0x00 → 0x00 0xFF) and terminated by 0x00 0x00.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Decodes an escaped byte string from the front of `input`, returning it and the rest.
pub fn decode_bytes(input: &[u8]) -> Result<(Vec<u8>, &[u8])> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == 0 {
            match input.get(i + 1) {
                Some(0x00) => return Ok((out, &input[i + 2..])),
                Some(0xFF) => {
                    out.push(0);
                    i += 2;
                }
                _ => return Err(corrupt("escaped byte string")),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    Err(corrupt("unterminated byte string"))
}

/// Big-endian `u64`.
pub fn encode_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian `u64` from the front of `input`.
pub fn decode_u64(input: &[u8]) -> Result<(u64, &[u8])> {
    if input.len() < 8 {
        return Err(corrupt("u64"));
    }
    let (head, rest) = input.split_at(8);
    let mut buf = [0u8; 8];
    buf.copy_from_slice(head);
    Ok((u64::from_be_bytes(buf), rest))
}

fn encode_i64(out: &mut Vec<u8>, v: i64) {
    encode_u64(out, (v as u64) ^ (1 << 63));
}

fn decode_i64(input: &[u8]) -> Result<(i64, &[u8])> {
    let (u, rest) = decode_u64(input)?;
    Ok(((u ^ (1 << 63)) as i64, rest))
}

fn encode_f64(out: &mut Vec<u8>, v: f64) {
    let v = if v == 0.0 { 0.0 } else { v }; // -0.0 and 0.0 are one key
    let bits = v.to_bits();
    let bits = if bits >> 63 == 0 {
        bits ^ (1 << 63)
    } else {
        !bits
    };
    encode_u64(out, bits);
}

fn decode_f64(input: &[u8]) -> Result<(f64, &[u8])> {
    let (bits, rest) = decode_u64(input)?;
    let bits = if bits >> 63 == 1 {
        bits ^ (1 << 63)
    } else {
        !bits
    };
    Ok((f64::from_bits(bits), rest))
}

/// Appends the order-preserving encoding of one value.
pub fn encode_key_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(VAL_NULL),
        Value::Bool(b) => {
            out.push(VAL_BOOL);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(VAL_INT);
            encode_i64(out, *i);
        }
        Value::Float(f) => {
            out.push(VAL_FLOAT);
            encode_f64(out, *f);
        }
        Value::Text(s) => {
            out.push(VAL_TEXT);
            encode_bytes(out, s.as_bytes());
        }
        Value::Blob(b) => {
            out.push(VAL_BLOB);
            encode_bytes(out, b);
        }
        Value::Timestamp(t) => {
            out.push(VAL_TIMESTAMP);
            encode_i64(out, *t);
        }
    }
}

/// Decodes one key-encoded value from the front of `input`.
pub fn decode_key_value(input: &[u8]) -> Result<(Value, &[u8])> {
    let (&tag, rest) = input.split_first().ok_or_else(|| corrupt("key value"))?;
    Ok(match tag {
        VAL_NULL => (Value::Null, rest),
        VAL_BOOL => {
            let (&b, rest) = rest.split_first().ok_or_else(|| corrupt("bool"))?;
            (Value::Bool(b != 0), rest)
        }
        VAL_INT => {
            let (i, rest) = decode_i64(rest)?;
            (Value::Int(i), rest)
        }
        VAL_FLOAT => {
            let (f, rest) = decode_f64(rest)?;
            (Value::Float(f), rest)
        }
        VAL_TEXT => {
            let (b, rest) = decode_bytes(rest)?;
            let s = String::from_utf8(b).map_err(|_| corrupt("text (not UTF-8)"))?;
            (Value::Text(s), rest)
        }
        VAL_BLOB => {
            let (b, rest) = decode_bytes(rest)?;
            (Value::Blob(b), rest)
        }
        VAL_TIMESTAMP => {
            let (t, rest) = decode_i64(rest)?;
            (Value::Timestamp(t), rest)
        }
        _ => return Err(corrupt("key value tag")),
    })
}

/// The order-preserving encoding of a tuple of values (a primary key, an index key).
pub fn encode_key(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 10);
    for v in values {
        encode_key_value(&mut out, v);
    }
    out
}

/// Decodes a whole tuple produced by [`encode_key`].
pub fn decode_key(mut input: &[u8]) -> Result<Vec<Value>> {
    let mut values = Vec::new();
    while !input.is_empty() {
        let (v, rest) = decode_key_value(input)?;
        values.push(v);
        input = rest;
    }
    Ok(values)
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when there is none (the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `0x01 ‖ keyspace`: the prefix of all versions of a keyspace.
pub fn versions_prefix(keyspace: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(TAG_VERSION);
    k.extend_from_slice(&keyspace.to_be_bytes());
    k
}

/// `0x01 ‖ keyspace ‖ escaped key`: the prefix of all versions of one key.
pub fn version_key_prefix(keyspace: u32, key: &[u8]) -> Vec<u8> {
    let mut k = versions_prefix(keyspace);
    encode_bytes(&mut k, key);
    k
}

/// `0x01 ‖ keyspace ‖ escaped key ‖ !commit_ts`: one version of one key.
pub fn version_key(keyspace: u32, key: &[u8], commit_ts: u64) -> Vec<u8> {
    let mut k = version_key_prefix(keyspace, key);
    encode_u64(&mut k, !commit_ts);
    k
}

/// Splits a version key into (keyspace, user key, commit timestamp).
pub fn parse_version_key(raw: &[u8]) -> Result<(u32, Vec<u8>, u64)> {
    if raw.len() < 5 || raw[0] != TAG_VERSION {
        return Err(corrupt("version key"));
    }
    let keyspace = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let (key, rest) = decode_bytes(&raw[5..])?;
    let (inv, rest) = decode_u64(rest)?;
    if !rest.is_empty() {
        return Err(corrupt("version key (trailing bytes)"));
    }
    Ok((keyspace, key, !inv))
}

/// `0x02 ‖ keyspace`: the prefix of the latest-version index of a keyspace.
pub fn latest_prefix(keyspace: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(TAG_LATEST);
    k.extend_from_slice(&keyspace.to_be_bytes());
    k
}

/// The smallest key after every latest-index key of `keyspace`.
pub fn latest_keyspace_end(keyspace: u32) -> Vec<u8> {
    match keyspace.checked_add(1) {
        Some(next) => latest_prefix(next),
        None => vec![TAG_LATEST + 1],
    }
}

/// A key about halfway between `low` and `high` in byte order, for splitting a range
/// between threads: `low < mid <= high`, or `None` when the two are too close to split
/// (it compares up to 16 bytes after their common prefix).
pub fn midpoint(low: &[u8], high: &[u8]) -> Option<Vec<u8>> {
    if low >= high {
        return None;
    }
    let common = low.iter().zip(high).take_while(|(a, b)| a == b).count();
    let window = |k: &[u8]| {
        let mut buf = [0u8; 16];
        for (slot, byte) in buf.iter_mut().zip(&k[common..]) {
            *slot = *byte;
        }
        u128::from_be_bytes(buf)
    };
    let (a, b) = (window(low), window(high));
    let m = a + (b.checked_sub(a)?) / 2;
    let mut mid = high[..common].to_vec();
    mid.extend_from_slice(&m.to_be_bytes());
    while mid.len() > common + 1 && mid.last() == Some(&0) {
        mid.pop();
    }
    (low < mid.as_slice() && mid.as_slice() <= high).then_some(mid)
}

/// `0x02 ‖ keyspace ‖ escaped key`.
pub fn latest_key(keyspace: u32, key: &[u8]) -> Vec<u8> {
    let mut k = latest_prefix(keyspace);
    encode_bytes(&mut k, key);
    k
}

/// Splits a latest-index key into (keyspace, user key).
pub fn parse_latest_key(raw: &[u8]) -> Result<(u32, Vec<u8>)> {
    if raw.len() < 5 || raw[0] != TAG_LATEST {
        return Err(corrupt("latest key"));
    }
    let keyspace = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let (key, rest) = decode_bytes(&raw[5..])?;
    if !rest.is_empty() {
        return Err(corrupt("latest key (trailing bytes)"));
    }
    Ok((keyspace, key))
}

/// `0x03 ‖ escaped name`: a metadata entry of the store.
pub fn meta_key(name: &str) -> Vec<u8> {
    let mut k = vec![TAG_META];
    encode_bytes(&mut k, name.as_bytes());
    k
}

/// The prefix of every metadata key whose name starts with `name_prefix` (the escaped name
/// without its terminator).
pub fn meta_prefix(name_prefix: &str) -> Vec<u8> {
    let mut k = meta_key(name_prefix);
    k.truncate(k.len() - 2);
    k
}

/// Whether a latest-index key belongs to `keyspace`.
pub fn is_latest_key_of(raw: &[u8], keyspace: u32) -> bool {
    raw.len() >= 5 && raw[0] == TAG_LATEST && raw[1..5] == keyspace.to_be_bytes()
}

/// The smallest key after every key that starts with `prefix` followed by a NULL value:
/// where the non-NULL values after `prefix` begin (NULL sorts first).
pub fn after_nulls(prefix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 1);
    k.extend_from_slice(prefix);
    k.push(VAL_NULL + 1);
    k
}

/// An index entry's key: `encode_key(values)`, followed by the row's key when the entry
/// is not the only one for its values (`row_key`; a non-unique index, or NULLs in a
/// unique one).
pub fn index_entry_key(values: &[Value], row_key: Option<&[u8]>) -> Vec<u8> {
    let mut key = encode_key(values);
    if let Some(r) = row_key {
        key.extend_from_slice(r);
    }
    key
}

/// `0x04 ‖ section ‖ encode_key(parts)`: an entry of the audit trail's column family.
pub fn audit_key(section: u8, parts: &[Value]) -> Vec<u8> {
    let mut k = vec![TAG_AUDIT, section];
    for p in parts {
        encode_key_value(&mut k, p);
    }
    k
}

/// Splits an audit key into (section, parts).
pub fn parse_audit_key(raw: &[u8]) -> Result<(u8, Vec<Value>)> {
    if raw.len() < 2 || raw[0] != TAG_AUDIT {
        return Err(corrupt("audit key"));
    }
    Ok((raw[1], decode_key(&raw[2..])?))
}

/// `0x02 ‖ keyspace ‖ escaped prefix` without the terminator: every latest-index key of a
/// user key that starts with `prefix` starts with this.
pub fn latest_key_prefix_of(keyspace: u32, prefix: &[u8]) -> Vec<u8> {
    let mut k = latest_prefix(keyspace);
    encode_bytes(&mut k, prefix);
    k.truncate(k.len() - 2);
    k
}

/// `0x01 ‖ keyspace ‖ escaped prefix` without the terminator.
pub fn version_key_prefix_of(keyspace: u32, prefix: &[u8]) -> Vec<u8> {
    let mut k = versions_prefix(keyspace);
    encode_bytes(&mut k, prefix);
    k.truncate(k.len() - 2);
    k
}

/// The value of a versions-family entry: `op ‖ row` (`op` only for a delete).
pub fn encode_version_value(op: u8, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + row.len());
    v.push(op);
    v.extend_from_slice(row);
    v
}

/// Splits a versions-family value into (op, row).
pub fn decode_version_value(raw: &[u8]) -> Result<(u8, &[u8])> {
    raw.split_first()
        .map(|(op, row)| (*op, row))
        .ok_or_else(|| corrupt("version value"))
}

/// The value of a latest-family entry: `commit_ts ‖ op ‖ row`.
pub fn encode_latest_value(commit_ts: u64, op: u8, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + row.len());
    encode_u64(&mut v, commit_ts);
    v.push(op);
    v.extend_from_slice(row);
    v
}

/// Splits a latest-family value into (commit_ts, op, row).
pub fn decode_latest_value(raw: &[u8]) -> Result<(u64, u8, &[u8])> {
    let (ts, rest) = decode_u64(raw)?;
    let (op, row) = decode_version_value(rest)?;
    Ok((ts, op, row))
}

// ---------------------------------------------------------------------------------------
// Row encoding: compact, not order-preserving.
//
//   row   := varint(column count) ‖ value*
//   value := tag ‖ payload   (INT and TIMESTAMP as zig-zag varints, FLOAT as 8 bytes LE,
//                             TEXT and BLOB as varint length ‖ bytes, BOOL as one byte)
// ---------------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &[u8]) -> Result<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, &input[i + 1..]));
        }
    }
    Err(corrupt("varint"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes a row's values.
pub fn encode_row(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + values.len() * 9);
    put_varint(&mut out, values.len() as u64);
    for v in values {
        match v {
            Value::Null => out.push(VAL_NULL),
            Value::Bool(b) => {
                out.push(VAL_BOOL);
                out.push(u8::from(*b));
            }
            Value::Int(i) => {
                out.push(VAL_INT);
                put_varint(&mut out, zigzag(*i));
            }
            Value::Float(f) => {
                out.push(VAL_FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => {
                out.push(VAL_TEXT);
                put_varint(&mut out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Blob(b) => {
                out.push(VAL_BLOB);
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Timestamp(t) => {
                out.push(VAL_TIMESTAMP);
                put_varint(&mut out, zigzag(*t));
            }
        }
    }
    out
}

/// Decodes a row produced by [`encode_row`].
pub fn decode_row(input: &[u8]) -> Result<Vec<Value>> {
    let mut values = Vec::new();
    decode_row_into(input, &mut values, None)?;
    Ok(values)
}

/// Decodes a row produced by [`encode_row`] into `out`, reusing its values' buffers: the
/// columns `wanted` says (all when `None`) get their values; the others are skipped over
/// (still checked for their length) and set to NULL. What a scan's filter reads per row,
/// so a row the filter rejects costs no allocation and decodes only the filter's columns.
/// `out` ends with exactly the row's column count.
pub fn decode_row_into(input: &[u8], out: &mut Vec<Value>, wanted: Option<&[bool]>) -> Result<()> {
    let mut row = StoredRow::new(input)?;
    out.truncate(row.remaining());
    out.resize(row.remaining(), Value::Null);
    for (i, slot) in out.iter_mut().enumerate() {
        let stored = row.next_value()?;
        if !wanted.is_none_or(|w| w.get(i).copied().unwrap_or(false)) {
            *slot = Value::Null;
            continue;
        }
        match (stored, &mut *slot) {
            (StoredValue::Text(bytes), Value::Text(s)) => {
                s.clear();
                s.push_str(stored_text(bytes)?);
            }
            (StoredValue::Blob(bytes), Value::Blob(b)) => {
                b.clear();
                b.extend_from_slice(bytes);
            }
            (stored, slot) => *slot = stored.to_value()?,
        }
    }
    row.finish()
}

/// One value of a stored row as its bytes hold it, borrowed: text is not yet checked to be
/// UTF-8 ([`StoredValue::to_value`] checks it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StoredValue<'a> {
    /// NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text, as stored (unchecked UTF-8).
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
    /// A timestamp.
    Timestamp(i64),
}

impl StoredValue<'_> {
    /// The value, text checked to be UTF-8.
    pub fn to_value(self) -> Result<Value> {
        Ok(match self {
            StoredValue::Null => Value::Null,
            StoredValue::Bool(b) => Value::Bool(b),
            StoredValue::Int(i) => Value::Int(i),
            StoredValue::Float(f) => Value::Float(f),
            StoredValue::Text(bytes) => Value::Text(stored_text(bytes)?.to_owned()),
            StoredValue::Blob(bytes) => Value::Blob(bytes.to_vec()),
            StoredValue::Timestamp(t) => Value::Timestamp(t),
        })
    }
}

fn stored_text(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| corrupt("row text"))
}

/// The values of a row produced by [`encode_row`], read one at a time from its bytes
/// without copying them: what tests a stored row on its bytes reads. Every length and tag
/// is checked (the bytes are untrusted); reading past the last value is an error.
#[derive(Debug, Clone)]
pub struct StoredRow<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> StoredRow<'a> {
    /// The row whose encoding is `input` (its column count read and checked).
    pub fn new(input: &'a [u8]) -> Result<Self> {
        let (count, rest) = get_varint(input)?;
        // Every value takes at least its tag byte.
        if count > rest.len() as u64 {
            return Err(corrupt("row (column count)"));
        }
        Ok(Self {
            rest,
            left: count as usize,
        })
    }

    /// How many values are left to read.
    pub fn remaining(&self) -> usize {
        self.left
    }

    /// The next value.
    #[inline]
    pub fn next_value(&mut self) -> Result<StoredValue<'a>> {
        if self.left == 0 {
            return Err(corrupt("row (past its last value)"));
        }
        self.left -= 1;
        let (&tag, rest) = self.rest.split_first().ok_or_else(|| corrupt("row"))?;
        let (value, rest) = match tag {
            VAL_NULL => (StoredValue::Null, rest),
            VAL_BOOL => {
                let (&b, r) = rest.split_first().ok_or_else(|| corrupt("row bool"))?;
                (StoredValue::Bool(b != 0), r)
            }
            VAL_INT | VAL_TIMESTAMP => {
                let (u, r) = get_varint(rest)?;
                if tag == VAL_INT {
                    (StoredValue::Int(unzigzag(u)), r)
                } else {
                    (StoredValue::Timestamp(unzigzag(u)), r)
                }
            }
            VAL_FLOAT => {
                let (bytes, r) = rest
                    .split_first_chunk::<8>()
                    .ok_or_else(|| corrupt("row float"))?;
                (StoredValue::Float(f64::from_le_bytes(*bytes)), r)
            }
            VAL_TEXT | VAL_BLOB => {
                let (len, r) = get_varint(rest)?;
                let len = usize::try_from(len).map_err(|_| corrupt("row length"))?;
                if r.len() < len {
                    return Err(corrupt("row string"));
                }
                let (bytes, r) = r.split_at(len);
                if tag == VAL_TEXT {
                    (StoredValue::Text(bytes), r)
                } else {
                    (StoredValue::Blob(bytes), r)
                }
            }
            _ => return Err(corrupt("row value tag")),
        };
        self.rest = rest;
        Ok(value)
    }

    /// Checks that the row ends where its last value does (call after reading them all).
    pub fn finish(self) -> Result<()> {
        if self.left != 0 || !self.rest.is_empty() {
            return Err(corrupt("row (trailing bytes)"));
        }
        Ok(())
    }
}

/// A key for messages: its values when it decodes as a key tuple, else its bytes.
pub fn printable_key(key: &[u8]) -> String {
    match decode_key(key) {
        Ok(values) => {
            let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            format!("({})", parts.join(", "))
        }
        Err(_) => format!("{key:02x?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN has no order", |f| !f.is_nan())
                .prop_map(Value::Float),
            ".{0,12}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Blob),
            any::<i64>().prop_map(Value::Timestamp),
        ]
    }

    /// Two values of the same type.
    fn arb_pair() -> impl Strategy<Value = (Value, Value)> {
        let float = || any::<f64>().prop_filter("NaN has no order", |f| !f.is_nan());
        prop_oneof![
            (any::<bool>(), any::<bool>()).prop_map(|(a, b)| (Value::Bool(a), Value::Bool(b))),
            (any::<i64>(), any::<i64>()).prop_map(|(a, b)| (Value::Int(a), Value::Int(b))),
            (float(), float()).prop_map(|(a, b)| (Value::Float(a), Value::Float(b))),
            (".{0,6}", ".{0,6}").prop_map(|(a, b)| (Value::Text(a), Value::Text(b))),
            (
                proptest::collection::vec(any::<u8>(), 0..6),
                proptest::collection::vec(any::<u8>(), 0..6)
            )
                .prop_map(|(a, b)| (Value::Blob(a), Value::Blob(b))),
            (any::<i64>(), any::<i64>())
                .prop_map(|(a, b)| (Value::Timestamp(a), Value::Timestamp(b))),
        ]
    }

    proptest! {
        #[test]
        fn a_midpoint_lies_between_its_ends(a in proptest::collection::vec(any::<u8>(), 0..24),
                                            b in proptest::collection::vec(any::<u8>(), 0..24)) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            if let Some(mid) = midpoint(&low, &high) {
                prop_assert!(low < mid && mid <= high, "{low:?} {mid:?} {high:?}");
            }
        }

        #[test]
        fn integer_keys_split_near_the_middle(a in 0i64..1_000_000, gap in 1_000i64..1_000_000) {
            let (low, high) = (encode_key(&[Value::Int(a)]), encode_key(&[Value::Int(a + gap)]));
            let mid = midpoint(&low, &high).unwrap();
            // The key of the value halfway, give or take a part in a thousand of the gap.
            let near = |v: i64| encode_key(&[Value::Int(v)]);
            prop_assert!(near(a + gap / 2 - gap / 1000 - 1) <= mid && mid <= near(a + gap / 2 + gap / 1000 + 1));
        }

        #[test]
        fn key_values_round_trip(v in arb_value()) {
            let enc = encode_key(std::slice::from_ref(&v));
            let back = decode_key(&enc).unwrap();
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(back[0].total_cmp(&v), std::cmp::Ordering::Equal);
        }

        #[test]
        fn key_order_matches_value_order((a, b) in arb_pair()) {
            let (ea, eb) = (encode_key(std::slice::from_ref(&a)), encode_key(std::slice::from_ref(&b)));
            prop_assert_eq!(a.total_cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn tuple_order_is_lexicographic(a in proptest::collection::vec(any::<i64>(), 1..4),
                                        b in proptest::collection::vec(any::<i64>(), 1..4)) {
            let ea = encode_key(&a.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>());
            let eb = encode_key(&b.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>());
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn escaped_bytes_are_prefix_free_and_ordered(a in proptest::collection::vec(any::<u8>(), 0..16),
                                                     b in proptest::collection::vec(any::<u8>(), 0..16)) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            encode_bytes(&mut ea, &a);
            encode_bytes(&mut eb, &b);
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            if a != b {
                prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
            }
            let (back, rest) = decode_bytes(&ea).unwrap();
            prop_assert_eq!(back, a);
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn version_keys_sort_newest_first(key in proptest::collection::vec(any::<u8>(), 0..8),
                                          t1 in 1u64..u64::MAX, t2 in 1u64..u64::MAX) {
            let (k1, k2) = (version_key(7, &key, t1), version_key(7, &key, t2));
            prop_assert_eq!(t1.cmp(&t2), k2.cmp(&k1));
            prop_assert_eq!(parse_version_key(&k1).unwrap(), (7, key.clone(), t1));
        }

        #[test]
        fn rows_round_trip(values in proptest::collection::vec(arb_value(), 0..8)) {
            let back = decode_row(&encode_row(&values)).unwrap();
            prop_assert_eq!(back.len(), values.len());
            for (x, y) in back.iter().zip(&values) {
                prop_assert_eq!(x.total_cmp(y), std::cmp::Ordering::Equal);
            }
        }

        #[test]
        fn rows_decode_into_a_reused_buffer(
            first in proptest::collection::vec(arb_value(), 0..8),
            values in proptest::collection::vec(arb_value(), 0..8),
            wanted in proptest::collection::vec(any::<bool>(), 0..8),
            all in any::<bool>(),
        ) {
            // A buffer left with another row's values, as a scan leaves it.
            let mut out = Vec::new();
            decode_row_into(&encode_row(&first), &mut out, None).unwrap();
            let mask = (!all).then_some(&wanted[..]);
            decode_row_into(&encode_row(&values), &mut out, mask).unwrap();
            prop_assert_eq!(out.len(), values.len());
            for (i, (x, y)) in out.iter().zip(&values).enumerate() {
                let want = all || wanted.get(i).copied().unwrap_or(false);
                let expected = if want { y } else { &Value::Null };
                prop_assert_eq!(x.total_cmp(expected), std::cmp::Ordering::Equal);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut out = vec![Value::Text("reused".into())];
            let _ = decode_row_into(&bytes, &mut out, Some(&[true, false]));
            let _ = decode_row(&bytes);
            let _ = decode_key(&bytes);
            let _ = parse_version_key(&bytes);
        }
    }
}
