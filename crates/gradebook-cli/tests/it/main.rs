//! The command line's integration tests, in one binary: `gradebook serve`
//! processes and users running the `gradebook` binary (see
//! [`cli_support`]).

mod cli_support;

mod backup;

mod cli_bench;
mod cli_commands;
mod cli_csv;
mod cli_quic;
mod cli_shell;
mod cli_tls;
mod cli_transport;
mod cli_ux;
mod cli_watch;
mod client_calls;
mod migrate;
mod serve;
mod two_servers;
