//! An async client for the gradebook protocol, over TCP or TLS 1.3, over
//! QUIC ([`ConnectOptions::quic`]: one stream per request, the same API),
//! or over UDP datagrams ([`UdpClient`]).
//!
//! A command goes as one of the protocol's [`call`] types and its reply
//! comes back typed:
//!
//! ```no_run
//! # async fn demo() -> Result<(), gradebook_client::ClientError> {
//! use gradebook_client::{Client, ConnectOptions, Trust};
//! use gradebook_proto::call;
//! use gradebook_proto::command::{GradeAddArgs, GradeInput, NoArgs};
//! use gradebook_proto::data::{Grade, Promotions};
//!
//! let mut client = Client::connect(&ConnectOptions::tls("localhost:7302", Trust::Tofu)).await?;
//! client.login("admin", "a long password").await?;
//! let list: Promotions = client.run(call::PromotionList(NoArgs {})).await?;
//! let grade: Grade = client
//!     .run(call::GradeAdd(GradeAddArgs {
//!         student: 12,
//!         subject: "Networks".into(),
//!         value: GradeInput::Number(14.5),
//!         coefficient: Some(2.0),
//!         label: None,
//!     }))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Client::run`] sends one command and waits for its reply;
//! [`Client::queue`] and [`Client::reply_to`] pipeline: queue many, then
//! read the replies, which come back in order. A [`Command`] is a call too,
//! its reply's data the JSON value the server sent (to show it unchanged).
//!
//! The untyped methods ([`Client::call`], [`Client::send`] and
//! [`Client::recv`]) send a command by name with arguments built by hand,
//! and hand back the reply as it came: for requests no type describes,
//! such as the malformed ones of tests.

#![forbid(unsafe_code)]

mod quic;
mod tls;
mod udp;

use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use gradebook_proto::codec::{to_datagram, write_frame};
use gradebook_proto::command::{HelloArgs, LoginArgs};
use gradebook_proto::data::Login;
use gradebook_proto::envelope::decode_event;
use gradebook_proto::{
    Call, Command, Encoding, FrameCodec, FrameError, Id, Reply, ReplyStatus, Request, Secret,
    WireError, call,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

pub use quic::ALPN;
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
    /// The server answered, but its reply's data is not what the command
    /// returns (a server of another version?).
    #[error("the reply's data is not understood: {0}")]
    Data(String),
}

/// Reads the `data` of a reply to the command named `name` into the type
/// `C` replies with: what [`Client::run`] does with data it received.
pub fn decode<C: Call>(name: &str, data: Value) -> Result<C::Reply, ClientError> {
    serde_json::from_value(data).map_err(|e| ClientError::Data(format!("{name}: {e}")))
}

/// A call queued with [`Client::queue`], waiting for its reply: read it
/// with [`Client::reply_to`], in the order the calls were queued.
#[derive(Debug)]
#[must_use = "a queued call's reply must be read, in order, with Client::reply_to"]
pub struct Queued<C> {
    id: Id,
    name: &'static str,
    call: std::marker::PhantomData<fn() -> C>,
}

impl<C> Queued<C> {
    /// The request's id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The command's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
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
    /// QUIC instead of TCP (`address` is then the QUIC address, and `tls`
    /// is required).
    pub quic: bool,
}

impl ConnectOptions {
    /// A plaintext connection (a server started with `--plaintext`).
    pub fn plaintext(address: impl Into<String>) -> Self {
        ConnectOptions {
            address: address.into(),
            tls: None,
            timeout: Duration::from_secs(30),
            quic: false,
        }
    }

    /// A TLS connection, trusting the server as `trust` says.
    pub fn tls(address: impl Into<String>, trust: Trust) -> Self {
        ConnectOptions {
            address: address.into(),
            tls: Some(trust),
            timeout: Duration::from_secs(30),
            quic: false,
        }
    }

    /// A QUIC connection to the server's QUIC address (by default its TCP
    /// port + 1), trusting its certificate as `trust` says.
    pub fn quic(address: impl Into<String>, trust: Trust) -> Self {
        ConnectOptions {
            quic: true,
            ..ConnectOptions::tls(address, trust)
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// How a [`Client`] reaches the server.
enum Link {
    /// A TCP (or TLS) byte stream, framed by the codec.
    Stream(Pin<Box<dyn Stream>>),
    /// QUIC: a stream per request (boxed: larger than a stream).
    Quic(Box<quic::QuicLink>),
}

/// A connection to a gradebook server.
pub struct Client {
    link: Link,
    codec: FrameCodec,
    input: BytesMut,
    output: BytesMut,
    next_id: i64,
    timeout: Duration,
    fingerprint: Option<String>,
    token: Option<Secret>,
    /// Event messages read while a reply was awaited (after `watch`).
    events: std::collections::VecDeque<gradebook_proto::data::Event>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("encoding", &self.codec.encoding())
            .field("quic", &self.is_quic())
            .field("fingerprint", &self.fingerprint)
            .field("token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects (and completes the TLS handshake).
    pub async fn connect(options: &ConnectOptions) -> Result<Client, ClientError> {
        let (link, fingerprint) = if options.quic {
            let Some(trust) = &options.tls else {
                return Err(ClientError::Tls(
                    "QUIC is always encrypted: give a trust (CA file, fingerprint, or TOFU)".into(),
                ));
            };
            let (link, fp) =
                tokio::time::timeout(options.timeout, quic::connect(&options.address, trust))
                    .await
                    .map_err(|_| ClientError::Timeout(options.timeout))??;
            (Link::Quic(Box::new(link)), Some(fp))
        } else {
            Self::connect_tcp(options).await?
        };
        Ok(Client {
            link,
            codec: FrameCodec::new(Encoding::Json, MAX_REPLY),
            input: BytesMut::with_capacity(8192),
            output: BytesMut::with_capacity(8192),
            next_id: 1,
            timeout: options.timeout,
            fingerprint,
            token: None,
            events: std::collections::VecDeque::new(),
        })
    }

    /// Whether this client speaks QUIC.
    pub fn is_quic(&self) -> bool {
        matches!(self.link, Link::Quic(_))
    }

    async fn connect_tcp(options: &ConnectOptions) -> Result<(Link, Option<String>), ClientError> {
        let tcp = tokio::time::timeout(options.timeout, TcpStream::connect(&options.address))
            .await
            .map_err(|_| ClientError::Timeout(options.timeout))??;
        tcp.set_nodelay(true)?;
        let (stream, fingerprint): (Pin<Box<dyn Stream>>, _) = match &options.tls {
            None => (Box::pin(tcp), None),
            Some(trust) => {
                let (s, fp) = tokio::time::timeout(
                    options.timeout,
                    tls::connect(tcp, &options.address, trust),
                )
                .await
                .map_err(|_| ClientError::Timeout(options.timeout))??;
                (Box::pin(s), Some(fp))
            }
        };
        Ok((Link::Stream(stream), fingerprint))
    }

    /// The SHA-256 fingerprint of the server's certificate (TLS only), as
    /// `SHA256:` and hex.
    pub fn server_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Puts `token` in the envelope of the requests that follow, instead of
    /// relying on the connection's login: how a saved session token is
    /// reused. `None` stops.
    pub fn set_token(&mut self, token: Option<Secret>) {
        self.token = token;
    }

    /// The session token sent in each request's envelope, if any.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// Sends one command and returns its reply's data, typed; the server's
    /// error as [`ClientError::Server`].
    pub async fn run<C: Call>(&mut self, call: C) -> Result<C::Reply, ClientError> {
        let queued = self.queue(call)?;
        self.reply_to(queued).await
    }

    /// Queues a command without waiting for its reply. Read the replies
    /// with [`Client::reply_to`], in the order the commands were queued.
    pub fn queue<C: Call>(&mut self, call: C) -> Result<Queued<C>, ClientError> {
        let command: Command = call.into();
        let id = self.send(command.name(), command.args())?;
        Ok(Queued {
            id,
            name: command.name(),
            call: std::marker::PhantomData,
        })
    }

    /// Reads the reply to `queued`, which must be the next one (flushing
    /// queued requests first), and returns its data, typed.
    pub async fn reply_to<C: Call>(&mut self, queued: Queued<C>) -> Result<C::Reply, ClientError> {
        let reply = self.recv().await?;
        // A reply without an id answers a request the server could not
        // read (`frame_too_large`): in turn, it is this one's.
        if let Some(id) = &reply.id
            && *id != queued.id
        {
            return Err(ClientError::Protocol(format!(
                "a reply to request {id:?} came where {} (request {:?}) was expected",
                queued.name, queued.id
            )));
        }
        let data = reply.result.map_err(ClientError::Server)?;
        decode::<C>(queued.name, data)
    }

    /// Queues a request by name, its arguments as given, without waiting
    /// for its reply; returns its id. Call [`Client::recv`] as many times
    /// to read the replies, in order.
    pub fn send(&mut self, cmd: &str, args: Value) -> Result<Id, ClientError> {
        let id = Id::Int(self.next_id);
        self.next_id += 1;
        let request = Request {
            id: Some(id.clone()),
            cmd: cmd.to_owned(),
            args: Some(args),
            token: self.token.clone(),
            pad: None,
        };
        self.send_request(&request)?;
        Ok(id)
    }

    /// Queues a request exactly as given.
    pub fn send_request(&mut self, request: &Request) -> Result<(), ClientError> {
        let encoding = self.codec.encoding();
        match &mut self.link {
            Link::Stream(_) => {
                write_frame(encoding, request, &mut self.output).map_err(ClientError::Protocol)
            }
            Link::Quic(link) => {
                // The stream's end frames it.
                link.queue(to_datagram(encoding, request).map_err(ClientError::Protocol)?);
                Ok(())
            }
        }
    }

    /// Writes the queued requests.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        match &mut self.link {
            Link::Stream(stream) => {
                if !self.output.is_empty() {
                    stream.write_all(&self.output).await?;
                    stream.flush().await?;
                    self.output.clear();
                }
                Ok(())
            }
            Link::Quic(link) => link.flush(self.timeout).await,
        }
    }

    /// Reads the next reply (flushing queued requests first).
    pub async fn recv(&mut self) -> Result<Reply, ClientError> {
        self.flush().await?;
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.read_reply())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Reads the next reply's id and outcome only, skipping its data
    /// (flushing queued requests first): what a benchmark needs to know.
    pub async fn recv_status(&mut self) -> Result<ReplyStatus, ClientError> {
        self.flush().await?;
        let timeout = self.timeout;
        let encoding = self.codec.encoding();
        let frame = tokio::time::timeout(timeout, self.read_frame())
            .await
            .map_err(|_| ClientError::Timeout(timeout))??;
        ReplyStatus::decode(encoding, &frame).map_err(ClientError::Protocol)
    }

    /// The next reply; event messages read on the way are kept for
    /// [`Client::next_event`].
    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            let frame = self.read_frame().await?;
            match Reply::decode(self.codec.encoding(), &frame) {
                Ok(reply) => return Ok(reply),
                Err(e) => match decode_event(self.codec.encoding(), &frame) {
                    Some(event) => self.events.push_back(event),
                    None => return Err(ClientError::Protocol(e)),
                },
            }
        }
    }

    /// The next frame as it came, undecoded (flushing queued requests
    /// first): what a benchmark counting events needs, without paying for
    /// decoding them. Over QUIC, the next frame of the watch's event
    /// stream (replies come on streams of their own: [`Client::recv`]).
    pub async fn next_frame(&mut self) -> Result<bytes::BytesMut, ClientError> {
        self.flush().await?;
        match &mut self.link {
            Link::Quic(link) => Ok(link.next_event_frame().await?.1),
            Link::Stream(_) => self.read_frame().await,
        }
    }

    /// The next event message of a connection that watches (protocol §9),
    /// waiting for it as long as it takes (flushing queued requests
    /// first); over QUIC, from the watch's event stream. Cancel-safe. The
    /// reply without an id that ends a watch (its session ended) is
    /// [`ClientError::Server`] with its error; another reply arriving
    /// instead is a protocol error: read replies with [`Client::recv`]
    /// before waiting for events.
    pub async fn next_event(&mut self) -> Result<gradebook_proto::data::Event, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        self.flush().await?;
        let (encoding, frame) = match &mut self.link {
            Link::Quic(link) => link.next_event_frame().await?,
            Link::Stream(_) => (self.codec.encoding(), self.read_frame().await?),
        };
        event_or_notice(encoding, &frame)
    }

    /// Reads the next whole frame (over QUIC: the next reply stream).
    /// Cancel-safe over TCP: what was read stays in the input buffer.
    async fn read_frame(&mut self) -> Result<BytesMut, ClientError> {
        let stream = match &mut self.link {
            Link::Stream(stream) => stream,
            Link::Quic(link) => return Ok(BytesMut::from(&link.read_reply().await?[..])),
        };
        loop {
            match self.codec.decode(&mut self.input) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(FrameError::TooLarge { max }) => {
                    return Err(ClientError::Protocol(format!("reply over {max} bytes")));
                }
                Err(FrameError::Io(e)) => return Err(e.into()),
            }
            self.input.reserve(16 * 1024);
            if stream.read_buf(&mut self.input).await? == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Sends a command by name, its arguments as given, and returns its
    /// data untyped, or the server's error as [`ClientError::Server`].
    pub async fn call(&mut self, cmd: &str, args: Value) -> Result<Value, ClientError> {
        self.send(cmd, args)?;
        self.recv().await?.result.map_err(ClientError::Server)
    }

    /// Switches the connection to MessagePack (`hello {"encoding":"msgpack"}`).
    pub async fn use_encoding(&mut self, encoding: Encoding) -> Result<(), ClientError> {
        self.run(call::Hello(HelloArgs {
            encoding: Some(encoding.as_str().to_owned()),
        }))
        .await?;
        self.codec.set_encoding(encoding);
        Ok(())
    }

    /// Logs in; the connection is then authenticated.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<Login, ClientError> {
        self.run(call::Login(LoginArgs {
            username: username.to_owned(),
            password: Secret::new(password),
        }))
        .await
    }

    /// Sends a command by name, its arguments as given, authenticated by
    /// `token` in its envelope (whatever [`Client::set_token`] said).
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

    /// Writes raw bytes (tests of malformed input); over QUIC, as one
    /// request on a stream of its own, whose reply [`Client::recv`] reads.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        match &mut self.link {
            Link::Stream(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await?;
                Ok(())
            }
            Link::Quic(link) => link.send_raw(bytes, self.timeout).await,
        }
    }
}

/// An event message; or, for the reply without an id that ends a watch
/// (protocol §9: its session ended), that reply's error.
fn event_or_notice(
    encoding: Encoding,
    frame: &[u8],
) -> Result<gradebook_proto::data::Event, ClientError> {
    if let Some(event) = decode_event(encoding, frame) {
        return Ok(event);
    }
    match Reply::decode(encoding, frame) {
        Ok(Reply {
            id: None,
            result: Err(e),
        }) => Err(ClientError::Server(e)),
        _ => Err(ClientError::Protocol(
            "a reply came where an event was awaited".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_proto::command::{IdArgs, NoArgs, PromotionArgs};
    use gradebook_proto::data::{Done, PromotionShow};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    /// A one-connection server that answers each request line with the
    /// next of `replies` (its `id` set to the request's, unless the reply
    /// has one), and hands back the request lines it read.
    async fn scripted(replies: Vec<Value>) -> (String, tokio::task::JoinHandle<Vec<Value>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("an address").to_string();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("a connection");
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = Vec::new();
            for mut reply in replies {
                let Ok(Some(line)) = lines.next_line().await else {
                    break;
                };
                let request: Value = serde_json::from_str(&line).expect("a JSON request");
                if let Some(map) = reply.as_object_mut() {
                    map.entry("id").or_insert_with(|| request["id"].clone());
                }
                seen.push(request);
                let mut text = reply.to_string();
                text.push('\n');
                write.write_all(text.as_bytes()).await.expect("writes");
            }
            seen
        });
        (addr, task)
    }

    async fn client(addr: &str) -> Client {
        Client::connect(&ConnectOptions::plaintext(addr))
            .await
            .expect("connects")
    }

    #[tokio::test]
    async fn a_call_goes_typed_and_its_reply_comes_back_typed() {
        let shown = json!({"name": "P", "year": 2026, "description": null, "students": []});
        let (addr, server) = scripted(vec![
            json!({"ok": true, "data": shown}),
            json!({"ok": true, "data": {}}),
            json!({"ok": false, "error": {"code": "not_found", "message": "no student"}}),
        ])
        .await;
        let mut c = client(&addr).await;
        let p: PromotionShow = c
            .run(call::PromotionShow(PromotionArgs { name: "P".into() }))
            .await
            .expect("a promotion");
        assert_eq!((p.name.as_str(), p.year), ("P", Some(2026)));
        // A saved session's token goes in the envelope.
        c.set_token(Some(Secret::new("t0ken")));
        let done: Done = c.run(call::Logout(NoArgs {})).await.expect("done");
        assert_eq!(done, Done {});
        match c.run(call::StudentShow(IdArgs { id: 9 })).await {
            Err(ClientError::Server(e)) => assert_eq!(e.code, gradebook_proto::ErrorCode::NotFound),
            other => panic!("expected not_found, got {other:?}"),
        }
        let seen = server.await.expect("the server ran");
        assert_eq!(
            seen[0],
            json!({"id": 1, "cmd": "promotion.show", "args": {"name": "P"}})
        );
        assert_eq!(
            seen[1],
            json!({"id": 2, "cmd": "auth.logout", "args": {}, "token": "t0ken"})
        );
        assert_eq!(seen[2]["args"], json!({"id": 9}));
    }

    #[tokio::test]
    async fn queued_calls_read_their_replies_in_order() {
        let (addr, server) = scripted(vec![
            json!({"ok": true, "data": {"pong": true}}),
            json!({"ok": true, "data": {"pong": true, "later": "fields are ignored"}}),
            json!({"ok": true, "data": {"whatever": [1, 2]}}),
        ])
        .await;
        let mut c = client(&addr).await;
        let first = c.queue(call::Ping(NoArgs {})).expect("queued");
        let second = c.queue(call::Ping(NoArgs {})).expect("queued");
        // A `Command` is a call whose data comes back as sent.
        let third = c.queue(Command::Ping(NoArgs {})).expect("queued");
        assert_eq!((first.id(), first.name()), (&Id::Int(1), "ping"));
        assert!(c.reply_to(first).await.expect("pong").pong);
        assert!(c.reply_to(second).await.expect("pong").pong);
        assert_eq!(
            c.reply_to(third).await.expect("data"),
            json!({"whatever": [1, 2]})
        );
        assert_eq!(server.await.expect("the server ran").len(), 3);
    }

    #[tokio::test]
    async fn a_reply_of_the_wrong_shape_or_to_another_request_is_an_error() {
        let (addr, _server) = scripted(vec![
            json!({"ok": true, "data": {"pong": "yes"}}),
            json!({"id": null, "ok": false,
                   "error": {"code": "frame_too_large", "message": "over 1 MiB"}}),
            json!({"id": 99, "ok": true, "data": {"pong": true}}),
        ])
        .await;
        let mut c = client(&addr).await;
        match c.run(call::Ping(NoArgs {})).await {
            Err(ClientError::Data(m)) => assert!(m.starts_with("ping: "), "{m}"),
            other => panic!("expected a data error, got {other:?}"),
        }
        // The answer to a request the server could not read has no id.
        match c.run(call::Ping(NoArgs {})).await {
            Err(ClientError::Server(e)) => {
                assert_eq!(e.code, gradebook_proto::ErrorCode::FrameTooLarge)
            }
            other => panic!("expected the server's error, got {other:?}"),
        }
        match c.run(call::Ping(NoArgs {})).await {
            Err(ClientError::Protocol(m)) => assert!(m.contains("Int(99)"), "{m}"),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
}
