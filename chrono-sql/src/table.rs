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

use chrono_storage::{KeyRange, Operation, RowCursor, Transaction, Value, encoding};

use crate::catalog::{IndexDef, Snapshot, TableDef};
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
            Bound::Included(encoding::after_nulls(&prefix))
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
    scan_with(txn, table, read_at, access, true)
}

/// Reads the rows of a table as the access path says, without their keys (a read decodes
/// each row straight from the store's bytes and never decodes its key).
pub fn rows<'a>(
    txn: &'a Transaction,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
) -> Result<Box<dyn Iterator<Item = Result<Row>> + 'a>> {
    Ok(Box::new(
        scan_with(txn, table, read_at, access, false)?.map(|r| r.map(|(_, row)| row)),
    ))
}

/// The rows of a stored range, decoded from the bytes the cursor lends; keys only when
/// `keys` (empty otherwise, which allocates nothing).
fn decoded<'a>(mut cursor: RowCursor, table: &'a TableDef, keys: bool) -> KeyedRows<'a> {
    Box::new(std::iter::from_fn(move || match cursor.advance() {
        Ok(false) => None,
        Err(e) => Some(Err(e.into())),
        Ok(true) => {
            let key = if keys {
                match cursor.key() {
                    Ok(k) => k,
                    Err(e) => return Some(Err(e.into())),
                }
            } else {
                Vec::new()
            };
            Some(table.decode_row(cursor.row()).map(|row| (key, row)))
        }
    }))
}

/// A kept plan's `AS OF $i` reached execution without this execution's time: a bug, not
/// a reason to read another time.
pub(crate) fn unresolved(i: usize) -> Error {
    Error::Unavailable(format!(
        "internal: the time of AS OF ${i} was not filled in before execution"
    ))
}

fn scan_with<'a>(
    txn: &'a Transaction,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
    keys: bool,
) -> Result<KeyedRows<'a>> {
    let view = match read_at {
        ReadAt::Current => Snapshot::Transaction(txn),
        ReadAt::AsOf(ts) => Snapshot::At(txn.store(), ts.min(txn.read_ts())),
        ReadAt::AsOfParam(i) => return Err(unresolved(i)),
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
            // The write path (it wants keys) reads the row it is about to change.
            let found = match (keys, view) {
                (true, Snapshot::Transaction(t)) => t.get_for_write(table.keyspace, &k)?,
                _ => view.get(table.keyspace, &k)?,
            };
            return Ok(Box::new(found.map(|raw| decode(Ok((k, raw)))).into_iter()));
        }
        Span::Everything => {
            return Ok(decoded(
                view.cursor(table.keyspace, KeyRange::All)?,
                table,
                keys,
            ));
        }
        Span::Range(r) => r,
    };
    let Some(ix) = index else {
        return Ok(decoded(view.cursor(keyspace, range)?, table, keys));
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
            Err(e) => Err(e.into()),
        }
    })))
}

/// Checks types and NOT NULL for a full row.
pub fn check_row(def: &TableDef, row: Vec<Value>) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(row.len());
    for (v, col) in row.into_iter().zip(&def.columns) {
        let v = col
            .data_type
            .coerce(v, &format!("{}.{}", def.name, col.name))?;
        if v.is_null() && !col.nullable {
            return Err(Error::Constraint(format!(
                "NOT NULL constraint failed: {}.{}",
                def.name, col.name
            )));
        }
        out.push(v);
    }
    Ok(out)
}

/// A stored row with its key.
pub type KeyedRow = (Vec<u8>, Row);

/// Fails if another row already holds `row`'s values in the unique index `ix`.
pub fn check_unique(
    txn: &Transaction,
    def: &TableDef,
    ix: &IndexDef,
    row: &[Value],
    own_key: Option<&[u8]>,
) -> Result<()> {
    let values: Vec<Value> = ix.columns.iter().map(|&i| row[i].clone()).collect();
    if values.iter().any(Value::is_null) {
        return Ok(());
    }
    for item in txn.scan(ix.keyspace, KeyRange::Prefix(encoding::encode_key(&values)))? {
        let (_, holder) = item?;
        if Some(holder.as_slice()) != own_key {
            return Err(Error::Constraint(format!(
                "UNIQUE constraint failed: {}",
                describe_key(def, row, &ix.columns)
            )));
        }
    }
    Ok(())
}

/// Inserts a checked row with its index entries.
pub fn insert_row(txn: &mut Transaction, def: &TableDef, row: Vec<Value>) -> Result<()> {
    def.label_keyspaces(txn);
    let store = txn.store().clone();
    let key = def.row_key(&row, || store.next_id())?;
    if !def.primary_key.is_empty() && txn.get_for_write(def.keyspace, &key)?.is_some() {
        return Err(Error::Constraint(format!(
            "UNIQUE constraint failed: {} (duplicate primary key)",
            describe_key(def, &row, &def.primary_key)
        )));
    }
    for ix in &def.indexes {
        if ix.unique {
            check_unique(txn, def, ix, &row, None)?;
        }
    }
    for ix in &def.indexes {
        txn.put(ix.keyspace, def.index_key(ix, &row, &key), key.clone())?;
    }
    txn.put(def.keyspace, key, encoding::encode_row(&row))?;
    Ok(())
}

pub fn update_row(
    txn: &mut Transaction,
    def: &TableDef,
    old_key: &[u8],
    old: &[Value],
    new: Vec<Value>,
) -> Result<()> {
    def.label_keyspaces(txn);
    let new_key = if def.primary_key.is_empty() {
        old_key.to_vec()
    } else {
        def.row_key(&new, || Ok(0))?
    };
    let moved = new_key != old_key;
    if moved {
        if txn.get_for_write(def.keyspace, &new_key)?.is_some() {
            return Err(Error::Constraint(format!(
                "UNIQUE constraint failed: {} (duplicate primary key)",
                describe_key(def, &new, &def.primary_key)
            )));
        }
        txn.delete(def.keyspace, old_key.to_vec())?;
    }
    for ix in &def.indexes {
        let old_ik = def.index_key(ix, old, old_key);
        let new_ik = def.index_key(ix, &new, &new_key);
        if old_ik != new_ik || moved {
            txn.delete(ix.keyspace, old_ik)?;
            if ix.unique {
                check_unique(txn, def, ix, &new, Some(&new_key))?;
            }
            txn.put(ix.keyspace, new_ik, new_key.clone())?;
        }
    }
    txn.put(def.keyspace, new_key, encoding::encode_row(&new))?;
    Ok(())
}

pub fn delete_row(txn: &mut Transaction, def: &TableDef, key: &[u8], old: &[Value]) -> Result<()> {
    def.label_keyspaces(txn);
    for ix in &def.indexes {
        txn.delete(ix.keyspace, def.index_key(ix, old, key))?;
    }
    txn.delete(def.keyspace, key.to_vec())?;
    Ok(())
}

fn describe_key(def: &TableDef, row: &[Value], cols: &[usize]) -> String {
    let parts: Vec<String> = cols
        .iter()
        .map(|&i| crate::types::display_literal(&row[i]))
        .collect();
    let names: Vec<&str> = cols.iter().map(|&i| def.columns[i].name.as_str()).collect();
    format!("{}.{} = ({})", def.name, names.join(", "), parts.join(", "))
}

/// Checks that `def`'s indexes and rows agree in `txn`'s view: every row has its entry in
/// every index, every entry points at a row whose values it carries, and no two rows share a
/// UNIQUE index's non-NULL values. A disagreement is [`Error::Corruption`] naming it.
pub fn check_indexes(txn: &Transaction, def: &TableDef) -> Result<()> {
    use std::collections::BTreeMap;
    let rows: Vec<KeyedRow> =
        scan(txn, def, ReadAt::Current, &Access::Full)?.collect::<Result<_>>()?;
    for ix in &def.indexes {
        let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (key, row) in &rows {
            for &c in &ix.columns {
                if c >= row.len() {
                    return Err(Error::Corruption(format!(
                        "index {} names column {c}, which rows of {} do not have",
                        ix.name, def.name
                    )));
                }
            }
            if expected
                .insert(def.index_key(ix, row, key), key.clone())
                .is_some()
            {
                return Err(Error::Corruption(format!(
                    "UNIQUE index {} holds {} twice",
                    ix.name,
                    describe_key(def, row, &ix.columns)
                )));
            }
        }
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for entry in txn.scan(ix.keyspace, KeyRange::All)? {
            let (k, v) = entry?;
            found.insert(k, v);
        }
        if let Some((k, _)) = expected.iter().find(|(k, v)| found.get(*k) != Some(v)) {
            return Err(Error::Corruption(format!(
                "index {} of {} lacks the entry {}",
                ix.name,
                def.name,
                encoding::printable_key(k)
            )));
        }
        if let Some((k, _)) = found.iter().find(|(k, _)| !expected.contains_key(*k)) {
            return Err(Error::Corruption(format!(
                "index {} of {} has an entry for no row: {}",
                ix.name,
                def.name,
                encoding::printable_key(k)
            )));
        }
    }
    for (_, row) in &rows {
        for (v, col) in row.iter().zip(&def.columns) {
            if v.is_null() && !col.nullable {
                return Err(Error::Corruption(format!(
                    "NULL in the NOT NULL column {}.{}",
                    def.name, col.name
                )));
            }
        }
        if row.len() != def.columns.len() {
            return Err(Error::Corruption(format!(
                "a row of {} has {} values for {} columns",
                def.name,
                row.len(),
                def.columns.len()
            )));
        }
    }
    Ok(())
}
