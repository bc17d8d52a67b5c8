//! Store errors: what a client may be told, and what only the log sees.
//!
//! No variant holds a driver's type: a backend turns its driver's errors
//! into these, classifying those that mean the storage is unavailable (see
//! [`Unavailable`]) and keeping the rest as text for the log.

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist; the message says which.
    #[error("{0}")]
    NotFound(String),
    /// It already exists, or is still in use; the message says what.
    #[error("{0}")]
    Conflict(String),
    /// The promotion is locked (protocol §9); the message says which.
    #[error("{0}")]
    Locked(String),
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
    /// The storage cannot serve the request now: nothing was written, and
    /// the same request may succeed later. The message is for the log.
    #[error("storage unavailable: {message}")]
    Unavailable {
        /// Why, as a client may be told.
        why: Unavailable,
        /// The backend's own description, for the log.
        message: String,
    },
    /// The write succeeded but the transaction it shared with others did
    /// not commit, so it was undone. The message is for the log.
    #[error("the write's transaction did not commit: {message}")]
    NotCommitted {
        /// Why, as a client may be told.
        why: Unavailable,
        /// The backend's own description, for the log.
        message: String,
    },
    /// Any other failure of the backend. The message is for the log only:
    /// it may quote SQL.
    #[error("database error: {0}")]
    Backend(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The schema could not be brought up to date at start-up.
    #[error("migration failed: {0}")]
    Migrate(String),
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
        matches!(
            self,
            StoreError::NotFound(_) | StoreError::Conflict(_) | StoreError::Locked(_)
        )
    }

    /// Whether the failure is the storage's and not the request's: a full
    /// disk, an I/O error, a transaction that did not commit. Nothing was
    /// written and the same request may succeed later.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            StoreError::Unavailable { why, .. } | StoreError::NotCommitted { why, .. } => {
                Some(*why)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_found_and_conflict_reach_clients_and_storage_failures_say_so() {
        let full = StoreError::Unavailable {
            why: Unavailable::Full,
            message: "database or disk is full".into(),
        };
        assert_eq!(full.unavailable(), Some(Unavailable::Full));
        assert!(!full.is_client_facing());
        let undone = StoreError::NotCommitted {
            why: Unavailable::Unreachable,
            message: "disk I/O error".into(),
        };
        assert_eq!(undone.unavailable(), Some(Unavailable::Unreachable));
        let backend = StoreError::Backend("near \"SELEC\": syntax error".into());
        assert_eq!(backend.unavailable(), None);
        assert!(!backend.is_client_facing());
        assert!(StoreError::NotFound("no grade with id 3".into()).is_client_facing());
        assert!(StoreError::Conflict("taken".into()).is_client_facing());
        assert!(StoreError::Locked("locked".into()).is_client_facing());
    }
}
