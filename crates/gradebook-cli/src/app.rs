//! Running one client command: the connection, the command's module, and
//! the exit code. The shell runs its lines through [`execute`] too.

use std::process::ExitCode;

use crate::args::{AuthCommand, Command, Global};
use crate::commands;
use crate::connect::Conn;
use crate::error::CliError;
use crate::output;

/// What a command runs with: the connection (opened on first use) and how
/// to print.
#[derive(Debug)]
pub struct Ctx {
    /// The connection and saved session.
    pub conn: Conn,
    /// Print the server's data as JSON.
    pub json: bool,
    /// Running inside `gradebook shell` (standard input is not free when
    /// it carries a script).
    pub in_shell: bool,
}

/// A current-thread runtime: the client is async, the command line is
/// not (and rustyline blocks), so each command is one `block_on`.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))
}

/// Runs one client command (not `serve`) and gives the exit code.
pub fn run(global: Global, command: Command) -> ExitCode {
    let result = match command {
        Command::Shell(args) => return crate::shell::run(global, args),
        Command::Completions(args) => commands::misc::completions(args.shell),
        Command::Fingerprint(args) => commands::misc::fingerprint(&args.cert),
        Command::Backup(args) => crate::backup::run(&args, global.json),
        Command::Migrate(args) => {
            runtime().and_then(|rt| rt.block_on(crate::migrate::run(&args, global.json)))
        }
        command => runtime().and_then(|rt| {
            let json = global.json;
            let mut ctx = Ctx {
                conn: Conn::new(global, true),
                json,
                in_shell: false,
            };
            rt.block_on(execute(&mut ctx, command))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints a failure on standard error.
pub fn report(e: &CliError) {
    match e {
        // Already reported line by line.
        CliError::Failed(m) if m.is_empty() => {}
        e => output::print_error(&e.to_string()),
    }
}

/// Runs one command on `ctx`'s connection.
pub async fn execute(ctx: &mut Ctx, command: Command) -> Result<(), CliError> {
    use commands::*;
    match command {
        Command::Serve(_) => Err(CliError::usage(
            "serve runs on its own: gradebook serve (not in the shell)",
        )),
        Command::Bench(_) => Err(CliError::usage(
            "bench runs on its own: gradebook bench (not in the shell)",
        )),
        Command::Shell(_) => Err(CliError::usage("already in the shell")),
        Command::Completions(args) => misc::completions(args.shell),
        Command::Fingerprint(args) => misc::fingerprint(&args.cert),
        Command::Backup(args) => crate::backup::run(&args, ctx.json),
        Command::Migrate(args) => crate::migrate::run(&args, ctx.json).await,
        Command::Login(args) | Command::Auth(AuthCommand::Login(args)) => {
            auth::login(ctx, args).await
        }
        Command::Logout | Command::Auth(AuthCommand::Logout) => auth::logout(ctx).await,
        Command::Whoami | Command::Auth(AuthCommand::Whoami) => auth::whoami(ctx).await,
        Command::Ping => misc::ping(ctx).await,
        Command::Hello => misc::hello(ctx).await,
        Command::User(c) => user::run(ctx, c).await,
        Command::Promotion(c) => promotion::run(ctx, c).await,
        Command::Student(c) => student::run(ctx, c).await,
        Command::Grade(c) => grade::run(ctx, c).await,
        Command::Audit(c) => audit::run(ctx, c).await,
        Command::Watch(args) => watch::run(ctx, args).await,
        Command::Import(c) => crate::import::import(ctx, c).await,
        Command::Export(c) => crate::export::export(ctx, c).await,
    }
}
