//! `/api/v1/api-keys`: credentials for integrations (admin only). The key is
//! shown once, at creation; Peil keeps only an HMAC of it (see
//! [`crate::crypto::ServerKeys::api_key_digest`] for why that, and not
//! Argon2id as for passwords).

pub mod store;

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::caller::{Caller, Permission, Scope};
use super::token::{API_KEY_PREFIX, random_token};
use crate::crypto::ServerKeys;
use crate::db::Db;
use crate::error::{ApiError, InvalidFields, Missing, Refused};
use crate::http::ValidJson;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_keys)
        .service(create_key)
        .service(revoke_key);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<store::ApiKeyRow> for ApiKey {
    fn from(row: store::ApiKeyRow) -> Self {
        Self {
            scopes: row.scopes(),
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at.and_utc(),
            last_used_at: row.last_used_at.map(|t| t.and_utc()),
            revoked_at: row.revoked_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key itself, shown only now. Send it as `Authorization: Bearer <key>`.
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct CreateApiKey {
    /// What the key is for, e.g. "Data warehouse".
    #[validate(length(min = 1, max = 100, message = "is required (at most 100 characters)"))]
    pub name: String,
    #[validate(length(min = 1, message = "needs at least one scope"))]
    pub scopes: Vec<Scope>,
}

/// All API keys of the organisation, revoked ones included.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = Vec<ApiKey>),
        Refused,
    )
)]
#[get("/api-keys")]
pub async fn list_keys(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Vec<ApiKey>>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| store::list(conn, &organisation_id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(rows.into_iter().map(ApiKey::from).collect()))
}

/// Create an API key; its secret is in this response only.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created", body = CreatedApiKey),
        Refused,
        InvalidFields,
    )
)]
#[post("/api-keys")]
pub async fn create_key(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    caller: Caller,
    body: ValidJson<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    let secret = random_token(API_KEY_PREFIX);
    let digest = keys.api_key_digest(&secret);
    let prefix: String = secret.chars().take(API_KEY_PREFIX.len() + 6).collect();
    let organisation_id = caller.organisation_id().to_owned();
    let mut scopes = request.scopes;
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    let name = request.name.trim().to_owned();
    let audit = caller.audit("api_key.created");
    let row = db
        .run(move |conn| {
            crate::db::write(conn, |conn| {
                let row = store::insert(
                    conn,
                    &store::NewApiKey {
                        organisation_id: &organisation_id,
                        name: &name,
                        prefix: &prefix,
                        secret_hash: &digest,
                        scopes: &scopes,
                    },
                )?;
                let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                audit
                    .on("api_key", &row.id)
                    .with(serde_json::json!({"name": name, "prefix": prefix, "scopes": scopes}))
                    .record(conn)?;
                Ok::<_, ApiError>(row)
            })
        })
        .await?;
    tracing::info!(api_key_id = %row.id, "API key created");
    Ok(HttpResponse::Created().json(CreatedApiKey {
        key: row.into(),
        secret,
    }))
}

/// Revoke an API key: it stops working at once and stays listed as revoked.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        Refused,
        Missing,
    )
)]
#[delete("/api-keys/{id}")]
pub async fn revoke_key(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("api_key.revoked");
    db.run(move |conn| -> Result<(), ApiError> {
        crate::db::write(conn, |conn| {
            let key = store::find_in(conn, &organisation_id, &id)?;
            store::revoke(conn, &id)?;
            audit
                .on("api_key", &id)
                .with(serde_json::json!({"name": key.name}))
                .record(conn)?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
