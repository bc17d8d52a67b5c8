//! Group commit on one writer thread: the writes that arrive together share
//! one transaction and one fsync, and each is acknowledged only once that
//! commit is on disk.
//!
//! SQLite has one writer at a time, and a commit that waits for the disk
//! caps writes at the disk's fsync rate if each write is one transaction.
//! Writes are therefore closures sent to a thread that owns the writing
//! connection. It takes every write queued, opens one transaction, runs
//! each write synchronously (a failing write undoes only itself: see
//! [`Undo`]) and commits once. The batch then goes to the
//! flushing thread ([`crate::flush`]), which tells each caller its result
//! once the commit is on disk, while this thread runs the next batch.
//! Writes queue up while a batch runs, so batches grow exactly when the
//! writer is the bottleneck.
//!
//! Checkpoints (copying the WAL's pages back into the database file) run
//! on a thread of their own, so that the writer's commits never wait for
//! one: with SQLite's automatic checkpoint, every thousandth page written
//! made one commit copy them all, an eighth of the writer's time.
//!
//! Why a thread and not the async driver: a write is a handful of
//! statements, and an async driver that hands each statement to a worker
//! thread pays two context switches per statement, which on a small machine
//! costs more than the fsync it shares.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use gradebook_store::{Follower, Queued, StoreError};

use crate::error::{self, Result};
use crate::flush::{Flush, Flusher, Ran};

/// What a caller is told.
type Outcome<T> = gradebook_store::Result<T>;
use crate::log::{self, Appended, Tx};
use gradebook_store::change::Head;

/// The most writes one transaction takes: bounds how long the first of
/// them waits for its acknowledgement.
const MAX_BATCH: usize = 1024;

/// The writer: a queue to the thread that owns the writing connection.
#[derive(Debug)]
pub struct Writer {
    queue: mpsc::Sender<Message>,
    /// The seq of the last change-log entry on disk.
    durable: Arc<AtomicI64>,
}

enum Message {
    /// A write to run in the next batch.
    Job(Box<dyn Job>),
    /// Work on the connection between two batches, with the thread's
    /// state: it sees every write before it committed, and none after.
    Exclusive(Box<dyn Exclusive>),
    /// Commit what is queued before this, close the connection, stop, and
    /// say so.
    Close(oneshot::Sender<()>),
}

/// Work that runs between two batches (see [`Writer::exclusive`]).
trait Exclusive: FnOnce(&mut Connection, &mut State) + Send {}
impl<F: FnOnce(&mut Connection, &mut State) + Send> Exclusive for F {}

/// What the writer thread keeps between batches.
pub(crate) struct State {
    /// Where the change log ends.
    pub head: Head,
    /// Who is told of each committed batch's changes.
    pub follower: Option<Arc<dyn Follower>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Job(_) => f.write_str("Job"),
            Message::Exclusive(_) => f.write_str("Exclusive"),
            Message::Close(_) => f.write_str("Close"),
        }
    }
}

/// One write, as the thread sees it: run now, report once its batch is
/// on disk.
pub(crate) trait Job: Send {
    /// Runs the write; whether it succeeded (and so is kept). A batch that
    /// starts over runs it again, and the last run's result counts.
    fn run(&mut self, tx: &Tx<'_>) -> bool;
    /// Tells the caller the outcome, now that the batch is on disk (`Ok`)
    /// or failed to commit or to be flushed (why).
    fn report(self: Box<Self>, batch: std::result::Result<(), &StoreError>);
}

/// A write and the caller waiting for its result.
struct Pending<T, F> {
    work: F,
    result: Option<Outcome<T>>,
    reply: oneshot::Sender<Outcome<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: Fn(&Tx<'_>) -> Result<T> + Send,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        // A panicking write is undone like a failing one, and the thread
        // goes on with the others.
        let result = catch_unwind(AssertUnwindSafe(|| (self.work)(tx)))
            .map(|result| result.map_err(StoreError::from))
            .unwrap_or_else(|_| {
                Err(StoreError::Corrupt(
                    "a write panicked; it was undone".into(),
                ))
            });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn report(self: Box<Self>, batch: std::result::Result<(), &StoreError>) {
        let result = match (self.result, batch) {
            // A duplicate means "the first copy is durable": not so if its
            // batch (possibly this one) failed.
            (Some(Err(StoreError::Duplicate)), Err(e)) => Err(e.clone()),
            // A write that failed changed nothing, whatever became of the
            // batch.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(e.clone()),
            (None, Ok(())) => Err(StoreError::Corrupt("a write was never run".into())),
        };
        // The caller may have gone away; the write stands all the same.
        let _ = self.reply.send(result);
    }
}

impl Writer {
    /// Opens the writing connection to the database file at `path` (whose
    /// schema is up to date) and starts its thread, making commits durable
    /// with the flush that `flush` opens ([`crate::flush::wal_flush`]).
    pub(crate) fn open(
        path: &Path,
        flush: impl FnOnce(&Path) -> std::io::Result<Flush>,
    ) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: a commit returns once its pages are in the WAL, and the
        // flushing thread puts them on disk before any write of it is
        // answered, so an `ok` reply survives a power cut, not only a
        // crash of the server (see `flush.rs`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Every write statement stays prepared.
        conn.set_prepared_statement_cache_capacity(128);
        // An import writes a whole file in one savepoint: with the default
        // 2 MiB page cache, SQLite spills dirty pages to the WAL mid-batch
        // and reads them back. 8 MiB, used only as pages are touched: much
        // more makes every commit slower (SQLite walks the whole page
        // cache at the end of each transaction: a fifth of the writer's
        // time at 64 MiB).
        conn.pragma_update(None, "cache_size", -8_192)?;
        // Each write's savepoint copies the pages it changes to a
        // statement journal first; in a temporary file, that is one
        // write(2) per page (a fifth of an import's time). In memory it is
        // as safe: the journal only serves to undo a failed write, and a
        // crash undoes the whole uncommitted transaction from the WAL.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The checkpointer below does it, off the commit path.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        log::seal(&mut conn)?;
        let state = State {
            head: log::head(&conn)?,
            follower: None,
        };
        let flush = flush(path)
            .map_err(|e| StoreError::Corrupt(format!("cannot open the WAL to flush it: {e}")))?;
        let checkpointer = Checkpointer::start(path)?;
        let flusher = Flusher::start(flush, state.head.seq)
            .map_err(|e| StoreError::Corrupt(format!("cannot start the flushing thread: {e}")))?;
        let durable = flusher.durable();
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("gradebook-writer".into())
            .spawn(move || serve(conn, state, &jobs, checkpointer, flusher))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue, durable })
    }

    /// Runs `write` in the next batch, in its own savepoint, and returns
    /// its result once the batch has committed. An error from `write`
    /// undoes its changes only; if the commit fails, the write fails too.
    /// The write runs even if this future is dropped.
    pub async fn run<T, F>(&self, write: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(write)?.await.map_err(|_| StoreError::Closed)?
    }

    /// As [`Writer::run`], and tells `queued` once the write is in the
    /// queue: a connection pipelining writes sends the next one only then,
    /// so its writes run in the order it sent them.
    pub async fn run_queued<T, F>(&self, queued: Option<Arc<Queued>>, write: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let result = self.submit(write);
        if let Some(q) = queued {
            q.tell();
        }
        result?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `write`; the receiver gets its result after the commit.
    fn submit<T, F>(&self, write: F) -> Outcome<oneshot::Receiver<Outcome<T>>>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Pending {
            work: write,
            result: None,
            reply,
        };
        self.queue
            .send(Message::Job(Box::new(job)))
            .map_err(|_| StoreError::Closed)?;
        Ok(result)
    }

    /// The seq of the last change-log entry on disk: a committed entry
    /// past it may still be lost, and its write is not yet answered.
    pub fn durable_seq(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Runs `work` on the writer's connection between two batches and
    /// returns its result.
    pub async fn exclusive<T, F>(&self, work: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut State) -> Result<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = move |conn: &mut Connection, state: &mut State| {
            let _ = reply.send(work(conn, state).map_err(StoreError::from));
        };
        self.queue
            .send(Message::Exclusive(Box::new(job)))
            .map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits the writes queued so far, closes the connection and stops
    /// the thread. Writes sent afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// How long the checkpointer rests after a checkpoint: pages written again
/// meanwhile (an index's hot pages) are copied once, not once per commit.
const CHECKPOINT_REST: Duration = Duration::from_millis(50);

/// The WAL's length, in pages, past which the writer starts it over.
const WAL_RESTART_PAGES: i64 = 4096;

/// The thread that copies committed pages from the WAL into the database
/// file, woken by the writer after its commits. Its checkpoints are
/// PASSIVE: they never wait for, nor hold up, the writer or a reader.
///
/// SQLite starts the WAL over only when a write begins after a checkpoint
/// copied all of it, which a checkpoint beside a busy writer never does:
/// so when the WAL grows long, the checkpointer asks the writer to run one
/// last small checkpoint itself, between two batches ([`Checkpointer::restart`]).
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    restart: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // One pending wake-up is enough: a checkpoint copies every commit
        // made before it.
        let (wake, woken) = mpsc::sync_channel(1);
        let restart = Arc::new(AtomicBool::new(false));
        let wanted = restart.clone();
        let thread = std::thread::Builder::new()
            .name("gradebook-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    // (busy, pages in the WAL, pages copied)
                    let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    match copied {
                        Ok((pages, _)) if pages >= WAL_RESTART_PAGES => {
                            wanted.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "a checkpoint failed; the next one retries")
                        }
                    }
                    std::thread::sleep(CHECKPOINT_REST);
                }
                // Closing the last connection copies what is left and
                // removes the WAL.
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing the checkpointing connection failed");
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            wake,
            restart,
            thread,
        })
    }

    /// Asks for a checkpoint soon; never blocks.
    fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// On the writer's thread, between two batches: when the WAL has grown
    /// long, copies the little the checkpointer has not, so that the next
    /// write starts the WAL over.
    fn restart(&self, conn: &Connection) {
        if self.restart.swap(false, Ordering::Relaxed)
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "a checkpoint failed; the next one retries");
        }
    }

    /// Lets the thread finish and close its connection.
    fn stop(self) {
        drop(self.wake);
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

/// The writer thread: one batch after another until closed, or until every
/// [`Writer`] is gone.
fn serve(
    mut conn: Connection,
    mut state: State,
    jobs: &mpsc::Receiver<Message>,
    checkpointer: Checkpointer,
    mut flusher: Flusher,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::new();
    let mut closing = None;
    while closing.is_none() {
        // Exclusive work runs after the writes queued before it.
        let mut exclusive = None;
        match jobs.recv() {
            Ok(Message::Job(job)) => batch.push(job),
            Ok(Message::Exclusive(work)) => exclusive = Some(work),
            Ok(Message::Close(done)) => closing = Some(done),
            Err(mpsc::RecvError) => break,
        }
        while closing.is_none() && exclusive.is_none() && batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Exclusive(work)) => exclusive = Some(work),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&mut conn, &mut state, std::mem::take(&mut batch), &flusher);
            checkpointer.restart(&conn);
            checkpointer.wake();
        }
        if let Some(work) = exclusive {
            // It sees the data as the follower will: every batch before it
            // on disk and applied.
            flusher.drain();
            work(&mut conn, &mut state);
            checkpointer.wake();
        }
    }
    flusher.stop();
    if let Err((_, e)) = conn.close() {
        tracing::error!(error = %e, "closing the writing connection failed");
    }
    checkpointer.stop();
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs `jobs` in one transaction and commits it, then hands them with the
/// changes they logged (or why the batch failed) to the flusher, which
/// reports to each once the commit is on disk.
fn run_batch(
    conn: &mut Connection,
    state: &mut State,
    mut jobs: Vec<Box<dyn Job>>,
    flusher: &Flusher,
) {
    if let Some(e) = flusher.failure() {
        for job in jobs {
            job.report(Err(&e));
        }
        return;
    }
    let head = state.head;
    let outcome = attempt(conn, head, &mut jobs, Undo::OnlyIfNeeded).and_then(|done| match done {
        Some(appended) => Ok(appended),
        // A write failed after changing rows: the batch starts over.
        None => attempt(conn, head, &mut jobs, Undo::Savepoints)?
            .ok_or_else(|| aborted("a write could not be undone in its savepoint")),
    });
    let committed = match outcome {
        Ok(appended) => {
            state.head = appended.head;
            Ok(appended.entries)
        }
        Err(e) => {
            tracing::error!(error = %e, writes = jobs.len(), "a write batch did not commit");
            Err(error::not_committed(&e))
        }
    };
    flusher.send(Ran {
        jobs,
        committed,
        follower: state.follower.clone(),
    });
}

/// How a batch undoes a write that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// No savepoints: most writes that fail do so before they change a
    /// row (a missing student, a locked promotion), and SQLite undoes a
    /// failing statement by itself. If a write fails after changing rows,
    /// the batch gives up and starts over with [`Undo::Savepoints`].
    OnlyIfNeeded,
    /// Each write in its own savepoint, rolled back if it fails. A
    /// savepoint copies every page the write changes to a journal first: a
    /// tenth of the writer's time when every write pays it.
    Savepoints,
}

/// Runs `jobs` in one transaction and commits it; the entries they
/// appended to the log. `None` (and nothing committed) if a write failed
/// after changing rows while `undo` had no savepoint to undo it with.
fn attempt(
    conn: &mut Connection,
    head: Head,
    jobs: &mut [Box<dyn Job>],
    undo: Undo,
) -> rusqlite::Result<Option<Appended>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let batch = Tx::new(&tx, head);
    let ran = run_all(&batch, jobs, undo);
    let appended = batch.into_appended();
    // Unless committed, the transaction is rolled back when dropped.
    match ran? {
        true => tx.commit().map(|()| Some(appended)),
        false => Ok(None),
    }
}

/// Runs each job, undoing those that fail as `undo` says; false if one
/// could not be undone alone. Fails (and the whole batch with it) only if
/// the transaction itself is broken.
fn run_all(tx: &Tx<'_>, jobs: &mut [Box<dyn Job>], undo: Undo) -> rusqlite::Result<bool> {
    for job in jobs {
        let mark = tx.mark();
        match undo {
            Undo::OnlyIfNeeded => {
                let changes = tx.total_changes();
                if !job.run(tx) {
                    if tx.total_changes() != changes {
                        return Ok(false);
                    }
                    tx.undo(mark);
                }
            }
            Undo::Savepoints => {
                tx.prepare_cached("SAVEPOINT write")?.execute([])?;
                if job.run(tx) {
                    tx.prepare_cached("RELEASE write")?.execute([])?;
                } else {
                    tx.undo(mark);
                    tx.prepare_cached("ROLLBACK TO write")?.execute([])?;
                    tx.prepare_cached("RELEASE write")?.execute([])?;
                }
            }
        }
        // Some errors (a full disk, I/O) make SQLite roll back the whole
        // transaction: the writes before this one are gone, so the batch
        // must fail.
        if tx.is_autocommit() {
            return Err(aborted("the write transaction was rolled back"));
        }
    }
    Ok(true)
}

/// The error of a batch that cannot commit, for `why`.
fn aborted(why: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some(why.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file with a table `t`, and a table whose foreign key is
    /// only checked at commit.
    fn database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("opens");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; \
             CREATE TABLE t (v INTEGER NOT NULL); \
             CREATE TABLE changes (seq INTEGER PRIMARY KEY, hash BLOB); \
             CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE child (parent INTEGER REFERENCES parent (id) \
                 DEFERRABLE INITIALLY DEFERRED);",
        )
        .expect("creates");
        (dir, path)
    }

    fn insert(v: i64) -> impl Fn(&Tx<'_>) -> Result<i64> + Send + 'static {
        move |tx| {
            tx.execute("INSERT INTO t (v) VALUES ($1)", [v])?;
            Ok(v)
        }
    }

    /// The values in `t`, read through a connection of its own: only what
    /// was committed.
    fn committed(path: &Path) -> Vec<i64> {
        let conn = Connection::open(path).expect("opens");
        let mut stmt = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .expect("prepares");
        stmt.query_map([], |r| r.get(0))
            .expect("reads")
            .collect::<rusqlite::Result<_>>()
            .expect("reads")
    }

    /// A write that says it started, then waits to be let go: holds the
    /// writer thread in the middle of a batch.
    fn gate(
        value: i64,
    ) -> (
        impl Fn(&Tx<'_>) -> Result<i64> + Send + 'static,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let job = move |tx: &Tx<'_>| {
            let _ = started_tx.send(());
            let _ = released.recv();
            insert(value)(tx)
        };
        (job, started, release)
    }

    #[tokio::test]
    async fn a_failing_write_undoes_only_itself_and_results_wait_for_the_commit() {
        let (_dir, path) = database();
        let writer = Writer::open(&path, crate::flush::wal_flush).expect("writer");

        // Hold the thread in a first batch while the next one queues up.
        let (first, first_started, release_first) = gate(1);
        let first = writer.submit(first).expect("queues");
        first_started.recv().expect("the first batch runs");
        let a = writer.submit(insert(2)).expect("queues");
        let b = writer
            .submit(|tx| {
                tx.execute("INSERT INTO t (v) VALUES (3)", [])?;
                Err::<i64, _>(StoreError::NotFound("no such thing".into()).into())
            })
            .expect("queues");
        let c = writer.submit(insert(4)).expect("queues");
        let (last, last_started, release_last) = gate(5);
        let mut last = writer.submit(last).expect("queues");
        release_first.send(()).expect("lets the first batch go");
        assert_eq!(first.await.expect("answered").expect("ok"), 1);

        // The second batch has run `a`, `b` and `c` and is held in `last`:
        // nothing of it is committed, so nothing of it is answered.
        last_started.recv().expect("the second batch runs");
        assert_eq!(committed(&path), vec![1]);
        let mut a = a;
        assert!(a.try_recv().is_err(), "answered before its commit");
        assert!(last.try_recv().is_err(), "answered before its commit");

        release_last.send(()).expect("lets the second batch go");
        assert_eq!(a.await.expect("answered").expect("ok"), 2);
        let b = b.await.expect("answered");
        assert!(matches!(b, Err(StoreError::NotFound(_))), "{b:?}");
        assert_eq!(c.await.expect("answered").expect("ok"), 4);
        assert_eq!(last.await.expect("answered").expect("ok"), 5);
        // Only the failing write was undone, and the rest is on disk.
        assert_eq!(committed(&path), vec![1, 2, 4, 5]);
    }

    /// A write that inserts `v` and counts how many times it ran.
    fn counted(
        v: i64,
    ) -> (
        impl Fn(&Tx<'_>) -> Result<i64> + Send + 'static,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = runs.clone();
        let job = move |tx: &Tx<'_>| {
            seen.fetch_add(1, Ordering::Relaxed);
            insert(v)(tx)
        };
        (job, runs)
    }

    #[tokio::test]
    async fn a_batch_starts_over_with_savepoints_only_when_a_failed_write_changed_rows() {
        let (_dir, path) = database();
        let writer = Writer::open(&path, crate::flush::wal_flush).expect("writer");
        for (changes_rows, runs_expected) in [(false, 1), (true, 2)] {
            let (hold, started, release) = gate(0);
            let held = writer.submit(hold).expect("queues");
            started.recv().expect("the first batch runs");
            let (job, runs) = counted(1);
            let kept = writer.submit(job).expect("queues");
            let failed = writer
                .submit(move |tx| {
                    if changes_rows {
                        tx.execute("INSERT INTO t (v) VALUES (2)", [])?;
                    }
                    Err::<i64, _>(StoreError::NotFound("no such thing".into()).into())
                })
                .expect("queues");
            release.send(()).expect("lets the first batch go");
            held.await.expect("answered").expect("ok");
            assert_eq!(kept.await.expect("answered").expect("ok"), 1);
            let failed = failed.await.expect("answered");
            assert!(matches!(failed, Err(StoreError::NotFound(_))), "{failed:?}");
            assert_eq!(
                runs.load(Ordering::Relaxed),
                runs_expected,
                "{changes_rows}"
            );
            assert_eq!(committed(&path), vec![0, 1], "only the failed write undone");
            writer
                .run(|tx| Ok(tx.execute("DELETE FROM t", [])?))
                .await
                .expect("empties t");
        }
        writer.close().await;
    }

    #[tokio::test]
    async fn a_write_is_answered_only_once_its_commit_is_flushed() {
        let (_dir, path) = database();
        let (flush, go) = crate::flush::gated();
        let writer = Writer::open(&path, flush).expect("writer");
        let mut first = writer.submit(insert(1)).expect("queues");
        // Committed (another connection reads it), not yet on disk: the
        // writer runs the next batch meanwhile, and nobody is answered.
        for _ in 0..200 {
            if committed(&path) == vec![1] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(committed(&path), vec![1]);
        let mut second = writer.submit(insert(2)).expect("queues");
        for _ in 0..200 {
            if committed(&path) == vec![1, 2] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(committed(&path), vec![1, 2], "the next batch waited");
        assert!(first.try_recv().is_err(), "answered before its flush");
        assert!(second.try_recv().is_err(), "answered before its flush");
        go.send(Ok(())).expect("flushes");
        assert_eq!(first.await.expect("answered").expect("ok"), 1);
        go.send(Ok(())).expect("flushes");
        assert_eq!(second.await.expect("answered").expect("ok"), 2);
        writer.close().await;
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_writes_and_stops_writing() {
        let (_dir, path) = database();
        let (flush, go) = crate::flush::gated();
        let writer = Writer::open(&path, flush).expect("writer");
        go.send(Ok(())).expect("flushes");
        assert_eq!(writer.run(insert(1)).await.expect("ok"), 1);
        go.send(Err(std::io::Error::other("the disk is gone")))
            .expect("flushes");
        // Committed by SQLite, but the disk may not hold it: not `ok`.
        let lost = writer.run(insert(2)).await;
        assert!(matches!(lost, Err(StoreError::Backend(_))), "{lost:?}");
        // Every later write is refused before it runs, whatever a later
        // flush would say.
        go.send(Ok(())).expect("flushes");
        let refused = writer.run(insert(3)).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable { .. })),
            "{refused:?}"
        );
        assert_eq!(committed(&path), vec![1, 2]);
        writer.close().await;
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_its_batch() {
        let (_dir, path) = database();
        let writer = Writer::open(&path, crate::flush::wal_flush).expect("writer");
        let (first, first_started, release_first) = gate(1);
        let first = writer.submit(first).expect("queues");
        first_started.recv().expect("the first batch runs");
        let a = writer.submit(insert(2)).expect("queues");
        // Succeeds on its own, but its foreign key fails the commit.
        let orphan = writer
            .submit(|tx| {
                tx.execute("INSERT INTO child (parent) VALUES (42)", [])?;
                Ok(())
            })
            .expect("queues");
        release_first.send(()).expect("lets the first batch go");
        assert_eq!(first.await.expect("answered").expect("ok"), 1);
        let a = a.await.expect("answered");
        assert!(matches!(a, Err(StoreError::NotCommitted { .. })), "{a:?}");
        let orphan = orphan.await.expect("answered");
        assert!(
            matches!(orphan, Err(StoreError::NotCommitted { .. })),
            "{orphan:?}"
        );
        assert_eq!(committed(&path), vec![1]);
        // The writer goes on with the next batch.
        assert_eq!(writer.run(insert(3)).await.expect("ok"), 3);
        assert_eq!(committed(&path), vec![1, 3]);
    }

    #[tokio::test]
    async fn close_commits_what_is_queued_then_refuses_writes() {
        let (_dir, path) = database();
        let writer = Writer::open(&path, crate::flush::wal_flush).expect("writer");
        let queued: Vec<_> = (0..100)
            .map(|v| writer.submit(insert(v)).expect("queues"))
            .collect();
        writer.close().await;
        for (v, r) in (0..).zip(queued) {
            assert_eq!(r.await.expect("answered").expect("ok"), v);
        }
        assert_eq!(committed(&path).len(), 100);
        let late = writer.run(insert(100)).await;
        assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
        // Closing again is harmless.
        writer.close().await;
    }

    /// The WAL's size on disk, in bytes.
    fn wal_bytes(path: &Path) -> u64 {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test]
    async fn the_wal_starts_over_under_a_writer_that_never_pauses() {
        let (_dir, path) = database();
        let writer = Writer::open(&path, crate::flush::wal_flush).expect("writer");
        // 32,000 pages written without a pause, eight times the length at
        // which the WAL starts over: a checkpointer that only copied would
        // let it grow past 128 MB.
        const ROUNDS: usize = 320;
        let page = vec![7u8; 4000];
        let mut largest = 0;
        for _ in 0..ROUNDS {
            let queued: Vec<_> = (0..100)
                .map(|_| {
                    let page = page.clone();
                    writer
                        .submit(move |tx| {
                            tx.execute("INSERT INTO changes (hash) VALUES ($1)", [&page])?;
                            Ok(())
                        })
                        .expect("queues")
                })
                .collect();
            for q in queued {
                q.await.expect("answered").expect("ok");
            }
            largest = largest.max(wal_bytes(&path));
        }
        // It starts over once the checkpointer has seen it past that
        // length, and the writer adds pages meanwhile: on a machine
        // loaded by other tests, 2.4 times that length was seen.
        let limit = 4 * WAL_RESTART_PAGES as u64 * 4120;
        assert!(
            largest < limit,
            "the WAL reached {largest} bytes (limit {limit})"
        );
        writer.close().await;
        // Closed: what the WAL held is in the database file.
        let conn = Connection::open(&path).expect("opens");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
            .expect("counts");
        assert_eq!(n, ROUNDS as i64 * 100);
    }
}
