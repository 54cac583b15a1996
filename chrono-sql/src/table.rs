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
use std::sync::Arc;

use chrono_storage::{KeyRange, Operation, RowCursor, Transaction, Value, encoding};

use crate::catalog::{IndexDef, Snapshot, TableDef};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::plan::{Access, KeyBounds, ReadAt};
use crate::stored_test::{StoredTest, Verdict};

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

/// The encoded primary keys of a `Keys` access, sorted, each once (keys with a NULL or a
/// value no key can hold left out); `None` when a value cannot be used as a key (the scan
/// then reads everything, its filter deciding).
fn key_list(def: &TableDef, keys: &[Vec<Expr>]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(keys.len());
    for values in keys {
        match key_prefix(def, &def.primary_key, values) {
            Ok(k) => out.push(k),
            Err(Span::Nothing) => {}
            Err(_) => return None,
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Versions as rows: the row, then `_system_from`, `_system_to`, `_operation` and
/// `_principal` (deletions are no rows). The principal is who committed the version, as
/// the store's observers keep it (the audit trail), looked up only when `principals` is
/// given — once per commit, remembered for the rest of the scan.
fn versioned_rows<'a>(
    table: &'a TableDef,
    versions: impl Iterator<Item = chrono_storage::Result<chrono_storage::Version>> + Send + 'a,
    principals: Option<chrono_storage::Store>,
) -> impl Iterator<Item = Result<(Vec<u8>, Row)>> + Send + 'a {
    let mut known: std::collections::HashMap<u64, Value> = std::collections::HashMap::new();
    let mut principal_of = move |ts: u64| -> Result<Value> {
        let Some(store) = &principals else {
            return Ok(Value::Null);
        };
        if let Some(v) = known.get(&ts) {
            return Ok(v.clone());
        }
        let v = store
            .committed_by(&table.name, ts)?
            .map(Value::Text)
            .unwrap_or(Value::Null);
        // A history of many commits keeps only the newest few thousand.
        if known.len() >= 4096 {
            known.clear();
        }
        known.insert(ts, v.clone());
        Ok(v)
    };
    versions.filter_map(move |v| match v {
        Err(e) => Some(Err(e.into())),
        Ok(v) if v.op == Operation::Delete => None,
        Ok(v) => {
            let raw = v.value.unwrap_or_default();
            let principal = match principal_of(v.commit_ts) {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            Some(table.decode_row(&raw).map(|mut row| {
                row.push(Value::Timestamp(v.commit_ts as i64));
                row.push(
                    v.replaced_ts
                        .map(|t| Value::Timestamp(t as i64))
                        .unwrap_or(Value::Null),
                );
                row.push(Value::Text(
                    match v.op {
                        Operation::Insert => "INSERT",
                        _ => "UPDATE",
                    }
                    .into(),
                ));
                row.push(principal);
                (v.key, row)
            }))
        }
    })
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
        scan_with(txn, table, read_at, access, true, None, ScanSplit::NEVER)?
            .filter_map(Result::transpose),
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
        scan_with(txn, table, read_at, access, false, None, ScanSplit::NEVER)?
            .filter_map(|r| r.map(|found| found.map(|(_, row)| row)).transpose()),
    ))
}

/// One item per row read: the row when it passes the filter, `None` when the filter
/// rejected it (so a caller can count the rows read as well as those returned).
pub type FilteredRows<'a> = Box<dyn Iterator<Item = Result<Option<Row>>> + 'a>;

/// Reads the rows of a table as the access path says, through `filter`, without keys. A
/// stored range is filtered on each row's bytes before the row is decoded ([`RowFilter`]).
/// A whole-table scan splits between two threads as `split` says ([`SplitScan`]).
pub fn rows_where<'a>(
    txn: &'a Transaction,
    table: &'a TableDef,
    read_at: ReadAt,
    access: &Access,
    filter: Option<RowFilter<'a>>,
    split: ScanSplit,
) -> Result<FilteredRows<'a>> {
    Ok(Box::new(
        scan_with(txn, table, read_at, access, false, filter, split)?
            .map(|r| r.map(|found| found.map(|(_, row)| row))),
    ))
}

/// A scan's filter, tested on each stored row before the row is decoded in full: only the
/// columns the filter reads are decoded, into a buffer reused from row to row, so a row it
/// rejects costs no allocation and no decoding of the columns it does not read. It may also
/// say which columns the rows it passes need ([`RowFilter::with`]): the others stay NULL.
pub struct RowFilter<'a> {
    /// The condition; `None`: every row passes.
    expr: Option<Cow<'a, Expr>>,
    /// The columns the scan's consumer reads; `None`: all of them.
    output: Option<Arc<[bool]>>,
    /// How the condition is tested on stored rows, worked out on the first one (a point
    /// read, which tests a decoded row, never needs it).
    compiled: std::cell::OnceCell<Compiled>,
    scratch: Vec<Value>,
}

/// A [`RowFilter`]'s condition prepared for stored rows of one table.
struct Compiled {
    /// Its comparisons of columns with constants, tested on the bytes first.
    stored: Option<StoredTest>,
    /// The columns to decode for the test; `None`: all of them (a subquery may read the
    /// whole row through its outer references).
    wanted: Option<Vec<bool>>,
}

impl Compiled {
    fn new(table: &TableDef, expr: &Expr) -> Self {
        let wanted = Expr::columns_read(table.columns.len(), [expr]);
        Self {
            stored: wanted
                .is_some()
                .then(|| StoredTest::compile(table, expr))
                .flatten(),
            wanted,
        }
    }
}

impl<'a> RowFilter<'a> {
    /// A filter of `expr` (none: every row passes) whose passing rows of a stored range
    /// decode only the columns `output` marks (none: all); the others are NULL. Rows
    /// decoded before they are filtered (single keys, history) are whole.
    pub fn with(expr: Option<Cow<'a, Expr>>, output: Option<Arc<[bool]>>) -> Self {
        Self {
            expr,
            output,
            compiled: std::cell::OnceCell::new(),
            scratch: Vec::new(),
        }
    }

    /// The same filter, owning its condition (for another thread).
    fn detached(&self) -> RowFilter<'static> {
        RowFilter::with(
            self.expr
                .as_ref()
                .map(|e| Cow::Owned(e.clone().into_owned())),
            self.output.clone(),
        )
    }

    /// Whether a decoded row passes.
    /// Whether the condition or the consumer reads column `i` of the rows.
    fn reads(&self, i: usize) -> bool {
        self.output
            .as_ref()
            .is_none_or(|o| o.get(i).copied().unwrap_or(true))
            || self
                .expr
                .as_deref()
                .is_some_and(|e| !e.subquery_plans().is_empty() || e.columns().contains(&i))
    }

    fn passes(&self, row: &[Value]) -> Result<bool> {
        match &self.expr {
            Some(e) => Ok(e.test(row)? == Some(true)),
            None => Ok(true),
        }
    }

    /// Whether the filter has a subquery (it then runs on this thread only).
    fn has_subquery(&self) -> bool {
        self.expr
            .as_ref()
            .is_some_and(|e| !e.subquery_plans().is_empty())
    }

    /// A passing stored row, decoded: the output columns only.
    fn decode(&self, table: &TableDef, raw: &[u8]) -> Result<Row> {
        let mut row = Vec::new();
        table.decode_row_into(raw, &mut row, self.output.as_deref())?;
        Ok(row)
    }

    /// Whether the stored row `raw` of `table` passes: its comparisons with constants on
    /// the bytes first, then, when they do not decide, the condition on a decoding of only
    /// the columns it reads.
    fn passes_stored(&mut self, table: &TableDef, raw: &[u8]) -> Result<bool> {
        let Self {
            expr,
            compiled,
            scratch,
            ..
        } = self;
        let Some(expr) = expr else {
            return Ok(true);
        };
        let compiled = compiled.get_or_init(|| Compiled::new(table, expr));
        if let Some(test) = &compiled.stored {
            match test.test(raw, table.columns.len()) {
                Verdict::Reject => return Ok(false),
                Verdict::Pass => return Ok(true),
                Verdict::Unsure => {}
            }
        }
        table.decode_row_into(raw, scratch, compiled.wanted.as_deref())?;
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
        let Some(row) = read_stored(&mut filter, table, cursor.row())? else {
            return Ok(Some(None));
        };
        let key = if keys { cursor.key()? } else { Vec::new() };
        Ok(Some(Some((key, row))))
    };
    Box::new(std::iter::from_fn(move || next().transpose()))
}

/// The stored row `raw` of `table`, decoded, when it passes `filter` (tested on the bytes
/// first); `None` when the filter rejects it.
fn read_stored(
    filter: &mut Option<RowFilter<'_>>,
    table: &TableDef,
    raw: &[u8],
) -> Result<Option<Row>> {
    match filter {
        Some(f) => Ok(if f.passes_stored(table, raw)? {
            Some(f.decode(table, raw)?)
        } else {
            None
        }),
        None => Ok(Some(table.decode_row(raw)?)),
    }
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
    split: ScanSplit,
) -> Result<Read<'a>> {
    let view = match read_at {
        ReadAt::Current => Snapshot::Transaction(txn),
        ReadAt::AsOf(ts) => Snapshot::At(txn.store(), ts.min(txn.read_ts())),
        ReadAt::AsOfParam(i) => return Err(unresolved(i)),
        ReadAt::Versions(window) => {
            // `_principal`, the last column, is looked up only when it is read.
            let principal_column = table.columns.len() + 3;
            let principals = filter
                .as_ref()
                .is_none_or(|f| f.reads(principal_column))
                .then(|| txn.store().clone());
            // A primary-key condition narrows the versions read to that key or key range
            // (versions are keyed by primary key, then time); the filter still applies.
            let range = match access {
                Access::Key(values) => match key_prefix(table, &table.primary_key, values) {
                    Ok(k) => KeyRange::Prefix(k),
                    Err(Span::Nothing) => return Ok(Box::new(std::iter::empty())),
                    Err(_) => KeyRange::All,
                },
                Access::KeyRange(b) => match span(table, &table.primary_key, b) {
                    Span::Range(r) => r,
                    Span::Key(k) => KeyRange::Prefix(k),
                    Span::Nothing => return Ok(Box::new(std::iter::empty())),
                    Span::Everything => KeyRange::All,
                },
                Access::Keys(ks) => match key_list(table, ks) {
                    // One key's versions after another's, in key order.
                    Some(list) => {
                        let (store, read_ts) = (txn.store().clone(), txn.read_ts());
                        let it = list.into_iter().flat_map(move |k| {
                            match store.versions(
                                table.keyspace,
                                KeyRange::Prefix(k),
                                read_ts,
                                window,
                            ) {
                                Ok(v) => Box::new(v) as Box<dyn Iterator<Item = _> + Send>,
                                Err(e) => Box::new(std::iter::once(Err(e))),
                            }
                        });
                        return Ok(through(
                            Box::new(versioned_rows(table, it, principals)),
                            filter,
                        ));
                    }
                    None => KeyRange::All,
                },
                Access::Full | Access::Index(..) | Access::IndexIn(..) => KeyRange::All,
            };
            let versions = txn
                .store()
                .versions(table.keyspace, range, txn.read_ts(), window)?;
            return Ok(through(
                Box::new(versioned_rows(table, versions, principals)),
                filter,
            ));
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
    if let Access::Keys(ks) = access
        && let Some(list) = key_list(table, ks)
    {
        if let (true, Snapshot::Transaction(t)) = (keys, view) {
            // The write path reads each key for a write (remembered for the commit).
            let rows =
                list.into_iter()
                    .filter_map(move |k| match t.get_for_write(table.keyspace, &k) {
                        Ok(Some(raw)) => Some(decode(Ok((k, raw)))),
                        Ok(None) => None,
                        Err(e) => Some(Err(e.into())),
                    });
            return Ok(through(Box::new(rows), filter));
        }
        return Ok(fetched(view, table, list.into_iter().map(Ok), filter, None));
    }
    if let Access::IndexIn(ix, values) = access {
        let mut prefixes = Vec::with_capacity(values.len());
        for v in values {
            match key_prefix(table, &ix.columns[..1], std::slice::from_ref(v)) {
                Ok(p) => prefixes.push(p),
                Err(Span::Nothing) => {}
                // A value no key can hold: read everything, the filter decides.
                Err(_) => {
                    prefixes.clear();
                    prefixes.push(Vec::new());
                    break;
                }
            }
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        let ranges = prefixes.into_iter().map(KeyRange::Prefix).collect();
        return Ok(index_rows(view, table, ix, ranges, filter));
    }
    let span = match access {
        Access::Full | Access::Keys(_) | Access::IndexIn(..) => Span::Everything,
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
            let cursor = view.cursor(table.keyspace, KeyRange::All)?;
            // A scan may split when what it reads is committed state only (not the
            // transaction's own writes) and its filter can run on another thread.
            let splits = split.after_rows > 0
                && !keys
                && match view {
                    Snapshot::Transaction(t) => !t.writes_keyspace(table.keyspace),
                    Snapshot::At(..) => true,
                }
                && filter.as_ref().is_none_or(|f| !f.has_subquery());
            if splits {
                return Ok(Box::new(SplitScan {
                    table,
                    ts: view.read_ts(),
                    store: txn.store().clone(),
                    filter,
                    cursor,
                    split,
                    read: 0,
                    cursor_done: false,
                    helper: None,
                    ready: Vec::new().into_iter(),
                    rejected: 0,
                }));
            }
            return Ok(decoded(cursor, table, keys, filter));
        }
        Span::Range(r) => r,
    };
    let Some(ix) = index else {
        return Ok(decoded(view.cursor(keyspace, range)?, table, keys, filter));
    };
    Ok(index_rows(view, table, ix, vec![range], filter))
}

/// The rows an index's entries in `ranges` (scanned in turn) point at (see [`fetched`]);
/// an entry naming no row is corruption.
fn index_rows<'a>(
    view: Snapshot<'a>,
    table: &'a TableDef,
    ix: &IndexDef,
    ranges: Vec<KeyRange>,
    filter: Option<RowFilter<'a>>,
) -> Read<'a> {
    let ix_keyspace = ix.keyspace;
    let pks = ranges
        .into_iter()
        .flat_map(move |range| match view.scan(ix_keyspace, range) {
            Ok(entries) => {
                Box::new(entries.map(|item| item.map(|(_, pk)| pk).map_err(Error::from)))
                    as Box<dyn Iterator<Item = Result<Vec<u8>>> + Send>
            }
            Err(e) => Box::new(std::iter::once(Err(Error::from(e)))),
        });
    fetched(view, table, pks, filter, Some(&ix.name))
}

/// The rows stored under `keys`, looked up in batches ([`Batched`]); `filter` is tested on
/// each row's stored bytes and a passing row decodes only the columns it asks for, as for a
/// stored range. A key with no row is skipped, or is corruption when `index` names the
/// index the keys came from.
fn fetched<'a>(
    view: Snapshot<'a>,
    table: &'a TableDef,
    keys: impl Iterator<Item = Result<Vec<u8>>> + 'a,
    mut filter: Option<RowFilter<'a>>,
    index: Option<&str>,
) -> Read<'a> {
    let index = index.map(str::to_owned);
    Box::new(Batched::new(view, table, keys).filter_map(move |found| {
        let (key, raw) = match found {
            Ok((key, Some(raw))) => (key, raw),
            Ok((_, None)) => {
                return index.as_ref().map(|ix| {
                    Err(Error::Corruption(format!(
                        "index {ix} points at a missing row of {}",
                        table.name
                    )))
                });
            }
            Err(e) => return Some(Err(e)),
        };
        Some(read_stored(&mut filter, table, &raw).map(|row| row.map(|row| (key, row))))
    }))
}

/// Reads the rows stored under `keys` the way an index lookup does (in batches, each row
/// decoded) and returns how many were found: `ANALYZE` times this on random keys of the
/// table to learn what one fetch costs against one row of a sequential scan.
pub fn fetch_rows(txn: &Transaction, table: &TableDef, keys: Vec<Vec<u8>>) -> Result<usize> {
    let view = Snapshot::Transaction(txn);
    let mut found = 0;
    for row in fetched(view, table, keys.into_iter().map(Ok), None, None) {
        std::hint::black_box(row?);
        found += 1;
    }
    Ok(found)
}

/// Rows looked up by primary key in batches (one batched read of the current state per
/// batch: RocksDB finds the keys' blocks together, where a lookup per key searched the
/// index and filter again for each). Batches start small, so a query that wants a few rows
/// reads few, and double up to [`MAX_LOOKUP_BATCH`].
struct Batched<'a, I> {
    view: Snapshot<'a>,
    table: &'a TableDef,
    keys: I,
    batch: usize,
    ready: std::collections::VecDeque<Result<Looked>>,
    done: bool,
}

/// A key with the stored row found for it, if any.
type Looked = (Vec<u8>, Option<Vec<u8>>);

/// The largest batch of primary-key lookups.
const MAX_LOOKUP_BATCH: usize = 256;

impl<'a, I: Iterator<Item = Result<Vec<u8>>>> Batched<'a, I> {
    fn new(view: Snapshot<'a>, table: &'a TableDef, keys: I) -> Self {
        Batched {
            view,
            table,
            keys,
            batch: 8,
            ready: std::collections::VecDeque::new(),
            done: false,
        }
    }

    /// Looks the next batch of keys up; an error ending the keys comes after their rows.
    fn fill(&mut self) {
        let mut keys = Vec::with_capacity(self.batch);
        let mut ended_by = None;
        while keys.len() < self.batch && ended_by.is_none() {
            match self.keys.next() {
                Some(Ok(k)) => keys.push(k),
                Some(Err(e)) => ended_by = Some(e),
                None => break,
            }
        }
        self.done = ended_by.is_some() || keys.len() < self.batch;
        self.batch = (self.batch * 2).min(MAX_LOOKUP_BATCH);
        if !keys.is_empty() {
            match self.view.get_many(self.table.keyspace, &keys) {
                Ok(found) => self.ready.extend(keys.into_iter().zip(found).map(Ok)),
                Err(e) => {
                    self.done = true;
                    self.ready.push_back(Err(e.into()));
                    return;
                }
            }
        }
        self.ready.extend(ended_by.map(Err));
    }
}

impl<I: Iterator<Item = Result<Vec<u8>>>> Iterator for Batched<'_, I> {
    type Item = Result<Looked>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done {
            self.fill();
        }
        self.ready.pop_front()
    }
}

/// When a whole-table scan hands part of its work to a helper thread ([`SplitScan`]).
#[derive(Debug, Clone, Copy)]
pub struct ScanSplit {
    /// Rows the scan reads alone before it splits (`limits.parallel_scan_rows`; 0: never).
    pub after_rows: usize,
    /// Bytes of rows the helper may keep waiting (`limits.statement_memory_mb`).
    pub buffer_bytes: usize,
}

impl ScanSplit {
    /// Scans that never split.
    pub const NEVER: ScanSplit = ScanSplit {
        after_rows: 0,
        buffer_bytes: 0,
    };
}

/// Rows a scan's helper thread reads before it hands them over (fewer when they are large:
/// see [`HELPER_BATCH_BYTES`]).
const HELPER_BATCH_ROWS: usize = 1024;
/// Stored bytes after which a helper thread hands its batch over.
const HELPER_BATCH_BYTES: usize = 1 << 20;

static SPLIT_SCANS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many scans of this process have split between two threads so far.
pub fn split_scans() -> u64 {
    SPLIT_SCANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a scan's helper thread hands over.
enum Handed {
    /// Rows that passed the filter, in key order, and how many more it read and rejected.
    Rows(Vec<Row>, usize),
    /// It read to the end.
    Done,
    /// It stopped on an error.
    Failed(Error),
}

/// Batches from a helper thread to its scan, at most `cap` bytes of rows waiting.
struct Handoff {
    state: std::sync::Mutex<HandoffState>,
    changed: std::sync::Condvar,
    cap: usize,
}

#[derive(Default)]
struct HandoffState {
    queue: std::collections::VecDeque<(Handed, usize)>,
    held: usize,
    /// The scan was dropped: nobody takes rows any more.
    gone: bool,
}

impl Handoff {
    /// Queues `h` (of `bytes`), waiting while the queue holds `cap` bytes; false when the
    /// scan is gone.
    fn give(&self, h: Handed, bytes: usize) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        while !st.gone && !st.queue.is_empty() && st.held + bytes > self.cap {
            st = match self.changed.wait(st) {
                Ok(st) => st,
                Err(_) => return false,
            };
        }
        if st.gone {
            return false;
        }
        st.held += bytes;
        st.queue.push_back((h, bytes));
        self.changed.notify_all();
        true
    }

    /// The next batch, waiting for one.
    fn take(&self) -> Option<Handed> {
        let mut st = self.state.lock().ok()?;
        loop {
            if let Some((h, bytes)) = st.queue.pop_front() {
                st.held -= bytes;
                self.changed.notify_all();
                return Some(h);
            }
            st = self.changed.wait(st).ok()?;
        }
    }

    fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.gone = true;
            st.queue.clear();
            self.changed.notify_all();
        }
    }
}

/// A whole-table scan over two threads. It reads alone at first; once it has read
/// `split.after_rows` rows and more are left, it finds a key about halfway through what is left
/// (`Store::split_after`), goes on reading up to that key, and starts one helper thread that
/// reads from that key to the end at the same time — its own cursor on the same state, its
/// own copy of the filter — keeping the rows that pass until the scan gets to them. The scan
/// yields its own part, then the helper's, so rows come in key order, as from one thread.
/// The statement's guard stays with the scan: its ticks (deadline, cancellation) and the
/// memory charged for rows held happen as rows are yielded. The helper keeps at most
/// `limits.statement_memory_mb` of rows waiting (then it waits), and stops at its next
/// batch once the scan is dropped.
struct SplitScan<'a> {
    table: &'a TableDef,
    store: chrono_storage::Store,
    ts: u64,
    cursor: RowCursor,
    filter: Option<RowFilter<'a>>,
    split: ScanSplit,
    read: usize,
    cursor_done: bool,
    helper: Option<std::sync::Arc<Handoff>>,
    ready: std::vec::IntoIter<Row>,
    rejected: usize,
}

impl SplitScan<'_> {
    /// Hands what is left after the current row, from a key about halfway, to a helper.
    fn split(&mut self) -> Result<()> {
        let keyspace = self.table.keyspace;
        let after = self.cursor.key()?;
        let Some(mid) = self.store.split_after(keyspace, &after)? else {
            return Ok(());
        };
        let handoff = std::sync::Arc::new(Handoff {
            state: std::sync::Mutex::default(),
            changed: std::sync::Condvar::new(),
            cap: self.split.buffer_bytes,
        });
        let (store, table, ts) = (self.store.clone(), self.table.clone(), self.ts);
        let filter = self.filter.as_ref().map(RowFilter::detached);
        let (from, to) = (mid.clone(), handoff.clone());
        let spawned = std::thread::Builder::new()
            .name("chronodb-scan".into())
            .spawn(move || {
                let end = match help(&store, &table, ts, from, filter, &to) {
                    Ok(()) => Handed::Done,
                    Err(e) => Handed::Failed(e),
                };
                to.give(end, 0);
            });
        if spawned.is_err() {
            // No thread to be had: the scan reads the rest itself.
            return Ok(());
        }
        SPLIT_SCANS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cursor = RowCursor::At(self.store.scan_at(
            keyspace,
            KeyRange::Range(Bound::Excluded(after), Bound::Excluded(mid)),
            self.ts,
        )?);
        self.helper = Some(handoff);
        Ok(())
    }
}

impl Drop for SplitScan<'_> {
    fn drop(&mut self) {
        if let Some(h) = &self.helper {
            h.close();
        }
    }
}

/// The helper thread of a [`SplitScan`]: reads `table` from `from` to its end at `ts`.
/// Returns early, without error, when the scan stopped taking rows.
fn help(
    store: &chrono_storage::Store,
    table: &TableDef,
    ts: u64,
    from: Vec<u8>,
    mut filter: Option<RowFilter<'static>>,
    to: &Handoff,
) -> Result<()> {
    let range = KeyRange::Range(Bound::Included(from), Bound::Unbounded);
    let mut cursor = store.scan_at(table.keyspace, range, ts)?;
    let (mut rows, mut rejected, mut read, mut bytes) = (Vec::new(), 0, 0, 0);
    while cursor.advance()? {
        let raw = cursor.row();
        read += 1;
        match read_stored(&mut filter, table, raw)? {
            Some(row) => {
                bytes += raw.len();
                rows.push(row);
            }
            None => rejected += 1,
        }
        if read >= HELPER_BATCH_ROWS || bytes >= HELPER_BATCH_BYTES {
            if !to.give(Handed::Rows(std::mem::take(&mut rows), rejected), bytes) {
                return Ok(());
            }
            (rejected, read, bytes) = (0, 0, 0);
        }
    }
    if read > 0 {
        to.give(Handed::Rows(rows, rejected), bytes);
    }
    Ok(())
}

impl Iterator for SplitScan<'_> {
    type Item = Result<Option<KeyedRow>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.ready.next() {
                return Some(Ok(Some((Vec::new(), row))));
            }
            if self.rejected > 0 {
                self.rejected -= 1;
                return Some(Ok(None));
            }
            if !self.cursor_done {
                match self.cursor.advance() {
                    Err(e) => {
                        self.cursor_done = true;
                        return Some(Err(e.into()));
                    }
                    Ok(false) => self.cursor_done = true,
                    Ok(true) => {
                        self.read += 1;
                        let row = read_stored(&mut self.filter, self.table, self.cursor.row());
                        if self.read == self.split.after_rows
                            && let Err(e) = self.split()
                        {
                            self.cursor_done = true;
                            return Some(Err(e));
                        }
                        return Some(row.map(|r| r.map(|r| (Vec::new(), r))));
                    }
                }
                continue;
            }
            let handed = self.helper.as_ref()?.take();
            match handed {
                Some(Handed::Rows(rows, rejected)) => {
                    self.ready = rows.into_iter();
                    self.rejected = rejected;
                }
                Some(Handed::Done) => {
                    self.helper = None;
                    return None;
                }
                Some(Handed::Failed(e)) => {
                    self.helper = None;
                    return Some(Err(e));
                }
                None => {
                    self.helper = None;
                    return Some(Err(Error::Unavailable(
                        "a scan's helper thread stopped before the end of its rows".into(),
                    )));
                }
            }
        }
    }
}

/// Rows decoded in full before the filter sees them (single keys, history, the keys a
/// write reads):
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

/// The stored rows (with their keys) that `row` would collide with on the primary key or a
/// UNIQUE index, the primary key's first; only on the constraint whose columns are `arbiter`
/// when it is not empty. NULLs collide with nothing, as in SQL.
pub fn colliding_rows(
    txn: &Transaction,
    def: &TableDef,
    row: &[Value],
    arbiter: &[usize],
) -> Result<Vec<KeyedRow>> {
    let counts = |cols: &[usize]| {
        arbiter.is_empty()
            || (cols.len() == arbiter.len() && cols.iter().all(|c| arbiter.contains(c)))
    };
    let mut out: Vec<KeyedRow> = Vec::new();
    if !def.primary_key.is_empty() && counts(&def.primary_key) {
        let key = def.row_key(row, || Ok(0))?;
        if let Some(raw) = txn.get_for_write(def.keyspace, &key)? {
            out.push((key, def.decode_row(&raw)?));
        }
    }
    for ix in def
        .indexes
        .iter()
        .filter(|ix| ix.unique && counts(&ix.columns))
    {
        let values: Vec<Value> = ix.columns.iter().map(|&i| row[i].clone()).collect();
        if values.iter().any(Value::is_null) {
            continue;
        }
        for item in txn.scan(ix.keyspace, KeyRange::Prefix(encoding::encode_key(&values)))? {
            let (_, holder) = item?;
            if out.iter().any(|(k, _)| *k == holder) {
                continue;
            }
            let raw = txn.get_for_write(def.keyspace, &holder)?.ok_or_else(|| {
                Error::Corruption(format!(
                    "index {} of {} names a row that does not exist",
                    ix.name, def.name
                ))
            })?;
            let stored = def.decode_row(&raw)?;
            out.push((holder, stored));
        }
    }
    Ok(out)
}

/// Inserts a checked row with its index entries.
pub fn insert_row(txn: &mut Transaction, def: &TableDef, row: Vec<Value>) -> Result<()> {
    insert_row_with(txn, def, row, true)
}

/// [`insert_row`]; `check_keys: false` when the caller has just found that the row
/// collides with nothing ([`colliding_rows`] over every constraint), so the primary-key and
/// UNIQUE lookups are not made twice.
pub fn insert_row_with(
    txn: &mut Transaction,
    def: &TableDef,
    row: Vec<Value>,
    check_keys: bool,
) -> Result<()> {
    def.label_keyspaces(txn);
    let store = txn.store().clone();
    let key = def.row_key(&row, || store.next_id())?;
    if check_keys {
        if !def.primary_key.is_empty() && txn.get_for_write(def.keyspace, &key)?.is_some() {
            return Err(Error::Constraint(format!(
                "UNIQUE constraint failed: {} (duplicate primary key)",
                describe_key(def, &row, &def.primary_key)
            )));
        }
        for ix in def.indexes.iter().filter(|ix| ix.unique) {
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
