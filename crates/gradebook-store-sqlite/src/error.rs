//! Errors inside the backend, and what the [`gradebook_store::Store`]'s
//! callers are told.
//!
//! The backend's functions return [`Error`], so that `?` takes both
//! rusqlite's errors and the store's own (not found, conflict…). At the
//! trait's edge it becomes a [`StoreError`], which holds no driver type: a
//! full disk, an I/O error or a lock held too long becomes
//! [`StoreError::Unavailable`]; any other SQLite error becomes
//! [`StoreError::Backend`], its text for the log only.

use gradebook_store::{StoreError, Unavailable};
use rusqlite::ffi;

/// An error inside the backend.
#[derive(Debug)]
pub(crate) enum Error {
    /// One of the store's errors, classified already.
    Store(StoreError),
    /// The driver's, classified at the edge.
    Sqlite(rusqlite::Error),
}

/// The result of the backend's functions.
pub(crate) type Result<T> = std::result::Result<T, Error>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Sqlite(e) => from_sqlite(&e),
        }
    }
}

/// The store's error for an SQLite error.
pub(crate) fn from_sqlite(e: &rusqlite::Error) -> StoreError {
    match unavailable(e) {
        Some(why) => StoreError::Unavailable {
            why,
            message: e.to_string(),
        },
        None => StoreError::Backend(e.to_string()),
    }
}

/// The store's error for a batch that did not commit: the storage failed
/// it, whatever the cause (the write itself was fine).
pub(crate) fn not_committed(e: &rusqlite::Error) -> StoreError {
    StoreError::NotCommitted {
        why: unavailable(e).unwrap_or(Unavailable::Unreachable),
        message: e.to_string(),
    }
}

/// Whether `e` means that the storage cannot serve requests now.
fn unavailable(e: &rusqlite::Error) -> Option<Unavailable> {
    // The extended code's low byte is the primary code.
    match e.sqlite_error()?.extended_code & 0xff {
        ffi::SQLITE_FULL => Some(Unavailable::Full),
        ffi::SQLITE_IOERR | ffi::SQLITE_CANTOPEN | ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => {
            Some(Unavailable::Unreachable)
        }
        _ => None,
    }
}

/// Whether `e` is a unique (or primary key) constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|e| {
        e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("details".into()))
    }

    #[test]
    fn storage_failures_are_unavailable_and_the_rest_is_text_for_the_log() {
        let full = StoreError::from(Error::from(failure(ffi::SQLITE_FULL)));
        assert_eq!(full.unavailable(), Some(Unavailable::Full));
        let io = StoreError::from(Error::from(failure(ffi::SQLITE_IOERR_WRITE)));
        assert_eq!(io.unavailable(), Some(Unavailable::Unreachable));
        let busy = StoreError::from(Error::from(failure(ffi::SQLITE_BUSY)));
        assert_eq!(busy.unavailable(), Some(Unavailable::Unreachable));
        let other = StoreError::from(Error::from(failure(ffi::SQLITE_CONSTRAINT_CHECK)));
        assert!(matches!(other, StoreError::Backend(_)), "{other:?}");
        let undone = not_committed(&failure(ffi::SQLITE_CONSTRAINT_FOREIGNKEY));
        assert_eq!(undone.unavailable(), Some(Unavailable::Unreachable));
        let kept = StoreError::from(Error::from(StoreError::Duplicate));
        assert!(matches!(kept, StoreError::Duplicate));
    }
}
