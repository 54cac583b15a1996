//! Commit observers see each commit's changes and write into the same atomic batch.

use std::sync::Arc;

use chrono_storage::{
    ColumnFamily, Commit, CommitObserver, Error, MemoryEngine, Operation, Result, Store, WriteBatch,
};
use parking_lot::Mutex;

/// (key, operation, before, after)
type SeenChange = (Vec<u8>, Operation, Option<Vec<u8>>, Option<Vec<u8>>);

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, Vec<SeenChange>)>>,
    refuse_key: Option<Vec<u8>>,
}

impl CommitObserver for Recorder {
    fn on_commit(&self, commit: &Commit, batch: &mut WriteBatch) -> Result<()> {
        if let Some(bad) = &self.refuse_key
            && commit.changes.iter().any(|c| &c.key == bad)
        {
            return Err(Error::Observer("refused".into()));
        }
        batch.put(
            ColumnFamily::Audit,
            commit.seq.to_be_bytes().to_vec(),
            commit.commit_ts.to_be_bytes().to_vec(),
        );
        Ok(())
    }

    fn after_commit(&self, commit: &Commit) {
        let changes = commit
            .changes
            .iter()
            .map(|c| (c.key.clone(), c.op, c.before.clone(), c.after.clone()))
            .collect();
        self.seen.lock().push((commit.commit_ts, changes));
    }
}

#[test]
fn observers_see_before_and_after_and_their_entries_commit_with_the_data() {
    let engine = Arc::new(MemoryEngine::new());
    let store = Store::open(engine.clone()).unwrap();
    let rec = Arc::new(Recorder::default());
    store.add_observer(rec.clone());

    let mut t = store.begin();
    t.put(1, b"k".to_vec(), b"v1".to_vec()).unwrap();
    let c1 = t.commit().unwrap().unwrap();
    let mut t = store.begin();
    t.put(1, b"k".to_vec(), b"v2".to_vec()).unwrap();
    t.delete(1, b"missing".to_vec()).unwrap(); // deleting nothing is no change
    let c2 = t.commit().unwrap().unwrap();
    let mut t = store.begin();
    t.delete(1, b"k".to_vec()).unwrap();
    let c3 = t.commit().unwrap().unwrap();

    let seen = rec.seen.lock().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0],
        (
            c1.commit_ts,
            vec![(b"k".to_vec(), Operation::Insert, None, Some(b"v1".to_vec()))]
        )
    );
    assert_eq!(
        seen[1],
        (
            c2.commit_ts,
            vec![(
                b"k".to_vec(),
                Operation::Update,
                Some(b"v1".to_vec()),
                Some(b"v2".to_vec())
            )]
        )
    );
    assert_eq!(
        seen[2],
        (
            c3.commit_ts,
            vec![(b"k".to_vec(), Operation::Delete, Some(b"v2".to_vec()), None)]
        )
    );
    for c in [c1, c2, c3] {
        use chrono_storage::Engine;
        assert_eq!(
            engine
                .get(ColumnFamily::Audit, &c.seq.to_be_bytes())
                .unwrap(),
            Some(c.commit_ts.to_be_bytes().to_vec())
        );
    }
}

#[test]
fn an_observer_error_aborts_the_commit_and_nothing_is_written() {
    let store = Store::in_memory();
    store.add_observer(Arc::new(Recorder {
        refuse_key: Some(b"bad".to_vec()),
        ..Recorder::default()
    }));
    let mut t = store.begin();
    t.put(1, b"good".to_vec(), b"1".to_vec()).unwrap();
    t.put(1, b"bad".to_vec(), b"2".to_vec()).unwrap();
    assert!(matches!(t.commit(), Err(Error::Observer(_))));
    assert_eq!(store.get_at(1, b"good", u64::MAX).unwrap(), None);
    assert_eq!(store.current_seq(), 0);
}

#[test]
fn after_commit_work_runs_only_for_what_committed() {
    let store = Store::in_memory();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let note = |what: &'static str| {
        let ran = ran.clone();
        move || ran.lock().push(what)
    };
    // Rolled back: never runs.
    let mut t = store.begin();
    t.put(1, b"a".to_vec(), b"1".to_vec()).unwrap();
    t.after_commit(note("rolled back"));
    t.rollback();
    // Undone by a rollback to a savepoint taken before it: never runs; work registered
    // before the savepoint still does.
    let mut t = store.begin();
    t.after_commit(note("before the savepoint"));
    let save = t.savepoint();
    t.put(1, b"b".to_vec(), b"1".to_vec()).unwrap();
    t.after_commit(note("after the savepoint"));
    t.rollback_to(save);
    t.put(1, b"c".to_vec(), b"1".to_vec()).unwrap();
    t.commit().unwrap();
    // A conflict: never runs.
    let mut first = store.begin();
    let mut second = store.begin();
    first.put(1, b"d".to_vec(), b"1".to_vec()).unwrap();
    second.put(1, b"d".to_vec(), b"2".to_vec()).unwrap();
    second.after_commit(note("conflicted"));
    first.commit().unwrap();
    assert!(matches!(second.commit(), Err(Error::Conflict(_))));
    // A transaction that wrote nothing still commits (its work runs).
    let mut t = store.begin();
    t.after_commit(note("empty"));
    t.commit().unwrap();
    assert_eq!(*ran.lock(), vec!["before the savepoint", "empty"]);
}
