//! The stable error codes of the protocol (spec §3).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable error code. Clients match on these; the message beside them is
/// for humans and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON or MessagePack, a missing, ill-typed or unknown field.
    BadRequest,
    /// `cmd` is not a command.
    UnknownCommand,
    /// The command needs a logged-in session, or the login failed.
    Unauthenticated,
    /// Logged in, but the role or assignment does not allow it.
    Forbidden,
    /// The promotion, student, grade or user does not exist.
    NotFound,
    /// It already exists, or it is still in use.
    Conflict,
    /// A value outside its domain.
    InvalidValue,
    /// A message over the size limit; the connection is then closed.
    FrameTooLarge,
    /// A UDP reply would not fit one datagram: use TCP.
    TooLarge,
    /// A private command over plaintext UDP while the server runs with TLS.
    InsecureTransport,
    /// Too many failed logins or requests.
    RateLimited,
    /// The promotion is locked: its students and grades cannot change.
    Locked,
    /// Storage is full or unreachable: nothing was written, the server is
    /// still up; retry later.
    Unavailable,
    /// A bug or a storage failure; the details are in the server's log.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire (`not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InsecureTransport => "insecure_transport",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Locked => "locked",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it travels in a reply: `{"code": "...", "message": "..."}`,
/// and, for a refused import, `"lines"`: each bad line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WireError {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: String,
    /// The bad lines of an import, each with its number in the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineError>,
}

/// A bad line of an imported file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// Its number in the file.
    pub line: u64,
    /// Why, in words.
    pub message: String,
}

impl WireError {
    /// An error with its code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
            lines: Vec::new(),
        }
    }

    /// The same error, listing the bad lines of an import.
    pub fn with_lines(mut self, lines: Vec<LineError>) -> Self {
        self.lines = lines;
        self
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `invalid_value`.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidValue, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// `unavailable`: storage is full or unreachable, nothing was written.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// `internal`, with a message that says nothing of the cause: the cause
    /// goes to the server's log, never to a client.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; the server's log has the details",
        )
    }
}

impl From<gradebook_core::ValueError> for WireError {
    fn from(e: gradebook_core::ValueError) -> Self {
        WireError::invalid_value(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnknownCommand,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::InvalidValue,
            ErrorCode::FrameTooLarge,
            ErrorCode::TooLarge,
            ErrorCode::InsecureTransport,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
