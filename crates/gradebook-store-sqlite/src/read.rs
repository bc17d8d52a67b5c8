//! The readers: a few read-only connections to the database file, each
//! used by one read at a time on tokio's blocking threads.
//!
//! In WAL mode readers do not wait for the writer, nor it for them: each
//! read sees the last committed state. A read is a few statements, each
//! prepared once per connection (`prepare_cached`), run synchronously on
//! one blocking thread: one hand-off per read, not one per statement.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::Result;
use gradebook_store::StoreError;

/// The read-only connections, opened as needed, at most `max` at a time.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection that may be in use; closed by
    /// [`Readers::close`].
    permits: Semaphore,
}

impl Readers {
    /// Readers of the database file at `path`, at most `max` at a time.
    pub(crate) fn new(path: PathBuf, max: usize) -> Arc<Self> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Semaphore::new(max),
        })
    }

    /// Runs `read` on a connection of its own, on a blocking thread.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> gradebook_store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = match readers.take() {
                Some(conn) => conn,
                None => readers.open()?,
            };
            let result = read(&mut conn);
            // A read that failed midway may leave a transaction open:
            // such a connection is not given back.
            if conn.is_autocommit() {
                readers.give_back(conn);
            }
            result
        })
        .await;
        drop(permit);
        match result {
            Ok(result) => result.map_err(StoreError::from),
            Err(e) => Err(StoreError::Backend(format!("a read stopped: {e}"))),
        }
    }

    /// Refuses further reads and closes the idle connections.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A read that panicked leaves nothing half-done in the list.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Option<Connection> {
        self.lock().pop()
    }

    fn give_back(&self, conn: Connection) {
        if !self.permits.is_closed() {
            self.lock().push(conn);
        }
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(conn)
    }
}
