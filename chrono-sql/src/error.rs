//! The one error type of `chrono-sql`.

/// What can go wrong running SQL. Variants are named after the condition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not valid SQL; the message names the position.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A table, column, index or prepared statement that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A table or index that already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A value or expression of the wrong type, or an argument out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// A NOT NULL, PRIMARY KEY or UNIQUE constraint would be broken; nothing was written.
    #[error("constraint violation: {0}")]
    Constraint(String),
    /// Another transaction committed a conflicting write first; retry the transaction.
    #[error("{0}")]
    Conflict(String),
    /// Valid SQL that ChronoDB does not run.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Stored bytes do not decode.
    #[error("{0}")]
    Corruption(String),
    /// BEGIN inside a transaction, COMMIT outside one, a write in a read-only one.
    #[error("{0}")]
    TransactionState(String),
    /// The store failed (its error kept as the source): the engine, or a commit observer.
    #[error(transparent)]
    Storage(chrono_storage::Error),
    /// The host failed the statement (a thread that could not start or ended early).
    #[error("{0}")]
    Unavailable(String),
    /// A limit of `limits.*` was reached (memory, value size, statement size, queue); the
    /// message names the config key.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The statement was cancelled (the client went away or asked for it).
    #[error("{0}")]
    Cancelled(String),
    /// The statement ran past its deadline and was stopped.
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl From<chrono_storage::Error> for Error {
    /// The store's conditions that SQL callers act on (a conflict to retry, corruption, bad
    /// input, transaction state) become this crate's variants of the same name, so one
    /// `match` on [`Error`] sees them wherever they arose; the rest stay wrapped.
    fn from(e: chrono_storage::Error) -> Self {
        use chrono_storage::Error as S;
        match e {
            S::Conflict(_) => Error::Conflict(e.to_string()),
            S::Corruption(_) => Error::Corruption(e.to_string()),
            // The store's message says what was wrong; its prefix would only repeat it.
            S::InvalidInput(m) => Error::InvalidInput(m),
            S::TransactionState(_) => Error::TransactionState(e.to_string()),
            S::Engine(_) | S::Observer(_) => Error::Storage(e),
        }
    }
}

impl Error {
    /// What kind of failure this is (a store error keeps its own kind).
    pub fn kind(&self) -> chrono_storage::ErrorKind {
        use chrono_storage::ErrorKind as K;
        match self {
            Error::Syntax(_) | Error::InvalidInput(_) => K::InvalidInput,
            Error::NotFound(_) => K::NotFound,
            Error::AlreadyExists(_) => K::AlreadyExists,
            Error::Constraint(_) => K::Constraint,
            Error::Conflict(_) => K::Conflict,
            Error::Unsupported(_) => K::Unsupported,
            Error::Corruption(_) => K::Corruption,
            Error::TransactionState(_) => K::FailedPrecondition,
            Error::Storage(e) => e.kind(),
            Error::Unavailable(_) => K::Unavailable,
            Error::ResourceExhausted(_) => K::ResourceExhausted,
            Error::Cancelled(_) => K::Cancelled,
            Error::DeadlineExceeded(_) => K::DeadlineExceeded,
        }
    }
}

/// `Result` with the SQL engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
