//! Store errors: what a client may be told, and what only the log sees.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist; the message says which.
    #[error("{0}")]
    NotFound(String),
    /// It already exists, or is still in use; the message says what.
    #[error("{0}")]
    Conflict(String),
    /// The UDP request this write was made for is already recorded: the
    /// write was rolled back, and the recorded reply answers the request.
    #[error("this request was already executed")]
    Duplicate,
    /// The reply data would not fit the datagram it is recorded for (see
    /// [`crate::RequestKey`]): the write was rolled back.
    #[error("the reply would not fit its datagram")]
    TooLarge,
    /// A row that no valid write produces (the log gets the details).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database failed (the log gets the details, with the SQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The writing connection failed (the log gets the details).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The write succeeded but the transaction it shared with others did
    /// not commit, so it was undone.
    #[error("the write's transaction did not commit: {0}")]
    NotCommitted(std::sync::Arc<rusqlite::Error>),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// Migrations failed at start-up.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Why storage cannot take a write now, as a client may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The disk is full.
    Full,
    /// The database cannot be reached or written (I/O error, busy beyond
    /// the timeout, a transaction that did not commit).
    Unreachable,
}

impl StoreError {
    /// Whether the message may be shown to a client as is.
    pub fn is_client_facing(&self) -> bool {
        matches!(self, StoreError::NotFound(_) | StoreError::Conflict(_))
    }

    /// Whether the failure is the storage's and not the request's: a full
    /// disk, an I/O error, a transaction that did not commit. Nothing was
    /// written and the same request may succeed later.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            StoreError::Sqlite(e) => sqlite_unavailable(e),
            // The write itself was fine; its batch did not commit, so the
            // storage failed it, whatever the cause.
            StoreError::NotCommitted(e) => {
                Some(sqlite_unavailable(e).unwrap_or(Unavailable::Unreachable))
            }
            StoreError::Database(sqlx::Error::Database(e)) => {
                match e.code().as_deref().map(|c| c.parse::<i32>()) {
                    Some(Ok(code)) => primary_unavailable(code),
                    _ => None,
                }
            }
            StoreError::Database(sqlx::Error::Io(e)) => Some(io_unavailable(e)),
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
                Some(Unavailable::Unreachable)
            }
            _ => None,
        }
    }
}

fn sqlite_unavailable(e: &rusqlite::Error) -> Option<Unavailable> {
    e.sqlite_error()
        .and_then(|e| primary_unavailable(e.extended_code))
}

/// Classifies an SQLite result code (primary or extended).
fn primary_unavailable(code: i32) -> Option<Unavailable> {
    use rusqlite::ffi;
    match code & 0xff {
        ffi::SQLITE_FULL => Some(Unavailable::Full),
        ffi::SQLITE_IOERR | ffi::SQLITE_CANTOPEN | ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => {
            Some(Unavailable::Unreachable)
        }
        _ => None,
    }
}

fn io_unavailable(e: &std::io::Error) -> Unavailable {
    if e.kind() == std::io::ErrorKind::StorageFull {
        Unavailable::Full
    } else {
        Unavailable::Unreachable
    }
}
