//! A teacher's pages (and an admin's, who manages every promotion).

use std::sync::Arc;

use axum::Router;

use super::Web;

/// The teacher's routes.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
}
