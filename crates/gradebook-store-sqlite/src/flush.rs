//! Making commits durable off the writer's thread.
//!
//! The writer commits with `synchronous=NORMAL`: SQLite writes the commit's
//! frames to the WAL and returns without waiting for the disk. Each
//! committed batch then comes here, in order, and this thread flushes the
//! WAL (one `fdatasync` for every batch committed meanwhile), and only
//! then hands the batches' changes to the follower (the in-memory model)
//! and answers their writes. So an `ok` means "on disk", as with
//! `synchronous=FULL`, and the model never shows a write the disk could
//! still lose; but the writer runs the next batch while the disk flushes
//! the last one, as PostgreSQL's backends go on while its WAL is flushed.
//!
//! The rest of SQLite's durability is unchanged by `NORMAL` in WAL mode:
//! a checkpoint flushes the WAL before it copies pages into the database
//! file, and flushes the file before the WAL starts over.
//!
//! Batches that failed to commit come here too, so that every write is
//! answered in the order the batches ran: none is answered before the
//! batches ahead of it are on disk (a UDP retry that finds its first copy's
//! reply in the store reads a durable one).
//!
//! A flush that fails leaves the batches' fate unknown (Linux may have
//! dropped the pages it could not write): their writes are told so, and
//! the writer refuses every later write, as PostgreSQL stops on a failed
//! `fsync`. Reads go on; a restart recovers from what the disk holds.

use std::fs::File;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use gradebook_store::change::ChangeRecord;
use gradebook_store::{Follower, StoreError, Unavailable};

use crate::writer::Job;

/// A batch the writer ran, waiting for the disk.
pub(crate) struct Ran {
    /// Its writes, to answer once flushed.
    pub jobs: Vec<Box<dyn Job>>,
    /// The change-log entries it appended, once committed; why it did not
    /// commit otherwise.
    pub committed: std::result::Result<Vec<ChangeRecord>, StoreError>,
    /// Who learns of its entries, once flushed.
    pub follower: Option<Arc<dyn Follower>>,
}

enum Message {
    Batch(Ran),
    /// Answered once every batch sent before it is flushed and answered.
    Drained(mpsc::Sender<()>),
}

/// How the flusher makes the WAL durable: `fdatasync` on the file in
/// production, something that can fail in tests.
pub(crate) type Flush = Box<dyn FnMut() -> io::Result<()> + Send>;

/// The queue to the flushing thread.
pub(crate) struct Flusher {
    queue: Option<mpsc::Sender<Message>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set when a flush failed: why, for every later write.
    failed: Arc<Mutex<Option<String>>>,
    /// The last change-log entry on disk.
    durable: Arc<AtomicI64>,
}

/// A flush of the WAL file beside the database at `database` (which the
/// writer's connection has open, so it is never removed while it runs).
/// Also flushes the directory once, so that the WAL's own entry is on disk.
pub(crate) fn wal_flush(database: &Path) -> io::Result<Flush> {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    let wal = File::open(&name)?;
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(Box::new(move || wal.sync_data()))
}

impl Flusher {
    /// Starts the thread, which makes batches durable with `flush`; the
    /// change log is on disk up to `seq`.
    pub(crate) fn start(mut flush: Flush, seq: i64) -> io::Result<Self> {
        let (queue, batches) = mpsc::channel::<Message>();
        let failed = Arc::new(Mutex::new(None));
        let failure = failed.clone();
        let durable = Arc::new(AtomicI64::new(seq));
        let on_disk = durable.clone();
        let thread = std::thread::Builder::new()
            .name("gradebook-flush".into())
            .spawn(move || {
                let mut pending = Vec::new();
                let mut drained = Vec::new();
                while let Ok(first) = batches.recv() {
                    // Everything committed meanwhile shares this flush.
                    let mut next = Some(first);
                    while let Some(message) = next.take().or_else(|| batches.try_recv().ok()) {
                        match message {
                            Message::Batch(batch) => pending.push(batch),
                            Message::Drained(done) => drained.push(done),
                        }
                    }
                    // After a failed flush, a later one may succeed with
                    // the earlier pages lost: no batch after a failure is
                    // trusted. Batches that all failed to commit need none.
                    let earlier = failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    let flushed = match earlier {
                        Some(message) => Err(io::Error::other(message)),
                        None if pending.iter().any(|batch| batch.committed.is_ok()) => flush(),
                        None => Ok(()),
                    };
                    finish(&mut pending, flushed, &failure, &on_disk);
                    for done in drained.drain(..) {
                        let _ = done.send(());
                    }
                }
            })?;
        Ok(Flusher {
            queue: Some(queue),
            thread: Some(thread),
            failed,
            durable,
        })
    }

    /// The seq of the last change-log entry on disk: readers of the log
    /// show no entry past it.
    pub(crate) fn durable(&self) -> Arc<AtomicI64> {
        self.durable.clone()
    }

    /// Why writes are refused, after a flush failed.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        let failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        failed.as_ref().map(|message| StoreError::Unavailable {
            why: Unavailable::Unreachable,
            message: format!(
                "writes stopped after a failed flush to disk ({message}); restart the server"
            ),
        })
    }

    /// Queues a batch; its writes are answered once it is on disk (or, if
    /// it did not commit, once the batches before it are).
    pub(crate) fn send(&self, batch: Ran) {
        let Some(queue) = &self.queue else {
            return refuse(batch, "the flushing thread has stopped");
        };
        if let Err(mpsc::SendError(Message::Batch(batch))) = queue.send(Message::Batch(batch)) {
            refuse(batch, "the flushing thread has stopped");
        }
    }

    /// Waits until every batch sent so far is flushed and answered.
    pub(crate) fn drain(&self) {
        let (done, drained) = mpsc::channel();
        if let Some(queue) = &self.queue
            && queue.send(Message::Drained(done)).is_ok()
        {
            let _ = drained.recv();
        }
    }

    /// Flushes and answers what is queued, then stops the thread.
    pub(crate) fn stop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the flushing thread panicked");
        }
    }
}

/// Answers the batches of one flush, in order: on success, their follower
/// learns of their changes first (a client that reads after its `ok` sees
/// its write), then each write gets its result.
fn finish(
    pending: &mut Vec<Ran>,
    flushed: io::Result<()>,
    failure: &Mutex<Option<String>>,
    durable: &AtomicI64,
) {
    let outcome = flushed.map_err(|e| {
        tracing::error!(
            error = %e,
            "flushing the WAL to disk failed: the last writes may be lost; \
             writes are refused until the server restarts"
        );
        let mut failed = failure.lock().unwrap_or_else(PoisonError::into_inner);
        failed.get_or_insert_with(|| e.to_string());
        StoreError::Backend(format!(
            "flushing the write to disk failed ({e}): it may or may not be stored"
        ))
    });
    for batch in pending.drain(..) {
        let result = match (&batch.committed, &outcome) {
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(entries), Ok(())) => {
                if let Some(last) = entries.last() {
                    durable.store(last.seq, Ordering::Release);
                }
                if let Some(follower) = &batch.follower
                    && !entries.is_empty()
                    && catch_unwind(AssertUnwindSafe(|| follower.apply(entries))).is_err()
                {
                    tracing::error!("applying committed changes panicked");
                }
                Ok(())
            }
        };
        for job in batch.jobs {
            job.report(result);
        }
    }
}

/// Answers a batch that can no longer be flushed.
fn refuse(batch: Ran, why: &str) {
    tracing::error!("{why}: a committed batch's writes are answered with an error");
    let e = StoreError::Backend(format!("{why}: the write may or may not be stored"));
    for job in batch.jobs {
        job.report(Err(&e));
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A flush that waits for a go from the test each time, and reports the
/// outcome the test gives (`Ok` once the test has dropped its sender).
#[cfg(test)]
pub(crate) fn gated() -> (
    impl FnOnce(&Path) -> io::Result<Flush> + Send + 'static,
    mpsc::Sender<io::Result<()>>,
) {
    let (go, flushes) = mpsc::channel::<io::Result<()>>();
    let flushes = Mutex::new(flushes);
    let open = move |_: &Path| -> io::Result<Flush> {
        Ok(Box::new(move || {
            let flushes = flushes.lock().unwrap_or_else(PoisonError::into_inner);
            flushes.recv().unwrap_or(Ok(()))
        }))
    };
    (open, go)
}
