//! Several stores on one shared engine (as several servers on one etcd cluster; here the
//! memory engine's shared mode): concurrent transfers from every store keep the total,
//! commit timestamps are globally ordered, each store reads the others' commits, ids never
//! repeat, and the audit trail stays one chain that verifies.

use std::sync::Arc;

use chrono_audit::AuditTrail;
use chrono_storage::{Error, MemoryEngine, Store};

const KS: u32 = 9;

fn read(t: &chrono_storage::Transaction, k: u8) -> i64 {
    let v = t.get(KS, &[k]).unwrap().unwrap();
    i64::from_be_bytes(v.try_into().unwrap())
}

#[test]
fn stores_sharing_an_engine_keep_one_order_one_chain_and_the_total() {
    let engine = MemoryEngine::shared();
    let servers: Vec<(Store, Arc<AuditTrail>)> = (0..3)
        .map(|_| {
            let store = Store::open(Arc::new(engine.clone())).unwrap();
            let trail = AuditTrail::attach(&store).unwrap();
            (store, trail)
        })
        .collect();
    let accounts = 8u8;
    let mut t = servers[0].0.begin();
    for i in 0..accounts {
        t.put(KS, vec![i], 100i64.to_be_bytes().to_vec()).unwrap();
    }
    t.commit().unwrap();

    let threads: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(n, (store, _))| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut x = n as u64 * 7 + 1;
                let mut stamps = Vec::new();
                let mut ids = Vec::new();
                for _ in 0..200 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (from, to) = (((x >> 33) % 8) as u8, ((x >> 40) % 8) as u8);
                    ids.push(store.next_id().unwrap());
                    if from == to {
                        continue;
                    }
                    let mut t = store.begin();
                    let (a, b) = (read(&t, from), read(&t, to));
                    t.put(KS, vec![from], (a - 5).to_be_bytes().to_vec())
                        .unwrap();
                    t.put(KS, vec![to], (b + 5).to_be_bytes().to_vec()).unwrap();
                    match t.commit() {
                        Ok(Some(info)) => stamps.push(info.commit_ts),
                        Ok(None) => {}
                        Err(Error::Conflict(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                (stamps, ids)
            })
        })
        .collect();
    let mut stamps = Vec::new();
    let mut ids = Vec::new();
    for t in threads {
        let (s, i) = t.join().unwrap();
        assert!(!s.is_empty(), "every server committed");
        stamps.extend(s);
        ids.extend(i);
    }
    // No two commits of any servers share a timestamp; no id was handed out twice.
    let n = stamps.len();
    stamps.sort();
    stamps.dedup();
    assert_eq!(
        stamps.len(),
        n,
        "commit timestamps are unique across servers"
    );
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "ids are unique across servers");

    // Every server reads the same total, now and as of every commit.
    for (store, _) in &servers {
        let t = store.begin();
        assert_eq!((0..accounts).map(|k| read(&t, k)).sum::<i64>(), 800);
    }
    for &ts in stamps.iter().step_by(17) {
        let views: Vec<i64> = servers
            .iter()
            .map(|(s, _)| {
                let t = s.begin_read_only(ts);
                (0..accounts).map(|k| read(&t, k)).sum()
            })
            .collect();
        assert!(views.iter().all(|&v| v == 800), "as of {ts}: {views:?}");
        let first: Vec<i64> = {
            let t = servers[0].0.begin_read_only(ts);
            (0..accounts).map(|k| read(&t, k)).collect()
        };
        for (s, _) in &servers[1..] {
            let t = s.begin_read_only(ts);
            let v: Vec<i64> = (0..accounts).map(|k| read(&t, k)).collect();
            assert_eq!(v, first, "servers agree as of {ts}");
        }
    }

    // One chain: every server's trail, brought up to date, verifies the whole log, which
    // holds every commit of every server.
    for (store, trail) in &servers {
        store.sync_head().unwrap();
        let report = trail.verify().unwrap();
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(trail.size(), n_commits(&stamps));
    }
}

/// The seed commit and the transfers.
fn n_commits(transfers: &[u64]) -> u64 {
    transfers.len() as u64 + 1
}
