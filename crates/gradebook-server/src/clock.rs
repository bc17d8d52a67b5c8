//! The server's clock: monotonic time for deadlines and windows, Unix
//! seconds for what is stored (session expiry, the change log).
//!
//! [`Clock::system`] reads the real clocks. [`Clock::manual`] is for tests:
//! it stands still until [`Clock::advance`] moves it, so a test of an
//! expiry, a timeout or a rate window checks both sides of the boundary
//! without sleeping, and a task waiting in [`Clock::sleep_until`] wakes
//! when the clock passes its deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Where the server reads the time; cheap to clone (clones share the time).
#[derive(Debug, Clone, Default)]
pub struct Clock(Source);

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<Manual>),
}

/// A clock that moves only when told: a fixed start plus the total
/// advanced, watched by the tasks that wait on it.
#[derive(Debug)]
struct Manual {
    start: Instant,
    start_unix: i64,
    advanced: watch::Sender<Duration>,
}

impl Clock {
    /// The real time.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A clock for tests: it starts at the real time and stands still until
    /// [`advance`](Clock::advance)d.
    pub fn manual() -> Clock {
        let (advanced, _) = watch::channel(Duration::ZERO);
        Clock(Source::Manual(Arc::new(Manual {
            start: Instant::now(),
            start_unix: system_unix_now(),
            advanced,
        })))
    }

    /// Moves a manual clock forward by `by`, waking the tasks whose
    /// deadline it passes. Does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(m) = &self.0 {
            m.advanced.send_modify(|a| *a += by);
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    /// Monotonic time, for deadlines and windows.
    pub fn now(&self) -> Instant {
        match &self.0 {
            Source::System => Instant::now(),
            Source::Manual(m) => m.start + *m.advanced.borrow(),
        }
    }

    /// Seconds since the Unix epoch: the store's clock.
    pub fn unix_now(&self) -> i64 {
        match &self.0 {
            Source::System => system_unix_now(),
            Source::Manual(m) => {
                let advanced = m.advanced.borrow().as_secs();
                m.start_unix + i64::try_from(advanced).unwrap_or(i64::MAX)
            }
        }
    }

    /// Waits until `deadline` (a time of [`now`](Clock::now)); for a manual
    /// clock, until it is advanced that far.
    pub async fn sleep_until(&self, deadline: Instant) {
        match &self.0 {
            Source::System => tokio::time::sleep_until(deadline.into()).await,
            Source::Manual(m) => {
                let mut advanced = m.advanced.subscribe();
                // The sender lives as long as `m`: `changed` never fails.
                while m.start + *advanced.borrow_and_update() < deadline {
                    if advanced.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// Runs `future` for at most `limit` of this clock's time; `None` if
    /// it ran out.
    pub async fn timeout<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        let deadline = self.now() + limit;
        tokio::select! {
            out = future => Some(out),
            _ = self.sleep_until(deadline) => None,
        }
    }
}

fn system_unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced_and_wakes_its_sleepers() {
        let clock = Clock::manual();
        let (t0, u0) = (clock.now(), clock.unix_now());
        assert_eq!(clock.now(), t0);
        let deadline = t0 + Duration::from_secs(10);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its deadline");
        clock.advance(Duration::from_secs(1));
        sleeper.await.expect("wakes at its deadline");
        assert_eq!(clock.now(), deadline);
        assert_eq!(clock.unix_now(), u0 + 10);
        assert_eq!(
            clock
                .timeout(Duration::ZERO, std::future::pending::<()>())
                .await,
            None
        );
    }
}
