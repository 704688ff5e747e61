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

/// A keyset page's size: `limit` (default 100) checked to be 1 to 500.
pub fn page_limit(limit: Option<i64>) -> Result<usize, crate::error::ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::ApiError::field(
            "limit",
            "must be between 1 and 500",
        ));
    }
    Ok(usize::try_from(limit).unwrap_or(100))
}

/// The first `limit` of rows read as `limit + 1`, and whether more follow.
pub fn take_page<T>(mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// Whether the request's `Accept` names `media_type` (e.g. `text/csv`):
/// how the endpoints that speak more than JSON choose.
pub fn accepts(req: &actix_web::HttpRequest, media_type: &str) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(media_type))
}
