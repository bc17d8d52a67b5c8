//! UDP datagrams (protocol §6): one request per datagram, one reply per
//! request, through the same command path as TCP.
//!
//! The path of one datagram:
//! 1. the reading task takes a token from the sender's bucket ([`limit`])
//!    and hands the datagram to a task of its own, a bounded number at once
//!    (past that, datagrams are dropped and their senders retry), so a slow
//!    write never holds up a `ping` and garbage never holds up anything;
//! 2. the datagram is decoded in the encoding its first byte says; without
//!    an `id` it is refused before anything runs; with TLS on, only `hello`
//!    and `ping` are served (a token must not cross the network in clear);
//! 3. a request carrying a session token whose id was already answered gets
//!    the same reply again, from memory ([`cache`]); a copy arriving while
//!    the first still runs is dropped (the first one's reply answers both);
//! 4. otherwise it runs like a TCP request, except that a write records
//!    (session, id) and its reply in the transaction that makes the change.
//!    So a write cannot run twice, even when memory has forgotten it (a
//!    restart): the store refuses the second copy (primary key), which
//!    rolls back, and the reply recorded by the first is sent instead. The
//!    store is only asked when a write fails: the common path costs no
//!    extra read;
//! 5. the reply is made to fit: over `udp_max_reply` bytes it becomes
//!    `too_large` (a write whose reply would not fit is rolled back, so the
//!    client can simply retry over TCP); and a reply to a request that is
//!    not authenticated by a valid session (`hello`, `ping`, `auth.login`,
//!    any failed request) is never more than three times the request's
//!    size: an error's message is shortened, a larger success becomes a
//!    short `too_large`, and what cannot be made small enough is not sent.
//!
//! Authenticated replies are not held to the three-times rule (the
//! protocol asks it "before authentication"): a spoofed source cannot make
//! the server answer a valid session's requests without its token, and
//! they are still bounded by `udp_max_reply` and the per-source rate limit.

mod cache;
#[doc(hidden)]
pub mod fuzzing;
mod limit;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gradebook_proto::codec::to_datagram;
use gradebook_proto::{Encoding, ErrorCode, Id, Reply, Request, WireError};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::cache::{ReplyCache, Sent};
use self::limit::{RateLimiter, Verdict};
use crate::context::{Origin, State, Transport, UdpRequest};
use crate::dispatch::execute;
use crate::session::{self, TokenHash};

/// Largest datagram read (the largest UDP payload there is).
const MAX_DATAGRAM: usize = 64 * 1024;

/// Longest string id accepted: ids are remembered per session.
const MAX_ID_BYTES: usize = 128;

/// How often the reply cache and the rate limiter forget old entries.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

/// What every datagram's task shares.
#[derive(Debug)]
struct Endpoint {
    state: Arc<State>,
    replies: ReplyCache,
    /// The (session, id) of the requests running now.
    running: Mutex<HashSet<(TokenHash, String)>>,
}

/// Marks a request as running until dropped.
struct Running<'a> {
    endpoint: &'a Endpoint,
    key: (TokenHash, String),
}

impl Endpoint {
    /// Marks (session, id) as running, unless it already is.
    fn start(&self, session: TokenHash, id: &str) -> Option<Running<'_>> {
        let key = (session, id.to_owned());
        let fresh = lock(&self.running).insert(key.clone());
        fresh.then_some(Running {
            endpoint: self,
            key,
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.endpoint.running).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // One insert or remove per critical section: a poisoned lock still
    // holds a consistent set.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves datagrams until shutdown, then lets the ones being answered
/// finish.
pub async fn serve(socket: UdpSocket, state: Arc<State>, shutdown: CancellationToken) {
    let socket = Arc::new(socket);
    let limits = &state.limits;
    let limiter = RateLimiter::new(limits.udp_rate, limits.udp_burst);
    let slots = Arc::new(Semaphore::new(limits.udp_in_flight.max(1)));
    let endpoint = Arc::new(Endpoint {
        state: state.clone(),
        replies: ReplyCache::default(),
        running: Mutex::default(),
    });
    let tasks = TaskTracker::new();
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = housekeeping.tick() => {
                let now = state.clock.now();
                endpoint.replies.purge(now);
                limiter.retain_recent(now);
                continue;
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        let datagram = &buf[..n];
        match limiter.check(peer.ip(), state.clock.now()) {
            Verdict::Allow => {}
            Verdict::Refuse { answer } => {
                tracing::debug!(%peer, "UDP rate limit reached");
                if answer && let Some(reply) = refusal(state.limits.udp_max_reply, datagram) {
                    // Never wait on the socket here: this task reads it.
                    let _ = socket.try_send_to(&reply, peer);
                }
                continue;
            }
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many datagrams in flight; dropping one");
            continue;
        };
        let datagram = datagram.to_vec();
        let socket = socket.clone();
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            if let Some(reply) = answer(&endpoint, &datagram, peer).await
                && let Err(e) = socket.send_to(&reply, peer).await
            {
                tracing::debug!(%peer, error = %e, "UDP send failed");
            }
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// How large a reply may be.
#[derive(Debug, Clone, Copy)]
struct Room {
    /// At most this many bytes.
    bytes: usize,
    /// Held to the three-times rule (the request was not authenticated).
    pre_auth: bool,
}

impl Room {
    /// The room for a reply to a `request_len`-byte request made without a
    /// valid session, under the `max_reply` limit.
    fn pre_auth(max_reply: usize, request_len: usize) -> Room {
        Room {
            bytes: max_reply.min(request_len.saturating_mul(3)),
            pre_auth: true,
        }
    }

    /// The room for a reply to an authenticated request.
    fn authenticated(max_reply: usize) -> Room {
        Room {
            bytes: max_reply,
            pre_auth: false,
        }
    }
}

/// The `rate_limited` answer to a refused datagram, if one fits.
fn refusal(max_reply: usize, datagram: &[u8]) -> Option<Vec<u8>> {
    let encoding = Encoding::sniff(datagram);
    let id = match Request::decode(encoding, datagram) {
        Ok(r) => r.id,
        Err((id, _)) => id,
    };
    let e = WireError::new(
        ErrorCode::RateLimited,
        "too many datagrams from your address: slow down",
    );
    shape(
        max_reply,
        encoding,
        &Reply::error(id, e),
        Room::pre_auth(max_reply, datagram.len()),
    )
}

/// A datagram that passed the checks made before anything runs.
#[derive(Debug)]
struct Admitted {
    /// The request's id, taken out of the request.
    id: Id,
    /// The request, its id taken.
    request: Request,
}

/// The checks that depend on nothing but the datagram's bytes (steps 2 of
/// the module's list): it decodes in `encoding`, has an id of reasonable
/// size, and asks for `hello` or `ping` only when the server uses TLS.
/// On refusal, the id to echo (if any) and the error.
fn admit(
    encoding: Encoding,
    datagram: &[u8],
    tls: bool,
) -> Result<Admitted, (Option<Id>, WireError)> {
    let mut request = Request::decode(encoding, datagram)?;
    // Nothing runs without an id: its reply could not be told apart from
    // another's, and a retry could not be recognised.
    let Some(id) = request.id.take() else {
        return Err((
            None,
            WireError::bad_request("a UDP request needs an id (an integer or a string)"),
        ));
    };
    if matches!(&id, Id::Str(s) if s.len() > MAX_ID_BYTES) {
        return Err((
            None,
            WireError::bad_request(format!("a UDP request id is at most {MAX_ID_BYTES} bytes")),
        ));
    }
    if tls && !matches!(request.cmd.as_str(), "hello" | "ping") {
        return Err((
            Some(id),
            WireError::new(
                ErrorCode::InsecureTransport,
                "this server uses TLS: over UDP it serves only hello and ping; use TCP",
            ),
        ));
    }
    Ok(Admitted { id, request })
}

/// The reply datagram for one request datagram, or nothing when no reply
/// may be sent.
async fn answer(endpoint: &Endpoint, datagram: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    let state = endpoint.state.as_ref();
    let max_reply = state.limits.udp_max_reply;
    let encoding = Encoding::sniff(datagram);
    let pre_auth = Room::pre_auth(max_reply, datagram.len());
    let refuse =
        |id: Option<Id>, e: WireError| shape(max_reply, encoding, &Reply::error(id, e), pre_auth);

    let Admitted { id, mut request } = match admit(encoding, datagram, state.tls) {
        Ok(a) => a,
        Err((id, e)) => return refuse(id, e),
    };
    let id_key = id_key(&id);
    let session = request.token.as_ref().map(session::hash_token);

    // A request already answered gets the same reply, before the session
    // is checked: a retried `auth.logout` gets its "ok" although the
    // session is gone, and the reply goes to no one who did not hold the
    // token it was first sent for.
    if let Some(hash) = &session
        && let Some(sent) = endpoint.replies.get(hash, &id_key)
    {
        return replay(sent, encoding);
    }
    // A copy of a request still running is dropped: the first copy's
    // reply answers both, and running it again would only queue a write
    // that the store must then refuse.
    let _running = match &session {
        Some(hash) => Some(endpoint.start(*hash, &id_key)?),
        None => None,
    };
    let command = match request.command() {
        Ok(c) => c,
        Err(e) => return refuse(Some(id), e),
    };
    let write = crate::facts::facts(&command).udp_write;

    let udp = session.map(|_| UdpRequest {
        id: id_key.clone(),
        fits: fits(state, encoding, &id),
    });
    let origin = Origin {
        token: request.token.as_ref(),
        connection_session: None,
        peer,
        transport: Transport::Udp,
        udp,
        queued: None,
    };
    let outcome = execute(state, command, origin).await;
    let mut authenticated = outcome.authenticated;
    let mut reply = Reply {
        id: Some(id.clone()),
        result: outcome.result.and_then(|data| data.to_value()),
    };
    if reply.result.is_err()
        && write
        && let Some(hash) = &session
        && let Some(first) = recorded(state, hash, &id_key, &id).await
    {
        // This (session, id) already made its write: a copy committed
        // while this one ran, or before a restart, and the store refused
        // this one as a duplicate (or found its change already made).
        // Answer as that one was answered.
        reply = first;
        authenticated = true;
    }
    match session {
        Some(hash) if authenticated => remember(endpoint, hash, id_key, encoding, &reply, state),
        _ => shape(max_reply, encoding, &reply, pre_auth),
    }
}

/// Shapes an authenticated reply and remembers it for retries (except an
/// `internal` error: nothing ran, so a retry may as well try again).
fn remember(
    endpoint: &Endpoint,
    session: TokenHash,
    id_key: String,
    encoding: Encoding,
    reply: &Reply,
    state: &State,
) -> Option<Vec<u8>> {
    let max_reply = state.limits.udp_max_reply;
    let bytes = shape(max_reply, encoding, reply, Room::authenticated(max_reply))?;
    let internal = matches!(&reply.result, Err(e) if e.code == ErrorCode::Internal);
    if !internal {
        let sent = Sent {
            encoding,
            bytes: bytes.clone(),
        };
        endpoint
            .replies
            .insert(session, id_key, sent, state.clock.now());
    }
    Some(bytes)
}

/// A remembered reply, in the encoding of the retry (normally the same).
fn replay(sent: Sent, encoding: Encoding) -> Option<Vec<u8>> {
    if sent.encoding == encoding {
        return Some(sent.bytes);
    }
    let reply = Reply::decode(sent.encoding, &sent.bytes).ok()?;
    to_datagram(encoding, &reply).ok()
}

/// The reply recorded in the store with the write made for (session, id).
async fn recorded(state: &State, session: &TokenHash, id_key: &str, id: &Id) -> Option<Reply> {
    let text = match state.store.request_reply(session, id_key).await {
        Ok(t) => t?,
        Err(e) => {
            tracing::error!(error = %e, "could not look up a UDP request");
            return None;
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(data) => Some(Reply::ok(Some(id.clone()), data)),
        Err(e) => {
            tracing::error!(error = %e, "unreadable recorded UDP reply");
            None
        }
    }
}

/// The check a write runs on its reply before committing: would it fit a
/// datagram in this encoding?
fn fits(state: &State, encoding: Encoding, id: &Id) -> Arc<dyn Fn(&Value) -> bool + Send + Sync> {
    let max = state.limits.udp_max_reply;
    let id = id.clone();
    Arc::new(move |data: &Value| {
        let reply = Reply::ok(Some(id.clone()), data.clone());
        to_datagram(encoding, &reply).is_ok_and(|b| b.len() <= max)
    })
}

/// Encodes a reply within `room`: as it is if it fits; else an error with
/// its message shortened as needed (a success too large becomes
/// `too_large`); else nothing. `max_reply` is the server's UDP limit, which
/// decides what a too large success is told.
fn shape(max_reply: usize, encoding: Encoding, reply: &Reply, room: Room) -> Option<Vec<u8>> {
    let bytes = match to_datagram(encoding, reply) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a UDP reply");
            return None;
        }
    };
    if bytes.len() <= room.bytes {
        return Some(bytes);
    }
    let max = max_reply;
    let mut error = match &reply.result {
        Err(e) => e.clone(),
        Ok(_) if room.pre_auth && bytes.len() <= max => WireError::new(
            ErrorCode::TooLarge,
            format!(
                "pad the request to {} bytes (pad) or use TCP: the reply is {} bytes, \
                 and before login a reply is at most three times its request",
                bytes.len().div_ceil(3),
                bytes.len()
            ),
        ),
        Ok(_) => WireError::new(
            ErrorCode::TooLarge,
            format!(
                "the reply is {} bytes, over the {max}-byte UDP limit: \
                 send this request over TCP",
                bytes.len()
            ),
        ),
    };
    loop {
        let bytes = to_datagram(encoding, &Reply::error(reply.id.clone(), error.clone())).ok()?;
        if bytes.len() <= room.bytes {
            return Some(bytes);
        }
        if error.message.is_empty() {
            tracing::debug!(
                needed = bytes.len(),
                room = room.bytes,
                "UDP reply cannot be made small enough; not sent"
            );
            return None;
        }
        error.message = shorten(&error.message, bytes.len() - room.bytes);
    }
}

/// A message `excess` bytes shorter at least: cut after a word, with an
/// ellipsis; or empty when too little of it would be left to read.
fn shorten(message: &str, excess: usize) -> String {
    const ELLIPSIS: &str = "…";
    const SHORTEST: usize = 12;
    let Some(mut keep) = message
        .len()
        .checked_sub(excess.max(1) + ELLIPSIS.len())
        .filter(|k| *k >= SHORTEST)
    else {
        return String::new();
    };
    while !message.is_char_boundary(keep) {
        keep -= 1;
    }
    let cut = &message[..keep];
    let cut = match cut.rfind(' ') {
        Some(space) if space >= SHORTEST => &cut[..space],
        _ => cut,
    };
    format!("{}{ELLIPSIS}", cut.trim_end_matches([' ', ',', ':', ';']))
}

/// The id as the store and the cache know it: its JSON text, so that `7`
/// and `"7"` stay different ids.
fn id_key(id: &Id) -> String {
    match id {
        Id::Int(n) => n.to_string(),
        Id::Str(s) => Value::String(s.clone()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_shortened_after_a_word_or_emptied() {
        let m = "the reply is 110 bytes, more than three times the request";
        let short = shorten(m, 20);
        assert_eq!(short, "the reply is 110 bytes, more than…");
        assert!(short.len() <= m.len() - 20);
        assert_eq!(shorten(m, m.len() - 10), "");
        assert_eq!(shorten("", 1), "");
        // Never in the middle of a character.
        let accents = "é".repeat(40);
        let short = shorten(&accents, 5);
        assert!(short.ends_with('…') && short.len() <= accents.len() - 5);
    }

    #[test]
    fn ids_keep_their_type_in_keys() {
        assert_eq!(id_key(&Id::Int(7)), "7");
        assert_eq!(id_key(&Id::Str("7".into())), "\"7\"");
        assert_eq!(id_key(&Id::Str("a\"b".into())), r#""a\"b""#);
    }
}
