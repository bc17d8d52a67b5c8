//! The references that writes are measured against, on the same disk:
//! single-row commits with `synchronous=FULL`, one fsync each (`gradebook
//! bench --fsync-baseline` runs it beside the server's figures), and a raw
//! bulk insert of grade rows in one transaction (`gradebook bench
//! --import-grades` runs it beside the CLI's import of the same rows).

//!
//! They talk to SQLite directly, through rusqlite, with nothing of the
//! server's store in between: the figures are what the disk and SQLite
//! give, the floor the server's writes are compared with.

use std::path::Path;
use std::time::{Duration, Instant};

type Result<T> = rusqlite::Result<T>;

/// One grade row as the `grades` table holds it: value and coefficient in
/// integer hundredths (12.25 is 1225).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGrade {
    /// The student's id.
    pub student: i64,
    /// The subject.
    pub subject: String,
    /// The value, in hundredths.
    pub value: i64,
    /// The coefficient, in hundredths.
    pub coefficient: i64,
    /// The label.
    pub label: Option<String>,
}

/// Inserts `rows` into a scratch database at `path` (created, then
/// removed) the fastest plain way: a table with the columns of `grades`
/// and its index on the student, WAL and `synchronous=FULL` as the server
/// runs, one transaction, one prepared statement. Returns how long the
/// transaction took, from its `BEGIN` to the end of its `COMMIT`.
pub fn bulk_insert(path: &Path, rows: &[RawGrade]) -> Result<Duration> {
    let result = bulk_insert_into(path, rows);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

fn bulk_insert_into(path: &Path, rows: &[RawGrade]) -> Result<Duration> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE grades (
             id          INTEGER PRIMARY KEY AUTOINCREMENT,
             student_id  INTEGER NOT NULL,
             subject     TEXT    NOT NULL,
             value       INTEGER NOT NULL,
             coefficient INTEGER NOT NULL,
             label       TEXT,
             created_at  INTEGER NOT NULL
         );
         CREATE INDEX grades_student ON grades (student_id);",
    )?;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO grades (student_id, subject, value, coefficient, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )?;
        for r in rows {
            insert.execute(rusqlite::params![
                r.student,
                r.subject,
                r.value,
                r.coefficient,
                r.label,
                at
            ])?;
        }
    }
    tx.commit()?;
    Ok(started.elapsed())
}

/// Commits `n` single-row transactions into a scratch database at `path`
/// (created, then removed) and returns how long they took.
pub fn single_row_commits(path: &Path, n: u32) -> Result<Duration> {
    let result = single_row_commits_into(path, n);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

fn single_row_commits_into(path: &Path, n: u32) -> Result<Duration> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
        [],
    )?;
    let started = Instant::now();
    for i in 0..n {
        let tx = conn.transaction()?;
        tx.prepare_cached("INSERT INTO t (v) VALUES ($1)")?
            .execute([i64::from(i)])?;
        tx.commit()?;
    }
    let elapsed = started.elapsed();
    conn.close().map_err(|(_, e)| e)?;
    Ok(elapsed)
}

/// Times `n` single-row commits into a scratch table (created, then
/// dropped) of the PostgreSQL database at `url`: the reference for durable
/// writes on PostgreSQL, as [`single_row_commits`] is on SQLite. Each
/// INSERT is its own transaction, committed as PostgreSQL commits
/// (`synchronous_commit` as the server is configured).
pub async fn postgres_single_row_commits(
    url: &str,
    n: u32,
) -> std::result::Result<Duration, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to the PostgreSQL database: {e}"))?;
    let connection = tokio::spawn(connection);
    let table = format!("gradebook_commit_baseline_{}", std::process::id());
    let run = async {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                 v BIGINT NOT NULL)"
            ))
            .await?;
        let insert = client
            .prepare(&format!("INSERT INTO {table} (v) VALUES ($1)"))
            .await?;
        let started = Instant::now();
        for i in 0..n {
            client.execute(&insert, &[&i64::from(i)]).await?;
        }
        Ok::<Duration, tokio_postgres::Error>(started.elapsed())
    };
    let result = run.await.map_err(|e| e.to_string());
    let _ = client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await;
    drop(client);
    let _ = connection.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_insert_is_timed_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("bulk.db");
        let rows: Vec<RawGrade> = (0..50)
            .map(|i| RawGrade {
                student: i % 7,
                subject: "Maths".into(),
                value: 1225,
                coefficient: 150,
                label: Some(format!("Exam {i}")),
            })
            .collect();
        let took = bulk_insert(&path, &rows).expect("inserts");
        assert!(took > Duration::ZERO);
        assert_eq!(
            std::fs::read_dir(dir.path()).map(Iterator::count).ok(),
            Some(0)
        );
    }

    #[test]
    fn single_row_commits_are_timed_and_leave_no_file() {
        let dir = tempfile::tempdir().expect("a directory");
        let took = single_row_commits(&dir.path().join("fsync.db"), 5).expect("commits");
        assert!(took > Duration::ZERO);
        assert_eq!(
            std::fs::read_dir(dir.path()).map(Iterator::count).ok(),
            Some(0)
        );
    }
}
