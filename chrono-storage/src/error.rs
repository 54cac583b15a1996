//! The one error type of `chrono-storage`.

/// What can go wrong in the store. Variants are named after the condition, so the layers
/// above can map them (for example to gRPC status codes) without reading messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another transaction committed a write to the same key after this one started
    /// (first committer wins). Nothing of this transaction was written; retry it.
    #[error("write conflict on {0}: another transaction committed it first; retry the transaction")]
    Conflict(String),
    /// Bytes read from disk do not decode: the database files are damaged or were altered.
    #[error("corruption: {0}")]
    Corruption(String),
    /// The caller passed something the store cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The transaction was already committed or rolled back, or is read-only.
    #[error("transaction state: {0}")]
    TransactionState(String),
    /// The engine underneath (RocksDB) failed.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A commit observer refused the commit; nothing was written.
    #[error("commit observer failed: {0}")]
    Observer(String),
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
