//! The gradebook server.
//!
//! The path of one request, module by module: [`listener`] accepts a TCP
//! connection (and the TLS handshake, [`tls`]); [`connection`] cuts frames
//! and keeps replies in order; [`dispatch`] decodes the request, resolves
//! the session ([`session`]), asks [`permission`] whether it may run, and
//! hands it to a handler in [`handler`], which uses the store and the
//! domain core. [`udp`] serves datagrams through the same dispatch.
//!
//! Start it with [`Server::bind`] then [`Server::run`]; tests bind port 0
//! and drive the real server with the real client. Every expiry, timeout
//! and window reads the time from [`Config::clock`]: tests move a
//! [`Clock::manual`] by hand instead of sleeping.

#![forbid(unsafe_code)]

mod auth;
mod clock;
mod config;
mod connection;
mod dispatch;
mod error;
pub mod facts;
mod handler;
mod listener;
mod model;
mod session;
mod tls;
mod udp;

pub use clock::Clock;
pub use config::{Config, Limits, TlsMode};

/// The bodies of the fuzz targets that need the server (`fuzz/`), also
/// replayed over the saved corpus by `tests/it/fuzz_corpus.rs`. Not part of
/// the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::udp::fuzzing::udp_datagram;
}
pub use listener::{Server, StartError};
