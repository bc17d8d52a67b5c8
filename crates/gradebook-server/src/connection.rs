//! One TCP (or TLS) connection: frames in, replies out, in order.
//!
//! [`Connection`] owns the framing: [`Connection::read_request`] gives the
//! next request and [`Connection::write_reply`] queues its reply, as
//! mini-redis does. [`serve`] is the loop between them.
//!
//! Requests behave as if answered one after the other, and replies keep the
//! order of requests; a client that pipelines gets its replies written in
//! batches: the connection answers every request already buffered before
//! it flushes. Pipelined writes share commits: a write starts while the
//! writes ahead of it still wait for theirs (see [`Flow`]), and its reply
//! is written once its own commit is done.
//! Every wait is bounded: a connection idle for too long, a request
//! trickling in too slowly, a client that never logs in, or one that does
//! not read its replies is closed. A connection that watches (protocol §9)
//! is not idle: its events are written between replies, while it waits
//! for the next request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use gradebook_proto::codec::write_frame;
use gradebook_proto::{
    Command, Encoding, ErrorCode, FrameCodec, FrameError, Id, ReplyOf, Request, Secret, WireError,
};
use gradebook_store::Queued;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Limits;
use crate::context::{Effect, Origin, Outcome, State, Transport};
use crate::dispatch::execute;
use crate::facts::{Flow, facts};
use crate::handler::Data;
use crate::session::{Session, TokenHash};
use crate::watch::{Next, Replayed, Watcher};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// The first read after a pause: most requests are small.
const IDLE_CHUNK: usize = 2 * 1024;
/// Replies are written out once this much is pending, so a long pipeline
/// cannot make the output buffer grow without bound.
const FLUSH_AT: usize = 64 * 1024;
/// How long a watching connection waits before it looks again at its
/// deadlines (it has none but a partial request's).
const WATCHING_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// The most requests one connection has running at once (writes waiting
/// for their commit); a longer pipeline waits for them.
const MAX_PIPELINED: usize = 1024;

/// Serves one connection until the client leaves, a limit closes it, or the
/// server shuts down (between requests: a request in flight is finished).
pub async fn serve<S>(stream: S, peer: SocketAddr, state: Arc<State>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(stream, peer, state.limits.clone(), state.clock.clone());
    // Requests started ahead of their turn, oldest first.
    let mut pending: VecDeque<Pending> = VecDeque::new();
    loop {
        let incoming = match conn.buffered_request() {
            Some(incoming) => incoming,
            None => {
                // Everything buffered has started: finish it, then send the
                // replies and wait for more.
                if conn.settle(&mut pending, &state).await.is_err() {
                    return;
                }
                match conn.read_request(&shutdown, &state).await {
                    Some(incoming) => incoming,
                    None => return,
                }
            }
        };
        let (id, command, token) = match incoming {
            Incoming::Request { id, command, token } => (id, command, token),
            Incoming::Refused { id, error } => {
                if conn.settle(&mut pending, &state).await.is_err()
                    || conn.write_reply(id.as_ref(), Err(&error)).await.is_err()
                {
                    return;
                }
                continue;
            }
            Incoming::Close { error } => {
                if conn.settle(&mut pending, &state).await.is_ok() {
                    if let Some(e) = error {
                        let _ = conn.write_reply(None, Err(&e)).await;
                    }
                    let _ = conn.flush().await;
                }
                return;
            }
        };

        let flow = facts(&command).flow;
        // A write with more requests behind it, or writes ahead of it
        // still committing, joins the pipeline: it starts now, on its
        // own task, and the next request waits only until it is queued.
        let joins = flow != Flow::Alone
            && (!pending.is_empty() || conn.more_buffered())
            && pending.len() < MAX_PIPELINED
            && pending.back().is_none_or(|p| p.flow == Flow::Ahead);
        if joins {
            let ahead = !pending.is_empty();
            let (queued, told) = Queued::new();
            let task = tokio::spawn(run(
                state.clone(),
                command.clone(),
                token.clone(),
                conn.session_token(),
                peer,
                Some(queued),
            ));
            // Either queued, or finished without writing.
            let was_queued = told.await.is_ok();
            if was_queued || !ahead {
                pending.push_back(Pending { id, flow, task });
                continue;
            }
            // It failed before it was queued, perhaps only because the
            // writes ahead of it are not committed yet: it runs again,
            // alone, once they are.
            task.abort();
        }
        if conn.settle(&mut pending, &state).await.is_err() {
            return;
        }
        let session = conn.session_token();
        let outcome = run(state.clone(), command, token, session, peer, None).await;
        if conn.answer(id, outcome, &state).await.is_err() {
            return;
        }
    }
}

/// Runs one request over TCP.
async fn run(
    state: Arc<State>,
    command: Command,
    token: Option<Secret>,
    session: Option<TokenHash>,
    peer: SocketAddr,
    queued: Option<Arc<Queued>>,
) -> Outcome {
    let from = Origin {
        token: token.as_ref(),
        connection_session: session.as_ref(),
        peer,
        transport: Transport::Tcp,
        udp: None,
        queued,
    };
    execute(&state, command, from).await
}

/// A request that started before the replies ahead of it were written.
struct Pending {
    id: Option<Id>,
    flow: Flow,
    task: JoinHandle<Outcome>,
}

/// What [`Connection::read_request`] gives.
enum Incoming {
    /// A request to run.
    Request {
        id: Option<Id>,
        command: Command,
        token: Option<Secret>,
    },
    /// A message that is no valid request: its error is the reply.
    Refused { id: Option<Id>, error: WireError },
    /// The connection must close, after this error if there is one.
    Close { error: Option<WireError> },
}

/// The socket with its buffers and framing, and what the connection knows
/// of its client: how it speaks, who it is, and its deadlines.
struct Connection<S> {
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
    peer: SocketAddr,
    /// Bytes read and not yet cut into requests.
    input: BytesMut,
    /// Replies not yet written.
    output: BytesMut,
    codec: FrameCodec,
    session: Option<Arc<Session>>,
    limits: Limits,
    clock: Clock,
    /// Since when the connection has been without a session.
    unauthenticated_since: Instant,
    /// When the last batch of requests was answered.
    last_request: Instant,
    /// When the first byte of a request still incomplete arrived.
    partial_since: Option<Instant>,
    /// Whether a request was read since the last wait for input.
    answered: bool,
    /// Its live events, once it watches.
    watching: Option<Watcher>,
}

/// What the feed brings a watching connection next; never, for the others.
async fn next_event(watching: &mut Option<Watcher>) -> Next {
    match watching {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(stream: S, peer: SocketAddr, limits: Limits, clock: Clock) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        let now = clock.now();
        Connection {
            reader,
            writer,
            peer,
            // Buffers are allocated when data comes and given back when the
            // connection goes idle: 10,000 idle connections cost little.
            input: BytesMut::new(),
            output: BytesMut::new(),
            codec: FrameCodec::new(Encoding::Json, limits.pre_auth_max_frame),
            session: None,
            limits,
            clock,
            unauthenticated_since: now,
            last_request: now,
            partial_since: None,
            answered: false,
            watching: None,
        }
    }

    /// The next request already read, if a whole one is buffered.
    fn buffered_request(&mut self) -> Option<Incoming> {
        let frame = match self.codec.decode(&mut self.input) {
            Ok(Some(frame)) => frame,
            Ok(None) => return None,
            Err(FrameError::TooLarge { max }) => {
                tracing::info!(peer = %self.peer, max, "message over the size limit; closing");
                let error = WireError::new(
                    ErrorCode::FrameTooLarge,
                    format!("message longer than {max} bytes; closing the connection"),
                );
                return Some(Incoming::Close { error: Some(error) });
            }
            Err(FrameError::Io(_)) => return Some(Incoming::Close { error: None }),
        };
        self.answered = true;
        let mut request = match Request::decode(self.codec.encoding(), &frame) {
            Ok(r) => r,
            Err((id, error)) => return Some(Incoming::Refused { id, error }),
        };
        let id = request.id.take();
        Some(match request.command() {
            Ok(command) => Incoming::Request {
                id,
                command,
                token: request.token.take(),
            },
            Err(error) => Incoming::Refused { id, error },
        })
    }

    /// Whether bytes of another request are already buffered.
    fn more_buffered(&self) -> bool {
        !self.input.is_empty()
    }

    /// Writes the replies so far, then waits for the next request; `None`
    /// when the client left, a deadline passed, or the server shuts down.
    async fn read_request(
        &mut self,
        shutdown: &CancellationToken,
        state: &State,
    ) -> Option<Incoming> {
        loop {
            if self.replay(state).await.is_err() {
                return None;
            }
            let now = self.clock.now();
            if std::mem::take(&mut self.answered) {
                self.last_request = now;
                self.partial_since = (!self.input.is_empty()).then_some(now);
            } else if !self.input.is_empty() && self.partial_since.is_none() {
                self.partial_since = Some(now);
            }
            self.flush().await.ok()?;

            let limits = &self.limits;
            let mut deadline = match self.partial_since {
                Some(t) => t + limits.request_timeout,
                // A watcher waits for events, not requests.
                None if self.watching.is_some() => now + WATCHING_WAIT,
                None => self.last_request + limits.idle_timeout,
            };
            if self.session.is_none() {
                deadline = deadline.min(self.unauthenticated_since + limits.login_timeout);
            }
            if self.input.is_empty() {
                self.input = BytesMut::new();
                if self.output.capacity() > FLUSH_AT {
                    self.output = BytesMut::new();
                }
                self.input.reserve(IDLE_CHUNK);
            } else {
                self.input.reserve(READ_CHUNK);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = self.clock.sleep_until(deadline) => {
                    if self.watching.is_some() && self.partial_since.is_none() {
                        continue;
                    }
                    tracing::debug!(peer = %self.peer, "connection timed out");
                    return None;
                }
                next = next_event(&mut self.watching) => {
                    self.deliver(next, state);
                    continue;
                }
                read = self.reader.read_buf(&mut self.input) => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
            }
            if let Some(incoming) = self.buffered_request() {
                return Some(incoming);
            }
        }
    }

    /// Queues what the feed brought a watching connection (see
    /// [`Watcher::deliver`]); the watch ends with `lagged`, or with the
    /// session that asked for it.
    fn deliver(&mut self, next: Next, state: &State) {
        let encoding = self.codec.encoding();
        if let Some(w) = &mut self.watching
            && !w.deliver(next, state, encoding, &mut self.output, FLUSH_AT)
        {
            self.watching = None;
        }
    }

    /// Sends the log's events a new watch asked for with `since` (see
    /// [`Watcher::replay`]), writing them out as they pile up. If the log
    /// cannot be read, the watcher is told `lagged` and dropped: it may
    /// watch again. Errors only if the client is gone.
    async fn replay(&mut self, state: &State) -> std::io::Result<()> {
        let encoding = self.codec.encoding();
        loop {
            let Some(w) = &mut self.watching else {
                return Ok(());
            };
            match w.replay(state, encoding, &mut self.output, FLUSH_AT).await {
                Replayed::Done => return Ok(()),
                Replayed::More => self.flush().await?,
                Replayed::Failed => {
                    self.watching = None;
                    return self.flush().await;
                }
            }
        }
    }

    /// Queues a reply in the connection's encoding; writes the queue out
    /// once it is long. If its data cannot be encoded, an `internal` error
    /// goes instead (logged).
    async fn write_reply(
        &mut self,
        id: Option<&Id>,
        result: Result<&Data, &WireError>,
    ) -> std::io::Result<()> {
        push(&self.codec, id, result, &mut self.output);
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Replies to a request that ran, then does what its outcome asks.
    async fn answer(
        &mut self,
        id: Option<Id>,
        outcome: Outcome,
        state: &State,
    ) -> std::io::Result<()> {
        self.write_reply(id.as_ref(), outcome.result.as_ref())
            .await?;
        self.apply(outcome.effect, state);
        Ok(())
    }

    /// Waits for the pipelined requests, in order, and replies to each.
    async fn settle(
        &mut self,
        pending: &mut VecDeque<Pending>,
        state: &State,
    ) -> std::io::Result<()> {
        while let Some(p) = pending.pop_front() {
            let outcome = p.task.await.map_err(std::io::Error::other)?;
            self.answer(p.id, outcome, state).await?;
        }
        Ok(())
    }

    /// Writes the pending output, giving up on a client that does not read.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let (writer, output) = (&mut self.writer, &self.output);
        let result = timeout(self.limits.request_timeout, async {
            writer.write_all(output).await?;
            writer.flush().await
        })
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        self.output.clear();
        result
    }

    fn session_token(&self) -> Option<TokenHash> {
        self.session.as_ref().map(|s| s.token_hash)
    }

    /// Does what a reply's effect asks, once the reply is in the output.
    fn apply(&mut self, effect: Effect, state: &State) {
        match effect {
            Effect::None => {}
            Effect::SwitchEncoding(e) => self.codec.set_encoding(e),
            Effect::LoggedIn(s) => {
                self.session = Some(s);
                self.codec.set_max_frame(self.limits.max_frame);
            }
            Effect::Watch(watch) => {
                // A new watch replaces the one before.
                self.watching = Watcher::start(&watch);
                // A token sent in the envelope logs the watching connection
                // in: its events are that session's.
                if self.session.is_none() {
                    self.session = Some(watch.session);
                    self.codec.set_max_frame(self.limits.max_frame);
                }
            }
            Effect::Unwatch => self.watching = None,
            // Only if it is this connection's session that ended: a logout
            // sent with another session's token in its envelope leaves this
            // one logged in.
            Effect::LoggedOut
                if self
                    .session
                    .as_ref()
                    .is_none_or(|s| !state.sessions.is_live(&s.token_hash)) =>
            {
                self.session = None;
                // Events are for the session that asked for them.
                self.watching = None;
                self.codec.set_max_frame(self.limits.pre_auth_max_frame);
                // A fresh minute to log in again, counted from now.
                self.unauthenticated_since = self.clock.now();
            }
            Effect::LoggedOut => {}
        }
    }
}

/// Appends a reply to the output buffer in the connection's encoding; if
/// its data cannot be encoded, an `internal` error instead (logged).
fn push(
    codec: &FrameCodec,
    id: Option<&Id>,
    result: Result<&Data, &WireError>,
    output: &mut BytesMut,
) {
    let start = output.len();
    if let Err(e) = codec.encode(&ReplyOf { id, result }, output) {
        tracing::error!(error = %e, "could not encode a reply");
        output.truncate(start);
        let internal = WireError::internal();
        let fallback: ReplyOf<'_, Data> = ReplyOf {
            id,
            result: Err(&internal),
        };
        let _ = write_frame(codec.encoding(), &fallback, output);
    }
}
