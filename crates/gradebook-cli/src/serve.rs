//! `gradebook serve`: settings from flags or `GRADEBOOK_*` variables, logs
//! to stderr, the `listening …` line on stdout, a clean stop on SIGINT or
//! SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use gradebook_proto::Secret;
use gradebook_server::{Config, HttpListen, QuicListen, Server, TlsMode};
use tokio_util::sync::CancellationToken;

/// Settings of `gradebook serve`; each flag may also come from the
/// environment variable shown in `--help`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gradebook serve                                  TLS on 0.0.0.0:7302, data in ./gradebook-data
  gradebook serve --plaintext --listen 127.0.0.1:7302   for nc and learning
  gradebook serve --quic-listen 0.0.0.0:8443       QUIC on another UDP port (default: TCP port + 1)
  gradebook serve --http-listen 0.0.0.0:443        the web portal on another port (default: 7380)
  GRADEBOOK_ADMIN_PASSWORD='a long secret' gradebook serve --data /var/lib/gradebook")]
pub struct ServeArgs {
    /// TCP and UDP address to listen on (port 0 picks a free port).
    #[arg(long, env = "GRADEBOOK_LISTEN", default_value = "0.0.0.0:7302")]
    listen: SocketAddr,
    /// Data directory: SQLite database, generated TLS certificate and key.
    #[arg(long, env = "GRADEBOOK_DATA", default_value = "gradebook-data")]
    data: PathBuf,
    /// Database URL: sqlite://PATH (default: sqlite://DATA/gradebook.db) or
    /// postgres://USER@HOST[:PORT]/DB (several servers may share one).
    #[arg(long, env = "GRADEBOOK_DATABASE_URL")]
    database: Option<String>,
    /// Serve without TLS (loopback addresses only, unless --insecure-bind).
    #[arg(long, env = "GRADEBOOK_PLAINTEXT", value_parser = BoolishValueParser::new())]
    plaintext: bool,
    /// Allow --plaintext on a non-loopback address (passwords then cross the network in clear).
    #[arg(
        long,
        env = "GRADEBOOK_INSECURE_BIND",
        requires = "plaintext",
        value_parser = BoolishValueParser::new()
    )]
    insecure_bind: bool,
    /// TLS certificate chain (PEM) instead of the generated self-signed one.
    #[arg(long, env = "GRADEBOOK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM), with --tls-cert.
    #[arg(long, env = "GRADEBOOK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// QUIC (UDP) address to listen on, with TLS [default: the --listen IP and
    /// its port + 1, e.g. 0.0.0.0:7303; a free port when --listen's port is 0].
    #[arg(long, env = "GRADEBOOK_QUIC_LISTEN", value_name = "ADDR:PORT")]
    quic_listen: Option<SocketAddr>,
    /// No QUIC listener (QUIC is on whenever TLS is).
    #[arg(long, env = "GRADEBOOK_NO_QUIC", value_parser = BoolishValueParser::new())]
    no_quic: bool,
    /// The web portal's address: HTTPS, or HTTP with --plaintext (then on
    /// loopback only, as the protocol) [default: the --listen IP, port 7380,
    /// e.g. 0.0.0.0:7380; a free port when --listen's port is 0].
    #[arg(long, env = "GRADEBOOK_HTTP_LISTEN", value_name = "ADDR:PORT")]
    http_listen: Option<SocketAddr>,
    /// No web portal.
    #[arg(long, env = "GRADEBOOK_NO_HTTP", value_parser = BoolishValueParser::new())]
    no_http: bool,
    /// Requests (streams) one QUIC connection may have open at once.
    #[arg(long, env = "GRADEBOOK_QUIC_STREAMS", default_value_t = 32)]
    quic_streams: u32,
    /// Skip the QUIC Retry that validates a new client's address (saves one
    /// round trip; the server may then send a new client a little more than
    /// three times what it received before its address is proven).
    #[arg(long, env = "GRADEBOOK_QUIC_NO_RETRY", value_parser = BoolishValueParser::new())]
    quic_no_retry: bool,
    /// Largest message in bytes once logged in (see --pre-auth-max-frame before).
    #[arg(long, env = "GRADEBOOK_MAX_FRAME", default_value_t = 1 << 20)]
    max_frame: usize,
    /// Connections served at once.
    #[arg(long, env = "GRADEBOOK_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds without a request before a connection is closed.
    #[arg(long, env = "GRADEBOOK_IDLE_TIMEOUT", default_value_t = 300)]
    idle_timeout: u64,
    /// Largest message in bytes before the connection has logged in.
    #[arg(long, env = "GRADEBOOK_PRE_AUTH_MAX_FRAME", default_value_t = 16 << 10)]
    pre_auth_max_frame: usize,
    /// Seconds a request may take to arrive whole, from its first byte.
    #[arg(long, env = "GRADEBOOK_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Seconds a connection has to log in (counted again after a logout).
    #[arg(long, env = "GRADEBOOK_LOGIN_TIMEOUT", default_value_t = 60)]
    login_timeout: u64,
    /// Seconds the TLS handshake may take.
    #[arg(long, env = "GRADEBOOK_HANDSHAKE_TIMEOUT", default_value_t = 10)]
    handshake_timeout: u64,
    /// Largest UDP reply in bytes.
    #[arg(long, env = "GRADEBOOK_UDP_MAX_REPLY", default_value_t = 1200)]
    udp_max_reply: usize,
    /// UDP datagrams per second allowed from one address.
    #[arg(long, env = "GRADEBOOK_UDP_RATE", default_value_t = 1000)]
    udp_rate: u32,
    /// UDP datagrams one address may send in a burst.
    #[arg(long, env = "GRADEBOOK_UDP_BURST", default_value_t = 2000)]
    udp_burst: u32,
    /// UDP requests handled at once; more are dropped.
    #[arg(long, env = "GRADEBOOK_UDP_IN_FLIGHT", default_value_t = 512)]
    udp_in_flight: usize,
    /// The most memory one import may hold, in bytes of its lines (imports
    /// held at once: four times that in all).
    #[arg(long, env = "GRADEBOOK_MAX_IMPORT_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_import_bytes: usize,
    /// Log filter (e.g. info, debug, gradebook_server=debug).
    #[arg(long, env = "GRADEBOOK_LOG", default_value = "info")]
    log: String,
}

impl ServeArgs {
    /// Two settings that cannot go together, said as clap says it. Checked
    /// here rather than by clap, which counts an on/off flag that the
    /// environment sets off (`GRADEBOOK_NO_HTTP=0`) as given.
    fn conflict(&self) -> Option<String> {
        [
            (
                self.tls_cert.is_some() && self.plaintext,
                "--tls-cert",
                "--plaintext",
            ),
            (
                self.quic_listen.is_some() && self.plaintext,
                "--quic-listen",
                "--plaintext",
            ),
            (
                self.quic_listen.is_some() && self.no_quic,
                "--quic-listen",
                "--no-quic",
            ),
            (
                self.http_listen.is_some() && self.no_http,
                "--http-listen",
                "--no-http",
            ),
        ]
        .into_iter()
        .find(|(both, _, _)| *both)
        .map(|(_, a, b)| format!("the argument '{a}' cannot be used with '{b}'"))
    }

    fn config(self) -> Config {
        let mut config = Config::new(self.data);
        config.listen = self.listen;
        config.database = self.database;
        config.tls = match (self.plaintext, self.tls_cert, self.tls_key) {
            (true, _, _) => TlsMode::Off,
            (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
            _ => TlsMode::SelfSigned,
        };
        config.insecure_bind = self.insecure_bind;
        config.quic = match (self.no_quic, self.quic_listen) {
            (true, _) => QuicListen::Off,
            (false, Some(addr)) => QuicListen::At(addr),
            (false, None) => QuicListen::BesideTcp,
        };
        config.http = match (self.no_http, self.http_listen) {
            (true, _) => HttpListen::Off,
            (false, Some(addr)) => HttpListen::At(addr),
            (false, None) => HttpListen::BesideTcp,
        };
        config.limits.quic_streams = self.quic_streams;
        config.limits.quic_retry = !self.quic_no_retry;
        // Read here rather than as a flag: a password in argv is visible
        // to every user of the machine.
        config.admin_password = std::env::var("GRADEBOOK_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new);
        config.limits.max_frame = self.max_frame;
        config.limits.max_connections = self.max_connections;
        config.limits.idle_timeout = Duration::from_secs(self.idle_timeout);
        config.limits.udp_max_reply = self.udp_max_reply;
        config.limits.pre_auth_max_frame = self.pre_auth_max_frame;
        config.limits.request_timeout = Duration::from_secs(self.request_timeout);
        config.limits.login_timeout = Duration::from_secs(self.login_timeout);
        config.limits.handshake_timeout = Duration::from_secs(self.handshake_timeout);
        config.limits.udp_rate = self.udp_rate;
        config.limits.udp_burst = self.udp_burst;
        config.limits.udp_in_flight = self.udp_in_flight;
        config.limits.max_import_bytes = self.max_import_bytes;
        config
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> ExitCode {
    if let Some(conflict) = args.conflict() {
        eprintln!("error: {conflict}");
        // clap's status for a bad command line.
        return ExitCode::from(2);
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes are for a terminal (and not with NO_COLOR); in a
        // file or a journal they are noise.
        .with_ansi(crate::output::colour(true))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gradebook: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::bind(args.config()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("gradebook: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = server.listening_line();
        tracing::info!("{line}");
        if let Some(mut http) = server.http_addr() {
            // An address a browser on this machine can open.
            if http.ip().is_unspecified() {
                http.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let scheme = if server.tls() { "https" } else { "http" };
            let host = match http.ip() {
                ip if ip.is_loopback() => format!("localhost:{}", http.port()),
                _ => http.to_string(),
            };
            tracing::info!("the web portal is at {scheme}://{host}/");
        }
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        server.run(shutdown).await;
        ExitCode::SUCCESS
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
