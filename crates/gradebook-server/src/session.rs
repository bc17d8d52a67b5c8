//! Sessions: tokens, expiry, revocation.
//!
//! A token is 256 random bits given to the client once; the store keeps only
//! its SHA-256, so a copy of the database lets nobody log in. Sessions are
//! cached in memory and checked on every request, so a logout, a password
//! change or a deleted account takes effect at once; the store has them too,
//! so they survive a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gradebook_core::User;
use gradebook_proto::Secret;
use gradebook_store::{SessionRecord, Store};
use sha2::{Digest, Sha256};

use crate::clock::Clock;

/// A session lasts at most this long (seconds), however active.
pub const ABSOLUTE_TTL: i64 = 8 * 3600;
/// A session unused for this long (seconds) expires.
pub const IDLE_TTL: i64 = 30 * 60;
/// `last_seen` is written back to the store at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// The SHA-256 of a token: how the server knows a session.
pub type TokenHash = [u8; 32];

/// A logged-in user, as a request sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Identifies the session (never the token itself).
    pub token_hash: TokenHash,
    /// The user's row id.
    pub user_id: i64,
    /// The account.
    pub user: User,
}

#[derive(Debug)]
struct Entry {
    session: Arc<Session>,
    expires_at: i64,
    last_seen: i64,
    last_written: i64,
}

/// Why a token does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Unknown or revoked.
    Unknown,
    /// Past its absolute or idle expiry.
    Expired,
}

/// The registry of live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<TokenHash, Entry>>,
    clock: Clock,
}

/// Generates a fresh token: 32 random bytes, hex-encoded.
pub fn new_token() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(Secret::new(hex::encode(bytes)))
}

/// The SHA-256 of a token as the client sent it.
pub fn hash_token(token: &Secret) -> TokenHash {
    Sha256::digest(token.expose().as_bytes()).into()
}

impl Sessions {
    /// No session yet; expiry read on `clock`.
    pub fn new(clock: Clock) -> Self {
        Sessions {
            live: Mutex::default(),
            clock,
        }
    }

    /// Records a new session for `user` (already stored by the caller).
    pub fn insert(&self, session: Session, now: i64, expires_at: i64) -> Arc<Session> {
        let session = Arc::new(session);
        let entry = Entry {
            session: session.clone(),
            expires_at,
            last_seen: now,
            last_written: now,
        };
        self.lock().insert(session.token_hash, entry);
        session
    }

    /// Checks a session on a request: known, not expired, not idle; marks
    /// it used. Loads it from the store when this process has not seen it
    /// yet (after a restart, or a token sent over UDP).
    pub async fn check(
        &self,
        store: &dyn Store,
        hash: &TokenHash,
    ) -> Result<Arc<Session>, Invalid> {
        let now = self.clock.unix_now();
        let write_back = {
            let mut live = self.lock();
            match live.get_mut(hash) {
                Some(e) => {
                    if e.expires_at <= now || e.last_seen + IDLE_TTL <= now {
                        live.remove(hash);
                        return Err(Invalid::Expired);
                    }
                    e.last_seen = now;
                    let due = e.last_written + TOUCH_EVERY <= now;
                    if due {
                        e.last_written = now;
                    }
                    if !due {
                        return Ok(e.session.clone());
                    }
                    Some(e.session.clone())
                }
                None => None,
            }
        };
        if let Some(session) = write_back {
            // Best effort: a lost touch only shortens the idle window after
            // a restart.
            if let Err(e) = store.session_touch(hash, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
            return Ok(session);
        }
        let record = match store.session_get(hash).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Invalid::Unknown),
            Err(e) => {
                tracing::error!(error = %e, "could not load a session");
                return Err(Invalid::Unknown);
            }
        };
        let SessionRecord {
            user_id,
            user,
            last_seen,
            expires_at,
            ..
        } = record;
        if expires_at <= now || last_seen + IDLE_TTL <= now {
            return Err(Invalid::Expired);
        }
        let session = Session {
            token_hash: *hash,
            user_id,
            user,
        };
        Ok(self.insert(session, now, expires_at))
    }

    /// Whether this process still holds the session (not revoked, not
    /// purged). A quick look, no store access and no expiry check.
    pub fn is_live(&self, hash: &TokenHash) -> bool {
        self.lock().contains_key(hash)
    }

    /// Forgets one session (logout).
    pub fn revoke(&self, hash: &TokenHash) {
        self.lock().remove(hash);
    }

    /// Forgets every session of a user (password change, deletion).
    pub fn revoke_user(&self, user_id: i64) {
        self.lock().retain(|_, e| e.session.user_id != user_id);
    }

    /// Drops expired sessions from memory.
    pub fn purge(&self, now: i64) {
        self.lock()
            .retain(|_, e| e.expires_at > now && e.last_seen + IDLE_TTL > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every change is one insert or remove), so a poisoned lock is
        // still safe to use.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}
