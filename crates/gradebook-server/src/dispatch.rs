//! One request, from its command to its outcome: the transport rule, the
//! session, the permission check ([`permission`]), the handler.
//!
//! Every transport comes through here: a TCP connection passes the session
//! it logged in with, a datagram carries its token in the envelope.

use gradebook_proto::{Command, ErrorCode, WireError};

use crate::context::{Caller, Effect, Origin, Outcome, State, Transport};
use crate::facts::facts;
use crate::handler;
use crate::permission::authorize;
use crate::session::{self, Invalid};

/// Runs one parsed command, from the transport rule to the handler's
/// reply: every refusal on the way is the outcome's error.
pub async fn execute(state: &State, mut command: Command, from: Origin<'_>) -> Outcome {
    let Origin {
        token,
        connection_session,
        peer,
        transport,
        udp,
        queued,
    } = from;
    handler::normalize_names(&mut command);
    let name = command.name();
    if transport == Transport::Udp && state.tls && !matches!(name, "hello" | "ping") {
        return Outcome::refused(WireError::new(
            ErrorCode::InsecureTransport,
            "this server uses TLS: over UDP it serves only hello and ping; use TCP",
        ));
    }

    // The session: the envelope's token, else the connection's own.
    let public = facts(&command).is_public();
    // With several servers on one database, first apply every change
    // committed (anywhere) before this request arrived: the session check,
    // the permission check and the reply all see what was acknowledged.
    if !public
        && state.store.shared()
        && let Err(e) = state.store.sync().await
    {
        tracing::error!(error = %e, "cannot check that this server's data is current");
        return Outcome::refused(WireError::new(
            ErrorCode::Unavailable,
            "the database cannot be reached, so this server cannot be sure its data is \
             current: try again later",
        ));
    }
    let token_hash = token
        .map(session::hash_token)
        .or(connection_session.copied());
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
                return Outcome {
                    effect: if token.is_some() {
                        Effect::None
                    } else {
                        Effect::LoggedOut
                    },
                    ..Outcome::refused(WireError::unauthenticated(message))
                };
            }
        },
        _ => None,
    };
    if !public && session.is_none() {
        return Outcome::refused(WireError::unauthenticated(format!(
            "{name} needs a session: log in first (auth.login)"
        )));
    }
    let caller = Caller {
        peer,
        transport,
        session,
        udp,
        queued,
        clock: state.clock.clone(),
    };
    let authenticated = caller.session.is_some();

    if let Err(e) = authorize(state, &command, &caller) {
        return Outcome {
            authenticated,
            ..Outcome::refused(e)
        };
    }
    let (result, effect) = match handler::handle(state, command, &caller).await {
        Ok((data, effect)) => (Ok(data), effect),
        Err(e) => (Err(e), Effect::None),
    };
    Outcome {
        result,
        effect,
        authenticated,
    }
}
