//! `gradebook`: the server and the command-line client in one binary.
//!
//! Thin on purpose: it parses arguments and hands over to `serve` or to
//! the client commands (`app`).

#![forbid(unsafe_code)]

mod app;
mod args;
mod backup;
mod bench;
mod commands;
mod config;
mod connect;
mod error;
mod export;
mod import;
mod input;
mod migrate;
mod output;
mod pipeline;
mod serve;
mod shell;
mod values;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, ServeCli, ServeOnly};

fn main() -> ExitCode {
    // `serve` is parsed alone: the client's connection flags would clash
    // with its own `--plaintext` and clutter its help.
    if std::env::args_os().nth(1).is_some_and(|a| a == "serve") {
        let ServeCli {
            command: ServeOnly::Serve(args),
        } = ServeCli::parse();
        return serve::run(args);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors
            // to stderr with status 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let checked = if cli.global.udp {
        connect::check_udp(&cli.command)
    } else if cli.global.quic {
        connect::check_quic(&cli.command)
    } else {
        Ok(())
    };
    if let Err(e) = checked {
        app::report(&e);
        return ExitCode::from(e.exit_code());
    }
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(cli.global, args),
        command => app::run(cli.global, command),
    }
}
