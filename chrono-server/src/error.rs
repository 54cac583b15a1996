//! The one error type of `chrono-server`.

/// What can go wrong in the facade, the configuration or the command-line tool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A SQL error (syntax, unknown table, constraint, conflict…).
    #[error(transparent)]
    Sql(#[from] chrono_sql::Error),
    /// A storage error (opening the database, I/O, corruption).
    #[error(transparent)]
    Storage(#[from] chrono_storage::Error),
    /// An audit trail error (reading records, a malformed checkpoint).
    #[error(transparent)]
    Audit(#[from] chrono_audit::Error),
    /// A bad configuration file or value; the message names the key.
    #[error("configuration: {0}")]
    Config(String),
    /// Bad input to the tool (a malformed CSV line, a missing argument…).
    #[error("{0}")]
    InvalidInput(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A server answered a call with an error (`chronodb … --connect`): its kind and text.
    #[error("{1}")]
    Remote(chrono_storage::ErrorKind, String),
}

impl Error {
    /// What kind of failure this is (wrapped errors keep their own kind).
    pub fn kind(&self) -> chrono_storage::ErrorKind {
        use chrono_storage::ErrorKind as K;
        match self {
            Error::Sql(e) => e.kind(),
            Error::Storage(e) => e.kind(),
            Error::Audit(e) => e.kind(),
            Error::Config(_) => K::FailedPrecondition,
            Error::InvalidInput(_) => K::InvalidInput,
            Error::Io(_) => K::Unavailable,
            Error::Remote(kind, _) => *kind,
        }
    }
}

/// `Result` with the server's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
