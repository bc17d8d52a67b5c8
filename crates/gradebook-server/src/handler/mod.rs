//! Command handlers, one module per family. A handler gets a command that
//! has passed the permission check, validates its values with
//! `gradebook-core` (`invalid_value`), calls the store and shapes the reply.

mod account;
mod grade;
pub mod import;
mod promotion;
mod student;
mod watch;

use gradebook_proto::{Command, ErrorCode, WireError};
use gradebook_store::StoreError;
use serde::Serialize;
use serde_json::Value;

use crate::context::{Caller, Effect, State};

/// The result of a handler: reply data, and what the connection must do.
pub type Handled = Result<(Data, Effect), WireError>;

/// A reply's data, as the handler built it. It goes to the wire as is (in
/// JSON or MessagePack) without a detour through a [`Value`] tree, which
/// costs an allocation per key and per string.
pub struct Data(Box<dyn erased_serde::Serialize + Send + Sync>);

impl Data {
    /// Data from any serialisable value.
    pub fn new<T: Serialize + Send + Sync + 'static>(data: T) -> Self {
        Data(Box::new(data))
    }

    /// The data as a [`Value`] (for UDP, which checks and records it).
    pub fn to_value(&self) -> Result<Value, WireError> {
        serde_json::to_value(self).map_err(|e| {
            tracing::error!(error = %e, "could not serialise a reply");
            WireError::internal()
        })
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        erased_serde::serialize(self.0.as_ref(), s)
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Data")
    }
}

/// Runs one command.
pub async fn handle(state: &State, command: Command, caller: &Caller) -> Handled {
    use Command as C;
    match command {
        C::Hello(a) => account::hello(a, caller),
        C::Ping(_) => reply(gradebook_proto::data::Pong { pong: true }),
        C::Login(a) => account::login(state, a, caller).await,
        C::Logout(_) => account::logout(state, caller).await,
        C::Whoami(_) => account::whoami(caller),
        C::UserCreate(a) => account::user_create(state, a, caller).await,
        C::UserList(_) => account::user_list(state).await,
        C::UserDelete(a) => account::user_delete(state, a, caller).await,
        C::UserPassword(a) => account::user_password(state, a, caller).await,
        C::PromotionCreate(a) => promotion::create(state, a, caller).await,
        C::PromotionList(_) => promotion::list(state, caller).await,
        C::PromotionShow(a) => promotion::show(state, a).await,
        C::PromotionDelete(a) => promotion::delete(state, a, caller).await,
        C::PromotionGrant(a) => promotion::grant(state, a, true, caller).await,
        C::PromotionRevoke(a) => promotion::grant(state, a, false, caller).await,
        C::PromotionUpdate(a) => promotion::update(state, a, caller).await,
        C::PromotionLock(a) => promotion::lock(state, a, true, caller).await,
        C::PromotionUnlock(a) => promotion::lock(state, a, false, caller).await,
        C::GradePublish(a) => promotion::publish(state, a, true, caller).await,
        C::GradeUnpublish(a) => promotion::publish(state, a, false, caller).await,
        C::PromotionAverage(a) => promotion::average(state, a, caller).await,
        C::PromotionSubjects(a) => promotion::subjects(state, a, caller).await,
        C::StudentAdd(a) => student::add(state, a, caller).await,
        C::StudentList(a) => student::list(state, a).await,
        C::StudentUpdate(a) => student::update(state, a, caller).await,
        C::StudentRemove(a) => student::remove(state, a, caller).await,
        C::StudentShow(a) => student::show(state, a, caller).await,
        C::StudentAverage(a) => student::average(state, a, caller).await,
        C::StudentExplain(a) => student::explain(state, a, caller).await,
        C::GradeAdd(a) => grade::add(state, a, caller).await,
        C::GradeUpdate(a) => grade::update(state, a, caller).await,
        C::GradeDelete(a) => grade::delete(state, a, caller).await,
        C::GradeList(a) => grade::list(state, a, caller).await,
        C::Watch(a) => watch::watch(state, a, caller),
        C::Unwatch(_) => watch::unwatch(state, caller),
        C::AuditList(a) => grade::audit(state, a).await,
        C::AuditVerify(_) => grade::verify(state).await,
        C::ImportBegin(a) => import::begin(state, a, caller).await,
        C::ImportRows(a) => import::rows(state, a, caller).await,
        C::ImportCommit(a) => import::commit(state, a, caller).await,
        C::ImportAbort(a) => import::abort(state, a, caller).await,
    }
}

/// Maps a store error to its reply, including the two ways a UDP write
/// changes nothing: its request was already executed (`udp` then answers
/// with the recorded reply instead), or its reply would not fit a datagram.
fn from_store(e: StoreError) -> WireError {
    match e {
        StoreError::TooLarge => WireError::new(
            ErrorCode::TooLarge,
            "the reply would not fit a datagram, so nothing was changed: \
             send this request over TCP",
        ),
        StoreError::Duplicate => {
            WireError::conflict("this request id was already used in this session")
        }
        other => crate::error::from_store(other),
    }
}

/// A success reply carrying `data`.
fn reply<T: Serialize + Send + Sync + 'static>(data: T) -> Handled {
    Ok((Data::new(data), Effect::None))
}

/// The reply of a command with nothing to return: `{}`.
fn done() -> Handled {
    reply(gradebook_proto::data::Done {})
}

/// Puts every name a command carries in NFC (spec §4), before anything
/// looks it up: "E\u{301}cole" finds the promotion stored as "École", in
/// the permission check and the read cache as in the handler. Validation
/// comes later, in the handler, on the same form.
///
/// One arm per command, no `_ =>`: a new command must say which of its
/// arguments are names.
pub fn normalize_names(command: &mut Command) {
    use Command as C;
    let nfc = gradebook_core::to_nfc;
    match command {
        C::Hello(_)
        | C::Ping(_)
        | C::Logout(_)
        | C::Whoami(_)
        | C::UserList(_)
        | C::PromotionList(_)
        | C::StudentRemove(_)
        | C::StudentShow(_)
        | C::StudentAverage(_)
        | C::StudentExplain(_)
        | C::GradeDelete(_)
        | C::GradeList(_)
        | C::AuditVerify(_)
        | C::Unwatch(_)
        // The lines' names are normalised where they are read, in
        // `gradebook_core::import`.
        | C::ImportRows(_)
        | C::ImportCommit(_)
        | C::ImportAbort(_) => {}
        C::Login(a) => nfc(&mut a.username),
        C::UserCreate(a) => nfc(&mut a.username),
        C::UserDelete(a) => nfc(&mut a.username),
        C::UserPassword(a) => a.username.iter_mut().for_each(nfc),
        C::PromotionCreate(a) => nfc(&mut a.name),
        C::PromotionShow(a)
        | C::PromotionAverage(a)
        | C::PromotionSubjects(a)
        | C::PromotionLock(a)
        | C::PromotionUnlock(a) => nfc(&mut a.name),
        C::PromotionUpdate(a) => nfc(&mut a.name),
        C::GradePublish(a) | C::GradeUnpublish(a) => {
            nfc(&mut a.promotion);
            a.subject.iter_mut().for_each(nfc);
            a.label.iter_mut().for_each(nfc);
        }
        C::PromotionDelete(a) => nfc(&mut a.name),
        C::PromotionGrant(a) | C::PromotionRevoke(a) => {
            nfc(&mut a.name);
            nfc(&mut a.username);
        }
        C::StudentAdd(a) => {
            nfc(&mut a.promotion);
            nfc(&mut a.first_name);
            nfc(&mut a.last_name);
        }
        C::StudentList(a) => nfc(&mut a.promotion),
        C::StudentUpdate(a) => {
            a.promotion.iter_mut().for_each(nfc);
            a.first_name.iter_mut().for_each(nfc);
            a.last_name.iter_mut().for_each(nfc);
        }
        C::GradeAdd(a) => {
            nfc(&mut a.subject);
            a.label.iter_mut().for_each(nfc);
        }
        C::GradeUpdate(a) => {
            a.subject.iter_mut().for_each(nfc);
            a.label.iter_mut().flatten().for_each(nfc);
        }
        C::AuditList(a) => a.promotion.iter_mut().for_each(nfc),
        C::Watch(a) => a.promotion.iter_mut().for_each(nfc),
        C::ImportBegin(a) => nfc(&mut a.promotion),
    }
}

/// Validates a name (spec §4): NFC, 1–64 characters, no control or
/// invisible characters. The one rule for every kind of name.
fn name(field: &str, value: String) -> Result<String, WireError> {
    Ok(gradebook_core::Name::parse_owned(field, value)?.into_string())
}

/// Validates an optional name: `None` stays `None`.
fn optional_name(field: &str, value: Option<String>) -> Result<Option<String>, WireError> {
    value.map(|v| name(field, v)).transpose()
}
