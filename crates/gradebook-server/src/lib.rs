//! The gradebook server.
//!
//! The path of one request, module by module: [`listener`] accepts a TCP
//! connection (and the TLS handshake, [`tls`]); [`connection`] cuts frames
//! into requests and keeps replies in order; [`dispatch`]'s one `execute`
//! resolves the session ([`session`]), asks [`permission`] whether the
//! command may run (by its one description in [`facts`], against the
//! in-memory [`model`]), and hands it to a handler in [`handler`], which
//! validates with the domain core and writes through the store. What a
//! request carries on the way is in [`context`]. [`udp`] serves datagrams
//! through the same `execute`, and [`quic`] serves QUIC streams through it
//! too, one request per stream. [`web`] is the portal: its pages run the
//! same commands through the same `execute`, as the signed-in user.
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
mod context;
mod dispatch;
mod error;
pub mod facts;
mod handler;
mod listener;
mod memory;
mod model;
mod permission;
mod quic;
mod session;
mod tls;
mod udp;
mod watch;
mod web;

pub use clock::Clock;
pub use config::{Config, DEFAULT_HTTP_PORT, HttpListen, Limits, QuicListen, TlsMode};

/// The bodies of the fuzz targets that need the server (`fuzz/`), also
/// replayed over the saved corpus by `tests/it/fuzz_corpus.rs`. Not part of
/// the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::udp::fuzzing::udp_datagram;
}
pub use listener::{Server, StartError};
