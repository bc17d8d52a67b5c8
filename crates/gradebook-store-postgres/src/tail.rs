//! Keeping a server's follower (its in-memory model) current with every
//! server's writes, not only its own.
//!
//! [`Delivery`] is the one door to the follower: the writer task hands it
//! each committed batch, the tail hands it what other servers wrote, and
//! [`Delivery::catch_up`] fills any gap from the change log. It gives each
//! entry once, in seq order, whoever brings it: entries already given are
//! skipped, and entries past a gap wait for the gap to be read first.
//!
//! The tail ([`spawn`]) listens on the `gradebook_changes` channel, whose
//! notifications carry only a seq, one per committed batch. A notification
//! is only a wake-up: what is applied is always read from the log, so a
//! notification lost (PostgreSQL drops them while the listener reconnects)
//! costs time, never a change. After each (re)connection, and every
//! [`POLL`] besides, the tail reads the highest seq and catches up.
//!
//! [`Barrier`] makes reads linearizable across servers: before a request
//! is served, one query reads the log past what the follower has applied,
//! and the follower applies what it finds. Requests that arrive while a
//! check runs share the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Hook, HookError, Pool};
use futures_util::StreamExt;
use gradebook_store::{ChangeRecord, Follower, Snapshot, StoreError};
use tokio::sync::Mutex;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::{self, Result};
use crate::log;
use crate::writer::CHANNEL;

/// How often the tail checks the log even without a notification.
const POLL: Duration = Duration::from_secs(1);

/// How long the tail waits before reconnecting after its connection broke.
const RECONNECT: Duration = Duration::from_millis(500);

/// Entries read from the log per query while catching up.
const PAGE: i64 = 1000;

/// Connections reading the log: two, since a check (one at a time) may
/// hold one while it waits for the follower's lock, whose holder may then
/// need the other.
const LOG_READERS: usize = 2;

/// The pool that reads the log, each of its connections set to plan a
/// query once. PostgreSQL would otherwise plan `seq > $1 ORDER BY seq
/// LIMIT $2` anew at every run, since a plan made for the values at hand
/// always looks cheaper than one made for any: planning took 76 us where
/// the query ran in 9, and every read on a shared database waits for that
/// query. The plan made once walks the primary key from `$1`, which is
/// the right plan for any value. A `SET` once connected rather than a
/// startup option, which connection poolers and proxies may refuse.
fn log_readers(config: &tokio_postgres::Config) -> gradebook_store::Result<Pool> {
    let plan_once = Hook::async_fn(|client: &mut ClientWrapper, _| {
        Box::pin(async move {
            client
                .batch_execute("SET plan_cache_mode = force_generic_plan")
                .await
                .map_err(HookError::Backend)
        })
    });
    crate::build_pool(crate::pool_builder(config, LOG_READERS).post_create(plan_once))
}

/// The follower, and the last seq it was given.
pub(crate) struct Delivery {
    given: Mutex<Given>,
    /// The last seq given, readable without the lock.
    seq: AtomicI64,
    /// Connections to read the log with ([`log_readers`]).
    readers: Pool,
}

struct Given {
    seq: i64,
    follower: Option<Arc<dyn Follower>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("seq", &self.seq.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// A delivery reading the log on connections of its own (see
    /// [`log_readers`]).
    pub(crate) fn new(config: &tokio_postgres::Config) -> gradebook_store::Result<Self> {
        Ok(Delivery {
            given: Mutex::new(Given {
                seq: 0,
                follower: None,
            }),
            seq: AtomicI64::new(0),
            readers: log_readers(config)?,
        })
    }

    /// The last seq the follower was given.
    pub(crate) fn seq(&self) -> i64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Gives `follower` the data as of `snapshot` (read while the lock is
    /// held, so nothing is delivered between the read and the load), and
    /// from then on every entry after it.
    pub(crate) async fn follow<F>(&self, follower: Arc<dyn Follower>, read: F) -> Result<()>
    where
        F: std::future::Future<Output = Result<Snapshot>>,
    {
        let mut given = self.given.lock().await;
        let snapshot = read.await?;
        let seq = snapshot.seq;
        follower.load(snapshot);
        given.follower = Some(follower);
        given.seq = seq;
        self.seq.store(seq, Ordering::Release);
        Ok(())
    }

    /// Gives the follower the committed `entries` (in seq order) it has
    /// not had, reading first any entries between what it had and them.
    pub(crate) async fn deliver(&self, entries: Vec<ChangeRecord>) -> Result<()> {
        let Some(first) = entries.first().map(|e| e.seq) else {
            return Ok(());
        };
        let mut given = self.given.lock().await;
        if given.follower.is_none() {
            return Ok(());
        }
        if first > given.seq + 1 {
            self.read_up_to(&mut given, first - 1).await?;
        }
        let fresh: Vec<ChangeRecord> = entries.into_iter().filter(|e| e.seq > given.seq).collect();
        self.give(&mut given, &fresh);
        Ok(())
    }

    /// Brings the follower up to at least `target`, reading the log.
    pub(crate) async fn catch_up(&self, target: i64) -> Result<()> {
        if self.seq() >= target {
            return Ok(());
        }
        let mut given = self.given.lock().await;
        if given.follower.is_none() {
            return Ok(());
        }
        self.read_up_to(&mut given, target).await
    }

    /// Brings the follower up to the end of the log as one statement sees
    /// it. The query reads the entries themselves: one round trip whether
    /// or not another server wrote, where asking for the highest seq first
    /// took two when it had. The follower's lock is not held meanwhile, so
    /// this server's own writes are not held up by it.
    pub(crate) async fn catch_up_all(&self) -> Result<()> {
        let client = self.readers.get().await.map_err(error::from_pool)?;
        loop {
            let from = self.seq();
            let page = log::after(&client, from, PAGE).await?;
            let full = page.len() >= PAGE as usize;
            match page.first() {
                None => return Ok(()),
                Some(e) => follows(from, e)?,
            }
            let mut given = self.given.lock().await;
            if given.follower.is_none() {
                return Ok(());
            }
            // What was given meanwhile (by this server's writer, say) is
            // not given twice; the rest follows it without a gap, since
            // the page starts where `from` ended and the seq only grows.
            let fresh: Vec<ChangeRecord> = page.into_iter().filter(|e| e.seq > given.seq).collect();
            self.give(&mut given, &fresh);
            drop(given);
            if !full {
                return Ok(());
            }
        }
    }

    async fn read_up_to(&self, given: &mut Given, target: i64) -> Result<()> {
        let client = self.readers.get().await.map_err(error::from_pool)?;
        while given.seq < target {
            let page = log::after(&client, given.seq, PAGE.min(target - given.seq)).await?;
            match page.first() {
                Some(e) => {
                    follows(given.seq, e)?;
                    self.give(given, &page);
                }
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "the change log ends at {} but its highest seq is {target}",
                        given.seq
                    ))
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Closes the connections that read the log.
    pub(crate) fn close(&self) {
        self.readers.close();
    }

    /// The highest seq committed, as a new statement sees it.
    async fn highest(&self) -> Result<i64> {
        let client = self.readers.get().await.map_err(error::from_pool)?;
        let stmt = client
            .prepare_cached("SELECT seq FROM changes_highest")
            .await?;
        Ok(client.query_one(&stmt, &[]).await?.try_get(0)?)
    }

    fn give(&self, given: &mut Given, entries: &[ChangeRecord]) {
        let (Some(follower), Some(last)) = (&given.follower, entries.last()) else {
            return;
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| follower.apply(entries)))
            .is_err()
        {
            tracing::error!("applying committed changes panicked");
        }
        given.seq = last.seq;
        self.seq.store(last.seq, Ordering::Release);
    }
}

/// Starts the tail: until aborted, it keeps `delivery` current with the
/// entries other servers commit.
pub(crate) fn spawn(
    config: tokio_postgres::Config,
    delivery: Arc<Delivery>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&config, &delivery).await {
                tracing::warn!(error = %StoreError::from(e), "the change-log listener stopped; reconnecting");
            }
            tokio::time::sleep(RECONNECT).await;
        }
    })
}

/// One connection's worth of listening: returns when it breaks.
async fn listen(config: &tokio_postgres::Config, delivery: &Delivery) -> Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let messages = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // The payload is a seq; anything else still wakes.
                    let _ = wake.send(n.payload().parse().unwrap_or(i64::MAX));
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Whatever was committed before LISTEN took effect.
    delivery.catch_up(delivery.highest().await?).await?;
    loop {
        tokio::select! {
            seq = woken.recv() => match seq {
                Some(seq) if seq <= delivery.seq() => {}
                Some(_) => delivery.catch_up(delivery.highest().await?).await?,
                None => break,
            },
            () = tokio::time::sleep(POLL) => {
                delivery.catch_up(delivery.highest().await?).await?;
            }
        }
    }
    drop(client);
    match messages.await {
        Ok(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Checks that `first`, the first entry read after `seq`, comes right
/// after it. Entries are committed in seq order under the write lock: a
/// hole means an entry was deleted behind the servers' backs. Never skip
/// it silently.
fn follows(seq: i64, first: &ChangeRecord) -> Result<()> {
    if first.seq == seq + 1 {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "the change log jumps from {seq} to {}: an entry is missing",
        first.seq
    ))
    .into())
}

/// Makes a request wait until this server has applied every change
/// committed before it arrived (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Barrier {
    /// One check at a time.
    lock: Mutex<()>,
    /// The number of checks started.
    started: AtomicU64,
    /// The number of the last check completed.
    completed: AtomicU64,
}

impl Barrier {
    pub(crate) fn new() -> Self {
        Barrier {
            lock: Mutex::new(()),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }
    }

    /// Returns once `delivery` has applied everything committed before
    /// this call.
    pub(crate) async fn wait(&self, delivery: &Delivery) -> Result<()> {
        // Checks numbered above this one read the log after this call.
        let arrived = self.started.load(Ordering::Acquire);
        let _one_at_a_time = self.lock.lock().await;
        if self.completed.load(Ordering::Acquire) > arrived {
            return Ok(());
        }
        let number = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        delivery.catch_up_all().await?;
        self.completed.store(number, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn setting(pool: &Pool, name: &str) -> String {
        let client = pool.get().await.expect("a connection");
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("SHOW");
        row.get(0)
    }

    #[tokio::test]
    async fn the_log_is_read_with_plans_made_once_and_the_urls_own_options_kept() {
        let url = crate::testing::admin_url();
        let plain = log_readers(&crate::parse_url(&url).expect("a URL")).expect("a pool");
        assert_eq!(
            setting(&plain, "plan_cache_mode").await,
            "force_generic_plan"
        );

        let mut theirs = crate::parse_url(&url).expect("a URL");
        theirs.options("-c statement_timeout=4321");
        let theirs = log_readers(&theirs).expect("a pool");
        assert_eq!(
            setting(&theirs, "plan_cache_mode").await,
            "force_generic_plan"
        );
        assert_eq!(setting(&theirs, "statement_timeout").await, "4321ms");
    }
}
