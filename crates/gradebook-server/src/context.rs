//! What a request carries through the server: the shared [`State`], where
//! it came from ([`Origin`], [`Transport`]), who sent it ([`Caller`]) and
//! what running it gave ([`Outcome`], [`Effect`]).

use std::net::SocketAddr;
use std::sync::Arc;

use gradebook_core::Role;
use gradebook_proto::{Encoding, Secret, WireError};
use gradebook_store::{Queued, RequestKey, Store, WriteContext};
use serde_json::Value;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::Limits;
use crate::handler::{self, Data};
use crate::model::{Model, Scope};
use crate::session::{Session, Sessions, TokenHash};

/// What every request can reach: storage, sessions, authentication.
#[derive(Debug)]
pub struct State {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Live sessions.
    pub sessions: Arc<Sessions>,
    /// Password hashing and login throttling.
    pub auth: Auth,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Whether the TCP listener uses TLS.
    pub tls: bool,
    /// Promotions, students and grades as committed: what reads and
    /// permission checks read.
    pub model: Arc<Model>,
    /// Imports being sent, one per session.
    pub imports: handler::import::Imports,
    /// The connections that watch, and their feed.
    pub hub: Arc<crate::watch::Hub>,
    /// The time.
    pub clock: Clock,
}

/// Which transport a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP (or TLS) connection.
    Tcp,
    /// A UDP datagram.
    Udp,
    /// A QUIC stream (one request per stream, encrypted).
    Quic,
    /// A page or form of the web portal, run as its signed-in user.
    Http,
}

/// What the connection must do after the reply is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Switch both directions to this encoding.
    SwitchEncoding(Encoding),
    /// The connection is now logged in.
    LoggedIn(Arc<Session>),
    /// The connection's session is gone (logout, expiry, revocation).
    LoggedOut,
    /// The connection now watches: first the log's events after `since`
    /// (if given) up to the subscription's position, then the feed's.
    Watch(Watch),
    /// The connection no longer watches.
    Unwatch,
}

/// A new watch, handed from the handler to its connection.
#[derive(Clone)]
pub struct Watch {
    /// The registration, taken once by the connection.
    pub subscription: Arc<std::sync::Mutex<Option<crate::watch::Subscription>>>,
    /// Replay the log's events after this seq first.
    pub since: Option<i64>,
    /// The session that asked: events stop when it ends; a connection
    /// not logged in (the token came in the envelope) adopts it.
    pub session: Arc<Session>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("since", &self.since).finish()
    }
}

impl PartialEq for Watch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.subscription, &other.subscription)
    }
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The remote address.
    pub peer: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The session, when the request has one.
    pub session: Option<Arc<Session>>,
    /// For a UDP request: what its writes must record.
    pub udp: Option<UdpRequest>,
    /// For a write pipelined behind others: told once it is queued.
    pub queued: Option<Arc<Queued>>,
    /// The time, for the writes' timestamps.
    pub clock: Clock,
}

/// What a UDP request brings to the write it causes (protocol §6): its id,
/// recorded with the change for at-most-once execution, and the check that
/// the reply fits a datagram (otherwise the write is rolled back).
#[derive(Clone)]
pub struct UdpRequest {
    /// The request id as JSON text.
    pub id: String,
    /// Whether reply data of this size may be sent.
    pub fits: Arc<dyn Fn(&Value) -> bool + Send + Sync>,
}

impl std::fmt::Debug for UdpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRequest")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The context of a write made by this caller: who, now, and the UDP
    /// request to record with it. Writes need a session.
    pub fn write(&self) -> Result<WriteContext<'_>, WireError> {
        let session = self.session()?;
        Ok(WriteContext {
            by: &session.user.username,
            at: self.clock.unix_now(),
            request: self.udp.as_ref().map(|r| RequestKey {
                session: &session.token_hash,
                id: &r.id,
                fits: &r.fits,
            }),
            queued: self.queued.as_ref(),
        })
    }

    /// Which grades this caller may read (protocol §9): a student, only
    /// published ones; teachers and admins, all of them.
    pub fn scope(&self) -> Scope {
        match self.session.as_deref().map(|s| s.user.role) {
            Some(Role::Admin | Role::Teacher) => Scope::All,
            Some(Role::Student) | None => Scope::Published,
        }
    }

    /// The session of a command that the permission check let through
    /// with one; `unauthenticated` if, against expectations, there is none.
    pub fn session(&self) -> Result<&Session, WireError> {
        self.session
            .as_deref()
            .ok_or_else(|| WireError::unauthenticated("log in first (auth.login)"))
    }
}

/// Where a parsed request comes from.
#[derive(Debug)]
pub struct Origin<'a> {
    /// The token in the request's envelope.
    pub token: Option<&'a Secret>,
    /// The session the TCP connection logged in with.
    pub connection_session: Option<&'a TokenHash>,
    /// The remote address.
    pub peer: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// A UDP request's key, for the write it may cause.
    pub udp: Option<UdpRequest>,
    /// Told once the write the request causes is queued.
    pub queued: Option<Arc<Queued>>,
}

/// What running a request gave.
#[derive(Debug)]
pub struct Outcome {
    /// The reply's data, or its error.
    pub result: Result<Data, WireError>,
    /// What the connection must do.
    pub effect: Effect,
    /// Whether it ran in a valid session (UDP's anti-amplification rule
    /// and reply cache apply to requests made before authentication).
    pub authenticated: bool,
}

impl Outcome {
    /// A request refused before any handler ran.
    pub fn refused(e: WireError) -> Self {
        Outcome {
            result: Err(e),
            effect: Effect::None,
            authenticated: false,
        }
    }
}
