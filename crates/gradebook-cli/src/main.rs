//! `gradebook`: the server and the command-line client in one binary.
//!
//! Thin on purpose: it parses arguments, sets up logging and calls the
//! library crates.

#![forbid(unsafe_code)]

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Promotions, students, grades and averages: the gradebook server and client.
#[derive(Debug, Parser)]
#[command(name = "gradebook", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (TLS on 0.0.0.0:7302 and data in ./gradebook-data by default).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}
