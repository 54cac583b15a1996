//! A fault-injecting engine: one read, cursor or write fails at a chosen point of a run of
//! commits. Whatever failed, the audit trail has entries exactly for the data that was
//! written (the store writes both in one batch), verification passes, and a store reopened
//! on the same engine recovers the committed state and keeps committing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono_audit::AuditTrail;
use chrono_storage::{
    ColumnFamily, Cursor, Engine, Error, KeyRange, MemoryEngine, Result, Store, WriteBatch,
};

const KS: u32 = 3;

/// Fails the operation that brings `countdown` to zero (once); the others pass through.
struct FaultyEngine {
    inner: MemoryEngine,
    countdown: AtomicI64,
}

impl FaultyEngine {
    fn tick(&self, what: &str) -> Result<()> {
        if self.countdown.fetch_sub(1, Ordering::SeqCst) == 0 {
            return Err(Error::Engine(format!("injected fault in {what}")));
        }
        Ok(())
    }
}

impl Engine for FaultyEngine {
    fn set_gc_horizons(&self, horizons: std::sync::Arc<chrono_storage::Horizons>) {
        self.inner.set_gc_horizons(horizons);
    }

    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tick("get")?;
        self.inner.get(cf, key)
    }

    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>> {
        self.tick("cursor")?;
        self.inner.cursor(cf)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.tick("write")?;
        self.inner.write(batch)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn compact(&self) -> Result<()> {
        self.inner.compact()
    }
}

fn key(i: u64) -> Vec<u8> {
    chrono_storage::encoding::encode_key(&[chrono_storage::Value::Int(i as i64)])
}

/// Runs 12 commits (inserts, updates, deletes) with a fault at operation `fault_at`;
/// returns the engine and the state the successful commits left.
fn run_with_fault(fault_at: i64) -> (MemoryEngine, BTreeMap<Vec<u8>, Vec<u8>>, usize) {
    let inner = MemoryEngine::new();
    let engine = Arc::new(FaultyEngine {
        inner: inner.clone(),
        countdown: AtomicI64::new(i64::MAX),
    });
    let store = Store::open(engine.clone()).unwrap();
    let trail = AuditTrail::attach(&store).unwrap();
    engine.countdown.store(fault_at, Ordering::SeqCst);
    let mut model = BTreeMap::new();
    let mut failures = 0;
    for i in 0..12u64 {
        let mut t = store.begin();
        t.label_keyspace(KS, "t");
        let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = vec![
            (key(i % 5), Some(format!("v{i}").into_bytes())),
            (key(10 + i), Some(b"x".to_vec())),
        ];
        if i % 4 == 3 {
            writes.push((key(10 + i - 1), None));
        }
        let mut ok = true;
        for (k, v) in &writes {
            let r = match v {
                Some(v) => t.put(KS, k.clone(), v.clone()),
                None => t.delete(KS, k.clone()),
            };
            ok &= r.is_ok();
        }
        match ok.then(|| t.commit()) {
            Some(Ok(_)) => {
                for (k, v) in writes {
                    match v {
                        Some(v) => model.insert(k, v),
                        None => model.remove(&k),
                    };
                }
            }
            _ => failures += 1,
        }
    }
    // The running store's own trail (it went on after the fault) verifies too.
    engine.countdown.store(i64::MAX, Ordering::SeqCst);
    let report = trail.verify().unwrap();
    assert!(
        report.is_ok(),
        "fault at {fault_at}, in process: {report:?}"
    );
    assert_eq!(current(&store), model, "fault at {fault_at}, in process");
    (inner, model, failures)
}

fn current(store: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store
        .begin()
        .scan(KS, KeyRange::All)
        .unwrap()
        .collect::<Result<_>>()
        .unwrap()
}

#[test]
fn a_fault_anywhere_leaves_audit_entries_exactly_for_the_data_written() {
    let mut faults_hit = 0;
    for fault_at in 0..45 {
        let (inner, model, failures) = run_with_fault(fault_at);
        faults_hit += usize::from(failures > 0);
        // Reopened on the same bytes: the committed state, and a trail that verifies with
        // one entry per stored version.
        let store = Store::open(Arc::new(inner)).unwrap();
        let trail = AuditTrail::attach(&store).unwrap();
        let report = trail.verify().unwrap();
        assert!(report.is_ok(), "fault at {fault_at}: {report:?}");
        assert_eq!(report.entries, report.versions, "fault at {fault_at}");
        assert_eq!(current(&store), model, "fault at {fault_at}");
        // And it goes on committing, audited.
        let mut t = store.begin();
        t.put(KS, key(99), b"after".to_vec()).unwrap();
        t.commit().unwrap();
        let report = trail.verify().unwrap();
        assert!(
            report.is_ok(),
            "fault at {fault_at}, after recovery: {report:?}"
        );
    }
    assert!(
        faults_hit >= 35,
        "the faults hit commits ({faults_hit} of 45 runs)"
    );
}
