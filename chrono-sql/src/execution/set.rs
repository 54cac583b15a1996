//! Set operators: DISTINCT, and INTERSECT / EXCEPT against the other side's rows (UNION is
//! a concatenation, in the executor's dispatch). What they remember is charged to the
//! budget.

use super::{KeySet, RowIter, hash_key};
use crate::error::Result;
use crate::limits::{StatementGuard, hashed_key_bytes};

/// `input`'s rows, each once, in first-seen order.
pub(super) fn distinct<'a>(input: RowIter<'a>, guard: &'a StatementGuard) -> RowIter<'a> {
    let mut seen = KeySet::default();
    Box::new(input.filter_map(move |r| match r {
        Ok(row) => {
            let key = hash_key(&row);
            let bytes = hashed_key_bytes(&key);
            if !seen.insert(key) {
                return None;
            }
            Some(guard.charge(bytes).map(|()| row))
        }
        Err(e) => Some(Err(e)),
    }))
}

/// The distinct rows of `left` that are (INTERSECT) or, with `anti`, are not (EXCEPT) among
/// `right`'s.
pub(super) fn compare<'a>(
    left: RowIter<'a>,
    right: RowIter<'a>,
    anti: bool,
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let mut among = KeySet::default();
    for row in right {
        guard.tick()?;
        let key = hash_key(&row?);
        let bytes = hashed_key_bytes(&key);
        if among.insert(key) {
            guard.charge(bytes)?;
        }
    }
    let mut seen = KeySet::default();
    Ok(Box::new(left.filter_map(move |r| match r {
        Ok(row) => {
            let key = hash_key(&row);
            if among.contains(&key) == anti {
                return None;
            }
            let bytes = hashed_key_bytes(&key);
            if !seen.insert(key) {
                return None;
            }
            Some(guard.charge(bytes).map(|()| row))
        }
        Err(e) => Some(Err(e)),
    })))
}
