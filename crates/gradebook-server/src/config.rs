//! Server settings and their defaults (spec §7 and §8).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gradebook_proto::Secret;

use crate::clock::Clock;

/// How the TCP listener protects its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext (`--plaintext`): for learning and debugging with `nc`.
    Off,
    /// TLS 1.3 with a self-signed certificate kept in the data directory,
    /// generated on first start.
    SelfSigned,
    /// TLS 1.3 with the operator's certificate chain and key (PEM files).
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

/// Where the QUIC listener (protocol §10) listens; QUIC needs TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicListen {
    /// No QUIC listener (`--no-quic`).
    Off,
    /// With TLS on: the TCP address's IP and its port + 1 (port 0, a
    /// free port, when the TCP port was 0); with TLS off: none.
    BesideTcp,
    /// This UDP address (`--quic-listen`; port 0 picks a free port).
    At(SocketAddr),
}

/// Where the web portal (HTTPS, or HTTP with `--plaintext`) listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpListen {
    /// No web portal (`--no-http`).
    Off,
    /// The TCP address's IP on port 7380 ([`DEFAULT_HTTP_PORT`]); port 0,
    /// a free port, when the TCP port was 0.
    BesideTcp,
    /// This TCP address (`--http-listen`; port 0 picks a free port).
    At(SocketAddr),
}

/// The web portal's default port (spec §8: `0.0.0.0:7380`).
pub const DEFAULT_HTTP_PORT: u16 = 7380;

/// Limits and timeouts; each has a default from spec §7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message once logged in (bytes).
    pub max_frame: usize,
    /// Largest message before login (bytes).
    pub pre_auth_max_frame: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request must arrive whole within this time of its first byte.
    pub request_timeout: Duration,
    /// A connection that has not logged in within this time is closed.
    pub login_timeout: Duration,
    /// The TLS handshake must finish within this time.
    pub handshake_timeout: Duration,
    /// Connections served at once; past that new ones are refused.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Largest UDP reply (bytes); larger ones become `too_large`.
    pub udp_max_reply: usize,
    /// Datagrams accepted per second from one source address, on average;
    /// past that they get `rate_limited` (at most one a second) or are
    /// dropped.
    pub udp_rate: u32,
    /// How many datagrams one source address may send in a burst.
    pub udp_burst: u32,
    /// Datagrams being answered at once; past that new ones are dropped
    /// (their senders retry), so a slow store cannot pile up work.
    pub udp_in_flight: usize,
    /// The most memory one import may hold (bytes of its lines); imports
    /// held at once are bounded to four times that in all.
    pub max_import_bytes: usize,
    /// Events one watcher may have waiting (protocol §9); past that it is
    /// dropped from the feed as `lagged`.
    pub watch_queue: usize,
    /// Requests (bidirectional streams) one QUIC connection may have open
    /// at once; the client opens more as earlier ones finish.
    pub quic_streams: u32,
    /// Validate a new QUIC client's address with a Retry (one round trip)
    /// before any handshake work, unless it brings a token from an earlier
    /// connection: quinn alone may exceed the 3× rule by one datagram.
    pub quic_retry: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: gradebook_proto::DEFAULT_MAX_FRAME,
            pre_auth_max_frame: gradebook_proto::PRE_AUTH_MAX_FRAME,
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            login_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(5),
            udp_max_reply: 1200,
            watch_queue: crate::watch::QUEUE,
            udp_rate: 1000,
            udp_burst: 2000,
            udp_in_flight: 512,
            max_import_bytes: 64 * 1024 * 1024,
            quic_streams: 32,
            quic_retry: true,
        }
    }
}

/// Everything `gradebook serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP and UDP address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory: database, generated certificate and key.
    pub data_dir: PathBuf,
    /// Database URL; `None` means `sqlite://DATA/gradebook.db`.
    pub database: Option<String>,
    /// TLS, or not.
    pub tls: TlsMode,
    /// The QUIC listener (with TLS only).
    pub quic: QuicListen,
    /// The web portal.
    pub http: HttpListen,
    /// Allow plaintext on a non-loopback address.
    pub insecure_bind: bool,
    /// The first admin's password; `None` generates one and prints it.
    pub admin_password: Option<Secret>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Where the time comes from: the system's, or a test's manual clock.
    pub clock: Clock,
}

impl Config {
    /// The defaults of `gradebook serve` with no flag.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], gradebook_proto::DEFAULT_PORT)),
            data_dir: data_dir.into(),
            database: None,
            tls: TlsMode::SelfSigned,
            quic: QuicListen::BesideTcp,
            http: HttpListen::BesideTcp,
            insecure_bind: false,
            admin_password: None,
            limits: Limits::default(),
            clock: Clock::system(),
        }
    }
}
