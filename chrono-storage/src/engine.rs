//! The ordered key-value engine under the MVCC layer, with no RocksDB types in it.
//!
//! An [`Engine`] stores bytes in a few column families (declared once, in [`ColumnFamily`]),
//! reads them by key or through a seekable [`Cursor`], and applies a [`WriteBatch`]
//! atomically. [`crate::RocksEngine`] is the durable implementation; [`MemoryEngine`] keeps
//! everything in a `BTreeMap` for tests and throw-away databases.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::Result;
use crate::horizon::{Horizons, VersionGc};

/// The column families of a ChronoDB database. This is the only place they are declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnFamily {
    /// Store metadata: the last commit timestamp and sequence, id high-water marks.
    Meta,
    /// Every version of every key, newest first per key (`… ‖ key ‖ !commit_ts`).
    Versions,
    /// The newest version of each key (or its tombstone), so reading the current state does
    /// not slow down as history grows.
    Latest,
    /// The audit trail, written by a commit observer in the same batch as the data.
    Audit,
}

impl ColumnFamily {
    /// Every column family, in a fixed order.
    pub const ALL: [ColumnFamily; 4] = [
        ColumnFamily::Meta,
        ColumnFamily::Versions,
        ColumnFamily::Latest,
        ColumnFamily::Audit,
    ];

    /// The name on disk.
    pub fn name(self) -> &'static str {
        match self {
            ColumnFamily::Meta => "default",
            ColumnFamily::Versions => "versions",
            ColumnFamily::Latest => "latest",
            ColumnFamily::Audit => "audit",
        }
    }
}

/// One change of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put {
        /// Column family.
        cf: ColumnFamily,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Column family.
        cf: ColumnFamily,
        /// Key.
        key: Vec<u8>,
    },
}

/// Changes applied all together or not at all.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, cf: ColumnFamily, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put { cf, key, value });
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: ColumnFamily, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete { cf, key });
    }

    /// The changes, in the order they were added (a later change to a key wins).
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has no change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A position in one column family that can seek and step forward.
///
/// Use: `seek(k)`, then while `valid()` read `key()`/`value()` and call `next()`; when
/// `valid()` turns false, call `status()` to tell the end from an I/O error.
pub trait Cursor: Send {
    /// Moves to the first key at or after `key`.
    fn seek(&mut self, key: &[u8]);
    /// Moves to the next key.
    fn next(&mut self);
    /// True while positioned on an entry.
    fn valid(&self) -> bool;
    /// The current key; only while `valid()`.
    fn key(&self) -> &[u8];
    /// The current value; only while `valid()`.
    fn value(&self) -> &[u8];
    /// The error that ended iteration, if one did.
    fn status(&self) -> Result<()>;
}

/// An ordered, durable (or not) key-value store with column families.
pub trait Engine: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Reads several keys of one family, in order (engines with a round trip per request
    /// read them in one).
    fn multi_get(&self, cf: ColumnFamily, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }
    /// A cursor over one column family; it owns what it needs and may outlive the borrow.
    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>>;
    /// The largest key of `cf` before `upper` (excluded), for splitting a range between
    /// threads; `None` when there is none, or when the engine cannot tell cheaply (a scan
    /// then runs on one thread).
    fn last_key_before(&self, cf: ColumnFamily, upper: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = (cf, upper);
        Ok(None)
    }
    /// Applies every change of `batch` atomically.
    fn write(&self, batch: WriteBatch) -> Result<()>;
    /// Makes everything written so far durable on disk (a no-op in memory).
    fn flush(&self) -> Result<()>;
    /// Compacts every column family: drops overwritten and deleted entries the engine
    /// still carries (RocksDB does this in the background as data grows).
    fn compact(&self) -> Result<()>;
    /// What the engine can tell about its own state, per column family (bytes on disk,
    /// files per level, compaction debt, write stalls); empty when it keeps nothing of the
    /// kind (memory).
    fn state(&self) -> Vec<FamilyState> {
        Vec::new()
    }
    /// Compacts the keys from `start` (included) to `end` (excluded) of one column family;
    /// engines that cannot compact part of a family compact all of it.
    fn compact_range(&self, cf: ColumnFamily, start: &[u8], end: &[u8]) -> Result<()> {
        let _ = (cf, start, end);
        self.compact()
    }
    /// True when other processes may write the same database at the same time (one
    /// cluster, several servers): the store then takes the newest commit from the engine
    /// before each transaction and commit, and commits with [`Engine::write_if`].
    fn shared(&self) -> bool {
        false
    }
    /// Applies `batch` atomically if `key` of `cf` still holds `expected` (`None`: the key
    /// is absent) when it is applied; returns false, writing nothing, when it does not.
    fn write_if(
        &self,
        batch: WriteBatch,
        cf: ColumnFamily,
        key: &[u8],
        expected: Option<&[u8]>,
    ) -> Result<bool> {
        let _ = (batch, cf, key, expected);
        Err(crate::Error::Engine(
            "this engine takes no conditional writes (it is not shared)".into(),
        ))
    }
    /// Lets compaction drop the row versions no read at or after their key space's horizon
    /// needs: every version committed at or before it except the newest one at or before
    /// it, per key ([`VersionGc`]). No key space's horizon is ever lower than before.
    fn set_gc_horizons(&self, horizons: Arc<Horizons>);
}

/// One column family's state, as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyState {
    /// The column family's name on disk.
    pub name: &'static str,
    /// Bytes of its table files on disk.
    pub disk_bytes: u64,
    /// Estimated live data (what compaction would leave).
    pub live_bytes: u64,
    /// Estimated keys.
    pub keys: u64,
    /// Table files per level, level 0 first.
    pub files_per_level: Vec<u64>,
    /// Bytes compaction still has to rewrite.
    pub pending_compaction_bytes: u64,
    /// Whether writes are stopped or slowed for it now (too many level-0 files, too much
    /// compaction debt).
    pub write_stalled: bool,
}

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory engine: a `BTreeMap` per column family. Nothing survives the process.
#[derive(Default, Clone)]
pub struct MemoryEngine {
    trees: Arc<RwLock<BTreeMap<ColumnFamily, Tree>>>,
    gc_horizons: Arc<RwLock<Arc<Horizons>>>,
    shared: bool,
}

impl MemoryEngine {
    /// An empty in-memory engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty in-memory engine that its clones write at the same time, as several
    /// servers write one cluster: each clone opened as its own store behaves like another
    /// server ([`Engine::shared`]).
    pub fn shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }

    fn apply(trees: &mut BTreeMap<ColumnFamily, Tree>, batch: WriteBatch) {
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => {
                    trees.entry(cf).or_default().insert(key, value);
                }
                BatchOp::Delete { cf, key } => {
                    if let Some(t) = trees.get_mut(&cf) {
                        t.remove(&key);
                    }
                }
            }
        }
    }
}

impl Engine for MemoryEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.trees.read().get(&cf).and_then(|t| t.get(key).cloned()))
    }

    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>> {
        Ok(Box::new(MemoryCursor {
            trees: self.trees.clone(),
            cf,
            current: None,
        }))
    }

    fn last_key_before(&self, cf: ColumnFamily, upper: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .trees
            .read()
            .get(&cf)
            .and_then(|t| {
                t.range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(upper)))
                    .next_back()
            })
            .map(|(k, _)| k.clone()))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        Self::apply(&mut self.trees.write(), batch);
        Ok(())
    }

    fn shared(&self) -> bool {
        self.shared
    }

    fn write_if(
        &self,
        batch: WriteBatch,
        cf: ColumnFamily,
        key: &[u8],
        expected: Option<&[u8]>,
    ) -> Result<bool> {
        let mut trees = self.trees.write();
        let now = trees.get(&cf).and_then(|t| t.get(key)).map(Vec::as_slice);
        if now != expected {
            return Ok(false);
        }
        Self::apply(&mut trees, batch);
        Ok(true)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn compact(&self) -> Result<()> {
        let mut gc = VersionGc::new(self.gc_horizons.read().clone());
        if let Some(versions) = self.trees.write().get_mut(&ColumnFamily::Versions) {
            versions.retain(|k, _| gc.keep(k));
        }
        Ok(())
    }

    fn set_gc_horizons(&self, horizons: Arc<Horizons>) {
        *self.gc_horizons.write() = horizons;
    }
}

/// Re-reads the map at every step, so it never holds the lock between calls.
struct MemoryCursor {
    trees: Arc<RwLock<BTreeMap<ColumnFamily, Tree>>>,
    cf: ColumnFamily,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl MemoryCursor {
    fn position(&mut self, from: Bound<&[u8]>) {
        let trees = self.trees.read();
        self.current = trees.get(&self.cf).and_then(|t| {
            t.range::<[u8], _>((from, Bound::Unbounded))
                .next()
                .map(|(k, v)| (k.clone(), v.clone()))
        });
    }
}

impl Cursor for MemoryCursor {
    fn seek(&mut self, key: &[u8]) {
        self.position(Bound::Included(key));
    }

    fn next(&mut self) {
        if let Some((k, _)) = self.current.take() {
            self.position(Bound::Excluded(&k));
        }
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current
            .as_ref()
            .map(|(k, _)| k.as_slice())
            .unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.current
            .as_ref()
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}
