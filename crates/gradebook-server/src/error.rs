//! From internal errors to wire errors: what a client may see.

use gradebook_proto::WireError;
use gradebook_store::StoreError;

/// Maps a store error to its reply. Not-found and conflict messages were
/// written for clients; anything else is logged here in full and reaches
/// the client as a bare `internal`.
pub fn from_store(e: StoreError) -> WireError {
    match e {
        StoreError::NotFound(m) => WireError::not_found(m),
        StoreError::Conflict(m) => WireError::conflict(m),
        other => {
            tracing::error!(error = %other, "storage failure");
            WireError::internal()
        }
    }
}
