//! QUIC (protocol §10): the whole service over encrypted datagrams, through
//! the same `execute` as TCP and UDP.
//!
//! The path of one request:
//! 1. the endpoint accepts a connection while a connection slot is free
//!    (the same cap as TCP's: past it, QUIC's `CONNECTION_REFUSED`), and
//!    the TLS 1.3 handshake completes within the handshake timeout, with
//!    the TCP listener's certificate and ALPN `gradebook/1`;
//! 2. the client opens one bidirectional stream per request, writes the
//!    request (a JSON object, or a MessagePack map: the first byte tells)
//!    and finishes its side: the end of the stream frames the message. The
//!    request must arrive whole within the request timeout, and be no
//!    longer than the size limit (16 KiB before login, 1 MiB after);
//! 3. it runs through [`execute`] with the connection's session, like a
//!    TCP request: an `auth.login` on any stream logs the whole connection
//!    in, and the streams opened after its reply share the session;
//! 4. the reply goes back on the same stream, in the request's encoding,
//!    and the server finishes the stream.
//!
//! Streams are independent: they run concurrently, and a client that needs
//! one request to follow another waits for the first one's reply.
//!
//! `watch` (protocol §9): its reply comes on its own stream like any other;
//! its events go on one unidirectional stream that the server opens for
//! that watch ([`events`]), in the `watch` request's encoding and framed
//! as on TCP (JSON Lines, or length-prefixed MessagePack), through the
//! same [`Watcher`] as TCP's: first the log's events after `since`, then
//! the live ones, in seq order, once. `unwatch`, a new `watch` or the
//! connection's logout finishes the stream; `lagged`, or the end of the
//! session that asked (a reply without an id says so), is its last
//! message. QUIC's flow control holds what the client has not read: the
//! task then waits, the watcher's queue fills, and the feed drops it as
//! lagged; a stream left unread for the request timeout is reset (code
//! 3). A connection that watches is not idle.
//!
//! What bounds a connection: at most `quic_streams` requests open at once
//! (QUIC's stream credit: the client's next stream waits until one
//! finishes; quinn raises the credit as streams finish, so a long-lived
//! connection never runs out); no stream from the client in the other
//! direction (unidirectional streams: credit 0) and no unreliable
//! datagrams; closed after the idle timeout without a request, or the
//! login timeout without a session, like TCP (QUIC's own idle timeout,
//! a few seconds longer, only catches clients that vanished; keep-alive
//! packets do not count as requests). So at most `quic_streams` × the size limit of request bytes
//! are held per connection, and one watch's events (its queue, one
//! batch, and what flow control lets through). 0-RTT is off
//! (`max_early_data_size` 0): a replayed first flight could repeat a
//! write.
//!
//! Amplification (RFC 9000 §8): a client whose address is not validated
//! yet gets a Retry first (`quic_retry`, on by default), a packet smaller
//! than the client's own, and the handshake starts only when the client
//! comes back with its token, proving that it receives at its address;
//! the server also sends NEW_TOKEN tokens, so that a client's next
//! connections skip that round trip. Without Retry, quinn's own limit
//! applies, which can exceed three times what was received by up to one
//! datagram.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use gradebook_proto::codec::to_datagram;
use gradebook_proto::{Encoding, ErrorCode, Id, ReplyOf, Request, WireError};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream, VarInt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Limits;
use crate::context::{Effect, Origin, Outcome, State, Transport};
use crate::dispatch::execute;
use crate::handler::Data;
use crate::session::{Session, TokenHash};
use crate::watch::{Replayed, Watcher};

/// The application protocol negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"gradebook/1";

/// How much longer QUIC's own idle timeout is than the server's.
const TRANSPORT_IDLE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A watch's events are written out once this much is pending (as on
/// TCP): a batch of events in one write, not one write each.
const EVENT_BATCH: usize = 64 * 1024;

/// Application error codes, in `CONNECTION_CLOSE` and stream resets.
mod code {
    use quinn::VarInt;
    /// A normal end (shutdown).
    pub const DONE: VarInt = VarInt::from_u32(0);
    /// No request for the idle timeout.
    pub const IDLE: VarInt = VarInt::from_u32(1);
    /// No login within the login timeout.
    pub const LOGIN_TIMEOUT: VarInt = VarInt::from_u32(2);
    /// A request did not arrive whole in time, or its reply was not read.
    pub const TOO_SLOW: VarInt = VarInt::from_u32(3);
    /// A request over the size limit (its `frame_too_large` reply is sent).
    pub const TOO_LARGE: VarInt = VarInt::from_u32(4);
    /// The handshake did not negotiate `gradebook/1`.
    pub const NO_ALPN: VarInt = VarInt::from_u32(5);
}

/// Binds the QUIC endpoint on `addr` with a copy of the TCP listener's TLS
/// configuration (same certificate), with its ALPN and limits.
pub fn bind(
    addr: SocketAddr,
    tls: &rustls::ServerConfig,
    limits: &Limits,
) -> Result<Endpoint, String> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No 0-RTT: its data can be replayed, and nothing tells a write apart
    // before it is decoded.
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| format!("QUIC needs TLS 1.3 with AES-128-GCM: {e}"))?;
    let mut transport = quinn::TransportConfig::default();
    let transport_idle = limits.idle_timeout + TRANSPORT_IDLE_MARGIN;
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(limits.quic_streams.max(1)))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .datagram_receive_buffer_size(None)
        // A little longer than the server's own idle timeout, which closes
        // with a reason; this one catches a client that vanished.
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(transport_idle)
                .map_err(|_| "the idle timeout is too long for QUIC".to_owned())?,
        ))
        // A watching connection may hear nothing from its client for
        // longer than that: the client's acknowledgements of these pings
        // keep it open, and their absence still ends a vanished client's.
        // (The server's own idle timeout ignores them.)
        .keep_alive_interval(Some(transport_idle / 3));
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Endpoint::server(config, addr).map_err(|e| format!("cannot bind QUIC on {addr}: {e}"))
}

/// Accepts connections until shutdown, then lets each finish the requests
/// it is running and closes it.
pub async fn serve(
    endpoint: Endpoint,
    state: Arc<State>,
    slots: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let incoming = tokio::select! {
            _ = shutdown.cancelled() => break,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        // An address not validated yet (no token from a Retry or from an
        // earlier connection) gets a Retry: a packet smaller than the
        // client's, so that nothing is amplified. quinn's own limit lets
        // a server exceed three times what it received by up to a
        // datagram.
        let incoming = if state.limits.quic_retry
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            match incoming.retry() {
                Ok(()) => continue,
                Err(e) => e.into_incoming(),
            }
        } else {
            incoming
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Counted with TCP's refusals (one log line a second at most).
            refused.fetch_add(1, Ordering::Relaxed);
            incoming.refuse();
            continue;
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            connection(incoming, state, shutdown).await;
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
    endpoint.close(code::DONE, b"server shutting down");
    // Lets the close reach the clients; bounded by the shutdown grace of
    // the caller.
    endpoint.wait_idle().await;
}

/// What a connection's streams share: who is logged in, its clocks, its
/// watch, and what a watch needs to send its events.
#[derive(Debug)]
struct Link {
    peer: SocketAddr,
    inner: Mutex<LinkState>,
    /// Opens a watch's event stream.
    conn: Connection,
    /// The connection's tasks, its requests' and its watch's: the
    /// connection is not idle while one runs, and ends after them.
    tasks: TaskTracker,
    /// The server's shutdown: a watch's events stop.
    shutdown: CancellationToken,
}

#[derive(Debug)]
struct LinkState {
    session: Option<Arc<Session>>,
    /// Since when the connection has been without a session.
    unauthenticated_since: Instant,
    /// When the last request arrived or was answered.
    last_request: Instant,
    /// Stops the running watch's task, which then finishes its stream.
    watch: Option<CancellationToken>,
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        // Each critical section sets a field or two: a poisoned lock still
        // holds a consistent state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn session_token(&self) -> Option<TokenHash> {
        self.lock().session.as_ref().map(|s| s.token_hash)
    }

    fn touch(&self, now: Instant) {
        self.lock().last_request = now;
    }

    /// Stops the running watch, if any: its task finishes its stream.
    fn stop_watch(&self) {
        stop(self.lock().watch.take());
    }

    /// When the connection is closed if nothing happens, and why.
    fn deadline(&self, limits: &Limits) -> (Instant, VarInt) {
        let s = self.lock();
        let idle = s.last_request + limits.idle_timeout;
        match &s.session {
            None if s.unauthenticated_since + limits.login_timeout < idle => (
                s.unauthenticated_since + limits.login_timeout,
                code::LOGIN_TIMEOUT,
            ),
            _ => (idle, code::IDLE),
        }
    }

    /// Does what a reply's effect asks, before the reply is written: the
    /// streams opened once the client has it see the new session. As on
    /// TCP (`connection.rs`), a logout ends the connection's session only
    /// if it is that session that ended. A watch's events go in
    /// `encoding`, its request's.
    fn apply(&self, effect: Effect, state: &Arc<State>, encoding: Encoding) {
        let mut s = self.lock();
        match effect {
            // `hello` switches no encoding on QUIC: each stream's first
            // byte tells its own.
            Effect::None | Effect::SwitchEncoding(_) => {}
            Effect::LoggedIn(session) => s.session = Some(session),
            Effect::Watch(watch) => {
                // A new watch replaces the one before, whose stream ends.
                stop(s.watch.take());
                if let Some(watcher) = Watcher::start(&watch) {
                    let stop = self.shutdown.child_token();
                    s.watch = Some(stop.clone());
                    self.tasks.spawn(events(
                        self.conn.clone(),
                        watcher,
                        encoding,
                        stop,
                        self.shutdown.clone(),
                        state.clone(),
                    ));
                }
                // A token sent in the envelope logs the watching
                // connection in: its events are that session's.
                if s.session.is_none() {
                    s.session = Some(watch.session);
                }
            }
            Effect::Unwatch => {
                stop(s.watch.take());
            }
            Effect::LoggedOut
                if s.session
                    .as_ref()
                    .is_none_or(|x| !state.sessions.is_live(&x.token_hash)) =>
            {
                s.session = None;
                s.unauthenticated_since = state.clock.now();
                // Events are for the session that asked for them.
                stop(s.watch.take());
            }
            Effect::LoggedOut => {}
        }
    }
}

/// Stops a watch's task, if there is one.
fn stop(watch: Option<CancellationToken>) {
    if let Some(w) = watch {
        w.cancel();
    }
}

/// Completes the handshake, then serves the connection's streams until the
/// client leaves, a deadline passes, or the server shuts down.
async fn connection(incoming: Incoming, state: Arc<State>, shutdown: CancellationToken) {
    let peer = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "QUIC connection not accepted");
            return;
        }
    };
    let conn = match state
        .clock
        .timeout(state.limits.handshake_timeout, connecting)
        .await
    {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC handshake failed");
            return;
        }
        None => {
            tracing::debug!(%peer, "QUIC handshake timed out");
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    if alpn.as_deref() != Some(ALPN) {
        conn.close(code::NO_ALPN, b"ALPN gradebook/1 expected");
        return;
    }
    let now = state.clock.now();
    let streams = TaskTracker::new();
    let link = Arc::new(Link {
        peer,
        inner: Mutex::new(LinkState {
            session: None,
            unauthenticated_since: now,
            last_request: now,
            watch: None,
        }),
        conn: conn.clone(),
        tasks: streams.clone(),
        shutdown: shutdown.clone(),
    });
    let closing = loop {
        let (deadline, why) = link.deadline(&state.limits);
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break Some((code::DONE, &b"server shutting down"[..])),
            _ = state.clock.sleep_until(deadline) => {
                let now = state.clock.now();
                if why == code::IDLE && !streams.is_empty() {
                    // A request still running, or a watch, is activity;
                    // but streams, however slow, never make up for a
                    // missing login.
                    link.touch(now);
                    continue;
                }
                if link.deadline(&state.limits).0 > now {
                    continue;
                }
                tracing::debug!(%peer, "QUIC connection timed out");
                let reason: &[u8] = if why == code::IDLE {
                    b"idle timeout"
                } else {
                    b"no login in time"
                };
                break Some((why, reason));
            }
            a = conn.accept_bi() => a,
        };
        match accepted {
            Ok((send, recv)) => {
                link.touch(state.clock.now());
                streams.spawn(stream(send, recv, link.clone(), state.clone()));
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "QUIC connection ended");
                break None;
            }
        }
    };
    // The connection ends, and with it its watch (which would otherwise
    // wait for its next event to find the connection gone).
    link.stop_watch();
    streams.close();
    match closing {
        // Shutdown: the requests running finish first.
        Some((code::DONE, reason)) => {
            streams.wait().await;
            conn.close(code::DONE, reason);
        }
        // A deadline: at once, ending the streams still open.
        Some((code, reason)) => {
            conn.close(code, reason);
            streams.wait().await;
        }
        None => streams.wait().await,
    }
}

/// One request and its reply, on one bidirectional stream.
async fn stream(mut send: SendStream, mut recv: RecvStream, link: Arc<Link>, state: Arc<State>) {
    let limits = &state.limits;
    let logged_in = link.session_token().is_some();
    let max = if logged_in {
        limits.max_frame
    } else {
        limits.pre_auth_max_frame
    };
    let read = state
        .clock
        .timeout(limits.request_timeout, read_request(&mut recv, max))
        .await;
    let (encoding, id, result, effect) = match read {
        Some(Ok(bytes)) => run(&bytes, &link, &state).await,
        Some(Err(Unread::TooLong { first })) => {
            // The stream frames the message: the connection stays usable,
            // only this request is refused (its rest unread), in the
            // encoding its first byte told.
            let _ = recv.stop(code::TOO_LARGE);
            let error = WireError::new(
                ErrorCode::FrameTooLarge,
                format!("message longer than {max} bytes"),
            );
            (Encoding::sniff(&first), None, Err(error), Effect::None)
        }
        Some(Err(Unread::Failed(e))) => {
            tracing::debug!(peer = %link.peer, error = %e, "QUIC stream not read");
            return;
        }
        None => {
            tracing::debug!(peer = %link.peer, "QUIC request too slow");
            let _ = recv.stop(code::TOO_SLOW);
            let _ = send.reset(code::TOO_SLOW);
            return;
        }
    };
    link.apply(effect, &state, encoding);
    let reply = encode(encoding, id.as_ref(), result.as_ref());
    let written = state
        .clock
        .timeout(limits.request_timeout, send.write_all(&reply))
        .await;
    link.touch(state.clock.now());
    match written {
        Some(Ok(())) => {
            let _ = send.finish();
            // Held until the client has the whole reply, so that a
            // shutdown closes the connection only after it.
            let _ = state
                .clock
                .timeout(limits.request_timeout, send.stopped())
                .await;
        }
        Some(Err(e)) => tracing::debug!(peer = %link.peer, error = %e, "QUIC reply not sent"),
        None => {
            tracing::debug!(peer = %link.peer, "QUIC reply not read in time");
            let _ = send.reset(code::TOO_SLOW);
        }
    }
}

/// One watch's events, on a unidirectional stream the server opens for
/// it: the log's after `since`, then the live ones, in `encoding` and
/// framed as on TCP, until the watch stops (`unwatch`, a new `watch`, a
/// logout, the connection's end, shutdown), `lagged`, or the end of the
/// session that asked; then the stream is finished.
async fn events(
    conn: Connection,
    mut watcher: Watcher,
    encoding: Encoding,
    stop: CancellationToken,
    shutdown: CancellationToken,
    state: Arc<State>,
) {
    let peer = conn.remote_address();
    let timeout = state.limits.request_timeout;
    // The client's credit for our streams bounds them; one that gives
    // none gets no events, after the reply said it watches.
    let opened = tokio::select! {
        _ = stop.cancelled() => return,
        opened = state.clock.timeout(timeout, conn.open_uni()) => opened,
    };
    let mut send = match opened {
        Some(Ok(send)) => send,
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC event stream not opened");
            return;
        }
        None => {
            tracing::debug!(%peer, "QUIC client gives no credit for an event stream");
            return;
        }
    };
    let mut out = BytesMut::new();
    let goes_on = loop {
        if stop.is_cancelled() {
            break false;
        }
        let replayed = watcher
            .replay(&state, encoding, &mut out, EVENT_BATCH)
            .await;
        if !write_events(&mut send, &mut out, &state, &shutdown, peer).await {
            return;
        }
        match replayed {
            Replayed::Done => break true,
            Replayed::More => {}
            Replayed::Failed => break false,
        }
    };
    if goes_on {
        loop {
            // A stopped watch takes no more events, even if some wait.
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                next = watcher.next() => next,
            };
            let goes_on = watcher.deliver(next, &state, encoding, &mut out, EVENT_BATCH);
            if !write_events(&mut send, &mut out, &state, &shutdown, peer).await {
                return;
            }
            if !goes_on {
                break;
            }
        }
    }
    // What was written still reaches the client (quinn keeps sending a
    // finished stream's data as long as the connection lives).
    let _ = send.finish();
}

/// Writes out the pending events. A client that does not read them holds
/// the write (QUIC's flow control) while its queue fills, until the feed
/// drops it as lagged; one that reads nothing for the request timeout has
/// its stream reset (code 3), as an unread reply is. False when the
/// stream is done for: reset, the connection gone, or shutdown.
async fn write_events(
    send: &mut SendStream,
    out: &mut BytesMut,
    state: &State,
    shutdown: &CancellationToken,
    peer: SocketAddr,
) -> bool {
    if out.is_empty() {
        return true;
    }
    let written = tokio::select! {
        // The connection closes next: no need to wait for this client.
        // Reset, not finished: a finished stream would end in the middle
        // of the message being written.
        _ = shutdown.cancelled() => {
            let _ = send.reset(code::DONE);
            return false;
        }
        w = state.clock.timeout(state.limits.request_timeout, send.write_all(out)) => w,
    };
    out.clear();
    match written {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "QUIC events not sent");
            false
        }
        None => {
            tracing::debug!(%peer, "QUIC events not read in time");
            let _ = send.reset(code::TOO_SLOW);
            false
        }
    }
}

/// Why a request was not read.
enum Unread {
    /// Over the limit; its first byte (if any) tells its encoding.
    TooLong { first: Vec<u8> },
    /// The stream or the connection failed.
    Failed(quinn::ReadError),
}

/// Reads a request to the end of its stream, holding at most `max` bytes.
async fn read_request(recv: &mut RecvStream, max: usize) -> Result<Vec<u8>, Unread> {
    let mut request = Vec::new();
    loop {
        let room = max.saturating_sub(request.len()).saturating_add(1);
        match recv.read_chunk(room, true).await {
            Ok(Some(chunk)) => {
                if request.len() + chunk.bytes.len() > max {
                    let first = request.first().or(chunk.bytes.first());
                    return Err(Unread::TooLong {
                        first: first.copied().into_iter().collect(),
                    });
                }
                request.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => return Ok(request),
            Err(e) => return Err(Unread::Failed(e)),
        }
    }
}

/// Decodes and runs one request: its encoding, id, result and effect.
async fn run(
    bytes: &[u8],
    link: &Link,
    state: &State,
) -> (Encoding, Option<Id>, Result<Data, WireError>, Effect) {
    let encoding = Encoding::sniff(bytes);
    let mut request = match Request::decode(encoding, bytes) {
        Ok(r) => r,
        Err((id, e)) => return (encoding, id, Err(e), Effect::None),
    };
    let id = request.id.take();
    let command = match request.command() {
        Ok(c) => c,
        Err(e) => return (encoding, id, Err(e), Effect::None),
    };
    let session = link.session_token();
    let origin = Origin {
        token: request.token.as_ref(),
        connection_session: session.as_ref(),
        peer: link.peer,
        transport: Transport::Quic,
        udp: None,
        queued: None,
    };
    let Outcome { result, effect, .. } = execute(state, command, origin).await;
    (encoding, id, result, effect)
}

/// A reply in `encoding`, unframed (the stream's end frames it); if its
/// data cannot be encoded, an `internal` error instead (logged).
fn encode(encoding: Encoding, id: Option<&Id>, result: Result<&Data, &WireError>) -> Vec<u8> {
    match to_datagram(encoding, &ReplyOf { id, result }) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a reply");
            let internal = WireError::internal();
            let fallback: ReplyOf<'_, Data> = ReplyOf {
                id,
                result: Err(&internal),
            };
            to_datagram(encoding, &fallback).unwrap_or_default()
        }
    }
}
