//! Login throttling's arithmetic (protocol §7), in Unix seconds, shared by
//! every backend: the failures of a username or an address are kept in
//! the database, so that every server sharing it counts them together.
//!
//! The fifth failure within a minute blocks the key for the rest of that
//! minute; each later failure, once allowed again, doubles the wait (up to
//! 15 minutes), until a quiet minute passes after the last block.

/// Failures that close the window.
pub const MAX_FAILURES: i64 = 5;
/// The counting window, in seconds.
pub const WINDOW: i64 = 60;
/// The longest wait, in seconds.
pub const MAX_BLOCK: i64 = 15 * 60;

/// A key's failures, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strikes {
    /// When the counting window began (Unix seconds).
    pub window_start: i64,
    /// Failures since.
    pub count: i64,
    /// Until when the key is refused (Unix seconds), once blocked.
    pub blocked_until: Option<i64>,
}

impl Strikes {
    /// The strikes after one more failure at `now`.
    pub fn after_failure(previous: Option<Strikes>, now: i64) -> Strikes {
        let mut s = previous.unwrap_or(Strikes {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        let blocked = s.blocked_until.is_some_and(|u| u > now);
        // A fresh window only after a quiet one: failures keep counting
        // (and the wait keeps growing) while an attacker keeps trying.
        let quiet = s.blocked_until.is_none_or(|u| now - u > WINDOW);
        if !blocked && quiet && now - s.window_start > WINDOW {
            s = Strikes {
                window_start: now,
                count: 0,
                blocked_until: None,
            };
        }
        s.count += 1;
        if s.count >= MAX_FAILURES {
            // The 5th failure closes the rest of the minute; each one after
            // that doubles the wait.
            let excess = u32::try_from((s.count - MAX_FAILURES).min(16)).unwrap_or(16);
            let wait = (1i64 << excess).min(MAX_BLOCK);
            s.blocked_until = Some((now + wait).max(s.window_start + WINDOW));
        }
        s
    }

    /// How many seconds the key must still wait at `now`, if it is blocked.
    pub fn wait(&self, now: i64) -> Option<i64> {
        self.blocked_until
            .filter(|u| *u > now)
            .map(|u| (u - now).max(1))
    }

    /// Whether nothing of it matters any more at `now` (it may be deleted).
    pub fn stale(&self, now: i64) -> bool {
        let last = self.blocked_until.unwrap_or(self.window_start);
        now - last > 16 * WINDOW
    }
}

/// The key a username's failures are kept under.
pub fn user_key(username: &str) -> String {
    format!("user:{username}")
}

/// The key an address's failures are kept under.
pub fn addr_key(addr: std::net::IpAddr) -> String {
    format!("addr:{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(s: Option<Strikes>, now: i64) -> Option<Strikes> {
        Some(Strikes::after_failure(s, now))
    }

    #[test]
    fn the_fifth_failure_closes_the_rest_of_the_minute() {
        let mut s = None;
        for t in 0..4 {
            s = fail(s, 100 + t);
            assert_eq!(s.and_then(|s| s.wait(100 + t)), None);
        }
        s = fail(s, 110);
        let s = s.expect("strikes");
        assert_eq!(s.wait(110), Some(50));
        assert_eq!(s.wait(159), Some(1));
        assert_eq!(s.wait(160), None);
    }

    #[test]
    fn each_failure_past_the_limit_doubles_the_wait_until_a_quiet_minute() {
        let mut s = None;
        for _ in 0..5 {
            s = fail(s, 0);
        }
        assert_eq!(s.and_then(|s| s.wait(59)), Some(1));
        assert_eq!(s.and_then(|s| s.wait(60)), None);
        // Still counting: the next failures wait 2 s, then 4 s.
        let mut now = 60;
        for wait in [2, 4] {
            s = fail(s, now);
            assert_eq!(s.and_then(|s| s.wait(now + wait - 1)), Some(1), "{wait} s");
            assert_eq!(s.and_then(|s| s.wait(now + wait)), None, "{wait} s");
            now += wait;
        }
        // After a quiet minute, a failure starts a fresh count.
        now += WINDOW + 1;
        s = fail(s, now);
        assert_eq!(s.map(|s| s.count), Some(1));
        assert_eq!(s.and_then(|s| s.wait(now)), None);
    }

    #[test]
    fn the_wait_stops_growing_at_fifteen_minutes() {
        let mut s = None;
        let mut now = 0;
        for _ in 0..40 {
            s = fail(s, now);
            now = s.and_then(|s| s.blocked_until).unwrap_or(now);
        }
        let s = s.expect("strikes");
        assert!(
            s.blocked_until.is_some_and(|u| u - now <= MAX_BLOCK),
            "{s:?}"
        );
        assert!(!s.stale(now));
        assert!(s.stale(now + MAX_BLOCK + 17 * WINDOW));
    }
}
