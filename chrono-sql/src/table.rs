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

use std::borrow::Cow;
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
    Ok(Box::new(
        scan_with(txn, table, read_at, access, true, None)?.filter_map(Result::transpose),
    ))
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
        scan_with(txn, table, read_at, access, false, None)?
            .filter_map(|r| r.map(|found| found.map(|(_, row)| row)).transpose()),
    ))
}

/// One item per row read: the row when it passes the filter, `None` when the filter
/// rejected it (so a caller can count the rows read as well as those returned).
pub type FilteredRows<'a> = Box<dyn Iterator<Item = Result<Option<Row>>> + 'a>;

/// Reads the rows of a table as the access path says, through `filter`, without keys. A
/// stored range is filtered on each row's bytes before the row is decoded ([`RowFilter`]).
pub fn rows_where<'a>(
    txn: &'a Transaction,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
    filter: Option<RowFilter<'a>>,
) -> Result<FilteredRows<'a>> {
    Ok(Box::new(
        scan_with(txn, table, read_at, access, false, filter)?
            .map(|r| r.map(|found| found.map(|(_, row)| row))),
    ))
}

/// A scan's filter, tested on each stored row before the row is decoded in full: only the
/// columns the filter reads are decoded, into a buffer reused from row to row, so a row it
/// rejects costs no allocation and no decoding of the columns it does not read.
pub struct RowFilter<'a> {
    expr: Cow<'a, Expr>,
    /// The columns to decode for the test; `None`: all of them (a correlated subquery
    /// reads the whole row through its outer references).
    wanted: std::cell::OnceCell<Option<Vec<bool>>>,
    scratch: Vec<Value>,
}

impl<'a> RowFilter<'a> {
    /// A filter of `expr`.
    pub fn new(expr: Cow<'a, Expr>) -> Self {
        Self {
            expr,
            wanted: std::cell::OnceCell::new(),
            scratch: Vec::new(),
        }
    }

    /// Whether a decoded row passes.
    fn passes(&self, row: &[Value]) -> Result<bool> {
        Ok(self.expr.test(row)? == Some(true))
    }

    /// Whether the stored row `raw` of `table` passes, decoding only what the test reads
    /// (the columns it reads are worked out on the first stored row: a point read, which
    /// tests a decoded row, never needs them).
    fn passes_stored(&mut self, table: &TableDef, raw: &[u8]) -> Result<bool> {
        let Self {
            expr,
            wanted,
            scratch,
        } = self;
        let wanted = wanted.get_or_init(|| {
            expr.subquery_plans().is_empty().then(|| {
                let mut wanted = vec![false; table.columns.len()];
                for c in expr.columns() {
                    if let Some(w) = wanted.get_mut(c) {
                        *w = true;
                    }
                }
                wanted
            })
        });
        table.decode_row_into(raw, scratch, wanted.as_deref())?;
        Ok(expr.test(scratch)? == Some(true))
    }
}

/// Rows with their keys (empty unless asked for), `None` for a row the filter rejected.
type Read<'a> = Box<dyn Iterator<Item = Result<Option<KeyedRow>>> + 'a>;

/// The rows of a stored range, decoded from the bytes the cursor lends when they pass the
/// filter; keys only when `keys` (empty otherwise, which allocates nothing).
fn decoded<'a>(
    mut cursor: RowCursor,
    table: &'a TableDef,
    keys: bool,
    mut filter: Option<RowFilter<'a>>,
) -> Read<'a> {
    let mut next = move || -> Result<Option<Option<KeyedRow>>> {
        if !cursor.advance()? {
            return Ok(None);
        }
        if let Some(f) = &mut filter
            && !f.passes_stored(table, cursor.row())?
        {
            return Ok(Some(None));
        }
        let key = if keys { cursor.key()? } else { Vec::new() };
        Ok(Some(Some((key, table.decode_row(cursor.row())?))))
    };
    Box::new(std::iter::from_fn(move || next().transpose()))
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
    filter: Option<RowFilter<'a>>,
) -> Result<Read<'a>> {
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
            return Ok(through(Box::new(it), filter));
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
            return Ok(through(
                Box::new(found.map(|raw| decode(Ok((k, raw)))).into_iter()),
                filter,
            ));
        }
        Span::Everything => {
            return Ok(decoded(
                view.cursor(table.keyspace, KeyRange::All)?,
                table,
                keys,
                filter,
            ));
        }
        Span::Range(r) => r,
    };
    let Some(ix) = index else {
        return Ok(decoded(view.cursor(keyspace, range)?, table, keys, filter));
    };
    let entries = view.scan(keyspace, range)?;
    let ix_name = ix.name.clone();
    let rows = Box::new(entries.map(move |item| {
        let (_, pk) = item?;
        match view.get(table.keyspace, &pk) {
            Ok(Some(raw)) => decode(Ok((pk, raw))),
            Ok(None) => Err(Error::Corruption(format!(
                "index {ix_name} points at a missing row of {}",
                table.name
            ))),
            Err(e) => Err(e.into()),
        }
    }));
    Ok(through(rows, filter))
}

/// Rows decoded in full before the filter sees them (single keys, index lookups, history):
/// the filter tests the decoded row.
fn through<'a>(rows: KeyedRows<'a>, filter: Option<RowFilter<'a>>) -> Read<'a> {
    Box::new(rows.map(move |r| {
        let (k, row) = r?;
        match &filter {
            Some(f) if !f.passes(&row)? => Ok(None),
            _ => Ok(Some((k, row))),
        }
    }))
}

/// Checks types and NOT NULL for a full row.
pub fn check_row(def: &TableDef, row: Vec<Value>) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(row.len());
    for (v, col) in row.into_iter().zip(&def.columns) {
        let v = col
            .data_type
            .coerce(v, format_args!("{}.{}", def.name, col.name))?;
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
