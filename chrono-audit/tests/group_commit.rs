//! Group commit: commits that arrive while another is being written wait in a queue and
//! are written together, in queue order, in one engine write. Each keeps its own sequence
//! number, timestamp and audit transaction; a conflict inside a group fails only that
//! commit; a failed group write fails every commit of the group and the store goes on from
//! where it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono_audit::AuditTrail;
use chrono_storage::{
    ColumnFamily, CommitInfo, Cursor, Engine, Error, MemoryEngine, Result, Store, WriteBatch,
};
use parking_lot::{Condvar, Mutex};

const KS: u32 = 4;

/// An engine whose writes wait while its gate is closed, and whose `fail_at`-th write from
/// now fails.
#[derive(Default)]
struct GatedEngine {
    inner: MemoryEngine,
    closed: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
    fail_at: AtomicI64,
}

impl GatedEngine {
    fn new() -> Arc<Self> {
        let e = Self::default();
        e.fail_at.store(i64::MAX, Ordering::SeqCst);
        Arc::new(e)
    }

    fn close(&self) {
        *self.closed.lock() = true;
    }

    fn open(&self) {
        *self.closed.lock() = false;
        self.opened.notify_all();
    }
}

impl Engine for GatedEngine {
    fn set_gc_horizons(&self, horizons: Arc<chrono_storage::Horizons>) {
        self.inner.set_gc_horizons(horizons);
    }

    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(cf, key)
    }

    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>> {
        self.inner.cursor(cf)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut closed = self.closed.lock();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while *closed {
            self.opened.wait(&mut closed);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(closed);
        if self.fail_at.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Err(Error::Engine("injected write failure".into()));
        }
        self.inner.write(batch)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn compact(&self) -> Result<()> {
        self.inner.compact()
    }
}

fn key(i: i64) -> Vec<u8> {
    chrono_storage::encoding::encode_key(&[chrono_storage::Value::Int(i)])
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

type Outcome = std::thread::JoinHandle<Result<Option<CommitInfo>>>;

/// Puts `key(k) = value` in a transaction begun now, committed on another thread.
fn put(store: &Store, k: i64, value: &str) -> Outcome {
    let mut t = store.begin();
    t.label_keyspace(KS, "t");
    t.put(KS, key(k), value.as_bytes().to_vec()).unwrap();
    std::thread::spawn(move || t.commit())
}

fn value(store: &Store, k: i64) -> Option<String> {
    store
        .begin()
        .get(KS, &key(k))
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

/// Starts, one by one, a commit of `key(k) = "b"` for each `k` of `keys`.
fn puts(store: &Store, keys: std::ops::RangeInclusive<i64>) -> Vec<Starter<'_>> {
    keys.map(|k| Box::new(move || put(store, k, "b")) as Starter<'_>)
        .collect()
}

/// Starts a commit on another thread.
type Starter<'a> = Box<dyn FnOnce() -> Outcome + 'a>;

/// Commits `first` and holds its engine write until `queued` more commits wait behind it.
fn behind_a_held_write(
    engine: &GatedEngine,
    store: &Store,
    first: impl FnOnce() -> Outcome,
    queued: Vec<Starter<'_>>,
) -> (Outcome, Vec<Outcome>) {
    engine.close();
    let first = first();
    wait_until("the first write", || {
        engine.waiting.load(Ordering::SeqCst) == 1
    });
    let mut rest = Vec::new();
    for (i, start) in queued.into_iter().enumerate() {
        rest.push(start());
        // In this order in the queue.
        wait_until("the queue", || store.queued_commits() == i + 1);
    }
    engine.open();
    (first, rest)
}

#[test]
fn commits_that_arrive_together_are_written_together_in_order() {
    let engine = GatedEngine::new();
    let store = Store::open(engine.clone()).unwrap();
    let trail = AuditTrail::attach(&store).unwrap();
    let (first, rest) =
        behind_a_held_write(&engine, &store, || put(&store, 0, "a"), puts(&store, 1..=3));
    let first = first.join().unwrap().unwrap().unwrap();
    let rest: Vec<CommitInfo> = rest
        .into_iter()
        .map(|h| h.join().unwrap().unwrap().unwrap())
        .collect();
    assert_eq!(first.seq, 1);
    assert_eq!(rest.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(rest.windows(2).all(|w| w[0].commit_ts < w[1].commit_ts));
    assert!(first.commit_ts < rest[0].commit_ts);
    // One write for the first commit, one for the three queued behind it.
    assert_eq!(store.commit_writes(), 2);
    for k in 0..=3 {
        assert!(value(&store, k).is_some(), "key {k}");
    }
    let report = trail.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.transactions, 4);
    // Each commit is its own audit transaction, found by its own time.
    let tx = trail.transaction(3).unwrap();
    assert_eq!(tx.commit_ts, rest[1].commit_ts);
}

#[test]
fn a_conflict_inside_a_group_fails_only_that_commit() {
    let engine = GatedEngine::new();
    let store = Store::open(engine.clone()).unwrap();
    let trail = AuditTrail::attach(&store).unwrap();
    put(&store, 7, "old").join().unwrap().unwrap();
    // Both begin before either commits: the second to commit loses, although neither's
    // write is in the engine when the second is checked.
    let mut t1 = store.begin();
    let mut t2 = store.begin();
    t1.put(KS, key(7), b"one".to_vec()).unwrap();
    t2.put(KS, key(7), b"two".to_vec()).unwrap();
    let (t1, t2) = (Mutex::new(Some(t1)), Mutex::new(Some(t2)));
    let (first, rest) = behind_a_held_write(
        &engine,
        &store,
        || put(&store, 1, "a"),
        vec![
            Box::new(|| {
                let t = t1.lock().take().unwrap();
                std::thread::spawn(move || t.commit())
            }),
            Box::new(|| {
                let t = t2.lock().take().unwrap();
                std::thread::spawn(move || t.commit())
            }),
            Box::new(|| put(&store, 2, "b")),
        ],
    );
    first.join().unwrap().unwrap();
    let results: Vec<_> = rest.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(matches!(results[0], Ok(Some(_))), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(Error::Conflict(_))),
        "{:?}",
        results[1]
    );
    assert!(matches!(results[2], Ok(Some(_))), "{:?}", results[2]);
    assert_eq!(value(&store, 7).as_deref(), Some("one"));
    assert_eq!(value(&store, 2).as_deref(), Some("b"));
    assert_eq!(store.commit_writes(), 3);
    let report = trail.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.transactions, 4);
}

#[test]
fn a_failed_group_write_fails_the_group_and_the_store_goes_on() {
    let engine = GatedEngine::new();
    let store = Store::open(engine.clone()).unwrap();
    let trail = AuditTrail::attach(&store).unwrap();
    // The first write passes, the group's (the second from now) fails.
    engine.fail_at.store(2, Ordering::SeqCst);
    let (first, rest) =
        behind_a_held_write(&engine, &store, || put(&store, 0, "a"), puts(&store, 1..=3));
    let first = first.join().unwrap().unwrap().unwrap();
    for h in rest {
        assert!(matches!(h.join().unwrap(), Err(Error::Engine(_))));
    }
    for k in 1..=3 {
        assert_eq!(value(&store, k), None, "key {k}");
    }
    // The next commits continue the sequence and the chain from the first.
    let next = put(&store, 9, "c").join().unwrap().unwrap().unwrap();
    assert_eq!(next.seq, first.seq + 1);
    let (_, rest) = behind_a_held_write(
        &engine,
        &store,
        || put(&store, 10, "d"),
        puts(&store, 11..=12),
    );
    for h in rest {
        h.join().unwrap().unwrap().unwrap();
    }
    let report = trail.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.transactions, 5);
}
