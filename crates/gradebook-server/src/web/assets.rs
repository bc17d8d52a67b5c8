//! The portal's CSS and scripts, embedded in the binary (no build step):
//! htmx 2.0.11 (vendored, `web/static/htmx.min.js`; licence, 0BSD, in
//! `web/licenses/htmx.txt`) and our own `app.js`
//! and `style.css`. Served with an `ETag` so a browser revalidates cheaply.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use super::Web;

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct Files;

/// `/static/{file}`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new().route("/static/{*file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(found) = Files::get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&found.metadata.sha256_hash()[..12]));
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let kind = match file.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        found.data.into_owned().into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600, must-revalidate"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}
