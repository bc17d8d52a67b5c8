//! An async client for the gradebook protocol, over TCP or TLS 1.3, or
//! over UDP datagrams ([`UdpClient`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), gradebook_client::ClientError> {
//! use gradebook_client::{Client, ConnectOptions, Trust};
//! let mut client = Client::connect(&ConnectOptions::tls("localhost:7302", Trust::Tofu)).await?;
//! client.login("admin", "a long password").await?;
//! let data = client.call("promotion.list", serde_json::json!({})).await?;
//! # Ok(()) }
//! ```
//!
//! [`Client::call`] sends one request and waits for its reply;
//! [`Client::send`] and [`Client::recv`] pipeline: send many, then read the
//! replies, which come back in order.

#![forbid(unsafe_code)]

mod tls;
mod udp;

use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use gradebook_proto::codec::write_frame;
use gradebook_proto::data::Login;
use gradebook_proto::{Encoding, FrameCodec, FrameError, Id, Reply, Request, Secret, WireError};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

pub use tls::{Trust, fingerprint};
pub use udp::{Retry, UdpClient, UdpOptions};

/// Replies can be larger than requests (a whole promotion); the client
/// still bounds what it buffers.
const MAX_REPLY: usize = 64 << 20;

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{0}")]
    Server(WireError),
    /// The connection failed or was closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// TLS set-up or verification failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered the TLS handshake with something that is not
    /// TLS, as a plaintext server does; the text is the TLS library's.
    #[error("TLS: the server's reply is not TLS ({0})")]
    NotTls(String),
    /// The server sent something that is not a reply.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No reply in time.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `HOST:PORT`.
    pub address: String,
    /// TLS and how to trust the server, or `None` for plaintext.
    pub tls: Option<Trust>,
    /// How long to wait for the connection and for each reply.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// A plaintext connection (a server started with `--plaintext`).
    pub fn plaintext(address: impl Into<String>) -> Self {
        ConnectOptions {
            address: address.into(),
            tls: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// A TLS connection, trusting the server as `trust` says.
    pub fn tls(address: impl Into<String>, trust: Trust) -> Self {
        ConnectOptions {
            address: address.into(),
            tls: Some(trust),
            timeout: Duration::from_secs(30),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A connection to a gradebook server.
pub struct Client {
    stream: Pin<Box<dyn Stream>>,
    codec: FrameCodec,
    input: BytesMut,
    output: BytesMut,
    next_id: i64,
    timeout: Duration,
    fingerprint: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("encoding", &self.codec.encoding())
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects (and completes the TLS handshake).
    pub async fn connect(options: &ConnectOptions) -> Result<Client, ClientError> {
        let tcp = tokio::time::timeout(options.timeout, TcpStream::connect(&options.address))
            .await
            .map_err(|_| ClientError::Timeout(options.timeout))??;
        tcp.set_nodelay(true)?;
        let (stream, fingerprint): (Pin<Box<dyn Stream>>, _) = match &options.tls {
            None => (Box::pin(tcp), None),
            Some(trust) => {
                let host = options
                    .address
                    .rsplit_once(':')
                    .map_or(options.address.as_str(), |(h, _)| h);
                let (s, fp) = tokio::time::timeout(options.timeout, tls::connect(tcp, host, trust))
                    .await
                    .map_err(|_| ClientError::Timeout(options.timeout))??;
                (Box::pin(s), Some(fp))
            }
        };
        Ok(Client {
            stream,
            codec: FrameCodec::new(Encoding::Json, MAX_REPLY),
            input: BytesMut::with_capacity(8192),
            output: BytesMut::with_capacity(8192),
            next_id: 1,
            timeout: options.timeout,
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint of the server's certificate (TLS only), as
    /// `SHA256:` and hex.
    pub fn server_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Queues a request without waiting for its reply; returns its id.
    /// Call [`Client::recv`] as many times to read the replies, in order.
    pub fn send(&mut self, cmd: &str, args: Value) -> Result<Id, ClientError> {
        let id = Id::Int(self.next_id);
        self.next_id += 1;
        let request = Request {
            id: Some(id.clone()),
            cmd: cmd.to_owned(),
            args: Some(args),
            token: None,
            pad: None,
        };
        self.send_request(&request)?;
        Ok(id)
    }

    /// Queues a request exactly as given.
    pub fn send_request(&mut self, request: &Request) -> Result<(), ClientError> {
        write_frame(self.codec.encoding(), request, &mut self.output).map_err(ClientError::Protocol)
    }

    /// Writes the queued requests.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Reads the next reply (flushing queued requests first).
    pub async fn recv(&mut self) -> Result<Reply, ClientError> {
        self.flush().await?;
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.read_reply())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            match self.codec.decode(&mut self.input) {
                Ok(Some(frame)) => {
                    return Reply::decode(self.codec.encoding(), &frame)
                        .map_err(ClientError::Protocol);
                }
                Ok(None) => {}
                Err(FrameError::TooLarge { max }) => {
                    return Err(ClientError::Protocol(format!("reply over {max} bytes")));
                }
                Err(FrameError::Io(e)) => return Err(e.into()),
            }
            self.input.reserve(16 * 1024);
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Sends one command and returns its data, or the server's error as
    /// [`ClientError::Server`].
    pub async fn call(&mut self, cmd: &str, args: Value) -> Result<Value, ClientError> {
        self.send(cmd, args)?;
        self.recv().await?.result.map_err(ClientError::Server)
    }

    /// Switches the connection to MessagePack (`hello {"encoding":"msgpack"}`).
    pub async fn use_encoding(&mut self, encoding: Encoding) -> Result<(), ClientError> {
        self.call(
            "hello",
            serde_json::json!({ "encoding": encoding.as_str() }),
        )
        .await?;
        self.codec.set_encoding(encoding);
        Ok(())
    }

    /// Logs in; the connection is then authenticated.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<Login, ClientError> {
        let data = self
            .call(
                "auth.login",
                serde_json::json!({ "username": username, "password": password }),
            )
            .await?;
        serde_json::from_value(data).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends one command authenticated by `token` in its envelope rather
    /// than by the connection's login: how a saved session token is reused.
    pub async fn call_with_token(
        &mut self,
        token: &Secret,
        cmd: &str,
        args: Value,
    ) -> Result<Value, ClientError> {
        let id = Id::Int(self.next_id);
        self.next_id += 1;
        let request = Request {
            id: Some(id),
            cmd: cmd.to_owned(),
            args: Some(args),
            token: Some(token.clone()),
            pad: None,
        };
        self.send_request(&request)?;
        self.recv().await?.result.map_err(ClientError::Server)
    }

    /// Writes raw bytes (tests of malformed input).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }
}
