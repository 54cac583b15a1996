//! The audit trail: records, the commit observer that writes them, verification, proofs
//! and checkpoints. Layout in the `audit` column family (keys from
//! `chrono_storage::encoding::audit_key`):
//!
//! ```text
//! section 1  [tx seq]                     → tx record (commit ts, entries, prev hash, root, hash)
//! section 2  [entry seq]                  → entry record
//! section 3  [level, index]               → complete subtree hash of the log tree
//! section 4  []                           → head: transactions, entries, last hash
//! section 5  [table, commit ts, tx seq]   → ()          report index by (table, time), one
//!                                                       key per table a transaction wrote
//! section 6  [tx hash]                    → tx seq      lookup by hash
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono_storage::encoding::{self, audit_key, decode_row, encode_row};
use chrono_storage::{
    ColumnFamily, Commit, CommitObserver, DatabaseId, Engine, Operation, Store, Value, WriteBatch,
};
use parking_lot::Mutex;
use sha3::{Digest, Sha3_256};

use crate::error::{Error, Result};
use crate::merkle::{self, Frontier, Hash, Nodes};

const TX: u8 = 1;
const ENTRY: u8 = 2;
const NODE: u8 = 3;
const HEAD: u8 = 4;
const BY_TABLE: u8 = 5;
const BY_HASH: u8 = 6;

const CHAIN_TAG: &[u8; 8] = b"chrono/c";
/// The stored code of [`EntriesDigest::Sequential`] (a record without one is a tree).
const DIGEST_SEQUENTIAL: i64 = 2;
const ENTRIES_TAG: &[u8; 8] = b"chrono/e";

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corruption(what.into())
}

fn sha3(data: &[u8]) -> Hash {
    Sha3_256::digest(data).into()
}

/// `h_n = H("chrono/c" ‖ n ‖ h_{n-1} ‖ root ‖ commit_ts)`: 88 bytes, one Keccak block.
pub fn chain_hash(seq: u64, prev: &Hash, root: &Hash, commit_ts: u64) -> Hash {
    let mut h = Sha3_256::new();
    h.update(CHAIN_TAG);
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(root);
    h.update(commit_ts.to_be_bytes());
    h.finalize().into()
}

fn hash_value(h: Option<&Hash>) -> Value {
    h.map(|h| Value::Blob(h.to_vec())).unwrap_or(Value::Null)
}

fn int(v: &Value) -> Result<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(corrupt("expected a number")),
    }
}

fn hash_of(v: &Value) -> Result<Option<Hash>> {
    match v {
        Value::Null => Ok(None),
        Value::Blob(b) if b.len() == 32 => {
            let mut h = [0u8; 32];
            h.copy_from_slice(b);
            Ok(Some(h))
        }
        _ => Err(corrupt("expected a hash")),
    }
}

fn need_hash(v: &Value) -> Result<Hash> {
    hash_of(v)?.ok_or_else(|| corrupt("missing hash"))
}

/// One row change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    /// Entry sequence number, from 1, with no gaps.
    pub seq: u64,
    /// The transaction's sequence number.
    pub tx: u64,
    /// Commit timestamp (microseconds).
    pub commit_ts: u64,
    /// The table (or `table.index`, or `catalog`).
    pub table: String,
    /// The key space.
    pub keyspace: u32,
    /// What happened.
    pub op: Operation,
    /// The row's stored key (its encoded primary key).
    pub key: Vec<u8>,
    /// SHA3-256 of the row image before (`None` for an insert).
    pub before: Option<Hash>,
    /// SHA3-256 of the row image after (`None` for a delete).
    pub after: Option<Hash>,
    /// Who committed it, when known (kept once per transaction, in its header).
    pub principal: Option<String>,
    /// SHA3-256 of the transaction's statements (kept once per transaction).
    pub statements: Hash,
}

fn op_code(op: Operation) -> i64 {
    match op {
        Operation::Insert => 1,
        Operation::Update => 2,
        Operation::Delete => 3,
    }
}

fn op_of(code: u64) -> Result<Operation> {
    Ok(match code {
        1 => Operation::Insert,
        2 => Operation::Update,
        3 => Operation::Delete,
        other => return Err(corrupt(format!("unknown operation {other}"))),
    })
}

impl EntryRecord {
    /// The stored record. Principal and statements are the transaction's, stored (and
    /// hashed) once in its header, so an entry usually fits one Keccak block.
    fn encode(&self) -> Vec<u8> {
        encode_row(&[
            Value::Int(self.seq as i64),
            Value::Int(self.tx as i64),
            Value::Int(self.commit_ts as i64),
            Value::Text(self.table.clone()),
            Value::Int(i64::from(self.keyspace)),
            Value::Int(op_code(self.op)),
            Value::Blob(self.key.clone()),
            hash_value(self.before.as_ref()),
            hash_value(self.after.as_ref()),
        ])
    }

    /// Decodes a stored record; `principal` and `statements` come from the transaction.
    fn decode(raw: &[u8]) -> Result<EntryRecord> {
        let v = decode_row(raw)?;
        if v.len() != 9 {
            return Err(corrupt("entry record of the wrong width"));
        }
        let text = |x: &Value| match x {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(corrupt("expected text")),
        };
        Ok(EntryRecord {
            seq: int(&v[0])?,
            tx: int(&v[1])?,
            commit_ts: int(&v[2])?,
            table: text(&v[3])?,
            keyspace: u32::try_from(int(&v[4])?).map_err(|_| corrupt("key space"))?,
            op: op_of(int(&v[5])?)?,
            key: match &v[6] {
                Value::Blob(b) => b.clone(),
                _ => return Err(corrupt("expected a key")),
            },
            before: hash_of(&v[7])?,
            after: hash_of(&v[8])?,
            principal: None,
            statements: [0; 32],
        })
    }

    /// The entry's leaf hash in a transaction digested as a tree
    /// ([`EntriesDigest::MerkleTree`]): `H(0x00 ‖ record)`.
    pub fn hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }
}

/// One committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRecord {
    /// Sequence number, from 1, with no gaps.
    pub seq: u64,
    /// Commit timestamp (microseconds).
    pub commit_ts: u64,
    /// Its first entry's sequence number.
    pub first_entry: u64,
    /// How many entries it has.
    pub entries: u64,
    /// The previous transaction's hash (zeros for the first).
    pub prev: Hash,
    /// The digest of its entries (see [`EntriesDigest`]).
    pub root: Hash,
    /// Its chain hash `h_n`.
    pub hash: Hash,
    /// Who committed it, when known.
    pub principal: Option<String>,
    /// SHA3-256 of its statements.
    pub statements: Hash,
    /// How `root` is computed from the entries.
    pub digest: EntriesDigest,
}

/// How a transaction's `root` covers its header (principal, statements hash) and entries.
///
/// Transactions are written with [`EntriesDigest::Sequential`]; records written before it
/// existed are [`EntriesDigest::MerkleTree`] (a record without the field) and verify as they
/// always did. Inclusion proofs are of transactions in the log tree; no proof points inside
/// a transaction, so one SHA3-256 pass over the entries serves where a tree of leaf and node
/// hashes — two Keccak inputs per entry — did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntriesDigest {
    /// An RFC 6962 tree whose leaves are the header, then each entry record.
    MerkleTree,
    /// `SHA3-256("chrono/e" ‖ len ‖ header ‖ len ‖ entry_1 ‖ … ‖ len ‖ entry_n)`, each
    /// length 4 bytes big-endian: one SHA3 input per transaction, about 0.75 Keccak blocks
    /// per entry.
    Sequential,
}

/// A transaction's entries digest, fed its header, then record by record. One lives on the
/// stack per commit or verified transaction, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum EntriesHasher {
    Tree(Frontier),
    Sequential(Sha3_256),
}

impl EntriesHasher {
    fn new(digest: EntriesDigest, header: &[u8]) -> EntriesHasher {
        match digest {
            EntriesDigest::MerkleTree => {
                let mut f = Frontier::default();
                f.append(merkle::leaf_hash(header));
                EntriesHasher::Tree(f)
            }
            EntriesDigest::Sequential => {
                let mut h = Sha3_256::new();
                h.update(ENTRIES_TAG);
                let mut s = EntriesHasher::Sequential(h);
                s.put(header);
                s
            }
        }
    }

    fn put(&mut self, record: &[u8]) {
        match self {
            EntriesHasher::Tree(f) => {
                f.append(merkle::leaf_hash(record));
            }
            EntriesHasher::Sequential(h) => {
                // Records are bounded far below 4 GiB (a key and two hashes); the length
                // keeps one record's end from passing for the next one's start.
                h.update((record.len() as u32).to_be_bytes());
                h.update(record);
            }
        }
    }

    fn finish(self) -> Hash {
        match self {
            EntriesHasher::Tree(f) => f.root(),
            EntriesHasher::Sequential(h) => h.finalize().into(),
        }
    }
}

impl TxRecord {
    fn encode(&self) -> Vec<u8> {
        let mut fields = vec![
            Value::Int(self.seq as i64),
            Value::Int(self.commit_ts as i64),
            Value::Int(self.first_entry as i64),
            Value::Int(self.entries as i64),
            Value::Blob(self.prev.to_vec()),
            Value::Blob(self.root.to_vec()),
            Value::Blob(self.hash.to_vec()),
            self.principal
                .clone()
                .map(Value::Text)
                .unwrap_or(Value::Null),
            Value::Blob(self.statements.to_vec()),
        ];
        if self.digest == EntriesDigest::Sequential {
            fields.push(Value::Int(DIGEST_SEQUENTIAL));
        }
        encode_row(&fields)
    }

    /// What the entries digest covers before the entries: the principal and statements,
    /// so the chain covers them too.
    fn header(&self) -> Vec<u8> {
        encode_row(&[
            Value::Text("transaction".into()),
            self.principal
                .clone()
                .map(Value::Text)
                .unwrap_or(Value::Null),
            Value::Blob(self.statements.to_vec()),
        ])
    }

    fn decode(raw: &[u8]) -> Result<TxRecord> {
        let v = decode_row(raw)?;
        let digest = match v.get(9) {
            None if v.len() == 9 => EntriesDigest::MerkleTree,
            Some(Value::Int(DIGEST_SEQUENTIAL)) if v.len() == 10 => EntriesDigest::Sequential,
            _ => return Err(corrupt("transaction record of the wrong width or digest")),
        };
        Ok(TxRecord {
            seq: int(&v[0])?,
            commit_ts: int(&v[1])?,
            first_entry: int(&v[2])?,
            entries: int(&v[3])?,
            prev: need_hash(&v[4])?,
            root: need_hash(&v[5])?,
            hash: need_hash(&v[6])?,
            principal: match &v[7] {
                Value::Null => None,
                Value::Text(s) => Some(s.clone()),
                _ => return Err(corrupt("expected a principal")),
            },
            statements: need_hash(&v[8])?,
            digest,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    txs: u64,
    entries: u64,
    last: Hash,
    last_ts: u64,
    frontier: Frontier,
}

fn encode_head(s: &State) -> Vec<u8> {
    encode_row(&[
        Value::Int(s.txs as i64),
        Value::Int(s.entries as i64),
        Value::Blob(s.last.to_vec()),
        Value::Int(s.last_ts as i64),
    ])
}

/// Complete subtree hashes stored in the audit column family.
struct StoredNodes<'a>(&'a dyn Engine);

impl Nodes for StoredNodes<'_> {
    type Error = Error;

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let key = audit_key(
            NODE,
            &[Value::Int(i64::from(level)), Value::Int(index as i64)],
        );
        match self.0.get(ColumnFamily::Audit, &key)? {
            Some(raw) if raw.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&raw);
                Ok(h)
            }
            Some(_) => Err(corrupt(format!(
                "tree node ({level}, {index}) is malformed"
            ))),
            None => Err(Error::NotFound(format!(
                "tree node ({level}, {index}) is missing"
            ))),
        }
    }
}

/// A signed-able statement of the log's size and root at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The database whose log it is (its identity, made when the database was created);
    /// `None` only in checkpoints written before databases had identities.
    pub database: Option<DatabaseId>,
    /// Transactions in the log.
    pub size: u64,
    /// The log tree's root.
    pub root: Hash,
    /// The last transaction's commit timestamp (microseconds).
    pub timestamp: u64,
}

const CHECKPOINT_ORIGIN: &str = "chronodb audit log";

impl Checkpoint {
    /// The checkpoint body (C2SP tlog-checkpoint-like): origin (naming the database), size,
    /// base64 root, time.
    pub fn body(&self) -> String {
        let origin = match &self.database {
            Some(id) => format!("{CHECKPOINT_ORIGIN} {id}"),
            None => CHECKPOINT_ORIGIN.to_string(),
        };
        format!(
            "{origin}\n{}\n{}\n{}\n",
            self.size,
            base64::engine::general_purpose::STANDARD.encode(self.root),
            self.timestamp
        )
    }

    /// Parses a checkpoint body (the text up to an empty line).
    pub fn parse_body(text: &str) -> Result<Checkpoint> {
        let mut lines = text.lines();
        let bad = |what: &str| Error::InvalidInput(format!("malformed checkpoint: {what}"));
        let origin = lines
            .next()
            .and_then(|l| l.strip_prefix(CHECKPOINT_ORIGIN))
            .ok_or_else(|| bad("unknown origin line"))?;
        let database = match origin {
            "" => None,
            named => Some(
                named
                    .strip_prefix(' ')
                    .and_then(DatabaseId::parse_hex)
                    .ok_or_else(|| bad("the origin line's database identity"))?,
            ),
        };
        let size = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("size"))?;
        let root_b = lines
            .next()
            .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| bad("root"))?;
        let timestamp = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("timestamp"))?;
        let mut root = [0u8; 32];
        root.copy_from_slice(&root_b);
        Ok(Checkpoint {
            database,
            size,
            root,
            timestamp,
        })
    }
}

/// An inclusion proof of one transaction in the log of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The transaction's index (its sequence number − 1).
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The transaction's chain hash (the leaf's data).
    pub tx_hash: Hash,
    /// The audit path.
    pub path: Vec<Hash>,
    /// The root it proves against.
    pub root: Hash,
}

impl InclusionProof {
    /// Checks the proof with hashes alone.
    pub fn verify(&self) -> bool {
        merkle::verify_inclusion(
            self.index,
            self.size,
            &merkle::leaf_hash(&self.tx_hash),
            &self.path,
            &self.root,
        )
    }
}

/// What broke, when verification fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An audit record does not decode.
    RecordCorrupt,
    /// A record is stored under another sequence number than it carries (reordered).
    RecordOutOfPlace,
    /// A transaction or entry the log refers to is not there (deleted, truncated).
    RecordMissing,
    /// An entry no transaction refers to.
    EntryOrphan,
    /// A transaction's entries do not hash to its root (an entry was altered); the name
    /// is from when every root was a Merkle root.
    MerkleRootMismatch,
    /// A transaction's chain hash is wrong, or does not link to the previous one.
    ChainBroken,
    /// A stored log tree node differs from the one the transactions produce.
    TreeNodeMismatch,
    /// The head disagrees with the transactions found (the tail was cut).
    HeadMismatch,
    /// A stored row version does not match its entry's after-image hash.
    RowMismatch,
    /// An entry's row version is missing from the data.
    RowMissing,
    /// A row version has no audit entry.
    VersionUnaudited,
    /// The log does not extend the saved checkpoint (history rewritten or truncated).
    CheckpointMismatch,
    /// The (table, time) or hash index disagrees with the records.
    IndexMismatch,
    /// A current-state row (what plain reads return) is not the newest version of its key:
    /// edited, or rolled back to an older version.
    CurrentMismatch,
    /// A key with versions has no current-state row (it was deleted behind the database).
    CurrentMissing,
    /// A current-state row has no version behind it.
    CurrentOrphan,
}

/// The first failure found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// What broke.
    pub kind: FailureKind,
    /// Where: the transaction or entry sequence number, key space and key.
    pub position: String,
}

/// The result of [`AuditTrail::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Transactions checked.
    pub transactions: u64,
    /// Entries checked.
    pub entries: u64,
    /// Row versions cross-checked.
    pub versions: u64,
    /// Entries whose row versions were collected by retention (older than the GC horizon,
    /// not needed by any read the horizon allows): their cross-check is skipped.
    pub collected: u64,
    /// Time taken.
    pub elapsed: Duration,
    /// The first failure, if any.
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// The audit trail of one store.
pub struct AuditTrail {
    // The engine, not the store: the store holds this trail as an observer, and a
    // reference back would keep both (and the open database) alive forever.
    engine: Arc<dyn Engine>,
    /// The database's identity, which its checkpoints carry.
    database: DatabaseId,
    state: Mutex<State>,
    /// The head after the last commit built but not yet written, with that commit's
    /// sequence number.
    pending: Mutex<Option<(u64, State)>>,
    /// Another server committed and the stored head could not be read yet: the next
    /// commit reads it first (or fails), so the chain never forks.
    stale: std::sync::atomic::AtomicBool,
    /// Set by tests only: the transactions it writes digest their entries as a tree.
    tree_digest: std::sync::atomic::AtomicBool,
    /// Records checked so far by the verification running now: its entries, then the row
    /// versions they cover (for its progress).
    verified: std::sync::atomic::AtomicU64,
}

impl AuditTrail {
    /// Loads the trail's head and registers it as the store's commit observer. Attach it
    /// before the store's first commit; every commit from then on is audited.
    pub fn attach(store: &Store) -> Result<Arc<AuditTrail>> {
        let state = load_state(store.engine().as_ref())?;
        let trail = Arc::new(AuditTrail {
            database: store.database_id(),
            engine: store.engine().clone(),
            state: Mutex::new(state),
            pending: Mutex::new(None),
            stale: std::sync::atomic::AtomicBool::new(false),
            tree_digest: std::sync::atomic::AtomicBool::new(false),
            verified: std::sync::atomic::AtomicU64::new(0),
        });
        store.add_observer(trail.clone());
        Ok(trail)
    }

    fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// Writes the transactions that follow with `digest` instead of
    /// [`EntriesDigest::Sequential`]: what tests use to build a log as older versions wrote
    /// it. A log may mix both; each record says which it has.
    #[doc(hidden)]
    pub fn write_entries_digest(&self, digest: EntriesDigest) {
        self.tree_digest.store(
            digest == EntriesDigest::MerkleTree,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// How far the verification running now is: (records checked, records to check) —
    /// each entry once in the chain, then once against its row version. What a progress
    /// line shows.
    pub fn verify_progress(&self) -> (u64, u64) {
        let total = self.state.lock().entries.saturating_mul(2);
        (
            self.verified.load(std::sync::atomic::Ordering::Relaxed),
            total,
        )
    }

    /// Transactions in the log.
    pub fn size(&self) -> u64 {
        self.state.lock().txs
    }

    /// The identity of the database whose log this is.
    pub fn database(&self) -> DatabaseId {
        self.database
    }

    /// The current checkpoint (unsigned).
    pub fn checkpoint(&self) -> Checkpoint {
        let s = self.state.lock();
        Checkpoint {
            database: Some(self.database),
            size: s.txs,
            root: s.frontier.root(),
            timestamp: s.last_ts,
        }
    }

    /// A transaction record by sequence number.
    pub fn transaction(&self, seq: u64) -> Result<TxRecord> {
        let raw = self
            .engine()
            .get(
                ColumnFamily::Audit,
                &audit_key(TX, &[Value::Int(seq as i64)]),
            )?
            .ok_or_else(|| Error::NotFound(format!("no audited transaction {seq}")))?;
        TxRecord::decode(&raw)
    }

    /// An entry record by sequence number, with its transaction's principal and statements.
    pub fn entry(&self, seq: u64) -> Result<EntryRecord> {
        let mut e = self.stored_entry(seq)?;
        let tx = self.transaction(e.tx)?;
        e.principal = tx.principal;
        e.statements = tx.statements;
        Ok(e)
    }

    fn stored_entry(&self, seq: u64) -> Result<EntryRecord> {
        let raw = self
            .engine()
            .get(
                ColumnFamily::Audit,
                &audit_key(ENTRY, &[Value::Int(seq as i64)]),
            )?
            .ok_or_else(|| Error::NotFound(format!("no audit entry {seq}")))?;
        EntryRecord::decode(&raw)
    }

    /// Proves transaction `seq` is in the log of `size` transactions (default: now).
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof> {
        let size = size.unwrap_or_else(|| self.size());
        if seq == 0 || seq > size || size > self.size() {
            return Err(Error::NotFound(format!(
                "transaction {seq} is not in a log of {size}"
            )));
        }
        let nodes = StoredNodes(self.engine());
        Ok(InclusionProof {
            index: seq - 1,
            size,
            tx_hash: self.transaction(seq)?.hash,
            path: merkle::inclusion_proof(&nodes, seq - 1, size)?,
            root: merkle::root(&nodes, size)?,
        })
    }

    /// Proves the log of `old` transactions is a prefix of the log of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        if old > new || new > self.size() {
            return Err(Error::InvalidInput(format!(
                "no consistency proof from {old} to {new} (log has {})",
                self.size()
            )));
        }
        merkle::consistency_proof(&StoredNodes(self.engine()), old, new)
    }

    /// The log root at `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        merkle::root(&StoredNodes(self.engine()), size)
    }

    /// The entries of `table` committed in `[from, to]` (microseconds), in time order,
    /// read through the (table, time) index.
    pub fn generate_audit_report(
        &self,
        table: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<EntryRecord>> {
        let mut cursor = self.engine().cursor(ColumnFamily::Audit)?;
        let prefix = audit_key(BY_TABLE, &[Value::Text(table.into())]);
        cursor.seek(&audit_key(
            BY_TABLE,
            &[Value::Text(table.into()), Value::Int(from as i64)],
        ));
        let mut out = Vec::new();
        while cursor.valid() && cursor.key().starts_with(&prefix) {
            let (_, parts) = encoding::parse_audit_key(cursor.key())?;
            let (Some(ts), Some(seq)) = (parts.get(1), parts.get(2)) else {
                return Err(corrupt("report index key"));
            };
            if int(ts)? > to {
                break;
            }
            let tx = self.transaction(int(seq)?)?;
            for s in tx.first_entry..tx.first_entry + tx.entries {
                let mut e = self.stored_entry(s)?;
                if e.table == table {
                    e.principal = tx.principal.clone();
                    e.statements = tx.statements;
                    out.push(e);
                }
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(out)
    }

    /// The transactions that changed `table` after position `(after_ts, after_seq)` (commit
    /// time, transaction number) up to commit time `upto`, in commit order, at most
    /// `limit`: `(commit_ts, transaction)` pairs read through the (table, time) index.
    pub fn table_commits_after(
        &self,
        table: &str,
        (after_ts, after_seq): (u64, u64),
        upto: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>> {
        let mut cursor = self.engine().cursor(ColumnFamily::Audit)?;
        let prefix = audit_key(BY_TABLE, &[Value::Text(table.into())]);
        cursor.seek(&audit_key(
            BY_TABLE,
            &[Value::Text(table.into()), Value::Int(after_ts as i64)],
        ));
        let mut out = Vec::new();
        while cursor.valid() && cursor.key().starts_with(&prefix) && out.len() < limit {
            let (_, parts) = encoding::parse_audit_key(cursor.key())?;
            let (Some(ts), Some(seq)) = (parts.get(1), parts.get(2)) else {
                return Err(corrupt("report index key"));
            };
            let (ts, seq) = (int(ts)?, int(seq)?);
            if ts > upto {
                break;
            }
            if (ts, seq) > (after_ts, after_seq) {
                out.push((ts, seq));
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(out)
    }

    /// The entries of a transaction, read one at a time.
    pub fn entries_of<'a>(
        &'a self,
        tx: &TxRecord,
    ) -> impl Iterator<Item = Result<EntryRecord>> + 'a {
        (tx.first_entry..tx.first_entry + tx.entries).map(|s| self.stored_entry(s))
    }

    /// Finds a transaction by its chain hash.
    pub fn find_transaction(&self, hash: &Hash) -> Result<TxRecord> {
        let raw = self
            .engine()
            .get(
                ColumnFamily::Audit,
                &audit_key(BY_HASH, &[Value::Blob(hash.to_vec())]),
            )?
            .ok_or_else(|| Error::NotFound("no transaction has this hash".into()))?;
        let v = decode_row(&raw)?;
        self.transaction(int(v.first().ok_or_else(|| corrupt("hash index"))?)?)
    }

    /// Recomputes one transaction (found by hash) from its entries and the stored rows, and
    /// checks its inclusion in the current log.
    pub fn verify_transaction(&self, hash: &Hash) -> Result<(TxRecord, Option<VerifyFailure>)> {
        let tx = self.find_transaction(hash)?;
        let fail = |kind, position: String| Some(VerifyFailure { kind, position });
        let mut entries = Vec::new();
        for s in tx.first_entry..tx.first_entry + tx.entries {
            match self.stored_entry(s) {
                Ok(e) => entries.push(e),
                Err(Error::NotFound(_)) => {
                    return Ok((tx, fail(FailureKind::RecordMissing, format!("entry {s}"))));
                }
                Err(_) => return Ok((tx, fail(FailureKind::RecordCorrupt, format!("entry {s}")))),
            }
        }
        if entries_root(&tx, &entries) != tx.root {
            return Ok((
                tx.clone(),
                fail(
                    FailureKind::MerkleRootMismatch,
                    format!("transaction {}", tx.seq),
                ),
            ));
        }
        if chain_hash(tx.seq, &tx.prev, &tx.root, tx.commit_ts) != tx.hash {
            return Ok((
                tx.clone(),
                fail(FailureKind::ChainBroken, format!("transaction {}", tx.seq)),
            ));
        }
        for e in &entries {
            if let Some(f) = check_row(self.engine(), e)? {
                return Ok((tx, Some(f)));
            }
        }
        let proof = self.inclusion_proof(tx.seq, None)?;
        if !proof.verify() || proof.tx_hash != tx.hash {
            return Ok((
                tx.clone(),
                fail(
                    FailureKind::TreeNodeMismatch,
                    format!("transaction {}", tx.seq),
                ),
            ));
        }
        Ok((tx, None))
    }

    /// Recomputes the chain, every transaction's Merkle root and the log tree, and
    /// cross-checks every row version against its entry.
    pub fn verify(&self) -> Result<VerifyReport> {
        let start = Instant::now();
        self.verified.store(0, std::sync::atomic::Ordering::Relaxed);
        let engine = self.engine();
        let mut report = VerifyReport {
            transactions: 0,
            entries: 0,
            versions: 0,
            collected: 0,
            elapsed: Duration::ZERO,
            failure: None,
        };
        macro_rules! fail {
            ($kind:expr, $($pos:tt)*) => {{
                report.failure = Some(VerifyFailure { kind: $kind, position: format!($($pos)*) });
                report.elapsed = start.elapsed();
                return Ok(report);
            }};
        }
        let (head_txs, head_entries, head_last, head_ts) =
            match engine.get(ColumnFamily::Audit, &audit_key(HEAD, &[]))? {
                None => (0, 0, [0u8; 32], 0),
                Some(raw) => match decode_row(&raw).ok().filter(|v| v.len() == 4) {
                    Some(v) => match (int(&v[0]), int(&v[1]), need_hash(&v[2]), int(&v[3])) {
                        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
                        _ => fail!(FailureKind::RecordCorrupt, "head"),
                    },
                    None => fail!(FailureKind::RecordCorrupt, "head"),
                },
            };

        // Transactions in order, their entries, the chain and the log tree.
        let mut frontier = Frontier::default();
        let mut prev = [0u8; 32];
        let mut last_ts = 0u64;
        let mut next_entry = 1u64;
        let mut expected: HashMap<VersionId, (u64, Option<Hash>, i64)> = HashMap::new();
        let mut cursor = engine.cursor(ColumnFamily::Audit)?;
        let mut entry_cursor = engine.cursor(ColumnFamily::Audit)?;
        entry_cursor.seek(&audit_key(ENTRY, &[]));
        let mut index_keys = 0u64;
        let tx_prefix = audit_key(TX, &[]);
        cursor.seek(&tx_prefix);
        let mut seq = 0u64;
        while cursor.valid() && cursor.key().starts_with(&tx_prefix) {
            seq += 1;
            let stored_at = encoding::parse_audit_key(cursor.key())
                .ok()
                .and_then(|(_, p)| p.first().and_then(|v| int(v).ok()));
            let Ok(tx) = TxRecord::decode(cursor.value()) else {
                fail!(FailureKind::RecordCorrupt, "transaction {seq}");
            };
            if stored_at != Some(seq) {
                fail!(
                    FailureKind::RecordMissing,
                    "transaction {seq} (the next one stored is {})",
                    stored_at.map(|s| s.to_string()).unwrap_or_default()
                );
            }
            if tx.seq != seq {
                fail!(
                    FailureKind::RecordOutOfPlace,
                    "transaction {seq} holds the record of transaction {}",
                    tx.seq
                );
            }
            if tx.first_entry != next_entry {
                fail!(
                    FailureKind::RecordOutOfPlace,
                    "transaction {seq}: entries start at {} instead of {next_entry}",
                    tx.first_entry
                );
            }
            let mut entries = Vec::with_capacity(tx.entries as usize);
            for s in tx.first_entry..tx.first_entry + tx.entries {
                // Entries are read in order with one cursor; each must sit under its number.
                let at = entry_cursor
                    .valid()
                    .then(|| encoding::parse_audit_key(entry_cursor.key()).ok())
                    .flatten()
                    .filter(|(section, _)| *section == ENTRY)
                    .and_then(|(_, p)| p.first().and_then(|v| int(v).ok()));
                if at != Some(s) {
                    fail!(FailureKind::RecordMissing, "entry {s} of transaction {seq}");
                }
                let raw = entry_cursor.value().to_vec();
                entry_cursor.next();
                let Ok(e) = EntryRecord::decode(&raw) else {
                    // A flipped byte usually still decodes; if not, it is corruption here.
                    fail!(
                        FailureKind::MerkleRootMismatch,
                        "entry {s} of transaction {seq} (does not decode)"
                    );
                };
                if e.seq != s || e.tx != seq {
                    fail!(
                        FailureKind::RecordOutOfPlace,
                        "entry {s} holds entry {} of transaction {}",
                        e.seq,
                        e.tx
                    );
                }
                entries.push(e);
            }
            if entries_root(&tx, &entries) != tx.root {
                fail!(
                    FailureKind::MerkleRootMismatch,
                    "transaction {seq}: its entries do not hash to its Merkle root"
                );
            }
            if tx.prev != prev || chain_hash(seq, &tx.prev, &tx.root, tx.commit_ts) != tx.hash {
                fail!(FailureKind::ChainBroken, "transaction {seq}");
            }
            let by_hash = engine.get(
                ColumnFamily::Audit,
                &audit_key(BY_HASH, &[Value::Blob(tx.hash.to_vec())]),
            )?;
            if by_hash.as_deref() != Some(encode_row(&[Value::Int(seq as i64)]).as_slice()) {
                fail!(
                    FailureKind::IndexMismatch,
                    "the hash index does not lead to transaction {seq}"
                );
            }
            let mut tables: Vec<&str> = Vec::new();
            for e in &entries {
                if e.commit_ts != tx.commit_ts {
                    fail!(
                        FailureKind::MerkleRootMismatch,
                        "entry {} has another time than its transaction",
                        e.seq
                    );
                }
                if !tables.contains(&e.table.as_str()) {
                    tables.push(&e.table);
                }
                expected.insert(
                    (e.keyspace, e.key.clone(), e.commit_ts),
                    (e.seq, e.after, op_code(e.op)),
                );
            }
            for table in tables {
                if engine
                    .get(ColumnFamily::Audit, &report_key(table, &tx))?
                    .as_deref()
                    != Some(&[][..])
                {
                    fail!(
                        FailureKind::IndexMismatch,
                        "the (table, time) index lacks transaction {seq} for {table}"
                    );
                }
                index_keys += 1;
            }
            for (level, index, h) in frontier.append(merkle::leaf_hash(&tx.hash)) {
                let stored = StoredNodes(engine).node(level, index).ok();
                if stored != Some(h) {
                    fail!(
                        FailureKind::TreeNodeMismatch,
                        "log tree node ({level}, {index}) after transaction {seq}"
                    );
                }
            }
            prev = tx.hash;
            last_ts = tx.commit_ts;
            next_entry += tx.entries;
            report.transactions += 1;
            report.entries += tx.entries;
            self.verified
                .store(report.entries, std::sync::atomic::Ordering::Relaxed);
            cursor.next();
        }
        cursor.status()?;
        if head_txs != report.transactions
            || head_entries != report.entries
            || head_last != prev
            || head_ts != last_ts
        {
            fail!(
                FailureKind::HeadMismatch,
                "the head records {head_txs} transactions and {head_entries} entries; {} and {} are there",
                report.transactions,
                report.entries
            );
        }
        // No entry beyond those the transactions account for.
        let beyond = audit_key(ENTRY, &[Value::Int(next_entry as i64)]);
        let entry_prefix = audit_key(ENTRY, &[]);
        cursor.seek(&beyond);
        if cursor.valid() && cursor.key().starts_with(&entry_prefix) {
            fail!(
                FailureKind::EntryOrphan,
                "entries from {next_entry} on belong to no transaction"
            );
        }

        // The indexes hold nothing else.
        for (section, expected, what) in [
            (BY_TABLE, index_keys, "(table, time)"),
            (BY_HASH, report.transactions, "hash"),
        ] {
            let prefix = audit_key(section, &[]);
            let mut n = 0u64;
            cursor.seek(&prefix);
            while cursor.valid() && cursor.key().starts_with(&prefix) {
                n += 1;
                cursor.next();
            }
            cursor.status()?;
            if n != expected {
                fail!(
                    FailureKind::IndexMismatch,
                    "the {what} index has {n} keys for {expected} records"
                );
            }
        }

        // Every row version has its entry, and matches it; the newest version of each key
        // is what the current-state family serves.
        let mut versions = engine.cursor(ColumnFamily::Versions)?;
        versions.seek(&[]);
        let mut newest_of: Option<(u32, Vec<u8>)> = None;
        let mut keys = 0u64;
        while versions.valid() {
            let (ks, key, ts) = encoding::parse_version_key(versions.key())?;
            let (op, row) = encoding::decode_version_value(versions.value())?;
            let Some((seq, after, entry_op)) = expected.remove(&(ks, key.clone(), ts)) else {
                fail!(
                    FailureKind::VersionUnaudited,
                    "key space {ks}, key {key:02x?}, version {ts}"
                );
            };
            let actual = if op == 3 { None } else { Some(sha3(row)) };
            // The operation byte is the entry's too (an insert that reads as an update, or a
            // version that reads as a deletion, is a changed row).
            if actual != after || i64::from(op) != entry_op {
                fail!(
                    FailureKind::RowMismatch,
                    "entry {seq}: key space {ks}, key {key:02x?}, version {ts}"
                );
            }
            if newest_of.as_ref() != Some(&(ks, key.clone())) {
                // Versions sort newest first per key: this is the key's newest.
                keys += 1;
                let at = format!("key space {ks}, key {}", encoding::printable_key(&key));
                match engine.get(ColumnFamily::Latest, &encoding::latest_key(ks, &key))? {
                    None => fail!(FailureKind::CurrentMissing, "{at}: newest version {ts}"),
                    Some(raw) => match encoding::decode_latest_value(&raw) {
                        Ok((cts, cop, crow)) if cts == ts && cop == op && crow == row => {}
                        Ok((cts, ..)) if cts < ts => fail!(
                            FailureKind::CurrentMismatch,
                            "{at}: the current row is version {cts}, rolled back from {ts}"
                        ),
                        _ => fail!(
                            FailureKind::CurrentMismatch,
                            "{at}: the current row differs from version {ts}"
                        ),
                    },
                }
                newest_of = Some((ks, key.clone()));
            }
            report.versions += 1;
            self.verified.store(
                report.entries + report.versions,
                std::sync::atomic::Ordering::Relaxed,
            );
            versions.next();
        }
        versions.status()?;
        // Versions before the GC horizon may have been collected by retention: their
        // entries stay, the cross-check is skipped and counted.
        let horizons = chrono_storage::mvcc::stored_horizons(engine)?;
        let before = expected.len();
        expected.retain(|(ks, _, ts), _| *ts >= horizons.of(*ks));
        report.collected = (before - expected.len()) as u64;
        if let Some(((ks, key, ts), (seq, ..))) = expected.into_iter().min_by_key(|(_, (s, ..))| *s)
        {
            fail!(
                FailureKind::RowMissing,
                "entry {seq}: key space {ks}, key {key:02x?}, version {ts}"
            );
        }
        // No current-state row beyond the keys with versions.
        let mut current = engine.cursor(ColumnFamily::Latest)?;
        current.seek(&[]);
        let mut rows = 0u64;
        while current.valid() {
            rows += 1;
            if rows > keys {
                let at = match encoding::parse_latest_key(current.key()) {
                    Ok((ks, key)) => {
                        format!("key space {ks}, key {}", encoding::printable_key(&key))
                    }
                    Err(_) => format!("{:02x?}", current.key()),
                };
                fail!(
                    FailureKind::CurrentOrphan,
                    "{at}: {rows} current rows for {keys} keys with versions"
                );
            }
            current.next();
        }
        current.status()?;
        if rows < keys {
            fail!(
                FailureKind::CurrentMissing,
                "{rows} current rows for {keys} keys with versions"
            );
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// [`verify`](Self::verify), then checks that the log extends `checkpoint`: same root at
    /// the checkpoint's size. This catches a history rewritten with every hash recomputed.
    pub fn verify_against(&self, checkpoint: &Checkpoint) -> Result<VerifyReport> {
        let mut report = self.verify()?;
        if report.failure.is_some() {
            return Ok(report);
        }
        let fail = |position: String| {
            Some(VerifyFailure {
                kind: FailureKind::CheckpointMismatch,
                position,
            })
        };
        if let Some(other) = checkpoint.database
            && other != self.database
        {
            report.failure = fail(format!(
                "the checkpoint is of database {other}, this is database {}",
                self.database
            ));
        } else if checkpoint.size > report.transactions {
            report.failure = fail(format!(
                "the checkpoint has {} transactions, the log only {}: history was truncated",
                checkpoint.size, report.transactions
            ));
        } else if self.root_at(checkpoint.size)? != checkpoint.root {
            report.failure = fail(format!(
                "the log's first {} transactions do not hash to the checkpoint's root: history was rewritten",
                checkpoint.size
            ));
        }
        Ok(report)
    }
}

/// A row version: (key space, key, commit timestamp).
type VersionId = (u32, Vec<u8>, u64);

fn report_key(table: &str, tx: &TxRecord) -> Vec<u8> {
    audit_key(
        BY_TABLE,
        &[
            Value::Text(table.to_string()),
            Value::Int(tx.commit_ts as i64),
            Value::Int(tx.seq as i64),
        ],
    )
}

fn entries_root(tx: &TxRecord, entries: &[EntryRecord]) -> Hash {
    let mut h = EntriesHasher::new(tx.digest, &tx.header());
    for e in entries {
        h.put(&e.encode());
    }
    h.finish()
}

fn check_row(engine: &dyn Engine, e: &EntryRecord) -> Result<Option<VerifyFailure>> {
    let key = encoding::version_key(e.keyspace, &e.key, e.commit_ts);
    let position = format!(
        "entry {}: key space {}, version {}",
        e.seq, e.keyspace, e.commit_ts
    );
    Ok(match engine.get(ColumnFamily::Versions, &key)? {
        // Collected by retention.
        None if e.commit_ts < chrono_storage::mvcc::stored_horizons(engine)?.of(e.keyspace) => None,
        None => Some(VerifyFailure {
            kind: FailureKind::RowMissing,
            position,
        }),
        Some(raw) => {
            let (op, row) = encoding::decode_version_value(&raw)?;
            let actual = if op == 3 { None } else { Some(sha3(row)) };
            (actual != e.after || i64::from(op) != op_code(e.op)).then_some(VerifyFailure {
                kind: FailureKind::RowMismatch,
                position,
            })
        }
    })
}

/// The trail's head as stored: transactions, entries, the last hash and time, the tree's
/// frontier.
fn load_state(engine: &dyn Engine) -> Result<State> {
    let mut state = State::default();
    if let Some(raw) = engine.get(ColumnFamily::Audit, &audit_key(HEAD, &[]))? {
        let v = decode_row(&raw)?;
        if v.len() != 4 {
            return Err(corrupt("audit head"));
        }
        state.txs = int(&v[0])?;
        state.entries = int(&v[1])?;
        state.last = need_hash(&v[2])?;
        state.last_ts = int(&v[3])?;
        state.frontier = Frontier::load(&StoredNodes(engine), state.txs)?;
    }
    Ok(state)
}

impl CommitObserver for AuditTrail {
    /// The principal of the transaction that changed `table` at `commit_ts`, through the
    /// (table, time) index: one seek and one read.
    fn committed_by(
        &self,
        table: &str,
        commit_ts: u64,
    ) -> Option<chrono_storage::Result<Option<String>>> {
        let found = (|| -> Result<Option<String>> {
            let mut cursor = self.engine().cursor(ColumnFamily::Audit)?;
            let at = audit_key(
                BY_TABLE,
                &[Value::Text(table.into()), Value::Int(commit_ts as i64)],
            );
            cursor.seek(&at);
            if !cursor.valid() || !cursor.key().starts_with(&at) {
                cursor.status()?;
                return Ok(None);
            }
            let (_, parts) = encoding::parse_audit_key(cursor.key())?;
            let seq = int(parts.get(2).ok_or_else(|| corrupt("report index key"))?)?;
            Ok(self.transaction(seq)?.principal)
        })();
        Some(found.map_err(|e| chrono_storage::Error::Observer(format!("audit trail: {e}"))))
    }

    /// Through the (table, time) index: the commits that changed `table` in the window,
    /// then their entries of `keyspace`.
    fn changed_keys(
        &self,
        table: &str,
        keyspace: chrono_storage::Keyspace,
        after_ts: u64,
        upto_ts: u64,
    ) -> Option<chrono_storage::Result<Vec<Vec<u8>>>> {
        let found = (|| -> Result<Vec<Vec<u8>>> {
            let mut keys = Vec::new();
            for (_, seq) in
                self.table_commits_after(table, (after_ts, u64::MAX), upto_ts, usize::MAX)?
            {
                let tx = self.transaction(seq)?;
                for e in self.entries_of(&tx) {
                    let e = e?;
                    if e.keyspace == keyspace {
                        keys.push(e.key);
                    }
                }
            }
            Ok(keys)
        })();
        Some(found.map_err(|e| chrono_storage::Error::Observer(format!("audit trail: {e}"))))
    }

    fn foreign_commits(&self, _upto_ts: u64) {
        // Another server appended to the one chain (its head is written in the same
        // transaction as its data): continue from the stored head. If it does not read
        // now, the next commit reads it first or fails, so the chain never forks.
        // A commit built before (and not written) no longer continues the chain.
        self.pending.lock().take();
        match load_state(self.engine()) {
            Ok(st) => *self.state.lock() = st,
            Err(e) => {
                tracing::warn!(error = %e, "reloading the audit head failed");
                self.stale.store(true, std::sync::atomic::Ordering::Release);
            }
        }
    }

    fn on_commit(&self, commit: &Commit, batch: &mut WriteBatch) -> chrono_storage::Result<()> {
        if self.stale.load(std::sync::atomic::Ordering::Acquire) {
            let st = load_state(self.engine())
                .map_err(|e| chrono_storage::Error::Observer(format!("audit head: {e}")))?;
            *self.state.lock() = st;
            self.stale
                .store(false, std::sync::atomic::Ordering::Release);
        }
        // Commits written together (group commit) are built one after the other before
        // any is written: each continues the chain from the one built just before it.
        let mut st = match &*self.pending.lock() {
            Some((built_for, st)) if built_for + 1 == commit.seq => st.clone(),
            _ => self.state.lock().clone(),
        };
        let seq = st.txs + 1;
        let first_entry = st.entries + 1;
        // The record is complete but for its root and hash, which come from its entries.
        let mut tx = TxRecord {
            seq,
            commit_ts: commit.commit_ts,
            first_entry,
            entries: commit.changes.len() as u64,
            prev: st.last,
            root: [0; 32],
            hash: [0; 32],
            principal: commit.principal.clone(),
            statements: sha3(commit.statements.join("\n").as_bytes()),
            digest: if self.tree_digest.load(std::sync::atomic::Ordering::Relaxed) {
                EntriesDigest::MerkleTree
            } else {
                EntriesDigest::Sequential
            },
        };
        let mut entry_root = EntriesHasher::new(tx.digest, &tx.header());
        let mut tables: Vec<String> = Vec::new();
        for (i, c) in commit.changes.iter().enumerate() {
            let table = match commit.labels.get(&c.keyspace) {
                Some(t) => t.clone(),
                None => format!("keyspace {}", c.keyspace),
            };
            if !tables.contains(&table) {
                tables.push(table.clone());
            }
            let e = EntryRecord {
                seq: first_entry + i as u64,
                tx: seq,
                commit_ts: commit.commit_ts,
                table,
                keyspace: c.keyspace,
                op: c.op,
                key: c.key.clone(),
                before: c.before.as_deref().map(sha3),
                after: c.after.as_deref().map(sha3),
                principal: None,
                statements: [0; 32],
            };
            let raw = e.encode();
            entry_root.put(&raw);
            batch.put(
                ColumnFamily::Audit,
                audit_key(ENTRY, &[Value::Int(e.seq as i64)]),
                raw,
            );
        }
        tx.root = entry_root.finish();
        tx.hash = chain_hash(seq, &st.last, &tx.root, commit.commit_ts);
        let hash = tx.hash;
        batch.put(
            ColumnFamily::Audit,
            audit_key(TX, &[Value::Int(seq as i64)]),
            tx.encode(),
        );
        // One (table, time) index key per table the transaction wrote.
        for table in &tables {
            batch.put(ColumnFamily::Audit, report_key(table, &tx), Vec::new());
        }
        batch.put(
            ColumnFamily::Audit,
            audit_key(BY_HASH, &[Value::Blob(hash.to_vec())]),
            encode_row(&[Value::Int(seq as i64)]),
        );
        for (level, index, h) in st.frontier.append(merkle::leaf_hash(&hash)) {
            batch.put(
                ColumnFamily::Audit,
                audit_key(
                    NODE,
                    &[Value::Int(i64::from(level)), Value::Int(index as i64)],
                ),
                h.to_vec(),
            );
        }
        st.txs = seq;
        st.entries += tx.entries;
        st.last = hash;
        st.last_ts = commit.commit_ts;
        batch.put(ColumnFamily::Audit, audit_key(HEAD, &[]), encode_head(&st));
        *self.pending.lock() = Some((commit.seq, st));
        Ok(())
    }

    fn after_commit(&self, commit: &Commit) {
        // The head moves once the last commit built is written (a group's last).
        let written = self
            .pending
            .lock()
            .take_if(|(built_for, _)| *built_for == commit.seq);
        if let Some((_, st)) = written {
            *self.state.lock() = st;
        }
    }
}
