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

impl StoreError {
    /// Whether the message may be shown to a client as is.
    pub fn is_client_facing(&self) -> bool {
        matches!(self, StoreError::NotFound(_) | StoreError::Conflict(_))
    }
}
