//! A consistent copy of a database file while a server writes to it
//! (`gradebook backup`).
//!
//! `VACUUM INTO` reads the source inside one read transaction, so in WAL
//! mode the copy is the database as of one commit, whatever the server
//! writes meanwhile, and it never holds up the server's writer. The copy
//! is a plain database file (no WAL beside it), checked before it is kept:
//! SQLite's integrity check and the change log's hash chain.

use std::path::{Path, PathBuf};

use gradebook_store::{ChainReport, StoreError};
use rusqlite::{Connection, OpenFlags};

use crate::error::from_sqlite;
use crate::log;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupReport {
    /// The copy's path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Accounts, promotions, students and grades it holds.
    pub users: i64,
    /// Promotions.
    pub promotions: i64,
    /// Students.
    pub students: i64,
    /// Grades.
    pub grades: i64,
    /// Its change log's chain, checked.
    pub chain: ChainReport,
}

/// Copies the database at `database` to a new file `to`, consistently,
/// while a server may be writing to it. Refuses to overwrite `to`; leaves
/// nothing behind when the copy fails or does not check out.
pub fn backup(database: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    if !database.exists() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            database.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already: a backup never overwrites a file",
            to.display()
        )));
    }
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| from_sqlite(&e))?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| from_sqlite(&e))?;
    let target = to
        .to_str()
        .ok_or_else(|| StoreError::Backend(format!("{} is not a UTF-8 path", to.display())))?;
    let copied = source
        .execute("VACUUM INTO $1", [target])
        .map_err(|e| from_sqlite(&e))
        .and_then(|_| check(to));
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Opens the copy and says what it holds, or why it is not a good copy.
fn check(path: &Path) -> Result<BackupReport, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| from_sqlite(&e))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    if integrity != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy fails SQLite's integrity check: {integrity}"
        )));
    }
    let count = |table: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| from_sqlite(&e))
    };
    let chain = log::verify(&conn).map_err(StoreError::from)?;
    if let Some(problem) = &chain.problem {
        return Err(StoreError::Corrupt(format!(
            "the copy's change log breaks at entry {}: {} (so does the source's; \
             see `gradebook audit verify`)",
            problem.seq, problem.reason
        )));
    }
    Ok(BackupReport {
        path: path.to_owned(),
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        users: count("users")?,
        promotions: count("promotions")?,
        students: count("students")?,
        grades: count("grades")?,
        chain,
    })
}
