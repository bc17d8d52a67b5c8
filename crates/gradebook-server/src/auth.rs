//! Passwords and login throttling.
//!
//! Passwords are hashed with Argon2id (19 MiB, t=2, p=1) on the blocking
//! pool, a few at a time, so a burst of logins cannot starve the threads
//! that serve requests. An unknown user costs the same as a wrong password:
//! a dummy hash is verified, and both get the same error.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordVerifier;
use argon2::{Argon2, PasswordHasher};
use gradebook_proto::{Secret, WireError};
use tokio::sync::Semaphore;

use crate::clock::Clock;

/// Shortest and longest password accepted (characters, bytes).
pub const PASSWORD_MIN_CHARS: usize = 10;
/// See [`PASSWORD_MIN_CHARS`].
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Failed logins allowed per window, per username and per address.
const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);
/// Past the limit, each further failure doubles the wait, up to this.
const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);

/// Hashing, verifying and throttling.
#[derive(Debug)]
pub struct Auth {
    hashing: Semaphore,
    dummy_hash: String,
    failures: Mutex<HashMap<Key, Failures>>,
    clock: Clock,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

/// Checks a new password against the policy.
pub fn check_password_policy(password: &Secret) -> Result<(), WireError> {
    let p = password.expose();
    if p.len() > PASSWORD_MAX_BYTES {
        return Err(WireError::invalid_value(format!(
            "password longer than {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    if p.chars().count() < PASSWORD_MIN_CHARS {
        return Err(WireError::invalid_value(format!(
            "password shorter than {PASSWORD_MIN_CHARS} characters"
        )));
    }
    Ok(())
}

/// The one error for every failed login, whatever the reason.
pub fn login_failed() -> WireError {
    WireError::unauthenticated("unknown user or wrong password")
}

impl Auth {
    /// Prepares the dummy hash (one Argon2 run at start-up); throttling
    /// windows are read on `clock`.
    pub fn new(clock: Clock) -> Result<Self, String> {
        let dummy_hash = hash_blocking("not the password of any user")?;
        Ok(Auth {
            hashing: Semaphore::new(2),
            dummy_hash,
            failures: Mutex::new(HashMap::new()),
            clock,
        })
    }

    /// Hashes a password off the async threads.
    pub async fn hash(&self, password: &Secret) -> Result<String, WireError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| WireError::internal())?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_blocking(password.expose()))
            .await
            .map_err(|_| WireError::internal())?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                WireError::internal()
            })
    }

    /// Verifies a password against a stored hash, or against the dummy hash
    /// when the user does not exist, so both take the same time.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.clone();
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false);
        ok && known
    }

    /// Refuses a login attempt while its username or address is throttled.
    pub fn check_throttle(&self, username: &str, addr: Option<IpAddr>) -> Result<(), WireError> {
        let now = self.clock.now();
        let failures = self.lock();
        for key in keys(username, addr) {
            if let Some(f) = failures.get(&key)
                && let Some(until) = f.blocked_until
                && until > now
            {
                let secs = (until - now).as_secs().max(1);
                return Err(WireError::new(
                    gradebook_proto::ErrorCode::RateLimited,
                    format!("too many failed logins: try again in {secs} s"),
                ));
            }
        }
        Ok(())
    }

    /// Counts a failed login against the username and the address.
    pub fn record_failure(&self, username: &str, addr: Option<IpAddr>) {
        let now = self.clock.now();
        let mut failures = self.lock();
        if failures.len() > 100_000 {
            // Bound the memory an attacker spraying names can make us use.
            failures.retain(|_, f| now.duration_since(f.window_start) < WINDOW * 16);
        }
        for key in keys(username, addr) {
            let f = failures.entry(key).or_insert(Failures {
                window_start: now,
                count: 0,
                blocked_until: None,
            });
            let blocked = f.blocked_until.is_some_and(|u| u > now);
            // A fresh window only after a quiet one: failures keep counting
            // (and the wait keeps growing) while an attacker keeps trying.
            let quiet = f
                .blocked_until
                .is_none_or(|u| now.duration_since(u) > WINDOW);
            if !blocked && quiet && now.duration_since(f.window_start) > WINDOW {
                f.window_start = now;
                f.count = 0;
                f.blocked_until = None;
            }
            f.count += 1;
            if f.count >= MAX_FAILURES {
                // The 5th failure closes the rest of the minute; each one
                // after that (once allowed again) doubles the wait.
                let excess = (f.count - MAX_FAILURES).min(16);
                let wait = (Duration::from_secs(1) * 2u32.pow(excess)).min(MAX_BLOCK);
                let window_end = f.window_start + WINDOW;
                f.blocked_until = Some((now + wait).max(window_end));
            }
        }
    }

    /// Forgets the failures of a username after a successful login.
    pub fn record_success(&self, username: &str) {
        self.lock().remove(&Key::User(username.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn keys(username: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
    std::iter::once(Key::User(username.to_owned())).chain(addr.map(Key::Addr))
}

fn hash_blocking(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A random password for the first admin: 20 characters from 120 bits.
pub fn random_password() -> Result<Secret, String> {
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_";
    // 6 bits per character from the 120 random bits.
    let mut out = String::with_capacity(20);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            let i = ((acc >> bits) & 63) as usize;
            out.push(char::from(ALPHABET[i % ALPHABET.len()]));
        }
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            hashing: Semaphore::new(1),
            dummy_hash: String::new(),
            failures: Mutex::new(HashMap::new()),
            clock: Clock::manual(),
        }
    }

    #[test]
    fn five_failures_close_the_minute_for_the_name_and_the_address() {
        let a = auth();
        let addr: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..4 {
            a.record_failure("alice", Some(addr));
            assert!(a.check_throttle("alice", Some(addr)).is_ok());
        }
        a.record_failure("alice", Some(addr));
        let e = a
            .check_throttle("alice", None)
            .expect_err("the name is throttled");
        assert_eq!(e.code, gradebook_proto::ErrorCode::RateLimited);
        assert!(
            e.message.contains("5") || e.message.contains("6"),
            "{}",
            e.message
        );
        // The address too, whatever name it tries next.
        assert!(a.check_throttle("bob", Some(addr)).is_err());
        // Another address with another name is not affected.
        assert!(a.check_throttle("bob", Some([10, 0, 0, 2].into())).is_ok());
        // A success forgets the name's failures (not the address's).
        a.record_success("alice");
        assert!(a.check_throttle("alice", None).is_ok());
    }

    #[test]
    fn each_failure_past_the_limit_doubles_the_wait() {
        let a = auth();
        let second = Duration::from_secs(1);
        for _ in 0..5 {
            a.record_failure("alice", None);
        }
        a.clock.advance(WINDOW - second);
        assert!(a.check_throttle("alice", None).is_err());
        a.clock.advance(second);
        assert!(a.check_throttle("alice", None).is_ok());
        // Still counting: the next failures wait 2 s, then 4 s.
        for wait in [2, 4] {
            a.record_failure("alice", None);
            a.clock.advance(second * (wait - 1));
            assert!(a.check_throttle("alice", None).is_err(), "{wait} s");
            a.clock.advance(second);
            assert!(a.check_throttle("alice", None).is_ok(), "{wait} s");
        }
        // After a quiet minute, a failure starts a fresh count.
        a.clock.advance(WINDOW + second);
        a.record_failure("alice", None);
        assert!(a.check_throttle("alice", None).is_ok());
    }
}
