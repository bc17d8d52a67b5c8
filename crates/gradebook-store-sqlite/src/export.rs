//! Reading a whole database out, row by row, for `gradebook migrate`
//! (see [`gradebook_store::dump`]).
//!
//! The export brings the file's schema up to date first (as a server
//! starting on it would), then reads everything inside one read
//! transaction: the rows, the counts and the highest ids are all of one
//! moment. The large tables come in pages, by key, so a million grades
//! never sit in memory at once.

use std::path::Path;

use gradebook_store::StoreError;
use gradebook_store::dump::{
    ChangeRow, Counts, GradeRow, GrantRow, Highest, PromotionRow, SessionRow, StudentRow, UserRow,
};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Result, from_sqlite};
use crate::{log, migrate};

/// A database opened for reading out, inside one read transaction.
#[derive(Debug)]
pub struct Export {
    conn: Connection,
}

/// The store's error for an export failure.
fn fail(e: crate::error::Error) -> StoreError {
    e.into()
}

impl Export {
    /// Opens the database at `path` (which must exist), brings its schema
    /// up to date, and starts the read transaction everything is read in.
    /// The server must be stopped.
    pub fn open(path: &Path) -> std::result::Result<Export, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "no database at {}",
                path.display()
            )));
        }
        Self::open_existing(path).map_err(fail)
    }

    fn open_existing(path: &Path) -> Result<Export> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate::run(&mut conn)?;
        log::seal(&mut conn)?;
        conn.execute_batch("BEGIN")?;
        // A deferred transaction takes its snapshot at its first read.
        conn.query_row("SELECT count(*) FROM users", [], |_| Ok(()))?;
        Ok(Export { conn })
    }

    /// How many rows of each kind.
    pub fn counts(&self) -> std::result::Result<Counts, StoreError> {
        let count = |table: &str| -> std::result::Result<u64, StoreError> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(|e| from_sqlite(&e))
        };
        Ok(Counts {
            users: count("users")?,
            sessions: count("sessions")?,
            promotions: count("promotions")?,
            grants: count("grants")?,
            students: count("students")?,
            grades: count("grades")?,
            changes: count("changes")?,
        })
    }

    /// The highest id each table ever handed out.
    pub fn highest(&self) -> std::result::Result<Highest, StoreError> {
        let highest = |table: &str| -> std::result::Result<i64, StoreError> {
            self.conn
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = $1",
                    [table],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map(|n| n.unwrap_or(0))
                .map_err(|e| from_sqlite(&e))
        };
        Ok(Highest {
            users: highest("users")?,
            promotions: highest("promotions")?,
            students: highest("students")?,
            grades: highest("grades")?,
            changes: highest("changes")?,
        })
    }

    fn all<T>(
        &self,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> std::result::Result<Vec<T>, StoreError> {
        let read = || -> rusqlite::Result<Vec<T>> {
            self.conn
                .prepare(sql)?
                .query_map([], row)?
                .collect::<rusqlite::Result<Vec<T>>>()
        };
        read().map_err(|e| from_sqlite(&e))
    }

    /// Every account, by id.
    pub fn users(&self) -> std::result::Result<Vec<UserRow>, StoreError> {
        self.all(
            "SELECT id, username, password_hash, role, student_id, created_at \
             FROM users ORDER BY id",
            |r| {
                Ok(UserRow {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                    role: r.get(3)?,
                    student_id: r.get(4)?,
                    created_at: r.get(5)?,
                })
            },
        )
    }

    /// Every session.
    pub fn sessions(&self) -> std::result::Result<Vec<SessionRow>, StoreError> {
        self.all(
            "SELECT token_hash, user_id, created_at, last_seen, expires_at \
             FROM sessions ORDER BY token_hash",
            |r| {
                Ok(SessionRow {
                    token_hash: r.get(0)?,
                    user_id: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            },
        )
    }

    /// Every promotion, by id.
    pub fn promotions(&self) -> std::result::Result<Vec<PromotionRow>, StoreError> {
        self.all(
            "SELECT id, name, year, description, created_by, created_at, publication, locked \
             FROM promotions ORDER BY id",
            |r| {
                Ok(PromotionRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    year: r.get(2)?,
                    description: r.get(3)?,
                    created_by: r.get(4)?,
                    created_at: r.get(5)?,
                    publication: r.get(6)?,
                    locked: r.get(7)?,
                })
            },
        )
    }

    /// Every grant.
    pub fn grants(&self) -> std::result::Result<Vec<GrantRow>, StoreError> {
        self.all(
            "SELECT promotion_id, user_id FROM grants ORDER BY promotion_id, user_id",
            |r| {
                Ok(GrantRow {
                    promotion_id: r.get(0)?,
                    user_id: r.get(1)?,
                })
            },
        )
    }

    /// Every student, by id.
    pub fn students(&self) -> std::result::Result<Vec<StudentRow>, StoreError> {
        self.all(
            "SELECT id, promotion_id, first_name, last_name, number, email, created_at \
             FROM students ORDER BY id",
            |r| {
                Ok(StudentRow {
                    id: r.get(0)?,
                    promotion_id: r.get(1)?,
                    first_name: r.get(2)?,
                    last_name: r.get(3)?,
                    number: r.get(4)?,
                    email: r.get(5)?,
                    created_at: r.get(6)?,
                })
            },
        )
    }

    /// Up to `limit` grades with an id above `after`, by id.
    pub fn grades_after(
        &self,
        after: i64,
        limit: u32,
    ) -> std::result::Result<Vec<GradeRow>, StoreError> {
        let read = || -> rusqlite::Result<Vec<GradeRow>> {
            self.conn
                .prepare_cached(
                    "SELECT id, student_id, subject, value, coefficient, label, created_at, \
                     published FROM grades WHERE id > $1 ORDER BY id LIMIT $2",
                )?
                .query_map([after, i64::from(limit)], |r| {
                    Ok(GradeRow {
                        id: r.get(0)?,
                        student_id: r.get(1)?,
                        subject: r.get(2)?,
                        value: r.get(3)?,
                        coefficient: r.get(4)?,
                        label: r.get(5)?,
                        created_at: r.get(6)?,
                        published: r.get(7)?,
                    })
                })?
                .collect()
        };
        read().map_err(|e| from_sqlite(&e))
    }

    /// Up to `limit` change-log entries after `after`, in order.
    pub fn changes_after(
        &self,
        after: i64,
        limit: u32,
    ) -> std::result::Result<Vec<ChangeRow>, StoreError> {
        let read = || -> rusqlite::Result<Vec<ChangeRow>> {
            self.conn
                .prepare_cached(
                    "SELECT seq, at, username, command, kind, promotion_id, student_id, \
                     grade_id, old, new, hash FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                )?
                .query_map([after, i64::from(limit)], |r| {
                    Ok(ChangeRow {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        username: r.get(2)?,
                        command: r.get(3)?,
                        kind: r.get(4)?,
                        promotion_id: r.get(5)?,
                        student_id: r.get(6)?,
                        grade_id: r.get(7)?,
                        old: r.get(8)?,
                        new: r.get(9)?,
                        hash: r.get(10)?,
                    })
                })?
                .collect()
        };
        read().map_err(|e| from_sqlite(&e))
    }

    /// The chain of the log as read (the copy's is checked against it).
    pub fn verify(&self) -> std::result::Result<gradebook_store::ChainReport, StoreError> {
        log::verify(&self.conn).map_err(fail)
    }
}
