//! From internal errors to wire errors: what a client may see.

use gradebook_proto::WireError;
use gradebook_store::{StoreError, Unavailable};

/// Maps a store error to its reply. Not-found and conflict messages were
/// written for clients; a storage failure (full disk, I/O) is `unavailable`
/// with a plain sentence; anything else is logged here in full and reaches
/// the client as a bare `internal`.
pub fn from_store(e: StoreError) -> WireError {
    if let Some(why) = e.unavailable() {
        tracing::error!(error = %e, "storage unavailable");
        return WireError::unavailable(match why {
            Unavailable::Full => {
                "the server's storage is full: nothing was written; try again later"
            }
            Unavailable::Unreachable => {
                "the server's storage failed: nothing was written; try again later"
            }
        });
    }
    match e {
        StoreError::NotFound(m) => WireError::not_found(m),
        StoreError::Conflict(m) => WireError::conflict(m),
        StoreError::Locked(m) => WireError::new(gradebook_proto::ErrorCode::Locked, m),
        other => {
            tracing::error!(error = %other, "storage failure");
            WireError::internal()
        }
    }
}
