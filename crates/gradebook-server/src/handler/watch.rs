//! `watch` and `unwatch`: live events on a connection (protocol §9): a
//! TCP connection writes them between its replies, a QUIC connection on a
//! stream of their own (§10), the web portal as server-sent events.

use std::sync::{Arc, Mutex};

use gradebook_proto::command::WatchArgs;
use gradebook_proto::data::Watching;
use gradebook_proto::{ErrorCode, WireError};

use super::Data;
use super::Handled;
use crate::context::{Caller, Effect, State, Transport, Watch};
use crate::watch::Filter;

/// Events need a connection to arrive on.
fn over_a_connection(caller: &Caller) -> Result<(), WireError> {
    match caller.transport {
        // The portal's live pages read the subscription as server-sent
        // events.
        Transport::Tcp | Transport::Quic | Transport::Http => Ok(()),
        Transport::Udp => Err(WireError::new(
            ErrorCode::BadRequest,
            "watch needs a connection for its events: use TCP or QUIC",
        )),
    }
}

pub fn watch(state: &State, args: WatchArgs, caller: &Caller) -> Handled {
    over_a_connection(caller)?;
    let session = caller.session()?;
    if args.since.is_some_and(|s| s < 0) {
        return Err(WireError::invalid_value("since must be 0 or more"));
    }
    let (promotion, student) = {
        let view = state.model.read();
        let promotion = args
            .promotion
            .as_deref()
            .map(|name| view.promotion_id(name))
            .transpose()?;
        if let Some(id) = args.student {
            view.student(id)?;
        }
        (promotion, args.student)
    };
    let filter = Filter {
        role: session.user.role,
        user: session.user_id,
        own_student: session.user.student,
        promotion,
        student,
    };
    let subscription = state
        .hub
        .subscribe(filter, &state.model, state.limits.watch_queue);
    let seq = subscription.seq;
    let effect = Effect::Watch(Watch {
        subscription: Arc::new(Mutex::new(Some(subscription))),
        since: args.since,
        session: caller
            .session
            .clone()
            .ok_or_else(|| WireError::unauthenticated("log in first (auth.login)"))?,
    });
    Ok((
        Data::new(Watching {
            watching: true,
            seq,
        }),
        effect,
    ))
}

pub fn unwatch(state: &State, caller: &Caller) -> Handled {
    over_a_connection(caller)?;
    let seq = state.model.read().seq();
    Ok((
        Data::new(Watching {
            watching: false,
            seq,
        }),
        Effect::Unwatch,
    ))
}
