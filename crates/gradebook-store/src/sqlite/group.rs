//! Group commit: the writes that arrive together share one transaction and
//! one fsync, and each is acknowledged only once that commit is on disk.
//!
//! SQLite has one writer at a time and `synchronous=FULL` makes every
//! commit wait for the disk, so one transaction per write caps writes at
//! the disk's fsync rate. Here every write still runs alone, inside its own
//! savepoint of a shared transaction (so a failing write undoes only
//! itself), but the commit is shared: a write that finishes while others
//! are queued behind it leaves the commit to the last of them, and waits
//! for it. While one batch commits, the next one queues up, so the batch
//! grows exactly when the disk is the bottleneck.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::{Result, StoreError};

/// How long a write waits for the writer behind it to commit before it
/// checks whether that writer went away, and commits itself.
const HANDOVER: Duration = Duration::from_millis(5);

/// Outcomes of recent batches, for writes that learn them late.
const HISTORY: usize = 4096;

/// The one connection that writes, and the batch in progress on it.
#[derive(Debug)]
struct Batch {
    conn: SqliteConnection,
    /// A transaction is open.
    open: bool,
    /// A savepoint of a write that gave up is still open: undo it first.
    abandoned: bool,
    /// The number of the open (or next) transaction.
    epoch: u64,
}

/// The writer: the connection behind a lock, and the commit notices.
#[derive(Debug)]
pub struct Writer {
    batch: Arc<Mutex<Batch>>,
    /// Writes waiting for the lock: while there are some, nobody commits
    /// early.
    queued: AtomicUsize,
    /// The last epoch whose commit finished.
    committed: watch::Sender<u64>,
    /// Whether recent epochs committed (`true`) or failed.
    outcomes: StdMutex<VecDeque<(u64, bool)>>,
}

/// One write in progress: the connection, inside this write's savepoint.
/// Dropping it without [`WriteGuard::commit`] undoes the write.
#[derive(Debug)]
pub struct WriteGuard {
    batch: OwnedMutexGuard<Batch>,
    writer: Arc<Writer>,
}

impl Writer {
    /// Takes over the writing connection.
    pub fn new(conn: SqliteConnection) -> Arc<Self> {
        Arc::new(Writer {
            batch: Arc::new(Mutex::new(Batch {
                conn,
                open: false,
                abandoned: false,
                epoch: 1,
            })),
            queued: AtomicUsize::new(0),
            committed: watch::Sender::new(0),
            outcomes: StdMutex::new(VecDeque::with_capacity(HISTORY)),
        })
    }

    /// Starts a write: waits for the connection, opens the batch's
    /// transaction if needed and this write's savepoint.
    pub async fn begin(self: &Arc<Self>) -> Result<WriteGuard> {
        let batch = {
            self.queued.fetch_add(1, Ordering::SeqCst);
            let _counted = Dequeue(&self.queued);
            self.batch.clone().lock_owned().await
        };
        let mut guard = WriteGuard {
            batch,
            writer: self.clone(),
        };
        let b = &mut *guard.batch;
        undo_abandoned(b).await?;
        if !b.open {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut b.conn).await?;
            b.open = true;
        }
        sqlx::query("SAVEPOINT write").execute(&mut b.conn).await?;
        // Until `commit` releases it, a dropped guard leaves it to undo.
        b.abandoned = true;
        Ok(guard)
    }

    /// Closes the connection, committing what is pending.
    pub async fn close(&self) {
        let mut b = self.batch.lock().await;
        if undo_abandoned(&mut b).await.is_ok() && b.open {
            let _ = self.commit_batch(&mut b).await;
        }
    }

    /// Commits the open transaction for every write in it.
    async fn commit_batch(&self, b: &mut Batch) -> Result<()> {
        let epoch = b.epoch;
        let result = sqlx::query("COMMIT").execute(&mut b.conn).await;
        if result.is_err() {
            // Leave the connection usable for the next batch.
            let _ = sqlx::query("ROLLBACK").execute(&mut b.conn).await;
        }
        b.open = false;
        b.epoch += 1;
        {
            let mut outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
            if outcomes.len() == HISTORY {
                outcomes.pop_front();
            }
            outcomes.push_back((epoch, result.is_ok()));
        }
        self.committed.send_replace(epoch);
        result.map(|_| ()).map_err(StoreError::from)
    }

    fn outcome(&self, epoch: u64) -> Result<()> {
        let outcomes = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        match outcomes.iter().rev().find(|(e, _)| *e == epoch) {
            Some((_, true)) => Ok(()),
            Some((_, false)) => Err(StoreError::Corrupt(format!(
                "the commit of write batch {epoch} failed"
            ))),
            None => Err(StoreError::Corrupt(format!(
                "the outcome of write batch {epoch} was forgotten"
            ))),
        }
    }
}

impl WriteGuard {
    /// Keeps this write and returns once it is durable: at once if no write
    /// is queued behind it, else when the batch it joined has committed.
    pub async fn commit(self) -> Result<()> {
        let WriteGuard { mut batch, writer } = self;
        sqlx::query("RELEASE write")
            .execute(&mut batch.conn)
            .await?;
        batch.abandoned = false;
        let epoch = batch.epoch;
        if writer.queued.load(Ordering::SeqCst) == 0 {
            return writer.commit_batch(&mut batch).await;
        }
        // Others are queued: the last of them commits for all.
        let mut notices = writer.committed.subscribe();
        drop(batch);
        loop {
            if *notices.borrow_and_update() >= epoch {
                return writer.outcome(epoch);
            }
            if tokio::time::timeout(HANDOVER, notices.changed())
                .await
                .is_ok()
            {
                continue;
            }
            // Nobody committed in time (the writer behind us gave up):
            // commit ourselves if our batch is still open.
            let mut b = writer.batch.clone().lock_owned().await;
            if b.epoch == epoch && b.open && writer.queued.load(Ordering::SeqCst) == 0 {
                undo_abandoned(&mut b).await?;
                return writer.commit_batch(&mut b).await;
            }
        }
    }
}

impl WriteGuard {
    /// Undoes this write, then waits like [`WriteGuard::commit`] for the
    /// batch it joined: for a retried request whose first copy is in it.
    pub async fn undo_and_wait(mut self) -> Result<()> {
        sqlx::query("ROLLBACK TO write")
            .execute(&mut self.batch.conn)
            .await?;
        self.commit().await
    }
}

impl Deref for WriteGuard {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.batch.conn
    }
}

impl DerefMut for WriteGuard {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.batch.conn
    }
}

/// Undoes the savepoint of a write that returned early with an error.
async fn undo_abandoned(b: &mut Batch) -> Result<()> {
    if b.abandoned {
        sqlx::query("ROLLBACK TO write")
            .execute(&mut b.conn)
            .await?;
        sqlx::query("RELEASE write").execute(&mut b.conn).await?;
        b.abandoned = false;
    }
    Ok(())
}

/// Counts a write out of the queue once it holds the lock (or gave up).
struct Dequeue<'a>(&'a AtomicUsize);

impl Drop for Dequeue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
