//! ORDER BY: a full sort, or top-k (ORDER BY … LIMIT) keeping at most twice k rows at a
//! time; both charge what they hold to the budget. Sorting is stable.

use chrono_storage::Value;

use super::{Row, RowIter};
use crate::error::Result;
use crate::limits::{StatementGuard, keyed_row_bytes};
use crate::plan::SortKey;

/// Every row of `input`, in `keys` order.
pub(super) fn sort<'a>(
    input: RowIter<'a>,
    keys: &[SortKey],
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let mut keyed = Vec::new();
    for r in input {
        let row = r?;
        let key = sort_key(keys, &row)?;
        guard.charge(keyed_row_bytes(&key, &row))?;
        keyed.push((key, row));
    }
    keyed.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0));
    Ok(Box::new(keyed.into_iter().map(|(_, r)| Ok(r))))
}

/// The first `limit` rows after `offset` of `input` in `keys` order, holding at most
/// about twice `limit + offset` rows at a time.
pub(super) fn top_k<'a>(
    input: RowIter<'a>,
    keys: &[SortKey],
    limit: usize,
    offset: usize,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let k = limit.saturating_add(offset);
    let mut best: Vec<(Vec<Value>, usize, Row)> = Vec::new();
    for (seq, r) in input.enumerate() {
        let row = r?;
        let key = sort_key(keys, &row)?;
        guard.charge(keyed_row_bytes(&key, &row))?;
        best.push((key, seq, row));
        if best.len() >= k.saturating_mul(2).max(1024) {
            best.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0).then(a.1.cmp(&b.1)));
            for (key, _, row) in best.drain(k.min(best.len())..) {
                guard.release(keyed_row_bytes(&key, &row));
            }
        }
    }
    best.sort_by(|a, b| cmp_keys(keys, &a.0, &b.0).then(a.1.cmp(&b.1)));
    best.truncate(k);
    Ok(Box::new(
        best.into_iter().skip(offset).map(|(_, _, r)| Ok(r)),
    ))
}

pub(super) fn sort_key(keys: &[SortKey], row: &[Value]) -> Result<Vec<Value>> {
    keys.iter().map(|k| k.expr.eval(row)).collect()
}

pub(super) fn cmp_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    for (k, (x, y)) in keys.iter().zip(a.iter().zip(b)) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Equal,
            (true, false) => {
                if k.nulls_first {
                    Less
                } else {
                    Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Greater
                } else {
                    Less
                }
            }
            (false, false) => {
                let o = x.total_cmp(y);
                if k.desc { o.reverse() } else { o }
            }
        };
        if o != Equal {
            return o;
        }
    }
    Equal
}
