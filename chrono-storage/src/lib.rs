//! # chrono-storage
//!
//! The multi-version, time-travel store under ChronoDB. Every write of a key adds a
//! version under `key ‖ !commit_ts`, so "the data as it was at time `t`" is one seek, not a
//! replay of a log. The store gives:
//!
//! * [`Store`]: snapshot-isolated [`Transaction`]s with first-committer-wins conflict
//!   detection ([`Error::Conflict`]), strictly increasing microsecond commit timestamps,
//!   reads and scans as of any past timestamp, every version of a key, the versions alive in
//!   a time window, and [`CommitObserver`]s that see each commit and add their own entries
//!   to its atomic write batch (the audit trail, change streams);
//! * [`Engine`]: the ordered key-value interface underneath, with [`RocksEngine`] (durable,
//!   RocksDB with its write-ahead log) and [`MemoryEngine`];
//! * [`encoding`]: the one module that lays out key and row bytes;
//! * [`record`]: the one codec (serde, postcard) of every other stored record;
//! * [`Value`]: the typed values rows are made of.
//!
//! ```text
//!            Transaction ── get/scan at read_ts, buffered put/delete, commit
//!                 │
//!   Store ── latest CF  (0x02 ‖ ks ‖ key        → ts ‖ op ‖ row)   current state, O(1) per key
//!        └── versions CF (0x01 ‖ ks ‖ key ‖ !ts → op ‖ row)        all history, seek to !t
//!        └── meta CF, audit CF (written by observers in the same batch)
//! ```
//!
//! ## Example: three versions of a key, read as of each
//!
//! ```
//! use chrono_storage::{RocksEngine, RocksOptions, Store};
//! use std::sync::Arc;
//!
//! # fn main() -> chrono_storage::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(Arc::new(RocksEngine::open(dir.path(), &RocksOptions::default())?))?;
//! let accounts = 1; // a key space
//! let mut stamps = Vec::new();
//! for balance in ["100", "150", "90"] {
//!     let mut txn = store.begin();
//!     txn.put(accounts, b"alice".to_vec(), balance.as_bytes().to_vec())?;
//!     stamps.push(txn.commit()?.expect("a write commits").commit_ts);
//! }
//! for (ts, balance) in stamps.iter().zip(["100", "150", "90"]) {
//!     let (_, value) = store.get_at(accounts, b"alice", *ts)?.expect("present at ts");
//!     assert_eq!(value, balance.as_bytes());
//! }
//! assert_eq!(store.get_at(accounts, b"alice", stamps[0] - 1)?, None);
//! assert_eq!(store.history(accounts, b"alice", u64::MAX)?.len(), 3);
//! # Ok(())
//! # }
//! ```

pub mod conformance;
pub mod encoding;
pub mod engine;
pub mod error;
pub mod history;
pub mod horizon;
pub mod mvcc;
pub mod record;
pub mod rocks;
pub mod snapshot;
pub mod timestamp;
pub mod value;

pub use engine::{BatchOp, ColumnFamily, Cursor, Engine, FamilyState, MemoryEngine, WriteBatch};
pub use error::ErrorKind;
pub use error::{Error, Result};
pub use horizon::{Horizons, VersionGc};
pub use mvcc::{
    Change, Commit, CommitInfo, CommitObserver, DatabaseId, KeyRange, Keyspace, Operation,
    Savepoint, ScanAt, Store, TimeWindow, Transaction, TxnScan, Version, VersionScan,
};
pub use rocks::{RocksEngine, RocksOptions};
pub use snapshot::{KvIter, RowCursor, Snapshot};
pub use timestamp::Timestamp;
pub use value::Value;
