//! The client side of QUIC (protocol §10): one bidirectional stream per
//! request, its end framing the request and then the reply.
//!
//! The certificate is trusted exactly as over TLS TCP (the same verifier,
//! [`crate::tls`]), with the ALPN `gradebook/1` added. Requests queued
//! together go out each on its own stream when flushed; their replies are
//! read in the order the requests were queued, so [`crate::Client`]'s
//! pipelining works unchanged. When the server's stream credit is used up,
//! the next stream waits for an earlier one to finish.
//!
//! A `watch`'s events come on a unidirectional stream the server opens for
//! that watch, framed as over TCP (JSON Lines, or length-prefixed
//! MessagePack: its first byte tells, `{` or a length's first byte);
//! [`QuicLink::next_event_frame`] reads them, one stream after the other
//! (a new watch's stream begins once the previous one has ended), so that
//! [`crate::Client::next_event`] works as over TCP.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use gradebook_proto::{Encoding, FrameCodec, FrameError};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, RecvStream, VarInt};
use rustls::pki_types::CertificateDer;
use tokio_util::codec::Decoder;

use crate::tls::{self, Trust};
use crate::{ClientError, MAX_REPLY};

/// The application protocol negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"gradebook/1";

/// Address-validation tokens the servers gave (NEW_TOKEN), kept for every
/// connection of this process: a new connection to a server seen before
/// skips the server's Retry round trip. One store per server address
/// (quinn's keys them by name only, and servers on one host share a name).
static TOKENS: std::sync::LazyLock<Mutex<HashMap<SocketAddr, Arc<quinn::TokenMemoryCache>>>> =
    std::sync::LazyLock::new(Mutex::default);

/// The most servers whose tokens are kept; past that, all are forgotten.
const TOKEN_SERVERS: usize = 256;

/// The token store for the server at `remote`.
fn tokens(remote: SocketAddr) -> Arc<quinn::TokenMemoryCache> {
    // A poisoned lock still holds a usable map: each change is one insert
    // or a clear.
    let mut all = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    if all.len() >= TOKEN_SERVERS && !all.contains_key(&remote) {
        all.clear();
    }
    all.entry(remote).or_default().clone()
}

/// How long an idle connection lasts, as the server's idle timeout (the
/// smaller of both sides' applies).
const IDLE: Duration = Duration::from_secs(300);

/// Event streams the server may have open towards the client at once: one
/// per watch, and a new watch's begins while the last one's end is still
/// on its way.
const EVENT_STREAMS: u32 = 4;

/// A QUIC connection and the requests on it.
pub(crate) struct QuicLink {
    /// Its UDP socket, kept as long as the connection.
    _endpoint: Endpoint,
    conn: Connection,
    /// Requests encoded, not sent yet.
    queued: VecDeque<Vec<u8>>,
    /// Streams whose request went, their replies not read yet, oldest
    /// first.
    sent: VecDeque<RecvStream>,
    /// The event stream being read, once the server opened one.
    events: Option<EventStream>,
}

/// One watch's event stream, and what was read of it but not cut into
/// frames yet.
struct EventStream {
    recv: RecvStream,
    input: BytesMut,
    /// Known from its first byte.
    codec: Option<FrameCodec>,
}

impl std::fmt::Debug for QuicLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicLink")
            .field("remote", &self.conn.remote_address())
            .field("queued", &self.queued.len())
            .field("sent", &self.sent.len())
            .field("watching", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

/// Connects to `address` (`HOST:PORT`, the QUIC port) and completes the
/// handshake; returns the link and the certificate's fingerprint.
pub(crate) async fn connect(
    address: &str,
    trust: &Trust,
) -> Result<(QuicLink, String), ClientError> {
    let remote = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no address for {address}"),
            ))
        })?;
    let local: SocketAddr = if remote.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = Endpoint::client(local)?;
    let (mut tls_config, seen) = tls::client_config(trust)?;
    tls_config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(Arc::new(tls_config))
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut transport = quinn::TransportConfig::default();
    // The server opens no request stream, only event streams (one per
    // watch).
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(EVENT_STREAMS))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE).map_err(|e| ClientError::Tls(e.to_string()))?,
        ));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config
        .transport_config(Arc::new(transport))
        .token_store(tokens(remote));
    let name = tls::server_name(address)?.to_str().into_owned();
    let connecting = endpoint
        .connect_with(config, remote, &name)
        .map_err(|e| ClientError::Tls(format!("cannot start QUIC: {e}")))?;
    let conn = connecting
        .await
        .map_err(|e| tls::handshake_error(trust, &seen, e))?;
    let fingerprint = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().map(|leaf| tls::fingerprint(leaf)))
        .ok_or_else(|| ClientError::Tls("the server sent no certificate".into()))?;
    let link = QuicLink {
        _endpoint: endpoint,
        conn,
        queued: VecDeque::new(),
        sent: VecDeque::new(),
        events: None,
    };
    Ok((link, fingerprint))
}

impl QuicLink {
    /// Queues one request, already encoded without framing.
    pub(crate) fn queue(&mut self, request: Vec<u8>) {
        self.queued.push_back(request);
    }

    /// Sends the queued requests, each on a stream of its own; waits (up to
    /// `timeout` for each) for stream credit when the server's is used up.
    pub(crate) async fn flush(&mut self, timeout: Duration) -> Result<(), ClientError> {
        while let Some(request) = self.queued.pop_front() {
            self.send(&request, timeout).await?;
        }
        Ok(())
    }

    /// Opens a stream and writes `request` on it, then finishes it.
    async fn send(&mut self, request: &[u8], timeout: Duration) -> Result<(), ClientError> {
        let (mut send, recv) = tokio::time::timeout(timeout, self.conn.open_bi())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(io)?;
        send.write_all(request).await.map_err(io)?;
        // Only fails if already finished: it was not.
        let _ = send.finish();
        self.sent.push_back(recv);
        Ok(())
    }

    /// Sends raw bytes as one request (after the queued ones).
    pub(crate) async fn send_raw(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.flush(timeout).await?;
        self.send(bytes, timeout).await
    }

    /// Reads the reply to the oldest request sent.
    pub(crate) async fn read_reply(&mut self) -> Result<Vec<u8>, ClientError> {
        let Some(mut recv) = self.sent.pop_front() else {
            return Err(ClientError::Protocol(
                "no request is waiting for a reply".into(),
            ));
        };
        recv.read_to_end(MAX_REPLY).await.map_err(|e| match e {
            quinn::ReadToEndError::TooLong => {
                ClientError::Protocol(format!("reply over {MAX_REPLY} bytes"))
            }
            quinn::ReadToEndError::Read(e) => io(e),
        })
    }

    /// The next frame of the watch's events, in the encoding the frame
    /// came in, waiting for the server to open an event stream if none is
    /// open, and going on to the next one when a stream ends. Cancel-safe:
    /// what was read stays for the next call. A stream reset by the server
    /// (its events were not read in time) is an error; the next call
    /// waits for a new watch's stream.
    pub(crate) async fn next_event_frame(&mut self) -> Result<(Encoding, BytesMut), ClientError> {
        loop {
            let stream = match &mut self.events {
                Some(stream) => stream,
                None => {
                    let recv = self.conn.accept_uni().await.map_err(io)?;
                    self.events.insert(EventStream {
                        recv,
                        input: BytesMut::new(),
                        codec: None,
                    })
                }
            };
            match stream.next_frame().await {
                Ok(Some(frame)) => return Ok(frame),
                // Finished (`unwatch`, a new watch, `lagged`): the next
                // watch's stream, when there is one.
                Ok(None) => self.events = None,
                Err(e) => {
                    self.events = None;
                    return Err(e);
                }
            }
        }
    }

    /// Closes the connection at once (the server's streams end too).
    pub(crate) fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"bye");
    }
}

impl Drop for QuicLink {
    fn drop(&mut self) {
        self.close();
    }
}

impl EventStream {
    /// The next whole frame; `None` at the stream's end.
    async fn next_frame(&mut self) -> Result<Option<(Encoding, BytesMut)>, ClientError> {
        loop {
            if let Some(codec) = &mut self.codec {
                match codec.decode(&mut self.input) {
                    Ok(Some(frame)) => return Ok(Some((codec.encoding(), frame))),
                    Ok(None) => {}
                    Err(FrameError::TooLarge { max }) => {
                        return Err(ClientError::Protocol(format!("event over {max} bytes")));
                    }
                    Err(FrameError::Io(e)) => return Err(e.into()),
                }
            }
            match self.recv.read_chunk(16 * 1024, true).await.map_err(io)? {
                Some(chunk) => self.input.extend_from_slice(&chunk.bytes),
                None if self.input.is_empty() => return Ok(None),
                None => {
                    return Err(ClientError::Protocol(
                        "an event stream ended in the middle of a message".into(),
                    ));
                }
            }
            if self.codec.is_none()
                && let Some(first) = self.input.first()
            {
                // A JSON line is an object; a MessagePack frame starts with
                // its 4-byte big-endian length, never `{` (that would be a
                // frame of nearly 2 GiB).
                let encoding = if *first == b'{' {
                    Encoding::Json
                } else {
                    Encoding::Msgpack
                };
                self.codec = Some(FrameCodec::new(encoding, MAX_REPLY));
            }
        }
    }
}

/// A QUIC failure as the I/O error it amounts to (the connection or the
/// stream is gone).
fn io(e: impl Into<std::io::Error>) -> ClientError {
    ClientError::Io(e.into())
}
