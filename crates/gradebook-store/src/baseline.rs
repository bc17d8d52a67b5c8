//! The reference that write throughput is measured against: single-row
//! commits with `synchronous=FULL` on the same disk, one fsync each.
//! `gradebook bench --fsync-baseline` runs it beside the server's figures.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::Result;

/// Commits `n` single-row transactions into a scratch database at `path`
/// (created, then removed) and returns how long they took.
pub async fn single_row_commits(path: &Path, n: u32) -> Result<Duration> {
    let url = format!("sqlite://{}", path.display());
    let mut conn = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    for i in 0..n {
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO t (v) VALUES ($1)")
            .bind(i64::from(i))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed();
    conn.close().await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(elapsed)
}
