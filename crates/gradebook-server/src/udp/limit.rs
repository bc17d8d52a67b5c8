//! A token bucket per source address, so one sender cannot take the UDP
//! endpoint for itself.
//!
//! Each address may send `burst` datagrams at once and `rate` a second on
//! average. A refused datagram is answered `rate_limited` at most once a
//! second per address (an answer to every refused datagram would itself be
//! a flood), and dropped otherwise. Buckets that have refilled are
//! forgotten, and the table is bounded: addresses are cheap to spoof.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept at most; past that, the full ones are forgotten, and if
/// none is, all are (the limiter then starts afresh rather than grow).
const MAX_BUCKETS: usize = 65_536;

/// How often a refused address is told so.
const ANSWER_EVERY: Duration = Duration::from_secs(1);

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// Refuse it, answering `rate_limited` or not.
    Refuse {
        /// Whether to answer.
        answer: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    answered: Option<Instant>,
}

/// Token buckets by source address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate` datagrams a second with bursts of `burst`, per address.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for one datagram from `addr`.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Verdict {
        let mut buckets = self.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&addr) {
            self.retain_recent_in(&mut buckets, now);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(addr).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            answered: None,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Allow;
        }
        let answer = bucket
            .answered
            .is_none_or(|at| now.saturating_duration_since(at) >= ANSWER_EVERY);
        if answer {
            bucket.answered = Some(now);
        }
        Verdict::Refuse { answer }
    }

    /// Forgets the buckets that have refilled: their addresses are back to
    /// a fresh start anyway.
    pub fn retain_recent(&self, now: Instant) {
        let mut buckets = self.lock();
        self.retain_recent_in(&mut buckets, now);
    }

    fn retain_recent_in(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * self.rate < self.burst
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        // Each update is a few assignments to one bucket: a poisoned lock
        // still holds usable numbers.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(A, t), Verdict::Allow);
        }
        assert_eq!(limiter.check(A, t), Verdict::Refuse { answer: true });
        assert_eq!(limiter.check(A, t), Verdict::Refuse { answer: false });
        // Another address has its own bucket.
        assert_eq!(limiter.check(B, t), Verdict::Allow);
        // A tenth of a second buys one datagram.
        let t1 = t + Duration::from_millis(100);
        assert_eq!(limiter.check(A, t1), Verdict::Allow);
        assert_eq!(limiter.check(A, t1), Verdict::Refuse { answer: false });
        // A second later, refusals are answered again.
        let t2 = t + Duration::from_millis(1000);
        for _ in 0..3 {
            assert_eq!(limiter.check(A, t2), Verdict::Allow);
        }
        assert_eq!(limiter.check(A, t2), Verdict::Refuse { answer: true });
    }

    #[test]
    fn refilled_buckets_are_forgotten() {
        let limiter = RateLimiter::new(10, 3);
        let t = Instant::now();
        limiter.check(A, t);
        limiter.retain_recent(t);
        assert_eq!(limiter.lock().len(), 1);
        limiter.retain_recent(t + Duration::from_secs(1));
        assert_eq!(limiter.lock().len(), 0);
    }
}
