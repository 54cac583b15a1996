//! Multi-version concurrency control with snapshot isolation, and time travel.
//!
//! Every write of a key adds a version; nothing is overwritten. A version lives in two
//! column families, written in one atomic batch:
//!
//! ```text
//! versions:  0x01 ‖ ks ‖ key ‖ !ts  → op ‖ row      every version, newest first per key
//! latest:    0x02 ‖ ks ‖ key        → ts ‖ op ‖ row the newest version (or its tombstone)
//! ```
//!
//! * Reading at `t` (now or `AS OF` the past): look the key up in `latest`; if that version
//!   is at or before `t` it is the answer (one point read, however long the history), else
//!   one seek in `versions` to `key ‖ !t` finds the newest version at or before `t`.
//! * Scanning at `t` walks `latest` (one entry per key, never the history) and falls back to
//!   a seek only for keys changed after `t`. Deletes leave a tombstone in `latest`, so a key
//!   deleted after `t` is still found when reading at `t`.
//!
//! # Transactions
//!
//! A [`Transaction`] reads the snapshot of its start timestamp and buffers its writes,
//! seeing them itself (read your own writes). At commit, under the store's commit lock, each
//! written key's newest version is checked: if another transaction committed it after this
//! one started, the commit fails with [`Error::Conflict`] and writes nothing (first committer
//! wins). Otherwise the commit gets a timestamp from a hybrid clock (wall time in
//! microseconds, always above the previous one, also across restarts), the versions, the
//! commit observers' entries and the store metadata are written in one batch, and the new
//! snapshot becomes visible. Snapshot isolation permits write skew (two transactions that
//! each read what the other writes); the SQL layer documents it.
//!
//! A transaction can also ask that what it *read* be unchanged at commit, so a reader of a
//! definition and a writer of it serialize: [`Transaction::check_unchanged`] (one key: the
//! commit fails if another transaction committed that key after this one began) and
//! [`Transaction::check_keyspace_unchanged`] (a whole key space: the commit fails if any
//! commit after this one began wrote in it; the store keeps each key space's last commit
//! timestamp in memory, and after a restart treats every key space as written when the store
//! was opened). The SQL layer uses them so that DML and DDL on one table never both commit
//! against different definitions of it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::encoding::{self, decode_latest_value, decode_version_value};
use crate::engine::{ColumnFamily, Cursor, Engine, WriteBatch};
use crate::error::{Error, Result};
use crate::horizon::Horizons;

/// A numbered key space: one per table, one per index, one for the catalog.
pub type Keyspace = u32;

/// What a version did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The key had no live version before.
    Insert,
    /// The key had a live version before.
    Update,
    /// The key was deleted (a tombstone).
    Delete,
}

impl Operation {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Operation::Insert => 1,
            Operation::Update => 2,
            Operation::Delete => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(Operation::Insert),
            2 => Ok(Operation::Update),
            3 => Ok(Operation::Delete),
            _ => Err(Error::Corruption(format!("unknown operation byte {b}"))),
        }
    }

    /// `INSERT`, `UPDATE` or `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// One change made by a commit, as commit observers see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The key space.
    pub keyspace: Keyspace,
    /// The user key.
    pub key: Vec<u8>,
    /// What happened.
    pub op: Operation,
    /// The value before the commit (`None` for an insert).
    pub before: Option<Vec<u8>>,
    /// The value after the commit (`None` for a delete).
    pub after: Option<Vec<u8>>,
}

/// A commit, as commit observers see it.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The commit timestamp: microseconds since the Unix epoch, strictly increasing.
    pub commit_ts: u64,
    /// The commit's sequence number: 1, 2, 3… with no gaps.
    pub seq: u64,
    /// The snapshot the transaction read.
    pub read_ts: u64,
    /// Who committed, when the layer above knows.
    pub principal: Option<String>,
    /// The statements the transaction ran, when the layer above records them.
    pub statements: Vec<String>,
    /// The changes, ordered by (keyspace, key).
    pub changes: Vec<Change>,
    /// Names the layer above gave the key spaces it wrote (for example table names).
    pub labels: BTreeMap<Keyspace, String>,
}

/// Code outside the store that sees every commit: the audit trail, change streams.
pub trait CommitObserver: Send + Sync {
    /// Called under the commit lock before anything is written. Entries added to `batch`
    /// are written atomically with the commit's data. An error aborts the commit.
    fn on_commit(&self, commit: &Commit, batch: &mut WriteBatch) -> Result<()>;

    /// Called after the commit is durable and visible, in commit order.
    fn after_commit(&self, _commit: &Commit) {}

    /// On a shared engine ([`Engine::shared`]): commits by other processes were found, up
    /// to `upto_ts`. Their data is in the engine; whatever the observer keeps in memory
    /// about the database (a chain head, caches) must be read again. Called under the
    /// commit lock, before this process's next commit is built.
    fn foreign_commits(&self, _upto_ts: u64) {}

    /// Who committed the change to the key space labelled `label` (a table's name) at
    /// `commit_ts`, if this observer keeps that (the audit trail does): `None` when it does
    /// not know, `Some(Ok(None))` when the commit had no principal.
    fn committed_by(&self, _label: &str, _commit_ts: u64) -> Option<Result<Option<String>>> {
        None
    }

    /// The keys of `keyspace` (labelled `label`, a table's name) that commits after
    /// `after_ts` up to `upto_ts` changed, in any order and possibly repeated, if this
    /// observer keeps that (the audit trail does): what changed between two times without
    /// reading everything that did not.
    fn changed_keys(
        &self,
        _label: &str,
        _keyspace: Keyspace,
        _after_ts: u64,
        _upto_ts: u64,
    ) -> Option<Result<Vec<Vec<u8>>>> {
        None
    }
}

/// What a successful commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit timestamp; reading `AS OF` it returns exactly this commit's state.
    pub commit_ts: u64,
    /// The commit sequence number.
    pub seq: u64,
}

/// One version of a key, as history reads return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The user key.
    pub key: Vec<u8>,
    /// When this version was committed.
    pub commit_ts: u64,
    /// When the next version replaced it (`None`: it is still current).
    pub replaced_ts: Option<u64>,
    /// What the commit did.
    pub op: Operation,
    /// The value (`None` for a delete).
    pub value: Option<Vec<u8>>,
}

/// Which keys of a key space a scan visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Every key.
    All,
    /// Keys that start with these bytes.
    Prefix(Vec<u8>),
    /// Keys between two bounds.
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

impl KeyRange {
    fn seek_key(&self, keyspace: Keyspace, latest: bool) -> Vec<u8> {
        let whole = |k: &[u8]| {
            if latest {
                encoding::latest_key(keyspace, k)
            } else {
                encoding::version_key_prefix(keyspace, k)
            }
        };
        let partial = |p: &[u8]| {
            if latest {
                encoding::latest_key_prefix_of(keyspace, p)
            } else {
                encoding::version_key_prefix_of(keyspace, p)
            }
        };
        match self {
            KeyRange::All => partial(&[]),
            KeyRange::Prefix(p) => partial(p),
            KeyRange::Range(Bound::Included(k) | Bound::Excluded(k), _) => whole(k),
            KeyRange::Range(Bound::Unbounded, _) => partial(&[]),
        }
    }

    /// Whether `key` is past the end of the range (scans stop there).
    fn is_past_end(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::All => false,
            KeyRange::Prefix(p) => !key.starts_with(p),
            KeyRange::Range(_, Bound::Included(end)) => key > end.as_slice(),
            KeyRange::Range(_, Bound::Excluded(end)) => key >= end.as_slice(),
            KeyRange::Range(_, Bound::Unbounded) => false,
        }
    }

    /// Whether `key` is before the start (only an excluded start can be).
    fn is_before_start(&self, key: &[u8]) -> bool {
        matches!(self, KeyRange::Range(Bound::Excluded(s), _) if key <= s.as_slice())
    }

    /// Whether the range contains `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match self {
            KeyRange::Range(Bound::Included(s), _) => key >= s.as_slice(),
            _ => !self.is_before_start(key),
        };
        after_start && !self.is_past_end(key)
    }
}

/// The error for a read at `ts` before `horizon`.
fn before_horizon(ts: u64, horizon: u64) -> Result<()> {
    if ts < horizon {
        return Err(Error::InvalidInput(format!(
            "{} is before the earliest readable time {} (older history was collected by \
             features.time_travel.retention_days or deleted by DELETE HISTORY)",
            crate::Timestamp::from_micros(ts),
            crate::Timestamp::from_micros(horizon)
        )));
    }
    Ok(())
}

fn now_micros() -> u64 {
    crate::Timestamp::now().as_micros()
}

const META_LAST_COMMIT: &str = "last_commit";
const META_ID_HIGH_WATER: &str = "id_high_water";
/// Times a commit on a shared engine is built again because another process committed
/// first, before it gives up with a conflict.
const SHARED_COMMIT_ATTEMPTS: u32 = 50;
/// Ids a process reserves at a time on a shared engine.
const ID_BLOCK: u64 = 1_000;
const META_DATABASE_ID: &str = "database_id";
const META_GC_HORIZON: &str = "gc_horizon";

/// The key space of the store's own versioned records, shared with the catalog (which keeps
/// its entries under other first key parts: `table`, `stats`, `purge`).
pub const SYSTEM_KEYSPACE: Keyspace = 0;
/// The format of the stored [`Horizons`] record.
const HORIZONS_FORMAT: u8 = 1;

/// The key of the GC horizons in [`SYSTEM_KEYSPACE`].
fn horizons_key() -> Vec<u8> {
    encoding::encode_key(&[crate::Value::Text("horizons".into())])
}

/// The GC horizons as last committed (all 0 when history was never collected): reads before
/// a key space's horizon are refused, and its versions at or before it that a read at it
/// does not need may be gone. They are a versioned row like any other, so the audit trail
/// records every move and a forged horizon is a row that does not match its entry.
pub fn stored_horizons(engine: &dyn Engine) -> Result<Horizons> {
    let latest = encoding::latest_key(SYSTEM_KEYSPACE, &horizons_key());
    if let Some(raw) = engine.get(ColumnFamily::Latest, &latest)? {
        let (_, op, row) = decode_latest_value(&raw)?;
        if let Some(row) = live(op, row)? {
            return crate::record::decode(HORIZONS_FORMAT, "the stored GC horizons", &row);
        }
    }
    Ok(Horizons::default())
}

/// [`stored_horizons`], with the one horizon databases from before versioned horizons kept
/// in their metadata: reads before it stay refused (their versions may be gone). It is not
/// audited, so the audit verifier does not trust it; the next collection commits it.
fn horizons_at_open(engine: &dyn Engine) -> Result<Horizons> {
    let mut horizons = stored_horizons(engine)?;
    if let Some(raw) = engine.get(ColumnFamily::Meta, &encoding::meta_key(META_GC_HORIZON))? {
        horizons.default = horizons.default.max(encoding::decode_u64(&raw)?.0);
    }
    Ok(horizons)
}

/// A database's identity: 16 random bytes made when its store is first opened, never
/// changed. Audit checkpoints and proofs name it, so a checkpoint of one database is never
/// taken for another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatabaseId(pub [u8; 16]);

impl DatabaseId {
    /// A new random identity.
    fn generate() -> Result<DatabaseId> {
        let mut id = [0u8; 16];
        getrandom::getrandom(&mut id)
            .map_err(|e| Error::Engine(format!("no randomness for a database identity: {e}")))?;
        Ok(DatabaseId(id))
    }

    /// Parses the 32 lower- or upper-case hex digits [`Display`](std::fmt::Display) writes.
    pub fn parse_hex(text: &str) -> Option<DatabaseId> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            id[i] = (hi * 16 + lo) as u8;
        }
        Some(DatabaseId(id))
    }
}

impl std::fmt::Display for DatabaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The store's identity: read from its metadata, or made and written when it has none (a
/// new database, or one created before identities existed).
fn database_id(engine: &dyn Engine) -> Result<DatabaseId> {
    let key = encoding::meta_key(META_DATABASE_ID);
    if let Some(raw) = engine.get(ColumnFamily::Meta, &key)? {
        let id = <[u8; 16]>::try_from(raw.as_slice()).map_err(|_| {
            Error::Corruption(format!(
                "the database identity is {} bytes, not 16",
                raw.len()
            ))
        })?;
        return Ok(DatabaseId(id));
    }
    let id = DatabaseId::generate()?;
    let mut batch = WriteBatch::default();
    batch.put(ColumnFamily::Meta, key.clone(), id.0.to_vec());
    if engine.shared() {
        // Another process opening the same new database at once: the first identity wins.
        if !engine.write_if(batch, ColumnFamily::Meta, &key, None)? {
            return database_id(engine);
        }
        return Ok(id);
    }
    engine.write(batch)?;
    engine.flush()?;
    Ok(id)
}

struct CommitState {
    last_ts: u64,
    last_seq: u64,
    /// The newest commit that wrote each key space, since the store was opened.
    keyspace_ts: std::collections::HashMap<Keyspace, u64>,
    /// The newest commit when the store was opened: key spaces not in `keyspace_ts` may
    /// have been written up to then.
    opened_ts: u64,
    /// The row-id high-water mark as last stored (written again only when it moved).
    id_high_water: u64,
}

/// What [`CommitState::advance`] replaced, so that a group whose write failed can be undone.
#[derive(Default)]
struct Replaced {
    /// The commit time, sequence number and high-water mark before the first commit.
    before: Option<(u64, u64, u64)>,
    /// Each key space's newest commit before, in the order they were replaced.
    keyspace_ts: Vec<(Keyspace, Option<u64>)>,
}

impl CommitState {
    /// Moves past `commit` (which leaves the row-id high-water mark at `high_water`),
    /// remembering in `replaced` what it changes.
    fn advance(&mut self, commit: &Commit, high_water: u64, replaced: &mut Replaced) {
        replaced
            .before
            .get_or_insert((self.last_ts, self.last_seq, self.id_high_water));
        self.last_ts = commit.commit_ts;
        self.last_seq = commit.seq;
        self.id_high_water = high_water;
        for c in &commit.changes {
            let before = self.keyspace_ts.insert(c.keyspace, commit.commit_ts);
            replaced.keyspace_ts.push((c.keyspace, before));
        }
    }

    /// Undoes the [`CommitState::advance`]s that filled `replaced`.
    fn undo(&mut self, replaced: Replaced) {
        if let Some(before) = replaced.before {
            (self.last_ts, self.last_seq, self.id_high_water) = before;
        }
        for (keyspace, ts) in replaced.keyspace_ts.into_iter().rev() {
            match ts {
                Some(ts) => self.keyspace_ts.insert(keyspace, ts),
                None => self.keyspace_ts.remove(&keyspace),
            };
        }
    }
}

struct Inner {
    engine: Arc<dyn Engine>,
    commit: Mutex<CommitState>,
    visible_ts: AtomicU64,
    next_id: AtomicU64,
    observers: RwLock<Vec<Arc<dyn CommitObserver>>>,
    id: DatabaseId,
    /// The read times of open transactions and pins, with how many hold each: the GC
    /// horizon never passes the oldest.
    readers: Mutex<BTreeMap<u64, usize>>,
    /// Reads of a key space before its horizon are refused (their versions may be
    /// collected).
    horizons: RwLock<Arc<Horizons>>,
    /// Held while the horizons move (one move at a time).
    advancing: Mutex<()>,
    /// Other processes write the engine too ([`Engine::shared`]).
    shared: bool,
    /// Commits waiting for the commit lock; whoever takes it applies them all.
    queue: Mutex<CommitQueue>,
    /// Engine writes commits made (fewer than commits when several were written together).
    commit_writes: AtomicU64,
    /// On a shared engine: the block of ids this process reserved, `[next, end)`.
    id_block: Mutex<(u64, u64)>,
    /// A random number naming this open store among the processes sharing an engine.
    instance: u64,
}

/// The multi-version store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens the store on an engine, recovering the clock and counters from its metadata.
    pub fn open(engine: Arc<dyn Engine>) -> Result<Self> {
        let (last_ts, last_seq) =
            match engine.get(ColumnFamily::Meta, &encoding::meta_key(META_LAST_COMMIT))? {
                Some(raw) => {
                    let (ts, rest) = encoding::decode_u64(&raw)?;
                    let (seq, _) = encoding::decode_u64(rest)?;
                    (ts, seq)
                }
                None => (0, 0),
            };
        let next_id =
            match engine.get(ColumnFamily::Meta, &encoding::meta_key(META_ID_HIGH_WATER))? {
                Some(raw) => encoding::decode_u64(&raw)?.0,
                None => 1,
            };
        let id = database_id(engine.as_ref())?;
        let horizons = Arc::new(horizons_at_open(engine.as_ref())?);
        engine.set_gc_horizons(horizons.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                id,
                readers: Mutex::new(BTreeMap::new()),
                horizons: RwLock::new(horizons),
                advancing: Mutex::new(()),
                shared: engine.shared(),
                queue: Mutex::new(CommitQueue::default()),
                commit_writes: AtomicU64::new(0),
                id_block: Mutex::new((0, 0)),
                instance: {
                    let mut b = [0u8; 8];
                    getrandom::getrandom(&mut b).map_err(|e| {
                        Error::Engine(format!("no randomness for a store instance: {e}"))
                    })?;
                    u64::from_le_bytes(b)
                },
                engine,
                commit: Mutex::new(CommitState {
                    last_ts,
                    last_seq,
                    keyspace_ts: std::collections::HashMap::new(),
                    opened_ts: last_ts,
                    id_high_water: next_id,
                }),
                visible_ts: AtomicU64::new(last_ts),
                next_id: AtomicU64::new(next_id.max(1)),
                observers: RwLock::new(Vec::new()),
            }),
        })
    }

    /// How many engine writes commits have made since the store was opened: fewer than
    /// the commits when concurrent ones were written together (group commit).
    pub fn commit_writes(&self) -> u64 {
        self.inner.commit_writes.load(Ordering::Relaxed)
    }

    /// How many commits are waiting for the commit lock right now (they will be written
    /// together by whichever takes it next).
    pub fn queued_commits(&self) -> usize {
        self.inner.queue.lock().waiting.len()
    }

    /// The database's identity (made when the store was first opened).
    pub fn database_id(&self) -> DatabaseId {
        self.inner.id
    }

    /// A store in memory (nothing survives the process).
    pub fn in_memory() -> Self {
        match Self::open(Arc::new(crate::engine::MemoryEngine::new())) {
            Ok(store) => store,
            Err(_) => unreachable!("an empty in-memory engine has no metadata to misread"),
        }
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.inner.engine
    }

    /// Registers a commit observer; it sees every commit from now on.
    /// Who committed the change to `label` (a table's name) at `commit_ts`, as the first
    /// observer that keeps principals says ([`CommitObserver::committed_by`]); `None` when
    /// none does or the commit had none.
    pub fn committed_by(&self, label: &str, commit_ts: u64) -> Result<Option<String>> {
        for o in self.inner.observers.read().iter() {
            if let Some(found) = o.committed_by(label, commit_ts) {
                return found;
            }
        }
        Ok(None)
    }

    /// The keys of `keyspace` (labelled `label`) changed by commits after `after_ts` up to
    /// `upto_ts`, sorted and each once, as the first observer that keeps them says
    /// ([`CommitObserver::changed_keys`]); `None` when none does.
    pub fn changed_keys(
        &self,
        label: &str,
        keyspace: Keyspace,
        after_ts: u64,
        upto_ts: u64,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        for o in self.inner.observers.read().iter() {
            if let Some(found) = o.changed_keys(label, keyspace, after_ts, upto_ts) {
                let mut keys = found?;
                keys.sort_unstable();
                keys.dedup();
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }

    pub fn add_observer(&self, observer: Arc<dyn CommitObserver>) {
        self.inner.observers.write().push(observer);
    }

    /// The timestamp of the newest visible commit (0 for an empty store).
    pub fn current_ts(&self) -> u64 {
        self.inner.visible_ts.load(Ordering::Acquire)
    }

    /// The sequence number of the newest commit (0 for an empty store).
    pub fn current_seq(&self) -> u64 {
        self.inner.commit.lock().last_seq
    }

    /// A fresh id, never handed out before (also across restarts, and by no other process
    /// on a shared engine). Used for row ids and key-space numbers.
    pub fn next_id(&self) -> Result<u64> {
        if !self.inner.shared {
            return Ok(self.inner.next_id.fetch_add(1, Ordering::AcqRel));
        }
        // Shared: a block of ids at a time, reserved by moving the stored high-water mark
        // with a compare-and-set, so two processes never hand out the same id.
        let mut block = self.inner.id_block.lock();
        if block.0 >= block.1 {
            let engine = &self.inner.engine;
            let key = encoding::meta_key(META_ID_HIGH_WATER);
            loop {
                let raw = engine.get(ColumnFamily::Meta, &key)?;
                let from = match &raw {
                    Some(r) => encoding::decode_u64(r)?.0.max(1),
                    None => 1,
                };
                let to = from + ID_BLOCK;
                let mut hw = Vec::with_capacity(8);
                encoding::encode_u64(&mut hw, to);
                let mut batch = WriteBatch::new();
                batch.put(ColumnFamily::Meta, key.clone(), hw);
                if engine.write_if(batch, ColumnFamily::Meta, &key, raw.as_deref())? {
                    *block = (from, to);
                    break;
                }
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// On a shared engine: reads the newest commit from the engine and, when other
    /// processes committed since this one last looked, takes their commits in (clock,
    /// sequence, what key spaces may have changed) and tells the observers. Returns the
    /// newest commit's timestamp. On an engine of its own, the newest local commit.
    pub fn sync_head(&self) -> Result<u64> {
        if !self.inner.shared {
            return Ok(self.current_ts());
        }
        let mut state = self.inner.commit.lock();
        self.catch_up(&mut state)?;
        Ok(state.last_ts)
    }

    /// [`Store::sync_head`] under the commit lock; returns the stored head as read, for
    /// the commit's compare-and-set.
    fn catch_up(&self, state: &mut CommitState) -> Result<Option<Vec<u8>>> {
        let raw = self
            .inner
            .engine
            .get(ColumnFamily::Meta, &encoding::meta_key(META_LAST_COMMIT))?;
        let (ts, seq) = match &raw {
            Some(r) => {
                let (ts, rest) = encoding::decode_u64(r)?;
                (ts, encoding::decode_u64(rest)?.0)
            }
            None => (0, 0),
        };
        if (ts, seq) != (state.last_ts, state.last_seq) {
            state.last_ts = ts;
            state.last_seq = seq;
            // Which key spaces the others wrote is not known: all of them may have changed
            // up to their newest commit.
            state.keyspace_ts.clear();
            state.opened_ts = ts;
            self.inner.visible_ts.fetch_max(ts, Ordering::AcqRel);
            // Another server may have moved the GC horizons (they are a committed row):
            // reads before them must be refused here too.
            let stored = stored_horizons(self.inner.engine.as_ref())?;
            let current = self.horizons();
            let merged = current.advanced(&stored);
            if merged != *current {
                let merged = Arc::new(merged);
                *self.inner.horizons.write() = merged.clone();
                self.inner.engine.set_gc_horizons(merged);
            }
            for o in self.inner.observers.read().iter() {
                o.foreign_commits(ts);
            }
        }
        Ok(raw)
    }

    /// Starts a read-write transaction on the current snapshot.
    pub fn begin(&self) -> Transaction {
        self.transaction(u64::MAX, false)
    }

    /// A transaction reading at `ts` (at most the newest commit), registered as a reader
    /// until it is dropped.
    fn transaction(&self, ts: u64, read_only: bool) -> Transaction {
        if self.inner.shared
            && let Err(e) = self.sync_head()
        {
            // An older snapshot is still a snapshot; a commit checks again.
            tracing::warn!(error = %e, "reading the newest commit from the shared engine failed");
        }
        let mut readers = self.inner.readers.lock();
        let read_ts = ts.min(self.current_ts());
        *readers.entry(read_ts).or_insert(0) += 1;
        drop(readers);
        Transaction {
            store: self.clone(),
            read_ts,
            read_only,
            writes: BTreeMap::new(),
            undo: None,
            unchanged_keys: std::collections::BTreeSet::new(),
            unchanged_keyspaces: std::collections::BTreeSet::new(),
            principal: None,
            statements: Vec::new(),
            labels: BTreeMap::new(),
            after_commit: Vec::new(),
            observed: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Starts a read-only transaction that sees the database as of `ts` (microseconds). A
    /// time after the newest commit reads the newest commit.
    pub fn begin_read_only(&self, ts: u64) -> Transaction {
        self.transaction(ts, true)
    }

    fn release_reader(&self, ts: u64) {
        let mut readers = self.inner.readers.lock();
        if let Some(n) = readers.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                readers.remove(&ts);
            }
        }
    }

    /// Holds history at or after `ts` readable until the pin is dropped (or moved on): the
    /// GC horizon never passes it. For long reads of the past — a backup, an export, a
    /// change stream catching up. Refused when `ts` is already before the horizon.
    pub fn pin(&self, ts: u64) -> Result<Pin> {
        let mut readers = self.inner.readers.lock();
        self.check_readable(ts)?;
        *readers.entry(ts).or_insert(0) += 1;
        Ok(Pin {
            store: self.clone(),
            ts,
        })
    }

    /// The read time of the oldest open transaction, pin or change stream, if any.
    pub fn oldest_reader(&self) -> Option<u64> {
        self.inner.readers.lock().keys().next().copied()
    }

    /// The horizon of key spaces without a retention of their own (0: all of their history
    /// is kept).
    pub fn gc_horizon(&self) -> u64 {
        self.inner.horizons.read().default
    }

    /// Every key space's GC horizon.
    pub fn horizons(&self) -> Arc<Horizons> {
        self.inner.horizons.read().clone()
    }

    /// Fails, naming the earliest time readable everywhere, when `ts` is before the GC
    /// horizon of any key space: what a pin or a change stream (which read every key space)
    /// needs.
    pub fn check_readable(&self, ts: u64) -> Result<()> {
        before_horizon(ts, self.inner.horizons.read().highest())
    }

    /// Fails, naming the earliest readable time, when `ts` is before `keyspace`'s horizon.
    pub fn check_readable_in(&self, keyspace: Keyspace, ts: u64) -> Result<()> {
        before_horizon(ts, self.inner.horizons.read().of(keyspace))
    }

    /// Moves the default GC horizon toward `cutoff` (now − retention); see
    /// [`Store::advance_horizons`]. Returns the default horizon.
    pub fn advance_gc_horizon(&self, cutoff: u64) -> Result<u64> {
        let mut wanted = (*self.horizons()).clone();
        wanted.default = cutoff;
        Ok(self.advance_horizons(&wanted, false)?.default)
    }

    /// Moves the GC horizons toward `wanted`, never backwards, never past the oldest open
    /// transaction, pin or change stream, nor past the newest commit (a horizon in the
    /// future would refuse reads of the present). A retention goal beyond those is taken
    /// as far as they allow; a purge beyond them fails with `strict_purges`, naming the
    /// time still read. Stores the horizons and hands them to the engine, whose compactions
    /// then drop the versions no read at or after them needs.
    pub fn advance_horizons(
        &self,
        wanted: &Horizons,
        strict_purges: bool,
    ) -> Result<Arc<Horizons>> {
        let _one_at_a_time = self.inner.advancing.lock();
        let next = {
            let readers = self.inner.readers.lock();
            let oldest_reader = readers.keys().next().copied().unwrap_or(u64::MAX);
            let limit = oldest_reader.min(self.current_ts());
            if strict_purges && let Some(&ts) = wanted.purged.values().find(|&&ts| ts > limit) {
                return Err(Error::InvalidInput(format!(
                    "cannot delete history before {}: {} is still read (by an open transaction, \
                     a pin or a change stream) or is after the newest commit",
                    crate::Timestamp::from_micros(ts),
                    crate::Timestamp::from_micros(limit)
                )));
            }
            let clamped = Horizons {
                default: wanted.default.min(limit),
                retained: wanted
                    .retained
                    .iter()
                    .map(|(&k, &h)| (k, h.min(limit)))
                    .collect(),
                purged: wanted
                    .purged
                    .iter()
                    .map(|(&k, &h)| (k, h.min(limit)))
                    .collect(),
            };
            let current = self.horizons();
            let next = current.advanced(&clamped);
            if next == *current {
                return Ok(current);
            }
            // Reads and pins before the new horizons are refused from here on (under the
            // readers' lock, so no reader slips in behind them).
            let next = Arc::new(next);
            *self.inner.horizons.write() = next.clone();
            next
        };
        // Committed like a row, so the audit trail has every move. Only then may compaction
        // act on them: if the commit fails, reads stay refused but nothing is collected.
        let mut txn = self.begin();
        txn.label_keyspace(SYSTEM_KEYSPACE, "catalog");
        txn.put(
            SYSTEM_KEYSPACE,
            horizons_key(),
            crate::record::encode(HORIZONS_FORMAT, &*next),
        )?;
        txn.commit()?;
        self.inner.engine.set_gc_horizons(next.clone());
        Ok(next)
    }

    /// The value of `key` as of `ts`, with the timestamp of the version that holds it.
    pub fn get_at(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        ts: u64,
    ) -> Result<Option<(u64, Vec<u8>)>> {
        if ts < self.current_ts() {
            // A time before the newest commit: what it sees is the newest version at or
            // before it, wherever that is, and the versions family holds every version (the
            // current one too) — one seek, where a current-state lookup first would be
            // followed by that seek whenever the key changed since.
            self.check_readable_in(keyspace, ts)?;
            return self.version_at(keyspace, key, ts);
        }
        Ok(self.read_at(keyspace, key, ts)?.0)
    }

    /// The newest version of `key` at or before `ts`: one seek in the versions family.
    fn version_at(&self, keyspace: Keyspace, key: &[u8], ts: u64) -> Result<Option<Stamped>> {
        let mut cursor = self.inner.engine.cursor(ColumnFamily::Versions)?;
        version_at(cursor.as_mut(), keyspace, key, ts)
    }

    /// [`Store::get_at`], and whether the answer is the key's current entry (no later
    /// commit replaced it) — what a writer may rely on until another commit writes there.
    fn read_at(&self, keyspace: Keyspace, key: &[u8], ts: u64) -> Result<(Option<Stamped>, bool)> {
        self.check_readable_in(keyspace, ts)?;
        let latest = encoding::latest_key(keyspace, key);
        let Some(raw) = self.inner.engine.get(ColumnFamily::Latest, &latest)? else {
            return Ok((None, true));
        };
        let (latest_ts, op, row) = decode_latest_value(&raw)?;
        if latest_ts <= ts {
            return Ok((live(op, row)?.map(|r| (latest_ts, r)), true));
        }
        Ok((self.version_at(keyspace, key, ts)?, false))
    }

    /// [`Store::read_at`] for several keys of one key space: the current state of all of
    /// them in one batched lookup, then a versions seek for each key a commit after `ts`
    /// changed.
    fn read_many_at(
        &self,
        keyspace: Keyspace,
        keys: &[Vec<u8>],
        ts: u64,
    ) -> Result<Vec<Option<Stamped>>> {
        self.check_readable_in(keyspace, ts)?;
        let latest: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| encoding::latest_key(keyspace, k))
            .collect();
        let found = self.inner.engine.multi_get(ColumnFamily::Latest, &latest)?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, raw) in keys.iter().zip(found) {
            out.push(match raw {
                None => None,
                Some(raw) => {
                    let (latest_ts, op, row) = decode_latest_value(&raw)?;
                    if latest_ts <= ts {
                        live(op, row)?.map(|r| (latest_ts, r))
                    } else {
                        self.version_at(keyspace, key, ts)?
                    }
                }
            });
        }
        Ok(out)
    }

    /// [`Store::get_at`] for several keys of one key space, in the order given.
    pub fn get_many_at(
        &self,
        keyspace: Keyspace,
        keys: &[Vec<u8>],
        ts: u64,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        if ts < self.current_ts() {
            return keys
                .iter()
                .map(|k| Ok(self.get_at(keyspace, k, ts)?.map(|(_, v)| v)))
                .collect();
        }
        Ok(self
            .read_many_at(keyspace, keys, ts)?
            .into_iter()
            .map(|s| s.map(|(_, v)| v))
            .collect())
    }

    /// Scans `range` of a key space as of `ts`, in key order.
    pub fn scan_at(&self, keyspace: Keyspace, range: KeyRange, ts: u64) -> Result<ScanAt> {
        self.check_readable_in(keyspace, ts)?;
        let latest = self.inner.engine.cursor(ColumnFamily::Latest)?;
        Ok(ScanAt {
            store: self.clone(),
            keyspace,
            start_excluded: match &range {
                KeyRange::Range(Bound::Excluded(s), _) => Some(encoding::latest_key(keyspace, s)),
                _ => None,
            },
            end: EncodedEnd::of(&range, keyspace),
            seek: range.seek_key(keyspace, true),
            ts,
            latest,
            versions: None,
            started: false,
            done: false,
            older: None,
        })
    }

    /// A key about halfway between `after` and the last key of `keyspace`, to split what is
    /// left of a whole-keyspace scan between two threads: scanning up to it (excluded) and
    /// from it covers the rest. `None` when the engine cannot tell or the rest is too
    /// small to split.
    pub fn split_after(&self, keyspace: Keyspace, after: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(last) = self.inner.engine.last_key_before(
            ColumnFamily::Latest,
            &encoding::latest_keyspace_end(keyspace),
        )?
        else {
            return Ok(None);
        };
        if !encoding::is_latest_key_of(&last, keyspace) {
            return Ok(None);
        }
        let (_, last) = encoding::parse_latest_key(&last)?;
        Ok(encoding::midpoint(after, &last))
    }

    /// True when every one of `latest_keys` (current-state keys of `keyspace`, at least
    /// [`APPEND_CHECK_KEYS`] of them) sorts after the last key the key space has, so none
    /// exists: one seek instead of a lookup per key, for the multi-row insert that appends
    /// (a bulk load in key order). Any current-state key counts, deleted or newer than a
    /// reader's snapshot, so the answer only errs towards looking keys up. `false` when
    /// the engine cannot tell cheaply.
    fn appends_after(&self, keyspace: Keyspace, latest_keys: &[Vec<u8>]) -> Result<bool> {
        if latest_keys.len() < APPEND_CHECK_KEYS {
            return Ok(false);
        }
        let Some(lowest) = latest_keys.iter().min() else {
            return Ok(false);
        };
        // The last key before the key space's end: this key space's last, or (when it has
        // none) one of an earlier key space or family section, which sorts before all of
        // this key space's keys too.
        Ok(self
            .inner
            .engine
            .last_key_before(
                ColumnFamily::Latest,
                &encoding::latest_keyspace_end(keyspace),
            )?
            .is_some_and(|last| last < *lowest))
    }

    /// Every version of `key` committed at or before `ts`, oldest first.
    pub fn history(&self, keyspace: Keyspace, key: &[u8], ts: u64) -> Result<Vec<Version>> {
        let range = KeyRange::Range(Bound::Included(key.to_vec()), Bound::Included(key.to_vec()));
        let mut versions: Vec<Version> = self
            .versions(keyspace, range, ts, TimeWindow::All)?
            .collect::<Result<_>>()?;
        versions.reverse();
        Ok(versions)
    }

    /// The versions (including deletes) in `range` committed at or before `ts` whose
    /// lifetime overlaps `window`; per key newest first, keys in order.
    pub fn versions(
        &self,
        keyspace: Keyspace,
        range: KeyRange,
        ts: u64,
        window: TimeWindow,
    ) -> Result<VersionScan> {
        // A window that starts before the horizon would silently miss collected versions;
        // ALL returns what is kept.
        match window {
            TimeWindow::Between(from, _) | TimeWindow::FromTo(from, _) => {
                self.check_readable_in(keyspace, from)?
            }
            TimeWindow::All => {}
        }
        let mut cursor = self.inner.engine.cursor(ColumnFamily::Versions)?;
        cursor.seek(&range.seek_key(keyspace, false));
        Ok(VersionScan {
            cursor,
            keyspace,
            range,
            ts,
            window,
            pending: Vec::new(),
            done: false,
        })
    }

    /// Commits `txn`'s writes. On an engine of its own, commits that arrive together are
    /// written together (group commit): each queues its request; one committer at a time
    /// leads, applying every request queued then, in order, in one engine write, and hands
    /// the lead to the first request queued behind them. The others sleep until their
    /// outcome (or the lead) is theirs.
    fn commit(&self, txn: &mut Transaction) -> Result<Option<CommitInfo>> {
        if txn.writes.is_empty() {
            return Ok(None);
        }
        let request = CommitRequest::take_from(txn);
        if self.inner.shared {
            let mut state = self.inner.commit.lock();
            return self.commit_shared(&mut state, request);
        }
        let me = Arc::new(Queued {
            request: Mutex::new(Some(request)),
            turn: Mutex::new(Turn::Wait),
            changed: parking_lot::Condvar::new(),
        });
        let leads = {
            let mut queue = self.inner.queue.lock();
            queue.waiting.push(me.clone());
            !std::mem::replace(&mut queue.leading, true)
        };
        if !leads {
            let mut turn = me.turn.lock();
            loop {
                match std::mem::replace(&mut *turn, Turn::Wait) {
                    Turn::Done(outcome) => return outcome,
                    Turn::Lead => break,
                    Turn::Wait => me.changed.wait(&mut turn),
                }
            }
        }
        // Leading: this request is among those queued now.
        let group = std::mem::take(&mut self.inner.queue.lock().waiting);
        {
            let mut state = self.inner.commit.lock();
            self.apply_group(&mut state, &group);
        }
        {
            let mut queue = self.inner.queue.lock();
            match queue.waiting.first() {
                Some(next) => next.set(Turn::Lead),
                None => queue.leading = false,
            }
        }
        match std::mem::replace(&mut *me.turn.lock(), Turn::Wait) {
            Turn::Done(outcome) => outcome,
            _ => Err(Error::Engine(
                "internal: a queued commit was left without an outcome".into(),
            )),
        }
    }

    /// Applies the queued requests of `group`, in order, in one engine write. A request that
    /// conflicts (with the stored state or with an earlier one of the group) fails alone; an
    /// observer's or the engine's failure fails every request of the group, and leaves the
    /// commit state as it was.
    fn apply_group(&self, state: &mut CommitState, group: &[Arc<Queued>]) {
        let mut replaced = Replaced::default();
        let mut written = GroupWrites::new();
        let mut batch = WriteBatch::new();
        let mut applied: Vec<(&Queued, Commit)> = Vec::new();
        let observers = self.inner.observers.read().clone();
        let mut failure = None;
        for (i, q) in group.iter().enumerate() {
            let Some(mut request) = q.request.lock().take() else {
                continue;
            };
            let prepared = match self.prepare(state, &mut request, &written, &mut batch) {
                Err(e) => {
                    q.set(Turn::Done(Err(e)));
                    continue;
                }
                Ok(None) => {
                    q.set(Turn::Done(Ok(None)));
                    continue;
                }
                Ok(Some(p)) => p,
            };
            let commit = prepared.commit;
            if let Err(e) = observers
                .iter()
                .try_for_each(|o| o.on_commit(&commit, &mut batch))
            {
                // The batch may hold part of this commit's observer entries: nothing of the
                // group is written.
                q.set(Turn::Done(Err(e.clone())));
                failure = Some(e);
                break;
            }
            state.advance(&commit, prepared.high_water, &mut replaced);
            // Only later requests of the group check against its keys.
            if i + 1 < group.len() {
                for c in &commit.changes {
                    written.entry(c.keyspace).or_default().insert(c.key.clone());
                }
            }
            applied.push((q, commit));
        }
        let failure = match failure {
            Some(e) => Some(e),
            None if applied.is_empty() => None,
            None => self.inner.engine.write(batch).err(),
        };
        if let Some(e) = failure {
            state.undo(replaced);
            // Every request not refused on its own (applied, or not reached) fails.
            for q in group {
                if !matches!(*q.turn.lock(), Turn::Done(_)) {
                    q.set(Turn::Done(Err(e.clone())));
                }
            }
            return;
        }
        self.inner.commit_writes.fetch_add(1, Ordering::Relaxed);
        for (q, commit) in &applied {
            q.set(Turn::Done(Ok(Some(self.publish(&observers, commit)))));
        }
    }

    /// Makes a written commit visible and tells the observers.
    fn publish(&self, observers: &[Arc<dyn CommitObserver>], commit: &Commit) -> CommitInfo {
        self.inner
            .visible_ts
            .store(commit.commit_ts, Ordering::Release);
        for o in observers {
            o.after_commit(commit);
        }
        CommitInfo {
            commit_ts: commit.commit_ts,
            seq: commit.seq,
        }
    }

    /// Commits one request on a shared engine: the commit applies only if the head the
    /// engine holds is still the one it was built on (no other process committed in
    /// between), else it is built again.
    fn commit_shared(
        &self,
        state: &mut CommitState,
        mut request: CommitRequest,
    ) -> Result<Option<CommitInfo>> {
        let engine = &self.inner.engine;
        let no_group = GroupWrites::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let head = self.catch_up(state)?;
            let mut batch = WriteBatch::new();
            let Some(prepared) = self.prepare(state, &mut request, &no_group, &mut batch)? else {
                return Ok(None);
            };
            let commit = prepared.commit;
            let observers = self.inner.observers.read().clone();
            for o in &observers {
                o.on_commit(&commit, &mut batch)?;
            }
            let key = encoding::meta_key(META_LAST_COMMIT);
            if !engine.write_if(batch, ColumnFamily::Meta, &key, head.as_deref())?
                // A retried request whose first attempt applied finds its own head.
                && engine.get(ColumnFamily::Meta, &key)?.as_deref() != Some(&prepared.last[..])
            {
                if attempt >= SHARED_COMMIT_ATTEMPTS {
                    return Err(Error::Conflict(format!(
                        "other servers committed first {attempt} times in a row"
                    )));
                }
                continue;
            }
            self.inner.commit_writes.fetch_add(1, Ordering::Relaxed);
            state.advance(&commit, prepared.high_water, &mut Replaced::default());
            return Ok(Some(self.publish(&observers, &commit)));
        }
    }

    /// Checks `request` against the commit state and the keys earlier commits of its group
    /// wrote (`written`, not yet in the engine), and adds its data and metadata to `batch`:
    /// the commit to hand the observers, or `None` when it changes nothing. On an error
    /// nothing was added.
    fn prepare(
        &self,
        state: &CommitState,
        request: &mut CommitRequest,
        written: &GroupWrites,
        batch: &mut WriteBatch,
    ) -> Result<Option<Prepared>> {
        let engine = &self.inner.engine;
        let shared = self.inner.shared;
        let read_ts = request.read_ts;
        let in_group = |keyspace: Keyspace, key: &[u8]| {
            written
                .get(&keyspace)
                .is_some_and(|keys| keys.contains(key))
        };
        for (keyspace, key) in &request.unchanged_keys {
            let changed = in_group(*keyspace, key)
                || match engine.get(ColumnFamily::Latest, &encoding::latest_key(*keyspace, key))? {
                    Some(raw) => decode_latest_value(&raw)?.0 > read_ts,
                    None => false,
                };
            if changed {
                return Err(Error::Conflict(format!(
                    "key space {keyspace}, key {} changed after this transaction began",
                    encoding::printable_key(key)
                )));
            }
        }
        for keyspace in &request.unchanged_keyspaces {
            let last = state
                .keyspace_ts
                .get(keyspace)
                .copied()
                .unwrap_or(state.opened_ts);
            if last > read_ts {
                return Err(Error::Conflict(format!(
                    "key space {keyspace} was written after this transaction began"
                )));
            }
        }
        let conflict = |keyspace: Keyspace, key: &[u8]| {
            Error::Conflict(format!(
                "key space {keyspace}, key {}",
                encoding::printable_key(key)
            ))
        };
        let mut changes = Vec::with_capacity(request.writes.len());
        // What point reads saw stands while no commit wrote the key space since; every
        // other written key's current entry is read, all in one request.
        let mut seen = Vec::with_capacity(request.writes.len());
        let mut lookups = Vec::new();
        for (keyspace, key) in request.writes.keys() {
            if in_group(*keyspace, key) {
                return Err(conflict(*keyspace, key));
            }
            let unchanged = state
                .keyspace_ts
                .get(keyspace)
                .copied()
                .unwrap_or(state.opened_ts)
                <= read_ts;
            let s = if unchanged && !request.observed.is_empty() {
                request.observed.remove(&(*keyspace, key.clone()))
            } else {
                None
            };
            if s.is_none() {
                lookups.push(encoding::latest_key(*keyspace, key));
            }
            seen.push(s);
        }
        let mut found = engine
            .multi_get(ColumnFamily::Latest, &lookups)?
            .into_iter();
        for (((keyspace, key), after), seen) in request.writes.iter().zip(seen) {
            let latest = match seen {
                Some(_) => None,
                None => found.next().flatten(),
            };
            let before = match (seen, latest) {
                (Some(row), _) => row,
                (None, Some(raw)) => {
                    let (ts, op, row) = decode_latest_value(&raw)?;
                    if ts > read_ts {
                        return Err(conflict(*keyspace, key));
                    }
                    live(op, row)?
                }
                (None, None) => None,
            };
            let op = match (&before, after) {
                (None, None) => continue,
                (Some(_), None) => Operation::Delete,
                (None, Some(_)) => Operation::Insert,
                (Some(_), Some(_)) => Operation::Update,
            };
            changes.push(Change {
                keyspace: *keyspace,
                key: key.clone(),
                op,
                before,
                after: after.clone(),
            });
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let commit_ts = now_micros().max(state.last_ts + 1);
        let seq = state.last_seq + 1;
        for c in &changes {
            let row = c.after.as_deref().unwrap_or(&[]);
            let op = c.op.to_byte();
            batch.put(
                ColumnFamily::Versions,
                encoding::version_key(c.keyspace, &c.key, commit_ts),
                encoding::encode_version_value(op, row),
            );
            batch.put(
                ColumnFamily::Latest,
                encoding::latest_key(c.keyspace, &c.key),
                encoding::encode_latest_value(commit_ts, op, row),
            );
        }
        let mut last = Vec::with_capacity(24);
        encoding::encode_u64(&mut last, commit_ts);
        encoding::encode_u64(&mut last, seq);
        if shared {
            // Which process wrote the head: a commit whose answer was lost can tell its own
            // write from another's.
            encoding::encode_u64(&mut last, self.inner.instance);
        }
        batch.put(
            ColumnFamily::Meta,
            encoding::meta_key(META_LAST_COMMIT),
            last.clone(),
        );
        // The row-id high-water mark moves only with inserts into tables without a primary
        // key; every other commit leaves it as stored. (Shared engines reserve ids by
        // blocks instead: see `next_id`.)
        let high_water = self.inner.next_id.load(Ordering::Acquire);
        if !shared && high_water != state.id_high_water {
            let mut hw = Vec::with_capacity(8);
            encoding::encode_u64(&mut hw, high_water);
            batch.put(
                ColumnFamily::Meta,
                encoding::meta_key(META_ID_HIGH_WATER),
                hw,
            );
        }
        // A shared engine's commit may be built again: it keeps its own copies.
        let (statements, labels) = if shared {
            (request.statements.clone(), request.labels.clone())
        } else {
            (
                std::mem::take(&mut request.statements),
                std::mem::take(&mut request.labels),
            )
        };
        Ok(Some(Prepared {
            commit: Commit {
                commit_ts,
                seq,
                read_ts,
                principal: request.principal.clone(),
                statements,
                changes,
                labels,
            },
            last,
            high_water,
        }))
    }
}

/// What a commit needs of its transaction, moved out of it: whichever committer holds the
/// commit lock applies it (see `Store::commit`).
struct CommitRequest {
    read_ts: u64,
    writes: BTreeMap<(Keyspace, Vec<u8>), Option<Vec<u8>>>,
    unchanged_keys: std::collections::BTreeSet<(Keyspace, Vec<u8>)>,
    unchanged_keyspaces: std::collections::BTreeSet<Keyspace>,
    principal: Option<String>,
    statements: Vec<String>,
    labels: BTreeMap<Keyspace, String>,
    observed: Observed,
}

impl CommitRequest {
    fn take_from(txn: &mut Transaction) -> Self {
        Self {
            read_ts: txn.read_ts,
            writes: std::mem::take(&mut txn.writes),
            unchanged_keys: std::mem::take(&mut txn.unchanged_keys),
            unchanged_keyspaces: std::mem::take(&mut txn.unchanged_keyspaces),
            principal: txn.principal.clone(),
            statements: std::mem::take(&mut txn.statements),
            labels: std::mem::take(&mut txn.labels),
            observed: std::mem::take(txn.observed.get_mut()),
        }
    }
}

/// The keys earlier commits of a group wrote, per key space.
type GroupWrites = HashMap<Keyspace, std::collections::HashSet<Vec<u8>>>;

/// The commits waiting to be applied, and whether a committer leads now.
#[derive(Default)]
struct CommitQueue {
    waiting: Vec<Arc<Queued>>,
    leading: bool,
}

/// A commit request in the queue, and whose turn it is.
struct Queued {
    request: Mutex<Option<CommitRequest>>,
    turn: Mutex<Turn>,
    changed: parking_lot::Condvar,
}

enum Turn {
    /// Queued, its committer asleep.
    Wait,
    /// Its committer leads the next group.
    Lead,
    /// Applied (or refused): the outcome.
    Done(Result<Option<CommitInfo>>),
}

impl Queued {
    /// Moves the request on and wakes its committer.
    fn set(&self, turn: Turn) {
        *self.turn.lock() = turn;
        self.changed.notify_one();
    }
}

/// A request checked and added to the batch, before its observers ran.
struct Prepared {
    commit: Commit,
    /// The last-commit mark it writes.
    last: Vec<u8>,
    /// The row-id high-water mark once it is written.
    high_water: u64,
}

/// The row of a version, or `None` for a tombstone.
fn live(op: u8, row: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(match Operation::from_byte(op)? {
        Operation::Delete => None,
        _ => Some(row.to_vec()),
    })
}

/// The version of `key` visible at `ts`: one seek to `key ‖ !ts`.
fn version_at(
    cursor: &mut dyn Cursor,
    keyspace: Keyspace,
    key: &[u8],
    ts: u64,
) -> Result<Option<(u64, Vec<u8>)>> {
    let prefix = encoding::version_key_prefix(keyspace, key);
    cursor.seek(&encoding::version_key(keyspace, key, ts));
    if !cursor.valid() {
        cursor.status()?;
        return Ok(None);
    }
    if !cursor.key().starts_with(&prefix) || cursor.key().len() != prefix.len() + 8 {
        return Ok(None);
    }
    let (inv, _) = encoding::decode_u64(&cursor.key()[prefix.len()..])?;
    let (op, row) = decode_version_value(cursor.value())?;
    Ok(live(op, row)?.map(|r| (!inv, r)))
}

/// The end of a key range in latest-key form (escaped, so compared without decoding keys:
/// the escaping preserves order and prefixes).
enum EncodedEnd {
    Open,
    Prefix(Vec<u8>),
    Included(Vec<u8>),
    Excluded(Vec<u8>),
}

impl EncodedEnd {
    fn of(range: &KeyRange, keyspace: Keyspace) -> EncodedEnd {
        match range {
            KeyRange::All | KeyRange::Range(_, Bound::Unbounded) => EncodedEnd::Open,
            KeyRange::Prefix(p) => EncodedEnd::Prefix(encoding::latest_key_prefix_of(keyspace, p)),
            KeyRange::Range(_, Bound::Included(e)) => {
                EncodedEnd::Included(encoding::latest_key(keyspace, e))
            }
            KeyRange::Range(_, Bound::Excluded(e)) => {
                EncodedEnd::Excluded(encoding::latest_key(keyspace, e))
            }
        }
    }

    fn is_past(&self, raw: &[u8]) -> bool {
        match self {
            EncodedEnd::Open => false,
            EncodedEnd::Prefix(p) => !raw.starts_with(p),
            EncodedEnd::Included(e) => raw > e.as_slice(),
            EncodedEnd::Excluded(e) => raw >= e.as_slice(),
        }
    }
}

/// A scan of a key space as of a timestamp; yields `(key, row)` in key order.
///
/// Besides the iterator, [`ScanAt::advance`] moves to the next row and lends its bytes
/// ([`ScanAt::row`]) without copying them, decoding its key only when asked
/// ([`ScanAt::key`]): what a reader that needs only the rows wants.
pub struct ScanAt {
    store: Store,
    keyspace: Keyspace,
    /// An excluded start in latest-key form (an included one is where the scan seeks).
    start_excluded: Option<Vec<u8>>,
    end: EncodedEnd,
    seek: Vec<u8>,
    ts: u64,
    latest: Box<dyn Cursor>,
    versions: Option<Box<dyn Cursor>>,
    started: bool,
    done: bool,
    /// The current row when it is an older version than the latest entry (key, row).
    older: Option<(Vec<u8>, Vec<u8>)>,
}

impl ScanAt {
    /// Moves to the next row visible at the scan's time; `false` at the end (and after an
    /// error).
    pub fn advance(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let found = self.step();
        if !matches!(found, Ok(true)) {
            self.done = true;
        }
        found
    }

    fn step(&mut self) -> Result<bool> {
        self.older = None;
        loop {
            if self.started {
                self.latest.next();
            } else {
                self.started = true;
                self.latest.seek(&self.seek);
            }
            if !self.latest.valid() {
                self.latest.status()?;
                return Ok(false);
            }
            let raw_key = self.latest.key();
            if !encoding::is_latest_key_of(raw_key, self.keyspace) {
                return Ok(false);
            }
            if let Some(start) = &self.start_excluded
                && raw_key <= start.as_slice()
            {
                continue;
            }
            if self.end.is_past(raw_key) {
                return Ok(false);
            }
            let (latest_ts, op, _) = decode_latest_value(self.latest.value())?;
            if latest_ts <= self.ts {
                if Operation::from_byte(op)? == Operation::Delete {
                    continue;
                }
                return Ok(true);
            }
            let (_, key) = encoding::parse_latest_key(raw_key)?;
            if self.versions.is_none() {
                self.versions = Some(self.store.inner.engine.cursor(ColumnFamily::Versions)?);
            }
            if let Some(cursor) = self.versions.as_mut()
                && let Some((_, row)) = version_at(cursor.as_mut(), self.keyspace, &key, self.ts)?
            {
                self.older = Some((key, row));
                return Ok(true);
            }
        }
    }

    /// The current row's bytes (after [`ScanAt::advance`] returned `true`).
    pub fn row(&self) -> &[u8] {
        match &self.older {
            Some((_, row)) => row,
            None => decode_latest_value(self.latest.value())
                .map(|(_, _, row)| row)
                .unwrap_or_default(),
        }
    }

    /// The current row's key, decoded.
    pub fn key(&self) -> Result<Vec<u8>> {
        match &self.older {
            Some((key, _)) => Ok(key.clone()),
            None => Ok(encoding::parse_latest_key(self.latest.key())?.1),
        }
    }
}

impl Iterator for ScanAt {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(true) => Some(self.key().map(|k| (k, self.row().to_vec()))),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Which part of history a version scan keeps, by each version's lifetime
/// `[commit_ts, replaced_ts)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWindow {
    /// Every version.
    All,
    /// Versions alive at some instant in `[from, to]` (SQL:2011 `BETWEEN from AND to`).
    Between(u64, u64),
    /// Versions alive at some instant in `[from, to)` (SQL:2011 `FROM from TO to`).
    FromTo(u64, u64),
}

impl TimeWindow {
    fn keeps(self, from: u64, replaced: Option<u64>) -> bool {
        let alive_after = |t: u64| replaced.is_none_or(|r| r > t);
        match self {
            TimeWindow::All => true,
            TimeWindow::Between(a, b) => from <= b && alive_after(a),
            TimeWindow::FromTo(a, b) => from < b && alive_after(a),
        }
    }
}

/// A scan over versions; see [`Store::versions`].
pub struct VersionScan {
    cursor: Box<dyn Cursor>,
    keyspace: Keyspace,
    range: KeyRange,
    ts: u64,
    window: TimeWindow,
    pending: Vec<Version>,
    done: bool,
}

impl VersionScan {
    /// Reads all versions of the next key in range into `pending` (reversed, so `pop` yields
    /// newest first).
    fn fill(&mut self) -> Result<()> {
        let mut group: Vec<(u64, Operation, Vec<u8>)> = Vec::new();
        let mut group_key: Option<Vec<u8>> = None;
        loop {
            if !self.cursor.valid() {
                self.cursor.status()?;
                if group_key.is_none() {
                    self.done = true;
                }
                break;
            }
            let (ks, key, ts) = encoding::parse_version_key(self.cursor.key())?;
            if ks != self.keyspace || self.range.is_past_end(&key) {
                if group_key.is_none() {
                    self.done = true;
                }
                break;
            }
            if self.range.is_before_start(&key) {
                self.cursor.next();
                continue;
            }
            match &group_key {
                Some(g) if *g != key => break,
                None => group_key = Some(key.clone()),
                _ => {}
            }
            if ts <= self.ts {
                let (op, row) = decode_version_value(self.cursor.value())?;
                group.push((ts, Operation::from_byte(op)?, row.to_vec()));
            }
            self.cursor.next();
        }
        let Some(key) = group_key else {
            return Ok(());
        };
        let mut replaced = None;
        let mut out = Vec::new();
        for (ts, op, row) in group {
            if self.window.keeps(ts, replaced) {
                out.push(Version {
                    key: key.clone(),
                    commit_ts: ts,
                    replaced_ts: replaced,
                    op,
                    value: (op != Operation::Delete).then_some(row),
                });
            }
            replaced = Some(ts);
        }
        out.reverse();
        self.pending = out;
        Ok(())
    }
}

impl Iterator for VersionScan {
    type Item = Result<Version>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.pending.pop() {
                return Some(Ok(v));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

/// A transaction: reads at a snapshot, buffers writes, commits atomically.
pub struct Transaction {
    store: Store,
    read_ts: u64,
    read_only: bool,
    writes: BTreeMap<(Keyspace, Vec<u8>), Option<Vec<u8>>>,
    /// Once a savepoint was taken: every write since, with what it replaced.
    undo: Option<Vec<Undo>>,
    /// Keys that must be unchanged since `read_ts` for the commit to succeed.
    unchanged_keys: std::collections::BTreeSet<(Keyspace, Vec<u8>)>,
    /// Key spaces no commit may have written since `read_ts`.
    unchanged_keyspaces: std::collections::BTreeSet<Keyspace>,
    principal: Option<String>,
    statements: Vec<String>,
    labels: BTreeMap<Keyspace, String>,
    /// Work that may happen only once the transaction's writes are committed.
    after_commit: Vec<AfterCommit>,
    /// What point reads found in the current state (a key's live row, or none), when it was
    /// current at `read_ts`: the commit uses it instead of reading the key again, provided no
    /// commit wrote the key's key space since `read_ts`. At most [`OBSERVED_KEYS`] keys.
    observed: parking_lot::Mutex<Observed>,
}

/// Per key read for a write: its live row then (or none).
type Observed = HashMap<(Keyspace, Vec<u8>), Option<Vec<u8>>>;

/// A row with the commit timestamp of its version.
type Stamped = (u64, Vec<u8>);

/// Keys a transaction remembers from its point reads for its commit (beyond, the commit
/// reads them again).
const OBSERVED_KEYS: usize = 65_536;

/// From this many keys on, a multi-row write's existence checks first try one seek for
/// the key space's last key ([`Store::appends_after`]); below, a lookup per key is as cheap.
const APPEND_CHECK_KEYS: usize = 16;

/// Work a transaction runs once it has committed; see [`Transaction::after_commit`].
type AfterCommit = Box<dyn FnOnce() + Send + Sync>;

impl Transaction {
    /// The snapshot this transaction reads.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    /// True for a read-only transaction.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// True when the transaction has buffered writes.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Makes the commit fail with [`Error::Conflict`] if another transaction committed
    /// `key` after this one began (what this transaction read of it is then stale).
    pub fn check_unchanged(&mut self, keyspace: Keyspace, key: &[u8]) {
        self.unchanged_keys.insert((keyspace, key.to_vec()));
    }

    /// Makes the commit fail with [`Error::Conflict`] if any transaction that committed
    /// after this one began wrote in `keyspace`.
    pub fn check_keyspace_unchanged(&mut self, keyspace: Keyspace) {
        self.unchanged_keyspaces.insert(keyspace);
    }

    /// True when the transaction has buffered writes in `keyspace`.
    pub fn writes_keyspace(&self, keyspace: Keyspace) -> bool {
        self.writes
            .range((keyspace, Vec::new())..)
            .next()
            .is_some_and(|((k, _), _)| *k == keyspace)
    }

    /// True when the transaction has buffered writes of keys that start with `prefix` in
    /// `keyspace`.
    pub fn writes_prefix(&self, keyspace: Keyspace, prefix: &[u8]) -> bool {
        self.writes
            .range((keyspace, prefix.to_vec())..)
            .next()
            .is_some_and(|((k, key), _)| *k == keyspace && key.starts_with(prefix))
    }

    /// Records who runs this transaction (for commit observers such as the audit trail).
    pub fn set_principal(&mut self, principal: Option<String>) {
        self.principal = principal;
    }

    /// Names a key space this transaction writes (for commit observers: the audit trail
    /// records table names, not numbers).
    pub fn label_keyspace(&mut self, keyspace: Keyspace, name: &str) {
        self.labels
            .entry(keyspace)
            .or_insert_with(|| name.to_string());
    }

    /// Records a statement this transaction ran (for commit observers).
    pub fn record_statement(&mut self, statement: &str) {
        self.statements.push(statement.to_string());
    }

    /// Reads `key`, seeing this transaction's own writes.
    pub fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(w) = self.writes.get(&(keyspace, key.to_vec())) {
            return Ok(w.clone());
        }
        // The snapshot's reads look at the current state first: with no commit to the key
        // since the transaction began, that one lookup (bloom-filtered) is the answer.
        Ok(self
            .store
            .read_at(keyspace, key, self.read_ts)?
            .0
            .map(|(_, v)| v))
    }

    /// [`Transaction::get`] for several keys of one key space, in the order given: the
    /// transaction's own writes, then one batched lookup for the rest.
    pub fn get_many(&self, keyspace: Keyspace, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if self.writes.is_empty() {
            // A reading transaction: no key to copy for a lookup in its writes.
            return Ok(self
                .store
                .read_many_at(keyspace, keys, self.read_ts)?
                .into_iter()
                .map(|s| s.map(|(_, v)| v))
                .collect());
        }
        let mut out: Vec<Option<Option<Vec<u8>>>> = keys
            .iter()
            .map(|k| self.writes.get(&(keyspace, k.clone())).cloned())
            .collect();
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .zip(&out)
            .filter(|(_, own)| own.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            let mut read = self
                .store
                .read_many_at(keyspace, &missing, self.read_ts)?
                .into_iter();
            for slot in out.iter_mut().filter(|s| s.is_none()) {
                *slot = Some(read.next().flatten().map(|(_, v)| v));
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    /// [`Transaction::get`] for a key the transaction is about to write (an existence check
    /// before an insert, the row an update changes): what it finds is remembered, so the
    /// commit does not read the key again unless another commit wrote its key space since.
    pub fn get_for_write(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let at = (keyspace, key.to_vec());
        if let Some(w) = self.writes.get(&at) {
            return Ok(w.clone());
        }
        if self.read_only {
            return self.get(keyspace, key);
        }
        if let Some(row) = self.observed.lock().get(&at) {
            return Ok(row.clone());
        }
        let (found, current) = self.store.read_at(keyspace, key, self.read_ts)?;
        let row = found.map(|(_, v)| v);
        // A key changed since this transaction began is not remembered: its commit will
        // read it again (and conflict).
        if current {
            let mut observed = self.observed.lock();
            if observed.len() < OBSERVED_KEYS {
                observed.insert(at, row.clone());
            }
        }
        Ok(row)
    }

    /// Reads the current entries of `keys` in one request and remembers them as
    /// [`Transaction::get_for_write`] would, so the point reads of a multi-row write that
    /// follow cost nothing (on an engine with a round trip per read, one instead of one
    /// per row). Keys this transaction wrote, or that changed after it began, are left to
    /// `get_for_write`.
    pub fn prefetch_for_write(&self, keyspace: Keyspace, keys: &[Vec<u8>]) -> Result<()> {
        if self.read_only || keys.len() < 2 {
            return Ok(());
        }
        self.store.check_readable_in(keyspace, self.read_ts)?;
        let wanted: Vec<&Vec<u8>> = {
            let observed = self.observed.lock();
            keys.iter()
                .filter(|k| {
                    let at = (keyspace, (*k).clone());
                    !self.writes.contains_key(&at) && !observed.contains_key(&at)
                })
                .take(OBSERVED_KEYS.saturating_sub(observed.len()))
                .collect()
        };
        let latest: Vec<Vec<u8>> = wanted
            .iter()
            .map(|k| encoding::latest_key(keyspace, k))
            .collect();
        let found = if self.store.appends_after(keyspace, &latest)? {
            vec![None; latest.len()]
        } else {
            self.store
                .inner
                .engine
                .multi_get(ColumnFamily::Latest, &latest)?
        };
        let mut observed = self.observed.lock();
        for (key, raw) in wanted.into_iter().zip(found) {
            let row = match raw {
                None => None,
                Some(raw) => {
                    let (ts, op, row) = decode_latest_value(&raw)?;
                    if ts > self.read_ts {
                        continue;
                    }
                    live(op, row)?
                }
            };
            observed.insert((keyspace, key.clone()), row);
        }
        Ok(())
    }

    /// Scans `range`, seeing this transaction's own writes as they were when the scan began.
    pub fn scan(&self, keyspace: Keyspace, range: KeyRange) -> Result<TxnScan> {
        let lower = (keyspace, Vec::new());
        let buffered: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .writes
            .range(lower..)
            .take_while(|((ks, _), _)| *ks == keyspace)
            .filter(|((_, k), _)| range.contains(k))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        Ok(TxnScan::new(
            self.store.scan_at(keyspace, range, self.read_ts)?,
            buffered,
        ))
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::TransactionState(
                "this transaction is read-only (it reads a past snapshot)".into(),
            ));
        }
        Ok(())
    }

    /// Writes `value` under `key`.
    pub fn put(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.check_writable()?;
        self.buffer(keyspace, key, Some(value));
        Ok(())
    }

    /// Deletes `key`.
    pub fn delete(&mut self, keyspace: Keyspace, key: Vec<u8>) -> Result<()> {
        self.check_writable()?;
        self.buffer(keyspace, key, None);
        Ok(())
    }

    /// Buffers a write; once a savepoint was taken, remembers what the key held in the
    /// write set before, so the savepoint can be restored.
    fn buffer(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Option<Vec<u8>>) {
        match &mut self.undo {
            Some(undo) => {
                let previous = self.writes.insert((keyspace, key.clone()), value);
                undo.push(((keyspace, key), previous));
            }
            None => {
                self.writes.insert((keyspace, key), value);
            }
        }
    }

    /// A point to return to (statement-level atomicity inside a transaction). Taking one
    /// costs nothing: from the first savepoint on, each write remembers what it replaced.
    pub fn savepoint(&mut self) -> Savepoint {
        Savepoint {
            writes: self.undo.get_or_insert_with(Vec::new).len(),
            after_commit: self.after_commit.len(),
        }
    }

    /// Runs `work` after the transaction commits, and never if it does not (a rollback, a
    /// conflict, a rollback to a savepoint taken before this call): for what the layers
    /// above derive from the transaction's writes and must not act on before they are
    /// durable and visible (a learned model trained on the rows an ANALYZE read).
    pub fn after_commit(&mut self, work: impl FnOnce() + Send + Sync + 'static) {
        self.after_commit.push(Box::new(work));
    }

    /// Drops every write made since `savepoint` (undoing them newest first).
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        self.after_commit.truncate(savepoint.after_commit);
        let Some(undo) = &mut self.undo else {
            return;
        };
        while undo.len() > savepoint.writes {
            let Some((key, previous)) = undo.pop() else {
                break;
            };
            match previous {
                Some(value) => {
                    self.writes.insert(key, value);
                }
                None => {
                    self.writes.remove(&key);
                }
            }
        }
    }

    /// Commits. Returns the commit's timestamp and sequence, or `None` when the
    /// transaction changed nothing. On [`Error::Conflict`] nothing was written.
    pub fn commit(mut self) -> Result<Option<CommitInfo>> {
        let after = std::mem::take(&mut self.after_commit);
        let info = if self.writes.is_empty() {
            None
        } else {
            let store = self.store.clone();
            store.commit(&mut self)?
        };
        for work in after {
            work();
        }
        Ok(info)
    }

    /// Discards the transaction's writes.
    pub fn rollback(self) {}
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.store.release_reader(self.read_ts);
    }
}

/// A pinned read time; see [`Store::pin`].
pub struct Pin {
    store: Store,
    ts: u64,
}

impl Pin {
    /// The pinned time.
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// Moves the pin forward to `ts` (a reader that has read up to there); never backward.
    pub fn advance(&mut self, ts: u64) {
        if ts <= self.ts {
            return;
        }
        let mut readers = self.store.inner.readers.lock();
        *readers.entry(ts).or_insert(0) += 1;
        drop(readers);
        self.store.release_reader(self.ts);
        self.ts = ts;
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.store.release_reader(self.ts);
    }
}

/// A point in a transaction's writes; see [`Transaction::savepoint`]. Rolling back to it
/// again after writes made since is allowed (SQL's `ROLLBACK TO` keeps the savepoint); one
/// taken after a point already rolled back to means nothing.
#[derive(Debug, Clone, Copy)]
pub struct Savepoint {
    writes: usize,
    after_commit: usize,
}

/// A buffered write and what the write set held for its key before (`None`: nothing).
type Undo = ((Keyspace, Vec<u8>), Option<Option<Vec<u8>>>);

/// A buffered write: the key and its new value (`None` for a delete).
type BufferedWrite = (Vec<u8>, Option<Vec<u8>>);

/// A scan that merges a transaction's buffered writes over the stored snapshot.
pub struct TxnScan {
    inner: TxnScanInner,
    /// The current pair when merging (the stored scan lends its own otherwise).
    current: Option<(Vec<u8>, Vec<u8>)>,
}

enum TxnScanInner {
    /// No write of the transaction falls in the range: the stored rows as they are.
    Stored(ScanAt),
    /// The stored rows merged with the transaction's own writes.
    Merged {
        stored: std::iter::Peekable<ScanAt>,
        buffered: std::iter::Peekable<std::vec::IntoIter<BufferedWrite>>,
    },
}

impl TxnScan {
    fn new(stored: ScanAt, buffered: Vec<BufferedWrite>) -> TxnScan {
        let inner = if buffered.is_empty() {
            TxnScanInner::Stored(stored)
        } else {
            TxnScanInner::Merged {
                stored: stored.peekable(),
                buffered: buffered.into_iter().peekable(),
            }
        };
        TxnScan {
            inner,
            current: None,
        }
    }

    /// Moves to the next row; `false` at the end. Its bytes are then [`TxnScan::row`].
    pub fn advance(&mut self) -> Result<bool> {
        match &mut self.inner {
            TxnScanInner::Stored(s) => s.advance(),
            TxnScanInner::Merged { .. } => match self.merged_next() {
                Some(Ok(pair)) => {
                    self.current = Some(pair);
                    Ok(true)
                }
                Some(Err(e)) => Err(e),
                None => Ok(false),
            },
        }
    }

    /// The current row's bytes.
    pub fn row(&self) -> &[u8] {
        match &self.inner {
            TxnScanInner::Stored(s) => s.row(),
            TxnScanInner::Merged { .. } => self.current.as_ref().map(|c| &c.1[..]).unwrap_or(&[]),
        }
    }

    /// The current row's key.
    pub fn key(&self) -> Result<Vec<u8>> {
        match &self.inner {
            TxnScanInner::Stored(s) => s.key(),
            TxnScanInner::Merged { .. } => Ok(self
                .current
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default()),
        }
    }

    fn merged_next(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        let TxnScanInner::Merged { stored, buffered } = &mut self.inner else {
            return None;
        };
        loop {
            let take_buffered = match (stored.peek(), buffered.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return stored.next(),
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(Ok((sk, _))), Some((bk, _))) => {
                    if sk == bk {
                        stored.next();
                        true
                    } else {
                        bk < sk
                    }
                }
            };
            if take_buffered {
                match buffered.next() {
                    Some((k, Some(v))) => return Some(Ok((k, v))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return stored.next();
        }
    }
}

impl Iterator for TxnScan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            TxnScanInner::Stored(s) => s.next(),
            TxnScanInner::Merged { .. } => self.merged_next(),
        }
    }
}
