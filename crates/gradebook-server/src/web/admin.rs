//! An admin's pages.

use std::sync::Arc;

use axum::Router;

use super::Web;

/// The admin's routes.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
}
