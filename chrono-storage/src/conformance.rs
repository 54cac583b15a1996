//! What every [`Engine`] must do, as one check each implementation's tests run
//! ([`check_engine`]): the memory and RocksDB engines here, the etcd engine in its crate.
//! It panics at the first difference, naming it.

use crate::engine::{ColumnFamily, Engine, WriteBatch};

fn scan(engine: &dyn Engine, cf: ColumnFamily, from: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = engine.cursor(cf).expect("cursor");
    c.seek(from);
    let mut out = Vec::new();
    while c.valid() {
        out.push((c.key().to_vec(), c.value().to_vec()));
        c.next();
    }
    c.status().expect("a scan ends without an error");
    out
}

/// Runs the checks on an empty `engine`.
pub fn check_engine(engine: &dyn Engine) {
    assert_eq!(engine.get(ColumnFamily::Meta, b"k").unwrap(), None, "empty");

    // A batch lands whole, in every family, the last change to a key winning.
    let mut b = WriteBatch::new();
    for cf in ColumnFamily::ALL {
        b.put(cf, b"k".to_vec(), cf.name().as_bytes().to_vec());
    }
    b.put(ColumnFamily::Latest, b"gone".to_vec(), b"x".to_vec());
    b.delete(ColumnFamily::Latest, b"gone".to_vec());
    b.put(ColumnFamily::Latest, b"twice".to_vec(), b"1".to_vec());
    b.put(ColumnFamily::Latest, b"twice".to_vec(), b"2".to_vec());
    engine.write(b).unwrap();
    for cf in ColumnFamily::ALL {
        assert_eq!(
            engine.get(cf, b"k").unwrap().as_deref(),
            Some(cf.name().as_bytes()),
            "family {}",
            cf.name()
        );
    }
    assert_eq!(engine.get(ColumnFamily::Latest, b"gone").unwrap(), None);
    assert_eq!(
        engine
            .multi_get(
                ColumnFamily::Latest,
                &[b"twice".to_vec(), b"gone".to_vec(), b"k".to_vec()]
            )
            .unwrap(),
        vec![Some(b"2".to_vec()), None, Some(b"latest".to_vec())],
        "several keys at once, in order"
    );
    assert_eq!(
        engine
            .get(ColumnFamily::Latest, b"twice")
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );

    // Keys in byte order, binary keys (0x00, 0xff) included, one family at a time, across
    // more keys than a page of a paged engine.
    let mut b = WriteBatch::new();
    let mut keys: Vec<Vec<u8>> = (0..700u32)
        .map(|i| {
            let mut k = vec![0x01];
            k.extend_from_slice(&i.to_be_bytes());
            k
        })
        .collect();
    keys.push(vec![0x01, 0xff, 0xff, 0xff, 0xff, 0x00]);
    keys.push(vec![0x01, 0x00]);
    for k in &keys {
        b.put(ColumnFamily::Versions, k.clone(), k.clone());
    }
    b.put(ColumnFamily::Audit, vec![0x01], b"other family".to_vec());
    engine.write(b).unwrap();
    keys.sort();
    let all: Vec<(Vec<u8>, Vec<u8>)> = scan(engine, ColumnFamily::Versions, &[0x01])
        .into_iter()
        .filter(|(k, _)| k[0] == 0x01)
        .collect();
    let got: Vec<Vec<u8>> = all.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(got.len(), keys.len(), "versions scanned");
    if let Some(i) = (0..keys.len()).find(|&i| got[i] != keys[i]) {
        panic!("key {i} out of order: {:?}, expected {:?}", got[i], keys[i]);
    }
    assert!(all.iter().all(|(k, v)| k == v), "values with their keys");
    // A seek lands on the first key at or after its target.
    let from = scan(engine, ColumnFamily::Versions, &[0x01, 0, 0, 1, 0]);
    assert_eq!(
        from.first().map(|(k, _)| k.clone()),
        Some(vec![0x01, 0, 0, 1, 0])
    );
    assert_eq!(
        from.len(),
        1 + keys
            .iter()
            .filter(|k| k.as_slice() >= &[0x01, 0, 0, 1, 0][..])
            .count(),
        "from a key to the end (`k` included)"
    );
    let between = scan(engine, ColumnFamily::Versions, &[0x01, 0, 0, 0, 5, 0x80]);
    assert_eq!(
        between.first().map(|(k, _)| k.clone()),
        Some(vec![0x01, 0, 0, 0, 6])
    );
    assert_eq!(
        scan(engine, ColumnFamily::Versions, &[0x02]).len(),
        1,
        "past the 0x01 keys only `k` is left"
    );
    // A cursor seeks again, backwards too.
    let mut c = engine.cursor(ColumnFamily::Versions).unwrap();
    c.seek(&[0x01, 0xff]);
    assert!(c.valid());
    c.seek(&[0x01]);
    assert_eq!(c.key(), &[0x01, 0x00][..]);

    // Deletes take keys out of scans.
    let mut b = WriteBatch::new();
    for k in keys.iter().take(650) {
        b.delete(ColumnFamily::Versions, k.clone());
    }
    engine.write(b).unwrap();
    assert_eq!(
        scan(engine, ColumnFamily::Versions, &[]).len(),
        keys.len() - 650 + 1
    );
    assert_eq!(
        scan(engine, ColumnFamily::Audit, &[]).len(),
        2,
        "other families untouched"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_memory_engine_conforms() {
        super::check_engine(&crate::MemoryEngine::new());
    }

    #[test]
    fn the_rocksdb_engine_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::RocksEngine::open(dir.path(), &crate::RocksOptions::default()).unwrap();
        super::check_engine(&engine);
    }
}
