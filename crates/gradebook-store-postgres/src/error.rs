//! Errors inside the backend, and what the [`gradebook_store::Store`]'s
//! callers are told.
//!
//! The backend's functions return [`Error`], so that `?` takes the
//! driver's errors, the pool's and the store's own (not found, conflict…).
//! At the trait's edge it becomes a [`StoreError`], which holds no driver
//! type: a connection that cannot be made or broke, a server shutting down,
//! a lock or pool wait that timed out becomes [`StoreError::Unavailable`]
//! (a full disk: [`Unavailable::Full`]); any other PostgreSQL error becomes
//! [`StoreError::Backend`], its text for the log only.

use deadpool_postgres::PoolError;
use gradebook_store::{StoreError, Unavailable};
use tokio_postgres::error::SqlState;

/// An error inside the backend.
#[derive(Debug)]
pub(crate) enum Error {
    /// One of the store's errors, classified already.
    Store(StoreError),
    /// The driver's, classified at the edge.
    Postgres(tokio_postgres::Error),
    /// The pool's (no connection to be had), classified at the edge.
    Pool(PoolError),
}

/// The result of the backend's functions.
pub(crate) type Result<T> = std::result::Result<T, Error>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        Error::Pool(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Postgres(e) => from_postgres(&e),
            Error::Pool(e) => from_pool(e),
        }
    }
}

/// The store's error for a driver error.
pub(crate) fn from_postgres(e: &tokio_postgres::Error) -> StoreError {
    match unavailable(e) {
        Some(why) => StoreError::Unavailable {
            why,
            message: describe(e),
        },
        None => StoreError::Backend(describe(e)),
    }
}

/// The store's error for a pool error: a closed pool means a closed store;
/// anything else means no connection could be had.
pub(crate) fn from_pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Closed => StoreError::Closed,
        PoolError::Backend(e) => match unavailable(&e) {
            Some(why) => StoreError::Unavailable {
                why,
                message: describe(&e),
            },
            // Even a refused login means that the store cannot serve now.
            None => StoreError::Unavailable {
                why: Unavailable::Unreachable,
                message: describe(&e),
            },
        },
        e => StoreError::Unavailable {
            why: Unavailable::Unreachable,
            message: format!("no database connection: {e}"),
        },
    }
}

/// The store's error for a batch that did not commit: the storage failed
/// it, whatever the cause (the write itself was fine).
pub(crate) fn not_committed(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable { why, message } | StoreError::NotCommitted { why, message } => {
            StoreError::NotCommitted {
                why: *why,
                message: message.clone(),
            }
        }
        e => StoreError::NotCommitted {
            why: Unavailable::Unreachable,
            message: e.to_string(),
        },
    }
}

/// The driver's description, with the server's detail when there is one
/// (for the log only).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.message(), db.code().code(), e),
        None => e.to_string(),
    }
}

/// Whether `e` means that the storage cannot serve requests now.
fn unavailable(e: &tokio_postgres::Error) -> Option<Unavailable> {
    if let Some(code) = e.code() {
        return unavailable_code(code);
    }
    // No SQLSTATE: the connection itself failed (closed, I/O, timeout),
    // unless the error is one of converting a value, which is ours.
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    (e.is_closed() || io || e.to_string().contains("timed out")).then_some(Unavailable::Unreachable)
}

/// Whether a SQLSTATE means that the storage cannot serve requests now.
fn unavailable_code(code: &SqlState) -> Option<Unavailable> {
    let class = code.code().get(..2).unwrap_or("");
    if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
        return Some(Unavailable::Full);
    }
    match class {
        // Connection exceptions; insufficient resources (too many
        // connections…); operator intervention (shutdown, cannot connect
        // now); system (I/O) errors; transaction rollbacks (deadlock,
        // serialization), lock not available.
        "08" | "53" | "57" | "58" | "40" => Some(Unavailable::Unreachable),
        _ if *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION =>
        {
            Some(Unavailable::Unreachable)
        }
        _ => None,
    }
}

/// Whether `e` is a unique (or primary key) constraint violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Whether `e` is an integrity constraint violation of any kind (unique,
/// foreign key, check, not null).
pub(crate) fn is_constraint_violation(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("23"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_unavailable_and_the_rest_is_text_for_the_log() {
        assert_eq!(
            unavailable_code(&SqlState::DISK_FULL),
            Some(Unavailable::Full)
        );
        assert_eq!(
            unavailable_code(&SqlState::ADMIN_SHUTDOWN),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(
            unavailable_code(&SqlState::CONNECTION_FAILURE),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(
            unavailable_code(&SqlState::T_R_DEADLOCK_DETECTED),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(unavailable_code(&SqlState::UNIQUE_VIOLATION), None);
        assert_eq!(unavailable_code(&SqlState::SYNTAX_ERROR), None);
        assert!(matches!(from_pool(PoolError::Closed), StoreError::Closed));
        let undone = not_committed(&StoreError::Backend("x".into()));
        assert_eq!(undone.unavailable(), Some(Unavailable::Unreachable));
        let kept = StoreError::from(Error::from(StoreError::Duplicate));
        assert!(matches!(kept, StoreError::Duplicate));
    }
}
