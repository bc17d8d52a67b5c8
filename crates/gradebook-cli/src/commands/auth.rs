//! `login`, `logout`, `whoami` (the protocol's `auth.*`): the session
//! token is saved per server, mode 0600, and sent with each command.

use gradebook_proto::call;
use gradebook_proto::command::{self, NoArgs};
use serde_json::json;

use crate::app::Ctx;
use crate::args::LoginArgs;
use crate::config::{SavedSession, Sessions};
use crate::error::CliError;
use crate::input;
use crate::output;

/// `gradebook login [USERNAME]`.
pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> Result<(), CliError> {
    let username = match args.username {
        Some(u) => u,
        None if input::stdin_is_terminal() => input::ask("Username: ")?,
        None => {
            return Err(CliError::usage(
                "give the user name: gradebook login USERNAME",
            ));
        }
    };
    if username.is_empty() {
        return Err(CliError::usage("the user name must not be empty"));
    }
    // Connect first: the server's certificate is settled before a password
    // is typed, and a server that is down is known at once.
    ctx.conn.connect().await?;
    let password = input::secret(
        &format!("Password for {username}@{}: ", ctx.conn.server),
        Some("GRADEBOOK_PASSWORD"),
    )?;
    let credentials = command::LoginArgs {
        username: username.clone(),
        password,
    };
    let login = ctx.conn.run_as(None, call::Login(credentials)).await?;
    let mut sessions = Sessions::load()?;
    sessions.set(
        &ctx.conn.server,
        SavedSession {
            username: username.clone(),
            role: login.role.to_string(),
            token: login.token,
        },
    )?;
    if ctx.json {
        // Everything but the token, which is saved and never printed.
        output::print_json(&json!({
            "username": username,
            "role": login.role,
            "expires_in": login.expires_in,
        }));
    } else {
        output::print(&format!(
            "Logged in to {} as {username} ({}); the session lasts {} hours (30 minutes idle).",
            ctx.conn.server,
            login.role,
            login.expires_in / 3600
        ));
    }
    Ok(())
}

/// `gradebook logout`: revokes the session on the server, then forgets it
/// (also when the server no longer knew it).
pub async fn logout(ctx: &mut Ctx) -> Result<(), CliError> {
    let mut sessions = Sessions::load()?;
    let Some(saved) = sessions.get(&ctx.conn.server).cloned() else {
        if ctx.json {
            output::print_json(&json!({}));
        } else {
            output::print(&format!("Not logged in to {}.", ctx.conn.server));
        }
        return Ok(());
    };
    let result = ctx
        .conn
        .run_as(Some(&saved.token), call::Logout(NoArgs {}))
        .await;
    match result {
        Ok(_) | Err(CliError::SessionExpired) => {
            sessions.remove(&ctx.conn.server)?;
            if ctx.json {
                output::print_json(&json!({}));
            } else {
                output::print(&format!(
                    "Logged out of {} ({}).",
                    ctx.conn.server, saved.username
                ));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `gradebook whoami`.
pub async fn whoami(ctx: &mut Ctx) -> Result<(), CliError> {
    let Some(w) = super::request(ctx, call::Whoami(NoArgs {})).await? else {
        return Ok(());
    };
    let student = w
        .student
        .map(|s| format!(", student {s}"))
        .unwrap_or_default();
    output::print(&format!(
        "{} ({}{student}) on {}",
        w.username, w.role, ctx.conn.server
    ));
    Ok(())
}
