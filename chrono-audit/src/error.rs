//! The one error type of `chrono-audit`.

/// What can go wrong reading or writing the audit trail.
#[derive(Debug, thiserror::Error)]
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

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> chrono_storage::ErrorKind {
        use chrono_storage::ErrorKind as K;
        match self {
            Error::Storage(e) => e.kind(),
            Error::Corruption(_) => K::Corruption,
            Error::NotFound(_) => K::NotFound,
            Error::InvalidInput(_) => K::InvalidInput,
        }
    }
}

/// `Result` with the audit trail's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
