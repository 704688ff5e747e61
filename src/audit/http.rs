//! `GET /api/v1/audit` (admin): the organisation's audit log, newest first.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::{self, AuditRow, Filter};
use crate::auth::caller::{Caller, Permission};
use crate::clock::to_stored;
use crate::db::Db;
use crate::error::{ApiError, Problem, Refused};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_audit);
}

/// Who acted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditActor {
    /// `account`, `api_key` or `system`.
    pub kind: String,
    pub id: Option<String>,
    /// An account's email, or an API key's name, when it acted.
    pub label: Option<String>,
    /// The client address it came from (behind a trusted proxy, the one
    /// the proxy forwarded).
    pub client_address: Option<String>,
}

/// What the action was done to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditTarget {
    /// `account`, `api_key`, `organisation`, `team`, `person`, `pulse`,
    /// `wave`, `template`, `webhook`, …
    pub kind: String,
    pub id: String,
}

/// One thing done.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: AuditActor,
    /// `pulse.created`, `person.erased`, `export.mobility_report`, …
    pub action: String,
    pub target: Option<AuditTarget>,
    /// Field names, counts and settings; never answers, secrets or the
    /// values of personal data.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = ApiError;

    fn try_from(row: AuditRow) -> Result<Self, ApiError> {
        let details = serde_json::from_str(&row.details)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("stored audit details: {e}")))?;
        Ok(Self {
            id: row.id,
            occurred_at: row.occurred_at.and_utc(),
            actor: AuditActor {
                kind: row.actor_kind,
                id: row.actor_id,
                label: row.actor_label,
                client_address: row.client_address,
            },
            action: row.action,
            target: row
                .target_kind
                .zip(row.target_id)
                .map(|(kind, id)| AuditTarget { kind, id }),
            details,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEvent>,
    /// Ask with `before` set to this for the page after; none at the end.
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// One action (`pulse.updated`), or every action of a kind with a
    /// trailing dot (`pulse.`).
    pub action: Option<String>,
    /// Only what this account or API key did.
    pub actor_id: Option<String>,
    /// Only what was done to this (a person's, a pulse's, … id).
    pub target_id: Option<String>,
    /// From this moment on (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before this moment (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// An event id from `next`: the page after it.
    pub before: Option<String>,
    /// Events per page: 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// The audit log: who did what, newest first, in pages.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "OK", body = AuditPage),
        Refused,
        (status = 422, description = "A bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit")]
pub async fn list_audit(
    db: web::Data<Db>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    caller.require(Permission::Administer)?;
    let query = query.into_inner();
    let limit = crate::http::page_limit(query.limit)?;
    let filter = Filter {
        action: query.action,
        actor_id: query.actor_id,
        target_id: query.target_id,
        since: query.since.map(to_stored),
        until: query.until.map(to_stored),
    };
    let organisation_id = caller.organisation_id().to_owned();
    let rows = db
        .run(move |conn| -> Result<_, ApiError> {
            let before = match &query.before {
                Some(before) => Some(store::find(conn, &organisation_id, before).map_err(|e| {
                    match ApiError::from(e) {
                        ApiError::NotFound => ApiError::field("before", "is not an audit event"),
                        other => other,
                    }
                })?),
                None => None,
            };
            // One more than the page, to know whether another follows.
            Ok(store::page(
                conn,
                &organisation_id,
                &filter,
                before.as_ref(),
                limit as i64 + 1,
            )?)
        })
        .await?;
    let (rows, more) = crate::http::take_page(rows, limit);
    let events = rows
        .into_iter()
        .map(AuditEvent::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        events.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(web::Json(AuditPage { events, next }))
}
