//! [`Snapshot`]: one consistent read view of the store, whichever way it was taken — a
//! transaction's snapshot (with the transaction's own writes) or the committed state at a
//! past timestamp. The layers above read through it without caring which.

use crate::error::Result;
use crate::mvcc::{KeyRange, Keyspace, ScanAt, Store, Transaction, TxnScan};

/// Key-value pairs in key order, from a [`Snapshot`].
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + Send + 'a>;

/// A consistent read view.
#[derive(Clone, Copy)]
pub enum Snapshot<'a> {
    /// The transaction's snapshot plus its own writes.
    Transaction(&'a Transaction),
    /// The committed state as of a timestamp (microseconds): what a transaction that began
    /// right after the commit at that time saw.
    At(&'a Store, u64),
}

impl<'a> Snapshot<'a> {
    /// The value of one key.
    pub fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self {
            Snapshot::Transaction(t) => t.get(keyspace, key)?,
            Snapshot::At(s, ts) => s.get_at(keyspace, key, *ts)?.map(|(_, v)| v),
        })
    }

    /// The values of several keys of one key space, in the order given (one batched
    /// lookup of the current state).
    pub fn get_many(&self, keyspace: Keyspace, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {
            Snapshot::Transaction(t) => t.get_many(keyspace, keys),
            Snapshot::At(s, ts) => s.get_many_at(keyspace, keys, *ts),
        }
    }

    /// The pairs of a key range.
    pub fn scan(&self, keyspace: Keyspace, range: KeyRange) -> Result<KvIter<'a>> {
        Ok(match *self {
            Snapshot::Transaction(t) => Box::new(t.scan(keyspace, range)?),
            Snapshot::At(s, ts) => Box::new(s.scan_at(keyspace, range, ts)?),
        })
    }

    /// The rows of a key range, lent one at a time (no copies; keys decoded on demand).
    pub fn cursor(&self, keyspace: Keyspace, range: KeyRange) -> Result<RowCursor> {
        Ok(match *self {
            Snapshot::Transaction(t) => RowCursor::Txn(t.scan(keyspace, range)?),
            Snapshot::At(s, ts) => RowCursor::At(s.scan_at(keyspace, range, ts)?),
        })
    }

    /// The time it reads at.
    pub fn read_ts(&self) -> u64 {
        match self {
            Snapshot::Transaction(t) => t.read_ts(),
            Snapshot::At(_, ts) => *ts,
        }
    }
}

/// A scan of a [`Snapshot`] that lends each row's bytes instead of copying them.
pub enum RowCursor {
    /// In a transaction (with its own writes).
    Txn(TxnScan),
    /// The committed state at a time.
    At(ScanAt),
}

impl RowCursor {
    /// Moves to the next row; `false` at the end.
    pub fn advance(&mut self) -> Result<bool> {
        match self {
            RowCursor::Txn(s) => s.advance(),
            RowCursor::At(s) => s.advance(),
        }
    }

    /// The current row's bytes.
    pub fn row(&self) -> &[u8] {
        match self {
            RowCursor::Txn(s) => s.row(),
            RowCursor::At(s) => s.row(),
        }
    }

    /// The current row's key.
    pub fn key(&self) -> Result<Vec<u8>> {
        match self {
            RowCursor::Txn(s) => s.key(),
            RowCursor::At(s) => s.key(),
        }
    }
}
