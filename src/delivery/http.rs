//! Email delivery over the API: who could not be reached in a wave, and
//! sending someone's invitation again once HR has corrected the address.
//! Delivery status only — never whether anyone answered. `WritePulses`.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::caller::{Caller, Permission};
use crate::clock::{SharedClock, to_stored};
use crate::db::schema::{invitations, outbox, people};
use crate::db::{self, Db};
use crate::error::{ApiError, Missing, Problem, Refused};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(undeliverable).service(resend);
}

#[derive(Queryable)]
struct UndeliverableRow {
    person_id: String,
    name: String,
    email: String,
    reminder: i32,
    error: Option<String>,
    attempts: i32,
    queued_at: NaiveDateTime,
}

/// Someone whose email for a wave failed permanently.
#[derive(Debug, Serialize, ToSchema)]
pub struct Undeliverable {
    pub person_id: String,
    pub name: String,
    /// The address as it is now (corrected or not).
    pub email: String,
    /// 0: the invitation; 1, 2: a reminder.
    pub reminder: i32,
    /// What the mail server (or Peil) said.
    pub error: Option<String>,
    pub attempts: i32,
    pub queued_at: DateTime<Utc>,
}

/// The people of a wave whose email failed permanently (a 5xx from the mail
/// server, an address that is not valid). Correct the address on the person,
/// then send again with `POST …/invitations/{person_id}/resend`.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The wave's id")),
    responses((status = 200, description = "OK", body = Vec<Undeliverable>), Refused, Missing)
)]
#[get("/waves/{id}/undeliverable")]
pub async fn undeliverable(
    db: web::Data<Db>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Vec<Undeliverable>>, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let id = id.into_inner();
    let rows = db
        .run(move |conn| -> Result<_, ApiError> {
            crate::surveys::waves::store::find_in(conn, &organisation_id, &id)?;
            let rows: Vec<UndeliverableRow> = outbox::table
                .inner_join(invitations::table.inner_join(people::table))
                .filter(invitations::wave_id.eq(&id))
                .filter(outbox::status.eq("failed"))
                .order((people::email, outbox::reminder))
                .select((
                    people::id,
                    people::name,
                    people::email,
                    outbox::reminder,
                    outbox::last_error,
                    outbox::attempts,
                    outbox::created_at,
                ))
                .load(conn)?;
            Ok(rows)
        })
        .await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|r| Undeliverable {
                person_id: r.person_id,
                name: r.name,
                email: r.email,
                reminder: r.reminder,
                error: r.error,
                attempts: r.attempts,
                queued_at: r.queued_at.and_utc(),
            })
            .collect(),
    ))
}

/// What a resend did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    pub person_id: String,
    /// Emails queued again: the invitation, and any reminder that failed.
    pub queued: usize,
}

/// Send a person's invitation to this wave again — the same link — to the
/// address the person has now. For an invitation that failed, or one that
/// went to a wrong address. Only while the wave is open.
#[utoipa::path(
    tag = "waves",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The wave's id"),
        ("person_id" = String, Path, description = "The person's id"),
    ),
    responses(
        (status = 202, description = "Queued", body = Resent),
        Refused,
        Missing,
        (status = 409, description = "The wave is not open, or its email is being sent at this moment", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/waves/{id}/invitations/{person_id}/resend")]
pub async fn resend(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WritePulses)?;
    let organisation_id = caller.organisation_id().to_owned();
    let (wave_id, person_id) = path.into_inner();
    let now = to_stored(clock.now());
    let audit = caller
        .audit("invitation.resent")
        .on("person", &person_id)
        .with(serde_json::json!({ "wave_id": wave_id }));
    let resent = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let wave = crate::surveys::waves::store::find_in(conn, &organisation_id, &wave_id)?;
                if !wave.is_open_at(now) {
                    return Err(ApiError::Conflict(
                        "The wave is not open: there is nothing to answer any more.".into(),
                    ));
                }
                let invitation: String = invitations::table
                    .filter(invitations::wave_id.eq(&wave.id))
                    .filter(invitations::person_id.eq(&person_id))
                    .select(invitations::id)
                    .first(conn)?;
                // An email a worker holds is being sent right now: releasing
                // it would let another claim send it a second time.
                let in_flight: i64 = outbox::table
                    .filter(outbox::invitation_id.eq(&invitation))
                    .filter(outbox::status.eq("queued"))
                    .filter(diesel::dsl::not(super::outbox::unleased(now)))
                    .count()
                    .get_result(conn)?;
                if in_flight > 0 {
                    return Err(ApiError::Conflict(
                        "This invitation's email is being sent at this moment: resend it once it has gone (within minutes)."
                            .into(),
                    ));
                }
                // The invitation itself, whatever became of it; reminders only if they failed.
                let queued = diesel::update(
                    outbox::table
                        .filter(outbox::invitation_id.eq(&invitation))
                        .filter(outbox::reminder.eq(0).or(outbox::status.eq("failed"))),
                )
                .set((
                    outbox::status.eq("queued"),
                    outbox::attempts.eq(0),
                    outbox::next_attempt_at.eq(now),
                    outbox::last_error.eq(None::<String>),
                    outbox::sent_at.eq(None::<NaiveDateTime>),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
                audit.record(conn)?;
                Ok::<_, ApiError>(Resent { person_id, queued })
            })
        })
        .await?;
    Ok(HttpResponse::Accepted().json(resent))
}
