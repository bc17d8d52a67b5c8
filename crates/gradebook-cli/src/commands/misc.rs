//! `ping`, `hello`, `completions` and `fingerprint`.

use std::path::Path;
use std::time::Instant;

use clap::CommandFactory;
use gradebook_proto::command::{HelloArgs, NoArgs};
use gradebook_proto::{Command, call};

use super::request;
use crate::app::Ctx;
use crate::args::Cli;
use crate::error::CliError;
use crate::output;

/// `gradebook ping`: the round trip, measured.
pub async fn ping(ctx: &mut Ctx) -> Result<(), CliError> {
    // Connect first, so the time is one request's, not the handshake's.
    ctx.conn.connect().await?;
    let start = Instant::now();
    // The data as it came, for --json.
    let data = ctx.conn.run_as(None, Command::Ping(NoArgs {})).await?;
    let elapsed = start.elapsed();
    if ctx.json {
        output::print_json(&data);
    } else {
        output::print(&format!(
            "pong from {} in {:.2} ms",
            ctx.conn.server,
            elapsed.as_secs_f64() * 1000.0
        ));
    }
    Ok(())
}

/// `gradebook hello`.
pub async fn hello(ctx: &mut Ctx) -> Result<(), CliError> {
    let Some(h) = request(ctx, call::Hello(HelloArgs { encoding: None })).await? else {
        return Ok(());
    };
    output::print(&format!(
        "{} {} at {}, protocol {}, encodings: {}",
        h.server,
        h.version,
        ctx.conn.server,
        h.protocol,
        h.encodings.join(", ")
    ));
    Ok(())
}

/// `gradebook completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "gradebook", &mut std::io::stdout());
    Ok(())
}

/// `gradebook fingerprint CERT`.
pub fn fingerprint(cert: &Path) -> Result<(), CliError> {
    let pem = std::fs::read_to_string(cert)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", cert.display())))?;
    let fp = crate::connect::pem_fingerprint(&pem)
        .map_err(|e| CliError::usage(format!("{}: {e}", cert.display())))?;
    output::print(&fp);
    Ok(())
}
