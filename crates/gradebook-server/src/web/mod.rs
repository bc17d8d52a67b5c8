//! The web portal: one more front door onto the same command path.
//!
//! `gradebook serve` serves it over HTTPS with the protocol's certificate
//! (HTTP on loopback with `--plaintext`). Each page or form runs the
//! protocol's commands through [`crate::dispatch::execute`] as the signed-in
//! user ([`call`]), so the portal re-implements no rule and no computation:
//! what a student may see, a teacher may change, and every figure come from
//! the same handlers and permission check as a `student.show` over TCP.
//!
//! - [`session`]: the sign-in cookie (the protocol's own session token),
//!   CSRF tokens, login and logout;
//! - [`student`]: a student's grades, rank and promotion, kept live with
//!   server-sent events fed by `watch`;
//! - [`teacher`]: promotions, their tables, the grade-entry grid,
//!   publication, locking, imports and exports;
//! - [`admin`]: users, roles, grants and the audit log;
//! - [`page`]: what every page shares (layout, language, errors), [`i18n`]
//!   the French and English texts, [`assets`] the embedded CSS and scripts.
//!
//! Pages are rendered on the server (askama templates in `web/templates/`)
//! and read fine without JavaScript; the scripts (htmx and `app.js`) only
//! add live updates and the grid's keyboard. Every response forbids inline
//! scripts and framing ([`headers`]).

mod admin;
mod assets;
mod headers;
mod i18n;
mod page;
mod session;
mod student;
mod teacher;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::Request;
use gradebook_proto::{Call, Secret, WireError};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::context::{Origin, Outcome, State, Transport};
use crate::dispatch;
use crate::listener::{accept_loop, handshake};

/// What every handler of the portal can reach.
#[derive(Debug)]
pub struct Web {
    /// The server's state, as every transport has it.
    pub state: Arc<State>,
    /// Whether pages go over TLS (the cookie is then `Secure`).
    pub secure: bool,
    /// Cancelled when the server stops: live pages end their event streams.
    pub shutdown: CancellationToken,
}

/// The peer of the HTTP connection a request came on (a loopback address
/// for requests sent to the router in process, as tests do).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer::of(parts))
    }
}

impl Peer {
    /// The peer a request's parts were tagged with.
    pub fn of(parts: &axum::http::request::Parts) -> Peer {
        parts
            .extensions
            .get::<Peer>()
            .copied()
            .unwrap_or(Peer(SocketAddr::from(([127, 0, 0, 1], 0))))
    }
}

impl Web {
    /// Runs one command as the holder of `token` (or anonymously), through
    /// the protocol's one path: session, permission, handler.
    pub async fn run(
        &self,
        token: Option<&Secret>,
        peer: Peer,
        command: impl Into<gradebook_proto::Command>,
    ) -> Outcome {
        dispatch::execute(
            &self.state,
            command.into(),
            Origin {
                token,
                connection_session: None,
                peer: peer.0,
                transport: Transport::Http,
                udp: None,
                queued: None,
            },
        )
        .await
    }
}

/// Runs `c` for `token` and reads its reply as the command's own type.
pub async fn call<C: Call>(
    web: &Web,
    token: &Secret,
    peer: Peer,
    c: C,
) -> Result<C::Reply, WireError> {
    let data = web.run(Some(token), peer, c).await.result?;
    // Through JSON text, as a client reads it (cheaper than a `Value`'s
    // tree of allocations).
    let text = serde_json::to_vec(&data).map_err(|e| {
        tracing::error!(error = %e, "could not serialise a reply");
        WireError::internal()
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        tracing::error!(error = %e, "a reply did not read as its own type");
        WireError::internal()
    })
}

/// Every route of the portal.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .merge(session::routes())
        .merge(student::routes())
        .merge(teacher::routes(&web))
        .merge(admin::routes())
        .merge(assets::routes())
        .fallback(page::not_found)
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            headers::secure,
        ))
        .with_state(web)
}

/// Serves the portal on `listener` until `shutdown`: TLS handshakes bounded
/// in time, HTTP/1.1 or HTTP/2 on each connection, under the same
/// connection cap as the protocol's listeners.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    slots: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let web = Arc::new(Web {
        state: state.clone(),
        secure: tls.is_some(),
        shutdown: shutdown.clone(),
    });
    let app = router(web);
    let tracker = TaskTracker::new();
    accept_loop(
        &listener,
        &slots,
        &refused,
        &shutdown,
        &tracker,
        |stream, peer| {
            let app = app.clone();
            let tls = tls.clone();
            let state = state.clone();
            let shutdown = shutdown.clone();
            async move {
                match tls {
                    None => connection(stream, peer, app, &state, shutdown).await,
                    Some(acceptor) => {
                        if let Some(stream) = handshake(&acceptor, stream, peer, &state).await {
                            connection(stream, peer, app, &state, shutdown).await
                        }
                    }
                }
            }
        },
    )
    .await;
    tracker.close();
    tracker.wait().await;
}

/// One HTTP connection: requests are tagged with their peer; on shutdown
/// the connection finishes the request in flight and closes.
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    state: &State,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        request.map(axum::body::Body::new)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A request's head must arrive within the protocol's request timeout;
    // an idle keep-alive connection is closed after it too.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.request_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Some(state.limits.idle_timeout / 2));
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "web: connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(state.limits.shutdown_grace, conn).await;
        }
    }
}
