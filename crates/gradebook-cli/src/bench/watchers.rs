//! `gradebook bench --watchers N`: N connections watching the data set's
//! first promotion while the load runs, each counting the events it gets;
//! then the latency of one event, from a write's acknowledgement to a
//! watcher's receipt, measured on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gradebook_client::{Client, ClientError, ConnectOptions};
use gradebook_proto::call;
use gradebook_proto::command::{GradeAddArgs, GradeInput, WatchArgs};
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

/// The watchers of a run.
pub struct Watchers {
    received: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens `n` connections as `username`, each watching `promotion`, each
/// counting the events it receives.
pub async fn start(
    options: &ConnectOptions,
    username: &str,
    password: &str,
    promotion: &str,
    n: usize,
) -> Result<Watchers, ClientError> {
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Client::connect(options).await?;
        c.login(username, password).await?;
        watch(&mut c, promotion).await?;
        let received = received.clone();
        // Frames are counted, not decoded: the load generator shares the
        // machine with the server it measures.
        tasks.push(tokio::spawn(async move {
            while let Ok(frame) = c.next_frame().await {
                if frame.windows(6).any(|w| w == b"lagged") {
                    break;
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    Ok(Watchers { received, tasks })
}

async fn watch(c: &mut Client, promotion: &str) -> Result<(), ClientError> {
    c.run(call::Watch(WatchArgs {
        promotion: Some(promotion.to_owned()),
        student: None,
        since: None,
    }))
    .await?;
    Ok(())
}

impl Watchers {
    /// Waits until `expected` events have arrived, or until none has for a
    /// second; how many arrived.
    pub async fn settle(&self, expected: u64) -> u64 {
        let mut last = self.received.load(Ordering::Relaxed);
        let mut quiet_since = Instant::now();
        loop {
            let now = self.received.load(Ordering::Relaxed);
            if now >= expected || quiet_since.elapsed() > Duration::from_secs(1) {
                return now;
            }
            if now != last {
                last = now;
                quiet_since = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes every watcher.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// `rounds` times: a grade added to `student` (of `promotion`) on one
/// connection, and the time until a watcher of the promotion receives its
/// event, from the write's acknowledgement.
pub async fn event_latency(
    options: &ConnectOptions,
    username: &str,
    password: &str,
    promotion: &str,
    student: i64,
    rounds: u32,
) -> Result<Histogram<u64>, ClientError> {
    let mut writer = Client::connect(options).await?;
    writer.login(username, password).await?;
    let mut watcher = Client::connect(options).await?;
    watcher.login(username, password).await?;
    watch(&mut watcher, promotion).await?;
    let mut h = super::histogram()?;
    for _ in 0..rounds {
        let added = writer
            .run(call::GradeAdd(GradeAddArgs {
                student,
                subject: "Watched".into(),
                value: GradeInput::Number(10.0),
                coefficient: None,
                label: None,
            }))
            .await?;
        let acknowledged = Instant::now();
        loop {
            let event = watcher.next_event().await?;
            if event
                .data
                .as_ref()
                .is_some_and(|d| d["id"].as_i64() == Some(added.id))
            {
                break;
            }
        }
        let micros = u64::try_from(acknowledged.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = h.record(micros.max(1));
    }
    Ok(h)
}
