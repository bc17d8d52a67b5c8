//! One request, from its frame to its reply: decode, resolve the session,
//! check the permission table, run the handler.
//!
//! Both transports come through here: a TCP connection passes the session
//! it logged in with, a datagram carries its token in the envelope.

use std::net::SocketAddr;
use std::sync::Arc;

use gradebook_proto::{Command, Encoding, ErrorCode, Secret, WireError};
use gradebook_store::{Queued, RequestKey, Store, WriteContext};
use serde_json::Value;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::Limits;
use crate::facts::{Access, Target, facts};
use crate::handler::{self, Data};
use crate::model::{Model, View};
use crate::session::{self, Invalid, Session, Sessions, TokenHash};

/// What every request can reach: storage, sessions, authentication.
#[derive(Debug)]
pub struct State {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Live sessions.
    pub sessions: Sessions,
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

/// Runs one parsed command: the transport rule, the session, the permission
/// check, the handler.
pub async fn execute(state: &State, mut command: Command, from: Origin<'_>) -> Outcome {
    handler::normalize_names(&mut command);
    let mut authenticated = false;
    let result = run(state, command, from, &mut authenticated).await;
    let (result, effect) = match result {
        Ok((data, effect)) => (Ok(data), effect),
        Err((e, effect)) => (Err(e), effect),
    };
    Outcome {
        result,
        effect,
        authenticated,
    }
}

async fn run(
    state: &State,
    command: Command,
    from: Origin<'_>,
    authenticated: &mut bool,
) -> Result<(Data, Effect), (WireError, Effect)> {
    let Origin {
        token,
        connection_session,
        peer,
        transport,
        udp,
        queued,
    } = from;
    let name = command.name();
    if transport == Transport::Udp && state.tls && !matches!(name, "hello" | "ping") {
        return Err((
            WireError::new(
                ErrorCode::InsecureTransport,
                "this server uses TLS: over UDP it serves only hello and ping; use TCP",
            ),
            Effect::None,
        ));
    }
    let token_hash = token
        .map(session::hash_token)
        .or(connection_session.copied());
    let facts = facts(&command);
    let public = facts.is_public();
    let session = match token_hash {
        Some(hash) if !public => match state.sessions.check(state.store.as_ref(), &hash).await {
            Ok(s) => Some(s),
            Err(why) => {
                let message = match why {
                    Invalid::Expired => "your session has expired: log in again",
                    Invalid::Unknown => "your session is not valid (revoked?): log in again",
                };
                // A bad token in an envelope says nothing about the
                // connection's own session.
                let effect = if token.is_some() {
                    Effect::None
                } else {
                    Effect::LoggedOut
                };
                return Err((WireError::unauthenticated(message), effect));
            }
        },
        _ => None,
    };
    if !public && session.is_none() {
        return Err((
            WireError::unauthenticated(format!(
                "{name} needs a session: log in first (auth.login)"
            )),
            Effect::None,
        ));
    }
    *authenticated = session.is_some();
    let caller = Caller {
        peer,
        transport,
        session,
        udp,
        queued,
        clock: state.clock.clone(),
    };
    authorize(state, &command, &caller).map_err(|e| (e, Effect::None))?;
    handler::handle(state, command, &caller)
        .await
        .map_err(|e| (e, Effect::None))
}

/// The one permission check: the command's rule for the caller's role
/// (its one description, [`facts`]), and for scoped rules, whether the
/// target is theirs.
fn authorize(state: &State, command: &Command, caller: &Caller) -> Result<(), WireError> {
    let Some(session) = caller.session.as_deref() else {
        // Only public commands get this far without a session.
        return Ok(());
    };
    let role = session.user.role;
    let facts = facts(command);
    let denied = || {
        WireError::forbidden(format!(
            "a {role} may not run {} on this target",
            command.name()
        ))
    };
    let view = state.model.read();
    match facts.access(role) {
        Access::Public | Access::Allow => Ok(()),
        Access::Deny => Err(WireError::forbidden(format!(
            "a {role} may not run {}",
            command.name()
        ))),
        Access::ManagedPromotion => {
            let targets = target_promotions(state, &view, facts.target, session)
                .map_err(|e| hide_existence(e, command))?;
            if targets.is_empty() {
                return Err(WireError::forbidden(format!(
                    "a {role} must name a promotion or student they manage for {}",
                    command.name()
                )));
            }
            for promotion in targets {
                let managed = view
                    .promotion(&promotion)
                    .is_ok_and(|p| p.managed_by(session.user_id));
                if !managed {
                    // The same words whatever the reason, and never the
                    // name of a promotion found through a student id.
                    return Err(hide_existence(WireError::not_found(promotion), command));
                }
            }
            Ok(())
        }
        Access::OwnPromotion => {
            let own = own_student(&view, session)?;
            let targets = target_promotions(state, &view, facts.target, session)
                .map_err(|e| hide_existence(e, command))?;
            if targets.iter().all(|p| *p == own) && !targets.is_empty() {
                Ok(())
            } else {
                Err(denied())
            }
        }
        Access::OwnStudent => {
            let own = session.user.student.ok_or_else(denied)?;
            match target_student(&view, facts.target).map_err(|e| hide_existence(e, command))? {
                Some(s) if s == own => Ok(()),
                _ => Err(denied()),
            }
        }
    }
}

/// For a scoped role, a student or grade that does not exist looks like one
/// that is not theirs: `not_found` would tell which ids exist elsewhere.
fn hide_existence(e: WireError, command: &Command) -> WireError {
    if e.code == ErrorCode::NotFound {
        WireError::forbidden(format!(
            "{}: no such target among those you may use",
            command.name()
        ))
    } else {
        e
    }
}

/// The promotion of the student record linked to a student account.
fn own_student(view: &View<'_>, session: &Session) -> Result<String, WireError> {
    let id = session
        .user
        .student
        .ok_or_else(|| WireError::forbidden("this student account has no student record"))?;
    Ok(view.student(id)?.student().promotion.clone())
}

/// The promotions a target touches (a move touches two). Empty for a
/// target with no promotion, which scoped rules then refuse.
fn target_promotions(
    state: &State,
    view: &View<'_>,
    target: Target<'_>,
    session: &Session,
) -> Result<Vec<String>, WireError> {
    let of_student = |id: i64| -> Result<String, WireError> {
        Ok(view.student(id)?.student().promotion.clone())
    };
    Ok(match target {
        Target::Nothing => vec![],
        Target::Promotion(name) => vec![name.to_owned()],
        Target::Student(id) => vec![of_student(id)?],
        Target::Grade(id) => vec![of_student(view.grade(id)?.student)?],
        Target::Move { student, to } => {
            let mut v = vec![of_student(student)?];
            v.extend(to.map(str::to_owned));
            v
        }
        Target::Audit { promotion, student } => {
            let mut v: Vec<String> = promotion.map(str::to_owned).into_iter().collect();
            if let Some(s) = student {
                v.push(of_student(s)?);
            }
            v
        }
        // The import is the session's own; its promotion is checked again
        // when it is written, in case the grant was taken away meanwhile.
        Target::Import(id) => vec![
            state
                .imports
                .promotion_of(&session.token_hash, id)
                .ok_or_else(|| WireError::not_found(format!("no open import {id}")))?,
        ],
    })
}

/// The student a target is about, for the student role's own-record rule.
fn target_student(view: &View<'_>, target: Target<'_>) -> Result<Option<i64>, WireError> {
    Ok(match target {
        Target::Student(id) => Some(id),
        Target::Grade(id) => Some(view.grade(id)?.student),
        Target::Nothing
        | Target::Promotion(_)
        | Target::Move { .. }
        | Target::Audit { .. }
        | Target::Import(_) => None,
    })
}
