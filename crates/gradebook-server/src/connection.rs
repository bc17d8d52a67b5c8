//! One TCP (or TLS) connection: frames in, replies out, in order.
//!
//! Requests behave as if answered one after the other, and replies keep the
//! order of requests; a client that pipelines gets its replies written in
//! batches: the connection answers every request already buffered before
//! it flushes. Pipelined writes share commits: a write starts while the
//! writes ahead of it still wait for theirs (see [`Flow`]), and its reply
//! is written once its own commit is done.
//! Every wait is bounded: a connection idle for too long, a request
//! trickling in too slowly, a client that never logs in, or one that does
//! not read its replies is closed.

use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::VecDeque;

use bytes::BytesMut;
use gradebook_proto::codec::write_frame;
use gradebook_proto::{
    Command, Encoding, ErrorCode, FrameCodec, FrameError, Id, ReplyOf, Request, Secret, WireError,
};
use gradebook_store::Queued;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use tokio::task::JoinHandle;

use crate::dispatch::{Effect, Origin, Outcome, State, Transport, execute};
use crate::facts::{Flow, facts};
use crate::handler::Data;
use crate::session::{Session, TokenHash};

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// The first read after a pause: most requests are small.
const IDLE_CHUNK: usize = 2 * 1024;
/// Replies are written out once this much is pending, so a long pipeline
/// cannot make the output buffer grow without bound.
const FLUSH_AT: usize = 64 * 1024;

/// Serves one connection until the client leaves, a limit closes it, or the
/// server shuts down (between requests: a request in flight is finished).
pub async fn serve<S>(stream: S, peer: SocketAddr, state: Arc<State>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = &state.limits;
    let mut link = Link {
        codec: FrameCodec::new(Encoding::Json, limits.pre_auth_max_frame),
        session: None,
        unauthenticated_since: state.clock.now(),
    };
    // Buffers are allocated when data comes and given back when the
    // connection goes idle: 10,000 idle connections cost little memory.
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    let mut last_request = link.unauthenticated_since;
    // When the first byte of a request still incomplete arrived.
    let mut partial_since: Option<Instant> = None;

    loop {
        // Answer everything already buffered.
        let mut answered = false;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            let frame = match link.codec.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(FrameError::TooLarge { max }) => {
                    tracing::info!(%peer, max, "message over the size limit; closing");
                    if settle(&mut pending, &mut link, &state, &mut output)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let e = WireError::new(
                        ErrorCode::FrameTooLarge,
                        format!("message longer than {max} bytes; closing the connection"),
                    );
                    push(&link.codec, None, Err(&e), &mut output);
                    let _ = flush(&mut writer, &mut output, limits.request_timeout).await;
                    return;
                }
                Err(FrameError::Io(_)) => return,
            };
            answered = true;
            let mut request = match Request::decode(link.codec.encoding(), &frame) {
                Ok(r) => r,
                Err((id, e)) => {
                    if settle(&mut pending, &mut link, &state, &mut output)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    push(&link.codec, id.as_ref(), Err(&e), &mut output);
                    continue;
                }
            };
            let id = request.id.take();
            let command = match request.command() {
                Ok(c) => c,
                Err(e) => {
                    if settle(&mut pending, &mut link, &state, &mut output)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    push(&link.codec, id.as_ref(), Err(&e), &mut output);
                    continue;
                }
            };
            let flow = facts(&command).flow;
            let token = request.token.take();
            // A write with more requests behind it, or writes ahead of it
            // still committing, joins the pipeline: it starts now, on its
            // own task, and the next request waits only until it is queued.
            let joins = flow != Flow::Alone
                && (!pending.is_empty() || !input.is_empty())
                && pending.len() < MAX_PIPELINED
                && pending.back().is_none_or(|p| p.flow == Flow::Ahead);
            if joins {
                let ahead = !pending.is_empty();
                let (queued, told) = Queued::new();
                let task = tokio::spawn(run(
                    state.clone(),
                    command.clone(),
                    token.clone(),
                    link.session_token(),
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
            if settle(&mut pending, &mut link, &state, &mut output)
                .await
                .is_err()
            {
                return;
            }
            let outcome = run(
                state.clone(),
                command,
                token,
                link.session_token(),
                peer,
                None,
            )
            .await;
            push(
                &link.codec,
                id.as_ref(),
                outcome.result.as_ref(),
                &mut output,
            );
            link.apply(outcome.effect, &state);
            if output.len() >= FLUSH_AT
                && flush(&mut writer, &mut output, limits.request_timeout)
                    .await
                    .is_err()
            {
                return;
            }
        }
        if settle(&mut pending, &mut link, &state, &mut output)
            .await
            .is_err()
        {
            return;
        }
        let now = state.clock.now();
        if answered {
            last_request = now;
            partial_since = (!input.is_empty()).then_some(now);
        } else if !input.is_empty() && partial_since.is_none() {
            partial_since = Some(now);
        }
        if flush(&mut writer, &mut output, limits.request_timeout)
            .await
            .is_err()
        {
            return;
        }

        let mut deadline = match partial_since {
            Some(t) => t + limits.request_timeout,
            None => last_request + limits.idle_timeout,
        };
        if link.session.is_none() {
            deadline = deadline.min(link.unauthenticated_since + limits.login_timeout);
        }
        if input.is_empty() {
            input = BytesMut::new();
            if output.capacity() > FLUSH_AT {
                output = BytesMut::new();
            }
            input.reserve(IDLE_CHUNK);
        } else {
            input.reserve(READ_CHUNK);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.clock.sleep_until(deadline) => {
                tracing::debug!(%peer, "connection timed out");
                return;
            }
            read = reader.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// The most requests one connection has running at once (writes waiting
/// for their commit); a longer pipeline waits for them.
const MAX_PIPELINED: usize = 1024;

/// A request that started before the replies ahead of it were written.
struct Pending {
    id: Option<Id>,
    flow: Flow,
    task: JoinHandle<Outcome>,
}

/// What the connection knows of its client: how it speaks, and who it is.
struct Link {
    codec: FrameCodec,
    session: Option<Arc<Session>>,
    /// Since when the connection has been without a session.
    unauthenticated_since: Instant,
}

impl Link {
    fn session_token(&self) -> Option<TokenHash> {
        self.session.as_ref().map(|s| s.token_hash)
    }

    /// Does what a reply's effect asks, once the reply is in the output.
    fn apply(&mut self, effect: Effect, state: &State) {
        let limits = &state.limits;
        match effect {
            Effect::None => {}
            Effect::SwitchEncoding(e) => self.codec.set_encoding(e),
            Effect::LoggedIn(s) => {
                self.session = Some(s);
                self.codec.set_max_frame(limits.max_frame);
            }
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
                self.codec.set_max_frame(limits.pre_auth_max_frame);
                // A fresh minute to log in again, counted from now.
                self.unauthenticated_since = state.clock.now();
            }
            Effect::LoggedOut => {}
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

/// Waits for the pipelined requests, in order, and appends their replies.
async fn settle(
    pending: &mut VecDeque<Pending>,
    link: &mut Link,
    state: &State,
    output: &mut BytesMut,
) -> Result<(), tokio::task::JoinError> {
    while let Some(p) = pending.pop_front() {
        let outcome = p.task.await?;
        push(&link.codec, p.id.as_ref(), outcome.result.as_ref(), output);
        link.apply(outcome.effect, state);
    }
    Ok(())
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

/// Writes the pending output, giving up on a client that does not read.
async fn flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    output: &mut BytesMut,
    limit: std::time::Duration,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    let result = timeout(limit, async {
        writer.write_all(output).await?;
        writer.flush().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    output.clear();
    result
}
