//! `/api/v1/waves`: the waves of the organisation's pulses, closing one
//! early and extending one. All need `WritePulses`.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::store::{self, WaveFilter, WaveRow};
use crate::auth::caller::{Caller, Permission};
use crate::clock::SharedClock;
use crate::crypto::ServerKeys;
use crate::db::{self, Db};
use crate::error::{ApiError, InvalidFields, Missing, Problem, Refused};
use crate::http::ValidJson;
use crate::surveys::template::Template;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_waves)
        .service(get_wave)
        .service(close_wave)
        .service(extend_wave);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaveStatus {
    Open,
    Closed,
    /// A firing missed while the service was down, whose window had passed
    /// (or that a later missed firing replaced): it never opened.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OpenedBy {
    Schedule,
    Manual,
}

/// A wave as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Wave {
    pub id: String,
    pub pulse_id: String,
    /// 1 for the pulse's first opened wave; none for a skipped firing.
    pub number: Option<i32>,
    pub status: WaveStatus,
    pub opened_by: OpenedBy,
    /// The cadence's firing this wave belongs to; none when sent by hand.
    pub scheduled_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub template_key: Option<String>,
    pub template_version: Option<i32>,
    /// k, copied from the pulse when the wave opened.
    pub min_group_size: i32,
    /// People invited: the audience as it was when the wave opened.
    pub invited: i32,
    pub reminders_at: Vec<DateTime<Utc>>,
    /// How many of those reminders have been queued.
    pub reminders_queued: i32,
}

impl Wave {
    pub fn from_row(row: &WaveRow) -> Result<Self, ApiError> {
        let status = match row.status.as_str() {
            "open" => WaveStatus::Open,
            "closed" => WaveStatus::Closed,
            _ => WaveStatus::Skipped,
        };
        Ok(Self {
            id: row.id.clone(),
            pulse_id: row.pulse_id.clone(),
            number: row.number,
            status,
            opened_by: if row.opened_by == "manual" {
                OpenedBy::Manual
            } else {
                OpenedBy::Schedule
            },
            scheduled_at: row.scheduled_at.map(|t| t.and_utc()),
            opened_at: row.opened_at.map(|t| t.and_utc()),
            closes_at: row.closes_at.map(|t| t.and_utc()),
            closed_at: row.closed_at.map(|t| t.and_utc()),
            template_key: row.template_key.clone(),
            template_version: row.template_version,
            min_group_size: row.min_group_size,
            invited: row.invited,
            reminders_at: row.reminder_times()?,
            reminders_queued: row.reminders_queued,
        })
    }
}

/// A wave with the questions it asks (the template as pinned when it opened).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaveDetail {
    #[serde(flatten)]
    pub wave: Wave,
    pub template: Option<Template>,
    /// Where the wave's emails are: counts only, never who.
    pub delivery: crate::delivery::outbox::Delivery,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WaveQuery {
    pub pulse_id: Option<String>,
    pub status: Option<WaveStatus>,
    /// 1 to 500, default 100; newest first.
    pub limit: Option<i64>,
}

/// The organisation's waves, newest first, optionally of one pulse or in one status.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(WaveQuery),
    responses((status = 200, description = "OK", body = Vec<Wave>), Refused, InvalidFields)
)]
#[get("/waves")]
pub async fn list_waves(
    db: web::Data<Db>,
    caller: Caller,
    query: web::Query<WaveQuery>,
) -> Result<web::Json<Vec<Wave>>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 500"));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| {
            store::list(
                conn,
                &organisation_id,
                &WaveFilter {
                    pulse_id: query.pulse_id.as_deref(),
                    status: query.status.map(|s| match s {
                        WaveStatus::Open => "open",
                        WaveStatus::Closed => "closed",
                        WaveStatus::Skipped => "skipped",
                    }),
                    limit,
                },
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(web::Json(
        rows.iter().map(Wave::from_row).collect::<Result<_, _>>()?,
    ))
}

/// One wave, with the template it asks.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id")),
    responses((status = 200, description = "OK", body = WaveDetail), Refused, Missing)
)]
#[get("/waves/{id}")]
pub async fn get_wave(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<WaveDetail>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let (row, delivery) = db
        .run(move |conn| -> Result<_, ApiError> {
            let row = store::find_in(conn, &organisation_id, &id)?;
            // A closed wave's emails are gone; their counts were kept.
            let delivery = match &row.delivery {
                Some(kept) => {
                    serde_json::from_str(kept).map_err(|e| ApiError::Unexpected(e.into()))?
                }
                None => crate::delivery::outbox::delivery(conn, &row.id)?,
            };
            Ok((row, delivery))
        })
        .await?;
    let template = row
        .template
        .as_deref()
        .map(crate::surveys::templates::decode)
        .transpose()?;
    Ok(web::Json(WaveDetail {
        wave: Wave::from_row(&row)?,
        template,
        delivery,
    }))
}

/// Close an open wave now, before its time. Emails for it that have not gone
/// out are cancelled. Closing a closed wave changes nothing and answers the same.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id")),
    responses(
        (status = 200, description = "Closed", body = Wave),
        Refused,
        Missing,
        (status = 409, description = "A skipped firing cannot be closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/waves/{id}/close")]
pub async fn close_wave(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    keys: web::Data<ServerKeys>,
    metrics: web::Data<crate::metrics::Metrics>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Wave>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let keys = keys.get_ref().clone();
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let audit = caller.audit("wave.closed");
    let row = db
        .run(move |conn| {
            let row = store::find_in(conn, &organisation_id, &id)?;
            // Skipped is final: no transaction needed to trust it.
            if row.status == "skipped" {
                return Err(ApiError::Conflict("This firing never opened.".into()));
            }
            let audit = audit.on("wave", &row.id);
            let closed =
                super::close_audited(conn, &keys, &row.id, super::Closing::Now, now, Some(&audit))?;
            Ok::<_, ApiError>((closed, store::find(conn, &row.id)?))
        })
        .await?;
    let (closed, row) = row;
    // Closed by this request, not before it (by hand or on schedule).
    if closed {
        metrics.waves(0, 1);
    }
    Ok(web::Json(Wave::from_row(&row)?))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(default)]
pub struct ExtendWave {
    /// The new close time: later than the current one and than now, at most
    /// 60 days after the wave opened.
    pub closes_at: Option<DateTime<Utc>>,
}

/// Move an open wave's close later.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id")),
    request_body = ExtendWave,
    responses(
        (status = 200, description = "Extended", body = Wave),
        Refused,
        Missing,
        (status = 409, description = "The wave is not open", body = Problem, content_type = "application/problem+json"),
        InvalidFields,
    )
)]
#[post("/waves/{id}/extend")]
pub async fn extend_wave(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<ExtendWave>,
) -> Result<web::Json<Wave>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let closes_at = body.into_inner()?.closes_at;
    let organisation_id = caller.organisation_id().to_owned();
    let now = clock.now();
    let audit = caller.audit("wave.extended");
    let row = db
        .run(move |conn| {
            db::write(conn, |conn| {
                // Another organisation's wave is 404 whatever the body says.
                let row = store::find_in(conn, &organisation_id, &id)?;
                let closes_at =
                    closes_at.ok_or_else(|| ApiError::field("closes_at", "is required"))?;
                super::extend(conn, &row, closes_at, now)?;
                audit
                    .on("wave", &row.id)
                    .with(serde_json::json!({ "closes_at": closes_at }))
                    .record(conn)?;
                Ok::<_, ApiError>(store::find(conn, &row.id)?)
            })
        })
        .await?;
    Ok(web::Json(Wave::from_row(&row)?))
}
