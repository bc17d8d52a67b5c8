//! One TCP (or TLS) connection: frames in, replies out, in order.
//!
//! Requests are answered one after the other, so replies keep the order of
//! requests; a client that pipelines gets its replies written in batches:
//! the connection answers every request already buffered before it flushes.
//! Every wait is bounded: a connection idle for too long, a request
//! trickling in too slowly, a client that never logs in, or one that does
//! not read its replies is closed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use gradebook_proto::codec::write_frame;
use gradebook_proto::{Encoding, ErrorCode, FrameCodec, FrameError, Reply, WireError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Effect, State, Transport, dispatch};
use crate::session::Session;

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
    let mut codec = FrameCodec::new(Encoding::Json, limits.pre_auth_max_frame);
    // Buffers are allocated when data comes and given back when the
    // connection goes idle: 10,000 idle connections cost little memory.
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    let mut session: Option<Arc<Session>> = None;
    let connected_at = Instant::now();
    // Since when the connection has been without a session.
    let mut unauthenticated_since = connected_at;
    let mut last_request = connected_at;
    // When the first byte of a request still incomplete arrived.
    let mut partial_since: Option<Instant> = None;

    loop {
        // Answer everything already buffered.
        let mut answered = false;
        loop {
            let frame = match codec.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(FrameError::TooLarge { max }) => {
                    tracing::info!(%peer, max, "message over the size limit; closing");
                    let e = WireError::new(
                        ErrorCode::FrameTooLarge,
                        format!("message longer than {max} bytes; closing the connection"),
                    );
                    push(&codec, &Reply::error(None, e), &mut output);
                    let _ = flush(&mut writer, &mut output, limits.request_timeout).await;
                    return;
                }
                Err(FrameError::Io(_)) => return,
            };
            answered = true;
            let encoding = codec.encoding();
            let token = session.as_ref().map(|s| s.token_hash);
            let (reply, effect) = dispatch(
                &state,
                &frame,
                encoding,
                token.as_ref(),
                peer,
                Transport::Tcp,
            )
            .await;
            push(&codec, &reply, &mut output);
            if output.len() >= FLUSH_AT
                && flush(&mut writer, &mut output, limits.request_timeout)
                    .await
                    .is_err()
            {
                return;
            }
            match effect {
                Effect::None => {}
                Effect::SwitchEncoding(e) => codec.set_encoding(e),
                Effect::LoggedIn(s) => {
                    session = Some(s);
                    codec.set_max_frame(limits.max_frame);
                }
                // Only if it is this connection's session that ended: a
                // logout sent with another session's token in its envelope
                // leaves this one logged in.
                Effect::LoggedOut
                    if session
                        .as_ref()
                        .is_none_or(|s| !state.sessions.is_live(&s.token_hash)) =>
                {
                    session = None;
                    codec.set_max_frame(limits.pre_auth_max_frame);
                    // A fresh minute to log in again, counted from now.
                    unauthenticated_since = Instant::now();
                }
                Effect::LoggedOut => {}
            }
        }
        let now = Instant::now();
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
        if session.is_none() {
            deadline = deadline.min(unauthenticated_since + limits.login_timeout);
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
            read = timeout_at(deadline, reader.read_buf(&mut input)) => match read {
                Err(_) => {
                    tracing::debug!(%peer, "connection timed out");
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            },
        }
    }
}

/// Appends a reply to the output buffer in the connection's encoding.
fn push(codec: &FrameCodec, reply: &Reply, output: &mut BytesMut) {
    if let Err(e) = codec.encode(reply, output) {
        tracing::error!(error = %e, "could not encode a reply");
        let fallback = Reply::error(reply.id.clone(), WireError::internal());
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
