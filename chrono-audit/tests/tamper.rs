//! Tampering with the stored bytes — through the engine, bypassing every layer above — is
//! caught, each kind with its own failure kind and position.

use std::sync::Arc;

use chrono_audit::{AuditTrail, EntriesDigest, FailureKind};
use chrono_storage::encoding::{self, audit_key};
use chrono_storage::{
    ColumnFamily, DatabaseId, Engine, RocksEngine, RocksOptions, Store, Value, WriteBatch,
};
use proptest::prelude::*;

struct Db {
    store: Store,
    trail: Arc<AuditTrail>,
    engine: Arc<RocksEngine>,
    _dir: tempfile::TempDir,
}

/// A history: rows inserted, updated and deleted over several commits. Every third commit
/// digests its entries as a Merkle tree, as logs written before the one-pass digest did, so
/// every check here runs over a log that mixes both.
fn history(commits: usize) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap());
    let store = Store::open(engine.clone()).unwrap();
    let trail = AuditTrail::attach(&store).unwrap();
    for i in 0..commits {
        trail.write_entries_digest(if i % 3 == 1 {
            EntriesDigest::MerkleTree
        } else {
            EntriesDigest::Sequential
        });
        let mut t = store.begin();
        t.set_principal(Some("alice".into()));
        t.record_statement(&format!("statement {i}"));
        t.label_keyspace(5, "accounts");
        t.put(
            5,
            encoding::encode_key(&[Value::Int((i % 4) as i64)]),
            format!("balance {i}").into_bytes(),
        )
        .unwrap();
        t.put(
            5,
            encoding::encode_key(&[Value::Int(100 + i as i64)]),
            b"x".to_vec(),
        )
        .unwrap();
        if i % 3 == 2 {
            t.delete(5, encoding::encode_key(&[Value::Int(100 + i as i64 - 1)]))
                .unwrap();
        }
        t.commit().unwrap();
    }
    Db {
        store,
        trail,
        engine,
        _dir: dir,
    }
}

fn all(engine: &dyn Engine, cf: ColumnFamily, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = engine.cursor(cf).unwrap();
    c.seek(prefix);
    let mut out = Vec::new();
    while c.valid() && c.key().starts_with(prefix) {
        out.push((c.key().to_vec(), c.value().to_vec()));
        c.next();
    }
    out
}

fn put(engine: &dyn Engine, cf: ColumnFamily, key: Vec<u8>, value: Vec<u8>) {
    let mut b = WriteBatch::new();
    b.put(cf, key, value);
    engine.write(b).unwrap();
}

fn delete(engine: &dyn Engine, cf: ColumnFamily, key: Vec<u8>) {
    let mut b = WriteBatch::new();
    b.delete(cf, key);
    engine.write(b).unwrap();
}

fn failure(db: &Db) -> (FailureKind, String) {
    let f = db
        .trail
        .verify()
        .unwrap()
        .failure
        .expect("tampering is caught");
    (f.kind, f.position)
}

#[test]
fn an_untouched_history_verifies_and_every_version_is_cross_checked() {
    let db = history(12);
    let r = db.trail.verify().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.transactions, 12);
    assert_eq!(r.versions, r.entries);
    assert_eq!(r.entries, 12 * 2 + 4);
    let report = db
        .trail
        .generate_audit_report("accounts", 0, u64::MAX)
        .unwrap();
    assert_eq!(report.len() as u64, r.entries);
    assert!(
        report
            .iter()
            .all(|e| e.principal.as_deref() == Some("alice"))
    );
    // Each record says how its entries are digested.
    let digests: Vec<EntriesDigest> = (1..=12)
        .map(|seq| db.trail.transaction(seq).unwrap().digest)
        .collect();
    assert_eq!(digests[0], EntriesDigest::Sequential);
    assert_eq!(digests[1], EntriesDigest::MerkleTree);
    assert_eq!(
        digests
            .iter()
            .filter(|d| **d == EntriesDigest::MerkleTree)
            .count(),
        4
    );
    // And each verifies on its own too.
    for seq in 1..=12 {
        let tx = db.trail.transaction(seq).unwrap();
        let (_, failure) = db.trail.verify_transaction(&tx.hash).unwrap();
        assert_eq!(failure, None, "transaction {seq}");
    }
}

#[test]
fn a_transaction_read_with_the_other_entries_digest_fails() {
    // Changing a record's digest code (here, dropping it: a one-pass record read as a tree)
    // leaves its root unexplained.
    let db = history(3);
    let key = audit_key(1, &[Value::Int(3)]);
    let raw = db.engine.get(ColumnFamily::Audit, &key).unwrap().unwrap();
    let mut fields = encoding::decode_row(&raw).unwrap();
    assert_eq!(
        fields.len(),
        10,
        "a one-pass record carries its digest code"
    );
    fields.pop();
    put(
        db.engine.as_ref(),
        ColumnFamily::Audit,
        key,
        encoding::encode_row(&fields),
    );
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::MerkleRootMismatch);
    assert!(position.contains("transaction 3"), "{position}");
}

#[test]
fn a_flipped_byte_in_a_stored_row_is_caught() {
    let db = history(6);
    let (k, mut v) = all(
        db.engine.as_ref(),
        ColumnFamily::Versions,
        &encoding::versions_prefix(5),
    )
    .remove(3);
    let last = v.len() - 1;
    v[last] ^= 0x01;
    put(db.engine.as_ref(), ColumnFamily::Versions, k, v);
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::RowMismatch);
    assert!(position.starts_with("entry "), "{position}");
}

/// The current-state rows (what every plain read returns) of key space 5.
fn current(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    all(
        db.engine.as_ref(),
        ColumnFamily::Latest,
        &encoding::latest_prefix(5),
    )
}

#[test]
fn a_flipped_byte_in_a_current_row_is_caught() {
    let db = history(6);
    let (k, mut v) = current(&db).remove(1);
    let last = v.len() - 1;
    v[last] ^= 0x01;
    put(db.engine.as_ref(), ColumnFamily::Latest, k, v);
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::CurrentMismatch);
    assert!(position.starts_with("key space 5, key ("), "{position}");
}

#[test]
fn a_deleted_current_row_is_caught() {
    let db = history(6);
    let (k, _) = current(&db).remove(2);
    delete(db.engine.as_ref(), ColumnFamily::Latest, k);
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::CurrentMissing);
    assert!(position.starts_with("key space 5, key ("), "{position}");
}

#[test]
fn a_current_row_rolled_back_to_an_older_genuine_version_is_caught() {
    let db = history(8);
    // Key 0 was written in commits 0 and 4: put its first version back as the current row.
    let key = encoding::encode_key(&[Value::Int(0)]);
    let versions = all(
        db.engine.as_ref(),
        ColumnFamily::Versions,
        &encoding::version_key_prefix(5, &key),
    );
    assert!(versions.len() >= 2);
    let (old_key, old_value) = versions.last().unwrap().clone();
    let (_, _, old_ts) = encoding::parse_version_key(&old_key).unwrap();
    let (op, row) = encoding::decode_version_value(&old_value).unwrap();
    put(
        db.engine.as_ref(),
        ColumnFamily::Latest,
        encoding::latest_key(5, &key),
        encoding::encode_latest_value(old_ts, op, row),
    );
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::CurrentMismatch);
    assert!(position.contains("rolled back"), "{position}");
}

#[test]
fn a_forged_current_row_for_a_key_that_never_existed_is_caught() {
    let db = history(5);
    put(
        db.engine.as_ref(),
        ColumnFamily::Latest,
        encoding::latest_key(5, &encoding::encode_key(&[Value::Int(999)])),
        encoding::encode_latest_value(db.store.current_ts(), 1, b"forged"),
    );
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::CurrentOrphan);
    assert!(position.contains("(999)"), "{position}");
}

#[test]
fn a_flipped_byte_in_an_audit_entry_is_caught() {
    let db = history(6);
    let (k, mut v) = all(db.engine.as_ref(), ColumnFamily::Audit, &audit_key(2, &[])).remove(4);
    let n = v.len();
    v[n - 3] ^= 0x80; // inside the statement hash
    put(db.engine.as_ref(), ColumnFamily::Audit, k, v);
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::MerkleRootMismatch);
    assert!(position.contains("transaction 3"), "{position}");
}

#[test]
fn deleting_the_tail_of_the_chain_is_caught() {
    let db = history(8);
    for (k, _) in all(db.engine.as_ref(), ColumnFamily::Audit, &audit_key(1, &[]))
        .into_iter()
        .skip(6)
    {
        delete(db.engine.as_ref(), ColumnFamily::Audit, k);
    }
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::HeadMismatch);
    assert!(position.contains("records 8 transactions"), "{position}");
}

#[test]
fn swapping_two_entries_is_caught() {
    let db = history(6);
    let entries = all(db.engine.as_ref(), ColumnFamily::Audit, &audit_key(2, &[]));
    let (a, b) = (entries[2].clone(), entries[3].clone());
    put(
        db.engine.as_ref(),
        ColumnFamily::Audit,
        a.0.clone(),
        b.1.clone(),
    );
    put(db.engine.as_ref(), ColumnFamily::Audit, b.0, a.1);
    let (kind, position) = failure(&db);
    assert_eq!(kind, FailureKind::RecordOutOfPlace);
    assert!(position.starts_with("entry 3"), "{position}");
}

#[test]
fn a_rewritten_history_with_every_hash_recomputed_is_caught_only_by_a_saved_checkpoint() {
    // The honest database, and a checkpoint saved outside it after 5 commits.
    let dir = tempfile::tempdir().unwrap();
    let build = |path: &std::path::Path, tamper: bool, identity: Option<DatabaseId>| {
        let engine = Arc::new(RocksEngine::open(path, &RocksOptions::default()).unwrap());
        if let Some(id) = identity {
            // The attacker keeps the database's identity (its metadata key).
            put(
                engine.as_ref(),
                ColumnFamily::Meta,
                encoding::meta_key("database_id"),
                id.0.to_vec(),
            );
        }
        let store = Store::open(engine).unwrap();
        let trail = AuditTrail::attach(&store).unwrap();
        let mut checkpoint = None;
        for i in 0..8 {
            let mut t = store.begin();
            let value = if tamper && i == 2 {
                "rewritten".to_string()
            } else {
                format!("v{i}")
            };
            t.put(1, vec![i as u8], value.into_bytes()).unwrap();
            t.commit().unwrap();
            if i == 4 {
                checkpoint = Some(trail.checkpoint());
            }
        }
        (trail, checkpoint.unwrap())
    };
    let (honest, saved) = build(&dir.path().join("honest"), false, None);
    assert!(honest.verify_against(&saved).unwrap().is_ok());
    assert_eq!(saved.database, Some(honest.database()));
    // The attacker replays history with one row changed: every hash is recomputed, so the
    // database verifies on its own…
    let (forged, _) = build(&dir.path().join("forged"), true, Some(honest.database()));
    assert_eq!(forged.database(), honest.database());
    assert!(forged.verify().unwrap().is_ok());
    // …but not against the checkpoint saved before.
    let f = forged
        .verify_against(&saved)
        .unwrap()
        .failure
        .expect("caught");
    assert_eq!(f.kind, FailureKind::CheckpointMismatch);
    assert!(f.position.contains("rewritten"), "{}", f.position);
    // A database built the same way but not claiming the identity is another database: its
    // log is not measured against this checkpoint at all.
    let (other, _) = build(&dir.path().join("other"), false, None);
    assert_ne!(other.database(), honest.database());
    let f = other
        .verify_against(&saved)
        .unwrap()
        .failure
        .expect("another database");
    assert_eq!(f.kind, FailureKind::CheckpointMismatch);
    assert!(f.position.contains("is of database"), "{}", f.position);
}

#[test]
fn a_database_keeps_its_identity_and_checkpoints_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let engine = Arc::new(RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap());
        Store::open(engine).unwrap()
    };
    let first = open().database_id();
    assert_eq!(open().database_id(), first, "made once, kept");
    let store = open();
    let trail = AuditTrail::attach(&store).unwrap();
    let body = trail.checkpoint().body();
    assert!(
        body.starts_with(&format!("chronodb audit log {first}\n")),
        "{body}"
    );
    let parsed = chrono_audit::trail::Checkpoint::parse_body(&body).unwrap();
    assert_eq!(parsed, trail.checkpoint());
    // A checkpoint written before identities still reads (naming no database), and a
    // damaged identity is refused.
    let legacy = body.replacen(&format!(" {first}"), "", 1);
    assert_eq!(
        chrono_audit::trail::Checkpoint::parse_body(&legacy)
            .unwrap()
            .database,
        None
    );
    let damaged = body.replacen(&first.to_string()[..4], "zzzz", 1);
    assert!(chrono_audit::trail::Checkpoint::parse_body(&damaged).is_err());
}

#[test]
fn a_forged_inclusion_proof_fails_and_a_true_one_verifies() {
    let db = history(9);
    let proof = db.trail.inclusion_proof(4, None).unwrap();
    assert!(proof.verify());
    assert_eq!(proof.path.len(), 4); // ⌈log2 9⌉
    let mut forged = proof.clone();
    forged.path[1][7] ^= 1;
    assert!(!forged.verify());
    let mut other = proof.clone();
    other.tx_hash = db.trail.transaction(5).unwrap().hash;
    assert!(!other.verify());
    // Consistency between an old and the current size.
    let old_root = db.trail.root_at(5).unwrap();
    let c = db.trail.consistency_proof(5, 9).unwrap();
    assert!(chrono_audit::merkle::verify_consistency(
        5,
        9,
        &old_root,
        &db.trail.checkpoint().root,
        &c
    ));
    // A transaction found by hash is recomputed from its rows.
    let tx = db.trail.transaction(7).unwrap();
    let (found, failure) = db.trail.verify_transaction(&tx.hash).unwrap();
    assert_eq!(found, tx);
    assert_eq!(failure, None);
    assert_eq!(db.store.current_seq(), 9);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single-byte change anywhere in the audit column family fails verification.
    #[test]
    fn any_single_byte_change_in_the_audit_family_is_caught(commits in 1usize..6, pick in any::<u64>(), bit in 0u8..8) {
        let db = history(commits);
        let records = all(db.engine.as_ref(), ColumnFamily::Audit, &[]);
        let (k, mut v) = records[(pick % records.len() as u64) as usize].clone();
        if v.is_empty() {
            // An index key with no value: change a byte of the key instead.
            let mut k2 = k.clone();
            let i = 2 + (pick >> 16) as usize % (k2.len() - 2);
            k2[i] ^= 1 << bit;
            delete(db.engine.as_ref(), ColumnFamily::Audit, k);
            put(db.engine.as_ref(), ColumnFamily::Audit, k2, v);
        } else {
            let i = (pick >> 16) as usize % v.len();
            v[i] ^= 1 << bit;
            put(db.engine.as_ref(), ColumnFamily::Audit, k, v);
        }
        let r = db.trail.verify();
        prop_assert!(r.map(|r| !r.is_ok()).unwrap_or(true));
    }

    /// Any single-byte change in a current-state row or its key, in a version, or the
    /// removal of either, fails verification: what plain reads return is covered too.
    #[test]
    fn any_change_to_the_row_families_is_caught(
        commits in 1usize..6,
        versions_family in any::<bool>(),
        pick in any::<u64>(),
        bit in 0u8..8,
        remove in any::<bool>(),
        in_key in any::<bool>(),
    ) {
        let db = history(commits);
        let cf = if versions_family { ColumnFamily::Versions } else { ColumnFamily::Latest };
        let records = all(db.engine.as_ref(), cf, &[]);
        let (k, mut v) = records[(pick % records.len() as u64) as usize].clone();
        if remove {
            delete(db.engine.as_ref(), cf, k);
        } else if in_key {
            let mut k2 = k.clone();
            let i = (pick >> 16) as usize % k2.len();
            k2[i] ^= 1 << bit;
            delete(db.engine.as_ref(), cf, k);
            put(db.engine.as_ref(), cf, k2, v);
        } else {
            let i = (pick >> 16) as usize % v.len();
            v[i] ^= 1 << bit;
            put(db.engine.as_ref(), cf, k, v);
        }
        let r = db.trail.verify();
        prop_assert!(r.map(|r| !r.is_ok()).unwrap_or(true));
    }
}

/// A signing key (hex) and a checkpoint of a small history signed with it, made once.
fn signed_note() -> &'static (String, String) {
    static NOTE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    NOTE.get_or_init(|| {
        let key_hex = chrono_audit::signing::generate_key_hex().unwrap();
        let key = chrono_audit::signing::signing_key(&key_hex).unwrap();
        let db = history(3);
        (
            key_hex,
            chrono_audit::signing::sign(&db.trail.checkpoint(), &key),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Checkpoint texts (signed notes and bare bodies), arbitrary or a genuine one with a
    /// character changed, are an error or a checkpoint — never a panic; a changed signed
    /// note opens with the key only as the checkpoint that was signed (a change outside
    /// what the signature covers, such as trailing whitespace, changes nothing it says).
    #[test]
    fn checkpoint_texts_are_parsed_as_hostile_input(
        text in "\\PC{0,200}",
        at in any::<usize>(),
        with in any::<char>(),
    ) {
        let _ = chrono_audit::trail::Checkpoint::parse_body(&text);
        let (key_hex, note) = signed_note();
        let public = chrono_audit::signing::signing_key(key_hex).unwrap().verifying_key();
        let _ = chrono_audit::signing::open(&text, &public);
        let note = note.clone();
        let signed = chrono_audit::signing::open(&note, &public).unwrap();
        let mut chars: Vec<char> = note.chars().collect();
        let i = at % chars.len();
        if chars[i] != with {
            chars[i] = with;
            let changed: String = chars.into_iter().collect();
            if let Ok(opened) = chrono_audit::signing::open(&changed, &public) {
                prop_assert_eq!(opened, signed, "{}", changed);
            }
        }
    }
}
