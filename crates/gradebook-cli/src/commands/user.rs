//! `user create|list|delete|password`.

use gradebook_proto::call;
use gradebook_proto::command::{NoArgs, UserCreateArgs, UserPasswordArgs, UsernameArgs};

use super::{in_flags, name_key, request};
use crate::app::Ctx;
use crate::args::UserCommand;
use crate::config::Sessions;
use crate::error::CliError;
use crate::input;
use crate::output;

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
            let create = call::UserCreate(UserCreateArgs {
                username,
                password,
                role: role.as_str().to_owned(),
                student,
            });
            let created = request(ctx, create)
                .await
                .map_err(|e| in_flags(e, &[("student", "--student ID")]))?;
            if let Some(u) = created {
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
            if let Some(mut users) = request(ctx, call::UserList(NoArgs {})).await? {
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
            let delete = call::UserDelete(UsernameArgs {
                username: username.clone(),
            });
            if request(ctx, delete).await?.is_some() {
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
    let change = match &username {
        Some(u) if !own => UserPasswordArgs {
            new: input::new_secret(&format!("New password for {u}"), "GRADEBOOK_NEW_PASSWORD")?,
            old: None,
            username: Some(u.clone()),
        },
        _ => {
            let old = input::secret("Current password: ", Some("GRADEBOOK_PASSWORD"))?;
            UserPasswordArgs {
                new: input::new_secret("New password", "GRADEBOOK_NEW_PASSWORD")?,
                old: Some(old),
                username: None,
            }
        }
    };
    let data = request(ctx, call::UserPassword(change)).await?;
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
