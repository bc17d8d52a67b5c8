//! The replies recently sent to each session over UDP, so that a retried
//! datagram gets the same reply without running its command again.
//!
//! Only replies to authenticated requests are kept, as the exact bytes sent,
//! by (session, request id). An entry stays while it is among its session's
//! last [`KEEP_LAST`] or younger than [`KEEP_FOR`], within a hard cap of
//! [`MAX_PER_SESSION`] per session; a session idle for [`FORGET_IDLE`] is
//! forgotten. Writes do not depend on this cache: each records its reply
//! in the store, in the transaction that makes the change, so a retry finds
//! it even after a restart. A read missed here is simply computed again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gradebook_proto::Encoding;

use crate::session::TokenHash;

/// Every session keeps at least its last this many replies...
pub const KEEP_LAST: usize = 1024;
/// ...and every reply younger than this.
pub const KEEP_FOR: Duration = Duration::from_secs(120);
/// A bound on one session's entries, whatever their age.
pub const MAX_PER_SESSION: usize = 4096;
/// A session with no new reply for this long is forgotten.
pub const FORGET_IDLE: Duration = Duration::from_secs(600);

/// A reply as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The request's (and so the reply's) encoding.
    pub encoding: Encoding,
    /// The datagram.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct SessionReplies {
    by_id: HashMap<String, Sent>,
    /// Ids in the order they were answered, with when.
    order: VecDeque<(String, Instant)>,
}

impl SessionReplies {
    fn evict(&mut self, now: Instant) {
        while let Some((id, at)) = self.order.front() {
            let over_cap = self.order.len() > MAX_PER_SESSION;
            let expired = self.order.len() > KEEP_LAST && now.duration_since(*at) > KEEP_FOR;
            if !(over_cap || expired) {
                break;
            }
            self.by_id.remove(id);
            self.order.pop_front();
        }
    }

    fn last_used(&self) -> Option<Instant> {
        self.order.back().map(|(_, at)| *at)
    }
}

/// Recent replies, per session.
#[derive(Debug, Default)]
pub struct ReplyCache {
    sessions: Mutex<HashMap<TokenHash, SessionReplies>>,
}

impl ReplyCache {
    /// The reply already sent for `id` in `session`, if remembered.
    pub fn get(&self, session: &TokenHash, id: &str) -> Option<Sent> {
        self.lock().get(session)?.by_id.get(id).cloned()
    }

    /// Remembers the reply sent for `id` in `session`. A reply already
    /// remembered stays as it is: the first one sent is the one replayed.
    pub fn insert(&self, session: TokenHash, id: String, sent: Sent, now: Instant) {
        let mut sessions = self.lock();
        let replies = sessions.entry(session).or_default();
        if replies.by_id.contains_key(&id) {
            return;
        }
        replies.order.push_back((id.clone(), now));
        replies.by_id.insert(id, sent);
        replies.evict(now);
    }

    /// Drops what the retention rule no longer asks to keep.
    pub fn purge(&self, now: Instant) {
        self.lock().retain(|_, replies| {
            replies.evict(now);
            replies
                .last_used()
                .is_some_and(|at| now.duration_since(at) < FORGET_IDLE)
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, SessionReplies>> {
        // Every change leaves the map consistent between two statements
        // that cannot panic, so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: u8) -> Sent {
        Sent {
            encoding: Encoding::Json,
            bytes: vec![n],
        }
    }

    #[test]
    fn keeps_the_last_replies_and_the_recent_ones() {
        let cache = ReplyCache::default();
        let t0 = Instant::now();
        let s = [1u8; 32];
        for i in 0..KEEP_LAST + 10 {
            cache.insert(s, i.to_string(), sent(1), t0);
        }
        // All young: all kept.
        assert!(cache.get(&s, "0").is_some());
        // Old ones beyond the last KEEP_LAST go once something new arrives.
        let later = t0 + KEEP_FOR + Duration::from_secs(1);
        cache.insert(s, "new".into(), sent(2), later);
        assert!(cache.get(&s, "0").is_none());
        assert!(cache.get(&s, "10").is_none());
        assert!(cache.get(&s, "11").is_some());
        assert_eq!(cache.get(&s, "new"), Some(sent(2)));
        // Another session has its own ids.
        assert!(cache.get(&[2u8; 32], "11").is_none());
    }

    #[test]
    fn the_first_reply_is_the_one_kept() {
        let cache = ReplyCache::default();
        let now = Instant::now();
        cache.insert([0; 32], "1".into(), sent(1), now);
        cache.insert([0; 32], "1".into(), sent(2), now);
        assert_eq!(cache.get(&[0; 32], "1"), Some(sent(1)));
    }

    #[test]
    fn a_session_is_bounded_and_idle_sessions_are_forgotten() {
        let cache = ReplyCache::default();
        let now = Instant::now();
        for i in 0..MAX_PER_SESSION + 5 {
            cache.insert([0; 32], i.to_string(), sent(0), now);
        }
        assert!(cache.get(&[0; 32], "4").is_none());
        assert!(cache.get(&[0; 32], "5").is_some());
        cache.purge(now + FORGET_IDLE);
        assert!(cache.get(&[0; 32], "5").is_none());
    }
}
