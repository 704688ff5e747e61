//! `/api/v1/webhooks` (admin): registering endpoints, reading their
//! delivery log, redelivering. The signing secret is shown once, when an
//! endpoint is created or its secret rotated, and stored sealed.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::{EventType, address, store};
use crate::auth::caller::{Caller, Permission};
use crate::clock::{SharedClock, to_stored};
use crate::config::Settings;
use crate::crypto::ServerKeys;
use crate::db::{self, Db};
use crate::error::{ApiError, InvalidFields, Missing, Problem, Refused};
use crate::http::ValidJson;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_secret)
        .service(list_deliveries)
        .service(redeliver);
}

/// An endpoint, as the API shows it (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    /// False once disabled, by an admin or after failing
    /// `webhooks.disable_after_failures` times in a row; its deliveries
    /// wait until it is enabled again.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: i32,
    /// While failing: no attempt before this.
    pub retry_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<store::WebhookRow> for Webhook {
    fn from(row: store::WebhookRow) -> Self {
        Self {
            events: row.events(),
            id: row.id,
            url: row.url,
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            consecutive_failures: row.consecutive_failures,
            retry_at: row.retry_at.map(|t| t.and_utc()),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`), shown only now: verify each
    /// delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// The new signing secret, shown only now; the old one signs no more.
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to post: `https://…` (and no internal address, unless the
    /// server's configuration allows them).
    pub url: String,
    /// What the endpoint is for, e.g. "Slack bot".
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    pub description: String,
    /// The event types to post.
    #[validate(length(min = 1, message = "needs at least one event type"))]
    pub events: Vec<EventType>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    pub description: Option<String>,
    #[validate(length(min = 1, message = "needs at least one event type"))]
    pub events: Option<Vec<EventType>>,
    /// True enables a disabled endpoint (its failures forgotten, its waiting
    /// deliveries going out); false disables it.
    pub enabled: Option<bool>,
}

/// The URL checked against `webhooks.*`, and a host name resolved once so
/// an internal one is refused now rather than at the first delivery.
async fn checked_url(url: &str, settings: &Settings) -> Result<String, ApiError> {
    let url = address::check_url(url.trim(), &settings.webhooks)
        .map_err(|why| ApiError::field("url", why))?;
    if !settings.webhooks.allow_private_addresses && address::resolves_internally(&url).await {
        return Err(ApiError::field(
            "url",
            "resolves to a loopback, private or otherwise internal address, which webhooks may not reach (webhooks.allow_private_addresses)",
        ));
    }
    Ok(url.to_string())
}

/// The organisation's webhook endpoints.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Vec<Webhook>), Refused)
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    db: web::Data<Db>,
    caller: Caller,
) -> Result<web::Json<Vec<Webhook>>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| store::list(conn, &organisation_id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(rows.into_iter().map(Webhook::from).collect()))
}

/// Register an endpoint; its signing secret is in this response only.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created", body = CreatedWebhook),
        Refused,
        InvalidFields,
    )
)]
#[post("/webhooks")]
pub async fn create_webhook(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    settings: web::Data<Settings>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    body: ValidJson<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    let url = checked_url(&request.url, &settings).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let secret = super::new_secret();
    let sealed = keys.seal_webhook_secret(&id, &secret);
    let organisation_id = caller.organisation_id().to_owned();
    let now = to_stored(clock.now());
    let description = request.description.trim().to_owned();
    let audit = caller
        .audit("webhook.created")
        .on("webhook", &id)
        .with(serde_json::json!({ "host": host_of(&url), "events": request.events }));
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let row = store::insert(
                    conn,
                    &store::NewWebhook {
                        id: &id,
                        organisation_id: &organisation_id,
                        url: &url,
                        description: &description,
                        events: &request.events,
                        sealed_secret: &sealed,
                    },
                    now,
                )?;
                audit.record(conn)?;
                Ok::<_, ApiError>(row)
            })
        })
        .await?;
    tracing::info!(webhook_id = %row.id, "webhook endpoint registered");
    Ok(HttpResponse::Created().json(CreatedWebhook {
        webhook: row.into(),
        secret,
    }))
}

/// One endpoint.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "OK", body = Webhook), Refused, Missing)
)]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Webhook>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let row = db
        .run(move |conn| store::find_in(conn, &organisation_id, &id).map_err(ApiError::from))
        .await?;
    Ok(web::Json(row.into()))
}

/// Change an endpoint: its URL, description, events, or whether it is enabled.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "OK", body = Webhook),
        Refused,
        Missing,
        InvalidFields,
    )
)]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<UpdateWebhook>,
) -> Result<web::Json<Webhook>, ApiError> {
    caller.require(Permission::Administer)?;
    let request = body.into_inner()?;
    let url = match &request.url {
        Some(url) => Some(checked_url(url, &settings).await?),
        None => None,
    };
    let changes = store::Changes {
        url,
        description: request.description.map(|d| d.trim().to_owned()),
        events: request.events,
        enabled: request.enabled,
    };
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let now = to_stored(clock.now());
    let audit = caller
        .audit("webhook.updated")
        .on("webhook", &id)
        .with(serde_json::json!({
            "host": changes.url.as_deref().map(host_of),
            "events": changes.events,
            "enabled": changes.enabled,
        }));
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                store::find_in(conn, &organisation_id, &id)?;
                store::update(conn, &id, &changes, now)?;
                audit.record(conn)?;
                store::find_in(conn, &organisation_id, &id).map_err(ApiError::from)
            })
        })
        .await?;
    Ok(web::Json(row.into()))
}

/// Remove an endpoint, with its deliveries and their log.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted"), Refused, Missing)
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let audit = caller.audit("webhook.deleted").on("webhook", &id);
    db.run(move |conn| {
        db::write(conn, |conn| {
            let webhook = store::find_in(conn, &organisation_id, &id)?;
            store::delete(conn, &id)?;
            audit
                .with(serde_json::json!({ "host": host_of(&webhook.url) }))
                .record(conn)
                .map_err(ApiError::from)
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Give an endpoint a new signing secret, shown only in this response; the
/// old one signs nothing from now on.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "OK", body = RotatedSecret), Refused, Missing)
)]
#[post("/webhooks/{id}/secret")]
pub async fn rotate_secret(
    db: web::Data<Db>,
    keys: web::Data<ServerKeys>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<RotatedSecret>, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let secret = super::new_secret();
    let sealed = keys.seal_webhook_secret(&id, &secret);
    let now = to_stored(clock.now());
    let audit = caller.audit("webhook.secret_rotated").on("webhook", &id);
    db.run(move |conn| {
        db::write(conn, |conn| {
            store::find_in(conn, &organisation_id, &id)?;
            store::set_secret(conn, &id, &sealed, now)?;
            audit.record(conn).map_err(ApiError::from)
        })
    })
    .await?;
    Ok(web::Json(RotatedSecret { secret }))
}

/// One attempt to post a delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub number: i32,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One event queued for one endpoint, and what became of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub event_id: String,
    pub event: EventType,
    /// `pending`, `delivered`, or `failed` (given up after
    /// `webhooks.max_attempts`; redeliver to try again).
    pub status: String,
    pub attempts: i32,
    /// When a pending delivery is tried next (if its endpoint is enabled
    /// and not backing off).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body, as posted.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every attempt, oldest first.
    pub log: Vec<Attempt>,
}

impl Delivery {
    fn from_rows(
        row: store::DeliveryRow,
        attempts: Vec<store::AttemptRow>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            event: EventType::parse(&row.event).ok_or_else(|| {
                ApiError::Unexpected(anyhow::anyhow!("stored event type {}", row.event))
            })?,
            payload: serde_json::from_str(&row.payload)
                .map_err(|e| ApiError::Unexpected(e.into()))?,
            next_attempt_at: (row.status == "pending").then(|| row.next_attempt_at.and_utc()),
            id: row.id,
            event_id: row.event_id,
            status: row.status,
            attempts: row.attempts,
            created_at: row.created_at.and_utc(),
            delivered_at: row.delivered_at.map(|t| t.and_utc()),
            log: attempts
                .into_iter()
                .map(|a| Attempt {
                    number: a.number,
                    attempted_at: a.attempted_at.and_utc(),
                    status_code: a.status_code,
                    error: a.error,
                    duration_ms: a.duration_ms,
                })
                .collect(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Ask with `before` set to this for the page after; none at the end.
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// A delivery id from `next`: the page after it.
    pub before: Option<String>,
    /// Deliveries per page: 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// An endpoint's delivery log: every event queued for it, newest first,
/// each with its attempts and what the receiver answered.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryQuery),
    responses(
        (status = 200, description = "OK", body = DeliveryPage),
        Refused,
        Missing,
        (status = 422, description = "A bad status, cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    caller.require(Permission::Administer)?;
    let query = query.into_inner();
    let limit = crate::http::page_limit(query.limit)?;
    if let Some(status) = &query.status
        && !["pending", "delivered", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::field(
            "status",
            "must be pending, delivered or failed",
        ));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let rows = db
        .run(move |conn| -> Result<_, ApiError> {
            store::find_in(conn, &organisation_id, &id)?;
            let before =
                match &query.before {
                    Some(before) => Some(store::find_delivery(conn, &id, before).map_err(|e| {
                        match ApiError::from(e) {
                            ApiError::NotFound => {
                                ApiError::field("before", "is not a delivery of this endpoint")
                            }
                            other => other,
                        }
                    })?),
                    None => None,
                };
            // One more than the page, to know whether another follows.
            Ok(store::deliveries(
                conn,
                &id,
                query.status.as_deref(),
                before.as_ref(),
                limit as i64 + 1,
            )?)
        })
        .await?;
    let (rows, more) = crate::http::take_page(rows, limit);
    let deliveries = rows
        .into_iter()
        .map(|(row, attempts)| Delivery::from_rows(row, attempts))
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        deliveries.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok(web::Json(DeliveryPage { deliveries, next }))
}

/// Post a delivery again — the same event id and body — whatever became of
/// it, with a fresh allowance of attempts.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("delivery_id" = String, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        Refused,
        Missing,
        (status = 409, description = "The endpoint is disabled: enable it first", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Administer)?;
    let organisation_id = caller.organisation_id().to_owned();
    let (id, delivery_id) = path.into_inner();
    let now = to_stored(clock.now());
    let audit = caller
        .audit("webhook.redelivered")
        .on("webhook", &id)
        .with(serde_json::json!({ "delivery_id": delivery_id }));
    let (row, attempts) = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let webhook = store::find_in(conn, &organisation_id, &id)?;
                store::find_delivery(conn, &id, &delivery_id)?;
                if !webhook.enabled {
                    return Err(ApiError::Conflict(
                        "The endpoint is disabled; enable it first (PATCH with \"enabled\": true)."
                            .into(),
                    ));
                }
                store::redeliver(conn, &delivery_id, now)?;
                audit.record(conn)?;
                let row = store::find_delivery(conn, &id, &delivery_id)?;
                let attempts = store::attempts_of(conn, &[row.id.as_str()])?;
                Ok((row, attempts))
            })
        })
        .await?;
    Ok(HttpResponse::Accepted().json(Delivery::from_rows(row, attempts)?))
}

/// An endpoint's host, as the audit log names it: its path and query may
/// hold a receiver's token, which the log must not.
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}
