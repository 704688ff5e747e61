//! Liveness and readiness, for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, Db, DbError};
use crate::error::{ApiError, Problem};

#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `alive` or `ready`.
    status: &'static str,
}

/// The process is up and serving HTTP.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Alive", body = Status))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "alive" })
}

/// The database is reachable and fully migrated: route traffic here.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Database unreachable or not migrated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    let pending = db
        .run(|conn| {
            db::has_pending_migrations(conn).map_err(|e| DbError::Unavailable(e.to_string()))
        })
        .await?;
    if pending {
        tracing::warn!("not ready: migrations are pending");
        return Err(ApiError::Unavailable);
    }
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}
