//! `POST /api/v1/people/{id}/erase`: a person's right to erasure (GDPR
//! art. 17), kept as DESIGN.md's invariant 7 says.
//!
//! In one transaction: the person's email address, name, job title and
//! external id are replaced by an anonymous placeholder; their invitations
//! (the link tokens derive from them) and queued emails are deleted, and so
//! are webhook events that name them; the audit log records it. After it
//! commits, the mail folder's copies of their emails are deleted (the next
//! retention pass deletes any a crash left). What stays: their dated
//! history, on the placeholder, so mobility's counts hold; and every
//! anonymous response and published result, which never named them.
//!
//! Only someone who has left can be erased: an active placeholder would be
//! invited again. Erasing twice changes nothing.

use std::collections::HashSet;

use actix_web::{post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::caller::{Caller, Permission};
use crate::clock::{SharedClock, to_stored};
use crate::config::{MailTransport, Settings};
use crate::db::schema::{invitations, outbox, people};
use crate::db::{self, Db, DbConnection};
use crate::domain::PersonStatus;
use crate::error::{ApiError, Missing, Problem, Refused};
use crate::org::people::store as people_store;

/// What the placeholder is called in lists.
pub const PLACEHOLDER_NAME: &str = "Erased person";

/// The placeholder's address: unique per person, and in `.invalid`, which
/// no mail ever reaches (RFC 2606).
pub fn placeholder_email(person_id: &str) -> String {
    format!("erased-{person_id}@erased.invalid")
}

/// What an erasure removed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Erasure {
    pub person_id: String,
    pub erased_at: DateTime<Utc>,
    /// Invitations deleted, with the link tokens derived from them.
    pub invitations: usize,
    /// Emails deleted from the outbox (queued, sent or failed).
    pub emails: usize,
    /// Copies deleted from the mail folder (`.eml` files).
    pub files: usize,
    /// Webhook `delivery.failed` events that named the person.
    pub webhook_events: usize,
}

/// Erase a person who has left: their personal data, invitations and
/// emails go; their history stays on an anonymous placeholder, and
/// responses and results are unchanged. Admin and hr accounts only.
#[utoipa::path(
    tag = "people",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, description = "Erased (or already was: nothing more to remove)", body = Erasure),
        Refused,
        Missing,
        (status = 409, description = "The person is still active: record that they left first", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/people/{id}/erase")]
pub async fn erase_person(
    db: web::Data<Db>,
    clock: web::Data<SharedClock>,
    settings: web::Data<Settings>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<Erasure>, ApiError> {
    caller.require(Permission::WritePeople)?;
    if caller.account_id().is_none() {
        return Err(ApiError::Forbidden(
            "Erasure needs an admin or hr account; API keys cannot erase.",
        ));
    }
    let organisation_id = caller.organisation_id().to_owned();
    let now = to_stored(clock.now());
    let audit = caller.audit("person.erased").on("person", &id);
    let (mut erasure, invitation_ids) = db
        .run(move |conn| {
            db::write(conn, |conn| {
                let person = people_store::find_in(conn, &organisation_id, &id)?;
                if let Some(erased_at) = person.erased_at {
                    return Ok((nothing_left(person.id, erased_at.and_utc()), HashSet::new()));
                }
                if person.status != PersonStatus::Left.as_str() {
                    return Err(ApiError::Conflict(format!(
                        "This person is active and would be invited again: record that they left (DELETE /api/v1/people/{}), then erase.",
                        person.id
                    )));
                }
                let (erasure, ids) = erase(conn, &person.id, now)?;
                audit
                    .with(serde_json::json!({
                        "invitations": erasure.invitations,
                        "emails": erasure.emails,
                        "webhook_events": erasure.webhook_events,
                    }))
                    .record(conn)?;
                Ok::<_, ApiError>((erasure, ids))
            })
        })
        .await?;
    if let MailTransport::Folder(dir) = &settings.mail.transport
        && !invitation_ids.is_empty()
    {
        erasure.files = super::retention::delete_files(dir.clone(), invitation_ids).await;
    }
    Ok(web::Json(erasure))
}

fn nothing_left(person_id: String, erased_at: DateTime<Utc>) -> Erasure {
    Erasure {
        person_id,
        erased_at,
        invitations: 0,
        emails: 0,
        files: 0,
        webhook_events: 0,
    }
}

/// The erasure's writes; returns what went and the invitation ids whose
/// files are to be deleted. Call inside a write transaction.
fn erase(
    conn: &mut DbConnection,
    person_id: &str,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<(Erasure, HashSet<String>)> {
    let ids: HashSet<String> = invitations::table
        .filter(invitations::person_id.eq(person_id))
        .select(invitations::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let theirs = invitations::table
        .filter(invitations::person_id.eq(person_id))
        .select(invitations::id);
    let emails =
        diesel::delete(outbox::table.filter(outbox::invitation_id.eq_any(theirs))).execute(conn)?;
    let invitations =
        diesel::delete(invitations::table.filter(invitations::person_id.eq(person_id)))
            .execute(conn)?;
    let webhook_events = crate::webhooks::store::forget_failures_of_person(conn, person_id)?;
    diesel::update(people::table.find(person_id))
        .set((
            people::email.eq(placeholder_email(person_id)),
            people::name.eq(PLACEHOLDER_NAME),
            people::job_title.eq(None::<String>),
            people::external_id.eq(None::<String>),
            people::erased_at.eq(Some(now)),
            people::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok((
        Erasure {
            person_id: person_id.to_owned(),
            erased_at: now.and_utc(),
            invitations,
            emails,
            files: 0,
            webhook_events,
        },
        ids,
    ))
}
