//! Many requests on one connection without waiting for each reply: a
//! window of requests in flight, replies read as they come, in order.

use std::io::IsTerminal;

use gradebook_client::Client;
use gradebook_proto::{Id, Request, Secret, WireError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::error::CliError;

/// Requests in flight at once: enough to keep the server busy, few enough
/// that neither side's socket buffers fill up while the other writes.
const WINDOW: usize = 256;

/// Sends `requests` pipelined, at most [`WINDOW`] in flight, with `token`
/// in each envelope; stops sending at the first refusal when `stop_early`.
/// Returns one result per request sent, in order.
pub async fn pipeline(
    client: &mut Client,
    token: Option<&Secret>,
    cmd: &str,
    requests: &[Value],
    stop_early: bool,
    progress: &ProgressBar,
) -> Result<Vec<Result<Value, WireError>>, CliError> {
    let mut results = Vec::with_capacity(requests.len());
    let mut sent = 0;
    let mut failed = false;
    loop {
        // Refill when half the window has come back: fewer, larger writes.
        if !failed && sent < requests.len() && sent - results.len() <= WINDOW / 2 {
            while sent < requests.len() && sent - results.len() < WINDOW {
                let request = Request {
                    id: Some(Id::Int(sent as i64 + 1)),
                    cmd: cmd.to_owned(),
                    args: Some(requests[sent].clone()),
                    token: token.cloned(),
                    pad: None,
                };
                client
                    .send_request(&request)
                    .map_err(|e| CliError::from_client(e, token.is_some()))?;
                sent += 1;
            }
        }
        if results.len() == sent {
            break;
        }
        let reply = client.recv().await.map_err(|e| {
            CliError::connection(format!(
                "{}; {} of {} requests were acknowledged, the others may or may not have been applied",
                CliError::from_client(e, token.is_some()),
                results.len(),
                requests.len()
            ))
        })?;
        if reply.result.is_err() && stop_early {
            failed = true;
        }
        results.push(reply.result);
        progress.inc(1);
    }
    Ok(results)
}

/// A progress bar on a terminal for `len` steps, hidden for fewer than
/// `from` (or off a terminal).
pub fn progress_bar(len: usize, what: &str, from: usize) -> ProgressBar {
    if len < from || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}
