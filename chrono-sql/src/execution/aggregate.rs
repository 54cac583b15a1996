//! Hash aggregation: one group per distinct GROUP BY key (charged to the budget), each
//! with an accumulator per aggregate call (`DISTINCT` ones with their seen-set).

use super::{KeyMap, KeySet};

use chrono_storage::Value;

use super::{Row, RowIter, eval_all, hash_key, key_into};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::limits::{StatementGuard, hashed_key_bytes, row_bytes};
use crate::plan::{AggCall, AggFunc};
use crate::types::{compare, numeric_text};

/// One aggregate's running state (also what window aggregates use over a frame).
#[derive(Clone)]
pub(super) enum Acc {
    Count(i64),
    Sum {
        int: i64,
        float: f64,
        is_float: bool,
        any: bool,
        overflow: bool,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value>),
    Max(Option<Value>),
    Any(Option<Value>),
    Concat {
        text: String,
        any: bool,
        separator: String,
    },
}

/// A value as `sum`, `avg` and `total` read it: text (and blobs) as SQLite reads them as
/// numbers.
fn summand(v: &Value) -> std::borrow::Cow<'_, Value> {
    match v {
        Value::Text(s) => std::borrow::Cow::Owned(numeric_text(s)),
        Value::Blob(b) => std::borrow::Cow::Owned(numeric_text(&String::from_utf8_lossy(b))),
        v => std::borrow::Cow::Borrowed(v),
    }
}

impl Acc {
    pub(super) fn new(call: &AggCall) -> Acc {
        match call.func {
            AggFunc::GroupConcat => Acc::Concat {
                text: String::new(),
                any: false,
                separator: match &call.separator {
                    None => ",".into(),
                    Some(Value::Text(s)) => s.clone(),
                    Some(v) => v.to_string(),
                },
            },
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum | AggFunc::Total => Acc::Sum {
                int: 0,
                float: 0.0,
                is_float: false,
                any: false,
                overflow: false,
            },
            AggFunc::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::AnyValue => Acc::Any(None),
        }
    }

    /// Adds a value; returns the bytes the accumulator grew by (group_concat's text).
    pub(super) fn add(&mut self, v: &Value) -> Result<usize> {
        match self {
            Acc::Count(n) => {
                if !v.is_null() {
                    *n += 1
                }
            }
            Acc::Sum {
                int,
                float,
                is_float,
                any,
                overflow,
            } => match &*summand(v) {
                Value::Null => {}
                &Value::Int(i) => {
                    *any = true;
                    *float += i as f64;
                    match int.checked_add(i) {
                        Some(s) => *int = s,
                        None => *overflow = true,
                    }
                }
                &Value::Float(f) => {
                    *any = true;
                    *is_float = true;
                    *float += f;
                }
                &Value::Bool(b) => {
                    *any = true;
                    *int += i64::from(b);
                    *float += f64::from(u8::from(b));
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "type mismatch: cannot sum {} values",
                        other.type_name()
                    )));
                }
            },
            Acc::Avg { sum, n } => match &*summand(v) {
                Value::Null => {}
                &Value::Int(i) => {
                    *sum += i as f64;
                    *n += 1;
                }
                &Value::Float(f) => {
                    *sum += f;
                    *n += 1;
                }
                other => {
                    return Err(Error::InvalidInput(format!(
                        "type mismatch: cannot average {} values",
                        other.type_name()
                    )));
                }
            },
            Acc::Min(_) | Acc::Max(_) => {
                if v.is_null() {
                    return Ok(0);
                }
                let is_min = matches!(self, Acc::Min(_));
                let cur = match self {
                    Acc::Min(c) | Acc::Max(c) => c,
                    _ => return Ok(0),
                };
                let replace = match cur {
                    None => true,
                    Some(c) => {
                        let o = compare(v, c)?.unwrap_or(std::cmp::Ordering::Equal);
                        if is_min { o.is_lt() } else { o.is_gt() }
                    }
                };
                if replace {
                    *cur = Some(v.clone());
                }
                let _ = cur;
            }
            Acc::Any(cur) => {
                if cur.is_none() {
                    *cur = Some(v.clone());
                }
            }
            Acc::Concat {
                text,
                any,
                separator,
            } => {
                if v.is_null() {
                    return Ok(0);
                }
                let before = text.len();
                if *any {
                    text.push_str(separator);
                }
                *any = true;
                match v {
                    Value::Text(s) => text.push_str(s),
                    Value::Blob(b) => text.push_str(&String::from_utf8_lossy(b)),
                    other => {
                        use std::fmt::Write as _;
                        let _ = write!(text, "{other}");
                    }
                }
                crate::limits::check_value_size(text.len())?;
                return Ok(text.len() - before);
            }
        }
        Ok(0)
    }

    pub(super) fn finish(self, f: AggFunc) -> Result<Value> {
        Ok(match self {
            Acc::Count(n) => Value::Int(n),
            Acc::Sum {
                int,
                float,
                is_float,
                any,
                overflow,
            } => {
                if f == AggFunc::Total {
                    Value::Float(float)
                } else if !any {
                    Value::Null
                } else if is_float {
                    Value::Float(float)
                } else if overflow {
                    return Err(Error::InvalidInput("integer overflow in SUM".into()));
                } else {
                    Value::Int(int)
                }
            }
            Acc::Avg { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    Value::Float(sum / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::Any(v) => v.unwrap_or(Value::Null),
            Acc::Concat { text, any, .. } => {
                if any {
                    Value::Text(text)
                } else {
                    Value::Null
                }
            }
        })
    }
}

/// What COUNT(*) counts for each row.
const COUNTED: Value = Value::Int(1);

struct Group {
    values: Row,
    accs: Vec<Acc>,
    seen: Vec<Option<KeySet>>,
}

pub(super) fn aggregate(
    input: RowIter<'_>,
    group: &[Expr],
    aggs: &[AggCall],
    guard: &StatementGuard,
) -> Result<Vec<Row>> {
    let group_bytes = std::mem::size_of::<Group>()
        + aggs.len() * (std::mem::size_of::<Acc>() + std::mem::size_of::<Option<KeySet>>());
    // Groups found by a hash of their key (a lookup per row), put in key order once at the
    // end, the order the output has always had.
    let mut index: KeyMap<usize> = KeyMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let new_group = |values: Row| Group {
        values,
        accs: aggs.iter().map(Acc::new).collect(),
        seen: aggs
            .iter()
            .map(|a| a.distinct.then(KeySet::default))
            .collect(),
    };
    // The group key of each row is built in one buffer, reused: a row of a group seen
    // before allocates nothing for it (a GROUP BY column is encoded from the row, not
    // copied out of it); the group's values are evaluated when the group is new.
    let mut key = Vec::new();
    for r in input {
        let row = r?;
        guard.tick()?;
        // NULL is a group like any other value.
        key_into(&mut key, group, &row)?;
        let at = match index.get(&key[..]) {
            Some(&at) => at,
            None => {
                let values = eval_all(group, &row)?;
                guard.charge(group_bytes + hashed_key_bytes(&key) + row_bytes(&values))?;
                groups.push(new_group(values));
                index.insert(key.clone(), groups.len() - 1);
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        for (i, a) in aggs.iter().enumerate() {
            // A plain column is read in place, not copied out of the row.
            let v = match &a.arg {
                None => std::borrow::Cow::Borrowed(&COUNTED),
                Some(e) => e.eval_ref(&row)?,
            };
            let v = &*v;
            if let Some(seen) = &mut g.seen[i] {
                if v.is_null() {
                    continue;
                }
                let key = hash_key(std::slice::from_ref(v));
                let bytes = hashed_key_bytes(&key);
                if !seen.insert(key) {
                    continue;
                }
                guard.charge(bytes)?;
            }
            let grew = g.accs[i].add(v)?;
            if grew > 0 {
                guard.charge(grew)?;
            }
        }
    }
    if groups.is_empty() && group.is_empty() {
        groups.push(new_group(Vec::new()));
        index.insert(Vec::new(), 0);
    }
    let mut order: Vec<(Vec<u8>, usize)> = index.into_iter().collect();
    order.sort_unstable();
    let mut groups: Vec<Option<Group>> = groups.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(groups.len());
    for g in order.into_iter().filter_map(|(_, at)| groups[at].take()) {
        let mut row = g.values;
        for (acc, a) in g.accs.into_iter().zip(aggs) {
            row.push(acc.finish(a.func)?);
        }
        out.push(row);
    }
    Ok(out)
}
