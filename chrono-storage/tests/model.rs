//! A model-based test of MVCC and time travel: random interleavings of begin / put /
//! delete / get / scan / savepoint / rollback-to / commit / rollback over several
//! transactions, run against the store and against a reference history (a map from key to
//! its versions). After every step the past agrees: `get_at`, `get_many_at`, `scan_at` and `history` at
//! every commit time (and between them) give what the reference says, every transaction reads
//! its snapshot plus its own writes, and a commit conflicts exactly when another transaction
//! committed one of its keys after it began (first committer wins) — or one of the keys it
//! asked to stay unchanged, or anything in a key space it asked to stay unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_storage::{Error, KeyRange, MemoryEngine, Operation, Savepoint, Store, Transaction};
use proptest::prelude::*;

const KS: u32 = 9;
const SLOTS: usize = 3;
const KEYS: u8 = 5;

type Key = Vec<u8>;
type Val = Option<Vec<u8>>;

/// The reference: every committed version of every key, oldest first.
#[derive(Default)]
struct History {
    versions: BTreeMap<Key, Vec<(u64, Val)>>,
    commits: Vec<u64>,
}

impl History {
    fn at(&self, key: &[u8], ts: u64) -> Option<(u64, Vec<u8>)> {
        let (t, v) = self
            .versions
            .get(key)?
            .iter()
            .rev()
            .find(|(t, _)| *t <= ts)?;
        v.clone().map(|v| (*t, v))
    }

    fn last_write(&self, key: &[u8]) -> u64 {
        self.versions
            .get(key)
            .and_then(|v| v.last())
            .map_or(0, |(t, _)| *t)
    }

    fn live_at(&self, ts: u64) -> Vec<(Key, Vec<u8>)> {
        self.versions
            .keys()
            .filter_map(|k| self.at(k, ts).map(|(_, v)| (k.clone(), v)))
            .collect()
    }
}

struct Open {
    txn: Transaction,
    writes: BTreeMap<Key, Val>,
    unchanged: Vec<Key>,
    unchanged_keyspace: bool,
    saved: Option<(Savepoint, BTreeMap<Key, Val>)>,
}

#[derive(Debug, Clone)]
enum Op {
    Begin(usize),
    Put(usize, u8, u8),
    Delete(usize, u8),
    Get(usize, u8),
    Scan(usize),
    Save(usize),
    RollbackTo(usize),
    Commit(usize),
    Rollback(usize),
    CheckKey(usize, u8),
    CheckKeyspace(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let key = 0..KEYS;
    prop_oneof![
        2 => slot.clone().prop_map(Op::Begin),
        4 => (slot.clone(), key.clone(), any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        2 => (slot.clone(), key.clone()).prop_map(|(s, k)| Op::Delete(s, k)),
        2 => (slot.clone(), key).prop_map(|(s, k)| Op::Get(s, k)),
        1 => slot.clone().prop_map(Op::Scan),
        1 => slot.clone().prop_map(Op::Save),
        1 => slot.clone().prop_map(Op::RollbackTo),
        3 => slot.clone().prop_map(Op::Commit),
        1 => slot.clone().prop_map(Op::Rollback),
        1 => (slot.clone(), 0..KEYS).prop_map(|(s, k)| Op::CheckKey(s, k)),
        1 => slot.prop_map(Op::CheckKeyspace),
    ]
}

fn key(k: u8) -> Key {
    vec![b'k', k]
}

/// What `open` sees of `key`: its own write, else its snapshot.
fn expected_read(open: &Open, history: &History, key: &[u8]) -> Val {
    match open.writes.get(key) {
        Some(v) => v.clone(),
        None => history.at(key, open.txn.read_ts()).map(|(_, v)| v),
    }
}

fn check_the_past(store: &Store, history: &History) -> Result<(), TestCaseError> {
    let mut times: Vec<u64> = vec![0];
    for &t in &history.commits {
        times.extend([t - 1, t, t + 1]);
    }
    times.push(u64::MAX);
    for &t in &times {
        for k in 0..KEYS {
            let k = key(k);
            prop_assert_eq!(
                store.get_at(KS, &k, t).unwrap(),
                history.at(&k, t),
                "get_at {}",
                t
            );
        }
        let all: Vec<Key> = (0..KEYS).map(key).collect();
        let many = store.get_many_at(KS, &all, t).unwrap();
        for (i, k) in all.iter().enumerate() {
            prop_assert_eq!(
                &many[i],
                &history.at(k, t).map(|(_, v)| v),
                "get_many_at {}",
                t
            );
        }
        let scanned: Vec<(Key, Vec<u8>)> = store
            .scan_at(KS, KeyRange::All, t)
            .unwrap()
            .collect::<chrono_storage::Result<_>>()
            .unwrap();
        prop_assert_eq!(scanned, history.live_at(t), "scan_at {}", t);
    }
    for k in 0..KEYS {
        let k = key(k);
        let got: Vec<(u64, Val, Operation)> = store
            .history(KS, &k, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|v| (v.commit_ts, v.value, v.op))
            .collect();
        let want = history.versions.get(&k).cloned().unwrap_or_default();
        prop_assert_eq!(got.len(), want.len());
        let mut live_before = false;
        for ((t, v, op), (wt, wv)) in got.iter().zip(&want) {
            prop_assert_eq!(t, wt);
            prop_assert_eq!(v, wv);
            let want_op = match (live_before, wv.is_some()) {
                (_, false) => Operation::Delete,
                (false, true) => Operation::Insert,
                (true, true) => Operation::Update,
            };
            prop_assert_eq!(*op, want_op);
            live_before = wv.is_some();
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Store::open(Arc::new(MemoryEngine::new())).unwrap();
    let mut history = History::default();
    let mut slots: Vec<Option<Open>> = (0..SLOTS).map(|_| None).collect();
    for op in ops {
        match op {
            Op::Begin(s) => {
                if slots[s].is_none() {
                    slots[s] = Some(Open {
                        txn: store.begin(),
                        writes: BTreeMap::new(),
                        unchanged: Vec::new(),
                        unchanged_keyspace: false,
                        saved: None,
                    });
                }
            }
            Op::Put(s, k, v) => {
                if let Some(open) = slots[s].as_mut() {
                    open.txn.put(KS, key(k), vec![v]).unwrap();
                    open.writes.insert(key(k), Some(vec![v]));
                }
            }
            Op::Delete(s, k) => {
                if let Some(open) = slots[s].as_mut() {
                    open.txn.delete(KS, key(k)).unwrap();
                    open.writes.insert(key(k), None);
                }
            }
            Op::Get(s, k) => {
                if let Some(open) = slots[s].as_ref() {
                    // Odd keys are read as a write path reads them (remembered for the
                    // commit), even ones as plain reads: both must see the same.
                    let got = if k % 2 == 1 {
                        open.txn.get_for_write(KS, &key(k)).unwrap()
                    } else {
                        open.txn.get(KS, &key(k)).unwrap()
                    };
                    prop_assert_eq!(got, expected_read(open, &history, &key(k)));
                    // A batched read of every key sees what reads one by one see.
                    let all: Vec<Key> = (0..KEYS).map(key).collect();
                    let many = open.txn.get_many(KS, &all).unwrap();
                    for (i, k) in all.iter().enumerate() {
                        prop_assert_eq!(&many[i], &expected_read(open, &history, k));
                    }
                }
            }
            Op::Scan(s) => {
                if let Some(open) = slots[s].as_ref() {
                    let got: Vec<(Key, Vec<u8>)> = open
                        .txn
                        .scan(KS, KeyRange::All)
                        .unwrap()
                        .collect::<chrono_storage::Result<_>>()
                        .unwrap();
                    let want: Vec<(Key, Vec<u8>)> = (0..KEYS)
                        .filter_map(|k| expected_read(open, &history, &key(k)).map(|v| (key(k), v)))
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
            Op::Save(s) => {
                if let Some(open) = slots[s].as_mut() {
                    open.saved = Some((open.txn.savepoint(), open.writes.clone()));
                }
            }
            Op::RollbackTo(s) => {
                if let Some(open) = slots[s].as_mut()
                    && let Some((save, writes)) = open.saved.take()
                {
                    open.txn.rollback_to(save);
                    open.writes = writes;
                }
            }
            Op::CheckKey(s, k) => {
                if let Some(open) = slots[s].as_mut() {
                    open.txn.check_unchanged(KS, &key(k));
                    open.unchanged.push(key(k));
                }
            }
            Op::CheckKeyspace(s) => {
                if let Some(open) = slots[s].as_mut() {
                    open.txn.check_keyspace_unchanged(KS);
                    open.unchanged_keyspace = true;
                }
            }
            Op::Rollback(s) => {
                if let Some(open) = slots[s].take() {
                    open.txn.rollback();
                }
            }
            Op::Commit(s) => {
                let Some(open) = slots[s].take() else {
                    continue;
                };
                let read_ts = open.txn.read_ts();
                // A transaction that wrote nothing commits nothing and checks nothing.
                let conflicts = !open.writes.is_empty()
                    && (open
                        .writes
                        .keys()
                        .chain(&open.unchanged)
                        .any(|k| history.last_write(k) > read_ts)
                        || (open.unchanged_keyspace
                            && history.commits.last().is_some_and(|&t| t > read_ts)));
                // Writes that change nothing (deleting what is not there) make no version.
                let changes: Vec<(Key, Val)> = open
                    .writes
                    .iter()
                    .filter(|(k, v)| v.is_some() || history.at(k, u64::MAX).is_some())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                match open.txn.commit() {
                    Err(Error::Conflict(_)) => prop_assert!(conflicts, "an unexpected conflict"),
                    Err(e) => return Err(TestCaseError::fail(format!("commit: {e}"))),
                    Ok(info) => {
                        prop_assert!(!conflicts, "first committer wins: this one had to conflict");
                        match info {
                            None => prop_assert!(changes.is_empty()),
                            Some(info) => {
                                prop_assert!(!changes.is_empty());
                                prop_assert!(
                                    history.commits.last().is_none_or(|&t| info.commit_ts > t)
                                );
                                for (k, v) in changes {
                                    history
                                        .versions
                                        .entry(k)
                                        .or_default()
                                        .push((info.commit_ts, v));
                                }
                                history.commits.push(info.commit_ts);
                            }
                        }
                    }
                }
            }
        }
        check_the_past(&store, &history)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_interleavings_agree_with_a_reference_history(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
