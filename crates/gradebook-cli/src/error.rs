//! What can go wrong in a client command, and the exit code each failure
//! gives: 0 ok, 1 the command failed (the server answered an error, or an
//! import found bad lines), 2 usage error, 3 connection or TLS failure.

use std::fmt;

use gradebook_client::ClientError;
use gradebook_proto::{ErrorCode, WireError};

/// A failed client command.
#[derive(Debug)]
pub enum CliError {
    /// The command line or its input is wrong (exit 2).
    Usage(String),
    /// The server answered with an error (exit 1); its code is printed.
    Server(WireError),
    /// The saved session was refused: expired or revoked (exit 1).
    SessionExpired,
    /// The command needs a session and none is saved (exit 1).
    NotLoggedIn,
    /// The command ran but did not succeed, e.g. an import with bad lines
    /// (exit 1). The details were already printed.
    Failed(String),
    /// The server could not be reached, the TLS handshake failed, or its
    /// certificate is not trusted (exit 3).
    Connection(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Connection(_) => 3,
            CliError::Server(_)
            | CliError::SessionExpired
            | CliError::NotLoggedIn
            | CliError::Failed(_) => 1,
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// A connection or trust failure.
    pub fn connection(message: impl Into<String>) -> Self {
        CliError::Connection(message.into())
    }

    /// A client library error, mapped to what the user should understand.
    /// `with_token` says whether the request carried a saved session token,
    /// so `unauthenticated` can be told apart: expired session or none.
    pub fn from_client(e: ClientError, with_token: bool) -> Self {
        match e {
            ClientError::Server(w) if w.code == ErrorCode::Unauthenticated => {
                // A login that fails is also `unauthenticated`: keep the
                // server's words for it.
                if w.message.contains("needs a session") && !with_token {
                    CliError::NotLoggedIn
                } else if with_token {
                    CliError::SessionExpired
                } else {
                    CliError::Server(w)
                }
            }
            ClientError::Server(w) => CliError::Server(w),
            ClientError::Io(e) => CliError::Connection(format!("connection lost: {e}")),
            ClientError::Tls(m) => CliError::Connection(format!("TLS: {m}")),
            e @ ClientError::NotTls(_) => CliError::Connection(e.to_string()),
            ClientError::Timeout(d) => {
                CliError::Connection(format!("no reply from the server within {d:?}"))
            }
            ClientError::Protocol(m) => {
                CliError::Connection(format!("the server's reply is not understood: {m}"))
            }
            // The exchange went well; only its data did not read.
            ClientError::Data(m) => {
                CliError::Failed(format!("the server's reply is not understood: {m}"))
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) | CliError::Connection(m) => f.write_str(m),
            CliError::Server(w) => write!(f, "{}: {}", w.code, w.message),
            CliError::SessionExpired => {
                f.write_str("session expired: log in again (gradebook login)")
            }
            CliError::NotLoggedIn => f.write_str("not logged in: log in first (gradebook login)"),
        }
    }
}

impl std::error::Error for CliError {}
