//! Joins: hash join (building the smaller side), index nested-loop join (a primary-key or
//! index lookup per outer row, as of the join's read time) and nested-loop join over a held
//! inner side; LEFT joins pad unmatched outer rows with NULLs.

use super::KeyMap;
use std::borrow::Cow;

use chrono_storage::{KeyRange, Value, encoding};

use super::{Row, RowIter, hold, key_into};
use crate::catalog::{Snapshot, TableDef};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::limits::{StatementGuard, hashed_key_bytes, row_bytes};
use crate::plan::{JoinKind, Lookup};

/// A nested-loop join: the inner side held (charged to the budget), every outer row
/// checked against each of its rows.
pub(super) fn nested_loop<'a>(
    left: RowIter<'a>,
    right: RowIter<'a>,
    predicate: Option<Cow<'a, Expr>>,
    kind: JoinKind,
    right_width: usize,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let inner = hold(right, guard)?;
    Ok(per_outer_row(left, move |lrow| {
        join_row(
            lrow,
            inner.iter().map(Vec::as_slice),
            true,
            predicate.as_deref(),
            kind,
            right_width,
            guard,
        )
    }))
}

/// The joined rows for one left row of an index nested-loop join.
#[allow(clippy::too_many_arguments)]
pub(super) fn index_row(
    view: Snapshot<'_>,
    table: &TableDef,
    lookup: &Lookup,
    left_keys: &[Expr],
    right_filter: Option<&Expr>,
    residual: Option<&Expr>,
    kind: JoinKind,
    right_width: usize,
    lrow: Row,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    guard.tick()?;
    let key_columns: &[usize] = match lookup {
        Lookup::PrimaryKey => &table.primary_key,
        Lookup::Index(ix) => &ix.columns,
    };
    let mut key = Vec::with_capacity(left_keys.len());
    let mut possible = true;
    for (e, &c) in left_keys.iter().zip(key_columns) {
        let col = &table.columns[c];
        // A NULL key, or one that is not a value of the column's type, matches nothing.
        match col.data_type.coerce(e.eval(&lrow)?, &col.name) {
            Ok(v) if !v.is_null() => key.push(v),
            _ => possible = false,
        }
    }
    let mut candidates: Vec<Row> = Vec::new();
    if possible {
        let encoded = encoding::encode_key(&key);
        match lookup {
            Lookup::PrimaryKey => {
                if let Some(raw) = view.get(table.keyspace, &encoded)? {
                    candidates.push(table.decode_row(&raw)?);
                }
            }
            Lookup::Index(ix) => {
                for item in view.scan(ix.keyspace, KeyRange::Prefix(encoded))? {
                    guard.tick()?;
                    let (_, pk) = item?;
                    match view.get(table.keyspace, &pk)? {
                        Some(raw) => candidates.push(table.decode_row(&raw)?),
                        None => {
                            return Err(Error::Corruption(format!(
                                "index {} points at a missing row of {}",
                                ix.name, table.name
                            )));
                        }
                    }
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(candidates.len());
    for rrow in candidates {
        if let Some(f) = right_filter
            && f.test(&rrow)? != Some(true)
        {
            continue;
        }
        kept.push(rrow);
    }
    join_row(
        lrow,
        kept.iter().map(Vec::as_slice),
        true,
        residual,
        kind,
        right_width,
        guard,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn hash<'a>(
    left: RowIter<'a>,
    right: RowIter<'a>,
    left_keys: Cow<'a, [Expr]>,
    right_keys: Cow<'a, [Expr]>,
    kind: JoinKind,
    residual: Option<Cow<'a, Expr>>,
    build_left: bool,
    right_width: usize,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let (build, probe, build_keys, probe_keys) = if build_left {
        (left, right, left_keys, right_keys)
    } else {
        (right, left, right_keys, left_keys)
    };
    let mut table: KeyMap<Vec<Row>> = KeyMap::default();
    // Keys are built in one buffer, reused; a build row's key is copied only for a new key.
    let mut key = Vec::new();
    for r in build {
        guard.tick()?;
        let row = r?;
        if !key_into(&mut key, &build_keys, &row)? {
            continue;
        }
        guard.charge(row_bytes(&row) + hashed_key_bytes(&key))?;
        match table.get_mut(&key[..]) {
            Some(rows) => rows.push(row),
            None => {
                table.insert(key.clone(), vec![row]);
            }
        }
    }
    // Nothing to match an inner join's rows with: the other side is never read.
    if table.is_empty() && kind == JoinKind::Inner {
        return Ok(Box::new(std::iter::empty()));
    }
    Ok(per_outer_row(probe, move |prow| {
        let matches: &[Row] = if key_into(&mut key, &probe_keys, &prow)? {
            table.get(&key[..]).map(Vec::as_slice).unwrap_or(&[])
        } else {
            &[]
        };
        // With the build side on the left (inner joins only), the probe row goes second.
        join_row(
            prow,
            matches.iter().map(Vec::as_slice),
            !build_left,
            residual.as_deref(),
            kind,
            right_width,
            guard,
        )
    }))
}

/// For each row of `outer`, the rows `f` makes of it, in order; an error ends nothing but
/// is passed on in place.
pub(super) fn per_outer_row<'a>(
    outer: RowIter<'a>,
    mut f: impl FnMut(Row) -> Result<Vec<Row>> + 'a,
) -> RowIter<'a> {
    Box::new(outer.flat_map(move |r| {
        let (rows, error) = match r.and_then(&mut f) {
            Ok(rows) => (rows, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        rows.into_iter().map(Ok).chain(error.map(Err))
    }))
}

/// Joins one outer row with its candidate partners: the joined rows (outer columns first
/// when `outer_first`) that satisfy `condition`; for a LEFT join with none, the outer row
/// padded with NULLs.
fn join_row<'r>(
    outer: Row,
    partners: impl Iterator<Item = &'r [Value]>,
    outer_first: bool,
    condition: Option<&Expr>,
    kind: JoinKind,
    right_width: usize,
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for partner in partners {
        guard.tick()?;
        let (first, second) = if outer_first {
            (outer.as_slice(), partner)
        } else {
            (partner, outer.as_slice())
        };
        let mut joined = Vec::with_capacity(first.len() + second.len());
        joined.extend_from_slice(first);
        joined.extend_from_slice(second);
        if let Some(c) = condition
            && c.test(&joined)? != Some(true)
        {
            continue;
        }
        out.push(joined);
    }
    if out.is_empty() && kind == JoinKind::Left {
        let mut padded = outer;
        padded.extend(std::iter::repeat_n(Value::Null, right_width));
        out.push(padded);
    }
    Ok(out)
}
