//! Window functions: every input row, with one more value per call. The rows are held (and
//! charged to the budget); for each call they are put in (partition, ORDER BY) order, and each
//! partition is walked once.
//!
//! Frames: ROWS counts rows, RANGE compares the ORDER BY value (peers — rows with equal
//! ORDER BY values — are always in the same frame; an offset needs one numeric key). An
//! aggregate over a frame that starts at the partition's first row is computed as it grows
//! (one pass); one that ends at the partition's last row is grown from the end; any other
//! frame is computed per row over its rows (cost: rows × frame width).

use std::cmp::Ordering;

use chrono_storage::Value;

use super::aggregate::Acc;
use super::sort::{cmp_keys, sort_key};
use super::{Row, RowIter, hash_key};
use crate::error::{Error, Result};
use crate::limits::{StatementGuard, row_bytes};
use crate::plan::{AggFunc, FrameBound, WindowCall, WindowFunc};
use crate::types::to_f64;

/// The rows of `input`, each followed by the value of each call.
pub(super) fn window<'a>(
    input: RowIter<'a>,
    calls: &[WindowCall],
    guard: &'a StatementGuard,
) -> Result<RowIter<'a>> {
    let mut rows: Vec<Row> = Vec::new();
    for r in input {
        let row = r?;
        guard.tick()?;
        guard.charge(row_bytes(&row))?;
        rows.push(row);
    }
    for call in calls {
        let values = compute(call, &rows, guard)?;
        guard.charge(values.len() * std::mem::size_of::<Value>())?;
        for (row, v) in rows.iter_mut().zip(values) {
            row.push(v);
        }
    }
    Ok(Box::new(rows.into_iter().map(Ok)))
}

/// One call's value for every row (in input order).
fn compute(call: &WindowCall, rows: &[Row], guard: &StatementGuard) -> Result<Vec<Value>> {
    // Each row's partition (as encoded key bytes: equal values, NULLs included, are equal)
    // and ORDER BY values; then the rows in that order, stable.
    let mut keyed = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        guard.tick()?;
        let partition: Vec<Value> = call
            .partition_by
            .iter()
            .map(|e| e.eval(row))
            .collect::<Result<_>>()?;
        keyed.push((hash_key(&partition), sort_key(&call.order_by, row)?, i));
    }
    keyed.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| cmp_keys(&call.order_by, &a.1, &b.1))
            .then(a.2.cmp(&b.2))
    });
    let mut out = vec![Value::Null; rows.len()];
    let mut start = 0;
    while start < keyed.len() {
        let mut end = start + 1;
        while end < keyed.len() && keyed[end].0 == keyed[start].0 {
            end += 1;
        }
        let part = &keyed[start..end];
        let order: Vec<&[Value]> = part.iter().map(|k| k.1.as_slice()).collect();
        let members: Vec<usize> = part.iter().map(|k| k.2).collect();
        let p = Partition {
            call,
            rows,
            members: &members,
            order: &order,
            peers: peer_groups(call, &order),
            numeric: numeric_keys(call, &order)?,
        };
        for (pos, value) in p.values(guard)?.into_iter().enumerate() {
            out[members[pos]] = value;
        }
        start = end;
    }
    Ok(out)
}

/// For a RANGE frame with an offset: where the partition's non-NULL ORDER BY values start
/// (NULLs sort at one end) and those values as numbers.
fn numeric_keys(call: &WindowCall, order: &[&[Value]]) -> Result<(usize, Vec<f64>)> {
    let offset = |b: FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
    if !call.frame.range || !(offset(call.frame.start) || offset(call.frame.end)) {
        return Ok((0, Vec::new()));
    }
    let mut lo = None;
    let mut vals = Vec::new();
    for (p, key) in order.iter().enumerate() {
        match &key[0] {
            Value::Null => {}
            v @ (Value::Int(_) | Value::Float(_) | Value::Timestamp(_)) => {
                lo.get_or_insert(p);
                vals.push(to_f64(v));
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "a RANGE frame with an offset needs a numeric ORDER BY value, got {}",
                    other.type_name()
                )));
            }
        }
    }
    Ok((lo.unwrap_or(0), vals))
}

/// For each position of a partition: the first and last position of its peers.
fn peer_groups(call: &WindowCall, order: &[&[Value]]) -> Vec<(usize, usize)> {
    let mut out = vec![(0, 0); order.len()];
    let mut first = 0;
    for i in 0..=order.len() {
        let same = i < order.len()
            && i > first
            && cmp_keys(&call.order_by, order[first], order[i]) == Ordering::Equal;
        if i == first || same {
            continue;
        }
        for slot in &mut out[first..i] {
            *slot = (first, i - 1);
        }
        first = i;
    }
    out
}

struct Partition<'p> {
    call: &'p WindowCall,
    rows: &'p [Row],
    /// Input positions of its rows, in window order.
    members: &'p [usize],
    /// Their ORDER BY values.
    order: &'p [&'p [Value]],
    /// Their peer groups.
    peers: Vec<(usize, usize)>,
    /// See [`numeric_keys`].
    numeric: (usize, Vec<f64>),
}

impl Partition<'_> {
    fn row(&self, pos: usize) -> &Row {
        &self.rows[self.members[pos]]
    }

    fn arg(&self, n: usize, pos: usize) -> Result<Value> {
        match self.call.args.get(n) {
            Some(e) => e.eval(self.row(pos)),
            None => Ok(Value::Null),
        }
    }

    fn values(&self, guard: &StatementGuard) -> Result<Vec<Value>> {
        let m = self.members.len();
        let mut out = Vec::with_capacity(m);
        match &self.call.func {
            WindowFunc::Aggregate(a) => return self.aggregate(a, guard),
            WindowFunc::RowNumber => out.extend((1..=m).map(|i| Value::Int(i as i64))),
            WindowFunc::Rank => out.extend(self.peers.iter().map(|p| Value::Int(p.0 as i64 + 1))),
            WindowFunc::DenseRank => {
                let mut rank = 0;
                for (pos, p) in self.peers.iter().enumerate() {
                    if p.0 == pos {
                        rank += 1;
                    }
                    out.push(Value::Int(rank));
                }
            }
            WindowFunc::PercentRank => out.extend(self.peers.iter().map(|p| {
                Value::Float(if m <= 1 {
                    0.0
                } else {
                    p.0 as f64 / (m - 1) as f64
                })
            })),
            WindowFunc::CumeDist => out.extend(
                self.peers
                    .iter()
                    .map(|p| Value::Float((p.1 + 1) as f64 / m as f64)),
            ),
            WindowFunc::Ntile => {
                for pos in 0..m {
                    let n = match self.arg(0, pos)? {
                        Value::Int(n) if n > 0 => n as usize,
                        other => {
                            return Err(Error::InvalidInput(format!(
                                "ntile() needs a positive whole number, got {other}"
                            )));
                        }
                    };
                    // m rows in n buckets: the first m % n buckets hold one row more.
                    let (size, big) = (m / n, m % n);
                    let bucket = if size == 0 {
                        pos
                    } else if pos < big * (size + 1) {
                        pos / (size + 1)
                    } else {
                        big + (pos - big * (size + 1)) / size
                    };
                    out.push(Value::Int(bucket as i64 + 1));
                }
            }
            WindowFunc::Lag | WindowFunc::Lead => {
                for pos in 0..m {
                    guard.tick()?;
                    let offset = match self.call.args.get(1) {
                        None => 1,
                        Some(e) => match e.eval(self.row(pos))? {
                            Value::Int(n) => n,
                            Value::Null => {
                                out.push(Value::Null);
                                continue;
                            }
                            other => {
                                return Err(Error::InvalidInput(format!(
                                    "the offset of lag() and lead() must be a whole number, \
                                     got {other}"
                                )));
                            }
                        },
                    };
                    let target = if matches!(self.call.func, WindowFunc::Lag) {
                        (pos as i64).checked_sub(offset)
                    } else {
                        (pos as i64).checked_add(offset)
                    };
                    out.push(match target {
                        Some(t) if t >= 0 && (t as usize) < m => self.arg(0, t as usize)?,
                        _ => self.arg(2, pos)?,
                    });
                }
            }
            WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue => {
                for pos in 0..m {
                    guard.tick()?;
                    let Some((s, e)) = self.frame(pos)? else {
                        out.push(Value::Null);
                        continue;
                    };
                    let at = match self.call.func {
                        WindowFunc::FirstValue => Some(s),
                        WindowFunc::LastValue => Some(e),
                        _ => match self.arg(1, pos)? {
                            Value::Int(n) if n > 0 => {
                                Some(s.saturating_add(n as usize - 1)).filter(|&k| k <= e)
                            }
                            other => {
                                return Err(Error::InvalidInput(format!(
                                    "nth_value() needs a positive whole number, got {other}"
                                )));
                            }
                        },
                    };
                    out.push(match at {
                        Some(k) => self.arg(0, k)?,
                        None => Value::Null,
                    });
                }
            }
        }
        Ok(out)
    }

    /// An aggregate over each row's frame.
    fn aggregate(&self, a: &crate::plan::AggCall, guard: &StatementGuard) -> Result<Vec<Value>> {
        let m = self.members.len();
        let value_at = |pos: usize| -> Result<Value> {
            match &a.arg {
                None => Ok(Value::Int(1)),
                Some(e) => e.eval(self.row(pos)),
            }
        };
        let frame = self.call.frame;
        let mut out = Vec::with_capacity(m);
        if frame.start == FrameBound::UnboundedPreceding {
            // Frames grow with the row: add what each adds.
            let mut acc = Acc::new(a);
            let mut added = 0;
            for pos in 0..m {
                guard.tick()?;
                let end = self.frame(pos)?.map_or(0, |(_, e)| e + 1);
                while added < end {
                    acc.add(&value_at(added)?)?;
                    added += 1;
                }
                out.push(acc.clone().finish(a.func)?);
            }
            return Ok(out);
        }
        if frame.end == FrameBound::UnboundedFollowing && a.func != AggFunc::GroupConcat {
            // Frames shrink with the row: grown from the partition's end (order matters
            // only to group_concat).
            let mut acc = Acc::new(a);
            let mut from = m;
            let mut back = vec![Value::Null; m];
            for pos in (0..m).rev() {
                guard.tick()?;
                let start = self.frame(pos)?.map_or(m, |(s, _)| s);
                while from > start {
                    from -= 1;
                    acc.add(&value_at(from)?)?;
                }
                back[pos] = acc.clone().finish(a.func)?;
            }
            return Ok(back);
        }
        for pos in 0..m {
            let mut acc = Acc::new(a);
            if let Some((s, e)) = self.frame(pos)? {
                for k in s..=e {
                    guard.tick()?;
                    acc.add(&value_at(k)?)?;
                }
            }
            out.push(acc.finish(a.func)?);
        }
        Ok(out)
    }

    /// The first and last position of `pos`'s frame; `None` when it is empty.
    fn frame(&self, pos: usize) -> Result<Option<(usize, usize)>> {
        let m = self.members.len();
        let frame = self.call.frame;
        let (s, e) = if frame.range {
            (
                self.range_bound(pos, frame.start, true)?,
                self.range_bound(pos, frame.end, false)?,
            )
        } else {
            let at = |b: FrameBound| -> i64 {
                let p = pos as i64;
                match b {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::Preceding(k) => p.saturating_sub(k as i64),
                    FrameBound::CurrentRow => p,
                    FrameBound::Following(k) => p.saturating_add(k as i64),
                    FrameBound::UnboundedFollowing => m as i64 - 1,
                }
            };
            (at(frame.start), at(frame.end))
        };
        let (s, e) = (s.max(0), e.min(m as i64 - 1));
        Ok((s <= e).then_some((s as usize, e as usize)))
    }

    /// A RANGE frame's bound for `pos`: its peers for CURRENT ROW, else the rows whose one
    /// ORDER BY value is within the offset (a NULL value's frame is its peers).
    fn range_bound(&self, pos: usize, b: FrameBound, start: bool) -> Result<i64> {
        let m = self.members.len() as i64;
        let peers = self.peers[pos];
        let (offset, preceding) = match b {
            FrameBound::UnboundedPreceding => return Ok(0),
            FrameBound::UnboundedFollowing => return Ok(m - 1),
            FrameBound::CurrentRow => {
                return Ok(if start { peers.0 } else { peers.1 } as i64);
            }
            FrameBound::Preceding(k) => (k, true),
            FrameBound::Following(k) => (k, false),
        };
        if self.order[pos][0].is_null() {
            return Ok(if start { peers.0 } else { peers.1 } as i64);
        }
        let (lo, vals) = (self.numeric.0, &self.numeric.1);
        let v = vals[pos - lo];
        let desc = self.call.order_by[0].desc;
        // The values move away from the current one as rows go back: down for ASC.
        let target = if preceding != desc {
            v - offset
        } else {
            v + offset
        };
        // "before target" in window order: smaller for ASC, larger for DESC.
        let before = |x: f64| if desc { x > target } else { x < target };
        let at_or_before = |x: f64| if desc { x >= target } else { x <= target };
        Ok(if start {
            (lo + vals.partition_point(|&x| before(x))) as i64
        } else {
            (lo + vals.partition_point(|&x| at_or_before(x))) as i64 - 1
        })
    }
}
