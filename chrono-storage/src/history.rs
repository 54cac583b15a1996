//! How much history each key space holds — versions, keys, live rows, bytes, the oldest
//! version — and how much of it a retention cut-off would let go: every version older than
//! the cut-off except the newest one at or below it (which is what a read at the cut-off
//! returns). One pass over the `versions` and `latest` families; the health report calls
//! it on demand.

use std::collections::BTreeMap;

use crate::encoding;
use crate::engine::ColumnFamily;
use crate::error::Result;
use crate::mvcc::{Keyspace, Store};

/// The history of one key space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyspaceHistory {
    /// Row versions kept (deletes included).
    pub versions: u64,
    /// Keys with at least one version.
    pub keys: u64,
    /// Keys whose newest version is not a delete (rows a current read returns).
    pub live: u64,
    /// Bytes of the versions' keys and values.
    pub bytes: u64,
    /// The oldest version's commit timestamp.
    pub oldest_ts: Option<u64>,
    /// Versions a retention cut-off would collect.
    pub collectable: u64,
    /// Their bytes.
    pub collectable_bytes: u64,
}

/// The history of every key space, with what cutting each at its horizon in `cutoffs`
/// would collect (a horizon of 0 collects nothing).
pub fn summarize(
    store: &Store,
    cutoffs: Option<&crate::horizon::Horizons>,
) -> Result<BTreeMap<Keyspace, KeyspaceHistory>> {
    let engine = store.engine();
    let mut out: BTreeMap<Keyspace, KeyspaceHistory> = BTreeMap::new();
    let mut cursor = engine.cursor(ColumnFamily::Versions)?;
    cursor.seek(&[]);
    // The key being walked (newest version first) and whether its version readable at the
    // cut-off has been met.
    let mut current: Option<(Keyspace, Vec<u8>)> = None;
    let mut kept_at_cutoff = false;
    while cursor.valid() {
        let (ks, key, ts) = encoding::parse_version_key(cursor.key())?;
        let size = (cursor.key().len() + cursor.value().len()) as u64;
        let h = out.entry(ks).or_default();
        let same = current
            .as_ref()
            .is_some_and(|(k, kk)| *k == ks && *kk == key);
        if !same {
            h.keys += 1;
            current = Some((ks, key));
            kept_at_cutoff = false;
        }
        h.versions += 1;
        h.bytes += size;
        h.oldest_ts = Some(h.oldest_ts.map_or(ts, |o| o.min(ts)));
        if let Some(cut) = cutoffs.map(|c| c.of(ks))
            && ts <= cut
        {
            if kept_at_cutoff {
                h.collectable += 1;
                h.collectable_bytes += size;
            } else {
                kept_at_cutoff = true;
            }
        }
        cursor.next();
    }
    cursor.status()?;
    let mut latest = engine.cursor(ColumnFamily::Latest)?;
    latest.seek(&[]);
    while latest.valid() {
        let (ks, _) = encoding::parse_latest_key(latest.key())?;
        let (_, op, _) = encoding::decode_latest_value(latest.value())?;
        if op != crate::mvcc::Operation::Delete.to_byte() {
            out.entry(ks).or_default().live += 1;
        }
        latest.next();
    }
    latest.status()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_keys_live_rows_and_what_a_cutoff_collects() {
        let store = Store::in_memory();
        let mut stamps = Vec::new();
        for v in 0..4u8 {
            let mut t = store.begin();
            t.put(7, b"a".to_vec(), vec![v]).unwrap();
            if v == 0 {
                t.put(7, b"b".to_vec(), vec![v]).unwrap();
            }
            stamps.push(t.commit().unwrap().unwrap().commit_ts);
        }
        let mut t = store.begin();
        t.delete(7, b"b".to_vec()).unwrap();
        t.commit().unwrap();
        let all = summarize(&store, None).unwrap();
        let h = &all[&7];
        assert_eq!((h.versions, h.keys, h.live, h.collectable), (6, 2, 1, 0));
        assert_eq!(h.oldest_ts, Some(stamps[0]));
        // Cut at the third commit: of a's versions at or below it (1st, 2nd, 3rd) the newest
        // stays readable, two go; b's only version at or below it stays.
        let horizons = crate::horizon::Horizons {
            default: stamps[2],
            ..Default::default()
        };
        let cut = summarize(&store, Some(&horizons)).unwrap();
        assert_eq!(cut[&7].collectable, 2);
        assert!(cut[&7].collectable_bytes > 0 && cut[&7].collectable_bytes < h.bytes);
    }
}
