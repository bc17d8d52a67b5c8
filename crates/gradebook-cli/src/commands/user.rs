//! `user create|list|delete|password`.

use gradebook_proto::data::Users;
use serde_json::{Value, json};

use super::{call, in_flags, name_key};
use crate::app::Ctx;
use crate::args::UserCommand;
use crate::config::Sessions;
use crate::error::CliError;
use crate::input;
use crate::output::{self, decode};

/// Runs one `user` subcommand.
pub async fn run(ctx: &mut Ctx, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            username,
            role,
            student,
        } => {
            let password = input::new_secret(
                &format!("Password for {username}"),
                "GRADEBOOK_NEW_PASSWORD",
            )?;
            let mut args = json!({
                "username": username,
                "password": password.expose(),
                "role": role.as_str(),
            });
            if let (Some(s), Some(map)) = (student, args.as_object_mut()) {
                map.insert("student".into(), s.into());
            }
            let data = call(ctx, "user.create", args)
                .await
                .map_err(|e| in_flags(e, &[("student", "--student ID")]))?;
            if let Some(data) = data {
                let u: gradebook_proto::data::User = decode(data)?;
                let student = u
                    .student
                    .map(|s| format!(", student {s}"))
                    .unwrap_or_default();
                output::print(&format!(
                    "Created user {} ({}{student}).",
                    u.username, u.role
                ));
            }
        }
        UserCommand::List => {
            if let Some(data) = call(ctx, "user.list", json!({})).await? {
                let mut users: Users = decode(data)?;
                if users.users.is_empty() {
                    output::print("No users.");
                    return Ok(());
                }
                users
                    .users
                    .sort_by_cached_key(|u| (name_key(&u.username), u.username.clone()));
                let mut t = output::table(&["Username", "Role", "Student"], &[2]);
                for u in &users.users {
                    t.add_row(vec![
                        u.username.clone(),
                        u.role.to_string(),
                        u.student.map(|s| s.to_string()).unwrap_or_default(),
                    ]);
                }
                output::print(&t.to_string());
            }
        }
        UserCommand::Delete { username } => {
            if call(ctx, "user.delete", json!({ "username": username }))
                .await?
                .is_some()
            {
                output::print(&format!("Deleted user {username}."));
            }
        }
        UserCommand::Password { username } => password(ctx, username).await?,
    }
    Ok(())
}

/// `user password [--user NAME]`: a user's own change needs the old
/// password; the server then revokes that user's sessions, the saved one
/// included.
async fn password(ctx: &mut Ctx, username: Option<String>) -> Result<(), CliError> {
    let saved = Sessions::load()?
        .get(&ctx.conn.server)
        .map(|s| s.username.clone());
    let own = match (&username, &saved) {
        (None, _) => true,
        (Some(u), Some(me)) => u == me,
        (Some(_), None) => false,
    };
    let mut args = serde_json::Map::new();
    match &username {
        Some(u) if !own => {
            let new =
                input::new_secret(&format!("New password for {u}"), "GRADEBOOK_NEW_PASSWORD")?;
            args.insert("new".into(), new.expose().into());
            args.insert("username".into(), u.clone().into());
        }
        _ => {
            let old = input::secret("Current password: ", Some("GRADEBOOK_PASSWORD"))?;
            let new = input::new_secret("New password", "GRADEBOOK_NEW_PASSWORD")?;
            args.insert("new".into(), new.expose().into());
            args.insert("old".into(), old.expose().into());
        }
    }
    let data = call(ctx, "user.password", Value::Object(args)).await?;
    if own {
        Sessions::load()?.remove(&ctx.conn.server)?;
    }
    if data.is_some() {
        match (&username, own) {
            (Some(u), false) => output::print(&format!(
                "Password of {u} changed; their sessions were closed."
            )),
            _ => output::print(
                "Password changed; your sessions were closed: log in again (gradebook login).",
            ),
        }
    }
    Ok(())
}
