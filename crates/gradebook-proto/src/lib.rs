//! The gradebook wire protocol, shared by the server and every client.
//!
//! The layers, bottom up:
//! - [`codec`]: cutting a byte stream into frames (JSON Lines, or
//!   length-prefixed MessagePack) under a size limit;
//! - [`envelope`]: the request and reply envelopes (`id`, `cmd`, `args`,
//!   `ok`, `data`, `error`) and their encodings;
//! - [`command`]: every command with its typed arguments, and the type of
//!   its reply ([`Call`], one [`call`] type per command);
//! - [`data`]: the objects that replies carry;
//! - [`error`]: the stable error codes.

#![forbid(unsafe_code)]

pub mod codec;
pub mod command;
pub mod data;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod secret;
mod strict;

pub use codec::{Encoding, FrameCodec, FrameError};
pub use command::{Call, Command, call};
pub use envelope::{Id, Reply, ReplyOf, ReplyStatus, Request};
pub use error::{ErrorCode, LineError, WireError};
pub use secret::Secret;

/// The protocol version spoken by this crate (`hello` reports it).
pub const PROTOCOL_VERSION: u32 = 1;

/// The default TCP and UDP port.
pub const DEFAULT_PORT: u16 = 7302;

/// The default limit on one message, in bytes (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// The limit on one message before the connection has logged in (16 KiB).
pub const PRE_AUTH_MAX_FRAME: usize = 16 << 10;
