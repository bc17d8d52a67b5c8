//! Many requests on one connection without waiting for each reply: a
//! window of requests in flight, replies read as they come, in order.

use std::collections::VecDeque;
use std::io::IsTerminal;

use gradebook_client::{Client, ClientError};
use gradebook_proto::{Call, Secret, WireError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::CliError;

/// Requests in flight at once: enough to keep the server busy, few enough
/// that neither side's socket buffers fill up while the other writes.
const WINDOW: usize = 256;

/// Sends `calls` pipelined, at most [`WINDOW`] in flight, with `token`
/// in each envelope; stops sending at the first refusal when `stop_early`.
/// Returns one result per call sent, in order: its reply's data, typed, or
/// the server's error.
pub async fn pipeline<C: Call>(
    client: &mut Client,
    token: Option<&Secret>,
    calls: Vec<C>,
    stop_early: bool,
    progress: &ProgressBar,
) -> Result<Vec<Result<C::Reply, WireError>>, CliError> {
    let total = calls.len();
    let mut calls = calls.into_iter();
    let mut results = Vec::with_capacity(total);
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let mut failed = false;
    client.set_token(token.cloned());
    loop {
        // Refill when half the window has come back: fewer, larger writes.
        if !failed && in_flight.len() <= WINDOW / 2 {
            while in_flight.len() < WINDOW {
                let Some(call) = calls.next() else {
                    break;
                };
                let queued = client
                    .queue(call)
                    .map_err(|e| CliError::from_client(e, token.is_some()))?;
                in_flight.push_back(queued);
            }
        }
        let Some(queued) = in_flight.pop_front() else {
            break;
        };
        match client.reply_to(queued).await {
            Ok(data) => results.push(Ok(data)),
            Err(ClientError::Server(e)) => {
                failed |= stop_early;
                results.push(Err(e));
            }
            Err(e) => {
                return Err(CliError::connection(format!(
                    "{}; {} of {total} requests were acknowledged, the others may or may not have been applied",
                    CliError::from_client(e, token.is_some()),
                    results.len(),
                )));
            }
        }
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
