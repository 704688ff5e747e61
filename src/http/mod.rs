//! HTTP plumbing shared by every part: the JSON extractor, middleware, health
//! probes and the OpenAPI document. Each part's own handlers live in its
//! folder (`auth/http.rs`, …); [`crate::startup`] mounts them.

pub mod health;
pub mod idempotency;
pub mod json;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;

pub use json::{BodyLimit, ValidJson};

/// Whether the request's `Accept` names `media_type` (e.g. `text/csv`):
/// how the endpoints that speak more than JSON choose.
pub fn accepts(req: &actix_web::HttpRequest, media_type: &str) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(media_type))
}
