//! The UDP transport (protocol §6): one request per datagram, retried until
//! its reply arrives.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gradebook_client::ClientError> {
//! use gradebook_client::{ConnectOptions, UdpClient, UdpOptions};
//! let mut options = UdpOptions::new("127.0.0.1:7302");
//! // Replies too large for a datagram are fetched over TCP.
//! options.fallback = Some(ConnectOptions::plaintext("127.0.0.1:7302"));
//! let udp = UdpClient::connect(&options).await?;
//! udp.login("admin", "a long password").await?; // plaintext servers only
//! let list = udp
//!     .run(gradebook_proto::call::PromotionList(gradebook_proto::command::NoArgs {}))
//!     .await?;
//! println!("{} promotions", list.promotions.len());
//! # Ok(()) }
//! ```
//!
//! Every request gets a fresh id, and a retry sends the very same datagram:
//! the server recognises it and answers it again without running it twice.
//! The first wait is randomised (between 1 and 1.5 times
//! [`Retry::first_timeout`]) so clients that lost the same burst do not
//! retry in step; each next wait is longer, up to [`Retry::max_timeout`].
//! A request without a session token (`hello`, `ping`, `auth.login`) is
//! padded to [`UdpOptions::pad_to`] bytes, since before authentication the
//! server never answers with more than three times the request's size.
//!
//! One [`UdpClient`] may carry many requests at once (`run` takes `&self`):
//! a task of its own reads the socket and hands each reply to the request
//! with its id.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gradebook_proto::codec::to_datagram;
use gradebook_proto::command::LoginArgs;
use gradebook_proto::data::Login;
use gradebook_proto::{Call, Command, Encoding, ErrorCode, Id, Reply, Request, Secret, call};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Client, ClientError, ConnectOptions, decode};

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;

/// How a request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The first wait for a reply (randomised up to half as much again).
    pub first_timeout: Duration,
    /// Each wait is this many times the previous one.
    pub factor: f64,
    /// No wait is longer than this.
    pub max_timeout: Duration,
    /// How many times a request is sent before giving up.
    pub tries: u32,
}

impl Default for Retry {
    /// 100 ms, 200 ms, 400 ms, 800 ms, 1.6 s: about 3 s in all.
    fn default() -> Self {
        Retry {
            first_timeout: Duration::from_millis(100),
            factor: 2.0,
            max_timeout: Duration::from_secs(2),
            tries: 5,
        }
    }
}

/// How to reach the server over UDP.
#[derive(Debug, Clone)]
pub struct UdpOptions {
    /// `HOST:PORT` (the server's TCP port number).
    pub address: String,
    /// JSON or MessagePack datagrams.
    pub encoding: Encoding,
    /// Retries.
    pub retry: Retry,
    /// Requests without a session token are padded to this many bytes, so
    /// that a reply of up to three times as much (`udp_max_reply`, 1,200
    /// bytes by default) may come back.
    pub pad_to: usize,
    /// Where to send a request again when its reply is `too_large` for a
    /// datagram; without it, `too_large` is returned as the server's error.
    pub fallback: Option<ConnectOptions>,
}

impl UdpOptions {
    /// JSON datagrams to `address`, default retries, no TCP fallback.
    pub fn new(address: impl Into<String>) -> Self {
        UdpOptions {
            address: address.into(),
            encoding: Encoding::Json,
            retry: Retry::default(),
            pad_to: 400,
            fallback: None,
        }
    }
}

type Pending = Arc<Mutex<HashMap<Id, oneshot::Sender<Reply>>>>;

/// A UDP client; see the module documentation.
pub struct UdpClient {
    socket: Arc<UdpSocket>,
    encoding: Encoding,
    retry: Retry,
    pad_to: usize,
    token: Mutex<Option<Secret>>,
    next_id: AtomicI64,
    pending: Pending,
    reader: JoinHandle<()>,
    fallback: Option<ConnectOptions>,
    tcp: tokio::sync::Mutex<Option<Client>>,
}

impl std::fmt::Debug for UdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpClient")
            .field("peer", &self.socket.peer_addr().ok())
            .field("encoding", &self.encoding)
            .field("retry", &self.retry)
            .field("logged_in", &self.token().is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for UdpClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes a request from the pending table however its call ends.
struct Waiting<'a> {
    pending: &'a Pending,
    id: Id,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each critical section is one map or option operation: a poisoned
    // lock still holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// 64 bits that differ from call to call and process to process (the
/// standard library seeds its hashers randomly); enough for ids and
/// jitter, which need to be spread, not secret.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

impl UdpClient {
    /// Binds a local socket and points it at the server. Nothing is sent
    /// yet: UDP has no connection to set up.
    pub async fn connect(options: &UdpOptions) -> Result<UdpClient, ClientError> {
        let server = tokio::net::lookup_host(&options.address)
            .await?
            .next()
            .ok_or_else(|| ClientError::Protocol(format!("no address for {}", options.address)))?;
        let local = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(local).await?;
        // A connected socket only receives datagrams from the server.
        socket.connect(server).await?;
        let socket = Arc::new(socket);
        let pending: Pending = Arc::default();
        let reader = tokio::spawn(read_replies(socket.clone(), pending.clone()));
        // Ids start at a random point, so two clients sharing a session
        // token (two runs of the CLI) do not reuse each other's ids: the
        // server would take one's request for a retry of the other's.
        let first_id = (random_u64() >> 12) as i64 + 1;
        Ok(UdpClient {
            socket,
            encoding: options.encoding,
            retry: options.retry.clone(),
            pad_to: options.pad_to,
            token: Mutex::new(None),
            next_id: AtomicI64::new(first_id),
            pending,
            reader,
            fallback: options.fallback.clone(),
            tcp: tokio::sync::Mutex::new(None),
        })
    }

    /// The encoding of the datagrams.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Uses a session token (from a login over TCP, or a saved one) for the
    /// requests that follow; `None` forgets it.
    pub fn set_token(&self, token: Option<Secret>) {
        *lock(&self.token) = token;
    }

    /// The session token in use.
    pub fn token(&self) -> Option<Secret> {
        lock(&self.token).clone()
    }

    /// Logs in over UDP (a plaintext server only: with TLS on, the server
    /// refuses to let a password or token cross the network in clear) and
    /// keeps the token for the requests that follow.
    pub async fn login(&self, username: &str, password: &str) -> Result<Login, ClientError> {
        let login = self
            .run(call::Login(LoginArgs {
                username: username.to_owned(),
                password: Secret::new(password),
            }))
            .await?;
        self.set_token(Some(login.token.clone()));
        Ok(login)
    }

    /// Sends one command and returns its reply's data, typed; the server's
    /// error as [`ClientError::Server`]. A `too_large` reply is fetched
    /// again over TCP when [`UdpOptions::fallback`] is set (nothing was
    /// changed by the UDP attempt: the server rolls back a write whose
    /// reply does not fit).
    pub async fn run<C: Call>(&self, call: C) -> Result<C::Reply, ClientError> {
        let command: Command = call.into();
        let data = self.call(command.name(), command.args()).await?;
        decode::<C>(command.name(), data)
    }

    /// Sends a command by name, its arguments as given, and returns its
    /// data untyped; otherwise as [`UdpClient::run`].
    pub async fn call(&self, cmd: &str, args: Value) -> Result<Value, ClientError> {
        let request = self.request(cmd, args.clone());
        let reply = self.send(&request).await?;
        match reply.result {
            Err(e) if e.code == ErrorCode::TooLarge && self.fallback.is_some() => {
                self.over_tcp(cmd, args).await
            }
            result => result.map_err(ClientError::Server),
        }
    }

    /// Builds the request for `cmd`: a fresh id, the token if there is one,
    /// padding if there is none.
    pub fn request(&self, cmd: &str, args: Value) -> Request {
        let id = Id::Int(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut request = Request {
            id: Some(id),
            cmd: cmd.to_owned(),
            args: Some(args),
            token: self.token(),
            pad: None,
        };
        if request.token.is_none() {
            self.pad(&mut request);
        }
        request
    }

    /// Sends `request` exactly as given (it needs an id), retrying as
    /// configured, and returns its reply, error or not.
    pub async fn send(&self, request: &Request) -> Result<Reply, ClientError> {
        let id = request
            .id
            .clone()
            .ok_or_else(|| ClientError::Protocol("a UDP request needs an id".into()))?;
        let datagram = to_datagram(self.encoding, request).map_err(ClientError::Protocol)?;
        if datagram.len() > MAX_DATAGRAM {
            return Err(ClientError::Protocol(format!(
                "a {}-byte request does not fit a datagram: use TCP",
                datagram.len()
            )));
        }
        let (tx, mut rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        let _waiting = Waiting {
            pending: &self.pending,
            id,
        };
        let retry = &self.retry;
        // Between 1 and 1.5 times the first timeout.
        let jitter = 1.0 + (random_u64() % 1024) as f64 / 2048.0;
        let mut wait = retry.first_timeout.mul_f64(jitter);
        let mut waited = Duration::ZERO;
        for _ in 0..retry.tries.max(1) {
            self.socket.send(&datagram).await?;
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(_)) => {
                    return Err(ClientError::Protocol("the UDP reader stopped".into()));
                }
                Err(_) => {}
            }
            waited += wait;
            wait = wait.mul_f64(retry.factor.max(1.0)).min(retry.max_timeout);
        }
        Err(ClientError::Timeout(waited))
    }

    /// Pads a request without a token to `pad_to` bytes.
    fn pad(&self, request: &mut Request) {
        let Ok(bare) = to_datagram(self.encoding, request) else {
            return;
        };
        if bare.len() < self.pad_to {
            request.pad = Some(" ".repeat(self.pad_to - bare.len()));
        }
    }

    /// Sends a command over TCP, connecting the first time.
    async fn over_tcp(&self, cmd: &str, args: Value) -> Result<Value, ClientError> {
        let Some(options) = &self.fallback else {
            return Err(ClientError::Protocol("no TCP fallback configured".into()));
        };
        let mut tcp = self.tcp.lock().await;
        let client = match &mut *tcp {
            Some(c) => c,
            None => tcp.insert(Client::connect(options).await?),
        };
        match self.token() {
            Some(token) => client.call_with_token(&token, cmd, args).await,
            None => client.call(cmd, args).await,
        }
    }
}

/// Hands each reply to the request waiting for its id; drops the others
/// (late copies of replies already received, garbage).
async fn read_replies(socket: Arc<UdpSocket>, pending: Pending) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            // An ICMP error for an earlier datagram (port unreachable while
            // the server restarts): the next one may well get through.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let bytes = &buf[..n];
        let Ok(reply) = Reply::decode(Encoding::sniff(bytes), bytes) else {
            continue;
        };
        let Some(id) = &reply.id else {
            continue;
        };
        if let Some(tx) = lock(&pending).remove(id) {
            let _ = tx.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_differ() {
        assert_ne!(random_u64(), random_u64());
    }

    #[tokio::test]
    async fn requests_without_a_token_are_padded() {
        let client = UdpClient::connect(&UdpOptions::new("127.0.0.1:9"))
            .await
            .expect("binds");
        let r = client.request("ping", serde_json::json!({}));
        let len = to_datagram(Encoding::Json, &r).expect("encodes").len();
        assert!((400..410).contains(&len), "{len}");
        client.set_token(Some(Secret::new("t")));
        let r = client.request("ping", serde_json::json!({}));
        assert!(r.pad.is_none());
        assert_ne!(r.id, client.request("ping", serde_json::json!({})).id);
    }

    #[tokio::test]
    async fn no_reply_is_a_timeout_after_the_tries() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let mut options = UdpOptions::new(silent.local_addr().expect("addr").to_string());
        options.retry = Retry {
            first_timeout: Duration::from_millis(5),
            factor: 2.0,
            max_timeout: Duration::from_millis(10),
            tries: 3,
        };
        let client = UdpClient::connect(&options).await.expect("binds");
        let e = client
            .call("ping", serde_json::json!({}))
            .await
            .expect_err("nobody answers");
        assert!(matches!(e, ClientError::Timeout(_)), "{e}");
        // It was sent three times, the same datagram each time.
        let mut buf = [0u8; 2048];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (n, _) = silent.recv_from(&mut buf).await.expect("a copy");
            seen.push(buf[..n].to_vec());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
    }
}
