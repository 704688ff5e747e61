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
