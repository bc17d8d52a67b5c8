//! Start-up and the accept loop: open the store, create the first admin,
//! load TLS, bind TCP, UDP, QUIC and the web portal, serve until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gradebook_core::{Role, User};
use gradebook_store::{Store, WriteContext};
use gradebook_store_postgres::PostgresStore;
use gradebook_store_sqlite::SqliteStore;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, Auth};
use crate::config::{Config, DEFAULT_HTTP_PORT, HttpListen, QuicListen, TlsMode};
use crate::context::State;
use crate::memory::Memory;
use crate::model::Model;
use crate::session::Sessions;
use crate::watch::{Feed, Hub};
use crate::{connection, quic, tls, udp, web};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// The data directory, a certificate, a socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The database.
    #[error("database: {0}")]
    Store(#[from] gradebook_store::StoreError),
    /// TLS set-up.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A bound server, ready to run.
pub struct Server {
    tcp: TcpListener,
    udp: UdpSocket,
    tls: Option<TlsAcceptor>,
    quic: Option<quinn::Endpoint>,
    http: Option<TcpListener>,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .field("quic", &self.quic_addr())
            .field("http", &self.http_addr())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store, creates the first admin if there is no user, loads
    /// or generates the TLS certificate and binds the sockets.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let plaintext = config.tls == TlsMode::Off;
        if plaintext && !config.listen.ip().is_loopback() {
            if !config.insecure_bind {
                return Err(StartError::Config(format!(
                    "--plaintext listens on loopback addresses only (not {}): \
                     use --listen 127.0.0.1:PORT, or add --insecure-bind",
                    config.listen.ip()
                )));
            }
            tracing::warn!(
                "plaintext on a non-loopback address: passwords and tokens cross the network in clear"
            );
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
            what: format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            ),
            source,
        })?;
        let store: Arc<dyn Store> = match &config.database {
            None => Arc::new(SqliteStore::open(&config.data_dir.join("gradebook.db")).await?),
            Some(url) if url.starts_with("sqlite:") => Arc::new(SqliteStore::connect(url).await?),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Arc::new(PostgresStore::connect(url).await?)
            }
            Some(url) => {
                // Only the scheme: the rest may hold a password.
                let scheme = url.split(':').next().unwrap_or_default();
                return Err(StartError::Config(format!(
                    "database '{scheme}:…' is not supported: use sqlite://PATH or \
                     postgres://USER@HOST/DB"
                )));
            }
        };
        let auth = Auth::new(config.clock.clone()).map_err(StartError::Config)?;
        bootstrap_admin(store.as_ref(), &auth, &config).await?;
        // Loads what is stored and follows every change from here on.
        let model = Model::new();
        let sessions = Arc::new(Sessions::new(config.clock.clone()));
        let hub = Arc::new(Hub::default());
        let loading = std::time::Instant::now();
        store
            .follow(Arc::new(Memory {
                model: model.clone(),
                sessions: sessions.clone(),
                feed: Feed::start(hub.clone(), model.clone()),
            }))
            .await?;
        tracing::info!(
            grades = model.read().grade_count(),
            seq = model.read().seq(),
            elapsed_ms = loading.elapsed().as_millis() as u64,
            "loaded the data into memory"
        );
        let tls_config =
            tls::server_config(&config.tls, &config.data_dir).map_err(StartError::Tls)?;
        let tls = tls::acceptor(tls_config.as_ref());
        if tls.is_none()
            && let QuicListen::At(addr) = config.quic
        {
            return Err(StartError::Config(format!(
                "QUIC ({addr}) needs TLS: leave out --plaintext, or --quic-listen"
            )));
        }

        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Io {
                what: format!("cannot listen on {}", config.listen),
                source,
            })?;
        let tcp_addr = tcp.local_addr().map_err(|source| StartError::Io {
            what: "no local address".into(),
            source,
        })?;
        // UDP on the same port number as TCP (spec §1).
        let udp = UdpSocket::bind(tcp_addr)
            .await
            .map_err(|source| StartError::Io {
                what: format!("cannot bind UDP on {tcp_addr}"),
                source,
            })?;
        let quic = match (&tls_config, config.quic) {
            (None, _) | (_, QuicListen::Off) => None,
            (Some(tls), quic) => {
                let addr = match quic {
                    QuicListen::At(addr) => addr,
                    // Port 0 for TCP: the port after the one the system
                    // picked may be taken, so the system picks again.
                    _ if config.listen.port() == 0 => SocketAddr::new(tcp_addr.ip(), 0),
                    _ => quic_beside(tcp_addr)?,
                };
                Some(quic::bind(addr, tls, &config.limits).map_err(StartError::Config)?)
            }
        };
        let http = match config.http {
            HttpListen::Off => None,
            http => {
                let addr = match http {
                    HttpListen::At(addr) => addr,
                    _ if config.listen.port() == 0 => SocketAddr::new(tcp_addr.ip(), 0),
                    _ => SocketAddr::new(tcp_addr.ip(), DEFAULT_HTTP_PORT),
                };
                // Pages carry passwords and session cookies: in clear,
                // only on loopback, as the protocol.
                if plaintext && !addr.ip().is_loopback() && !config.insecure_bind {
                    return Err(StartError::Config(format!(
                        "--plaintext serves the web portal on loopback addresses only (not {}): \
                         use --http-listen 127.0.0.1:PORT, --no-http, or add --insecure-bind",
                        addr.ip()
                    )));
                }
                Some(TcpListener::bind(addr).await.map_err(|source| StartError::Io {
                    what: format!("cannot listen for the web portal on {addr} (--http-listen, --no-http)"),
                    source,
                })?)
            }
        };
        let state = Arc::new(State {
            store,
            sessions,
            auth,
            limits: config.limits.clone(),
            tls: tls.is_some(),
            model,
            imports: Default::default(),
            hub,
            clock: config.clock.clone(),
        });
        Ok(Server {
            tcp,
            udp,
            tls,
            quic,
            http,
            state,
        })
    }

    /// The TCP (and UDP) address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Whether TLS is on.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The QUIC address actually bound, when QUIC is on.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic.as_ref().and_then(|q| q.local_addr().ok())
    }

    /// The web portal's address actually bound, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|h| h.local_addr().ok())
    }

    /// The web portal's routes on this server's state, to drive in process
    /// (tests send requests to it without a socket); `None` with
    /// `--no-http`. Not part of the API.
    #[doc(hidden)]
    pub fn web_router(&self) -> Option<axum::Router> {
        self.http.as_ref()?;
        Some(web::router(std::sync::Arc::new(web::Web {
            state: self.state.clone(),
            secure: self.tls(),
            shutdown: CancellationToken::new(),
        })))
    }

    /// The line printed once the server accepts connections (spec §8):
    /// ` http=HOST:PORT` then ` quic=HOST:PORT` at its end when they are on.
    pub fn listening_line(&self) -> String {
        let addr = self.local_addr();
        let udp = self.udp.local_addr().unwrap_or(addr);
        let tls = if self.tls() { "on" } else { "off" };
        let mut line = format!("listening tcp={addr} udp={udp} tls={tls}");
        if let Some(http) = self.http_addr() {
            line.push_str(&format!(" http={http}"));
        }
        if let Some(quic) = self.quic_addr() {
            line.push_str(&format!(" quic={quic}"));
        }
        line
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets the
    /// requests in flight finish (within the grace period) and closes the
    /// store.
    pub async fn run(self, shutdown: CancellationToken) {
        let Server {
            tcp,
            udp,
            tls,
            quic,
            http,
            state,
        } = self;
        let tracker = TaskTracker::new();
        // One cap for TCP and QUIC connections together.
        let slots = Arc::new(Semaphore::new(state.limits.max_connections));
        tracker.spawn(udp::serve(udp, state.clone(), shutdown.clone()));
        tracker.spawn(purge_sessions(state.clone(), shutdown.clone()));
        let refused = Arc::new(AtomicU64::new(0));
        if let Some(endpoint) = quic {
            tracker.spawn(quic::serve(
                endpoint,
                state.clone(),
                slots.clone(),
                refused.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(listener) = http {
            tracker.spawn(web::serve(
                listener,
                tls.clone(),
                state.clone(),
                slots.clone(),
                refused.clone(),
                shutdown.clone(),
            ));
        }
        tracker.spawn(report_refused(
            refused.clone(),
            state.limits.max_connections,
            shutdown.clone(),
        ));
        accept_loop(
            &tcp,
            &slots,
            &refused,
            &shutdown,
            &tracker,
            |stream, peer| {
                let state = state.clone();
                let tls = tls.clone();
                let shutdown = shutdown.clone();
                async move {
                    match tls {
                        None => connection::serve(stream, peer, state, shutdown).await,
                        Some(acceptor) => {
                            if let Some(stream) = handshake(&acceptor, stream, peer, &state).await {
                                connection::serve(stream, peer, state, shutdown).await
                            }
                        }
                    }
                }
            },
        )
        .await;
        drop(tcp);
        tracker.close();
        if tokio::time::timeout(state.limits.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time");
        }
        state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Accepts TCP connections on `listener` until `shutdown`, each under a
/// slot of the connection cap shared by every listener (those refused at
/// the cap are counted for [`report_refused`]), and serves each with
/// `serve` on a task of `tracker`.
pub(crate) async fn accept_loop<F, Fut>(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    refused: &AtomicU64,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Counted, not logged: a flood at the cap would otherwise
            // write a line per connection (report_refused sums them).
            refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = serve(stream, peer);
        tracker.spawn(async move {
            served.await;
            drop(permit);
        });
    }
}

/// A new connection's TLS handshake, within the handshake timeout; `None`
/// (logged at debug level) if it failed or took too long.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    state: &State,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let handshake = state
        .clock
        .timeout(state.limits.handshake_timeout, acceptor.accept(stream))
        .await;
    match handshake {
        Some(Ok(stream)) => Some(stream),
        Some(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        None => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// QUIC's default address: the TCP address's IP and the next port.
fn quic_beside(tcp: SocketAddr) -> Result<SocketAddr, StartError> {
    let port = tcp.port().checked_add(1).ok_or_else(|| {
        StartError::Config(format!(
            "QUIC listens on the TCP port + 1 by default, and {} is the last port: \
             use --quic-listen",
            tcp.port()
        ))
    })?;
    Ok(SocketAddr::new(tcp.ip(), port))
}

/// Creates the user `admin` when there is no user at all: with
/// `GRADEBOOK_ADMIN_PASSWORD` if given, else a random password printed once.
async fn bootstrap_admin(
    store: &dyn Store,
    auth: &Auth,
    config: &Config,
) -> Result<(), StartError> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (auth::random_password().map_err(StartError::Config)?, true),
    };
    auth::check_password_policy(&password)
        .map_err(|e| StartError::Config(format!("admin password: {}", e.message)))?;
    let hash = auth
        .hash(&password)
        .await
        .map_err(|e| StartError::Config(e.message))?;
    let admin = User {
        username: "admin".into(),
        role: Role::Admin,
        student: None,
    };
    store
        .user_create(
            &admin,
            &hash,
            WriteContext::new("admin", config.clock.unix_now()),
        )
        .await?;
    if generated {
        // Printed once, on stderr, never logged.
        eprintln!(
            "created the user 'admin' with the password: {}\n\
             (shown only this once; change it with `gradebook user password`)",
            password.expose()
        );
    } else {
        tracing::info!("created the user 'admin' with the password from GRADEBOOK_ADMIN_PASSWORD");
    }
    Ok(())
}

/// How long the store remembers the UDP requests that made a write (a
/// client's retries are over within seconds; a day covers a restart).
const UDP_REQUESTS_KEPT: i64 = 24 * 3600;

/// Logs, once a second at most, how many connections were refused at the
/// connection cap in that second; a last line for those refused just
/// before shutdown.
async fn report_refused(refused: Arc<AtomicU64>, max: usize, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = every.tick() => false,
        };
        let n = refused.swap(0, Ordering::Relaxed);
        if n > 0 {
            let connections = if n == 1 { "connection" } else { "connections" };
            tracing::warn!(
                refused = n,
                max,
                "refused {n} {connections} in the last second: at the cap of {max}"
            );
        }
        if stop {
            return;
        }
    }
}

/// Forgets expired sessions now and then, in memory and in the store, and
/// the UDP requests recorded more than a day ago.
async fn purge_sessions(state: Arc<State>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = state.clock.unix_now();
        state.sessions.purge(now);
        state
            .imports
            .purge(state.clock.now(), state.limits.idle_timeout);
        if let Err(e) = state
            .store
            .sessions_purge(now, now - crate::session::IDLE_TTL)
            .await
        {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
        if let Err(e) = state.store.requests_purge(now - UDP_REQUESTS_KEPT).await {
            tracing::warn!(error = %e, "could not purge old UDP requests");
        }
        if let Err(e) = state.store.login_failures_purge(now).await {
            tracing::warn!(error = %e, "could not purge old login failures");
        }
    }
}
