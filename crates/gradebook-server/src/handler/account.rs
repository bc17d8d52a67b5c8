//! `hello`, `auth.*` and `user.*`: greeting, sessions, accounts.

use gradebook_core::{Role, User};
use gradebook_proto::command::{
    HelloArgs, LoginArgs, UserCreateArgs, UserPasswordArgs, UsernameArgs,
};
use gradebook_proto::data::{Hello, Login, Users, Whoami};
use gradebook_proto::{Encoding, WireError};

use super::{Handled, done, from_store, name, reply};
use crate::auth::{self, check_password_policy};
use crate::context::{Caller, Effect, State, Transport};

use crate::session::{self, ABSOLUTE_TTL, Session};

/// Usernames: names (NFC, 1–64 characters, no control or invisible
/// characters), without spaces.
fn username(value: String) -> Result<String, WireError> {
    let value = name("username", value)?;
    if value.chars().any(char::is_whitespace) {
        return Err(WireError::invalid_value("username must not contain spaces"));
    }
    Ok(value)
}

pub fn hello(args: HelloArgs, caller: &Caller) -> Handled {
    let encoding = match args.encoding.as_deref() {
        None => None,
        Some(name) => Some(Encoding::from_name(name).ok_or_else(|| {
            WireError::invalid_value(format!(
                "unknown encoding '{}': json or msgpack",
                name.escape_debug()
            ))
        })?),
    };
    let (data, _) = reply(Hello {
        server: "gradebook".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: gradebook_proto::PROTOCOL_VERSION,
        encodings: vec!["json".into(), "msgpack".into()],
    })?;
    // A datagram picks its encoding by itself; only a stream switches.
    let effect = match (encoding, caller.transport) {
        (Some(e), Transport::Tcp) => Effect::SwitchEncoding(e),
        _ => Effect::None,
    };
    Ok((data, effect))
}

pub async fn login(state: &State, args: LoginArgs, caller: &Caller) -> Handled {
    let addr = Some(caller.peer.ip());
    let store = state.store.as_ref();
    state
        .auth
        .check_throttle(store, &args.username, addr)
        .await?;
    // An over-long password cannot be anyone's (the policy caps them), and
    // hashing megabytes would be a cheap way to load the server.
    let credentials = if args.password.expose().len() > auth::PASSWORD_MAX_BYTES {
        None
    } else {
        state
            .store
            .user_credentials(&args.username)
            .await
            .map_err(from_store)?
    };
    let ok = state
        .auth
        .verify(
            &args.password,
            credentials.as_ref().map(|c| c.password_hash.as_str()),
        )
        .await;
    let Some(credentials) = credentials.filter(|_| ok) else {
        state.auth.record_failure(store, &args.username, addr).await;
        tracing::info!(peer = %caller.peer, "failed login");
        return Err(auth::login_failed());
    };
    state.auth.record_success(store, &args.username).await;
    let token = session::new_token().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a session token");
        WireError::internal()
    })?;
    let hash = session::hash_token(&token);
    let now = state.clock.unix_now();
    let expires_at = now + ABSOLUTE_TTL;
    state
        .store
        .session_create(&hash, credentials.user_id, now, expires_at)
        .await
        .map_err(from_store)?;
    let role = credentials.user.role;
    tracing::info!(user = %credentials.user.username, peer = %caller.peer, "login");
    let session = state.sessions.insert(
        Session {
            token_hash: hash,
            user_id: credentials.user_id,
            user: credentials.user,
        },
        now,
        expires_at,
    );
    let (data, _) = reply(Login {
        token,
        role,
        expires_in: ABSOLUTE_TTL as u64,
    })?;
    Ok((data, Effect::LoggedIn(session)))
}

pub async fn logout(state: &State, caller: &Caller) -> Handled {
    let session = caller.session()?;
    state
        .store
        .session_delete(&session.token_hash, caller.write()?)
        .await
        .map_err(from_store)?;
    // The cache dropped the session as the change was applied (`memory`).
    let (data, _) = done()?;
    Ok((data, Effect::LoggedOut))
}

pub fn whoami(caller: &Caller) -> Handled {
    let user = &caller.session()?.user;
    reply(Whoami {
        username: user.username.clone(),
        role: user.role,
        student: user.student,
    })
}

pub async fn user_create(state: &State, args: UserCreateArgs, caller: &Caller) -> Handled {
    let username = username(args.username)?;
    let role: Role = args.role.parse()?;
    match (role, args.student) {
        (Role::Student, None) => {
            return Err(WireError::invalid_value(
                "a student account needs the id of its student record (student)",
            ));
        }
        (Role::Admin | Role::Teacher, Some(_)) => {
            return Err(WireError::invalid_value(
                "only a student account is linked to a student record",
            ));
        }
        _ => {}
    }
    check_password_policy(&args.password)?;
    let hash = state.auth.hash(&args.password).await?;
    let user = User {
        username,
        role,
        student: args.student,
    };
    let user = state
        .store
        .user_create(&user, &hash, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(user)
}

pub async fn user_list(state: &State) -> Handled {
    let users = state.store.user_list().await.map_err(from_store)?;
    reply(Users { users })
}

pub async fn user_delete(state: &State, args: UsernameArgs, caller: &Caller) -> Handled {
    if caller.session()?.user.username == args.username {
        return Err(WireError::conflict(
            "you cannot delete your own account: log in as another admin",
        ));
    }
    // `not_found` from the store when there is no such account.
    state
        .store
        .user_delete(&args.username, caller.write()?)
        .await
        .map_err(from_store)?;
    // Its sessions ended as the change was applied (`memory`).
    done()
}

pub async fn user_password(state: &State, args: UserPasswordArgs, caller: &Caller) -> Handled {
    let me = caller.session()?;
    let own = args
        .username
        .as_ref()
        .is_none_or(|u| *u == me.user.username);
    let target_name = args.username.unwrap_or_else(|| me.user.username.clone());
    if !own && me.user.role != Role::Admin {
        return Err(WireError::forbidden(
            "only an admin may change another user's password",
        ));
    }
    let target = state
        .store
        .user_credentials(&target_name)
        .await
        .map_err(from_store)?
        .ok_or_else(|| {
            WireError::not_found(format!("no user named '{}'", target_name.escape_debug()))
        })?;
    if own {
        let old = args.old.as_ref().ok_or_else(|| {
            WireError::invalid_value("give your current password (old) to change it")
        })?;
        if !state.auth.verify(old, Some(&target.password_hash)).await {
            return Err(WireError::unauthenticated("the current password is wrong"));
        }
    }
    check_password_policy(&args.new)?;
    let hash = state.auth.hash(&args.new).await?;
    state
        .store
        .user_set_password(&target_name, &hash, caller.write()?)
        .await
        .map_err(from_store)?;
    // Every session of the account ended as the change was applied
    // (`memory`), this one included when it is one's own: whoever knew the
    // old password is logged out.
    let (data, _) = done()?;
    Ok((data, if own { Effect::LoggedOut } else { Effect::None }))
}
