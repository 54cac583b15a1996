//! The one error type of `chrono-storage`.

/// What can go wrong in the store. Variants are named after the condition, so the layers
/// above can map them (for example to gRPC status codes) without reading messages.
#[derive(Debug, Clone, thiserror::Error)]
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

/// The kinds of failure every ChronoDB crate's error maps to, exhaustively, through its
/// `kind()`; the server turns each kind into one gRPC status code, in one place. A new
/// error variant must name its kind, so it can never fall through to "internal" unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is wrong (syntax, types, values, arguments).
    InvalidInput,
    /// A named thing does not exist.
    NotFound,
    /// A thing to create exists already.
    AlreadyExists,
    /// A constraint would be broken.
    Constraint,
    /// Another transaction won a conflict: retry.
    Conflict,
    /// Valid but not supported.
    Unsupported,
    /// Stored bytes are damaged or were altered.
    Corruption,
    /// The operation does not fit the transaction's state, or the configuration.
    FailedPrecondition,
    /// A configured limit was reached.
    ResourceExhausted,
    /// Cancelled by its caller.
    Cancelled,
    /// Ran past its deadline.
    DeadlineExceeded,
    /// The engine, the disk or the host failed; retrying later may work.
    Unavailable,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Corruption(_) => ErrorKind::Corruption,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::TransactionState(_) => ErrorKind::FailedPrecondition,
            Error::Engine(_) | Error::Observer(_) => ErrorKind::Unavailable,
        }
    }
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
