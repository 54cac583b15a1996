//! The one error type of `chrono-audit`.

/// What can go wrong reading or writing the audit trail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] chrono_storage::Error),
    /// Audit records do not decode.
    #[error("audit trail corruption: {0}")]
    Corruption(String),
    /// No such transaction, entry or tree size.
    #[error("{0}")]
    NotFound(String),
    /// A malformed checkpoint, proof or key.
    #[error("{0}")]
    InvalidInput(String),
}

/// `Result` with the audit trail's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
