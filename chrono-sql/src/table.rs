//! Rows and index entries over a transaction's view: the SQL code that turns values into
//! storage keys and asks storage for them.
//!
//! ```text
//! Access::Key([e1, e2])            ─► get    encode_key([v1, v2])
//! Access::KeyRange(prefix, lo, hi) ─► scan   encode_key(prefix) ‖ [lo … hi] on the next column
//! Access::Index(ix, bounds)        ─► scan   ix.keyspace over the bounds ─► get each row by key
//! ```
//!
//! The plan holds typed bounds (expressions); they become bytes here, when the scan starts,
//! after the statement's parameters are filled in. A bound that is NULL matches no row (a
//! comparison with NULL is never TRUE); one that is not a value of the column's type (or
//! that fails to evaluate) gives up the access path for a full scan: the scan's filter keeps
//! every condition, so the rows are the same either way.

use std::ops::Bound;

use chrono_storage::{KeyRange, Operation, Transaction, Value, encoding};

use crate::catalog::{TableDef, View};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::plan::{Access, KeyBounds, ReadAt};

/// A row.
pub type Row = Vec<Value>;

/// Rows with their stored keys.
pub type KeyedRows<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Row)>> + 'a>;

/// What an access path's bounds come to once their values are known.
enum Span {
    /// One key.
    Key(Vec<u8>),
    /// A range of keys.
    Range(KeyRange),
    /// No row can match.
    Nothing,
    /// Give the access path up: read everything.
    Everything,
}

/// The value of a bound for key column `col`: `Ok(None)` when it is NULL, `Err(())` when
/// it is no value of the column's type.
fn key_value(def: &TableDef, col: usize, e: &Expr) -> std::result::Result<Option<Value>, ()> {
    let column = def.columns.get(col).ok_or(())?;
    let v = e.eval(&[]).map_err(|_| ())?;
    if v.is_null() {
        return Ok(None);
    }
    column
        .data_type
        .coerce(v, &column.name)
        .map(Some)
        .map_err(|_| ())
}

/// Encodes equal values for the leading `cols`, or says why it cannot.
fn key_prefix(
    def: &TableDef,
    cols: &[usize],
    values: &[Expr],
) -> std::result::Result<Vec<u8>, Span> {
    let mut key = Vec::new();
    for (e, &c) in values.iter().zip(cols) {
        match key_value(def, c, e) {
            Ok(Some(v)) => encoding::encode_key_value(&mut key, &v),
            Ok(None) => return Err(Span::Nothing),
            Err(()) => return Err(Span::Everything),
        }
    }
    Ok(key)
}

fn span(def: &TableDef, cols: &[usize], b: &KeyBounds) -> Span {
    let prefix = match key_prefix(def, cols, &b.prefix) {
        Ok(p) => p,
        Err(s) => return s,
    };
    if b.is_prefix() {
        return Span::Range(KeyRange::Prefix(prefix));
    }
    let Some(&next) = cols.get(b.prefix.len()) else {
        return Span::Everything;
    };
    let bound =
        |side: &Option<(Expr, bool)>| -> std::result::Result<Option<(Vec<u8>, bool)>, Span> {
            match side {
                None => Ok(None),
                Some((e, inclusive)) => match key_value(def, next, e) {
                    Ok(Some(v)) => {
                        let mut k = prefix.clone();
                        encoding::encode_key_value(&mut k, &v);
                        Ok(Some((k, *inclusive)))
                    }
                    Ok(None) => Err(Span::Nothing),
                    Err(()) => Err(Span::Everything),
                },
            }
        };
    let (lower, upper) = match (bound(&b.lower), bound(&b.upper)) {
        (Ok(l), Ok(u)) => (l, u),
        (Err(Span::Nothing), _) | (_, Err(Span::Nothing)) => return Span::Nothing,
        _ => return Span::Everything,
    };
    let start = match lower {
        None => {
            // Skip NULLs, which sort first.
            let mut k = prefix.clone();
            k.push(0x01);
            Bound::Included(k)
        }
        Some((k, true)) => Bound::Included(k),
        Some((k, false)) => match encoding::prefix_end(&k) {
            Some(e) => Bound::Included(e),
            None => return Span::Nothing,
        },
    };
    let end = match upper {
        None => match encoding::prefix_end(&prefix) {
            Some(e) if !prefix.is_empty() => Bound::Excluded(e),
            _ => Bound::Unbounded,
        },
        Some((k, true)) => match encoding::prefix_end(&k) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        },
        Some((k, false)) => Bound::Excluded(k),
    };
    Span::Range(KeyRange::Range(start, end))
}

/// Reads the rows of a table (with their stored keys) as the access path says. The access
/// path's expressions must be free of parameters and subqueries by now.
pub fn scan<'a>(
    txn: &'a Transaction,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
) -> Result<KeyedRows<'a>> {
    let view = match read_at {
        ReadAt::Current => View::Current(txn),
        ReadAt::AsOf(ts) => View::AsOf(txn.store(), ts.min(txn.read_ts())),
        ReadAt::Versions(window) => {
            let versions =
                txn.store()
                    .versions(table.keyspace, KeyRange::All, txn.read_ts(), window)?;
            let it = versions.filter_map(move |v| match v {
                Err(e) => Some(Err(e.into())),
                Ok(v) if v.op == Operation::Delete => None,
                Ok(v) => {
                    let raw = v.value.unwrap_or_default();
                    Some(table.decode_row(&raw).map(|mut row| {
                        row.push(Value::Timestamp(v.commit_ts as i64));
                        row.push(
                            v.replaced_ts
                                .map(|t| Value::Timestamp(t as i64))
                                .unwrap_or(Value::Null),
                        );
                        (v.key, row)
                    }))
                }
            });
            return Ok(Box::new(it));
        }
    };
    let decode = move |item: chrono_storage::Result<(Vec<u8>, Vec<u8>)>| -> Result<(Vec<u8>, Row)> {
        let (k, raw) = item?;
        Ok((k, table.decode_row(&raw)?))
    };
    let (keyspace, index) = match access {
        Access::Index(ix, _) => (ix.keyspace, Some(ix)),
        _ => (table.keyspace, None),
    };
    let span = match access {
        Access::Full => Span::Everything,
        Access::Key(values) => match key_prefix(table, &table.primary_key, values) {
            Ok(k) => Span::Key(k),
            Err(s) => s,
        },
        Access::KeyRange(b) => span(table, &table.primary_key, b),
        Access::Index(ix, b) => span(table, &ix.columns, b),
    };
    let range = match span {
        Span::Nothing => return Ok(Box::new(std::iter::empty())),
        Span::Key(k) => {
            let found = view.get(table.keyspace, &k)?;
            return Ok(Box::new(found.map(|raw| decode(Ok((k, raw)))).into_iter()));
        }
        Span::Everything => {
            return Ok(Box::new(
                view.scan(table.keyspace, KeyRange::All)?.map(decode),
            ));
        }
        Span::Range(r) => r,
    };
    let Some(ix) = index else {
        return Ok(Box::new(view.scan(keyspace, range)?.map(decode)));
    };
    let entries = view.scan(keyspace, range)?;
    let ix_name = ix.name.clone();
    Ok(Box::new(entries.map(move |item| {
        let (_, pk) = item?;
        match view.get(table.keyspace, &pk) {
            Ok(Some(raw)) => decode(Ok((pk, raw))),
            Ok(None) => Err(Error::Corruption(format!(
                "index {ix_name} points at a missing row of {}",
                table.name
            ))),
            Err(e) => Err(e),
        }
    })))
}
