//! Group commit on one writer task: the writes that arrive together share
//! one transaction and one commit, and each is acknowledged only once that
//! commit is done.
//!
//! Writes are closures (a `grade.add`, the grade itself: [`GradeJob`])
//! sent to a task that takes every write queued, opens
//! one transaction on its own connection, runs each write inside its own
//! savepoint (so a failing write undoes only itself), commits once, hands
//! the entries the writes appended to the change log to the follower, and
//! only then tells each caller its result. While it commits, the next
//! writes queue up, so batches grow exactly when the commit is the
//! bottleneck.
//!
//! Several servers may write to one database. Each batch therefore starts
//! by taking a transaction-level advisory lock ([`WRITE_LOCK`]) and reading
//! the chain's head (last seq and hash) again under it, so that entries
//! written by another server are continued, never forked or numbered
//! twice. The cost: two more statements per batch, sent with its `BEGIN`
//! in one round trip (both cheap: the head is the last row of the primary
//! key's index), and writers on different servers never overlap, which
//! the change log's single chain needs anyway. The batch's entries reach
//! the follower through [`Delivery`], which reads first any entries other
//! servers committed before them, so that it sees every entry, in order,
//! once.
//!
//! Round trips, not commits, bound a batch on PostgreSQL (a commit is one
//! fsync for the whole batch; every statement awaited is a round trip
//! through the kernel and PostgreSQL's process). So what needs no answer
//! before the next statement is sent with it: the change-log entries the
//! writes append are chained as they are made but inserted all at once
//! when the batch ends, in one statement sent with the head's update, the
//! notification and the `COMMIT`; a write's savepoint is released with the
//! next one's opening. And a run of consecutive `grade.add`s, the writes
//! that come in streams, goes as one statement for all of its grades
//! ([`write::add_grades`]) rather than one each; should that statement
//! fail, the run's writes go again one at a time, each in its savepoint,
//! so that the one the database refuses fails alone. A batch of grades
//! thus costs two round trips and one fsync, whatever its size: its
//! opening with its grades, then its entries with the commit.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use gradebook_store::{Follower, Queued, StoreError};

use gradebook_core::{Grade, NewGrade};
use gradebook_store::change::Head;

use crate::error::{self, Error, Result};
use crate::log::{self, Batch};
use crate::tail::Delivery;
use crate::write::{self, Context};

/// A boxed future that a write returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a caller is told.
type Outcome<T> = gradebook_store::Result<T>;

/// The most writes one transaction takes: bounds how long the first of
/// them waits for its acknowledgement.
const MAX_BATCH: usize = 1024;

/// The advisory lock every write transaction takes first (a constant of
/// this application's own, distinct from the migrations').
pub(crate) const WRITE_LOCK: i64 = 0x6772_6164_6562_0001;

/// The channel whose listeners are told, with the last seq as payload,
/// of each committed batch that appended to the change log.
pub(crate) const CHANNEL: &str = "gradebook_changes";

/// The writer: a queue to the task that owns the writing connection.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Message>,
}

enum Message {
    /// A write to run in the next batch.
    Job(Box<dyn Job>),
    /// Take a snapshot for a new follower between two batches, and follow.
    Follow(Arc<dyn Follower>, oneshot::Sender<Outcome<()>>),
    /// Commit what is queued before this, stop, and say so.
    Close(oneshot::Sender<()>),
}

/// What the writer task keeps between batches.
struct State {
    /// Where the change log ended after this writer's last batch. Each
    /// batch reads the head again under the write lock.
    head: Head,
    /// The one door to the follower, shared with the tail.
    delivery: Arc<Delivery>,
}

/// One write, as the task sees it: run now, report after the commit.
trait Job: Send {
    /// Runs the write inside its savepoint; whether it succeeded (and so
    /// is kept).
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, bool>;
    /// Tells the caller the outcome, now that the batch has committed
    /// (`Ok`) or failed to.
    fn report(self: Box<Self>, batch: std::result::Result<(), &StoreError>);
    /// The grade this job adds, if it is a plain `grade.add`: one that
    /// may go in one statement with the others of its run
    /// ([`write::add_grades`]).
    fn grade(&mut self) -> Option<&mut GradeJob> {
        None
    }
}

/// What a caller is told of its write, whose own result was `result`,
/// once its batch has committed (`Ok`) or failed to.
fn outcome<T>(
    result: Option<Outcome<T>>,
    batch: std::result::Result<(), &StoreError>,
) -> Outcome<T> {
    match (result, batch) {
        // A duplicate means "the first copy is durable": not so if its
        // batch (possibly this one) failed.
        (Some(Err(StoreError::Duplicate)), Err(e)) => Err(error::not_committed(e)),
        // A write that failed changed nothing, whatever became of the
        // batch.
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (_, Err(e)) => Err(error::not_committed(e)),
        (None, Ok(())) => Err(StoreError::Corrupt("a write was never run".into())),
    }
}

/// Runs `work`; a panicking write is undone like a failing one, and the
/// task goes on with the others.
async fn catching<T>(work: impl Future<Output = Result<T>>) -> Outcome<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result.map_err(StoreError::from),
        Err(_) => Err(StoreError::Corrupt(
            "a write panicked; it was undone".into(),
        )),
    }
}

/// A write and the caller waiting for its result.
struct Pending<T, F> {
    work: Option<F>,
    result: Option<Outcome<T>>,
    reply: oneshot::Sender<Outcome<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: for<'a> FnOnce(&'a mut Batch) -> BoxFuture<'a, Result<T>> + Send,
{
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let result = match self.work.take() {
                Some(work) => catching(work(batch)).await,
                None => Err(StoreError::Corrupt("a write was run twice".into())),
            };
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn report(self: Box<Self>, batch: std::result::Result<(), &StoreError>) {
        // The caller may have gone away; the write stands all the same.
        let _ = self.reply.send(outcome(self.result, batch));
    }
}

/// A `grade.add` and the caller waiting for its result. Unlike a
/// [`Pending`] write, the writer can see what it adds, and adds the grades
/// of consecutive such jobs with one statement.
pub(crate) struct GradeJob {
    pub(crate) new: NewGrade,
    pub(crate) ctx: Context,
    /// The job's result, once run (alone or with its run).
    pub(crate) result: Option<Outcome<Grade>>,
    reply: oneshot::Sender<Outcome<Grade>>,
}

impl Job for GradeJob {
    fn run<'a>(&'a mut self, batch: &'a mut Batch) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let result = catching(write::grade_add(batch, &self.new, &self.ctx)).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn report(self: Box<Self>, batch: std::result::Result<(), &StoreError>) {
        let _ = self.reply.send(outcome(self.result, batch));
    }

    fn grade(&mut self) -> Option<&mut GradeJob> {
        // A UDP request's row is recorded by the write itself, once it
        // knows its result: such a grade goes alone.
        (!self.ctx.has_request()).then_some(self)
    }
}

impl Writer {
    /// Starts the writer task on `pool` (its own connections), with the
    /// chain ending at `head`.
    pub(crate) fn start(pool: Pool, head: Head, delivery: Arc<Delivery>) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let state = State { head, delivery };
        tokio::spawn(serve(pool, state, jobs));
        Writer { queue }
    }

    /// Runs `write` in the next batch, in its own savepoint, and returns
    /// its result once the batch has committed. An error from `write`
    /// undoes its changes only; if the commit fails, the write fails too.
    /// The write runs even if this future is dropped.
    pub(crate) async fn run<T, F>(&self, write: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Batch) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        self.submit(write)?.await.map_err(|_| StoreError::Closed)?
    }

    /// As [`Writer::run`], and tells `queued` once the write is in the
    /// queue: a connection pipelining writes sends the next one only then,
    /// so its writes run in the order it sent them.
    pub(crate) async fn run_queued<T, F>(&self, queued: Option<Arc<Queued>>, write: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Batch) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        let result = self.submit(write);
        if let Some(q) = queued {
            q.tell();
        }
        result?.await.map_err(|_| StoreError::Closed)?
    }

    /// Adds the grade `new` in the next batch (see [`GradeJob`]), and
    /// tells `ctx`'s `queued` once it is queued, as [`Writer::run_queued`].
    pub(crate) async fn add_grade(&self, new: NewGrade, ctx: Context) -> Outcome<Grade> {
        let queued = ctx.queued();
        let (reply, result) = oneshot::channel();
        let job = GradeJob {
            new,
            ctx,
            result: None,
            reply,
        };
        let sent = self.send(Box::new(job));
        if let Some(q) = queued {
            q.tell();
        }
        sent?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `write`; the receiver gets its result after the commit.
    fn submit<T, F>(&self, write: F) -> Outcome<oneshot::Receiver<Outcome<T>>>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Batch) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Pending {
            work: Some(write),
            result: None,
            reply,
        };
        self.send(Box::new(job))?;
        Ok(result)
    }

    /// Queues `job` for the next batch.
    fn send(&self, job: Box<dyn Job>) -> Outcome<()> {
        self.queue
            .send(Message::Job(job))
            .map_err(|_| StoreError::Closed)
    }

    /// Gives `follower` a snapshot, taken between two batches, and every
    /// batch committed after it.
    pub(crate) async fn follow(&self, follower: Arc<dyn Follower>) -> Outcome<()> {
        let (reply, result) = oneshot::channel();
        self.queue
            .send(Message::Follow(follower, reply))
            .map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits the writes queued so far and stops the task. Writes sent
    /// afterwards fail with [`StoreError::Closed`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer task: one batch after another until closed, or until the
/// [`Writer`] is gone.
async fn serve(pool: Pool, mut state: State, mut jobs: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        let mut follow = None;
        match jobs.recv().await {
            Some(Message::Job(job)) => batch.push(job),
            Some(Message::Follow(f, reply)) => follow = Some((f, reply)),
            Some(Message::Close(done)) => closing = Some(done),
            None => break,
        }
        while closing.is_none() && follow.is_none() && batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Follow(f, reply)) => follow = Some((f, reply)),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&pool, &mut state, &mut batch).await;
        }
        // After the writes queued before it.
        if let Some((follower, reply)) = follow {
            let _ = reply.send(start_following(&pool, &mut state, follower).await);
        }
    }
    jobs.close();
    pool.close();
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Loads `follower` with a snapshot and makes it the one told of batches.
async fn start_following(
    pool: &Pool,
    state: &mut State,
    follower: Arc<dyn Follower>,
) -> Outcome<()> {
    let read = async {
        let mut client = pool.get().await.map_err(error::from_pool)?;
        log::snapshot(&mut client).await
    };
    Ok(state.delivery.follow(follower, read).await?)
}

/// Runs `jobs` in one transaction, each in its own savepoint, commits,
/// hands the changes they logged to the follower, and then reports to each.
async fn run_batch(pool: &Pool, state: &mut State, jobs: &mut Vec<Box<dyn Job>>) {
    let outcome = match pool.get().await {
        Ok(client) => {
            let mut batch = Batch::new(client);
            match run_transaction(&mut batch, jobs).await {
                Ok(()) => {
                    let Batch { head, entries, .. } = batch;
                    state.head = head;
                    Ok(entries)
                }
                Err(e) => {
                    discard(batch.into_client()).await;
                    Err(StoreError::from(e))
                }
            }
        }
        Err(e) => Err(error::from_pool(e)),
    };
    // Before any write of the batch is acknowledged: a client that reads
    // after its `ok` sees its write. Entries other servers committed
    // before this batch are read from the log and given first.
    let outcome = match outcome {
        Ok(entries) => {
            // Committed whatever happens here: the writes are acknowledged.
            // Should the entries not reach the follower (a gap that could
            // not be read), the tail and the next request's sync read them
            // again from the log.
            if let Err(e) = state.delivery.deliver(entries).await {
                tracing::error!(error = %StoreError::from(e), "committed changes could not be applied yet");
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, writes = jobs.len(), "a write batch did not commit");
    }
    for job in jobs.drain(..) {
        job.report(outcome.as_ref().map(|_| ()));
    }
}

/// The batch's transaction: the lock, the head, every write in its
/// savepoint, the change log's entries, the notification, the commit.
///
/// Statements that need no answer before the next is sent go together
/// (tokio-postgres pipelines the requests of futures polled at once on one
/// connection): the opening three, and the closing ones. A batch then costs
/// a handful of round trips whatever its size, beside those of its writes.
async fn run_transaction(batch: &mut Batch, jobs: &mut [Box<dyn Job>]) -> Result<()> {
    let client = batch.client();
    // Prepared (once per connection) before anything is pipelined: a
    // statement still to prepare would be sent after those behind it.
    let (lock, head, insert, highest, notify) = tokio::try_join!(
        client.prepare_cached("SELECT pg_advisory_xact_lock($1)"),
        client.prepare_cached(log::HEAD),
        client.prepare_cached(log::INSERT_ENTRIES),
        client.prepare_cached("UPDATE changes_highest SET seq = GREATEST(seq, $1)"),
        client.prepare_cached("SELECT pg_notify($1, $2)"),
    )?;
    // A batch that starts with a run of grades (a stream of grades, the
    // usual case) sends its statement with the opening ones: `biased`,
    // the futures are first polled, so their statements sent, in this
    // order, and each is answered in turn.
    let lead = jobs
        .iter_mut()
        .position(|j| j.grade().is_none())
        .unwrap_or(jobs.len());
    let (row, mut first) = {
        let grades: Vec<&GradeJob> = jobs[..lead]
            .iter_mut()
            .filter_map(|j| j.grade().map(|g| &*g))
            .collect();
        let (opened, first) = tokio::join!(
            biased;
            async {
                tokio::try_join!(
                    biased;
                    client.batch_execute("BEGIN"),
                    client.execute(&lock, &[&WRITE_LOCK]),
                    client.query_opt(&head, &[]),
                )
            },
            async {
                if grades.is_empty() {
                    None
                } else {
                    Some(write::insert_grades(client, &open(None, GRADES), &grades).await)
                }
            },
        );
        (opened?.2, first)
    };
    batch.head = log::head_of(row)?;
    // The savepoint still to release (of the last write, or run of
    // grades), released with the next statement sent rather than in a
    // round trip of its own.
    let mut release = None;
    let mut start = 0;
    while start < jobs.len() {
        let end = jobs[start..]
            .iter_mut()
            .position(|j| j.grade().is_none())
            .map_or(jobs.len(), |n| start + n);
        if end == start {
            run_alone(batch, &mut release, jobs[start].as_mut()).await?;
            start += 1;
            continue;
        }
        let run = &mut jobs[start..end];
        start = end;
        if !add_grades(batch, &mut release, run, first.take()).await? {
            // The run's statement failed: its writes go one at a time, so
            // that the one that fails undoes only itself.
            for job in run {
                run_alone(batch, &mut release, job.as_mut()).await?;
            }
        }
    }
    let client = batch.client();
    let release = async {
        if let Some(savepoint) = release {
            client
                .batch_execute(&format!("RELEASE {savepoint}"))
                .await?;
        }
        Ok::<_, Error>(())
    };
    let commit = async { Ok::<_, Error>(client.batch_execute("COMMIT").await?) };
    if batch.entries.is_empty() {
        tokio::try_join!(biased; release, commit)?;
        return Ok(());
    }
    let last = batch.head.seq;
    let payload = last.to_string();
    // Should one of these fail, the COMMIT sent behind it ends the
    // transaction with a rollback, and the failure is what is reported.
    tokio::try_join!(
        biased;
        release,
        batch.store_entries(&insert),
        async { Ok(client.execute(&highest, &[&last]).await?) },
        async { Ok(client.execute(&notify, &[&CHANNEL, &payload]).await?) },
        commit,
    )?;
    Ok(())
}

/// The savepoint of a write run alone.
const WRITE: &str = "write";
/// The savepoint of a run of grades.
const GRADES: &str = "grades";

/// The statements that open savepoint `name`, after releasing `release`
/// (the savepoint still to release, if any).
fn open(release: Option<&str>, name: &str) -> String {
    match release {
        Some(previous) => format!("RELEASE {previous}; SAVEPOINT {name}"),
        None => format!("SAVEPOINT {name}"),
    }
}

/// Runs `job` in its own savepoint: kept if it succeeds, rolled back (with
/// its entries) if it fails. `release` is the savepoint still to be
/// released before, if any; on return, the one still to be released after.
async fn run_alone(
    batch: &mut Batch,
    release: &mut Option<&'static str>,
    job: &mut dyn Job,
) -> Result<()> {
    batch
        .client()
        .batch_execute(&open(release.take(), WRITE))
        .await?;
    batch.next_write();
    let mark = batch.mark();
    if job.run(batch).await {
        *release = Some(WRITE);
    } else {
        batch.undo(mark);
        batch
            .client()
            .batch_execute("ROLLBACK TO write; RELEASE write")
            .await?;
    }
    Ok(())
}

/// Runs a run of plain `grade.add`s ([`Job::grade`]) as one statement
/// ([`write::insert_grades`]) in one savepoint, opened in the same round
/// trip (releasing `release` before, as [`run_alone`]), unless `sent`
/// already holds the statement's answer (sent with the batch's opening).
/// Whether it did: if the statement failed (a grade the database
/// refuses), nothing of the run was kept and the caller runs its writes
/// one at a time.
async fn add_grades(
    batch: &mut Batch,
    release: &mut Option<&'static str>,
    run: &mut [Box<dyn Job>],
    sent: Option<std::result::Result<Vec<tokio_postgres::Row>, write::RunFailed>>,
) -> Result<bool> {
    let grades: Vec<&GradeJob> = run
        .iter_mut()
        .filter_map(|j| j.grade().map(|g| &*g))
        .collect();
    let rows = match sent {
        Some(rows) => rows,
        None => write::insert_grades(batch.client(), &open(release.take(), GRADES), &grades).await,
    };
    let mark = batch.mark();
    let results = match rows {
        Ok(rows) => write::log_grades(batch, &rows, &grades).await,
        Err(e) => Err(e),
    };
    match results {
        Ok(results) => {
            let jobs = run.iter_mut().filter_map(|j| j.grade());
            for (job, result) in jobs.zip(results) {
                job.result = Some(result.map_err(StoreError::from));
            }
            *release = Some(GRADES);
            Ok(true)
        }
        Err(write::RunFailed::Statement(e)) => {
            tracing::debug!(error = %StoreError::from(e), grades = grades.len(), "grades added one at a time");
            batch.undo(mark);
            batch
                .client()
                .batch_execute("ROLLBACK TO grades; RELEASE grades")
                .await?;
            Ok(false)
        }
        Err(write::RunFailed::Batch(e)) => Err(e),
    }
}

/// After a failed batch: rolls its transaction back, or, if even that
/// fails, takes the connection out of the pool so it is never reused.
async fn discard(client: Object) {
    if client.is_closed() || client.batch_execute("ROLLBACK").await.is_err() {
        drop(Object::take(client));
    }
}
