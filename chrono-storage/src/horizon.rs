//! How far back history is kept: the GC horizons, and the rule compaction applies with them.
//!
//! Every key space has a horizon: reads before it are refused, and versions at or before it
//! that a read at it does not need may be dropped by compaction ([`VersionGc`]). Three
//! things set it ([`Horizons::of`]):
//!
//! - the **default**, where `features.time_travel.retention_days` puts it (now − retention,
//!   held back by open transactions, pins and change streams);
//! - a **retention of its own** (a per-table override, longer or shorter than the default),
//!   which replaces the default for that key space;
//! - a **purge** (`DELETE HISTORY … BEFORE SYSTEM_TIME x`): the horizon is at least `x`.
//!
//! No horizon ever moves backwards ([`Horizons::advanced`]): a version once collectable may
//! already be gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mvcc::Keyspace;

/// The GC horizons of every key space (microsecond timestamps; 0 keeps everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizons {
    /// The horizon of key spaces without a retention of their own.
    pub default: u64,
    /// Key spaces with a retention of their own: their horizon instead of the default.
    pub retained: BTreeMap<Keyspace, u64>,
    /// Key spaces whose history before a time was deleted: their horizon is at least that.
    pub purged: BTreeMap<Keyspace, u64>,
}

impl Horizons {
    /// The horizon of `keyspace`: reads before it are refused.
    pub fn of(&self, keyspace: Keyspace) -> u64 {
        let retained = self
            .retained
            .get(&keyspace)
            .copied()
            .unwrap_or(self.default);
        retained.max(self.purged.get(&keyspace).copied().unwrap_or(0))
    }

    /// The highest horizon of any key space: a time at or after it is readable everywhere.
    pub fn highest(&self) -> u64 {
        self.retained
            .values()
            .chain(self.purged.values())
            .copied()
            .fold(self.default, u64::max)
    }

    /// True when no history may have been collected anywhere.
    pub fn is_zero(&self) -> bool {
        self.highest() == 0
    }

    /// `wanted` where it does not move any key space's horizon backwards. A key space whose
    /// own retention `wanted` drops falls back to the default only if that is not earlier
    /// than where it was; otherwise it keeps its horizon as its own.
    pub fn advanced(&self, wanted: &Horizons) -> Horizons {
        let default = self.default.max(wanted.default);
        let mut retained = BTreeMap::new();
        let keyspaces = self.retained.keys().chain(wanted.retained.keys());
        for &ks in keyspaces {
            let was = self.retained.get(&ks).copied().unwrap_or(self.default);
            let h = wanted
                .retained
                .get(&ks)
                .copied()
                .unwrap_or(default)
                .max(was);
            if h != default {
                retained.insert(ks, h);
            }
        }
        let mut purged = self.purged.clone();
        for (&ks, &h) in &wanted.purged {
            let p = purged.entry(ks).or_insert(0);
            *p = (*p).max(h);
        }
        // A purge at or below what retention already gives says nothing more.
        let mut out = Horizons {
            default,
            retained,
            purged: BTreeMap::new(),
        };
        out.purged = purged
            .into_iter()
            .filter(|&(ks, h)| h > out.of(ks))
            .collect();
        out
    }
}

/// The garbage-collection rule for the versions family, applied in key order (per key,
/// newest version first): a version committed after its key space's horizon stays; of
/// those at or before it, the first met (the newest) stays — a read at the horizon returns
/// it — and the rest go. Applied to any subset of a key's versions (one compaction's input)
/// it never drops the version a read at the horizon needs: that one is the newest at or
/// before the horizon wherever it is. A key that does not parse is kept.
#[derive(Debug)]
pub struct VersionGc {
    horizons: std::sync::Arc<Horizons>,
    /// The key space and key of the last version seen, with its key space's horizon.
    last: Option<(Keyspace, Vec<u8>, u64)>,
    kept_at_horizon: bool,
}

impl VersionGc {
    /// The rule for `horizons` (all zero: keep everything).
    pub fn new(horizons: std::sync::Arc<Horizons>) -> VersionGc {
        VersionGc {
            horizons,
            last: None,
            kept_at_horizon: false,
        }
    }

    /// Whether the version stored under `key` (the next in key order) stays.
    pub fn keep(&mut self, key: &[u8]) -> bool {
        if self.horizons.is_zero() {
            return true;
        }
        let Ok((ks, k, ts)) = crate::encoding::parse_version_key(key) else {
            return true;
        };
        let horizon = match &self.last {
            Some((lks, lk, h)) if *lks == ks && *lk == k => *h,
            _ => {
                let h = match &self.last {
                    Some((lks, _, h)) if *lks == ks => *h,
                    _ => self.horizons.of(ks),
                };
                self.last = Some((ks, k, h));
                self.kept_at_horizon = false;
                h
            }
        };
        if ts > horizon {
            return true;
        }
        if self.kept_at_horizon {
            return false;
        }
        self.kept_at_horizon = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(default: u64, retained: &[(u32, u64)], purged: &[(u32, u64)]) -> Horizons {
        Horizons {
            default,
            retained: retained.iter().copied().collect(),
            purged: purged.iter().copied().collect(),
        }
    }

    #[test]
    fn a_key_space_takes_its_own_retention_and_at_least_its_purge() {
        let x = h(100, &[(5, 40), (6, 300)], &[(5, 70), (7, 50), (8, 250)]);
        assert_eq!(x.of(1), 100);
        assert_eq!(x.of(5), 70);
        assert_eq!(x.of(6), 300);
        assert_eq!(x.of(7), 100);
        assert_eq!(x.of(8), 250);
        assert_eq!(x.highest(), 300);
    }

    #[test]
    fn no_horizon_moves_backwards() {
        let was = h(100, &[(5, 40), (6, 300)], &[(8, 250)]);
        // Everything asked lower than it is.
        let next = was.advanced(&h(50, &[(5, 10)], &[(8, 10)]));
        for ks in 0..10 {
            assert!(next.of(ks) >= was.of(ks), "key space {ks}");
        }
        // Key space 6 lost its own retention but its horizon is ahead of the default.
        assert_eq!(next.of(6), 300);
        // Key space 5 keeps its longer retention.
        assert_eq!(next.of(5), 40);
        // Forward moves are taken; a dropped own retention behind the default joins it.
        let later = next.advanced(&h(400, &[], &[(9, 500)]));
        assert_eq!(later.of(5), 400);
        assert_eq!(later.of(6), 400);
        assert_eq!(later.of(9), 500);
        assert!(later.retained.is_empty());
        assert!(
            !later.purged.contains_key(&8),
            "a purge behind the default is dropped"
        );
    }

    #[test]
    fn compaction_keeps_what_a_read_at_each_horizon_needs() {
        use crate::encoding::version_key;
        let horizons = std::sync::Arc::new(h(100, &[(2, 10)], &[]));
        let mut gc = VersionGc::new(horizons);
        // Key space 1 (default 100): versions 150, 90, 80 — 80 goes.
        // Key space 2 (its own retention, 10): 150, 90 and 8 (the newest at or before 10)
        // stay, 5 goes.
        let keys = [
            (version_key(1, b"a", 150), true),
            (version_key(1, b"a", 90), true),
            (version_key(1, b"a", 80), false),
            (version_key(1, b"b", 50), true),
            (version_key(2, b"a", 150), true),
            (version_key(2, b"a", 90), true),
            (version_key(2, b"a", 8), true),
            (version_key(2, b"a", 5), false),
        ];
        for (key, keep) in keys {
            assert_eq!(gc.keep(&key), keep, "{key:?}");
        }
    }
}
