//! [`RocksEngine`]: the durable [`Engine`] on RocksDB. This is the only module of ChronoDB
//! that names a RocksDB type.
//!
//! Writes go through RocksDB's write-ahead log (unless turned off in [`RocksOptions`]), so a
//! commit that returned survives a crash of the process; with `sync_writes` each commit also
//! waits for `fsync`, which makes it survive a crash of the machine.

use parking_lot::{Mutex, RwLock};
use std::ffi::CStr;
use std::path::Path;
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision as CompactionDecision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRawIteratorWithThreadMode, Options, WriteOptions,
};

use crate::encoding;
use crate::engine::{BatchOp, ColumnFamily, Cursor, Engine, FamilyState, WriteBatch};
use crate::error::{Error, Result};
use crate::horizon::{Horizons, VersionGc};

/// Tuning and durability settings of a [`RocksEngine`].
#[derive(Debug, Clone)]
pub struct RocksOptions {
    /// Write through RocksDB's write-ahead log (default on): a commit that returned survives
    /// a killed process. Off, commits live in memory until RocksDB flushes them, and a crash
    /// loses the unflushed ones; the column families are then flushed together (atomic
    /// flush), so a crash loses whole commits, never part of one (a row version without its
    /// current-state row or its audit entry).
    pub wal_enabled: bool,
    /// `fsync` the log at every commit (default off: a commit survives a killed process but
    /// the last few may be lost if the machine loses power).
    pub sync_writes: bool,
    /// Compress data blocks with LZ4 (default on).
    pub compression: bool,
    /// Size of the block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
    /// Size of each column family's memtable before it is flushed, in bytes (RocksDB's
    /// `write_buffer_size`).
    pub write_buffer_bytes: usize,
    /// Bits per key of the bloom filters of the families read by point lookups (the current
    /// state and metadata); 0: no filters.
    pub bloom_bits_per_key: f64,
    /// RocksDB iterators kept idle per column family for the next cursor (default 4, about
    /// the number of threads reading at once); 0 makes a new one for every cursor. An idle
    /// iterator keeps the memtables and files it last read from alive until it is used again.
    pub idle_iterators: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            wal_enabled: true,
            sync_writes: false,
            compression: true,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 64 << 20,
            bloom_bits_per_key: 10.0,
            idle_iterators: 4,
        }
    }
}

/// A [`Engine`] on a RocksDB database in one directory.
pub struct RocksEngine {
    db: Arc<DB>,
    cursors: Arc<CursorPool>,
    write_options: WriteOptions,
    gc_horizons: Arc<RwLock<Arc<Horizons>>>,
}

/// Makes a [`VersionGc`] for each compaction of the versions family, with the horizon in
/// force when the compaction starts.
struct GcFactory(Arc<RwLock<Arc<Horizons>>>);

struct GcFilter(VersionGc);

impl CompactionFilter for GcFilter {
    fn filter(&mut self, _level: u32, key: &[u8], _value: &[u8]) -> CompactionDecision {
        if self.0.keep(key) {
            CompactionDecision::Keep
        } else {
            CompactionDecision::Remove
        }
    }

    fn name(&self) -> &CStr {
        c"chronodb-version-gc"
    }
}

impl CompactionFilterFactory for GcFactory {
    type Filter = GcFilter;

    fn create(&mut self, _context: CompactionFilterContext) -> GcFilter {
        GcFilter(VersionGc::new(self.0.read().clone()))
    }

    fn name(&self) -> &CStr {
        c"chronodb-version-gc-factory"
    }
}

fn engine_err(e: rocksdb::Error) -> Error {
    Error::Engine(e.into_string())
}

/// The file in a database directory that names the process holding it open.
pub const OWNER_FILE: &str = "OWNER";

/// `pid N: the command line`, for [`OWNER_FILE`].
fn owner_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    format!("pid {}: {}\n", std::process::id(), args.join(" "))
}

/// The smallest part of the block cache one shard holds. A block larger than its shard
/// cannot be cached at all: RocksDB's default of 64 shards gave a 64 MiB cache 1 MiB shards,
/// smaller than the whole-file filter blocks of files written before filters were
/// partitioned, which were then read from disk for every lookup.
const MIN_CACHE_SHARD_BYTES: usize = 16 << 20;

/// An LRU block cache of `bytes`, in as many shards (at most 64) as keep each one at least
/// [`MIN_CACHE_SHARD_BYTES`].
fn block_cache(bytes: usize) -> Cache {
    let mut shard_bits = 0;
    while shard_bits < 6 && (bytes >> (shard_bits + 1)) >= MIN_CACHE_SHARD_BYTES {
        shard_bits += 1;
    }
    let mut opts = rocksdb::LruCacheOptions::default();
    opts.set_capacity(bytes);
    opts.set_num_shard_bits(shard_bits);
    Cache::new_lru_cache_opts(&opts)
}

impl RocksEngine {
    /// Opens (creating if needed) the database in `path`.
    pub fn open(path: impl AsRef<Path>, options: &RocksOptions) -> Result<Self> {
        let cache = block_cache(options.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        // Without the log, only flushing every family in one step keeps a commit whole.
        db_opts.set_atomic_flush(!options.wal_enabled);
        db_opts.set_max_background_jobs(2);
        let cf_opts = |bloom: bool, hint_prefix: Option<usize>| -> Result<Options> {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            // Index and filter blocks live in the block cache, cut into partitions of about
            // 4 KiB under a small top-level block that stays pinned: a point lookup reads
            // the partition it needs. A whole filter block of a large file (1.2 MiB for a
            // million keys) is larger than a cache shard can hold, so unpartitioned it was
            // read from disk and checksummed again for every lookup.
            table.set_cache_index_and_filter_blocks(true);
            table.set_cache_index_and_filter_blocks_with_high_priority(true);
            table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
            table.set_partition_filters(true);
            table.set_metadata_block_size(4096);
            table.set_pin_top_level_index_and_filter(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            if bloom && options.bloom_bits_per_key > 0.0 {
                table.set_bloom_filter(options.bloom_bits_per_key, false);
            }
            let mut o = match hint_prefix {
                // Memtable inserts remember where the last key of the same prefix went and
                // start from there: the audit trail appends at the end of each of its
                // sections, bulk loads at the end of a key space, so an insert that would
                // search the whole skip list from its top lands next to its predecessor.
                // Only reachable as a string option through RocksDB's C interface.
                Some(len) => Options::default()
                    .get_options_from_string(format!(
                        "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.{len}"
                    ))
                    .map_err(engine_err)?,
                None => Options::default(),
            };
            o.set_write_buffer_size(options.write_buffer_bytes);
            o.set_block_based_table_factory(&table);
            o.set_level_compaction_dynamic_level_bytes(true);
            o.set_compression_type(if options.compression {
                DBCompressionType::Lz4
            } else {
                DBCompressionType::None
            });
            Ok(o)
        };
        let gc_horizons = Arc::new(RwLock::new(Arc::new(Horizons::default())));
        let mut descriptors = Vec::new();
        for cf in ColumnFamily::ALL {
            // Point lookups hit the latest and meta families; versions are read by seeks.
            let bloom = matches!(cf, ColumnFamily::Latest | ColumnFamily::Meta);
            // Insert hints per audit section and per key space: the length of those prefixes
            // as the encoding writes them.
            let hint_prefix = match cf {
                ColumnFamily::Audit => Some(encoding::audit_key(0, &[]).len()),
                ColumnFamily::Latest => Some(encoding::latest_prefix(0).len()),
                ColumnFamily::Versions => Some(encoding::versions_prefix(0).len()),
                ColumnFamily::Meta => None,
            };
            let mut o = cf_opts(bloom, hint_prefix)?;
            if cf == ColumnFamily::Versions {
                // Retention: compactions drop the versions below the GC horizon.
                o.set_compaction_filter_factory(GcFactory(gc_horizons.clone()));
            }
            descriptors.push(ColumnFamilyDescriptor::new(cf.name(), o));
        }
        let db = DB::open_cf_descriptors(&db_opts, path.as_ref(), descriptors).map_err(|e| {
            let text = e.into_string();
            if text.contains("lock") && text.contains("Resource temporarily unavailable") {
                let holder = std::fs::read_to_string(path.as_ref().join(OWNER_FILE))
                    .map(|o| format!(" ({})", o.trim()))
                    .unwrap_or_default();
                return Error::Engine(format!(
                    "the database in {} is open in another process{holder}: one process at a \
                     time opens a database; stop it, or reach the database through it (its \
                     gRPC server: chronodb sql --connect HOST:PORT)",
                    path.as_ref().display()
                ));
            }
            Error::Engine(format!(
                "cannot open database in {}: {text}",
                path.as_ref().display(),
            ))
        })?;
        // Who holds the database, for the error another process gets (best effort).
        let _ = std::fs::write(path.as_ref().join(OWNER_FILE), owner_line());
        let mut write_options = WriteOptions::default();
        write_options.disable_wal(!options.wal_enabled);
        write_options.set_sync(options.sync_writes);
        let db = Arc::new(db);
        Ok(Self {
            cursors: Arc::new(CursorPool {
                idle: Default::default(),
                keep: options.idle_iterators,
                _db: db.clone(),
            }),
            db,
            write_options,
            gc_horizons,
        })
    }

    fn handle(&self, cf: ColumnFamily) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| Error::Engine(format!("column family {} is missing", cf.name())))
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let handle = self.handle(cf)?;
        Ok(self
            .db
            .get_pinned_cf(handle, key)
            .map_err(engine_err)?
            .map(|v| v.to_vec()))
    }

    /// RocksDB's batched lookup: the keys' index and filter partitions and data blocks are
    /// found together (in one pass when the keys ascend).
    fn multi_get(&self, cf: ColumnFamily, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let handle = self.handle(cf)?;
        let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        self.db
            .batched_multi_get_cf(handle, keys, sorted)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(engine_err))
            .collect()
    }

    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>> {
        let family = CursorPool::slot(cf);
        let idle = self.cursors.idle[family].lock().pop();
        // An idle iterator brought up to the newest state: cheap when the family's files and
        // memtables are the ones it was made on (only its read sequence number moves).
        let iter = match idle.map(|mut it| it.refresh().map(|()| it)) {
            Some(Ok(it)) => it,
            _ => {
                let iter = self.db.raw_iterator_cf(self.handle(cf)?);
                // SAFETY: the iterator borrows the `DB`, which lives in the `Arc` that the
                // pool keeps alive; the cursor holds the pool, and the pool drops its idle
                // iterators before its `Arc` of the database (fields drop in declaration
                // order), so no iterator outlives the database.
                unsafe { std::mem::transmute::<RawIter<'_>, RawIter<'static>>(iter) }
            }
        };
        // A new iterator and a refreshed one are both positioned nowhere until a seek.
        Ok(Box::new(RocksCursor {
            iter: Some(iter),
            family,
            pool: self.cursors.clone(),
        }))
    }

    fn last_key_before(&self, cf: ColumnFamily, upper: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut iter = self.db.raw_iterator_cf(self.handle(cf)?);
        iter.seek_for_prev(upper);
        if iter.valid() && iter.key() == Some(upper) {
            iter.prev();
        }
        if !iter.valid() {
            iter.status().map_err(engine_err)?;
            return Ok(None);
        }
        Ok(iter.key().map(<[u8]>::to_vec))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                BatchOp::Put { cf, key, value } => wb.put_cf(self.handle(*cf)?, key, value),
                BatchOp::Delete { cf, key } => wb.delete_cf(self.handle(*cf)?, key),
            }
        }
        self.db
            .write_opt(wb, &self.write_options)
            .map_err(engine_err)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine_err)
    }

    fn compact(&self) -> Result<()> {
        for cf in ColumnFamily::ALL {
            self.db
                .compact_range_cf(self.handle(cf)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn compact_range(&self, cf: ColumnFamily, start: &[u8], end: &[u8]) -> Result<()> {
        self.db
            .compact_range_cf(self.handle(cf)?, Some(start), Some(end));
        Ok(())
    }

    fn set_gc_horizons(&self, horizons: Arc<Horizons>) {
        *self.gc_horizons.write() = horizons;
    }

    fn state(&self) -> Vec<FamilyState> {
        let mut out = Vec::new();
        for cf in ColumnFamily::ALL {
            let Ok(handle) = self.handle(cf) else {
                continue;
            };
            let int = |name: &str| -> u64 {
                self.db
                    .property_int_value_cf(handle, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            let levels = (0..7)
                .map(|l| int(&format!("rocksdb.num-files-at-level{l}")))
                .collect::<Vec<_>>();
            let last_used = levels.iter().rposition(|&n| n > 0).map_or(1, |i| i + 1);
            out.push(FamilyState {
                name: cf.name(),
                disk_bytes: int("rocksdb.total-sst-files-size"),
                live_bytes: int("rocksdb.estimate-live-data-size"),
                keys: int("rocksdb.estimate-num-keys"),
                files_per_level: levels[..last_used].to_vec(),
                pending_compaction_bytes: int("rocksdb.estimate-pending-compaction-bytes"),
                write_stalled: int("rocksdb.is-write-stopped") != 0
                    || int("rocksdb.actual-delayed-write-rate") != 0,
            });
        }
        out
    }
}

type RawIter<'a> = DBRawIteratorWithThreadMode<'a, DB>;

/// Iterators that cursors finished with, per column family, for the next cursor: making a
/// RocksDB iterator (and dropping it) costs about as much as the seek of a point read in
/// history, so an `AS OF` read or a short scan reuses one, refreshed to the newest state.
/// An idle iterator keeps the memtables and files it last read from alive until it is
/// used again (at most [`RocksOptions::idle_iterators`] per family, so that much memory and
/// disk at worst).
struct CursorPool {
    idle: [Mutex<Vec<RawIter<'static>>>; ColumnFamily::ALL.len()],
    /// Idle iterators kept per family.
    keep: usize,
    /// Declared last: the idle iterators are dropped before the database.
    _db: Arc<DB>,
}

impl CursorPool {
    fn slot(cf: ColumnFamily) -> usize {
        ColumnFamily::ALL
            .iter()
            .position(|&c| c == cf)
            .expect("every family is in ALL")
    }
}

struct RocksCursor {
    /// `None` only while dropping.
    iter: Option<RawIter<'static>>,
    family: usize,
    pool: Arc<CursorPool>,
}

impl RocksCursor {
    fn iter(&self) -> &RawIter<'static> {
        self.iter
            .as_ref()
            .expect("a cursor has its iterator until dropped")
    }

    fn iter_mut(&mut self) -> &mut RawIter<'static> {
        self.iter
            .as_mut()
            .expect("a cursor has its iterator until dropped")
    }
}

impl Drop for RocksCursor {
    fn drop(&mut self) {
        let Some(iter) = self.iter.take() else {
            return;
        };
        // An iterator that met an error is not reused.
        if iter.status().is_ok() {
            let mut idle = self.pool.idle[self.family].lock();
            if idle.len() < self.pool.keep {
                idle.push(iter);
            }
        }
    }
}

impl Cursor for RocksCursor {
    fn seek(&mut self, key: &[u8]) {
        self.iter_mut().seek(key);
    }

    fn next(&mut self) {
        self.iter_mut().next();
    }

    fn valid(&self) -> bool {
        self.iter().valid()
    }

    fn key(&self) -> &[u8] {
        self.iter().key().unwrap_or(&[])
    }

    fn value(&self) -> &[u8] {
        self.iter().value().unwrap_or(&[])
    }

    fn status(&self) -> Result<()> {
        self.iter().status().map_err(engine_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemoryEngine;

    #[test]
    fn appending_families_insert_with_hints() {
        let dir = tempfile::tempdir().unwrap();
        drop(RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap());
        // RocksDB writes the options each family was opened with.
        let options = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("OPTIONS-")
            })
            .expect("an options file");
        let text = std::fs::read_to_string(options).unwrap();
        let hint_of = |family: &str| {
            let section = text
                .split("[CFOptions \"")
                .find(|s| s.starts_with(&format!("{family}\"")))
                .unwrap_or_else(|| panic!("no options for {family}"));
            section
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("memtable_insert_with_hint_prefix_extractor=")
                })
                .map(str::to_string)
        };
        assert_eq!(hint_of("audit").as_deref(), Some("rocksdb.FixedPrefix.2"));
        assert_eq!(hint_of("latest").as_deref(), Some("rocksdb.FixedPrefix.5"));
        assert_eq!(
            hint_of("versions").as_deref(),
            Some("rocksdb.FixedPrefix.5")
        );
        assert_eq!(hint_of("default").as_deref(), Some("nullptr"));
    }

    /// RocksDB and the in-memory engine agree on the last key before a bound, and a
    /// whole-keyspace split point falls between the key it starts after and the last key.
    #[test]
    fn the_last_key_before_a_bound_and_split_points() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
        let memory = MemoryEngine::default();
        let mut batch = WriteBatch::new();
        for k in [
            b"b".to_vec(),
            b"d".to_vec(),
            b"d\x00".to_vec(),
            b"f".to_vec(),
        ] {
            batch.put(ColumnFamily::Latest, k, b"v".to_vec());
        }
        rocks.write(batch.clone()).unwrap();
        memory.write(batch).unwrap();
        for engine in [&rocks as &dyn Engine, &memory] {
            let last = |upper: &[u8]| engine.last_key_before(ColumnFamily::Latest, upper).unwrap();
            assert_eq!(last(b"a"), None);
            assert_eq!(last(b"b"), None);
            assert_eq!(last(b"c"), Some(b"b".to_vec()));
            assert_eq!(last(b"d"), Some(b"b".to_vec()));
            assert_eq!(last(b"d\x00"), Some(b"d".to_vec()));
            assert_eq!(last(b"e"), Some(b"d\x00".to_vec()));
            assert_eq!(last(b"z"), Some(b"f".to_vec()));
            assert_eq!(
                engine
                    .last_key_before(ColumnFamily::Versions, b"z")
                    .unwrap(),
                None
            );
        }
        // Through the store: rows 0..1000 of key space 7, split after row 100.
        let store = crate::Store::open(Arc::new(rocks)).unwrap();
        let key = |i: i64| crate::encoding::encode_key(&[crate::Value::Int(i)]);
        let mut t = store.begin();
        for i in 0..1000 {
            t.put(7, key(i), b"row".to_vec()).unwrap();
        }
        t.commit().unwrap();
        let mid = store.split_after(7, &key(100)).unwrap().unwrap();
        assert!(key(500) <= mid && mid <= key(600), "{mid:?}");
        assert_eq!(store.split_after(7, &key(999)).unwrap(), None);
        assert_eq!(store.split_after(8, &key(0)).unwrap(), None);
    }

    /// Cursors reuse idle iterators: a reused one sees every write made since it was last
    /// used, is positioned nowhere until its first seek, and a cursor still open keeps
    /// the state it was opened on.
    #[test]
    fn reused_cursors_see_the_newest_state() {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
        let put = |key: &[u8]| {
            let mut batch = WriteBatch::new();
            batch.put(ColumnFamily::Latest, key.to_vec(), b"v".to_vec());
            engine.write(batch).unwrap();
        };
        let keys = |cursor: &mut Box<dyn Cursor>| {
            cursor.seek(b"");
            let mut out = Vec::new();
            while cursor.valid() {
                out.push(cursor.key().to_vec());
                cursor.next();
            }
            cursor.status().unwrap();
            out
        };
        put(b"a");
        let mut first = engine.cursor(ColumnFamily::Latest).unwrap();
        assert_eq!(keys(&mut first), vec![b"a".to_vec()]);
        first.seek(b"a");
        assert!(first.valid());
        drop(first);
        put(b"b");
        let mut held = engine.cursor(ColumnFamily::Latest).unwrap();
        assert!(!held.valid(), "a reused iterator is not positioned");
        held.next();
        assert!(!held.valid());
        assert_eq!(keys(&mut held), vec![b"a".to_vec(), b"b".to_vec()]);
        // More cursors at once than are kept idle; each sees the newest state.
        put(b"c");
        let keep = RocksOptions::default().idle_iterators;
        let mut many: Vec<_> = (0..keep + 2)
            .map(|_| engine.cursor(ColumnFamily::Latest).unwrap())
            .collect();
        for cursor in &mut many {
            assert_eq!(keys(cursor).len(), 3);
        }
        assert_eq!(keys(&mut held).len(), 2, "an open cursor keeps its state");
        drop(many);
        assert_eq!(
            engine.cursors.idle[CursorPool::slot(ColumnFamily::Latest)]
                .lock()
                .len(),
            keep
        );
        put(b"d");
        drop(held);
        for _ in 0..3 {
            let mut c = engine.cursor(ColumnFamily::Latest).unwrap();
            assert_eq!(keys(&mut c).len(), 4);
        }
        // The engine closes with cursors still open and idle; the directory opens again.
        let open = engine.cursor(ColumnFamily::Latest).unwrap();
        drop(engine);
        drop(open);
        let engine = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
        assert_eq!(
            keys(&mut engine.cursor(ColumnFamily::Latest).unwrap()).len(),
            4
        );
    }

    /// With `idle_iterators: 0` no iterator is kept: every cursor makes its own.
    #[test]
    fn no_idle_iterators_are_kept_when_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let options = RocksOptions {
            idle_iterators: 0,
            ..RocksOptions::default()
        };
        let engine = RocksEngine::open(dir.path(), &options).unwrap();
        for i in 0..3u8 {
            let mut batch = WriteBatch::new();
            batch.put(ColumnFamily::Latest, vec![i], b"v".to_vec());
            engine.write(batch).unwrap();
            let mut cursor = engine.cursor(ColumnFamily::Latest).unwrap();
            cursor.seek(b"");
            let mut n = 0;
            while cursor.valid() {
                n += 1;
                cursor.next();
            }
            assert_eq!(n, usize::from(i) + 1);
            drop(cursor);
            assert!(
                engine
                    .cursors
                    .idle
                    .iter()
                    .all(|idle| idle.lock().is_empty())
            );
        }
    }
}
